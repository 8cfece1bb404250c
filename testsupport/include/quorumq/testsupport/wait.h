// Polling a condition with a deadline: how tests and the bench wait for something to happen
// (a broker ready, a leader elected), instead of sleeping for a guessed time.
#pragma once

#include <chrono>
#include <functional>

namespace quorumq::testsupport {

// Calls `cond` every `interval` until it returns true (true) or `timeout` has passed (false).
bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval = std::chrono::milliseconds(5));

}  // namespace quorumq::testsupport
