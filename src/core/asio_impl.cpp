// The one translation unit that compiles Asio's and Asio SSL's non-inline
// parts (ASIO_SEPARATE_COMPILATION is set for every user of trellis), so the
// rest of the build only sees declarations.
#include <asio/impl/src.hpp>
#include <asio/ssl/impl/src.hpp>
