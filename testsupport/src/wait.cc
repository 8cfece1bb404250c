#include "quorumq/testsupport/wait.h"

#include <thread>

namespace quorumq::testsupport {

bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);  // the polling interval of a condition, not a guess at timing
  }
}

}  // namespace quorumq::testsupport
