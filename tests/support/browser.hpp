// browser: load a page in headless Chromium from a test, and read back
// what the page became — its DOM, its console messages, a screenshot.
//
// Some behaviour only a browser checks: whether a CORS answer lets a
// script read a response, whether a page's script runs without errors
// and draws what it was given. load_page() runs the real browser on one
// URL, once, and returns when it is done:
//
//   REQUIRE_BROWSER();
//   auto page = test::load_page(server.url("/dashboard"), {.screenshot = dir + "/shot.png"});
//   EXPECT_TRUE(page.finished()) << page.describe();
//   EXPECT_THAT(page.dom, HasSubstr("data-rendered=\"true\""));
//   EXPECT_TRUE(page.console.empty()) << page.describe();
//
// Chromium runs with a fresh profile in a temporary directory (no state
// carried between loads), headless, without its sandbox (tests run as
// root, which the sandbox refuses), without a GPU and without a proxy.
// --virtual-time-budget lets the page run for that much *virtual* time:
// timers fire as fast as the page can process them, and virtual time
// stands still while a network request is pending, so a page polling
// every second sees five polls in a 5000 ms budget without the test
// waiting five seconds, and without depending on how fast the machine is.
// The browser then writes the DOM (--dump-dom) and/or a PNG of the window
// (--screenshot, --window-size) and exits. A browser that has not exited
// after `timeout` of real time (a request that never completes stops
// virtual time for good) is killed with all its child processes.
//
// Console messages: with --enable-logging=stderr Chromium prints each of
// the page's console messages on stderr as
//   [pid:tid:date:INFO:CONSOLE:12] "message", source: http://127.0.0.1:1234/ (12)
// (older versions print "CONSOLE(12)"); `console` holds the part after
// "] ". Chromium 156 logs every message of a web page at INFO, whatever
// its level — console.log, console.warn, console.error and uncaught
// exceptions ("Uncaught TypeError: ...") all look alike — so a test asks
// either for no console message at all (a quiet page) or for none that
// is an uncaught exception (uncaught()). Content-Security-Policy
// violations are reported there too; network failures ("Failed to load
// resource", CORS errors) are not: they only reach devtools, so a test
// reads a fetch()'s outcome from the DOM instead.
//
// Thread-safety: load_page() may be called from any thread; each call
// runs its own browser.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "support/process.hpp"

// Skips the test (visibly) when no Chromium is installed.
#define REQUIRE_BROWSER()                                                                 \
  do {                                                                                    \
    if (!::trellis::test::find_browser())                                                 \
      GTEST_SKIP() << "needs a headless browser: the `chromium` program (Debian package " \
                      "chromium) at /usr/bin/chromium or on PATH";                        \
  } while (0)

namespace trellis::test {

// The Chromium program: /usr/bin/chromium, else `chromium` or
// `chromium-browser` on PATH; nullopt when there is none.
std::optional<std::string> find_browser();

struct browser_options {
  // Virtual time the page may run before the DOM is dumped and the
  // screenshot taken (--virtual-time-budget). Default 5 s.
  std::chrono::milliseconds virtual_time{5000};
  // Write the DOM (as serialised after virtual_time) into browser_result::dom.
  bool dump_dom = true;
  // Where to write a PNG screenshot of the window; empty: none. The
  // directory must exist. Chromium 156 honours this together with
  // dump_dom in one run (both show the same moment).
  std::string screenshot{};
  // The window's size in CSS pixels (--window-size).
  int width = 1280;
  int height = 900;
  // Real time after which the browser is killed (with its children).
  std::chrono::milliseconds timeout{60000};
  // More command-line switches ("--lang=de").
  std::vector<std::string> extra_args{};
};

struct browser_result {
  std::string dom;                   // the serialised DOM (dump_dom), else ""
  std::vector<std::string> console;  // the page's console messages, in order
  exit_status status;                // how the browser ended
  bool timed_out = false;            // killed after options.timeout
  std::string log;                   // everything it wrote on stderr
  std::string command;               // the command line, for messages

  // The browser exited by itself with status 0 (not killed, no crash).
  bool finished() const noexcept { return !timed_out && status.success(); }
  // The console messages that report an uncaught exception or an
  // unhandled promise rejection.
  std::vector<std::string> uncaught() const;
  // The command, how it ended, the console messages and the end of the
  // log: for assertion messages.
  std::string describe() const;
};

// Loads `url` in a fresh headless Chromium and returns what it saw.
// Throws std::system_error when the browser cannot be started and
// std::runtime_error when there is none (use REQUIRE_BROWSER() first).
browser_result load_page(const std::string& url, const browser_options& options = {});

// The value of attribute `attribute` in the start tag of the element whose
// id is `id` in `html` (as --dump-dom serialises it: double quotes,
// entities for '"' and '&' only); nullopt when there is no such element or
// attribute. Enough for the attributes a test page sets on purpose; not an
// HTML parser.
std::optional<std::string> dom_attribute(const std::string& html, const std::string& id,
                                         const std::string& attribute);
// The same for the <body> element.
std::optional<std::string> body_attribute(const std::string& html, const std::string& attribute);
// The text of the element whose id is `id`: what lies between its start
// tag and the next tag, with &amp; &lt; &gt; &quot; &nbsp; decoded;
// nullopt when there is no such element.
std::optional<std::string> dom_text(const std::string& html, const std::string& id);

// A fresh temporary directory "<TMPDIR or /tmp>/<prefix>XXXXXX", for
// screenshots and other files a test leaves behind on purpose. Not removed.
std::string make_temp_dir(const std::string& prefix);

}  // namespace trellis::test
