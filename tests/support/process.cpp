#include "support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <utility>

extern char** environ;

namespace trellis::test {
namespace {

using std::chrono::milliseconds;
using clock = std::chrono::steady_clock;

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::system_category(), what);
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Closes a set of descriptors when the constructor fails half-way.
struct fd_guard {
  std::vector<int*> fds;
  ~fd_guard() {
    for (int* fd : fds) close_fd(*fd);
  }
};

}  // namespace

namespace detail {

// Text captured from the child, appended by the reader thread.
struct process_output {
  mutable std::mutex mutex;
  std::condition_variable changed;
  std::string text[2];  // [0] stdout, [1] stderr
  bool closed[2] = {false, false};

  void append(int which, const char* data, std::size_t n) {
    {
      std::lock_guard lock(mutex);
      text[which].append(data, n);
    }
    changed.notify_all();
  }
  void close(int which) {
    {
      std::lock_guard lock(mutex);
      closed[which] = true;
    }
    changed.notify_all();
  }
  // After the child exits its output may still sit in the pipes; waits
  // (boundedly: a grandchild may hold them open) until both reach EOF.
  void wait_closed(milliseconds timeout) {
    std::unique_lock lock(mutex);
    changed.wait_for(lock, timeout, [&] { return closed[0] && closed[1]; });
  }
};

}  // namespace detail

namespace {

using detail::process_output;

// Drains the child's stdout and stderr until both reach EOF or `stop_fd`
// is signalled, so that the child never blocks writing to a full pipe.
void read_loop(const std::shared_ptr<process_output>& out, int out_fd, int err_fd, int stop_fd) {
  pollfd fds[3] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
  char buf[16 * 1024];
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[2].revents != 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        out->append(i, buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close_fd(fds[i].fd);  // poll ignores negative descriptors
        out->close(i);
      }
    }
  }
  for (int i = 0; i < 2; ++i) {
    if (fds[i].fd >= 0) close_fd(fds[i].fd);
    out->close(i);
  }
}

}  // namespace

std::string exit_status::describe() const {
  if (signal != 0)
    return "killed by signal " + std::to_string(signal) + " (" + ::strsignal(signal) + ")";
  return "exit code " + std::to_string(code);
}

process::process(std::vector<std::string> argv, options opts) {
  if (argv.empty()) throw std::invalid_argument("process: empty argv");
  for (const auto& a : argv) command_ += (command_.empty() ? "" : " ") + a;

  // Every descriptor is close-on-exec, so children spawned concurrently by
  // other threads do not inherit our ends; posix_spawn's dup2 onto 0/1/2
  // clears the flag for the child's copies only.
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  int stop = -1;
  fd_guard guard{{&in[0], &in[1], &out[0], &out[1], &err[0], &err[1], &stop}};
  // stdin is a socketpair rather than a pipe: send(MSG_NOSIGNAL) then
  // reports a vanished reader as EPIPE instead of killing the test binary
  // with SIGPIPE.
  if (opts.pipe_stdin && ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0)
    throw_errno(errno, "socketpair");
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) throw_errno(errno, "pipe2");
  stop = ::eventfd(0, EFD_CLOEXEC);
  if (stop < 0) throw_errno(errno, "eventfd");

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (opts.pipe_stdin)
    posix_spawn_file_actions_adddup2(&actions, in[1], STDIN_FILENO);
  else
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);

  // The child starts with default signal handling and nothing blocked,
  // whatever the test runner changed for itself.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::vector<char*> cargv;
  cargv.reserve(argv.size() + 1);
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  // glibc's posix_spawnp reports exec failures (ENOENT, EACCES) here.
  const int rc = ::posix_spawnp(&pid_, cargv[0], &actions, &attr, cargv.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw_errno(rc, "cannot start '" + argv[0] + "'");

  close_fd(in[1]);
  close_fd(out[1]);
  close_fd(err[1]);
  try {
    output_ = std::make_shared<process_output>();
    reader_ = std::thread(read_loop, output_, out[0], err[0], stop);
  } catch (...) {
    // No destructor runs for a half-built object: do not leave the child behind.
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    throw;
  }
  // The reader owns the output pipes now; stop stays ours (the destructor
  // signals and closes it).
  out[0] = err[0] = -1;
  stdin_fd_ = std::exchange(in[0], -1);
  stop_fd_ = std::exchange(stop, -1);
}

process::~process() {
  kill();
  if (!status_) reap(0);
  close_stdin();
  // Usually the reader has already seen EOF; a grandchild that inherited
  // the pipes could keep them open, so tell it to stop regardless.
  const std::uint64_t one = 1;
  (void)!::write(stop_fd_, &one, sizeof one);
  if (reader_.joinable()) reader_.join();
  close_fd(stop_fd_);
}

void process::reap(int wait_flags) {
  if (status_) return;
  int st = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &st, wait_flags);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) return;
  exit_status s;
  if (WIFEXITED(st)) s.code = WEXITSTATUS(st);
  if (WIFSIGNALED(st)) s.signal = WTERMSIG(st);
  status_ = s;
}

bool process::write_stdin(std::string_view data, milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  while (!data.empty()) {
    const ssize_t n = ::send(stdin_fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return false;  // EPIPE: the child is gone
    // The child is not reading (yet): wait for room, up to the deadline.
    const auto left = std::chrono::ceil<milliseconds>(deadline - clock::now());
    if (left.count() <= 0) return false;
    pollfd p{stdin_fd_, POLLOUT, 0};
    ::poll(&p, 1, static_cast<int>(left.count()));
  }
  return true;
}

void process::close_stdin() {
  close_fd(stdin_fd_);
}

std::optional<exit_status> process::wait_for(milliseconds timeout) {
  // Polling waitpid with a short, growing sleep: simple, and a test that
  // waits for a child rarely cares about the last millisecond.
  const auto deadline = clock::now() + timeout;
  auto nap = milliseconds(1);
  for (;;) {
    reap(WNOHANG);
    if (status_) break;
    const auto now = clock::now();
    if (now >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::min<clock::duration>(nap, deadline - now));
    nap = std::min(nap * 2, milliseconds(20));
  }
  // Let the reader collect what the child wrote just before exiting.
  output_->wait_closed(milliseconds(1000));
  return status_;
}

exit_status process::wait_or_kill(milliseconds timeout, milliseconds grace) {
  if (auto s = wait_for(timeout)) return *s;
  terminate();
  if (auto s = wait_for(grace)) return *s;
  kill();
  reap(0);
  output_->wait_closed(milliseconds(1000));
  return *status_;
}

bool process::running() {
  reap(WNOHANG);
  return !status_;
}

void process::terminate() {
  if (running()) ::kill(pid_, SIGTERM);
}

void process::kill() {
  if (running()) ::kill(pid_, SIGKILL);
}

std::string process::out() const {
  std::lock_guard lock(output_->mutex);
  return output_->text[0];
}

std::string process::err() const {
  std::lock_guard lock(output_->mutex);
  return output_->text[1];
}

bool process::wait_for_output(std::string_view needle, milliseconds timeout,
                              bool from_stderr) const {
  const int which = from_stderr ? 1 : 0;
  std::unique_lock lock(output_->mutex);
  output_->changed.wait_for(lock, timeout, [&] {
    return output_->text[which].find(needle) != std::string::npos || output_->closed[which];
  });
  return output_->text[which].find(needle) != std::string::npos;
}

run_result run(std::vector<std::string> argv, std::string_view input, milliseconds timeout) {
  process p(std::move(argv), {.pipe_stdin = true});
  (void)p.write_stdin(input);  // false if the child ignores stdin: not an error here
  p.close_stdin();
  run_result r;
  if (auto s = p.wait_for(timeout)) {
    r.status = *s;
  } else {
    r.timed_out = true;
    r.status = p.wait_or_kill(milliseconds(0));
  }
  r.out = p.out();
  r.err = p.err();
  return r;
}

std::optional<std::string> find_program(std::string_view name) {
  auto executable = [](const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
           ::access(path.c_str(), X_OK) == 0;
  };
  if (name.empty()) return std::nullopt;
  if (name.find('/') != std::string_view::npos) {
    std::string path(name);
    return executable(path) ? std::optional(path) : std::nullopt;
  }
  const char* env = std::getenv("PATH");
  std::string_view dirs = env ? env : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const auto colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    if (dir.empty()) dir = ".";  // an empty PATH entry means the current directory
    std::string path = dir + "/" + std::string(name);
    if (executable(path)) return path;
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  return std::nullopt;
}

bool program_exists(std::string_view name) {
  return find_program(name).has_value();
}

std::optional<std::uint16_t> logged_port(std::string_view log, std::string_view host) {
  const std::string key = "address=" + std::string(host) + ":";
  const auto at = log.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  std::uint32_t port = 0;
  std::size_t i = at + key.size(), digits = 0;
  for (; i < log.size() && log[i] >= '0' && log[i] <= '9' && digits < 6; ++i, ++digits)
    port = port * 10 + static_cast<std::uint32_t>(log[i] - '0');
  if (digits == 0 || port == 0 || port > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(port);
}

}  // namespace trellis::test
