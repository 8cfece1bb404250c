// Accumulator: the producer's per-partition queues of record batches, and the rules deciding
// which batch may be sent when. Pure logic (no I/O, no threads, time passed in), so the
// ordering and retry rules are unit-tested with a fake clock.
//
// Per partition the batches form one sequence: each batch gets `order` (and, with idempotence,
// the wire base_sequence) when it is first drained, and keeps both for every retry, so the
// broker recognises a resent batch and drops it as a duplicate.
//
// Ordering (idempotent or not): normally up to max_in_flight_per_partition batches of a
// partition are in flight at once. When one fails with a retriable error the partition enters
// RECOVERY: it sends nothing until all its in-flight batches have answered (later ones fail
// with out_of_order_sequence, which then counts as retriable), then resends the failed batches
// one at a time, in order; once none is left it returns to pipelining. So a partition's
// records are written in send() order even across retries and leader changes.
//
// Too large: a batch the broker refuses with message_too_large is split in two halves that take
// its place (same order, same sequence numbers, so the broker's sequence check still holds) and
// are resent in recovery; a single record that is too large fails alone: the partition's later
// batches are renumbered down so its sequence keeps no gap (none of them can have been
// written: the broker refuses a sequence after a gap). The topic's batches are capped from then
// on, so the split is not repeated for every batch.
//
// Thread: not thread-safe; the Producer guards it with its mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "quorumq/producer.h"
#include "quorumq/protocol/record_batch.h"
#include "quorumq/types.h"

namespace quorumq::client {

using AccClock = std::chrono::steady_clock;

struct ProducerBatch {
  TopicPartition tp;
  std::uint64_t id = 0;  // unique per Accumulator, for the sticky partitioner
  BatchBuilder builder;
  std::vector<std::uint8_t> bytes;  // the finished batch, once drained (immutable afterwards)
  std::vector<SendCallback> callbacks;
  std::vector<std::int64_t> timestamps;
  std::size_t size_bytes = 0;  // accounted record bytes (for buffer_memory)
  AccClock::time_point created{};
  AccClock::time_point deadline{};
  AccClock::time_point retry_at{};
  // Position in the partition's sequence; -1: never drained. (drain ordinal << 32) + index of
  // the first record in the originally drained batch, so the halves of a split batch order
  // between their neighbours.
  std::int64_t order = -1;
  std::int32_t base_sequence = -1;  // wire sequence (idempotent only)
  std::int64_t producer_id = -1;
  std::int16_t producer_epoch = -1;
  int attempts = 0;
  bool sealed = false;  // no more appends
  // base_sequence moved down after `bytes` were finished (an earlier record failed alone): the
  // bytes are rebuilt before the next send, and out_of_order_sequence for it is retriable.
  bool resequenced = false;
  std::uint32_t record_count() const { return static_cast<std::uint32_t>(callbacks.size()); }
};
using BatchPtr = std::shared_ptr<ProducerBatch>;

// Records [first, first + count) of a finished batch, as a new batch finished with `info`.
std::vector<std::uint8_t> rebuild_batch(const std::vector<std::uint8_t>& bytes, std::uint32_t first,
                                        std::uint32_t count, const ProducerInfo& info);

class Accumulator {
 public:
  struct Options {
    std::size_t batch_bytes = 256 * 1024;
    std::uint32_t linger_ms = 5;
    std::uint32_t max_in_flight_per_partition = 5;
    std::uint32_t delivery_timeout_ms = 120000;
    std::uint32_t retry_backoff_ms = 100;
    bool idempotent = true;
  };
  struct Identity {
    std::int64_t producer_id = -1;
    std::int16_t producer_epoch = -1;
  };

  explicit Accumulator(const Options& o) : opt_(o) {}

  // Appends one record; returns the batch it went into. A record that does not fit the open
  // batch seals it and opens a new one.
  BatchPtr append(const TopicPartition& tp, std::optional<std::string_view> key, std::string_view value,
                  const Headers& headers, std::int64_t timestamp_ms, SendCallback cb, AccClock::time_point now);
  // Id of the partition's open (unsealed) batch, 0 if none.
  std::uint64_t open_batch_id(const TopicPartition& tp) const;

  // One batch per partition at most, grouped by leader node: what may be sent now. Drained
  // batches are sealed, numbered and finished (bytes) with `identity`, and count as in flight.
  // `leader` gives a partition's leader node (-1 unknown: skipped, reported in `no_leader`);
  // `node_has_room` says whether that node can take one more request now.
  std::map<std::int32_t, std::vector<BatchPtr>> drain(
      AccClock::time_point now, bool flush, const Identity& identity, std::size_t max_request_bytes,
      const std::function<std::int32_t(const TopicPartition&)>& leader,
      const std::function<bool(std::int32_t)>& node_has_room, std::vector<TopicPartition>* no_leader = nullptr);

  // The earliest time drain() could return something new without an answer arriving
  // (linger, retry backoff); max() if nothing waits on time.
  AccClock::time_point next_ready_time(AccClock::time_point now) const;

  // The broker acknowledged `b` (or reported duplicate_sequence). Leaves it complete.
  void on_success(const BatchPtr& b);
  // `b` failed with `ec`. Returns true if it was requeued for a retry; false when final (the
  // caller completes its records with the error).
  bool on_error(const BatchPtr& b, std::error_code ec, AccClock::time_point now);
  // `b` was refused with message_too_large. Several records: split into two halves that are
  // requeued in its place (true). One record, or past its delivery timeout: final (false; the
  // caller fails it), and the partition's later sequence numbers close the gap it leaves.
  bool on_too_large(const BatchPtr& b, AccClock::time_point now);
  // Batches of `topic` opened from now on hold at most `bytes` (never more than batch_bytes).
  void limit_batch_bytes(const std::string& topic, std::size_t bytes);
  std::size_t batch_bytes_for(const std::string& topic) const;
  // A sent batch will get no answer (acks=none): complete.
  void on_sent_no_ack(const BatchPtr& b) { on_success(b); }

  // Removes queued (not in flight) batches whose delivery timeout passed; the caller fails them.
  std::vector<BatchPtr> expire(AccClock::time_point now);
  // Removes every queued batch (close): the caller fails them.
  std::vector<BatchPtr> take_all_queued();

  // A new producer identity: every partition's next sequence number is 0 again. Batches
  // already numbered keep their old identity and numbers (their bytes are final).
  void reset_sequences() {
    for (auto& [tp, ps] : parts_) {
      ps.next_sequence = 0;
      ps.sequence_pid = -1;
    }
  }

  std::size_t queued_batches() const;
  std::size_t in_flight_batches() const;
  bool in_recovery(const TopicPartition& tp) const;

 private:
  struct PartitionState {
    std::deque<BatchPtr> queue;       // retries (order >= 0, ascending) then new batches
    std::vector<BatchPtr> in_flight;  // ascending order
    std::int64_t next_order = 0;
    std::int32_t next_sequence = 0;
    std::int64_t sequence_pid = -1;  // the producer id next_sequence counts for
    bool recovering = false;
  };
  bool ready_to_send(const PartitionState& ps, const BatchPtr& b, AccClock::time_point now, bool flush) const;
  static void remove_in_flight(PartitionState& ps, const BatchPtr& b);
  static void requeue(PartitionState& ps, const BatchPtr& b);
  // `b` failed without being written: later batches of the same producer id take its sequence
  // numbers over.
  void close_sequence_gap(PartitionState& ps, const BatchPtr& b);

  Options opt_;
  std::map<TopicPartition, PartitionState> parts_;
  std::map<std::string, std::size_t, std::less<>> topic_batch_bytes_;
  std::uint64_t next_id_ = 1;
};

}  // namespace quorumq::client
