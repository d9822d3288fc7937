#include "trellis/core/log.hpp"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <ctime>
#include <mutex>

namespace trellis::core::log {
namespace {

std::atomic<format> out_format{format::text};
std::mutex sink_mutex;
sink custom_sink;  // guarded by sink_mutex
std::atomic<bool> has_custom_sink{false};

constexpr std::string_view level_name(level l) {
  switch (l) {
    case level::trace: return "trace";
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warn: return "warn";
    case level::error: return "error";
    case level::off: return "off";
  }
  return "?";
}

// RFC 3339 UTC timestamp with milliseconds: 2026-11-28T08:30:59.123Z
void append_timestamp(std::string& out) {
  const auto now = std::chrono::system_clock::now();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  out.append(buf, n);
  char frac[8];
  const int m = static_cast<int>(ms % 1000);
  frac[0] = '.';
  frac[1] = static_cast<char>('0' + m / 100);
  frac[2] = static_cast<char>('0' + m / 10 % 10);
  frac[3] = static_cast<char>('0' + m % 10);
  frac[4] = 'Z';
  out.append(frac, 5);
}

template <class T>
void append_number(std::string& out, T v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, ec == std::errc{} ? end : buf);
}

// JSON string body escaping (RFC 8259 §7): quotes, backslash, controls.
void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (u < 0x20) {
          out += "\\u00";
          out += hex[u >> 4];
          out += hex[u & 0xf];
        } else {
          out += c;
        }
    }
  }
}

// Text values are quoted only when they contain spaces, quotes or '=', so
// the common case stays readable and the line stays machine-splittable.
void append_text_value(std::string& out, std::string_view s) {
  const bool quote = s.empty() || s.find_first_of(" \"=\t\n\r\\") != std::string_view::npos;
  if (!quote) {
    out += s;
    return;
  }
  out += '"';
  append_json_escaped(out, s);
  out += '"';
}

void append_value(std::string& out, const field& f, bool json) {
  switch (f.type()) {
    case field::kind::string:
      if (json) {
        out += '"';
        append_json_escaped(out, f.string_value());
        out += '"';
      } else {
        append_text_value(out, f.string_value());
      }
      break;
    case field::kind::signed_int: append_number(out, f.int_value()); break;
    case field::kind::unsigned_int: append_number(out, f.uint_value()); break;
    case field::kind::floating: append_number(out, f.double_value()); break;
    case field::kind::boolean: out += f.bool_value() ? "true" : "false"; break;
  }
}

void emit(std::string_view line) {
  if (has_custom_sink.load(std::memory_order_acquire)) {
    std::lock_guard lock(sink_mutex);
    if (custom_sink) {
      custom_sink(line);
      return;
    }
  }
  // One write(2) per line keeps lines whole across threads; retry on a
  // partial write or EINTR, give up silently on other errors (logging must
  // never take the process down).
  while (!line.empty()) {
    const ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    line.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

void detail::write(level l, std::string_view msg, fields fs) {
  thread_local std::string line;
  line.clear();
  if (out_format.load(std::memory_order_relaxed) == format::json) {
    line += "{\"ts\":\"";
    append_timestamp(line);
    line += "\",\"level\":\"";
    line += level_name(l);
    line += "\",\"msg\":\"";
    append_json_escaped(line, msg);
    line += '"';
    for (const field& f : fs) {
      line += ",\"";
      append_json_escaped(line, f.key());
      line += "\":";
      append_value(line, f, true);
    }
    line += "}\n";
  } else {
    append_timestamp(line);
    line += ' ';
    line += level_name(l);
    line += ' ';
    line += msg;
    for (const field& f : fs) {
      line += ' ';
      line += f.key();
      line += '=';
      append_value(line, f, false);
    }
    line += '\n';
  }
  emit(line);
}

void set_format(format f) noexcept {
  out_format.store(f, std::memory_order_relaxed);
}

void set_sink(sink s) {
  std::lock_guard lock(sink_mutex);
  custom_sink = std::move(s);
  has_custom_sink.store(static_cast<bool>(custom_sink), std::memory_order_release);
}

bool parse_level(std::string_view name, level& out) noexcept {
  for (level l : {level::trace, level::debug, level::info, level::warn, level::error, level::off}) {
    if (name == level_name(l)) {
      out = l;
      return true;
    }
  }
  return false;
}

}  // namespace trellis::core::log
