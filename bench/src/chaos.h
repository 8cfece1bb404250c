// ChaosDriver: injects the --chaos fault on a schedule into a spawned cluster while the load
// runs, and reports each fault to the AvailabilityTracker with the partitions it affects.
//
//   kill-leader:E        every E s: SIGKILL the leader of partition (k mod P) — affected: every
//                        partition it led — and restart it E/2 s later (same data, same ports).
//   pause-leader:E:F     every E s: SIGSTOP that leader, SIGCONT after F s.
//   restart-follower:E   every E s: SIGKILL a follower of partition (k mod P) and restart it at
//                        once — affected: every partition it hosts.
// Leaders come from the brokers' own /metrics (quorumq_partition_leader ... 1), replicas from
// the SDK's topic metadata.
//
// Runs on its own thread (start/stop). stop() returns only once every victim is running and
// resumed again, so the drain afterwards sees a whole cluster.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "availability.h"
#include "chaos_spec.h"
#include "local_cluster.h"

namespace quorumq::bench {

class ChaosDriver {
 public:
  ChaosDriver(ChaosSpec spec, LocalCluster& cluster, AvailabilityTracker& tracker, std::string topic,
              int partitions, std::map<std::int32_t, std::vector<int>> replicas, std::int64_t start_ns,
              std::int64_t end_ns);
  ~ChaosDriver() { stop(); }

  void start();
  void stop();
  // Notes on faults that could not be injected or victims that failed to come back.
  std::vector<std::string> notes() const;

 private:
  void run();
  bool sleep_until(std::int64_t t_ns);  // false when stopping
  void inject(std::uint64_t k);
  void note(std::string s);

  const ChaosSpec spec_;
  LocalCluster& cluster_;
  AvailabilityTracker& tracker_;
  const std::string topic_;
  const int partitions_;
  const std::map<std::int32_t, std::vector<int>> replicas_;
  const std::int64_t start_ns_;
  const std::int64_t end_ns_;  // no fault at or after this (0: none); a fault at the very end measures nothing

  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<std::string> notes_;
  // Victims to bring back: node -> due time (ns) and whether it was paused (else killed).
  struct Pending {
    std::int64_t due_ns;
    bool paused;
  };
  std::map<int, Pending> pending_;
  void recover_due(bool all);
};

}  // namespace quorumq::bench
