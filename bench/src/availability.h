// Availability: measures, per injected fault and per affected partition, the unavailability
// window = fault time -> first acknowledgement on that partition of a message sent at or after
// the fault. Counting only messages sent after the fault matters: an answer already on its way
// from the old leader when it died says nothing about recovery, while nothing sent later can
// be acknowledged until a working leader (and, for acks=quorum, a majority) exists.
//
// From the windows it derives MTTR (mean, p99, max), and availability = MTBF / (MTBF + MTTR)
// with the configured MTBF (the fault interval), per partition and overall.
//
// Thread-safe: the chaos thread opens faults, producers' callback threads report acks.
// Times are steady-clock nanoseconds.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace quorumq::bench {

struct FaultRecord {
  std::string kind;        // kill-leader, pause-leader, restart-follower
  int victim = -1;         // broker node id
  std::int64_t at_ns = 0;  // relative to the run start
  // Per affected partition: window in ns; -1 if no acknowledgement came before the run ended.
  std::map<std::int32_t, std::int64_t> window_ns;
};

struct AvailabilityStats {
  double mtbf_s = 0;
  std::uint64_t faults = 0;
  std::uint64_t windows = 0;       // (fault, partition) pairs measured
  std::uint64_t unrecovered = 0;   // windows still open at the end (counted up to the end)
  double mttr_mean_s = 0, mttr_p99_s = 0, mttr_max_s = 0;
  double availability = 1.0;       // MTBF / (MTBF + mean MTTR)
  struct PerPartition {
    std::uint64_t faults = 0;
    double mttr_mean_s = 0, mttr_max_s = 0;
    double availability = 1.0;
  };
  std::map<std::int32_t, PerPartition> partitions;
};

class AvailabilityTracker {
 public:
  AvailabilityTracker(std::int64_t start_ns, double mtbf_s, std::int32_t partitions)
      : start_ns_(start_ns), mtbf_s_(mtbf_s), partitions_(partitions) {}

  // A fault hit at fault_ns (absolute steady ns); these partitions lose service until recovery.
  void open_fault(std::string kind, int victim, std::int64_t fault_ns, const std::set<std::int32_t>& partitions);
  // A message sent at send_ns on `partition` was acknowledged at ack_ns.
  void on_ack(std::int32_t partition, std::int64_t send_ns, std::int64_t ack_ns);
  // Windows still open are closed at end_ns and counted as unrecovered.
  AvailabilityStats finish(std::int64_t end_ns);
  std::vector<FaultRecord> faults() const;

 private:
  struct Open {
    std::size_t fault;
    std::int64_t fault_ns;
  };
  const std::int64_t start_ns_;
  const double mtbf_s_;
  const std::int32_t partitions_;
  mutable std::mutex mu_;
  std::atomic<int> open_count_{0};  // lets on_ack skip the lock when no fault is open
  std::vector<FaultRecord> faults_;
  std::multimap<std::int32_t, Open> open_;  // partition -> open windows
  std::set<std::pair<std::size_t, std::int32_t>> unrecovered_;
};

}  // namespace quorumq::bench
