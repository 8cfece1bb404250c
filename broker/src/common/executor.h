// The Executor seam: run work later or after a delay, without naming Asio. server.cc implements
// it over asio::io_context; tests can implement it with a manual clock.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

namespace quorumq::broker {

class TimerHandle {
 public:
  virtual ~TimerHandle() = default;
  // The callback runs soon with cancelled = true (unless it already ran).
  virtual void cancel() = 0;
};

class Executor {
 public:
  virtual ~Executor() = default;
  virtual void post(std::function<void()> fn) = 0;
  // fn(false) after `delay`, or fn(true) once cancel() is called first. Runs exactly once.
  virtual std::shared_ptr<TimerHandle> run_after(std::chrono::milliseconds delay, std::function<void(bool)> fn) = 0;
};

}  // namespace quorumq::broker
