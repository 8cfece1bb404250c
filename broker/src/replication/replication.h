// ReplicaManager: the broker's Raft groups (the controller and every hosted partition) as one
// set — it ticks them, routes inbound Raft messages to them, announces which groups this broker
// leads, and remembers what other brokers announce (so Metadata can name the leader of a
// partition this broker does not host).
// Threads: all methods are thread-safe; groups are referenced weakly and looked up by name.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
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
  // A broker's client address: this broker's own, or what a peer said in its handshake.
  std::optional<HostPort> address_of(node_id n) const;
  void learn_client_address(node_id n, HostPort addr);
  // Kafka listener addresses: this broker's from its config, peers' from their handshakes.
  std::optional<HostPort> kafka_address_of(node_id n) const;
  void learn_kafka_address(node_id n, HostPort addr);
  // Options every group starts from (ticks from the config; lost_state while this broker's
  // incarnation is not known to be whole).
  GroupOptions base_options() const;
  static constexpr int kTickMs = 10;
  // Leader announcements remembered (one per group of the cluster: partitions + controller).
  static constexpr std::size_t kAnnouncedMax = 1u << 20;

  void add(const std::shared_ptr<ReplicatedLog>& g);
  void remove(const std::string& name);
  // Ticks every group; reports to the incarnation whether every group has caught up.
  void tick_all();
  // Inbound envelope from an authenticated peer (env.from). Messages not from that peer or not
  // addressed to this broker are dropped and counted, as are leader announcements for others.
  void deliver(const DecodedEnvelope& env);
  std::uint64_t rejected_messages() const { return rejected_.load(std::memory_order_relaxed); }
  // Groups this broker leads right now, for the periodic announcement; `fill` adds what the
  // group's state machine knows (a partition's high watermark and log start).
  std::vector<LeaderAnnouncement> led_groups(const std::function<void(LeaderAnnouncement&)>& fill = {}) const;
  std::optional<node_id> leader_of(const std::string& group) const;
  // What the leader of `group` last announced (another broker's partition), if anything.
  std::optional<LeaderAnnouncement> announced(const std::string& group) const;
  // A peer's link to this broker came up (its authenticated inbound session): its replicas
  // must catch up again before they count as in sync.
  void peer_connected(node_id n);
  // The transport found `n`'s peer port refusing connections after a link to it was up: its
  // process is gone. Groups it led elect a new leader without waiting out the timeout.
  void peer_unreachable(node_id n);
  // Every group's ISR is recomputed from here (with --replica-lag-max-ms).
  void set_replica_lag_max(std::chrono::milliseconds lag) { replica_lag_max_ = lag; }
  std::chrono::milliseconds replica_lag_max() const { return replica_lag_max_; }

  // Graceful shutdown: hand every led group to a follower. Returns how many are still led.
  std::size_t transfer_all();
  std::size_t leading_count() const;
  // One step of the background log check of some group still verifying (round robin); false
  // when none has work left, or the step finished a group (the caller may pause). Called by the broker's scrub thread and the simulation.
  bool scrub_some(std::size_t max_bytes);
  // Groups of this broker whose stored log is not yet checked since the restart.
  std::size_t verifying_count() const;

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
  std::map<node_id, HostPort> client_addresses_;         // learned in peer handshakes
  std::map<node_id, HostPort> kafka_addresses_;          // learned in peer handshakes
  void learn_address(std::map<node_id, HostPort>& known, node_id n, HostPort addr, const char* what);
  std::map<node_id, std::chrono::steady_clock::time_point> connected_since_;
  std::string scrub_cursor_;  // name of the group scrubbed last (round robin), under mu_
  std::chrono::milliseconds replica_lag_max_{10000};
  std::uint64_t ticks_ = 0;
  std::atomic<std::uint64_t> rejected_{0};
};

}  // namespace quorumq::broker
