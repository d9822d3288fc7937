#include "trellis/core/error.hpp"

namespace trellis::core {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "trellis.core"; }
  std::string message(int v) const override {
    switch (static_cast<errc>(v)) {
      case errc::buffer_full: return "buffer is full";
      case errc::invalid_argument: return "invalid argument";
      case errc::not_found: return "not found";
      case errc::cancelled: return "cancelled";
      case errc::shutting_down: return "shutting down";
    }
    return "unknown core error";
  }
};

}  // namespace

const std::error_category& core_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace trellis::core
