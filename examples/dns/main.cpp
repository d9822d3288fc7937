// trellis-dns: an authoritative DNS server for one or more zones.
//
//   trellis-dns --zone examples/dns/example.zone --port 5353
//   dig @127.0.0.1 -p 5353 www.example.test A +norec
//
// Each --zone is a master file (RFC 1035 §5) or, when its name ends in
// ".json", the JSON form described in include/trellis/dns/zone.hpp. The
// server answers over UDP and TCP on the same port, on every worker
// (SO_REUSEPORT), and logs "listening" with the bound address once ready.
// A zone that fails to load stops it at start-up with the file, the line
// and the problem.
#include <cstdio>
#include <string>
#include <vector>

#include "cli.hpp"
#include "trellis/core/log.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/dns/server.hpp"
#include "trellis/dns/zone.hpp"

namespace {

using namespace trellis;

constexpr const char* usage = R"(trellis-dns — an authoritative DNS server

usage:
  trellis-dns --zone FILE [--zone FILE...] [--address A] [--port P] [--workers N]
              [--max-udp-size N] [--idle-timeout MS] [--log-level L]

Serves the zones over UDP and TCP on the same port. A FILE ending in .json
is read as JSON, any other as an RFC 1035 master file.
  --zone FILE          a zone to serve (repeat for more zones)
  --address A          address to bind (default 127.0.0.1; :: for IPv6)
  --port P             port (default 5353; 0 picks a free one)
  --workers N          worker threads (default: one per core)
  --max-udp-size N     largest UDP answer, 512..4096 (default 1232)
  --idle-timeout MS    close a TCP connection idle this long (default 10000)
  --log-level L        trace, debug, info, warn, error or off (default info)
)";

[[noreturn]] void fail(const std::string& message) {
  examples::fail("trellis-dns", message);
}

// Every value of a repeatable option ("--zone a --zone b"); examples::args
// keeps only the first.
std::vector<std::string> all_values(int argc, char** argv, const std::string& flag) {
  std::vector<std::string> out;
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == flag) out.emplace_back(argv[++i]);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const examples::args a("trellis-dns", argc, argv, usage);
  a.allow({"zone", "address", "port", "workers", "max-udp-size", "idle-timeout", "log-level"});
  a.apply_log_level();
  if (!a.positional().empty()) fail("unexpected argument '" + a.positional()[0] + "' (see --help)");
  const auto files = all_values(argc, argv, "--zone");
  if (files.empty()) fail("at least one --zone FILE is needed (see --help)");
  const auto address = a.address();
  const auto port = static_cast<std::uint16_t>(a.number("port", 5353, 0, 65535));
  const auto workers = static_cast<std::size_t>(a.number("workers", 0, 0, 1024));

  dns::server_options options;
  options.max_udp_size = static_cast<std::uint16_t>(a.number("max-udp-size", 1232, 512, 4096));
  options.tcp_idle_timeout =
      std::chrono::milliseconds(a.number("idle-timeout", 10000, 1, 3'600'000));

  std::vector<dns::zone> zones;
  try {
    for (const auto& f : files) {
      zones.push_back(dns::zone::load(f));
      core::log::info("zone loaded", {{"file", f},
                                      {"origin", zones.back().origin().to_string()},
                                      {"records", zones.back().size()}});
    }
    core::runtime rt({.workers = workers});
    dns::server srv(std::move(zones), std::move(options));
    auto bound = srv.listen(rt, address, port);
    if (!bound)
      fail("cannot listen on " + examples::to_string({address, port}) + ": " +
           bound.error().message());
    core::log::info("listening", {{"address", examples::to_string({address, *bound})},
                                  {"udp", true},
                                  {"tcp", true},
                                  {"workers", rt.size()}});
    rt.run();
  } catch (const core::config_error& e) {
    fail(e.what());
  }
  core::log::info("stopped");
  return 0;
}
