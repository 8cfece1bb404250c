#include "kafka_groups.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

namespace quorumq::broker {

namespace E = kafka_error;

namespace {
constexpr auto kTick = std::chrono::milliseconds(100);
constexpr auto kPendingMemberTtl = std::chrono::seconds(30);
constexpr std::int32_t kMinSessionMs = 1000, kMaxSessionMs = 1800000, kMaxRebalanceMs = 300000;

std::string new_member_id(const std::string& client_id) {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::string prefix = client_id.substr(0, 64);
  if (prefix.empty() || !valid_group_id(prefix)) prefix = "consumer";
  std::lock_guard lk(mu);
  char buf[40];
  std::snprintf(buf, sizeof buf, "-%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return prefix + buf;
}

std::size_t protocols_bytes(const std::vector<KafkaGroupCoordinator::Protocol>& ps) {
  std::size_t n = 0;
  for (const auto& p : ps) n += p.name.size() + p.metadata.size();
  return n;
}

const char* state_name(int s) {
  static const char* names[] = {"Empty", "PreparingRebalance", "CompletingRebalance", "Stable"};
  return names[s];
}
}  // namespace

KafkaGroupCoordinator::KafkaGroupCoordinator(Controller& controller, GroupRegistry& registry, Executor& exec,
                                             Limits limits)
    : controller_(controller), registry_(registry), exec_(exec), limits_(limits) {}

KafkaGroupCoordinator::~KafkaGroupCoordinator() { *alive_ = false; }

void KafkaGroupCoordinator::start() { schedule_tick(); }

void KafkaGroupCoordinator::stop() {
  Replies out;
  {
    std::lock_guard lk(mu_);
    stopped_ = true;
    if (tick_timer_) tick_timer_->cancel();
    fail_all_locked(out, E::not_coordinator);
  }
  run(out);
}

void KafkaGroupCoordinator::run(Replies& out) {
  for (auto& f : out) f();
  out.clear();
}

void KafkaGroupCoordinator::schedule_tick() {
  std::weak_ptr<bool> alive = alive_;
  auto t = exec_.run_after(kTick, [this, alive](bool cancelled) {
    if (cancelled || !alive.lock()) return;
    tick();
  });
  std::lock_guard lk(mu_);
  tick_timer_ = std::move(t);
}

void KafkaGroupCoordinator::fail_all_locked(Replies& out, std::int16_t code) {
  for (auto& [name, g] : groups_)
    for (auto& [id, m] : g.members) {
      if (m.join_reply) out.push_back([f = std::move(m.join_reply), code] { f(JoinAnswer{.error = code}); });
      if (m.sync_reply) out.push_back([f = std::move(m.sync_reply), code] { f(SyncAnswer{.error = code}); });
      m.join_reply = nullptr;
      m.sync_reply = nullptr;
    }
  groups_.clear();
  metadata_bytes_ = 0;
}

// Coordinating: leading the controller group with an entry of this term committed. A new term
// reloads the Kafka groups from the registry (members, generation, ownership), each Stable.
std::int16_t KafkaGroupCoordinator::active_locked() {
  ReplicatedLog* g = controller_.group();
  if (stopped_ || !g || !g->is_leader()) {
    term_ = 0;
    return E::not_coordinator;
  }
  if (!g->leader_ready()) return E::coordinator_load_in_progress;
  if (g->term() != term_) {
    Replies stale;
    fail_all_locked(stale, E::not_coordinator);
    // Replies of the old term run from the next tick (never under our lock).
    if (!stale.empty()) exec_.post([stale = std::move(stale)]() mutable { run(stale); });
    term_ = g->term();
    const auto now = Clock::now();
    for (const auto& s : registry_.all()) {
      if (!s.is_kafka()) continue;
      Group& n = groups_[s.name];
      n.state = s.members.empty() ? State::empty : State::stable;
      n.generation = s.generation;
      n.protocol_type = s.protocol_type;
      n.protocol = s.assignor;
      n.assignments_known = false;
      for (const auto& [id, gm] : s.members) {
        Member& m = n.members[id];
        m.id = id;
        m.client_id = gm.client_id;
        m.topics = gm.topics;
        m.session_timeout_ms = gm.session_timeout_ms;
        m.rebalance_timeout_ms = gm.rebalance_timeout_ms;
        m.last_seen = now;
      }
      for (const auto& [tp, o] : s.owners) n.owners[tp] = o.member;
    }
    spdlog::info("Kafka group coordinator: now coordinating {} Kafka group(s) (controller term {})", groups_.size(),
                 term_);
  }
  return E::none;
}

std::int16_t KafkaGroupCoordinator::coordinating() {
  std::lock_guard lk(mu_);
  return active_locked();
}

GroupState KafkaGroupCoordinator::replicated_locked(const std::string& name, const Group& g) const {
  GroupState s;
  s.name = name;
  s.generation = g.generation;
  s.assignor = g.protocol;
  s.protocol_type = g.protocol_type;
  for (const auto& [id, m] : g.members) {
    GroupMember gm;
    gm.id = id;
    gm.client_id = m.client_id;
    gm.topics = m.topics;
    std::sort(gm.topics.begin(), gm.topics.end());
    gm.topics.erase(std::unique(gm.topics.begin(), gm.topics.end()), gm.topics.end());
    gm.session_timeout_ms = m.session_timeout_ms;
    gm.rebalance_timeout_ms = m.rebalance_timeout_ms;
    s.members.emplace(id, std::move(gm));
  }
  for (const auto& [tp, member] : g.owners)
    if (g.members.contains(member)) s.owners[tp] = PartitionOwner{member, g.generation};
  if (s.members.empty()) s.protocol_type.clear();  // an empty group is forgotten, of either kind
  return s;
}

std::optional<std::string> KafkaGroupCoordinator::over_limits_locked(const std::string& name, Group& g) {
  const std::size_t bytes = encode_group_state(replicated_locked(name, g)).size();
  if (bytes > limits_.max_group_state_bytes)
    return "group " + name + " would take " + std::to_string(bytes) + " bytes of replicated state, over the limit of " +
           std::to_string(limits_.max_group_state_bytes) + " (fewer members, topics or partitions per group)";
  // Every checkpoint of the controller holds every group: all Kafka groups together are bounded.
  std::size_t total = bytes;
  for (const auto& [other, og] : groups_)
    if (other != name) total += og.state_bytes;
  if (total > limits_.max_groups_state_bytes)
    return "Kafka consumer groups would take " + std::to_string(total) + " bytes of replicated state in all, over " +
           std::to_string(limits_.max_groups_state_bytes) + "; remove unused groups' members";
  g.state_bytes = bytes;
  return std::nullopt;
}

// Replicates the group's current state; with one proposal in flight, the newest state goes next.
void KafkaGroupCoordinator::propose_locked(const std::string& name, Group& g, Replies& out) {
  ++g.seq;
  if (g.in_flight) {
    g.dirty = true;
    return;
  }
  g.in_flight = true;
  g.dirty = false;
  const std::uint64_t seq = g.seq, term = term_;
  out.push_back([this, bytes = encode_group_state(replicated_locked(name, g)), name, seq, term]() mutable {
    std::weak_ptr<bool> alive = alive_;
    controller_.propose_raw(std::move(bytes), [this, alive, name, seq, term](std::optional<Status> err) {
      if (err) spdlog::debug("Kafka group {}: proposal failed: {}", name, err->message);
      exec_.post([this, alive, name, seq, term, ok = !err] {
        if (alive.lock()) on_committed(name, seq, ok, term);
      });
    });
  });
}

void KafkaGroupCoordinator::on_committed(const std::string& name, std::uint64_t seq, bool ok, std::uint64_t term) {
  Replies out;
  {
    std::lock_guard lk(mu_);
    // Only for the groups of the term that proposed it: a new term reloaded every group (its
    // sequence numbers start again), and this proposal's outcome means nothing to them.
    if (active_locked() != E::none || term != term_) return;
    auto it = groups_.find(name);
    if (it == groups_.end()) return;
    Group& g = it->second;
    g.in_flight = false;
    if (ok) g.committed = std::max(g.committed, seq);
    else g.dirty = true;  // the tick retries while we coordinate
    if (g.state == State::completing && g.sync_seq != 0 && g.committed >= g.sync_seq) {
      g.state = State::stable;
      spdlog::info("Kafka group {}: generation {} stable with {} member(s), protocol {}", name, g.generation,
                   g.members.size(), g.protocol);
      for (auto& [id, m] : g.members)
        if (m.sync_reply)
          out.push_back([f = std::move(m.sync_reply), a = m.assignment] { f(SyncAnswer{E::none, a}); }),
              m.sync_reply = nullptr;
    }
    if (ok && g.dirty) {
      --g.seq;  // re-proposing the newest state is not a new change
      propose_locked(name, g, out);
    }
  }
  run(out);
}

void KafkaGroupCoordinator::rebalance_locked(const std::string& name, Group& g, Replies& out, const char* why) {
  if (g.state == State::preparing) return;
  const bool was_empty = g.state == State::empty || g.members.size() <= 1;
  g.state = State::preparing;
  g.sync_seq = 0;
  const auto now = Clock::now();
  std::int32_t longest = 0;
  for (const auto& [id, m] : g.members) longest = std::max(longest, m.rebalance_timeout_ms);
  g.rebalance_started = was_empty ? now : now - limits_.initial_rebalance_delay;
  g.rebalance_deadline = now + std::chrono::milliseconds(std::min(longest, kMaxRebalanceMs));
  for (auto& [id, m] : g.members)
    if (m.sync_reply) {
      out.push_back([f = std::move(m.sync_reply)] { f(SyncAnswer{E::rebalance_in_progress, {}}); });
      m.sync_reply = nullptr;
    }
  spdlog::info("Kafka group {}: rebalancing ({}), generation {}, {} member(s)", name, why, g.generation,
               g.members.size());
}

void KafkaGroupCoordinator::maybe_complete_join_locked(const std::string& name, Group& g, Replies& out,
                                                       bool deadline_passed) {
  if (g.state != State::preparing) return;
  const auto now = Clock::now();
  const bool all = std::all_of(g.members.begin(), g.members.end(), [](const auto& kv) { return bool(kv.second.join_reply); });
  // A group that starts from nothing waits a moment for the other members starting with it, so
  // three consumers started together get one rebalance, not three (Kafka's initial delay).
  const bool settled = now >= g.rebalance_started + limits_.initial_rebalance_delay;
  if (!deadline_passed && (!all || !settled)) return;
  std::vector<std::string> missing;
  for (const auto& [id, m] : g.members)
    if (!m.join_reply) missing.push_back(id);
  for (const auto& id : missing) {
    spdlog::info("Kafka group {}: member {} did not rejoin within the rebalance timeout; removed", name, id);
    std::erase_if(g.owners, [&](const auto& kv) { return kv.second == id; });
    metadata_bytes_ -= protocols_bytes(g.members[id].protocols);
    g.members.erase(id);
  }
  if (g.leader.size() && !g.members.contains(g.leader)) g.leader.clear();
  ++g.generation;
  if (g.members.empty()) {
    g.state = State::empty;
    g.owners.clear();
    g.protocol.clear();
    propose_locked(name, g, out);
    return;
  }
  // The protocol every member supports that most members prefer (Kafka's vote).
  std::map<std::string, int> votes;
  const auto& first = g.members.begin()->second.protocols;
  for (const auto& p : first) {
    const bool everyone = std::all_of(g.members.begin(), g.members.end(), [&](const auto& kv) {
      return std::any_of(kv.second.protocols.begin(), kv.second.protocols.end(),
                         [&](const Protocol& q) { return q.name == p.name; });
    });
    if (everyone) votes[p.name] = 0;
  }
  for (const auto& [id, m] : g.members)
    for (const auto& p : m.protocols)
      if (auto v = votes.find(p.name); v != votes.end()) {
        ++v->second;
        break;
      }
  g.protocol.clear();
  int best = -1;
  for (const auto& p : first)
    if (auto v = votes.find(p.name); v != votes.end() && v->second > best) best = v->second, g.protocol = p.name;
  if (g.leader.empty()) g.leader = g.members.begin()->first;
  g.state = State::completing;
  g.assignments_known = true;
  g.sync_seq = 0;
  for (auto& [id, m] : g.members) m.assignment.clear();
  for (auto& [id, m] : g.members) {
    JoinAnswer a{E::none, g.generation, g.protocol, g.leader, id, {}};
    if (id == g.leader)
      for (const auto& [oid, om] : g.members)
        for (const auto& p : om.protocols)
          if (p.name == g.protocol) a.members.push_back({oid, p.metadata});
    out.push_back([f = std::move(m.join_reply), a = std::move(a)]() mutable { f(std::move(a)); });
    m.join_reply = nullptr;
    m.last_seen = now;
  }
  spdlog::info("Kafka group {}: generation {} with {} member(s), protocol {}, leader {}", name, g.generation,
               g.members.size(), g.protocol, g.leader);
  propose_locked(name, g, out);  // the new generation and membership (ownership changes at SyncGroup)
}

void KafkaGroupCoordinator::remove_member_locked(const std::string& name, Group& g, const std::string& id,
                                                 Replies& out, const char* why) {
  auto it = g.members.find(id);
  if (it == g.members.end()) return;
  if (it->second.join_reply)
    out.push_back([f = std::move(it->second.join_reply)] { f(JoinAnswer{.error = E::unknown_member_id}); });
  if (it->second.sync_reply)
    out.push_back([f = std::move(it->second.sync_reply)] { f(SyncAnswer{E::unknown_member_id, {}}); });
  metadata_bytes_ -= protocols_bytes(it->second.protocols);
  g.members.erase(it);
  std::erase_if(g.owners, [&](const auto& kv) { return kv.second == id; });
  if (g.leader == id) g.leader.clear();
  spdlog::info("Kafka group {}: member {} {}", name, id, why);
  if (g.members.empty()) {
    g.state = State::empty;
    g.owners.clear();
    g.protocol.clear();
    ++g.generation;
  } else {
    rebalance_locked(name, g, out, why);
    maybe_complete_join_locked(name, g, out, false);
  }
  propose_locked(name, g, out);  // its partitions are fenced at once
}

void KafkaGroupCoordinator::join(Join j, std::function<void(JoinAnswer)> reply) {
  Replies out;
  {
    std::unique_lock lk(mu_);
    auto fail = [&](std::int16_t code, std::string member = {}) {
      lk.unlock();
      reply(JoinAnswer{.error = code, .member_id = std::move(member)});
    };
    if (auto e = active_locked()) return fail(e);
    if (!valid_group_id(j.group)) return fail(E::invalid_group_id);
    if (j.rebalance_timeout_ms < 0) j.rebalance_timeout_ms = j.session_timeout_ms;
    if (j.session_timeout_ms < kMinSessionMs || j.session_timeout_ms > kMaxSessionMs)
      return fail(E::invalid_session_timeout);
    if (j.protocol_type.empty() || j.protocol_type.size() > 64 || j.protocols.empty())
      return fail(E::inconsistent_group_protocol);
    if (!groups_.contains(j.group)) {
      auto s = registry_.get(j.group);
      if (s && !s->is_kafka() && !s->members.empty()) {
        spdlog::warn("Kafka group {}: refused a Kafka member: the group has {} native member(s)", j.group,
                     s->members.size());
        return fail(E::inconsistent_group_protocol);
      }
      if (std::max(groups_.size(), registry_.size()) >= limits_.max_groups) {
        spdlog::warn("Kafka group {}: refused: the cluster already has {} groups (--max-groups)", j.group,
                     limits_.max_groups);
        return fail(E::group_max_size_reached);
      }
    }
    Group& g = groups_[j.group];
    const bool has_members = !g.members.empty();
    if (has_members && g.protocol_type != j.protocol_type) return fail(E::inconsistent_group_protocol);
    // Some protocol must be one every (known) member supports.
    const bool common = std::any_of(j.protocols.begin(), j.protocols.end(), [&](const Protocol& p) {
      return std::all_of(g.members.begin(), g.members.end(), [&](const auto& kv) {
        const auto& ps = kv.second.protocols;
        return kv.first == j.member_id || ps.empty() ||
               std::any_of(ps.begin(), ps.end(), [&](const Protocol& q) { return q.name == p.name; });
      });
    });
    if (!common) return fail(E::inconsistent_group_protocol);
    const auto now = Clock::now();
    std::string id = j.member_id;
    bool is_new = false;
    if (id.empty()) {
      if (g.members.size() + g.pending.size() >= limits_.max_group_members) return fail(E::group_max_size_reached);
      id = new_member_id(j.client_id);
      if (j.require_known_member_id) {
        g.pending[id] = now;
        return fail(E::member_id_required, id);
      }
      is_new = true;
    } else if (!g.members.contains(id)) {
      if (!g.pending.erase(id)) return fail(E::unknown_member_id, id);
      is_new = true;
    }
    Member& m = g.members[id];
    // What this join changes of an existing member, to put back if the join is refused.
    auto old_protocols = m.protocols;
    auto old_topics = m.topics;
    const auto old_session = m.session_timeout_ms, old_rebalance = m.rebalance_timeout_ms;
    const bool same_protocols =
        !is_new && m.protocols.size() == j.protocols.size() &&
        std::equal(m.protocols.begin(), m.protocols.end(), j.protocols.begin(),
                   [](const Protocol& a, const Protocol& b) { return a.name == b.name && a.metadata == b.metadata; });
    m.id = id;
    m.client_id = j.client_id.substr(0, 255);
    m.client_host = j.client_host;
    m.session_timeout_ms = j.session_timeout_ms;
    m.rebalance_timeout_ms = j.rebalance_timeout_ms;
    metadata_bytes_ -= protocols_bytes(m.protocols);
    m.protocols = std::move(j.protocols);
    metadata_bytes_ += protocols_bytes(m.protocols);
    m.topics = std::move(j.topics);
    m.last_seen = now;
    g.protocol_type = j.protocol_type;
    std::optional<std::string> why = over_limits_locked(j.group, g);
    if (!why && metadata_bytes_ > limits_.max_metadata_bytes)
      why = "Kafka group members hold " + std::to_string(metadata_bytes_) + " bytes of protocol metadata in all, over " +
            std::to_string(limits_.max_metadata_bytes);
    if (why) {
      spdlog::warn("Kafka group {}: refused member {}: {}", j.group, id, *why);
      metadata_bytes_ -= protocols_bytes(m.protocols);
      if (is_new) {
        g.members.erase(id);
      } else {
        metadata_bytes_ += protocols_bytes(old_protocols);
        m.protocols = std::move(old_protocols);
        m.topics = std::move(old_topics);
        m.session_timeout_ms = old_session;
        m.rebalance_timeout_ms = old_rebalance;
      }
      return fail(E::group_max_size_reached);
    }
    if (m.join_reply) out.push_back([f = std::move(m.join_reply)] { f(JoinAnswer{.error = E::rebalance_in_progress}); });
    if (g.state == State::stable && same_protocols && id != g.leader && g.assignments_known) {
      // A follower rejoining with nothing changed: the current generation as it is (Kafka does this).
      JoinAnswer a{E::none, g.generation, g.protocol, g.leader, id, {}};
      lk.unlock();
      run(out);
      return reply(std::move(a));
    }
    m.join_reply = std::move(reply);
    rebalance_locked(j.group, g, out, is_new ? "a member joined" : "a member rejoined");
    maybe_complete_join_locked(j.group, g, out, false);
  }
  run(out);
}

void KafkaGroupCoordinator::sync(Sync s, std::function<void(SyncAnswer)> reply) {
  Replies out;
  {
    std::unique_lock lk(mu_);
    auto fail = [&](std::int16_t code) {
      lk.unlock();
      run(out);
      reply(SyncAnswer{code, {}});
    };
    if (auto e = active_locked()) return fail(e);
    auto git = groups_.find(s.group);
    if (git == groups_.end()) return fail(E::unknown_member_id);
    Group& g = git->second;
    auto mit = g.members.find(s.member_id);
    if (mit == g.members.end()) return fail(E::unknown_member_id);
    Member& m = mit->second;
    m.last_seen = Clock::now();
    if (s.generation != g.generation) return fail(E::illegal_generation);
    if (g.state == State::preparing) return fail(E::rebalance_in_progress);
    if (g.state == State::stable) {
      if (!g.assignments_known) {  // reloaded after a failover: collect the assignment again
        rebalance_locked(s.group, g, out, "a member asked for its assignment after a coordinator failover");
        return fail(E::rebalance_in_progress);
      }
      SyncAnswer a{E::none, m.assignment};
      lk.unlock();
      return reply(std::move(a));
    }
    // CompletingRebalance: everyone waits for the leader's assignment to be replicated.
    if (m.sync_reply) out.push_back([f = std::move(m.sync_reply)] { f(SyncAnswer{E::rebalance_in_progress, {}}); });
    m.sync_reply = std::move(reply);
    if (s.member_id == g.leader && g.sync_seq == 0) {
      std::map<TopicPartitionKey, std::string> owners;
      for (auto& [id, mem] : g.members) {
        auto a = s.assignments.find(id);
        mem.assignment = a == s.assignments.end() ? Bytes{} : std::move(a->second);
        if (auto d = s.assigned.find(id); d != s.assigned.end())
          for (const auto& tp : d->second)
            if (!owners.emplace(tp, id).second)
              spdlog::warn("Kafka group {}: the leader assigned {}/{} to two members; {} keeps it", s.group, tp.first,
                           tp.second, owners[tp]);
      }
      auto old = std::move(g.owners);
      g.owners = std::move(owners);
      if (auto why = over_limits_locked(s.group, g)) {
        spdlog::warn("Kafka group {}: assignment refused: {}", s.group, *why);
        g.owners = std::move(old);
        for (auto& [id, mem] : g.members)
          if (mem.sync_reply)
            out.push_back([f = std::move(mem.sync_reply)] { f(SyncAnswer{E::unknown_server_error, {}}); }),
                mem.sync_reply = nullptr;
        rebalance_locked(s.group, g, out, "the assignment was over the limits");
      } else {
        propose_locked(s.group, g, out);
        g.sync_seq = g.seq;
      }
    }
  }
  run(out);
}

std::int16_t KafkaGroupCoordinator::heartbeat(const std::string& group, const std::string& member,
                                              std::int32_t generation) {
  std::lock_guard lk(mu_);
  if (auto e = active_locked()) return e;
  auto git = groups_.find(group);
  if (git == groups_.end()) return E::unknown_member_id;
  Group& g = git->second;
  auto mit = g.members.find(member);
  if (mit == g.members.end()) return E::unknown_member_id;
  mit->second.last_seen = Clock::now();
  if (generation != g.generation) return E::illegal_generation;
  if (g.state == State::preparing) return E::rebalance_in_progress;
  return E::none;
}

std::int16_t KafkaGroupCoordinator::leave(const std::string& group, const std::vector<std::string>& members,
                                          std::vector<std::int16_t>& per_member) {
  Replies out;
  std::int16_t result = E::none;
  {
    std::lock_guard lk(mu_);
    per_member.assign(members.size(), E::unknown_member_id);
    if (auto e = active_locked()) {
      result = e;
    } else if (auto git = groups_.find(group); git == groups_.end()) {
      result = E::unknown_member_id;
    } else {
      Group& g = git->second;
      for (std::size_t i = 0; i < members.size(); ++i) {
        if (g.members.contains(members[i])) {
          remove_member_locked(group, g, members[i], out, "left the group");
          per_member[i] = E::none;
        } else if (g.pending.erase(members[i])) {
          per_member[i] = E::none;
        }
      }
      if (members.size() == 1) result = per_member[0];
    }
  }
  run(out);
  return result;
}

std::int16_t KafkaGroupCoordinator::check_commit(const std::string& group, const std::string& member,
                                                 std::int32_t generation) {
  std::lock_guard lk(mu_);
  if (auto e = active_locked()) return e;
  auto git = groups_.find(group);
  if (generation < 0 && member.empty()) {
    if (git != groups_.end() && !git->second.members.empty()) return E::unknown_member_id;
    return E::none;  // a simple commit; native members are checked by the partition leader
  }
  if (git == groups_.end()) return E::unknown_member_id;
  Group& g = git->second;
  auto mit = g.members.find(member);
  if (mit == g.members.end()) return E::unknown_member_id;
  if (generation != g.generation) return E::illegal_generation;
  if (g.state == State::completing) return E::rebalance_in_progress;
  mit->second.last_seen = Clock::now();
  return E::none;
}

KafkaGroupCoordinator::GroupInfo KafkaGroupCoordinator::describe(const std::string& group) {
  std::lock_guard lk(mu_);
  GroupInfo info;
  info.name = group;
  if (auto e = active_locked()) {
    info.error = e;
    return info;
  }
  if (auto git = groups_.find(group); git != groups_.end()) {
    const Group& g = git->second;
    info.state = state_name(static_cast<int>(g.state));
    info.protocol_type = g.protocol_type;
    info.protocol = g.protocol;
    for (const auto& [id, m] : g.members) {
      MemberInfo mi{id, m.client_id, m.client_host, {}, m.assignment};
      for (const auto& p : m.protocols)
        if (p.name == g.protocol) mi.metadata = p.metadata;
      info.members.push_back(std::move(mi));
    }
    return info;
  }
  if (auto s = registry_.get(group)) {  // a native group
    info.state = s->members.empty() ? "Empty" : "Stable";
    info.protocol_type = "quorumq";
    info.protocol = s->assignor;
    for (const auto& [id, m] : s->members) info.members.push_back({id, m.client_id, {}, {}, {}});
    return info;
  }
  info.state = "Dead";
  return info;
}

std::vector<std::pair<std::string, std::string>> KafkaGroupCoordinator::list() {
  std::lock_guard lk(mu_);
  std::map<std::string, std::string> out;
  if (active_locked() != E::none) return {};
  for (const auto& s : registry_.all()) out[s.name] = s.is_kafka() ? s.protocol_type : "quorumq";
  for (const auto& [name, g] : groups_)
    if (!g.members.empty()) out[name] = g.protocol_type;
  return {out.begin(), out.end()};
}

void KafkaGroupCoordinator::tick() {
  Replies out;
  {
    std::lock_guard lk(mu_);
    if (stopped_) return;
    if (active_locked() != E::none) {
      fail_all_locked(out, E::not_coordinator);
    } else {
      const auto now = Clock::now();
      for (auto& [name, g] : groups_) {
        std::erase_if(g.pending, [&](const auto& kv) { return now - kv.second > kPendingMemberTtl; });
        std::vector<std::string> expired;
        for (const auto& [id, m] : g.members)
          if (!m.join_reply && !m.sync_reply && now - m.last_seen > std::chrono::milliseconds(m.session_timeout_ms))
            expired.push_back(id);
        for (const auto& id : expired)
          remove_member_locked(name, g, id, out, "expired (no heartbeat within its session timeout)");
        if (g.state == State::preparing) maybe_complete_join_locked(name, g, out, now >= g.rebalance_deadline);
        if (g.dirty && !g.in_flight) {
          --g.seq;
          propose_locked(name, g, out);
        }
      }
      std::erase_if(groups_, [](const auto& kv) {
        const Group& g = kv.second;
        return g.state == State::empty && g.members.empty() && g.pending.empty() && !g.in_flight && !g.dirty;
      });
    }
  }
  run(out);
  schedule_tick();
}

}  // namespace quorumq::broker
