// Verifier: checks that every acknowledged message was consumed exactly once and, within each
// partition, in the order its producer sent it.
//
// A message is identified by (producer, seq): each bench producer numbers its messages 0, 1, 2...
// in send() order and embeds both in the payload (payload.h). The SDK writes a producer's records
// of one partition in send() order, so on any partition the consumed seqs of one producer must
// rise. Findings:
//  - lost:       acknowledged, never consumed;
//  - duplicated: every consumption of a message beyond its first (a second copy in the log or a
//                redelivery of the same offset, both break "exactly once");
//  - reordered:  a first consumption whose seq is below the highest seq already consumed from that
//                producer on that partition, or a message consumed from another partition than
//                the one its acknowledgement named.
// Messages that were consumed but never acknowledged (their send failed or timed out after the
// broker wrote them) are legitimate and only counted (unacked_consumed).
//
// Thread-safe: producers' completion callbacks and consumer threads call in concurrently; one
// mutex guards everything (a few hundred thousand calls per second cost little next to the I/O).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace quorumq::bench {

struct VerifyResult {
  std::uint64_t acked = 0;
  std::uint64_t consumed = 0;          // every consumption, duplicates included
  std::uint64_t lost = 0;
  std::uint64_t duplicated = 0;
  std::uint64_t reordered = 0;
  std::uint64_t unacked_consumed = 0;
  // Per partition: acknowledged and first-time consumed (where a loss happened).
  std::map<std::int32_t, std::pair<std::uint64_t, std::uint64_t>> per_partition;
  bool ok() const { return lost == 0 && duplicated == 0 && reordered == 0; }
};

class Verifier {
 public:
  explicit Verifier(std::uint32_t producers);

  // The broker acknowledged message (producer, seq) on `partition`.
  void on_acked(std::uint32_t producer, std::uint64_t seq, std::int32_t partition);
  // A consumer returned message (producer, seq) from `partition`. Call in the order the consumer
  // delivered it (each partition is consumed by one thread, so its order is well defined).
  void on_consumed(std::int32_t partition, std::uint32_t producer, std::uint64_t seq);

  // Acknowledged messages not consumed yet (cheap; the drain loop polls it).
  std::uint64_t outstanding() const;
  std::uint64_t consumed() const;
  // True if some message acknowledged on `partition` was not consumed yet.
  bool behind(std::int32_t partition) const;
  VerifyResult result() const;

 private:
  // Per message: the partition of its acknowledgement (-1: none yet) and how often it was consumed.
  struct Slot {
    std::int32_t acked_partition = -1;
    std::int32_t consumed_partition = -1;
    std::uint32_t times_consumed = 0;
  };
  Slot& slot(std::uint32_t producer, std::uint64_t seq);  // grows on demand; lock held

  mutable std::mutex mu_;
  std::vector<std::vector<Slot>> slots_;  // [producer][seq]
  std::map<std::pair<std::int32_t, std::uint32_t>, std::uint64_t> next_seq_;
  std::map<std::int32_t, std::pair<std::uint64_t, std::uint64_t>> per_partition_;  // acked, consumed  // (partition, producer) -> highest seq + 1
  std::uint64_t acked_ = 0, consumed_ = 0, satisfied_ = 0;  // satisfied: acked and consumed at least once
  std::uint64_t duplicated_ = 0, reordered_ = 0, unacked_consumed_ = 0;
};

}  // namespace quorumq::bench
