// Logging: levels, key=value fields, plain text or one JSON object a line.
//
// A log call is cheap when its level is disabled: the level check is one
// relaxed atomic load, inline, and fields are views (no allocation) until a
// line is actually written. Lines are formatted into a thread-local buffer
// and written with a single write(2) to stderr, so lines from different
// worker threads never interleave. Tests and embedders can install their own
// sink (set_sink), which is then called under a mutex.
//
//   core::log::info("listening", {{"address", ep}, {"workers", 2}});
//   text: 2026-11-28T08:30:59.123Z info listening address=127.0.0.1:8080 workers=2
//   json: {"ts":"2026-11-28T08:30:59.123Z","level":"info","msg":"listening",...}
//
// Thread-safety: every function may be called from any thread.
#pragma once

#include <atomic>
#include <concepts>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>

namespace trellis::core::log {

enum class level : std::uint8_t { trace, debug, info, warn, error, off };
enum class format : std::uint8_t { text, json };

// One key=value pair of a log line. Holds views: it must not outlive the
// call it is passed to (it never does when written inline).
class field {
 public:
  enum class kind : std::uint8_t { string, signed_int, unsigned_int, floating, boolean };

  field(std::string_view key, std::string_view v) : key_(key), kind_(kind::string), s_(v) {}
  field(std::string_view key, const char* v) : field(key, std::string_view(v)) {}
  field(std::string_view key, const std::string& v) : field(key, std::string_view(v)) {}
  field(std::string_view key, bool v) : key_(key), kind_(kind::boolean), b_(v) {}
  template <std::signed_integral T>
  field(std::string_view key, T v) : key_(key), kind_(kind::signed_int), i_(v) {}
  template <std::unsigned_integral T>
  requires(!std::same_as<T, bool>) field(std::string_view key, T v)
      : key_(key), kind_(kind::unsigned_int), u_(v) {}
  template <std::floating_point T>
  field(std::string_view key, T v) : key_(key), kind_(kind::floating), d_(v) {}

  std::string_view key() const noexcept { return key_; }
  kind type() const noexcept { return kind_; }
  std::string_view string_value() const noexcept { return s_; }
  std::int64_t int_value() const noexcept { return i_; }
  std::uint64_t uint_value() const noexcept { return u_; }
  double double_value() const noexcept { return d_; }
  bool bool_value() const noexcept { return b_; }

 private:
  std::string_view key_;
  kind kind_;
  union {
    std::int64_t i_;
    std::uint64_t u_;
    double d_;
    bool b_;
  };
  std::string_view s_;
};

using fields = std::initializer_list<field>;
using sink = std::function<void(std::string_view line)>;  // line ends with '\n'

namespace detail {
inline std::atomic<level> threshold{level::info};
void write(level l, std::string_view msg, fields f);
}  // namespace detail

// The least severe level that is written (default: info).
inline void set_level(level l) noexcept {
  detail::threshold.store(l, std::memory_order_relaxed);
}
inline level current_level() noexcept {
  return detail::threshold.load(std::memory_order_relaxed);
}
inline bool enabled(level l) noexcept {
  return l >= current_level() && l != level::off;
}

void set_format(format f) noexcept;
// Replaces the output (default: stderr). An empty function restores stderr.
void set_sink(sink s);

// Parses "trace", "debug", "info", "warn", "error", "off".
// Returns false (and leaves `out` alone) for anything else.
bool parse_level(std::string_view name, level& out) noexcept;

inline void write(level l, std::string_view msg, fields f = {}) {
  if (enabled(l)) detail::write(l, msg, f);
}
inline void trace(std::string_view msg, fields f = {}) {
  write(level::trace, msg, f);
}
inline void debug(std::string_view msg, fields f = {}) {
  write(level::debug, msg, f);
}
inline void info(std::string_view msg, fields f = {}) {
  write(level::info, msg, f);
}
inline void warn(std::string_view msg, fields f = {}) {
  write(level::warn, msg, f);
}
inline void error(std::string_view msg, fields f = {}) {
  write(level::error, msg, f);
}

}  // namespace trellis::core::log
