// Partition: one partition of a topic hosted on this broker — the state machine of its Raft
// group (ReplicatedLog): high watermark, idempotent-producer state, consumer-group committed
// offsets, and the fetches waiting for new data.
//
// Produce: on the leader, validate → idempotence check → propose (stamped with term and base
// offset) → answered when committed (acks=quorum) or durable on the leader (acks=leader).
// Offset commits are control batches in the same log, so they are replicated with the data and
// the partition's leader is their coordinator. The high watermark is the end offset of the
// committed (applied) entries: Fetch serves only below it.
// Threads: produce/commit/apply run under the group's lock (ReplicatedLog::locked); the high
// watermark is an atomic; committed offsets and waiters have their own small mutexes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "metrics.h"
#include "producer_state.h"
#include "quorumq/protocol/errors.h"
#include "quorumq/storage/partition_log.h"
#include "quorumq/storage/storage.h"
#include "replicated_log.h"

namespace quorumq::broker {

namespace sim_regression {
// The driver-level simulation (tests/sim/driver) forces bugs that were fixed back on, to show its
// regression seeds still find them. Never set outside that test.
// 27d463b: a replica rebuilt its idempotent-producer table from its whole log (uncommitted
// tail included) and kept it when it stopped leading.
inline bool producer_state_from_uncommitted_tail = false;
}  // namespace sim_regression

namespace partition_tuning {
// Applied entries between two stored producer snapshots. The driver-level simulation lowers it
// so its short runs store snapshots and restart from them.
inline std::uint64_t producer_snapshot_every = 1000;
}  // namespace partition_tuning

// A produce's (or an offset commit's) outcome: written from `base_offset` on, or why not.
struct ProduceResult {
  Status status;
  std::int64_t base_offset = -1;
};
using ProduceCallback = std::move_only_function<void(ProduceResult)>;

// Splits a produce request's records blob into batches and validates each (structure, CRC,
// size). On failure returns the error and a message naming the batch.
struct SplitResult {
  Status status;
  std::vector<std::span<const std::uint8_t>> batches;
};
SplitResult split_and_validate(std::span<const std::uint8_t> records, std::uint32_t max_batch_bytes);

struct OffsetCommitItem {
  std::string group;
  std::int64_t offset = 0;
  std::string metadata;
};

class Partition : public Applier, public std::enable_shared_from_this<Partition> {
 public:
  Partition(std::string topic, std::int32_t id, std::vector<node_id> replicas, storage::Storage& storage,
            storage::PartitionLog* log, Metrics& metrics);
  ~Partition() override;

  // Creates and starts the Raft group. `campaign`: this replica asks for leadership at once.
  void start(GroupOptions opts, Transport& transport, Executor& exec);
  void stop();

  const std::string& topic() const { return topic_; }
  std::int32_t id() const { return id_; }
  const std::vector<node_id>& replicas() const { return replicas_; }
  storage::PartitionLog* log() const { return log_; }
  ReplicatedLog* group() const { return group_.get(); }
  const std::shared_ptr<ReplicatedLog>& group_ptr() const { return group_; }

  // Leader only. `done` runs once, from any thread.
  void produce(std::vector<std::vector<std::uint8_t>> batches, wire::Acks acks, ProduceCallback done);
  // Leader only: commits consumer-group offsets through the log (acknowledged on quorum).
  void commit_offset(OffsetCommitItem item, ProduceCallback done);
  std::optional<storage::CommittedOffset> committed_offset(const std::string& group) const;
  // Every group's committed offset here (for lag metrics).
  std::vector<std::pair<std::string, storage::CommittedOffset>> committed_offsets() const;
  // Leader only: forgets `group`'s committed offset here, through the log (OffsetDelete).
  void delete_offset(const std::string& group, ProduceCallback done);

  // Offsets below the high watermark are committed on a quorum.
  std::int64_t high_watermark() const { return hw_.load(std::memory_order_acquire); }
  std::int64_t log_start_offset() const { return log_->state().start_offset.value; }
  std::int64_t log_end_offset() const { return log_->state().next_offset.value; }
  bool serving() const { return group_ && group_->leader_ready(); }

  // `wake` runs once (any thread) when the high watermark moves or the partition closes.
  std::uint64_t add_waiter(std::function<void()> wake);
  void remove_waiter(std::uint64_t id);
  bool closed() const { return closed_.load(); }

  // Applier (under the group lock)
  void on_start(log_index applied, std::int64_t applied_end_offset) override;
  void apply(const raft::Entry& e, std::span<const std::uint8_t> batch) override;
  void on_leader(const std::vector<raft::Entry>& tail) override;
  void on_role(raft::Role role) override;

  // What the idempotence check would answer for this batch now (diagnostics and tests).
  ProducerStateTable::Result producer_check(std::int64_t pid, std::int16_t epoch, std::int32_t seq,
                                            std::int32_t count) const {
    return producers_.peek(pid, epoch, seq, count);
  }

 private:
  // The producer table as of `upto` (the applied index): the last stored snapshot, then the
  // batch headers of the committed log after it (or of the last kProducerWindow entries).
  void rebuild_producer_state(log_index upto);
  void replay_producer(std::span<const std::uint8_t> batch, std::uint64_t index = 0);
  // Every partition_tuning::producer_snapshot_every applied entries: stores applied_producers_ ("producers:<group>"), so
  // a restart reads the entries after it instead of the last kProducerWindow entries' headers.
  void maybe_snapshot_producers(const raft::Entry& e);
  void apply_entry(const raft::Entry& e, std::span<const std::uint8_t> batch);
  static constexpr std::uint64_t kProducerWindow = 20000;
  void wake_all();

  const std::string topic_;
  const std::int32_t id_;
  const std::vector<node_id> replicas_;
  storage::Storage& storage_;
  storage::PartitionLog* const log_;
  Metrics& metrics_;
  std::string group_name_;  // the Raft group's (and its log's) name: topic/partition, or start()'s
  std::shared_ptr<ReplicatedLog> group_;
  std::atomic<std::int64_t> hw_{0};
  std::atomic<bool> closed_{false};

  ProducerStateTable producers_;  // under the group lock
  // Only what applied (committed) entries say: the snapshot's source, and what a replica that
  // stops leading falls back to. Under the group lock.
  ProducerStateTable applied_producers_;
  std::uint64_t applied_since_snapshot_ = 0;
  log_index applied_{0};          // last entry applied (under the group lock)
  bool leading_ = false;

  mutable std::mutex offsets_mu_;
  std::map<std::string, storage::CommittedOffset> offsets_;

  std::mutex waiters_mu_;
  std::uint64_t next_waiter_ = 1;
  std::map<std::uint64_t, std::function<void()>> waiters_;
};

}  // namespace quorumq::broker
