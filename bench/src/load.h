// The load: producer and consumer threads over the SDK, and the counters and latency
// recorders they share with the live line, the report and the chaos tracker.
//
// Producers (one quorumq::Producer each, so P connections and P SDK I/O threads):
//  - closed loop: at most `window` messages of a producer unacknowledged; latency from send().
//  - open loop: message i of a producer is due at start + i / rate; the producer sleeps until
//    then, but if it falls behind (send() blocked, CPU busy) it does not skip or re-pace:
//    latency is measured from the due time, so a stall shows up in every message it delayed
//    (no coordinated omission).
// Consumers (one quorumq::Consumer each, one group): partitions split round-robin by assign(),
// so every partition is read by exactly one thread, in order. Each message's embedded due time
// gives the end-to-end latency; each (producer, seq) goes to the verifier.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "availability.h"
#include "histogram.h"
#include "options.h"
#include "verifier.h"

namespace quorumq::bench {

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A total and a per-interval histogram behind one lock (SDK I/O threads record concurrently).
class LatencyRecorder {
 public:
  void record(std::int64_t ns) {
    const auto v = static_cast<std::uint64_t>(ns < 0 ? 0 : ns);
    std::lock_guard lock(mu_);
    total_.record(v);
    interval_.record(v);
  }
  Histogram take_interval() {
    std::lock_guard lock(mu_);
    Histogram h = interval_;
    interval_.reset();
    return h;
  }
  Histogram total() const {
    std::lock_guard lock(mu_);
    return total_;
  }

 private:
  mutable std::mutex mu_;
  Histogram total_, interval_;
};

// Distinct error messages and how often each happened (the report shows the top few).
class ErrorLog {
 public:
  void add(const std::string& what) {
    std::lock_guard lock(mu_);
    ++counts_[what];
  }
  std::map<std::string, std::uint64_t> counts() const {
    std::lock_guard lock(mu_);
    return counts_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::uint64_t> counts_;
};

struct Counters {
  std::atomic<std::uint64_t> sent{0}, acked{0}, failed{0}, acked_bytes{0};
  std::atomic<std::uint64_t> consumed{0}, consumed_bytes{0}, consumer_errors{0}, consumer_restarts{0};
};

struct LoadContext {
  const BenchConfig& cfg;
  std::string topic;
  std::string bootstrap;
  std::uint32_t run_id = 0;
  std::int64_t start_ns = 0;   // run start (open-loop schedule origin)
  std::int64_t end_ns = 0;     // producers stop sending at this time (0: only --messages limits)
  Verifier& verifier;
  AvailabilityTracker* tracker = nullptr;  // only with --chaos
  Counters& counters;
  LatencyRecorder& ack_latency;
  LatencyRecorder& e2e_latency;
  ErrorLog& errors;
  std::atomic<bool>& stop_producing;
  std::atomic<bool>& stop_consuming;
};

// Runs one producer until its share of --messages is sent, end_ns passes or stop_producing;
// then flushes, so every send has completed (acked or failed) when it returns.
void run_producer(LoadContext& ctx, int index);
// Runs one consumer until stop_consuming.
void run_consumer(LoadContext& ctx, int index);

}  // namespace quorumq::bench
