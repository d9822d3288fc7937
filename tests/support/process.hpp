// process: run a peer program (openssl, curl, nginx, dig...) from a test.
//
// Tests talk to real peers on 127.0.0.1, so they start them as child
// processes: `process` spawns one from an argv (looked up on PATH, no shell,
// so no quoting pitfalls), optionally gives it a stdin the test writes to,
// and captures its stdout and stderr in the background so a chatty child
// never blocks on a full pipe. Every wait takes a timeout, and a child still
// running when its `process` is destroyed is killed and reaped: a test
// never hangs on, nor leaks, a peer.
//
//   if (!test::program_exists("openssl")) GTEST_SKIP() << "openssl not installed";
//   test::process server({"openssl", "s_server", "-accept", "4433", ...});
//   ...
//   auto done = test::run({"openssl", "version"});
//   EXPECT_TRUE(done.status.success()) << done.err;
//
// Thread-safety: a process object is used by one test thread; its output
// accessors may be called while the background reader appends.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace trellis::test {

namespace detail {
struct process_output;  // captured text, shared with the reader thread
}

// How a child ended.
struct exit_status {
  int code = -1;   // exit code when it exited, else -1
  int signal = 0;  // the signal that killed it, else 0
  bool success() const noexcept { return signal == 0 && code == 0; }
  // "exit code 0" or "killed by signal 9 (Killed)", for assertion messages.
  std::string describe() const;
};

class process {
 public:
  struct options {
    // Give the child a stdin that write_stdin() feeds. Default false: its
    // stdin is /dev/null, so a child that reads stdin (s_client) sees EOF
    // instead of stealing the test runner's terminal.
    bool pipe_stdin = false;
  };

  // Starts argv[0], searched on PATH, with arguments argv[1...].
  // REQUIRES: argv is not empty.
  // Throws std::system_error when the program cannot be started (not found,
  // not executable), naming it.
  explicit process(std::vector<std::string> argv, options opts);
  explicit process(std::vector<std::string> argv) : process(std::move(argv), options{}) {}
  // Kills the child if it still runs (SIGKILL), reaps it, stops the reader.
  ~process();
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  pid_t pid() const noexcept { return pid_; }
  // The command line, space-separated, for messages.
  const std::string& command() const noexcept { return command_; }

  // Writes all of `data` to the child's stdin. Returns false if the child
  // no longer reads it (it exited or closed stdin) or has not taken it all
  // within `timeout`; never raises SIGPIPE.
  // REQUIRES: started with pipe_stdin; close_stdin() not called.
  bool write_stdin(std::string_view data,
                   std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Closes the child's stdin, so it reads EOF. Idempotent.
  void close_stdin();

  // Waits up to `timeout` for the child to exit; nullopt if it still runs.
  // Once it has exited, out() and err() hold all it wrote (waiting up to 1 s
  // more for the pipes to drain, in case a grandchild still holds them).
  std::optional<exit_status> wait_for(std::chrono::milliseconds timeout);
  // Waits up to `timeout`; then asks it to stop (SIGTERM), waits up to
  // `grace`, and kills it (SIGKILL). Always returns how it ended.
  exit_status wait_or_kill(std::chrono::milliseconds timeout,
                           std::chrono::milliseconds grace = std::chrono::milliseconds(500));
  // True while the child has not exited (reaps it if it has).
  bool running();
  // Sends SIGTERM (terminate) or SIGKILL (kill). No-op once it has exited.
  void terminate();
  void kill();

  // Everything captured so far.
  std::string out() const;
  std::string err() const;
  // Waits up to `timeout` until stdout (or stderr, when from_stderr) contains
  // `needle`; true if it does. Returns false early when the child has closed
  // that stream (typically: it exited) without printing it.
  bool wait_for_output(std::string_view needle, std::chrono::milliseconds timeout,
                       bool from_stderr = false) const;

 private:
  void reap(int wait_flags);

  std::string command_;
  pid_t pid_ = -1;
  std::optional<exit_status> status_;
  int stdin_fd_ = -1;
  int stop_fd_ = -1;  // eventfd that tells the reader to stop
  std::shared_ptr<detail::process_output> output_;
  std::thread reader_;
};

// What run() saw.
struct run_result {
  exit_status status;
  bool timed_out = false;  // the child was killed after `timeout`
  std::string out;
  std::string err;
};

// Runs argv to completion: feeds it `input` on stdin (then EOF), kills it
// after `timeout`, and returns its status and output.
// Throws std::system_error when it cannot be started.
run_result run(std::vector<std::string> argv, std::string_view input = {},
               std::chrono::milliseconds timeout = std::chrono::seconds(30));

// The full path of `name` found on $PATH (or `name` itself when it contains
// a '/' and is executable); nullopt when there is none.
std::optional<std::string> find_program(std::string_view name);
// find_program(name).has_value(): lets a test GTEST_SKIP when a peer is missing.
bool program_exists(std::string_view name);

// The port in the first "address=<host>:<port>" of a trellis example's log
// (its "listening" line), for servers started with --port 0; nullopt when
// there is none.
std::optional<std::uint16_t> logged_port(std::string_view log, std::string_view host = "127.0.0.1");

}  // namespace trellis::test
