// Membership: a Consumer's side of the consumer-group protocol (GroupHeartbeat, api 11).
//
// It joins, keeps the heartbeat going on the I/O thread (a long poll: the coordinator answers
// early when this member's assignment changes), reports what the consumer owns, and leaves.
// The Consumer applies assignment changes inside poll() (take_change → listener → applied), so
// revocations run on the application's thread and partitions are only reported released after
// on_revoked (and its commits) returned.
//
// If the coordinator cannot be reached for session_timeout_ms, or it says this member is
// unknown (expired), the member counts its partitions as lost (on_lost) and joins again.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core.h"
#include "quorumq/protocol/messages.h"
#include "requests.h"

namespace quorumq::client {

// The partitions of a GroupHeartbeat/DescribeGroups answer (GroupTopicPartitions vector).
std::set<TopicPartition> read_group_parts(
    const flatbuffers::Vector<flatbuffers::Offset<wire::GroupTopicPartitions>>* v);

class Membership : public std::enable_shared_from_this<Membership> {
 public:
  struct Change {
    std::set<TopicPartition> assignment;  // what to own now
    std::int32_t generation = -1;
    bool lost = false;  // everything owned before is gone (do not commit it)
  };

  // `wake` runs on the I/O thread when take_change() or take_error() has something.
  Membership(std::shared_ptr<Core> core, const ConsumerConfig& cfg, std::function<void()> wake);

  // Thread-safe. Non-empty: join / change the subscription. Empty: leave (asynchronously).
  void set_subscription(std::vector<std::string> topics);
  bool active() const;
  std::optional<Change> take_change();
  std::optional<Error> take_error();
  // The consumer now owns exactly `owned`, having acted on `generation`.
  void applied(std::set<TopicPartition> owned, std::int32_t generation);
  CommitIdentity identity() const;
  // Leaves the group, waiting up to `timeout` for the coordinator's answer.
  void leave_sync(std::chrono::milliseconds timeout);

 private:
  void send();  // I/O thread
  void on_answer(const Error* err, std::span<const std::uint8_t> payload);
  void lose_locked(const std::string& why);
  void retry_later(std::chrono::milliseconds delay, bool refresh);

  std::shared_ptr<Core> core_;
  const ConsumerConfig cfg_;
  std::function<void()> wake_;

  mutable std::mutex mu_;
  std::vector<std::string> topics_;
  std::string member_id_;
  std::int32_t generation_ = -1;  // the generation the consumer acted on
  std::set<TopicPartition> owned_;
  std::set<TopicPartition> target_;
  std::int32_t target_generation_ = -1;
  bool pending_ = false;  // target_ not yet taken by the consumer
  bool lost_ = false;
  std::optional<Error> error_;
  Clock::time_point last_ok_{};
  bool in_flight_ = false;  // I/O thread
  bool timer_armed_ = false;
};

}  // namespace quorumq::client
