// Idempotent-producer state of one partition: for each producer id, its epoch, the next
// sequence it may send and its last few durable batches, so a retried batch is recognised and
// answered with its original offset instead of being written twice (promise 4).
//
// The state is derived from the COMMITTED log (batch headers carry producer id, epoch and
// sequence): it is rebuilt from the committed tail at start-up and whenever this replica stops
// leading, and a replica applying the same log derives the same state. Uncommitted entries must
// never count: a retry answered "duplicate" for an entry that is later truncated is an
// acknowledged write that is lost (found by the chaos suite's power-loss fault). Not thread-safe: the owning Partition serialises access.
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

namespace quorumq::broker {

enum class SeqCheck {
  accept,         // next in sequence: write it
  duplicate,      // already durable: answer with `duplicate_offset`, write nothing
  in_flight,      // an earlier copy is being written right now: retry later
  out_of_order,   // a gap: the producer lost a batch; it must not be written
  fenced,         // an older epoch: a newer instance of this producer exists
};

class ProducerStateTable {
 public:
  static constexpr std::size_t kRecentBatches = 8;

  struct Result {
    SeqCheck check = SeqCheck::accept;
    std::int64_t duplicate_offset = -1;
  };
  // Decides about a batch and, on accept, reserves its sequence numbers.
  Result check_and_reserve(std::int64_t pid, std::int16_t epoch, std::int32_t base_seq, std::int32_t count);
  // The batch reserved by check_and_reserve is durable at `base_offset`.
  void on_durable(std::int64_t pid, std::int16_t epoch, std::int32_t base_seq, std::int32_t count,
                  std::int64_t base_offset);
  // The write of a reserved batch failed: forget reservations past what is durable.
  void on_failed(std::int64_t pid);
  // Replays a durable batch found in the log (start-up, or a follower applying entries) at log
  // entry `index` (0: unknown, e.g. a leader's own write before it commits).
  void replay(std::int64_t pid, std::int16_t epoch, std::int32_t base_seq, std::int32_t count,
              std::int64_t base_offset, std::uint64_t index = 0);
  // What check_and_reserve would answer, without reserving anything.
  Result peek(std::int64_t pid, std::int16_t epoch, std::int32_t base_seq, std::int32_t count) const {
    ProducerStateTable copy = *this;
    return copy.check_and_reserve(pid, epoch, base_seq, count);
  }
  void clear() { producers_.clear(); }
  std::size_t size() const { return producers_.size(); }

  // The durable part of one producer's state, as a snapshot stores it (reservations are never
  // part of it).
  struct Recent {
    std::int32_t first_seq;
    std::int32_t last_seq;
    std::int64_t base_offset;
  };
  struct Durable {
    std::int64_t pid;
    std::int16_t epoch;
    std::int32_t next_seq;
    std::uint64_t last_index;
    std::vector<Recent> recent;  // oldest first, at most kRecentBatches
  };
  std::vector<Durable> durable() const;
  void restore(const Durable& d);
  // Forgets producers last seen in an entry before `index` (Kafka expires producer ids too).
  void expire_before(std::uint64_t index);

 private:
  struct Entry {
    std::int16_t epoch = 0;
    std::int32_t next_seq = 0;          // includes reservations in flight
    std::int32_t durable_next_seq = 0;  // only what is durable
    std::uint64_t last_index = 0;       // the last log entry seen carrying its batch
    std::deque<Recent> recent;
  };
  std::unordered_map<std::int64_t, Entry> producers_;
};

}  // namespace quorumq::broker
