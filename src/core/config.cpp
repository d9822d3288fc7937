#include "trellis/core/config.hpp"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "trellis/core/error.hpp"

namespace trellis::core::config {

using json = nlohmann::json;

void fail(const std::string& path, const std::string& what) {
  throw config_error(path, what);
}

std::string member(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string index(const std::string& path, std::size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

void expect_object(const json& j, const std::string& path) {
  if (!j.is_object()) fail(path.empty() ? "config" : path, "expected an object");
}

// Rejects keys outside `known`.
void only(const json& j, const std::string& path, std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : j.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      std::string list;
      for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      fail(member(path, key), "unknown key (known here: " + list + ")");
    }
  }
}

const json* find(const json& j, std::string_view key) {
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

std::string get_string(const json& j, const std::string& path) {
  if (!j.is_string()) fail(path, "expected a string");
  return j.get<std::string>();
}

std::uint64_t get_uint(const json& j, const std::string& path, std::uint64_t lo, std::uint64_t hi) {
  if (!j.is_number_integer() ||
      (j.is_number_integer() && !j.is_number_unsigned() && j.get<std::int64_t>() < 0))
    fail(path, "expected a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
  const auto v = j.get<std::uint64_t>();
  if (v < lo || v > hi)
    fail(path, "must be from " + std::to_string(lo) + " to " + std::to_string(hi));
  return v;
}

double get_double(const json& j, const std::string& path, double lo, double hi) {
  if (!j.is_number()) fail(path, "expected a number");
  const double v = j.get<double>();
  if (!(v >= lo && v <= hi))
    fail(path, "must be from " + std::to_string(lo) + " to " + std::to_string(hi));
  return v;
}

bool get_bool(const json& j, const std::string& path) {
  if (!j.is_boolean()) fail(path, "expected true or false");
  return j.get<bool>();
}

std::chrono::milliseconds get_duration(const json& j, const std::string& path) {
  return parse_duration(get_string(j, path), path);
}

std::vector<std::string> get_strings(const json& j, const std::string& path) {
  if (!j.is_array()) fail(path, "expected an array of strings");
  std::vector<std::string> out;
  for (std::size_t i = 0; i < j.size(); ++i) out.push_back(get_string(j[i], index(path, i)));
  return out;
}

// A size: a number of bytes, or a string with a unit (parse_size).
std::uint64_t get_size(const json& j, const std::string& path) {
  if (j.is_number()) return get_uint(j, path, 0, std::uint64_t{1} << 50);
  if (!j.is_string()) fail(path, "expected a size such as \"256MiB\" or a number of bytes");
  return parse_size(j.get<std::string>(), path);
}

std::chrono::milliseconds parse_duration(std::string_view text, std::string_view field) {
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  const auto fail = [&]() -> std::chrono::milliseconds {
    throw config_error(std::string(field),
                       "expected a duration such as \"250ms\", \"5s\", "
                       "\"2m\" or \"1h\", got '" +
                           std::string(text) + "'");
  };
  if (ec != std::errc{} || end == text.data() || n > 1'000'000'000) return fail();
  if (unit == "ms") return std::chrono::milliseconds(n);
  if (unit == "s") return std::chrono::seconds(n);
  if (unit == "m") return std::chrono::minutes(n);
  if (unit == "h") return std::chrono::hours(n);
  return fail();
}

std::uint64_t parse_size(std::string_view text, std::string_view field) {
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  const auto fail = [&]() -> std::uint64_t {
    throw config_error(std::string(field),
                       "expected a size such as \"512KiB\", \"256MiB\" "
                       "or \"1GiB\", got '" +
                           std::string(text) + "'");
  };
  if (ec != std::errc{} || end == text.data()) return fail();
  std::uint64_t scale = 0;
  if (unit.empty() || unit == "B")
    scale = 1;
  else if (unit == "KiB")
    scale = 1ull << 10;
  else if (unit == "MiB")
    scale = 1ull << 20;
  else if (unit == "GiB")
    scale = 1ull << 30;
  else if (unit == "KB")
    scale = 1'000;
  else if (unit == "MB")
    scale = 1'000'000;
  else if (unit == "GB")
    scale = 1'000'000'000;
  else
    return fail();
  if (n > (std::uint64_t{1} << 50) / scale) return fail();  // a petabyte: surely a typo
  return n * scale;
}

}  // namespace trellis::core::config
