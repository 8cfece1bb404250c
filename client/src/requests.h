// Request flows shared by Consumer and Admin: ListOffsets (routed to each partition's leader),
// OffsetFetch and OffsetCommit (routed to the group's coordinator). All run on the I/O thread
// and complete through a callback; each retries transient errors until its deadline.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core.h"
#include "quorumq/admin.h"
#include "quorumq/types.h"

namespace quorumq::client {

// Committed offsets live in each partition's own replicated log: the partition's leader is the
// coordinator of its offsets. offset_fetch_async/offset_commit_async (offset_routing.cc) split
// the partitions by leader, send one request per leader (the *_on functions), and re-route
// what a broker answers not_coordinator/not_leader after a metadata refresh.

using OffsetsFn = std::function<void(std::optional<Error>, std::vector<TopicPartitionOffset>)>;

void list_offsets_async(Core& core, std::vector<TopicPartition> partitions, OffsetSpec spec,
                        std::int64_t timestamp_ms, Clock::time_point deadline, OffsetsFn done);

// topics empty: every partition the group committed. Offsets -1: nothing committed.
void offset_fetch_async(Core& core, const std::string& group, const std::vector<TopicPartition>& partitions,
                        Clock::time_point deadline,
                        std::function<void(std::optional<Error>, std::vector<GroupPartitionOffset>)> done);

// Who commits: a consumer-group member (subscribe()) names itself and the generation it acts
// on, so a partition's leader can refuse commits of partitions the member no longer owns.
struct CommitIdentity {
  std::string member_id;
  std::int32_t generation = -1;  // -1: a simple commit (assign())
};

void offset_commit_async(Core& core, const std::string& group, const std::vector<TopicPartitionOffset>& offsets,
                         Clock::time_point deadline, std::function<void(std::optional<Error>)> done,
                         CommitIdentity who = {});

// One request to broker `node`; partition-level retriable errors end it with that error.
void offset_fetch_on(Core& core, std::int32_t node, const std::string& group, const std::vector<TopicPartition>& partitions,
                     Clock::time_point deadline,
                     std::function<void(std::optional<Error>, std::vector<GroupPartitionOffset>)> done);
void offset_commit_on(Core& core, std::int32_t node, const std::string& group,
                      const std::vector<TopicPartitionOffset>& offsets, Clock::time_point deadline,
                      std::function<void(std::optional<Error>)> done, CommitIdentity who = {});

// OffsetDelete (api 14): forgets the group's committed offsets of `partitions`, at each
// partition's leader like a commit. Refused with group_not_empty while the group has members.
void offset_delete_async(Core& core, const std::string& group, const std::vector<TopicPartition>& partitions,
                         Clock::time_point deadline, std::function<void(std::optional<Error>)> done);
void offset_delete_on(Core& core, std::int32_t node, const std::string& group,
                      const std::vector<TopicPartition>& partitions, Clock::time_point deadline,
                      std::function<void(std::optional<Error>)> done);

std::string topic_missing_message(const std::string& topic);
// Why a topic's metadata cannot be used: it does not exist, or this user may not see it.
std::optional<Error> topic_unusable(const TopicMeta* tm, const std::string& topic);

}  // namespace quorumq::client
