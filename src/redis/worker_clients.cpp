#include "trellis/redis/worker_clients.hpp"

#include <stdexcept>
#include <utility>

namespace trellis::redis {

struct worker_clients::slot {
  asio::execution_context* context = nullptr;
  std::unique_ptr<client> c;
  // Declared after the client so that it is unregistered first.
  core::drain_hook on_drain;
};

worker_clients::worker_clients(core::runtime& rt, asio::ip::tcp::endpoint server,
                               const client_options& options, std::string owner)
    : owner_(std::move(owner)) {
  for (std::size_t i = 0; i < rt.size(); ++i) {
    auto s = std::make_unique<slot>();
    s->context = &rt[i].context();
    s->c = std::make_unique<client>(rt[i].executor(), server, options);
    s->on_drain = rt[i].on_drain([c = s->c.get()] { c->close_idle(); });
    slots_.push_back(std::move(s));
  }
}

worker_clients::~worker_clients() = default;

client& worker_clients::here(const asio::any_io_executor& ex) const {
  asio::execution_context* ctx = &asio::query(ex, asio::execution::context);
  for (const auto& s : slots_)
    if (s->context == ctx) return *s->c;
  throw std::logic_error(owner_ + ": a call on an executor that is not one of its workers'");
}

}  // namespace trellis::redis
