// Partition: one partition of a topic on this broker — its log, high watermark, idempotent
// producer state and the fetches waiting for new data.
//
// Produce path (one node): validate batches -> idempotence check -> storage group commit ->
// on durability: high watermark advances, waiters wake, the producer is answered. With
// replication this is where the Raft group slots in: the append becomes a proposal and the high
// watermark becomes the commit index; callers of produce()/high_watermark() do not change.
// Threads: produce() and the readers are called from network threads; completions arrive on
// the storage writer thread. `mu_` guards producer state and waiters; the high watermark is an
// atomic so fetches read it without the lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "metrics.h"
#include "producer_state.h"
#include "quorumq/protocol/errors.h"
#include "quorumq/storage/partition_log.h"
#include "quorumq/storage/storage.h"

namespace quorumq::broker {

struct ProduceResult {
  wire::ErrorCode error = wire::ErrorCode::none;
  std::int64_t base_offset = -1;
  std::string message;
};
using ProduceCallback = std::move_only_function<void(ProduceResult)>;

// Splits a produce request's records blob into batches and validates each (structure, CRC,
// size). On failure returns the error and a message naming the batch.
struct SplitResult {
  wire::ErrorCode error = wire::ErrorCode::none;
  std::string message;
  std::vector<std::span<const std::uint8_t>> batches;
};
SplitResult split_and_validate(std::span<const std::uint8_t> records, std::uint32_t max_batch_bytes);

class Partition : public std::enable_shared_from_this<Partition> {
 public:
  Partition(std::string topic, std::int32_t id, storage::Storage& storage, storage::PartitionLog* log,
            Metrics& metrics);
  ~Partition();

  const std::string& topic() const { return topic_; }
  std::int32_t id() const { return id_; }
  storage::PartitionLog* log() const { return log_; }

  // Appends validated batches (copied out of the request). `done` runs once, on any thread.
  void produce(std::vector<std::vector<std::uint8_t>> batches, ProduceCallback done);

  // Offsets below the high watermark are committed (durable; with replication: on a quorum).
  std::int64_t high_watermark() const { return hw_.load(std::memory_order_acquire); }
  std::int64_t log_start_offset() const { return log_->state().start_offset; }

  // `wake` runs once (on the storage thread or the caller's) when the high watermark moves or
  // the partition closes. Returns an id for remove_waiter.
  std::uint64_t add_waiter(std::function<void()> wake);
  void remove_waiter(std::uint64_t id);
  // The topic is being deleted: fail new produces, wake every waiter.
  void close();
  bool closed() const { return closed_.load(); }

 private:
  void rebuild_producer_state();
  void wake_all();

  const std::string topic_;
  const std::int32_t id_;
  storage::Storage& storage_;
  storage::PartitionLog* const log_;
  Metrics& metrics_;
  std::atomic<std::int64_t> hw_{0};
  std::atomic<bool> closed_{false};

  std::mutex mu_;
  ProducerStateTable producers_;
  std::uint64_t next_waiter_ = 1;
  std::map<std::uint64_t, std::function<void()>> waiters_;
};

}  // namespace quorumq::broker
