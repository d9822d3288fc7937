// Round robin: each host in turn, ignoring weights. The cursor is the only
// state; it belongs to this (per-worker) instance.
#include "detail.hpp"

namespace trellis::lb::detail {
namespace {

class round_robin final : public policy {
 public:
  explicit round_robin(host_set_ptr hosts) : policy(std::move(hosts)) {}

  const host* pick(const request_context& context) override {
    const std::size_t n = hosts().size();
    // At most one lap: a host excluded by a retry is stepped over.
    for (std::size_t step = 0; step < n; ++step) {
      const host* h = &hosts()[next_];
      next_ = next_ + 1 == n ? 0 : next_ + 1;
      if (!is_excluded(context, h)) return h;
    }
    return nullptr;
  }
  std::string_view name() const noexcept override { return "round_robin"; }

 private:
  std::size_t next_ = 0;
};

}  // namespace

std::unique_ptr<policy> make_round_robin(host_set_ptr hosts) {
  return std::make_unique<round_robin>(std::move(hosts));
}

}  // namespace trellis::lb::detail
