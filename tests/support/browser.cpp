#include "support/browser.hpp"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

namespace trellis::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// Chromium's log lines start "[pid:tid:..."; anything else is the rest of
// a multi-line message, or the launcher script talking.
bool starts_log_line(std::string_view line) {
  return line.size() > 1 && line[0] == '[' && line[1] >= '0' && line[1] <= '9';
}

// The page's console messages in Chromium's stderr log: the text after
// "] " on the lines tagged CONSOLE ("INFO:CONSOLE:12]" in Chromium 156,
// "INFO:CONSOLE(12)]" before), with the lines that continue a multi-line
// message.
std::vector<std::string> console_messages(const std::string& log) {
  std::vector<std::string> out;
  bool in_message = false;
  std::size_t pos = 0;
  while (pos < log.size()) {
    std::size_t end = log.find('\n', pos);
    if (end == std::string::npos) end = log.size();
    const std::string_view line(log.data() + pos, end - pos);
    pos = end + 1;
    if (starts_log_line(line)) {
      const std::size_t close = line.find("] ");
      const std::size_t tag = line.find(":CONSOLE");
      in_message = close != std::string_view::npos && tag != std::string_view::npos && tag < close;
      if (in_message) out.emplace_back(line.substr(close + 2));
    } else if (in_message) {
      out.back().append("\n").append(line);
    }
  }
  return out;
}

std::string decode_entities(std::string_view s) {
  static constexpr std::pair<std::string_view, std::string_view> k_entities[] = {
      {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&nbsp;", "\u00a0"}};
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    bool replaced = false;
    if (s[i] == '&')
      for (const auto& [entity, text] : k_entities)
        if (s.substr(i).starts_with(entity)) {
          out += text;
          i += entity.size();
          replaced = true;
          break;
        }
    if (!replaced) out += s[i++];
  }
  return out;
}

// The start tag (from '<' to '>') that holds `needle`, where needle is
// found at `at`; empty when `at` is npos or not inside a tag.
std::string_view tag_around(std::string_view html, std::size_t at) {
  if (at == std::string_view::npos) return {};
  const std::size_t open = html.rfind('<', at);
  const std::size_t close = html.find('>', at);
  if (open == std::string_view::npos || close == std::string_view::npos) return {};
  const std::string_view tag = html.substr(open, close + 1 - open);
  // A '>' between the '<' and the needle means the needle is text, not an
  // attribute.
  if (tag.substr(0, at - open).find('>') != std::string_view::npos) return {};
  return tag;
}

std::optional<std::string> attribute_of(std::string_view tag, const std::string& attribute) {
  const std::string needle = " " + attribute + "=\"";
  const std::size_t at = tag.find(needle);
  if (at == std::string_view::npos) return std::nullopt;
  const std::size_t begin = at + needle.size();
  const std::size_t end = tag.find('"', begin);
  if (end == std::string_view::npos) return std::nullopt;
  return decode_entities(tag.substr(begin, end - begin));
}

std::size_t find_id(std::string_view html, const std::string& id) {
  const std::string needle = " id=\"" + id + "\"";
  for (std::size_t at = html.find(needle); at != std::string_view::npos;
       at = html.find(needle, at + 1))
    if (!tag_around(html, at).empty()) return at;
  return std::string_view::npos;
}

}  // namespace

std::optional<std::string> find_browser() {
  if (::access("/usr/bin/chromium", X_OK) == 0) return std::string("/usr/bin/chromium");
  for (const char* name : {"chromium", "chromium-browser"})
    if (auto path = find_program(name)) return path;
  return std::nullopt;
}

std::string make_temp_dir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/" + prefix + "XXXXXX";
  if (!::mkdtemp(tmpl.data()))
    throw std::system_error(errno, std::system_category(), "mkdtemp " + tmpl);
  return tmpl;
}

std::vector<std::string> browser_result::uncaught() const {
  std::vector<std::string> out;
  // "Uncaught TypeError: ..." and "Uncaught (in promise) ...", quoted.
  for (const auto& m : console)
    if (m.starts_with("\"Uncaught ")) out.push_back(m);
  return out;
}

std::string browser_result::describe() const {
  std::string text = "browser: " + command + "\n";
  text += timed_out ? "timed out and was killed\n" : "ended: " + status.describe() + "\n";
  text += std::to_string(console.size()) + " console message(s)\n";
  for (const auto& m : console) text += "  console: " + m + "\n";
  constexpr std::size_t k_tail = 4000;
  text += "log (end):\n";
  text += log.size() > k_tail ? log.substr(log.size() - k_tail) : log;
  return text;
}

browser_result load_page(const std::string& url, const browser_options& options) {
  const std::optional<std::string> program = find_browser();
  if (!program) throw std::runtime_error("load_page: no chromium installed");
  const std::string profile = make_temp_dir("trellis-chromium-");

  std::vector<std::string> argv;
  // In a session (and process group) of its own, so that a browser that
  // hangs is killed with its renderer and GPU processes, not just the
  // parent. setsid is in util-linux, on every Debian system.
  const std::optional<std::string> setsid = find_program("setsid");
  if (setsid) argv.push_back(*setsid);
  argv.insert(
      argv.end(),
      {
          *program,
          "--headless",
          // Tests run as root, which the sandbox refuses.
          "--no-sandbox",
          "--disable-gpu",
          "--user-data-dir=" + profile,
          "--no-first-run",
          "--no-default-browser-check",
          // Containers often have a 64 MB /dev/shm, too small for
          // a screenshot's shared memory.
          "--disable-dev-shm-usage",
          // Loopback only: an http_proxy in the environment must
          // not get between the page and the test's servers.
          "--no-proxy-server",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--disable-extensions",
          "--mute-audio",
          "--hide-scrollbars",
          "--enable-logging=stderr",
          "--v=0",
          "--virtual-time-budget=" + std::to_string(options.virtual_time.count()),
          "--window-size=" + std::to_string(options.width) + "," + std::to_string(options.height),
      });
  if (options.dump_dom) argv.push_back("--dump-dom");
  if (!options.screenshot.empty()) argv.push_back("--screenshot=" + options.screenshot);
  argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
  argv.push_back(url);

  browser_result r;
  {
    process browser(argv);
    r.command = browser.command();
    const pid_t group = browser.pid();
    // Until the browser process exits (bounded by the timeout); its helper
    // processes may outlive it for a moment, holding the output pipes, and
    // are not waited for: the group is killed as soon as it is done.
    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
    while (browser.running() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
    r.timed_out = browser.running();
    if (setsid) ::kill(-group, SIGKILL);
    if (r.timed_out) browser.kill();
    r.status = browser.wait_or_kill(5s, 0ms);
    r.log = browser.err();
    if (options.dump_dom) r.dom = browser.out();
  }
  r.console = console_messages(r.log);
  std::error_code ignored;
  fs::remove_all(profile, ignored);
  return r;
}

std::optional<std::string> dom_attribute(const std::string& html, const std::string& id,
                                         const std::string& attribute) {
  const std::string_view tag = tag_around(html, find_id(html, id));
  if (tag.empty()) return std::nullopt;
  return attribute_of(tag, attribute);
}

std::optional<std::string> body_attribute(const std::string& html, const std::string& attribute) {
  const std::size_t at = html.find("<body");
  if (at == std::string::npos) return std::nullopt;
  const std::size_t close = html.find('>', at);
  if (close == std::string::npos) return std::nullopt;
  return attribute_of(std::string_view(html).substr(at, close + 1 - at), attribute);
}

std::optional<std::string> dom_text(const std::string& html, const std::string& id) {
  const std::size_t at = find_id(html, id);
  if (at == std::string::npos) return std::nullopt;
  const std::size_t begin = html.find('>', at);
  if (begin == std::string::npos) return std::nullopt;
  const std::size_t end = html.find('<', begin);
  return decode_entities(std::string_view(html).substr(begin + 1, end - begin - 1));
}

}  // namespace trellis::test
