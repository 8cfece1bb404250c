#include "simulator.h"

#include <cstdio>
#include <cstring>

namespace quorumq::sim {

using raft::Message;
using raft::MessageType;
using raft::Role;

Simulator::Simulator(SimOptions options)
    : opt_(options),
      rng_(options.seed * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL),
      gone_rng_(options.seed * 0xd1b54a32d192ed03ULL + 0x8cb92ba72f3d8dd7ULL) {
  const int voters = chance(0.5) ? 3 : 5;
  const int learners = chance(0.25) ? 1 : 0;
  for (int i = 1; i <= voters + learners; ++i) {
    Node n;
    n.id = i;
    n.learner = i > voters;
    (n.learner ? learners_ : voters_).push_back(node_id(i));
    nodes_.push_back(std::move(n));
  }
  blocked_.assign(nodes_.size() + 1, std::vector<bool>(nodes_.size() + 1, false));
  link_last_at_.assign(nodes_.size() + 1, std::vector<std::uint64_t>(nodes_.size() + 1, 0));
  // A fault profile per seed: some seeds are calm, some hostile, so both liveness-heavy and
  // fault-heavy schedules get explored.
  drop_prob_ = chance(0.2) ? 0.0 : static_cast<double>(rand(15)) / 100.0;
  reorder_prob_ = chance(0.5) ? 0.0 : (chance(0.2) ? 1.0 : static_cast<double>(rand(20)) / 100.0);
  dup_prob_ = chance(0.5) ? 0.0 : static_cast<double>(rand(6)) / 100.0;
  crash_prob_ = chance(0.2) ? 0.0 : 1.0 / static_cast<double>(50 + rand(600));
  partition_prob_ = chance(0.2) ? 0.0 : 1.0 / static_cast<double>(50 + rand(500));
  propose_prob_ = 1.0 / static_cast<double>(2 + rand(12));
  retention_prob_ = chance(0.4) ? 0.0 : 1.0 / static_cast<double>(50 + rand(300));
  transfer_prob_ = chance(0.5) ? 0.0 : 1.0 / static_cast<double>(200 + rand(800));
  wipe_voter_prob_ = chance(0.5) ? 0.0 : 0.2;
  max_delay_units_ = 1 + rand(chance(0.3) ? 30 : 10);
  max_persist_units_ = rand(6);
  pre_vote_ = !chance(0.15);
  check_quorum_ = !chance(0.15);
  max_inflight_ = 1 + rand(8);
  max_msg_bytes_ = 40 + rand(chance(0.5) ? 200 : 2000);
  trace_ring_.reserve(trace_keep);
  if (opt_.gone_signals) {
    // Per seed: how often a survivor hears of a crash (some never do: a host that vanished), and
    // how often a live node is wrongly reported gone.
    gone_notice_prob_ = gone_rng_.chance(0.3) ? 0.0 : (gone_rng_.chance(0.5) ? 1.0 : 0.5);
    gone_false_prob_ = gone_rng_.chance(0.5) ? 0.0 : 1.0 / static_cast<double>(100 + gone_rng_.below(900));
  }
}

void Simulator::signal_gone(int dead, bool wrong) {
  for (Node& o : nodes_) {
    if (o.id == dead || !o.raft || !gone_rng_.chance(wrong ? 0.5 : gone_notice_prob_)) continue;
    trace(wrong ? "gone-wrong" : "gone", o.id, static_cast<std::uint64_t>(dead));
    o.raft->peer_unreachable(node_id(dead));
    ++gone_signals_;
    check_node(o);
    pump(o);
  }
}

raft::Config Simulator::config_for(const Node& n) const {
  raft::Config c;
  c.id = node_id(n.id);
  c.voters = voters_;
  c.learners = learners_;
  c.election_timeout_ticks = 10;
  c.heartbeat_interval_ticks = 2;
  c.max_inflight_msgs = max_inflight_;
  c.max_msg_bytes = max_msg_bytes_;
  c.max_committed_bytes = 512;
  c.pre_vote = pre_vote_;
  c.check_quorum = check_quorum_;
  c.rng_seed = opt_.seed * 1000003ULL + static_cast<std::uint64_t>(n.incarnation) * 7919ULL;
  c.applied = log_index(n.disk.first_index().value - 1);
  c.lost_state = n.lost_state;
  return c;
}

void Simulator::trace(const char* what, int node, std::uint64_t a, std::uint64_t b,
                      std::uint64_t c, std::string detail) {
  ++events_;
  for (std::uint64_t v : {now_, static_cast<std::uint64_t>(node), a, b, c,
                          static_cast<std::uint64_t>(std::strlen(what)),
                          static_cast<std::uint64_t>(what[0])}) {
    trace_hash_ = (trace_hash_ ^ v) * 1099511628211ULL;
  }
  TraceEvent ev{now_, what, node, a, b, c, std::move(detail)};
  if (trace_ring_.size() < trace_keep) {
    trace_ring_.push_back(std::move(ev));
  } else {
    trace_ring_[trace_next_] = std::move(ev);
  }
  trace_next_ = (trace_next_ + 1) % trace_keep;
}

namespace {
std::uint64_t pack(const Message& m) {
  return static_cast<std::uint64_t>(m.type) << 16 | static_cast<std::uint64_t>(m.from.value) << 8 |
         static_cast<std::uint64_t>(m.to.value) | (m.reject ? 1ULL << 24 : 0) |
         static_cast<std::uint64_t>(m.entries.size()) << 32;
}
}  // namespace

std::string Simulator::trace_tail() const {
  std::string out;
  const std::size_t n = trace_ring_.size();
  const std::size_t start = n < trace_keep ? 0 : trace_next_;
  for (std::size_t k = 0; k < n; ++k) {
    const TraceEvent& e = trace_ring_[(start + k) % n];
    char buf[320];
    if (std::strcmp(e.what, "send") == 0 || std::strcmp(e.what, "recv") == 0 ||
        std::strcmp(e.what, "drop") == 0) {
      std::snprintf(buf, sizeof buf, "  t=%llu %s %s %llu->%llu term=%llu idx=%llu n=%llu%s\n",
                    static_cast<unsigned long long>(e.time), e.what,
                    raft::to_string(static_cast<MessageType>((e.a >> 16) & 0xff)),
                    static_cast<unsigned long long>((e.a >> 8) & 0xff),
                    static_cast<unsigned long long>(e.a & 0xff),
                    static_cast<unsigned long long>(e.b), static_cast<unsigned long long>(e.c),
                    static_cast<unsigned long long>(e.a >> 32), (e.a >> 24) & 1 ? " REJECT" : "");
    } else {
      std::snprintf(buf, sizeof buf, "  t=%llu n%d %s %llu %llu %llu %s\n",
                    static_cast<unsigned long long>(e.time), e.node, e.what,
                    static_cast<unsigned long long>(e.a), static_cast<unsigned long long>(e.b),
                    static_cast<unsigned long long>(e.c), e.detail.c_str());
    }
    out += buf;
  }
  return out;
}

void Simulator::start_node(Node& n) {
  ++n.incarnation;
  n.raft = std::make_unique<raft::Raft>(config_for(n), n.disk, n.hard_state);
  n.applied = n.raft->applied_index();
  n.pending.reset();
  n.next_tick_at = now_ + 1 + rand(tick_units);
  trace("start", n.id, n.hard_state.term.value, n.disk.first_index().value,
        n.disk.last_index().value);
  check_node(n);
  pump(n);
}

void Simulator::crash_node(Node& n) {
  // Everything not persisted through Ready/advance is lost: the Raft object (unstable log,
  // volatile state) and a Ready whose persistence had not completed.
  if (n.raft) rejected_ += n.raft->messages_rejected();
  n.raft.reset();
  n.pending.reset();
  n.clear_lost_on_write = false;
  n.restart_at = now_ + 20 + rand(400);
  trace("crash", n.id);
  if (gone_notice_prob_ > 0) signal_gone(n.id, false);
  // A voter may lose its disk too (raft::Config::lost_state), one at a time: the rule assumes
  // at most a minority lost theirs, and a second loss before the first member caught up would
  // be two. A replaced disk takes longer than an election (restart after >= 5 timeouts).
  bool others_whole = true;
  for (const Node& o : nodes_) others_whole &= o.id == n.id || o.learner || !o.lost_state;
  // Only with check-quorum, as the broker always runs (raft::Config::lost_state relies on it:
  // without it a stale leader of an older term can outlive the replaced disk and be the first
  // leader the wiped voter meets; seed 7440 found that once the gone signals moved its elections).
  if (!n.learner && others_whole && chance(wipe_voter_prob_) && check_quorum_) {
    n.disk = raft::MemoryLog{};
    n.hard_state = raft::HardState{};
    n.applied = log_index(0);
    n.lost_state = true;
    n.restart_at = now_ + 5 * 10 * tick_units + rand(400);
    trace("wipe", n.id);
    return;
  }
  // A learner may come back with a wiped data directory (GUIDE: a broker that lost its disk
  // rejoins as a learner): the leader must notice and re-send from the start.
  if (n.learner && chance(0.3)) {
    n.disk = raft::MemoryLog{};
    n.hard_state = raft::HardState{};
    n.applied = log_index(0);
    trace("wipe", n.id);
  }
}

void Simulator::pump(Node& n) {
  if (!n.raft || n.pending || !n.raft->has_ready()) return;
  raft::Ready rd = n.raft->ready();
  if (rd.soft_state) {
    trace("role", n.id, static_cast<std::uint64_t>(rd.soft_state->role),
          rd.soft_state->leader ? static_cast<std::uint64_t>(rd.soft_state->leader->value) : 0,
          n.raft->term().value, raft::to_string(rd.soft_state->role));
  }
  for (const Message& m : rd.messages_early) send(m);
  // The driver stores the end of the lost_state rule with this Ready (broker: ReplicatedLog).
  n.clear_lost_on_write = n.lost_state && !n.raft->lost_state();
  // The write completes at write_at; the rest of the Ready (messages, apply, advance) may lag
  // behind it, as with a group-commit callback that runs later. A crash in between keeps the
  // write and loses the rest.
  n.write_at = now_ + rand(max_persist_units_ + 1);
  n.persist_at = n.write_at + (chance(0.3) ? rand(max_persist_units_ + 1) : 0);
  n.written = false;
  n.report_early = chance(0.5);
  n.pending = std::move(rd);
}

void Simulator::write_disk(Node& n) {
  const raft::Ready& rd = *n.pending;
  n.written = true;
  if (rd.reset_log) {
    for (auto i = std::max(rd.reset_log->first_index, n.disk.first_index()).value;
         i <= n.disk.last_index().value; ++i) {
      checker_.observe_removed(n.id, n.disk.at(log_index(i)));
    }
    // Retention removes only committed entries, so the new log start is committed.
    if (!rd.hard_state || rd.hard_state->commit.value + 1 < rd.reset_log->first_index.value) {
      checker_.fail("reset_log without commit >= first_index - 1");
    }
  }
  if (rd.truncate_from) {
    for (auto i = rd.truncate_from->value; i <= n.disk.last_index().value; ++i) {
      checker_.observe_removed(n.id, n.disk.at(log_index(i)));
    }
  }
  n.disk.apply_ready(rd);
  if (rd.hard_state) n.hard_state = *rd.hard_state;
  if (n.clear_lost_on_write) {
    n.lost_state = false;
    n.clear_lost_on_write = false;
    trace("caught-up", n.id, n.disk.last_index().value);
  }
  if (!rd.entries.empty()) {
    const log_index first = rd.entries.front().index;
    checker_.observe_entries(n.id, rd.entries, n.disk.term(log_index(first.value - 1)));
  }
  trace("persist", n.id, rd.entries.size(), n.disk.last_index().value, n.hard_state.commit.value,
        rd.reset_log ? "reset" : "");
  if (n.report_early && !rd.entries.empty()) {
    // Thesis §10.2.1 path: tell the core its entries are durable before advance().
    n.raft->on_persisted(rd.entries.back().index, rd.entries.back().term);
    check_node(n);
  }
}

void Simulator::complete_persist(Node& n) {
  if (!n.written) write_disk(n);
  raft::Ready rd = std::move(*n.pending);
  n.pending.reset();
  for (const Message& m : rd.messages) send(m);
  // A reset moves the state machine to the new log start before newer entries are applied.
  if (rd.reset_log) {
    n.applied = std::max(n.applied, log_index(rd.reset_log->first_index.value - 1));
  }
  for (const raft::Entry& e : rd.committed_entries) {
    if (e.index.value != n.applied.value + 1) {
      checker_.fail("node " + std::to_string(n.id) + " applied " + std::to_string(e.index.value) +
                    " after " + std::to_string(n.applied.value));
    }
    checker_.observe_applied(n.id, e);
    n.applied = e.index;
  }
  n.raft->advance(rd);
  check_node(n);
}

void Simulator::send(const Message& m) {
  if (m.type == MessageType::append && !m.entries.empty()) {
    checker_.observe_entries(m.from.value, m.entries, m.log_term);
  }
  if (faults_on_ && chance(drop_prob_)) {
    trace("drop", m.from.value, pack(m), m.term.value, m.index.value);
    return;
  }
  trace("send", m.from.value, pack(m), m.term.value, m.index.value);
  // Links are FIFO (TCP) unless the reorder fault hits: then the message may overtake others.
  std::uint64_t at = now_ + 1 + rand(max_delay_units_);
  std::uint64_t& link_last = link_last_at_[static_cast<std::size_t>(m.from.value)]
                                          [static_cast<std::size_t>(m.to.value)];
  if (!(faults_on_ && chance(reorder_prob_))) at = std::max(at, link_last);
  link_last = std::max(link_last, at);
  network_.push(InFlight{at, seq_++, m});
  if (faults_on_ && chance(dup_prob_)) {
    network_.push(InFlight{now_ + 1 + rand(max_delay_units_ * 2), seq_++, m});
  }
  if (opt_.hostile && faults_on_ && chance(0.05)) inject_hostile(m);
}

// A message derived from `m` that no correct peer can send. Every kind must be dropped by the
// receiving core (raft::Raft::reject_reason) or be harmless (a replay long after the fact).
void Simulator::inject_hostile(const Message& m) {
  Message x = m;
  int to = m.to.value;
  const int count = static_cast<int>(nodes_.size());
  switch (rand(8)) {
    case 0:  // delivered to a node it is not addressed to
      to = 1 + static_cast<int>(rand(static_cast<std::uint64_t>(count)));
      if (to == m.to.value) to = to % count + 1;
      break;
    case 1:  // claims to come from the receiver itself
      x.from = x.to;
      break;
    case 2:  // from a node that is not a member
      x.from = node_id(count + 1 + static_cast<int>(rand(5)));
      break;
    case 3:  // a log reset past anything committed, at the sender's or a later term
      x.type = MessageType::install_snapshot;
      x.entries.clear();
      x.term = term_t(m.term.value + rand(3));
      x.commit = log_index(rand(1000));
      x.index = log_index(x.commit.value + 1 + rand(1000));
      x.log_term = x.term;
      x.leader_last = log_index(x.index.value + rand(10));
      break;
    case 4:  // an acknowledgement of entries beyond any log
      x.type = MessageType::append_resp;
      x.entries.clear();
      x.reject = false;
      x.index = log_index((std::uint64_t{1} << 40) + rand(1000));
      break;
    case 5:  // a heartbeat committing beyond the entry it names
      x.type = MessageType::heartbeat;
      x.entries.clear();
      x.commit = log_index(x.index.value + 1 + rand(1000));
      break;
    case 6:  // entries that do not follow prevLogIndex, or carry a term above the sender's
      if (m.type != MessageType::append || m.entries.empty()) return;
      if (chance(0.5)) {
        x.entries.front().index = log_index(x.entries.front().index.value + 1 + rand(5));
      } else {
        x.entries.back().term = term_t(m.term.value + 1 + rand(5));
      }
      break;
    default:  // an ordinary replay, long after it was sent
      break;
  }
  ++injected_;
  trace("inject", m.from.value, static_cast<std::uint64_t>(x.type), x.term.value, x.index.value);
  network_.push(InFlight{now_ + 1 + rand(max_delay_units_ * 20), seq_++, x, to});
}

bool Simulator::link_ok(int from, int to) const {
  return !blocked_[static_cast<std::size_t>(from)][static_cast<std::size_t>(to)];
}

void Simulator::deliver_due() {
  while (!network_.empty() && network_.top().at <= now_ && !checker_.failed()) {
    Message m = network_.top().msg;
    const int to = network_.top().deliver_to ? network_.top().deliver_to : m.to.value;
    network_.pop();
    Node& d = node(to);
    const bool forged_sender = m.from.value < 1 || m.from.value > static_cast<int>(nodes_.size());
    if (!d.raft || (!forged_sender && !link_ok(m.from.value, to))) {
      trace("drop", m.from.value, pack(m), m.term.value, m.index.value);
      continue;
    }
    trace("recv", m.to.value, pack(m), m.term.value, m.index.value);
    d.raft->step(m);
    check_node(d);
    pump(d);
  }
}

void Simulator::check_node(Node& n) {
  if (!n.raft) return;
  std::string v = n.raft->find_invariant_violation();
  if (!v.empty()) checker_.fail("node " + std::to_string(n.id) + " invariant: " + v);
  if (n.raft->role() == Role::leader && n.led_term != n.raft->term()) {
    n.led_term = n.raft->term();
    trace("leads", n.id, n.led_term.value, n.raft->log().last_index().value);
    checker_.observe_leader(n.id, n.led_term, *n.raft);
  }
}

void Simulator::repartition() {
  for (auto& row : blocked_) std::fill(row.begin(), row.end(), false);
  const int count = static_cast<int>(nodes_.size());
  const int a = 1 + static_cast<int>(rand(static_cast<std::uint64_t>(count)));
  switch (rand(5)) {
    case 0:
      trace("heal", 0);
      break;
    case 1:  // isolate one node, both directions
      for (int j = 1; j <= count; ++j) {
        if (j != a) blocked_[a][j] = blocked_[j][a] = true;
      }
      trace("isolate", a);
      break;
    case 2: {  // random split into two sides
      std::vector<bool> side(static_cast<std::size_t>(count + 1));
      for (int j = 1; j <= count; ++j) side[j] = chance(0.5);
      for (int i = 1; i <= count; ++i)
        for (int j = 1; j <= count; ++j)
          if (side[i] != side[j]) blocked_[i][j] = true;
      trace("split", 0);
      break;
    }
    case 3:  // one-way: a can hear but not be heard (or the reverse)
      if (chance(0.5)) {
        for (int j = 1; j <= count; ++j) blocked_[a][j] = true;
        trace("mute", a);
      } else {
        for (int j = 1; j <= count; ++j) blocked_[j][a] = true;
        trace("deafen", a);
      }
      break;
    default: {  // a few random one-way links
      for (int k = 0; k < 3; ++k) {
        const int i = 1 + static_cast<int>(rand(static_cast<std::uint64_t>(count)));
        const int j = 1 + static_cast<int>(rand(static_cast<std::uint64_t>(count)));
        if (i != j) blocked_[i][j] = true;
      }
      trace("cut-links", 0);
    }
  }
}

void Simulator::propose_somewhere() {
  Node& n = nodes_[rand(nodes_.size())];
  if (!n.raft) return;
  if (n.raft->role() != Role::leader && !chance(0.1)) return;
  std::vector<std::uint8_t> bytes(8 + rand(40));
  const std::uint64_t key = next_payload_++;
  std::memcpy(bytes.data(), &key, sizeof key);
  auto r = n.raft->propose(raft::make_payload(std::move(bytes)));
  if (r) {
    trace("propose", n.id, key, r->value);
  } else if (n.raft->role() == Role::leader &&
             r.error().code != raft::errc::leadership_transfer_pending) {
    checker_.fail("leader refused a proposal: " + r.error().code.message());
  }
  check_node(n);
  pump(n);
}

void Simulator::random_faults() {
  if (chance(crash_prob_)) {
    Node& n = nodes_[rand(nodes_.size())];
    if (n.raft) crash_node(n);
  }
  for (Node& n : nodes_) {
    if (!n.raft && now_ >= n.restart_at) start_node(n);
  }
  if (gone_false_prob_ > 0 && gone_rng_.chance(gone_false_prob_)) {
    Node& n = nodes_[gone_rng_.below(nodes_.size())];
    if (n.raft) signal_gone(n.id, true);
  }
  if (chance(partition_prob_)) repartition();
  if (chance(propose_prob_)) propose_somewhere();
  if (chance(retention_prob_)) {
    Node& n = nodes_[rand(nodes_.size())];
    const log_index first = n.disk.first_index();
    const log_index limit = std::min(n.applied, n.disk.last_index());
    if (limit >= first) {
      const log_index to(first.value + rand(limit.value - first.value + 1));
      n.disk.compact(to);
      trace("retention", n.id, to.value);
    }
  }
  if (chance(transfer_prob_)) {
    for (Node& n : nodes_) {
      if (!n.raft || n.raft->role() != Role::leader) continue;
      const node_id to = voters_[rand(voters_.size())];
      if (to.value == n.id) break;
      auto r = n.raft->transfer_leadership(to);
      trace("transfer", n.id, static_cast<std::uint64_t>(to.value), r ? 1 : 0);
      check_node(n);
      pump(n);
      break;
    }
  }
}

void Simulator::step_once() {
  ++now_;
  deliver_due();
  for (Node& n : nodes_) {
    if (n.raft && now_ >= n.next_tick_at) {
      n.next_tick_at += tick_units;
      n.raft->tick();
      check_node(n);
      pump(n);
    }
  }
  for (Node& n : nodes_) {
    for (int k = 0; k < 8 && n.pending; ++k) {
      if (!n.written && now_ >= n.write_at) write_disk(n);
      if (now_ < n.persist_at) break;
      complete_persist(n);
      pump(n);
    }
  }
}

bool Simulator::liveness_phase() {
  faults_on_ = false;
  for (auto& row : blocked_) std::fill(row.begin(), row.end(), false);
  trace("heal-all", 0);
  for (Node& n : nodes_) {
    if (!n.raft) start_node(n);
  }
  std::optional<std::uint64_t> key;
  std::uint64_t proposed_at = 0;
  // Liveness means the group keeps making progress: the window restarts whenever replication
  // or commitment reaches further than ever before (a large backlog with tiny batches
  // legitimately takes long: a new leader commits nothing until its no-op is on a majority),
  // up to a hard cap.
  const std::uint64_t window = static_cast<std::uint64_t>(opt_.liveness_ticks) * tick_units;
  const std::uint64_t hard_deadline = now_ + 10 * window;
  std::uint64_t deadline = now_ + window;
  auto progress = [this] {
    std::uint64_t sum = 0;
    for (const Node& n : nodes_) sum += n.disk.last_index().value + n.hard_state.commit.value;
    return sum;
  };
  std::uint64_t best = progress();
  while (now_ < deadline && now_ < hard_deadline && !checker_.failed()) {
    step_once();
    if (const std::uint64_t p = progress(); p > best) {
      best = p;
      deadline = now_ + window;
    }
    if (key && checker_.is_committed(*key)) return true;
    // (Re)propose on the current leader if nothing is pending or the last try looks lost.
    if (!key || now_ - proposed_at > 30 * tick_units) {
      for (Node& n : nodes_) {
        if (!n.raft || n.raft->role() != Role::leader) continue;
        std::vector<std::uint8_t> bytes(8);
        const std::uint64_t k = next_payload_++;
        std::memcpy(bytes.data(), &k, sizeof k);
        if (n.raft->propose(raft::make_payload(std::move(bytes)))) {
          key = k;
          proposed_at = now_;
          trace("propose-live", n.id, k);
          pump(n);
        }
        break;
      }
    }
  }
  return key && checker_.is_committed(*key);
}

SimResult Simulator::run() {
  for (Node& n : nodes_) start_node(n);
  const std::uint64_t chaos_end = static_cast<std::uint64_t>(opt_.chaos_ticks) * tick_units;
  while (now_ < chaos_end && !checker_.failed()) {
    step_once();
    random_faults();
  }
  if (!checker_.failed() && !liveness_phase() && !checker_.failed()) {
    checker_.fail("liveness: after healing, no new proposal committed (no progress for " +
                  std::to_string(opt_.liveness_ticks) + " ticks, or 10x that in total)");
  }
  SimResult r;
  r.ok = !checker_.failed();
  r.failure = checker_.failure();
  if (!r.ok) r.trace_tail = trace_tail();
  r.trace_hash = trace_hash_;
  r.committed = checker_.committed_count();
  r.gone_signals = gone_signals_;
  r.events = events_;
  r.injected = injected_;
  r.rejected = rejected_;
  for (const Node& n : nodes_)
    if (n.raft) r.rejected += n.raft->messages_rejected();
  return r;
}

}  // namespace quorumq::sim
