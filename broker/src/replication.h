// ReplicaManager: the broker's Raft groups (the controller and every hosted partition) as one
// set — it ticks them, routes inbound Raft messages to them, announces which groups this broker
// leads, and remembers what other brokers announce (so Metadata can name the leader of a
// partition this broker does not host).
// Threads: all methods are thread-safe; groups are referenced weakly and looked up by name.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config.h"
#include "incarnation.h"
#include "raft_codec.h"
#include "replicated_log.h"

namespace quorumq::broker {

class ReplicaManager {
 public:
  ReplicaManager(const BrokerConfig& config, Transport& transport, Incarnation& incarnation);

  const std::vector<node_id>& brokers() const { return brokers_; }
  node_id self() const { return self_; }
  std::optional<HostPort> address_of(node_id n) const;
  // Options every group starts from (ticks from the config; lost_state while this broker's
  // incarnation is not known to be whole).
  GroupOptions base_options() const;
  static constexpr int kTickMs = 10;

  void add(const std::shared_ptr<ReplicatedLog>& g);
  void remove(const std::string& name);
  // Ticks every group; reports to the incarnation whether every group has caught up.
  void tick_all();
  // Inbound envelope from peer `from` (already decoded and checked).
  void deliver(const DecodedEnvelope& env);
  // Groups this broker leads right now, for the periodic announcement.
  std::vector<LeaderAnnouncement> led_groups() const;
  std::optional<node_id> leader_of(const std::string& group) const;

  // Graceful shutdown: hand every led group to a follower. Returns how many are still led.
  std::size_t transfer_all();
  std::size_t leading_count() const;

 private:
  std::vector<std::shared_ptr<ReplicatedLog>> snapshot() const;

  const BrokerConfig& config_;
  Transport& transport_;
  Incarnation& incarnation_;
  node_id self_;
  std::vector<node_id> brokers_;
  mutable std::mutex mu_;
  std::map<std::string, std::weak_ptr<ReplicatedLog>> groups_;
  std::map<std::string, LeaderAnnouncement> announced_;  // from other brokers
};

}  // namespace quorumq::broker
