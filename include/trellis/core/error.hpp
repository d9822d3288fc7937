// Error codes of the core layer, and the conventions every layer follows.
//
// trellis reports failures as std::error_code. Each module owns one
// category (core::errc here, net::error, later http::error, dns::error...),
// so a caller can compare `ec == net::error::timed_out` without knowing
// which layer produced it. Hot paths return codes, never throw: a peer that
// hangs up is not exceptional. Exceptions are kept for bugs and for bad
// configuration at start-up, whose message names the offending field
// (core::config_error).
//
// Thread-safety: the categories are immutable singletons; safe everywhere.
#pragma once

#include <stdexcept>
#include <string>
#include <system_error>

namespace trellis::core {

enum class errc {
  buffer_full = 1,   // a write would grow a buffer past its cap
  invalid_argument,  // a value outside what the function accepts
  not_found,         // a lookup found nothing (a file, a name, a key)
  cancelled,         // the operation was stopped by its owner
  shutting_down,     // the runtime is draining; no new work is accepted
};

const std::error_category& core_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), core_category()};
}

// Thrown at start-up when configuration is invalid. `field()` names the
// offending setting (e.g. "tls.cert_file") so the message can be acted on.
class config_error : public std::runtime_error {
 public:
  config_error(std::string field, const std::string& what)
      : std::runtime_error(field + ": " + what), field_(std::move(field)) {}
  const std::string& field() const noexcept { return field_; }

 private:
  std::string field_;
};

}  // namespace trellis::core

template <>
struct std::is_error_code_enum<trellis::core::errc> : std::true_type {};
