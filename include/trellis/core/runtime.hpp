// runtime: one io_context per worker thread, signals, graceful drain.
//
// The shared-nothing execution model of trellis (nginx's worker processes,
// Seastar's shards, in threads): N workers, each an io_context run by
// exactly one thread; a connection accepted on a worker stays there, so its
// state needs no locks. The runtime owns the threads and the shutdown:
//
//   core::runtime rt;                                  // one worker per core
//   rt.spawn_on_all([](core::worker& w) { return serve(w); }, "echo");
//   rt.run();                                          // blocks until shut down
//
// Shutdown has two steps. drain() (or the first SIGINT/SIGTERM) tells every
// worker to stop taking new work: its drain hooks run (listeners close their
// acceptors, servers close idle connections) and run() returns as soon as
// every task has finished. If tasks are still running when drain_timeout
// passes, or on stop() (or a second signal), the workers stop at once and
// the coroutines still suspended are destroyed with their io_context, their
// destructors closing sockets and freeing memory: nothing leaks.
//
// Every coroutine the runtime runs is owned: worker::spawn() counts it, and
// an exception escaping it is logged (with the name given) rather than lost.
//
// Thread-safety: drain(), stop() and spawn_on_all() may be called from any
// thread, and so may a worker's spawn() and on_drain().
#pragma once

#include <asio/awaitable.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace trellis::core {

struct runtime_options {
  // Worker threads, each with its own io_context. 0 means one per core
  // (std::thread::hardware_concurrency). More workers than cores only adds
  // context switches; fewer leaves cores idle under load.
  std::size_t workers = 0;
  // How long a graceful drain may take before the remaining work is cut
  // off. Long enough for in-flight requests to finish; short enough that a
  // deploy does not wait on a slow client.
  std::chrono::milliseconds drain_timeout{10'000};
  // Install SIGINT/SIGTERM handlers while run() runs: the first signal
  // drains, a second one stops at once. Off for embedders that own signals.
  bool handle_signals = true;
};

class runtime;

namespace detail {
// A worker's drain hooks. Shared with the hook handles, so that a handle
// that outlives its runtime (a server destroyed after the runtime, say)
// unregisters from a registry that still exists.
struct hook_registry {
  std::mutex mutex;  // registration may come from any thread
  std::map<std::uint64_t, std::function<void()>> hooks;
  std::uint64_t next = 0;
};
}  // namespace detail

// Unregisters a drain hook when destroyed (or reset). May outlive the
// runtime it came from.
class drain_hook {
 public:
  drain_hook() = default;
  drain_hook(drain_hook&& o) noexcept = default;
  drain_hook& operator=(drain_hook&& o) noexcept;
  ~drain_hook() { reset(); }
  void reset() noexcept;

 private:
  friend class worker;
  drain_hook(std::shared_ptr<detail::hook_registry> registry, std::uint64_t id)
      : registry_(std::move(registry)), id_(id) {}
  std::shared_ptr<detail::hook_registry> registry_;
  std::uint64_t id_ = 0;
};

class worker {
 public:
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  asio::io_context& context() noexcept { return context_; }
  asio::io_context::executor_type executor() noexcept { return context_.get_executor(); }
  std::size_t index() const noexcept { return index_; }
  // True once this worker has started draining.
  bool draining() const noexcept { return draining_.load(std::memory_order_acquire); }
  // Tasks spawned on this worker that have not finished yet.
  std::size_t tasks() const noexcept { return tasks_.load(std::memory_order_acquire); }

  // Runs `fn` on this worker's thread when the worker starts draining (at
  // once, posted, if it already has). Keep the returned hook alive for as
  // long as fn may run. Any thread.
  [[nodiscard]] drain_hook on_drain(std::function<void()> fn);

  // Runs `task` on this worker as an owned coroutine: counted until it
  // finishes, its exception (if any) logged with `what`. Any thread.
  void spawn(asio::awaitable<void> task, std::string_view what);

 private:
  friend class runtime;
  explicit worker(std::size_t index);
  void start_drain();  // on this worker's thread
  void task_done();

  void run_hook(std::uint64_t id);

  std::size_t index_;
  std::shared_ptr<detail::hook_registry> hooks_ = std::make_shared<detail::hook_registry>();
  std::atomic<bool> draining_{false};
  std::atomic<std::size_t> tasks_{0};
  // Declared after everything a suspended coroutine may touch when the
  // io_context destroys it, so that the context, and the frames it owns,
  // go first.
  asio::io_context context_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_;
};

class runtime {
 public:
  explicit runtime(runtime_options options = {});
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  std::size_t size() const noexcept { return workers_.size(); }
  worker& operator[](std::size_t i) noexcept { return *workers_[i]; }
  const runtime_options& options() const noexcept { return options_; }

  // On every worker's thread, calls make(worker) and runs the coroutine it
  // returns as an owned task. Works before or during run(). The runtime
  // keeps `make` alive until it is destroyed, so `make` may be a coroutine
  // lambda with captures: its coroutines refer to the closure, which must
  // outlive them.
  void spawn_on_all(std::function<asio::awaitable<void>(worker&)> make, std::string_view what);

  // Runs every worker on its own thread and blocks until shutdown completes
  // (see the top of this file). REQUIRES: not already running; a runtime
  // runs once.
  void run();

  // Graceful shutdown: drain hooks run, run() returns when all tasks are
  // done or at drain_timeout. Any thread, any number of times.
  void drain();
  // Immediate shutdown. Any thread, any number of times.
  void stop();

  // True once drain() or stop() was called.
  bool stopping() const noexcept {
    return phase_.load(std::memory_order_acquire) != phase::running;
  }

 private:
  friend class worker;
  enum class phase : std::uint8_t { running, draining, stopped };
  void worker_idle();  // a worker's io_context ran out of work
  void on_control(std::function<void()> fn);

  runtime_options options_;
  std::vector<std::unique_ptr<worker>> workers_;
  asio::io_context control_;  // signals and the drain deadline, on run()'s thread
  std::atomic<phase> phase_{phase::running};
  std::atomic<std::size_t> running_workers_{0};
  bool ran_ = false;
  std::mutex makers_mutex_;
  std::vector<std::unique_ptr<std::function<asio::awaitable<void>(worker&)>>> makers_;
};

}  // namespace trellis::core
