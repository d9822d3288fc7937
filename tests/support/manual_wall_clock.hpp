// manual_wall_clock: a wall clock for session tests that moves only when
// told to; it starts at a fixed date (2027-01-15).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "trellis/gateway/session.hpp"

namespace trellis::test {

class manual_wall_clock {
 public:
  gateway::wall_time now() const {
    return gateway::wall_time(std::chrono::milliseconds(ms_.load()));
  }
  void advance(std::chrono::milliseconds d) { ms_ += d.count(); }
  gateway::wall_clock_function function() const {
    return [this] { return now(); };
  }

 private:
  std::atomic<std::int64_t> ms_{1'800'000'000'000};
};

}  // namespace trellis::test
