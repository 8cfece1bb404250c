// Controller: the cluster's metadata as a replicated log (like Kafka's KRaft), a Raft group over
// every broker. It holds the topics and their partition → replicas assignment; every broker
// applies its committed commands to its TopicManager in the same order.
//
// Commands are control batches; payload (text, one field per line):
//   create \n name \n partitions \n replication_factor \n assignment \n configs
//     assignment: "1,2,3;2,3,1;..." (per partition its replicas, preferred leader first)
//     configs:    "key=value;key=value"
//   delete \n name
//   group \n name \n <encode_group_state bytes>   (consumer groups, see groups.h)
// Only the controller's leader accepts admin requests; others answer not_leader and clients
// retry at Metadata.controller_id. The controller log is small and never trimmed: a restart
// replays it from the start (persist_applied = false).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "executor.h"
#include "groups.h"
#include "replicated_log.h"
#include "topics.h"

namespace quorumq::broker {

class Controller : public Applier {
 public:
  static constexpr const char* kGroup = "__controller";

  Controller(storage::Storage& storage, TopicManager& topics, GroupRegistry& groups, std::vector<node_id> brokers,
             node_id self);
  std::expected<void, std::string> start(GroupOptions base, Transport& transport, Executor& exec);
  void stop();

  using Done = std::move_only_function<void(std::optional<AdminError>)>;
  void create_topic(const std::string& name, const TopicConfig& cfg, Done done);
  void delete_topic(const std::string& name, Done done);
  // A raw command (the group coordinator's "group" entries); done on quorum commit.
  void propose_raw(std::string command, Done done) { propose(std::move(command), std::move(done)); }

  ReplicatedLog* group() const { return group_.get(); }
  const std::shared_ptr<ReplicatedLog>& group_ptr() const { return group_; }
  std::optional<node_id> leader() const { return group_ ? group_->leader() : std::nullopt; }

  // Spreads replicas and preferred leaders over the brokers (round-robin from a per-topic start).
  static std::vector<std::vector<node_id>> assign(const std::string& name, std::int32_t partitions,
                                                  std::int32_t replication_factor, const std::vector<node_id>& brokers);

  void on_start(log_index, std::int64_t) override {}
  void apply(const raft::Entry& e, std::span<const std::uint8_t> batch) override;

 private:
  void propose(std::string command, Done done);

  storage::Storage& storage_;
  TopicManager& topics_;
  GroupRegistry& groups_;
  const std::vector<node_id> brokers_;
  const node_id self_;
  std::shared_ptr<ReplicatedLog> group_;
  bool started_ = false;  // commands applied before start() completes are replays, not fresh
};

}  // namespace quorumq::broker
