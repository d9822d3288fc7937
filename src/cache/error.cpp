#include "trellis/cache/error.hpp"

#include <string>

namespace trellis::cache {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "trellis.cache"; }
  std::string message(int v) const override {
    switch (static_cast<error>(v)) {
      case error::not_found: return "no value for the key";
      case error::queue_full: return "write-behind queue full";
      case error::shut_down: return "cache shut down";
    }
    return "unknown cache error";
  }
  // queue_full compares equal to std::errc::resource_unavailable_try_again
  // (EAGAIN): the portable way to say "not now, try later".
  bool equivalent(int code, const std::error_condition& cond) const noexcept override {
    if (static_cast<error>(code) == error::queue_full)
      return cond == std::errc::resource_unavailable_try_again;
    return default_error_condition(code) == cond;
  }
};

}  // namespace

const std::error_category& cache_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace trellis::cache
