// quorumq::Consumer: fetches records of its assigned partitions, tracks positions, commits
// offsets for its group.
//
// Threading: the public members are thread-safe, but the usual pattern is one thread calling
// poll() in a loop. A background I/O thread per Consumer prefetches (one fetch in flight per
// broker), so poll() mostly just hands over buffered records.
//
// Assignment: today (no group membership on the broker yet) subscribe() takes ALL partitions
// of the subscribed topics (and partitions added later, seen at metadata refresh). The piece
// deciding the assignment is replaceable: group membership (join/heartbeat/rebalance) will
// plug in behind subscribe() and report changes through RebalanceListener; assign() is manual.
//
// Offsets: a partition starts at the group's committed offset; without one, at
// auto_offset_reset. poll() advances position() past what it returned; commit() stores
// position() (the next offset to read) for each assigned partition.
#pragma once

#include "quorumq/export.h"

#include <chrono>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "quorumq/config.h"
#include "quorumq/error.h"
#include "quorumq/types.h"

namespace quorumq {

// Called from poll() (never from the I/O thread) when partitions are taken away or given.
// on_revoked runs before the partitions go, so the application can commit() them.
class QUORUMQ_API RebalanceListener {
 public:
  virtual ~RebalanceListener() = default;
  virtual void on_assigned(const std::vector<TopicPartition>& partitions) = 0;
  virtual void on_revoked(const std::vector<TopicPartition>& partitions) = 0;
};

using CommitCallback = std::function<void(const std::optional<Error>&)>;

class QUORUMQ_API Consumer {
 public:
  static std::expected<std::unique_ptr<Consumer>, Error> create(const ConsumerConfig& config);
  ~Consumer();  // close()
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // Replaces the subscription. The assignment happens in the next poll().
  void subscribe(const std::vector<std::string>& topics,
                 std::shared_ptr<RebalanceListener> listener = nullptr);
  // Manual assignment (no subscription): exactly these partitions, at once (seek() may follow).
  void assign(const std::vector<TopicPartition>& partitions);
  void unsubscribe();
  std::vector<TopicPartition> assignment() const;

  // Up to max_poll_records records, waiting up to `timeout` for the first. Errors that stop
  // consumption (unknown topic, offset out of range with reset none, no broker reachable for
  // longer than api_timeout_ms) are returned; transient ones are retried inside.
  std::expected<std::vector<Message>, Error> poll(std::chrono::milliseconds timeout);

  // Stores position() of every assigned partition as the group's committed offset. Sync
  // waits for the broker's answer (api_timeout_ms).
  std::optional<Error> commit();
  // Stores exactly these offsets (each the NEXT offset to read, i.e. last processed + 1).
  std::optional<Error> commit(const std::vector<TopicPartitionOffset>& offsets);
  // commit() without waiting; the callback runs on the I/O thread.
  void commit_async(CommitCallback callback = nullptr);

  // Next poll() returns records of `tp` from `offset` on. Drops what was prefetched for tp.
  std::optional<Error> seek(const TopicPartition& tp, std::int64_t offset);
  std::optional<Error> seek_to_beginning(const std::vector<TopicPartition>& partitions);
  std::optional<Error> seek_to_end(const std::vector<TopicPartition>& partitions);
  // The offset of the next record poll() will return for tp (after the start-up lookup).
  std::expected<std::int64_t, Error> position(const TopicPartition& tp);
  // The group's committed offset (-1: none), asked from the broker.
  std::expected<std::int64_t, Error> committed(const TopicPartition& tp);

  // Commits if auto-commit is on, then stops the I/O thread. Idempotent.
  void close();

  class Impl;

 private:
  explicit Consumer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace quorumq
