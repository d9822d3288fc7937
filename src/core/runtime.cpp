#include "trellis/core/runtime.hpp"

#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <cassert>
#include <csignal>
#include <exception>

#include "trellis/core/log.hpp"

namespace trellis::core {

// --- drain_hook -------------------------------------------------------------

drain_hook& drain_hook::operator=(drain_hook&& o) noexcept {
  if (this != &o) {
    reset();
    registry_ = std::move(o.registry_);
    id_ = o.id_;
  }
  return *this;
}

void drain_hook::reset() noexcept {
  if (registry_) {
    std::lock_guard lock(registry_->mutex);
    registry_->hooks.erase(id_);
  }
  registry_.reset();
}

// --- worker -----------------------------------------------------------------

// Each io_context is run by exactly one thread, and a socket is only ever
// used by the worker that owns it, so the reactor's per-socket locks are
// dead weight: ASIO_CONCURRENCY_HINT_UNSAFE_IO drops them (and tells Asio
// one thread runs the loop). The scheduler's queue stays locked, because
// drain(), stop() and spawn() post to a worker from other threads.
worker::worker(std::size_t index)
    : index_(index), context_(ASIO_CONCURRENCY_HINT_UNSAFE_IO), guard_(context_.get_executor()) {}

drain_hook worker::on_drain(std::function<void()> fn) {
  std::uint64_t id = 0;
  {
    std::lock_guard lock(hooks_->mutex);
    id = ++hooks_->next;
    hooks_->hooks.emplace(id, std::move(fn));
  }
  // Checked after registering: a drain that starts in between either sees
  // the hook or is seen here; run_hook makes running it twice impossible.
  if (draining()) asio::post(context_, [this, id] { run_hook(id); });
  return drain_hook(hooks_, id);
}

void worker::run_hook(std::uint64_t id) {
  std::function<void()> fn;
  {
    std::lock_guard lock(hooks_->mutex);
    auto it = hooks_->hooks.find(id);
    if (it == hooks_->hooks.end()) return;  // unregistered, or already run
    fn = std::move(it->second);
    hooks_->hooks.erase(it);  // each hook runs at most once
  }
  fn();  // outside the lock: a hook may register or remove others
}

void worker::start_drain() {
  if (draining_.exchange(true, std::memory_order_acq_rel)) return;
  std::vector<std::uint64_t> ids;
  {
    std::lock_guard lock(hooks_->mutex);
    ids.reserve(hooks_->hooks.size());
    for (const auto& [id, fn] : hooks_->hooks) ids.push_back(id);
  }
  for (std::uint64_t id : ids) run_hook(id);  // a hook may remove others
  // Without the guard, run() returns as soon as the last task finishes.
  guard_.reset();
}

void worker::spawn(asio::awaitable<void> task, std::string_view what) {
  tasks_.fetch_add(1, std::memory_order_acq_rel);
  asio::co_spawn(context_, std::move(task), [this, name = std::string(what)](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log::error("task failed", {{"task", name}, {"worker", index_}, {"error", ex.what()}});
      } catch (...) {
        log::error("task failed",
                   {{"task", name}, {"worker", index_}, {"error", "unknown exception"}});
      }
    }
    task_done();
  });
}

void worker::task_done() {
  tasks_.fetch_sub(1, std::memory_order_acq_rel);
}

// --- runtime ----------------------------------------------------------------

runtime::runtime(runtime_options options) : options_(options), control_(1) {
  std::size_t n = options_.workers;
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  workers_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) workers_.push_back(std::unique_ptr<worker>(new worker(i)));
}

runtime::~runtime() {
  // run() has joined its threads before returning; a runtime that never ran
  // has none. What is left are suspended coroutines, destroyed with their
  // io_context (see worker's member order), before the makers_ whose
  // closures they may refer to.
  workers_.clear();
}

void runtime::spawn_on_all(std::function<asio::awaitable<void>(worker&)> make,
                           std::string_view what) {
  using maker = std::function<asio::awaitable<void>(worker&)>;
  const maker* kept = nullptr;
  {
    std::lock_guard lock(makers_mutex_);
    kept = makers_.emplace_back(std::make_unique<maker>(std::move(make))).get();
  }
  for (auto& w : workers_) {
    asio::post(w->context_,
               [w = w.get(), kept, name = std::string(what)] { w->spawn((*kept)(*w), name); });
  }
}

void runtime::on_control(std::function<void()> fn) {
  asio::post(control_, std::move(fn));
}

void runtime::drain() {
  phase expected = phase::running;
  if (!phase_.compare_exchange_strong(expected, phase::draining, std::memory_order_acq_rel)) return;
  log::info("draining",
            {{"workers", workers_.size()}, {"timeout_ms", options_.drain_timeout.count()}});
  for (auto& w : workers_) asio::post(w->context_, [w = w.get()] { w->start_drain(); });
  on_control([this] {
    auto timer = std::make_shared<asio::steady_timer>(control_, options_.drain_timeout);
    timer->async_wait([this, timer](std::error_code ec) {
      if (ec) return;
      std::size_t left = 0;
      for (auto& w : workers_) left += w->tasks();
      log::warn("drain deadline passed; stopping", {{"tasks_left", left}});
      stop();
    });
  });
}

void runtime::stop() {
  phase_.store(phase::stopped, std::memory_order_release);
  for (auto& w : workers_) w->context_.stop();
  control_.stop();
}

void runtime::worker_idle() {
  if (running_workers_.fetch_sub(1, std::memory_order_acq_rel) == 1) control_.stop();
}

void runtime::run() {
  assert(!ran_ && "a runtime runs once");
  ran_ = true;
  auto control_guard = asio::make_work_guard(control_);

  std::optional<asio::signal_set> signals;
  std::function<void(std::error_code, int)> on_signal;
  if (options_.handle_signals) {
    signals.emplace(control_, SIGINT, SIGTERM);
    on_signal = [this, &signals, &on_signal](std::error_code ec, int sig) {
      if (ec) return;
      if (phase_.load(std::memory_order_acquire) == phase::running) {
        log::info("signal received; draining (send again to stop at once)", {{"signal", sig}});
        drain();
        signals->async_wait(on_signal);
      } else {
        log::warn("second signal; stopping now", {{"signal", sig}});
        stop();
      }
    };
    signals->async_wait(on_signal);
  }

  running_workers_.store(workers_.size(), std::memory_order_release);
  std::vector<std::thread> threads;
  threads.reserve(workers_.size());
  for (auto& w : workers_) {
    threads.emplace_back([this, w = w.get()] {
      // A handler that throws out of run() is a bug somewhere; log it and
      // keep the worker alive rather than losing every connection on it.
      for (;;) {
        try {
          w->context_.run();
          break;
        } catch (const std::exception& e) {
          log::error("uncaught exception in worker", {{"worker", w->index()}, {"error", e.what()}});
        }
      }
      worker_idle();
    });
  }
  control_.run();
  for (auto& w : workers_) w->context_.stop();  // control ended: nothing may keep running
  for (auto& t : threads) t.join();
  if (signals) signals->cancel();
}

}  // namespace trellis::core
