#include "replication.h"

#include <spdlog/spdlog.h>

namespace quorumq::broker {

ReplicaManager::ReplicaManager(const BrokerConfig& config, Transport& transport, Incarnation& incarnation)
    : config_(config), transport_(transport), incarnation_(incarnation), self_(node_id{config.node_id}) {
  if (config.peers.empty()) {
    brokers_.push_back(self_);
  } else {
    for (const auto& p : config.peers) brokers_.push_back(node_id{p.id});
    std::sort(brokers_.begin(), brokers_.end());
  }
}

std::optional<HostPort> ReplicaManager::address_of(node_id n) const {
  if (n == self_) return config_.client_address();
  std::lock_guard lk(mu_);
  if (auto it = client_addresses_.find(n); it != client_addresses_.end()) return it->second;
  return std::nullopt;  // not heard from yet: --peers names peer addresses, not client ones
}

std::optional<HostPort> ReplicaManager::kafka_address_of(node_id n) const {
  if (n == self_) return config_.kafka_address();
  std::lock_guard lk(mu_);
  if (auto it = kafka_addresses_.find(n); it != kafka_addresses_.end()) return it->second;
  return std::nullopt;
}

void ReplicaManager::learn_address(std::map<node_id, HostPort>& known, node_id n, HostPort addr, const char* what) {
  if (std::find(brokers_.begin(), brokers_.end(), n) == brokers_.end() || n == self_) return;
  std::lock_guard lk(mu_);
  auto& cur = known[n];
  if (cur.host != addr.host || cur.port != addr.port) {
    spdlog::info("broker {} serves {} at {}", n.value, what, addr.str());
    cur = std::move(addr);
  }
}

void ReplicaManager::learn_client_address(node_id n, HostPort addr) {
  learn_address(client_addresses_, n, std::move(addr), "clients");
}

void ReplicaManager::learn_kafka_address(node_id n, HostPort addr) {
  learn_address(kafka_addresses_, n, std::move(addr), "Kafka clients");
}

GroupOptions ReplicaManager::base_options() const {
  GroupOptions o;
  o.self = self_;
  o.election_timeout_ticks = std::max(2, static_cast<int>(config_.election_timeout_ms) / kTickMs);
  o.heartbeat_interval_ticks = std::max(1, static_cast<int>(config_.heartbeat_interval_ms) / kTickMs);
  // A group created after this broker settled is a new one (a topic created since): nothing lost.
  const auto v = incarnation_.verdict();
  o.lost_state = v == Incarnation::Verdict::unknown;
  o.lost_state_known = v == Incarnation::Verdict::lost && !incarnation_.settled();
  return o;
}

void ReplicaManager::add(const std::shared_ptr<ReplicatedLog>& g) {
  std::lock_guard lk(mu_);
  groups_[g->name()] = g;
}

void ReplicaManager::remove(const std::string& name) {
  std::lock_guard lk(mu_);
  groups_.erase(name);
}

std::vector<std::shared_ptr<ReplicatedLog>> ReplicaManager::snapshot() const {
  std::vector<std::shared_ptr<ReplicatedLog>> out;
  std::lock_guard lk(mu_);
  out.reserve(groups_.size());
  for (const auto& [_, w] : groups_)
    if (auto g = w.lock()) out.push_back(std::move(g));
  return out;
}

void ReplicaManager::peer_connected(node_id n) {
  std::lock_guard lk(mu_);
  connected_since_[n] = std::chrono::steady_clock::now();
}

void ReplicaManager::peer_unreachable(node_id n) {
  for (auto& g : snapshot()) g->peer_unreachable(n);
}

void ReplicaManager::tick_all() {
  const auto groups = snapshot();
  for (auto& g : groups) g->tick();
  if (++ticks_ % 10 == 0) {  // every 100 ms: in-sync replicas
    std::map<node_id, std::chrono::steady_clock::time_point> since;
    {
      std::lock_guard lk(mu_);
      since = connected_since_;
    }
    const auto now = std::chrono::steady_clock::now();
    const auto lookup = [&since](node_id n) {
      auto it = since.find(n);
      return it == since.end() ? std::chrono::steady_clock::time_point{} : it->second;
    };
    for (auto& g : groups) g->update_isr(now, replica_lag_max_, lookup);
  }
  // After the ticks: a controller tick may have created partition groups (applying a topic).
  bool settled = true;
  for (auto& g : snapshot()) settled &= g->settled();
  incarnation_.set_settled(settled);
}

void ReplicaManager::deliver(const DecodedEnvelope& env) {
  // The header first: it may tell us (before any vote request in this envelope is looked at)
  // that this broker lost its data, or that it is whole.
  if (incarnation_.on_header(node_id{env.from}, {env.dirs.sender_dir, env.dirs.receiver_dir, env.dirs.sender_settled})) {
    // Read again per group: another thread may apply a newer verdict at the same time.
    for (auto& g : snapshot()) g->set_lost_state(incarnation_.verdict() != Incarnation::Verdict::whole);
  }
  std::vector<std::pair<std::shared_ptr<ReplicatedLog>, const raft::Message*>> work;
  {
    std::lock_guard lk(mu_);
    for (const auto& l : env.leaders) {
      // A broker announces only what it leads itself; the map is bounded by what can exist.
      if (l.leader != env.from) continue;
      if (!announced_.contains(l.group) && announced_.size() >= kAnnouncedMax) continue;
      auto& a = announced_[l.group];
      if (l.term >= a.term) a = l;
    }
    for (const auto& gm : env.messages) {
      if (gm.msg.from.value != env.from || gm.msg.to != self_) {
        rejected_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      auto it = groups_.find(gm.group);
      if (it == groups_.end()) continue;  // not (yet) hosted here: Raft retries
      if (auto g = it->second.lock()) work.emplace_back(std::move(g), &gm.msg);
    }
  }
  for (auto& [g, m] : work) g->step(*m);
}

std::vector<LeaderAnnouncement> ReplicaManager::led_groups(const std::function<void(LeaderAnnouncement&)>& fill) const {
  std::vector<LeaderAnnouncement> out;
  for (const auto& g : snapshot())
    if (g->is_leader()) {
      LeaderAnnouncement a{g->name(), self_.value, g->term(), -1, -1, {}};
      for (const auto n : g->isr()) a.isr.push_back(n.value);
      if (fill) fill(a);
      out.push_back(std::move(a));
    }
  return out;
}

std::optional<LeaderAnnouncement> ReplicaManager::announced(const std::string& group) const {
  std::lock_guard lk(mu_);
  if (auto it = announced_.find(group); it != announced_.end()) return it->second;
  return std::nullopt;
}

std::optional<node_id> ReplicaManager::leader_of(const std::string& group) const {
  std::lock_guard lk(mu_);
  if (auto it = groups_.find(group); it != groups_.end())
    if (auto g = it->second.lock()) return g->leader();
  if (auto it = announced_.find(group); it != announced_.end() && it->second.leader >= 0) return node_id{it->second.leader};
  return std::nullopt;
}

std::size_t ReplicaManager::transfer_all() {
  std::size_t led = 0;
  for (auto& g : snapshot())
    if (g->is_leader()) {
      ++led;
      g->transfer_leadership();
    }
  return led;
}

std::size_t ReplicaManager::leading_count() const {
  std::size_t n = 0;
  for (const auto& g : snapshot()) n += g->is_leader();
  return n;
}

bool ReplicaManager::scrub_some(std::size_t max_bytes) {
  std::shared_ptr<ReplicatedLog> pick;
  {
    std::lock_guard lk(mu_);
    // The first verifying group after the cursor, wrapping around: groups take turns.
    auto it = groups_.upper_bound(scrub_cursor_);
    for (std::size_t n = 0; n < groups_.size() && !pick; ++n, ++it) {
      if (it == groups_.end()) it = groups_.begin();
      if (auto g = it->second.lock(); g && g->verifying()) {
        pick = std::move(g);
        scrub_cursor_ = it->first;
      }
    }
  }
  if (!pick) return false;
  return pick->scrub_step(max_bytes);  // false after a group's last step (or a read error): a pause
}

std::size_t ReplicaManager::verifying_count() const {
  std::size_t n = 0;
  for (const auto& g : snapshot())
    if (g->verifying()) ++n;
  return n;
}

}  // namespace quorumq::broker
