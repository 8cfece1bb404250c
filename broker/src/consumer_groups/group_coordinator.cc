#include "group_coordinator.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

namespace quorumq::broker {

using wire::ErrorCode;

namespace {
constexpr auto kTick = std::chrono::milliseconds(100);

std::string random_suffix() {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard lk(mu);
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}
}  // namespace

GroupCoordinator::GroupCoordinator(Controller& controller, GroupRegistry& registry, TopicManager& topics,
                                   Executor& exec, Limits limits)
    : controller_(controller), registry_(registry), topics_(topics), exec_(exec), limits_(limits) {}

GroupCoordinator::~GroupCoordinator() { *alive_ = false; }

void GroupCoordinator::start() {
  std::weak_ptr<bool> alive = alive_;
  registry_.set_listener([this, alive](const std::string& name) {
    // Called under the controller's group lock: never take our lock there.
    exec_.post([this, alive, name] {
      if (alive.lock()) on_applied(name);
    });
  });
  schedule_tick();
}

void GroupCoordinator::stop() {
  registry_.set_listener(nullptr);
  Out out;
  {
    std::lock_guard lk(mu_);
    stopped_ = true;
    if (tick_timer_) tick_timer_->cancel();
    for (auto& [name, g] : groups_) {
      for (auto& [id, p] : g.parked) {
        if (p.timer) p.timer->cancel();
        out.replies.emplace_back(std::move(p.reply),
                                 Answer{ErrorCode::not_coordinator, "the coordinator is shutting down; retry", {}, -1, {}, {}, 0});
      }
      answer_leaves_locked(g, out, true);
    }
    groups_.clear();
  }
  flush(out);
}

void GroupCoordinator::schedule_tick() {
  std::weak_ptr<bool> alive = alive_;
  auto t = exec_.run_after(kTick, [this, alive](bool cancelled) {
    if (cancelled || !alive.lock()) return;
    tick();
  });
  std::lock_guard lk(mu_);
  tick_timer_ = std::move(t);
}

PartitionCounts GroupCoordinator::subscribed_counts(const GroupState& s, const TopicManager& topics) {
  PartitionCounts counts;
  for (const auto& [id, m] : s.members)
    for (const auto& t : m.topics)
      if (auto tp = topics.find(t)) counts[t] = tp->config.partitions;
  return counts;
}

Assignment GroupCoordinator::target_of(const GroupState& s, const TopicManager& topics) {
  return compute_target(s, subscribed_counts(s, topics));
}

// Coordinating means leading the controller group with an entry of our term committed (so
// everything committed before is applied to the registry). A new term reloads every group from
// the registry and restarts every member's session clock.
bool GroupCoordinator::active_locked() {
  ReplicatedLog* g = controller_.group();
  if (stopped_ || !g || !g->leader_ready()) {
    term_ = 0;
    return false;
  }
  if (g->term() != term_) {
    term_ = g->term();
    const auto now = Clock::now();
    std::map<std::string, Group> fresh;
    for (auto& s : registry_.all()) {
      if (s.is_kafka()) continue;  // the Kafka coordinator's (kafka_groups.h)
      Group& n = fresh[s.name];
      n.applied = s;
      n.working = std::move(s);
      for (const auto& [id, m] : n.working.members) n.last_seen[id] = now;
    }
    // Parked heartbeats of the old term are answered by the next tick (their groups are gone).
    for (auto& [name, old] : groups_)
      for (auto& [pid, p] : old.parked) fresh[name].parked.emplace(pid, std::move(p));
    groups_ = std::move(fresh);
    for (auto& [name, grp] : groups_) reconcile_locked(grp);  // proposes only if grants are due
    spdlog::info("group coordinator: now coordinating {} group(s) (controller term {})", groups_.size(), term_);
  }
  return true;
}

GroupCoordinator::Group& GroupCoordinator::group_locked(const std::string& name) {
  auto it = groups_.find(name);
  if (it != groups_.end()) return it->second;
  Group& g = groups_[name];
  if (auto s = registry_.get(name)) {
    g.applied = *s;
    g.working = std::move(*s);
  } else {
    g.applied.name = g.working.name = name;
  }
  return g;
}

void GroupCoordinator::reconcile_locked(Group& g) {
  g.counts = subscribed_counts(g.working, topics_);
  g.target = compute_target(g.working, g.counts);
  if (grant_free_partitions(g.working, g.target, g.counts)) g.changed = true;
  const auto now = Clock::now();
  for (const auto& [id, m] : g.working.members) {
    if (revoking(g.working, g.target, id).empty()) g.revoking_since.erase(id);
    else g.revoking_since.try_emplace(id, now);
  }
  std::erase_if(g.revoking_since, [&](const auto& kv) { return !g.working.members.contains(kv.first); });
}

void GroupCoordinator::maybe_propose_locked(const std::string& name, Group& g, Out& out) {
  if (!g.changed || g.in_flight) return;
  g.changed = false;
  g.in_flight = true;
  g.working.generation = std::max(g.working.generation, g.applied.generation) + 1;
  for (auto& [tp, o] : g.working.owners)
    if (o.since == 0) o.since = g.working.generation;
  out.proposals.push_back({name, encode_group_state(g.working)});
}

GroupCoordinator::Answer GroupCoordinator::answer_locked(const Group& g, const std::string& member) const {
  Answer a;
  a.member_id = member;
  a.generation = g.applied.generation;
  a.assignment = member_view(g.applied, g.working, g.target, member);
  auto m = g.working.members.find(member);
  const std::int32_t session = m == g.working.members.end() ? 10000 : m->second.session_timeout_ms;
  a.heartbeat_interval_ms = std::clamp(session / 3, 100, 3000);
  return a;
}

GroupCoordinator::Answer GroupCoordinator::parked_answer_locked(const Group& g, const std::string& member) const {
  if (g.working.members.contains(member)) return answer_locked(g, member);
  return Answer{ErrorCode::unknown_member_id,
                "member " + member + " was removed from the group (session or rebalance timeout); rejoin",
                {}, -1, {}, {}, 0};
}

// Answers parked heartbeats whose member's view changed (or all of them).
void GroupCoordinator::wake_locked(Group& g, Out& out, bool all) {
  for (auto it = g.parked.begin(); it != g.parked.end();) {
    Parked& p = it->second;
    Answer a = parked_answer_locked(g, p.member);
    if (!all && a.error == ErrorCode::none && a.assignment == p.owned) {
      ++it;
      continue;
    }
    if (p.timer) p.timer->cancel();
    out.replies.emplace_back(std::move(p.reply), std::move(a));
    it = g.parked.erase(it);
  }
}

std::optional<std::string> GroupCoordinator::state_over_limits_locked(const std::string& name, Group& g) {
  const std::size_t bytes = encode_group_state(g.working).size();
  if (bytes > limits_.max_group_state_bytes)
    return "group " + name + " would take " + std::to_string(bytes) + " bytes of replicated state, over the limit of " +
           std::to_string(limits_.max_group_state_bytes) +
           " (fewer members or shorter subscriptions; --max-group-state-bytes)";
  std::size_t total = bytes;
  for (const auto& [other, og] : groups_)
    if (other != name) total += og.state_bytes;
  if (total > limits_.max_groups_state_bytes)
    return "consumer groups would take " + std::to_string(total) + " bytes of replicated state in all, over the "
           "limit of " + std::to_string(limits_.max_groups_state_bytes) + "; remove unused groups' members";
  g.state_bytes = bytes;
  return std::nullopt;
}

void GroupCoordinator::answer_leaves_locked(Group& g, Out& out, bool all, Clock::time_point before) {
  for (auto it = g.leaving.begin(); it != g.leaving.end();) {
    if (all || !g.applied.members.contains(it->member) || it->since < before) {
      out.replies.emplace_back(std::move(it->reply), Answer{});
      it = g.leaving.erase(it);
    } else {
      ++it;
    }
  }
}

void GroupCoordinator::flush(Out& out) {
  for (auto& pr : out.proposals) {
    std::weak_ptr<bool> alive = alive_;
    controller_.propose_raw(std::move(pr.bytes), [this, alive, name = pr.group](std::optional<Status> err) {
      if (err) spdlog::debug("group {}: proposal failed: {}", name, err->message);
      exec_.post([this, alive, name, ok = !err] {
        if (alive.lock()) on_proposed(name, ok);
      });
    });
  }
  for (auto& [reply, answer] : out.replies) reply(std::move(answer));
  out = Out{};
}

void GroupCoordinator::on_proposed(const std::string& name, bool ok) {
  Out out;
  {
    std::lock_guard lk(mu_);
    auto it = groups_.find(name);
    if (it == groups_.end()) return;
    Group& g = it->second;
    g.in_flight = false;
    if (!ok) g.changed = true;  // retried by the tick while we still coordinate
    if (active_locked()) maybe_propose_locked(name, g, out);
  }
  flush(out);
}

void GroupCoordinator::on_applied(const std::string& name) {
  Out out;
  {
    std::lock_guard lk(mu_);
    if (!active_locked()) return;
    auto it = groups_.find(name);
    if (it == groups_.end()) return;
    Group& g = it->second;
    auto s = registry_.get(name);
    if (s && s->is_kafka()) {  // Kafka consumers took the group over after it emptied
      for (auto& [pid, p] : g.parked) {
        if (p.timer) p.timer->cancel();
        out.replies.emplace_back(std::move(p.reply),
                                 Answer{ErrorCode::unknown_member_id,
                                        "group " + name + " is now used by Kafka-protocol consumers; use another group id",
                                        {}, -1, {}, {}, 0});
      }
      g.parked.clear();
      answer_leaves_locked(g, out, true);
      groups_.erase(it);
    } else {
      if (s) g.applied = std::move(*s);
      else g.applied = GroupState{.name = name, .generation = g.applied.generation};  // emptied: forgotten by the registry
      wake_locked(g, out, false);
      answer_leaves_locked(g, out, false);
    }
  }
  flush(out);
}

void GroupCoordinator::heartbeat(Heartbeat hb, Reply reply) {
  Out out;
  {
    std::unique_lock lk(mu_);
    if (!active_locked()) {
      const auto leader = controller_.leader();
      Answer a{ErrorCode::not_coordinator,
               leader ? "the group coordinator is broker " + std::to_string(leader->value) + " (the controller's leader); retry there"
                      : "no group coordinator right now (controller election in progress); retry",
               {}, -1, {}, leader, 0};
      lk.unlock();
      return reply(std::move(a));
    }
    auto fail = [&](ErrorCode c, std::string msg) {
      Answer a;
      a.error = c;
      a.message = std::move(msg);
      lk.unlock();
      reply(std::move(a));
    };
    if (!valid_group_id(hb.group))
      return fail(ErrorCode::invalid_request, "group id must be 1-255 printable characters without spaces");
    if (!groups_.contains(hb.group) && !registry_.get(hb.group) &&
        std::max(groups_.size(), registry_.size()) >= limits_.max_groups)
      return fail(ErrorCode::invalid_request, "the cluster already has " + std::to_string(limits_.max_groups) +
                                                  " consumer groups (--max-groups); reuse a group or raise the limit");
    if (!groups_.contains(hb.group))
      if (auto s = registry_.get(hb.group); s && s->is_kafka())
        return fail(ErrorCode::invalid_config,
                    "group " + hb.group + " is used by " + std::to_string(s->members.size()) +
                        " Kafka-protocol consumer(s) (--kafka-listen); a group is either Kafka or native: use "
                        "another group id, or stop those consumers first");
    Group& g = group_locked(hb.group);
    const auto now = Clock::now();
    bool changed = false;
    std::string id = hb.member_id;
    if (id.empty()) {
      if (hb.leave) return fail(ErrorCode::none, {});
      if (hb.topics.empty()) return fail(ErrorCode::invalid_request, "a member must subscribe to at least one topic");
      if (g.working.members.size() >= limits_.max_group_members)
        return fail(ErrorCode::invalid_request, "group " + hb.group + " already has " +
                                                    std::to_string(limits_.max_group_members) +
                                                    " members (--max-group-members)");
      if (hb.assignor.empty()) hb.assignor = "sticky";
      if (!valid_assignor(hb.assignor))
        return fail(ErrorCode::invalid_config, "unknown assignor '" + hb.assignor + "'; use range, roundrobin or sticky");
      if (!g.working.members.empty() && g.working.assignor != hb.assignor)
        return fail(ErrorCode::invalid_config, "group " + hb.group + " uses the " + g.working.assignor +
                                                   " assignor; every member must use the same one (this one asked for " +
                                                   hb.assignor + ")");
      if (hb.session_timeout_ms < 500 || hb.session_timeout_ms > 300000 || hb.rebalance_timeout_ms < 500)
        return fail(ErrorCode::invalid_config,
                    "session_timeout_ms must be 500..300000 and rebalance_timeout_ms at least 500");
      const std::string cid = hb.client_id.empty() || !valid_group_id(hb.client_id) ? "member" : hb.client_id.substr(0, 64);
      id = cid + "-" + random_suffix();
      GroupMember m;
      m.id = id;
      m.client_id = hb.client_id.substr(0, 255);
      m.session_timeout_ms = hb.session_timeout_ms;
      m.rebalance_timeout_ms = hb.rebalance_timeout_ms;
      g.working.assignor = hb.assignor;
      g.working.members[id] = std::move(m);
      changed = true;
      spdlog::info("group {}: member {} joined (topics {})", hb.group, id, join(hb.topics));
    } else if (!g.working.members.contains(id)) {
      return fail(ErrorCode::unknown_member_id, "member " + id + " is not in group " + hb.group +
                                                    " (it left, missed its session timeout, or the group was "
                                                    "reloaded); rejoin with an empty member id");
    }
    GroupMember& m = g.working.members[id];
    g.last_seen[id] = now;
    if (hb.leave) {
      remove_member(g.working, id);
      g.last_seen.erase(id);
      changed = true;
      spdlog::info("group {}: member {} left", hb.group, id);
    } else {
      std::sort(hb.topics.begin(), hb.topics.end());
      hb.topics.erase(std::unique(hb.topics.begin(), hb.topics.end()), hb.topics.end());
      if (!hb.topics.empty() && m.topics != hb.topics) {
        // A new subscription grows the replicated group state: it must stay within the limits
        // (one controller entry per change, every group in each checkpoint).
        auto old_topics = std::move(m.topics);
        m.topics = hb.topics;
        if (auto why = state_over_limits_locked(hb.group, g)) {
          m.topics = std::move(old_topics);
          if (hb.member_id.empty()) {  // it joined with this request: undo the join
            g.working.members.erase(id);
            g.last_seen.erase(id);
          }
          return fail(ErrorCode::invalid_request, *why);
        }
        changed = true;
      }
      // Released: owned since a generation this member has acted on, and not reported any more.
      for (auto it = g.working.owners.begin(); it != g.working.owners.end();) {
        const PartitionOwner& o = it->second;
        if (o.member == id && o.since > 0 && o.since <= hb.generation && !hb.owned.contains(it->first)) {
          it = g.working.owners.erase(it);
          changed = true;
        } else {
          ++it;
        }
      }
    }
    if (changed) {
      g.changed = true;
      reconcile_locked(g);
      maybe_propose_locked(hb.group, g, out);
      wake_locked(g, out, false);
    }
    if (hb.leave) {
      g.leaving.push_back({id, std::move(reply), now});
      answer_leaves_locked(g, out, false);  // at once if it was never in the applied state
    } else {
      Answer a = answer_locked(g, id);
      const std::int32_t wait = std::min(hb.max_wait_ms, m.session_timeout_ms / 3);
      if (wait <= 0 || a.assignment != hb.owned || hb.member_id.empty()) {
        out.replies.emplace_back(std::move(reply), std::move(a));
      } else {
        const std::uint64_t pid = next_park_++;
        Parked& p = g.parked[pid];
        p.member = id;
        p.owned = std::move(hb.owned);
        p.reply = std::move(reply);
        std::weak_ptr<bool> alive = alive_;
        // The timer may fire before run_after returns: it finds the entry by id, under the lock.
        p.timer = exec_.run_after(std::chrono::milliseconds(wait), [this, alive, name = hb.group, pid](bool) {
          if (!alive.lock()) return;
          Out o;
          {
            std::lock_guard l2(mu_);
            auto git = groups_.find(name);
            if (git == groups_.end()) return;
            auto pit = git->second.parked.find(pid);
            if (pit == git->second.parked.end()) return;
            Parked pk = std::move(pit->second);
            git->second.parked.erase(pit);
            Answer a2 = parked_answer_locked(git->second, pk.member);
            if (term_ == 0) a2 = Answer{ErrorCode::not_coordinator, "the coordinator moved; retry", {}, -1, {}, controller_.leader(), 0};
            o.replies.emplace_back(std::move(pk.reply), std::move(a2));
          }
          flush(o);
        });
      }
    }
  }
  flush(out);
}

void GroupCoordinator::tick() {
  Out out;
  {
    std::lock_guard lk(mu_);
    if (stopped_) return;
    if (!active_locked()) {
      // Not coordinating (any more): send parked members to the new coordinator.
      const auto leader = controller_.leader();
      for (auto& [name, g] : groups_) {
        for (auto& [pid, p] : g.parked) {
          if (p.timer) p.timer->cancel();
          out.replies.emplace_back(std::move(p.reply),
                                   Answer{ErrorCode::not_coordinator, "the group coordinator moved; retry", {}, -1, {}, leader, 0});
        }
        answer_leaves_locked(g, out, true);
      }
      groups_.clear();
    } else {
      const auto now = Clock::now();
      for (auto& [name, g] : groups_) {
        bool changed = false;
        std::vector<std::string> gone;
        for (const auto& [id, m] : g.working.members) {
          auto seen = g.last_seen.find(id);
          if (seen == g.last_seen.end()) {
            g.last_seen[id] = now;
            continue;
          }
          if (now - seen->second > std::chrono::milliseconds(m.session_timeout_ms)) {
            spdlog::info("group {}: member {} expired (no heartbeat for {} ms)", name, id, m.session_timeout_ms);
            gone.push_back(id);
          } else if (auto r = g.revoking_since.find(id);
                     r != g.revoking_since.end() && now - r->second > std::chrono::milliseconds(m.rebalance_timeout_ms)) {
            spdlog::warn("group {}: member {} did not release its revoked partitions within {} ms; removed", name, id,
                         m.rebalance_timeout_ms);
            gone.push_back(id);
          }
        }
        for (const auto& id : gone) {
          remove_member(g.working, id);
          g.last_seen.erase(id);
          changed = true;
        }
        // Topics created, deleted or grown change the target.
        if (changed || g.changed || subscribed_counts(g.working, topics_) != g.counts) {
          g.changed = g.changed || changed;
          reconcile_locked(g);
          wake_locked(g, out, false);
        }
        maybe_propose_locked(name, g, out);
        answer_leaves_locked(g, out, false, now - std::chrono::seconds(5));  // never wait longer
      }
      // Groups that emptied (their empty state applied, nothing pending) are forgotten here too.
      std::erase_if(groups_, [](const auto& kv) {
        const Group& g = kv.second;
        return g.working.members.empty() && g.working.owners.empty() && g.applied.members.empty() &&
               g.applied.owners.empty() && !g.in_flight && !g.changed && g.parked.empty() && g.leaving.empty();
      });
    }
  }
  flush(out);
  schedule_tick();
}

}  // namespace quorumq::broker
