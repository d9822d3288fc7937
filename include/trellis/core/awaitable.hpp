// Completion tokens shared by every coroutine in trellis.
//
// `use_nothrow` makes an Asio operation return its error code in a tuple
// instead of throwing it: `auto [ec, n] = co_await s.async_read_some(b, use_nothrow);`
// On hot paths a peer hanging up is not exceptional, and an exception costs
// microseconds where a branch costs nanoseconds. (Asio 1.22 keeps as_tuple
// in asio::experimental.)
//
// Thread-safety: constants.
#pragma once

#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

namespace trellis {

inline constexpr auto use_nothrow = asio::experimental::as_tuple(asio::use_awaitable);

}  // namespace trellis
