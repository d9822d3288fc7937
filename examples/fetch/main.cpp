// trellis-fetch: a curl-like command on trellis's HTTP client — the request
// cycle made visible.
//
//   trellis-fetch [options] URL
//
// The common curl flags keep curl's spelling (-X, -H, -d, --data-binary,
// -o, -L, -x, --cacert, -k, -I, -i, -f, -m, -s). -v prints each step of the
// request as it happens — the DNS answer and its TTL, the TCP connection,
// the TLS version, cipher and certificate, the request bytes sent and the
// response head received — and --timing prints how long each phase took.
// The body goes to stdout (or -o FILE) as it arrives, never held whole in
// memory. Exit status: 0 on success; otherwise curl's code for the same
// failure (6 unresolved host, 7 connect failed, 22 HTTP error with -f,
// 28 timeout, 35 TLS handshake, 47 too many redirects, 52/56 bad or cut
// response, 60 certificate not trusted), with the error on stderr.
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "trellis/codec/dns/error.hpp"
#include "trellis/codec/http/error.hpp"
#include "trellis/codec/url.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/dns/resolver.hpp"
#include "trellis/http/client.hpp"
#include "trellis/net/tls.hpp"

namespace {

using namespace trellis;

constexpr const char* usage =
    "usage: trellis-fetch [options] URL\n"
    "\n"
    "  -X, --request METHOD   request method (default GET, or POST with -d)\n"
    "  -H, --header 'N: v'    add a request header (repeatable)\n"
    "  -d, --data DATA        send DATA as a form body; @FILE reads a file (newlines removed),\n"
    "                         @- reads stdin; repeated -d are joined with '&'\n"
    "      --data-binary DATA send DATA (or @FILE, @-) exactly as is\n"
    "  -o, --output FILE      write the body to FILE instead of stdout\n"
    "  -I, --head             send HEAD and print the response head\n"
    "  -i, --include          print the response head before the body\n"
    "  -L, --location         follow redirects\n"
    "      --max-redirs N     at most N redirects (default 10)\n"
    "  -x, --proxy URL        use this HTTP proxy (CONNECT tunnel for https)\n"
    "      --noproxy LIST     hosts that bypass the proxy (as NO_PROXY)\n"
    "      --cacert FILE      trust the CA certificates in FILE\n"
    "  -k, --insecure         do NOT verify the server's certificate (warned)\n"
    "      --compressed       ask for gzip/deflate and decode the response\n"
    "  -f, --fail             exit 22 on an HTTP status of 400 or more\n"
    "  -m, --max-time SECS    limit the whole request\n"
    "      --connect-timeout SECS  limit the TCP connect\n"
    "  -A, --user-agent TEXT  the User-Agent to send\n"
    "      --dns-server A[:P] resolve names with this DNS server (default: /etc/resolv.conf)\n"
    "  -v, --verbose          show each step of the request cycle on stderr\n"
    "      --timing           print the time of each phase on stderr\n"
    "      --repeat N         send the request N times and print a summary instead of bodies\n"
    "      --parallel P       with --repeat: P requests at a time (default 1: one after another)\n"
    "  -s, --silent           print no warnings\n";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "trellis-fetch: %s\n%s", message.c_str(), usage);
  std::exit(2);
}

std::string read_all(std::istream& in) {
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// "@file" / "@-" / literal, as curl reads -d and --data-binary.
std::string data_argument(const std::string& value, bool binary) {
  if (value.empty() || value[0] != '@') return value;
  std::string text;
  if (value == "@-") {
    text = read_all(std::cin);
  } else {
    std::ifstream f(value.substr(1), std::ios::binary);
    if (!f) usage_error("cannot read " + value.substr(1));
    text = read_all(f);
  }
  if (!binary) std::erase_if(text, [](char c) { return c == '\r' || c == '\n'; });
  return text;
}

double seconds_arg(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  const double s = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !(s > 0) || s > 86400)
    usage_error(flag + ": expected seconds, got '" + v + "'");
  return s;
}

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

struct settings {
  http::client_request req;
  http::client_options opt;
  std::string output;
  bool head = false, include = false, fail_on_http = false, verbose = false, timing = false,
       silent = false, method_set = false;
  long repeat = 0, parallel = 1;
  std::optional<asio::ip::udp::endpoint> dns_server;
};

settings parse(int argc, char** argv) {
  settings s;
  s.opt.limits.max_body = UINT64_MAX;  // a download tool: the sink decides
  s.opt.proxy = http::proxy_config_from_env(http::process_env);
  std::vector<std::string> data;
  bool binary = false;
  std::optional<std::string> noproxy;
  std::optional<std::string> proxy;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::fputs(usage, stdout);
      std::exit(0);
    } else if (a == "-X" || a == "--request") {
      s.req.method = value();
      s.method_set = true;
    } else if (a == "-H" || a == "--header") {
      const std::string h = value();
      const auto colon = h.find(':');
      if (colon == std::string::npos || colon == 0) usage_error("-H: expected 'Name: value', got '" + h + "'");
      std::string v = h.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      if (auto added = s.req.headers.add(h.substr(0, colon), v); !added)
        usage_error("-H '" + h + "': " + added.error().message());
    } else if (a == "-d" || a == "--data") {
      data.push_back(data_argument(value(), false));
    } else if (a == "--data-binary") {
      data.push_back(data_argument(value(), true));
      binary = true;
    } else if (a == "-o" || a == "--output") {
      s.output = value();
    } else if (a == "-I" || a == "--head") {
      s.head = true;
    } else if (a == "-i" || a == "--include") {
      s.include = true;
    } else if (a == "-L" || a == "--location") {
      s.opt.redirects.follow = true;
    } else if (a == "--max-redirs") {
      const std::string v = value();
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < 0 || n > 1000) usage_error("--max-redirs: expected 0..1000");
      s.opt.redirects.max_redirects = static_cast<std::size_t>(n);
    } else if (a == "-x" || a == "--proxy") {
      proxy = value();
    } else if (a == "--noproxy") {
      noproxy = value();
    } else if (a == "--cacert") {
      s.opt.tls.ca_file = value();
    } else if (a == "-k" || a == "--insecure") {
      s.opt.tls.verify = false;
    } else if (a == "--compressed") {
      s.opt.decode_content = true;
    } else if (a == "-f" || a == "--fail") {
      s.fail_on_http = true;
    } else if (a == "-m" || a == "--max-time") {
      s.opt.request_timeout = to_ms(seconds_arg(a, value()));
    } else if (a == "--connect-timeout") {
      s.opt.connect_timeout = to_ms(seconds_arg(a, value()));
    } else if (a == "-A" || a == "--user-agent") {
      s.opt.user_agent = value();
    } else if (a == "--dns-server") {
      const std::string v = value();
      const auto colon = v.rfind(':');
      const bool has_port = colon != std::string::npos && v.find(':') == colon;  // not IPv6
      std::error_code ec;
      const auto address = asio::ip::make_address(has_port ? v.substr(0, colon) : v, ec);
      const long port = has_port ? std::strtol(v.c_str() + colon + 1, nullptr, 10) : 53;
      if (ec || port < 1 || port > 65535) usage_error("--dns-server: expected ADDRESS[:PORT], got '" + v + "'");
      s.dns_server = asio::ip::udp::endpoint(address, static_cast<unsigned short>(port));
    } else if (a == "-v" || a == "--verbose") {
      s.verbose = true;
    } else if (a == "--timing") {
      s.timing = true;
    } else if (a == "--repeat" || a == "--parallel") {
      const std::string v = value();
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < 1 || n > 100000) usage_error(a + ": expected 1..100000");
      (a == "--repeat" ? s.repeat : s.parallel) = n;
    } else if (a == "-s" || a == "--silent") {
      s.silent = true;
    } else if (a.size() > 1 && a[0] == '-') {
      usage_error("unknown option " + a);
    } else if (s.req.url.empty()) {
      s.req.url = a;
    } else {
      usage_error("more than one URL");
    }
  }
  if (s.req.url.empty()) usage_error("no URL");
  if (proxy) {
    std::string p = *proxy;
    if (p.find("://") == std::string::npos) p = "http://" + p;
    auto u = http::parse_url(p);
    if (!u) usage_error("-x " + *proxy + ": " + u.error().message());
    s.opt.proxy.http_proxy = *u;
    s.opt.proxy.https_proxy = *u;
  }
  if (noproxy) {
    s.opt.proxy.no_proxy.clear();
    std::stringstream list(*noproxy);
    for (std::string entry; std::getline(list, entry, ',');)
      if (!entry.empty()) s.opt.proxy.no_proxy.push_back(entry);
  }
  if (!data.empty()) {
    std::string body;
    for (const auto& d : data) body += (body.empty() ? "" : "&") + d;
    s.req.body = std::move(body);
    if (!s.method_set) s.req.method = "POST";
    if (!binary && !s.req.headers.contains("Content-Type"))
      (void)s.req.headers.set("Content-Type", "application/x-www-form-urlencoded");
  }
  if (s.head) {
    s.req.method = "HEAD";
    s.include = true;
  }
  return s;
}

// -v: each step on stderr, in curl's notation ("*" the client, ">" sent,
// "<" received).
class verbose_observer : public http::client_observer {
 public:
  void on_resolved(std::string_view host, std::span<const asio::ip::address> addresses,
                   std::uint32_t ttl) override {
    std::string list;
    for (const auto& a : addresses) list += (list.empty() ? "" : ", ") + a.to_string();
    std::fprintf(stderr, "* Resolved %.*s to %s (TTL %u s)\n", static_cast<int>(host.size()),
                 host.data(), list.c_str(), ttl);
  }
  void on_connected(const asio::ip::tcp::endpoint& peer) override {
    std::fprintf(stderr, "* Connected to %s port %u\n", peer.address().to_string().c_str(),
                 static_cast<unsigned>(peer.port()));
  }
  void on_reused(const asio::ip::tcp::endpoint& peer) override {
    std::fprintf(stderr, "* Reusing the connection to %s port %u\n",
                 peer.address().to_string().c_str(), static_cast<unsigned>(peer.port()));
  }
  void on_tls(const net::tls::session_info& s) override {
    std::fprintf(stderr, "* TLS: %s, cipher %s, ALPN %s\n", s.protocol.c_str(), s.cipher.c_str(),
                 s.alpn.empty() ? "(none)" : s.alpn.c_str());
    std::fprintf(stderr, "* Server certificate: subject %s; issuer %s\n", s.peer_subject.c_str(),
                 s.peer_issuer.c_str());
  }
  void on_request_head(std::string_view bytes) override { print(bytes, "> "); }
  void on_response_head(std::string_view bytes) override { print(bytes, "< "); }
  void on_redirect(int status, std::string_view next) override {
    std::fprintf(stderr, "* %d: following the redirect to %.*s\n", status,
                 static_cast<int>(next.size()), next.data());
  }
  void on_retry(std::error_code why) override {
    std::fprintf(stderr, "* The reused connection failed (%s): retrying on a new one\n",
                 why.message().c_str());
  }

 private:
  static void print(std::string_view head, const char* prefix) {
    while (!head.empty()) {
      auto eol = head.find("\r\n");
      if (eol == std::string_view::npos) eol = head.size();
      std::fprintf(stderr, "%s%.*s\n", prefix, static_cast<int>(eol), head.data());
      head.remove_prefix(std::min(head.size(), eol + 2));
    }
  }
};

// curl's exit code for an error (curl(1), "EXIT CODES").
int exit_code(std::error_code ec) {
  using http::client_error;
  if (ec == std::errc::timed_out) return 28;
  if (ec.category() == dns::dns_category()) return 6;
  if (ec == client_error::resolve_failed) return 6;
  if (ec == client_error::connect_failed || ec == asio::error::connection_refused ||
      ec == asio::error::network_unreachable || ec == asio::error::host_unreachable)
    return 7;
  if (net::tls::is_verification_failure(ec)) return 60;
  if (ec == client_error::tls_handshake_failed || ec.category() == asio::error::get_ssl_category())
    return 35;
  if (ec == client_error::too_many_redirects) return 47;
  if (ec == client_error::proxy_refused) return 56;
  if (ec == client_error::connection_closed) return 52;
  if (ec.category() == http::http_category() || ec == client_error::response_too_large) return 56;
  if (ec.category() == http::url_category() || ec == client_error::bad_url ||
      ec == client_error::unsupported_scheme)
    return 3;
  return 1;
}

// --repeat N --parallel P: N copies of the request, P in flight at once
// (each a coroutine taking the next number until none is left), bodies
// counted and dropped; then one summary line. One after another, the time
// is the sum of the round trips; P at a time, about N/P of them — the
// difference between waiting for each answer and not waiting.
asio::awaitable<int> repeat(settings& s, http::client& client) {
  auto ex = co_await asio::this_coro::executor;
  long next = 0, failed = 0, in_flight = 0;
  std::error_code first_error;
  const auto t0 = std::chrono::steady_clock::now();
  asio::steady_timer all_done(ex, std::chrono::steady_clock::time_point::max());
  auto worker = [&]() -> asio::awaitable<void> {
    while (next < s.repeat) {
      ++next;
      http::call_options call;
      call.sink = [](std::string_view) -> asio::awaitable<std::error_code> { co_return std::error_code{}; };
      auto res = co_await client.send(s.req, std::move(call));
      if (!res || (s.fail_on_http && res->status >= 400)) {
        ++failed;
        if (!res && !first_error) first_error = res.error();
      }
    }
    if (--in_flight == 0) all_done.cancel();
  };
  for (long i = 0; i < std::min(s.parallel, s.repeat); ++i) {
    ++in_flight;
    asio::co_spawn(ex, worker(), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);  // out of io_context::run(), to main
    });
  }
  co_await all_done.async_wait(use_nothrow);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const auto st = client.stats();
  std::printf("%ld requests, %ld at a time: %.1f ms (%.2f ms per request), %llu connections opened, "
              "%llu reused, %ld failed\n",
              s.repeat, std::min(s.parallel, s.repeat), ms, ms / static_cast<double>(s.repeat),
              static_cast<unsigned long long>(st.connections_opened),
              static_cast<unsigned long long>(st.connections_reused), failed);
  if (first_error) std::fprintf(stderr, "trellis-fetch: first error: %s\n", first_error.message().c_str());
  co_return failed == 0 ? 0 : (first_error ? exit_code(first_error) : 22);
}

asio::awaitable<int> fetch(settings s) {
  auto ex = co_await asio::this_coro::executor;
  auto ro = dns::resolver_options::system();
  if (s.dns_server) ro.conf.nameservers = {*s.dns_server};
  dns::resolver resolver(ex, ro);
  if (!s.opt.tls.verify && !s.silent)
    std::fprintf(stderr, "trellis-fetch: warning: -k: the server's certificate is NOT verified\n");
  for (const auto& w : s.opt.proxy.warnings)
    if (!s.silent) std::fprintf(stderr, "trellis-fetch: warning: %s\n", w.c_str());
  http::client client(ex, resolver, s.opt);
  if (s.repeat > 0) co_return co_await repeat(s, client);

  std::FILE* out = stdout;
  if (!s.output.empty()) {
    out = std::fopen(s.output.c_str(), "wb");
    if (!out) {
      std::fprintf(stderr, "trellis-fetch: cannot write %s\n", s.output.c_str());
      co_return 23;
    }
  }
  verbose_observer watcher;
  http::call_options call;
  if (s.verbose) call.observer = &watcher;
  std::error_code write_error;
  bool discard = false;  // -f and an HTTP error: no body output, as curl
  call.on_head = [&](const http::client_response& head) {
    if (s.fail_on_http && head.status >= 400) {
      discard = true;
      return;
    }
    if (!s.include) return;
    std::string text = "HTTP/1." + std::to_string(head.version_minor) + " " +
                       std::to_string(head.status) + " " + head.reason + "\r\n";
    for (const auto& f : head.headers)
      text += std::string(f.name) + ": " + std::string(f.value) + "\r\n";
    text += "\r\n";
    std::fwrite(text.data(), 1, text.size(), out);
  };
  call.sink = [&](std::string_view piece) -> asio::awaitable<std::error_code> {
    if (discard) co_return std::error_code{};
    if (std::fwrite(piece.data(), 1, piece.size(), out) != piece.size())
      write_error = std::make_error_code(std::errc::io_error);
    co_return write_error;
  };

  auto res = co_await client.send(s.req, std::move(call));
  int code = 0;
  if (!res) {
    std::fprintf(stderr, "trellis-fetch: %s: %s\n", s.req.url.c_str(), res.error().message().c_str());
    code = write_error ? 23 : exit_code(res.error());
  } else {
    std::fflush(out);  // the body before the timing lines, when both go to one terminal
    if (s.fail_on_http && res->status >= 400) {
      std::fprintf(stderr, "trellis-fetch: %s: the server answered %d\n", s.req.url.c_str(),
                   res->status);
      code = 22;
    }
    if (s.timing) {
      const auto ms = [](std::chrono::microseconds d) { return d.count() / 1000.0; };
      const auto& t = res->timing;
      std::fprintf(stderr,
                   "dns         %9.3f ms\n"
                   "connect     %9.3f ms\n"
                   "tls         %9.3f ms\n"
                   "first byte  %9.3f ms\n"
                   "total       %9.3f ms\n"
                   "reused      %s\n"
                   "redirects   %u\n",
                   ms(t.dns), ms(t.connect), ms(t.tls), ms(t.first_byte), ms(t.total),
                   t.reused ? "yes" : "no", res->redirects);
    }
  }
  if (out != stdout) std::fclose(out);
  else std::fflush(stdout);
  co_return code;
}

}  // namespace

int main(int argc, char** argv) {
  settings s = parse(argc, argv);
  asio::io_context ctx(1);
  int code = 1;
  asio::co_spawn(ctx, fetch(std::move(s)), [&](std::exception_ptr e, int c) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        std::fprintf(stderr, "trellis-fetch: %s\n", x.what());
      }
      code = 2;
      return;
    }
    code = c;
  });
  try {
    ctx.run();
  } catch (const std::exception& x) {
    std::fprintf(stderr, "trellis-fetch: %s\n", x.what());
    return 2;
  }
  return code;
}
