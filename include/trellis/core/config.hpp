// config: reading a JSON configuration strictly, with errors that name the
// JSON path of the bad value.
//
// A configuration is read once, at start-up, and a mistake in it should
// stop the program with a message that says where to look:
// "clusters[0].endpoints[1].weight: must be from 1 to 1000". These are the
// pieces every configuration reader in trellis (the proxy's, the
// gateway's) is built from: typed getters that check the JSON type and
// range, only() that refuses keys a section does not know (a typo such as
// "helth" would otherwise silently turn health checks off), and the two
// unit-carrying formats — durations ("250ms", "5s", "2m", "1h") and sizes
// ("512KiB", "256MiB"). A bare number where a unit is expected is refused:
// its unit would be a guess.
//
// Every error is a core::config_error whose field() is the JSON path.
// Paths are built with member() and index(): "" is the top level,
// member("", "proxy") is "proxy", index("listeners", 2) "listeners[2]".
//
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace trellis::core::config {

// Throws core::config_error(path, what).
[[noreturn]] void fail(const std::string& path, const std::string& what);

// "a.b" from "a" and "b" ("b" from "" and "b"); "a[3]" from "a" and 3.
std::string member(const std::string& path, std::string_view key);
std::string index(const std::string& path, std::size_t i);

// Throws unless `j` is an object (the path "config" stands for the top level).
void expect_object(const nlohmann::json& j, const std::string& path);
// Throws for the first key of the object `j` not in `known`, listing the
// known ones.
void only(const nlohmann::json& j, const std::string& path,
          std::initializer_list<std::string_view> known);
// The member `key` of the object `j`, or null.
const nlohmann::json* find(const nlohmann::json& j, std::string_view key);

std::string get_string(const nlohmann::json& j, const std::string& path);
// A whole number in [lo, hi].
std::uint64_t get_uint(const nlohmann::json& j, const std::string& path, std::uint64_t lo,
                       std::uint64_t hi);
// A number in [lo, hi].
double get_double(const nlohmann::json& j, const std::string& path, double lo, double hi);
bool get_bool(const nlohmann::json& j, const std::string& path);
// A duration string (parse_duration).
std::chrono::milliseconds get_duration(const nlohmann::json& j, const std::string& path);
// A size: a string with a unit (parse_size) or a whole number of bytes.
std::uint64_t get_size(const nlohmann::json& j, const std::string& path);
// An array of strings.
std::vector<std::string> get_strings(const nlohmann::json& j, const std::string& path);

// "5s", "250ms", "2m", "1h" as milliseconds. Throws core::config_error
// naming `field` for anything else.
std::chrono::milliseconds parse_duration(std::string_view text, std::string_view field);
// A size in bytes: a number with an optional unit, "B", "KiB", "MiB" or
// "GiB" (also "KB", "MB", "GB", powers of 1000): "256MiB". Throws
// core::config_error naming `field`; also above a petabyte (a typo).
std::uint64_t parse_size(std::string_view text, std::string_view field);

}  // namespace trellis::core::config
