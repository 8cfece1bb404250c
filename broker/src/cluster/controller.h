// Controller: the cluster's metadata as a replicated log (like Kafka's KRaft), a Raft group over
// every broker. It holds the topics and their partition → replicas assignment; every broker
// applies its committed commands to its TopicManager in the same order.
//
// Commands are control batches whose payload is a state record (broker/schema/state.fbs):
// CreateTopic (name, partitions, replication factor, per partition its replicas with the
// preferred leader first, configs), DeleteTopic, AlterTopic (the whole config map),
// ControllerCheckpoint (the whole state — topics with ids, the extension's items — as of the
// entry before), and the extension's own records (consumer groups: GroupState). Logs written by
// earlier builds (text commands "create\n...", "group\n...", binary "checkpoint\n...") still
// replay; a checkpoint then rewrites the state in the new shape.
// Only the controller's leader accepts admin requests; others answer not_leader and clients
// retry at Metadata.controller_id.
//
// Compaction: once 1,000 entries or 4 MiB have been applied since the last checkpoint, the
// leader (when everything in its log is applied) proposes a checkpoint: the state as of the
// entry before it. Applying one REPLACES the state (topics and groups not in it are removed),
// and every replica then trims its log before it. So the log's size follows the cluster's
// state, not its history; a restart replays from the last checkpoint (persist_applied =
// false), and a replica too far behind gets a log reset (install_snapshot) and the checkpoint
// as its first entry.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "executor.h"
#include "quorumq/broker/state_generated.h"
#include "replicated_log.h"
#include "topics.h"

namespace quorumq::broker {

// State that a layer above the controller keeps in the controller log (the consumer groups):
// its commands ("<command>\n<body>") are applied in log order, and it is part of every
// checkpoint. The controller knows nothing else about it: dependencies point down.
class ControllerExtension {
 public:
  virtual ~ControllerExtension() = default;
  virtual std::string_view command() const = 0;
  // Whether this extension applies records of this type (each type has exactly one owner).
  virtual bool owns(state::Body type) const = 0;
  // A committed command's body (under the controller group's lock, on every broker).
  virtual void apply_command(std::span<const std::uint8_t> body, log_index index) = 0;
  // The whole state, as items for a checkpoint ...
  virtual std::vector<std::vector<std::uint8_t>> checkpoint_items() const = 0;
  // ... and the state replaced by a checkpoint's items (false: an item was unreadable). It gets
  // the items of the types it owns (and, for the first extension, items of earlier builds).
  virtual bool restore_checkpoint(const std::vector<std::span<const std::uint8_t>>& items) = 0;
};

// A topic as a create command or a checkpoint states it.
struct ParsedTopic {
  std::string name;
  TopicConfig cfg;
  std::vector<std::vector<node_id>> assignment;
};

class Controller : public Applier {
 public:
  static constexpr const char* kGroup = "__controller";

  Controller(storage::Storage& storage, TopicManager& topics, std::vector<node_id> brokers, node_id self);
  // Before start(): state kept by the layers above (consumer groups, users and ACLs).
  void add_extension(ControllerExtension* ext) { extensions_.push_back(ext); }
  std::expected<void, std::string> start(GroupOptions base, Transport& transport, Executor& exec);
  void stop();

  using Done = std::move_only_function<void(std::optional<Status>)>;
  void create_topic(const std::string& name, const TopicConfig& cfg, Done done);
  void delete_topic(const std::string& name, Done done);
  // Replaces the topic's configs (validated by the caller) through the log.
  void alter_topic(const std::string& name, const std::map<std::string, std::string>& configs, Done done);
  // A raw command (an extension's entries, e.g. the group coordinator's); done on quorum commit.
  // `record` is a state record (broker/schema/state.fbs) of the extension's.
  void propose_raw(std::vector<std::uint8_t> record, Done done) { propose(std::move(record), std::move(done)); }

  ReplicatedLog* group() const { return group_.get(); }
  const std::shared_ptr<ReplicatedLog>& group_ptr() const { return group_; }
  std::optional<node_id> leader() const { return group_ ? group_->leader() : std::nullopt; }

  // Spreads replicas and preferred leaders over the brokers (round-robin from a per-topic start).
  static std::vector<std::vector<node_id>> assign(const std::string& name, std::int32_t partitions,
                                                  std::int32_t replication_factor, const std::vector<node_id>& brokers);

  void on_start(log_index, std::int64_t) override {}
  void apply(const raft::Entry& e, std::span<const std::uint8_t> batch) override;

  // Leader: proposes a checkpoint if enough was applied since the last one (called every second).
  void maybe_checkpoint();
  static constexpr std::uint64_t kCheckpointEveryEntries = 1000;
  static constexpr std::uint64_t kCheckpointEveryBytes = 4u << 20;
  static constexpr std::size_t kCheckpointBytesMax = 32u << 20;
  std::uint64_t checkpoints_applied() const { return checkpoints_applied_.load(std::memory_order_relaxed); }

 private:
  // A checkpoint as read (either encoding), before it replaces the applied state.
  struct CheckpointContents {
    log_index covers{0};
    std::map<std::string, std::pair<std::uint64_t, ParsedTopic>> topics;
    std::vector<std::span<const std::uint8_t>> items;  // point into the entry's bytes
    bool ok = true;
  };
  void propose(std::vector<std::uint8_t> command, Done done);
  void apply_record(const raft::Entry& e, std::span<const std::uint8_t> record);
  void apply_create(const raft::Entry& e, const std::string& text);
  void apply_legacy_checkpoint(const raft::Entry& e, std::span<const std::uint8_t> body);
  void install_checkpoint(const raft::Entry& e, CheckpointContents cp);
  std::vector<std::uint8_t> encode_checkpoint(log_index covers) const;

  storage::Storage& storage_;
  TopicManager& topics_;
  std::vector<ControllerExtension*> extensions_;
  ControllerExtension* owner_of(state::Body type) const;
  const std::vector<node_id> brokers_;
  const node_id self_;
  std::shared_ptr<ReplicatedLog> group_;
  bool started_ = false;  // commands applied before start() completes are replays, not fresh
  // Under the group lock: what was applied since the last checkpoint; a proposal in flight.
  std::uint64_t entries_since_checkpoint_ = 0;
  std::uint64_t bytes_since_checkpoint_ = 0;
  bool checkpoint_in_flight_ = false;
  std::atomic<std::uint64_t> checkpoints_applied_{0};
};

}  // namespace quorumq::broker
