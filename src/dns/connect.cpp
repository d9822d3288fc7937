#include "trellis/dns/connect.hpp"

#include <vector>

namespace trellis::dns {

asio::awaitable<result<asio::ip::tcp::socket>> connect(resolver& r, std::string_view host,
                                                       std::uint16_t port,
                                                       connect_options options) {
  auto addresses = co_await r.resolve(host, options.family);
  if (!addresses) co_return unexpected(addresses.error());
  std::vector<asio::ip::tcp::endpoint> endpoints;
  endpoints.reserve(addresses->size());
  for (const auto& a : *addresses) endpoints.emplace_back(a, port);
  co_return co_await net::connect(std::span<const asio::ip::tcp::endpoint>(endpoints),
                                  options.connect);
}

}  // namespace trellis::dns
