// quorumq::Consumer: fetches records of its assigned partitions, tracks positions, commits
// offsets for its group.
//
// Threading: the public members are thread-safe, but the usual pattern is one thread calling
// poll() in a loop. A background I/O thread per Consumer prefetches (one fetch in flight per
// broker), so poll() mostly just hands over buffered records.
//
// Assignment: subscribe() makes this consumer a member of its group (group_id): the group's
// coordinator shares the subscribed topics' partitions among the members and moves them when
// members join, leave or die (session_timeout_ms). The I/O thread keeps the heartbeat going;
// changes are applied inside poll(), which calls the RebalanceListener: on_revoked before a
// partition goes (commit it there; with enable_auto_commit the consumer commits it first), then
// on_assigned. Commits of a partition this member no longer owns are refused
// (illegal_generation / unknown_member_id). assign() is manual: no membership, no rebalancing.
//
// Offsets: a partition starts at the group's committed offset; without one, at
// auto_offset_reset, and a group member (subscribe(), or assign() with enable_auto_commit)
// commits that start position before it consumes from it: once the group has seen a partition
// it never skips what is produced there later, even if this member dies before its first
// commit. poll() advances position() past what it returned; commit() stores position() (the
// next offset to read) for each assigned partition; auto-commit stores every assigned
// partition's position that changed since the last commit (periodically, before a partition
// is revoked, and on close()).
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
  // The partitions were taken away without a chance to commit: this member was removed from
  // the group (missed its session timeout) and other members already own them.
  virtual void on_lost(const std::vector<TopicPartition>& partitions) { on_revoked(partitions); }
};

// Gets the commit's outcome: a value on success, else the error.
using CommitCallback = std::function<void(const std::expected<void, Error>&)>;

class QUORUMQ_API Consumer {
 public:
  [[nodiscard]] static std::expected<std::unique_ptr<Consumer>, Error> create(const ConsumerConfig& config);
  ~Consumer();  // close()
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // Joins the group (or changes the subscription). Partitions arrive in a later poll().
  void subscribe(const std::vector<std::string>& topics,
                 std::shared_ptr<RebalanceListener> listener = nullptr);
  // Manual assignment (no subscription): exactly these partitions, at once (seek() may follow).
  void assign(const std::vector<TopicPartition>& partitions);
  // Leaves the group (after on_revoked and, with auto-commit, a commit) or drops assign().
  void unsubscribe();
  std::vector<TopicPartition> assignment() const;
  // The member id the coordinator gave this consumer ("" while not a member) and the group
  // generation it last acted on.
  std::string member_id() const;
  std::int32_t generation() const;

  // Up to max_poll_records records, waiting up to `timeout` for the first. Errors that stop
  // consumption (unknown topic, offset out of range with reset none, no broker reachable for
  // longer than api_timeout_ms) are returned; transient ones are retried inside.
  [[nodiscard]] std::expected<std::vector<Message>, Error> poll(std::chrono::milliseconds timeout);

  // Stores position() of every assigned partition as the group's committed offset. Sync
  // waits for the broker's answer (api_timeout_ms).
  [[nodiscard]] std::expected<void, Error> commit();
  // Stores exactly these offsets (each the NEXT offset to read, i.e. last processed + 1).
  [[nodiscard]] std::expected<void, Error> commit(const std::vector<TopicPartitionOffset>& offsets);
  // commit() without waiting; the callback runs on the I/O thread.
  void commit_async(CommitCallback callback = nullptr);

  // Next poll() returns records of `tp` from `offset` on. Drops what was prefetched for tp.
  [[nodiscard]] std::expected<void, Error> seek(const TopicPartition& tp, std::int64_t offset);
  [[nodiscard]] std::expected<void, Error> seek_to_beginning(const std::vector<TopicPartition>& partitions);
  [[nodiscard]] std::expected<void, Error> seek_to_end(const std::vector<TopicPartition>& partitions);
  // The offset of the next record poll() will return for tp (after the start-up lookup).
  [[nodiscard]] std::expected<std::int64_t, Error> position(const TopicPartition& tp);
  // The group's committed offset (-1: none), asked from the broker.
  [[nodiscard]] std::expected<std::int64_t, Error> committed(const TopicPartition& tp);

  // Commits if auto-commit is on, leaves the group (others take over at once), then stops the
  // I/O thread. Idempotent.
  void close();

  class Impl;

 private:
  explicit Consumer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace quorumq
