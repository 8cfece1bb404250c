// Consumer::Impl: the state behind a Consumer, shared by the files that implement it:
//   consumer.cc           lifecycle, subscribe/assign and applying assignment changes, poll, close
//   consumer_offsets.cc   positions: start-offset lookup (committed offset or reset policy),
//                         seek, position/committed, commits (sync, async, auto)
//   consumer_fetcher.cc   prefetching: one fetch in flight per broker, decoding the answers into
//                         per-partition chunks for poll()
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <expected>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "core.h"
#include "membership.h"
#include "quorumq/admin.h"
#include "quorumq/consumer.h"

namespace quorumq {

using client::Clock;
using client::Core;

// Threads: application threads call the public members; the I/O thread runs lookups and
// fetches. `mu_` guards the partition states and the fetched chunks.
class Consumer::Impl : public std::enable_shared_from_this<Consumer::Impl> {
 public:
  explicit Impl(const ConsumerConfig& c) : cfg_(c) {}
  void start();
  void subscribe(const std::vector<std::string>& topics, std::shared_ptr<RebalanceListener> listener);
  // Manual assignment takes effect at once (no metadata needed), so seek() may follow.
  void assign(const std::vector<TopicPartition>& parts);
  void unsubscribe();
  std::string member_id() const { return membership_->identity().member_id; }
  std::int32_t generation() const { return membership_->identity().generation; }
  std::vector<TopicPartition> assignment() const {
    std::lock_guard lk(mu_);
    std::vector<TopicPartition> out;
    for (auto& [tp, ps] : parts_) out.push_back(tp);
    return out;
  }

  std::expected<std::vector<Message>, Error> poll(std::chrono::milliseconds timeout);
  std::optional<Error> commit(std::optional<std::vector<TopicPartitionOffset>> offsets);
  void commit_async(CommitCallback cb);
  // enable_auto_commit: commits the positions that changed since the last commit.
  void auto_commit_async();
  std::optional<Error> seek(const TopicPartition& tp, std::int64_t offset);
  std::optional<Error> seek_spec(const std::vector<TopicPartition>& tps, OffsetSpec spec);
  std::expected<std::int64_t, Error> position(const TopicPartition& tp);
  std::expected<std::int64_t, Error> committed(const TopicPartition& tp);
  void close();

  static Error closed_error() { return Error{make_error_code(ClientError::closed), "the consumer is closed"}; }

 private:
  struct Chunk {
    std::vector<std::uint8_t> bytes;
    std::size_t pos = 0;
    std::uint64_t epoch = 0;
  };
  struct PartState {
    std::int64_t position = -1;      // next offset poll() returns; -1 until looked up
    std::int64_t fetch_offset = -1;  // next offset to fetch
    // Unique per consumer (next_epoch_): changed by seek and reset, new when a partition is
    // (re)assigned, so answers to fetches and lookups of an earlier state are dropped — also
    // those of the same partition before it was revoked and given back.
    std::uint64_t epoch = 0;
    bool reset_to_policy = false;    // skip the committed offset (it was out of range)
    bool lookup_in_flight = false;
    bool fetch_in_flight = false;
    // The epoch the fetch in flight was sent at: its answer ends it even after a seek or reset
    // changed `epoch` (else the partition would never be fetched again).
    std::uint64_t fetch_epoch = 0;
    std::deque<Chunk> chunks;
    std::size_t buffered_bytes = 0;
    std::int64_t high_watermark = -1;
    // The group's committed offset as far as this consumer knows (what it looked up or last
    // committed itself); auto-commit skips partitions whose position equals it.
    std::int64_t committed = -1;
    Clock::time_point retry_at{};
  };

  std::optional<Error> update_assignment();
  std::vector<TopicPartitionOffset> current_positions_locked() const;
  // Positions that differ from what the group has committed (auto-commit).
  std::vector<TopicPartitionOffset> changed_positions_locked() const;
  // After a commit of ours succeeded: remember it, so auto-commit does not repeat it.
  void note_committed(const std::vector<TopicPartitionOffset>& offs);
  // Whether a position taken from auto_offset_reset is committed before it is used (see
  // ensure_positions).
  bool commits_resolved_positions_locked() const;
  std::optional<Error> no_group_error(const char* what) const;
  void collect_locked(std::vector<Message>& out);
  void kick();
  // I/O thread.
  void ensure_positions();
  void maybe_fetch();
  void on_fetch(std::int32_t node, const std::map<TopicPartition, std::uint64_t>& epochs, const Error* err,
                std::span<const std::uint8_t> payload);
  void set_fatal_locked(Error e) {
    if (!fatal_) fatal_ = std::move(e);
  }

  ConsumerConfig cfg_;
  std::shared_ptr<Core> core_;
  std::shared_ptr<client::Membership> membership_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> topics_;
  bool manual_ = false;
  std::vector<TopicPartition> manual_parts_;
  std::shared_ptr<RebalanceListener> listener_;
  bool dirty_ = false;
  bool check_topics_ = false;  // subscribe(): say so in poll() while a topic does not exist
  std::map<TopicPartition, PartState> parts_;
  std::uint64_t next_epoch_ = 0;
  std::optional<Error> fatal_;
  bool closed_ = false;
  Clock::time_point next_auto_commit_{};
  std::size_t rr_ = 0;

  // I/O thread only.
  std::set<std::int32_t> fetching_nodes_;
  bool refresh_pending_ = false;
  bool kick_pending_ = false;
};

}  // namespace quorumq
