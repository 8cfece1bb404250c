#include "replicated_log.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>

#include "quorumq/protocol/assert.h"
#include "quorumq/protocol/record_batch.h"

namespace quorumq::broker {

using raft::Entry;
using raft::EntryType;
using wire::ErrorCode;

namespace {
EntryType entry_type_of(const BatchView& v) {
  switch (v.type()) {
    case BatchType::noop: return EntryType::noop;
    case BatchType::config: return EntryType::config;
    default: return EntryType::normal;
  }
}
std::int64_t end_of(const BatchView& v) { return v.base_offset() + v.offset_count(); }
}  // namespace

// The durable log as Raft sees it (raft::LogReader) over the storage partition log.
class ReplicatedLog::Reader final : public raft::LogReader {
 public:
  explicit Reader(storage::PartitionLog* log) : log_(log) {}
  log_index first_index() const override { return log_->state().first_index; }
  log_index last_index() const override { return log_->state().last_index; }
  std::optional<term_t> term(log_index i) const override { return log_->term_at(i); }
  std::vector<Entry> entries(log_index lo, log_index hi, std::size_t max_bytes) const override {
    std::vector<Entry> out;
    if (lo >= hi) return out;
    auto r = log_->entries(lo, log_index{hi.value - 1}, max_bytes);
    if (!r) {
      // Our own disk returned something we cannot trust. Serving it (or pretending the log is
      // shorter) could break Raft's promises, so stop this broker; at restart the start-up scan
      // finds the damaged entry and this replica repairs itself from the leader.
      spdlog::critical("group {}: reading entries [{}, {}): {}; stopping this broker", log_->name(), lo.value,
                       hi.value, r.error().message);
      spdlog::default_logger()->flush();
      std::_Exit(3);
    }
    out.reserve(r->size());
    for (auto& se : *r) {
      const BatchView v(se.batch);
      Entry e;
      e.index = se.index;
      e.term = term_t{v.term()};
      e.type = entry_type_of(v);
      e.payload = raft::make_payload(std::move(se.batch));
      out.push_back(std::move(e));
    }
    return out;
  }

 private:
  storage::PartitionLog* log_;
};

ReplicatedLog::ReplicatedLog(GroupOptions opts, storage::Storage& storage, storage::PartitionLog* log,
                             Transport& transport, Executor& exec, Applier* applier)
    : opts_(std::move(opts)), storage_(storage), log_(log), transport_(transport), exec_(exec), applier_(applier),
      reader_(std::make_unique<Reader>(log)) {}

ReplicatedLog::~ReplicatedLog() = default;

std::optional<log_index> ReplicatedLog::find_corruption() const {
  const auto st = log_->state();
  std::uint64_t lo = st.first_index.value;
  while (!st.empty() && lo <= st.last_index.value) {
    auto chunk = log_->entries(log_index{lo}, st.last_index, 16u << 20);
    if (!chunk) return log_index{lo};  // entries() reports the first damaged entry of a range
    if (chunk->empty()) break;
    lo = chunk->back().index.value + 1;
  }
  return std::nullopt;
}

std::unique_ptr<raft::Raft> ReplicatedLog::make_raft(const raft::HardState& hs, log_index applied,
                                                     bool lost_state) const {
  raft::Config cfg;
  cfg.id = opts_.self;
  cfg.voters = opts_.voters;
  cfg.learners = opts_.learners;
  if (recovering_until_) {
    if (recovering_term_ && !sim_regression::damaged_replica_is_learner) {
      cfg.held_before = std::pair{*recovering_until_, *recovering_term_};
    } else {  // recorded by a broker that did not store the term: the older, stricter rule
      std::erase(cfg.voters, opts_.self);
      cfg.learners.push_back(opts_.self);
    }
  }
  cfg.election_timeout_ticks = opts_.election_timeout_ticks;
  cfg.heartbeat_interval_ticks = opts_.heartbeat_interval_ticks;
  cfg.rng_seed = std::hash<std::string>{}(opts_.name) ^ static_cast<std::uint64_t>(opts_.self.value) * 0x9E3779B97F4A7C15ull ^
                 (opts_.rng_seed ? *opts_.rng_seed
                                 : static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  cfg.applied = applied;
  cfg.lost_state = lost_state;
  return std::make_unique<raft::Raft>(cfg, *reader_, hs);
}

void ReplicatedLog::start() {
  std::lock_guard lk(mu_);
  const std::string recover_key = "recovering:" + opts_.name;
  if (auto r = storage_.meta(recover_key); r && (r->size() == 8 || r->size() == 16)) {
    log_index target;
    std::memcpy(&target.value, r->data(), 8);
    recovering_until_ = target;
    if (r->size() == 16) {
      term_t t;
      std::memcpy(&t.value, r->data() + 8, 8);
      recovering_term_ = t;
    }
  }
  if (auto bad = find_corruption()) {
    // Never serve or stand with a damaged log: cut it at the damage and rebuild from the
    // leader; vote as if we still held what we held (Config::held_before).
    const auto before = log_->state().last_index;
    const auto before_term = log_->state().last_term;
    log_index target = before;
    std::optional<term_t> target_term = before_term;
    if (recovering_until_ && !recovering_term_) {
      // An older 8-byte record (no term): keep the larger index and the learner rule.
      target = std::max(before, *recovering_until_), target_term.reset();
    } else if (recovering_until_ && (*recovering_term_ > before_term ||
                                     (*recovering_term_ == before_term && *recovering_until_ > before))) {
      target = *recovering_until_, target_term = *recovering_term_;  // an earlier cut held more
    }
    std::vector<std::uint8_t> v(target_term ? 16 : 8);
    std::memcpy(v.data(), &target.value, 8);
    if (target_term) std::memcpy(v.data() + 8, &target_term->value, 8);
    std::vector<storage::WriteOp> ops;
    ops.emplace_back(storage::TruncateSuffixOp{log_, *bad});
    ops.emplace_back(storage::PutMetaOp{recover_key, std::move(v)});
    if (auto w = storage_.write_sync(std::move(ops)); !w) {
      spdlog::critical("group {}: cannot cut the damaged log at index {}: {}", opts_.name, bad->value, w.error().message);
      spdlog::default_logger()->flush();
      std::_Exit(3);
    }
    recovering_until_ = target;
    recovering_term_ = target_term;
    spdlog::error("group {}: stored entry {} failed its CRC check; log cut there (it held up to {}); this replica "
                  "re-fetches from the leader and does not stand for leader until it has recovered that far (it "
                  "votes as if it still held its old log)",
                  opts_.name, bad->value, before.value);
  }
  const auto st = log_->state();
  if (recovering_until_) {
    recovering_.store(true);
    if (opts_.voters.size() == 1) {
      // Nobody to recover from: a one-replica group with a damaged log can only go on with what
      // is left. Say so loudly; there is no other copy.
      spdlog::critical("group {}: single replica with a damaged log: entries from {} on are lost", opts_.name,
                       st.last_index.value + 1);
      recovering_until_.reset();
      recovering_term_.reset();
      recovering_.store(false);
      std::vector<storage::WriteOp> ops;
      ops.emplace_back(storage::DeleteMetaOp{recover_key});
      (void)storage_.write_sync(std::move(ops));
    }
  }
  // This broker may have lost what it held (Incarnation: known once a peer speaks). A known
  // loss is stored, so a restart before this group has caught up keeps the rule on.
  const std::string lost_key = "lost:" + opts_.name;
  lost_state_stored_ = storage_.meta(lost_key).has_value();
  if (!lost_state_stored_ && opts_.lost_state_known && can_lose_state()) {
    // Not waited for: if a crash loses it, the next start is "unknown" until a peer speaks,
    // and the peers still remember our old directory (we had not settled).
    std::vector<storage::WriteOp> ops;
    ops.emplace_back(storage::PutMetaOp{lost_key, {1}});
    storage_.submit(std::move(ops), [](auto) {});
    lost_state_stored_ = true;
  }
  const bool lost = can_lose_state() && (lost_state_stored_ || opts_.lost_state || opts_.lost_state_known);
  if (lost_state_stored_)
    spdlog::info("group {}: this broker lost its data; until this replica has caught up with a leader it does not vote",
                 opts_.name);
  lost_state_.store(lost);
  raft::HardState hs{};
  if (auto h = storage_.hard_state(opts_.name)) {
    hs.term = h->term;
    if (h->vote.value >= 0) hs.vote = h->vote;
    hs.commit = std::min(h->commit, st.last_index);
  }
  log_index applied{0};
  if (opts_.persist_applied) {
    if (auto a = storage_.meta("applied:" + opts_.name); a && a->size() == 8) {
      std::memcpy(&applied.value, a->data(), 8);
    }
  }
  // Applied can lag behind a trimmed prefix only if retention outran a crash; entries below
  // first_index - 1 are gone and were applied before they were trimmed.
  applied = std::min(applied, hs.commit);
  if (applied.value + 1 < st.first_index.value) applied = log_index{st.first_index.value - 1};
  std::int64_t applied_end = st.start_offset;
  if (applied >= st.first_index) {
    if (auto e = log_->entries(applied, applied, 1); e && !e->empty()) applied_end = end_of(BatchView(e->front().batch));
  }
  applier_->on_start(applied, applied_end);
  end_offset_ = st.next_offset;
  persisted_term_ = hs.term;
  persisted_vote_ = hs.vote;
  persisted_commit_ = hs.commit;
  persisted_applied_ = applied.value;
  raft_ = make_raft(hs, applied, lost);
  if (opts_.campaign_at_start && !recovering_until_) raft_->campaign_now();
  pump();
}

bool ReplicatedLog::can_lose_state() const {
  // Only where a vote can decide alone: with n voters and quorum q, a quorum and the quorum
  // that committed an entry share 2q - n members. With an even n that is >= 2, so another
  // member that holds the entry is in every winning quorum and refuses a candidate without it:
  // the rule would only cost availability (a 2-replica group could never elect again).
  const std::size_t n = opts_.voters.size();
  return n >= 3 && n % 2 == 1 && std::find(opts_.voters.begin(), opts_.voters.end(), opts_.self) != opts_.voters.end();
}

void ReplicatedLog::set_lost_state(bool lost) {
  std::lock_guard lk(mu_);
  if (stopped_ || !raft_ || !can_lose_state()) return;
  if (lost && raft_->role() == raft::Role::leader) return;  // won a majority's votes: holds everything
  // A stored (known) loss ends only by catching up: "whole" from a peer that never heard of us
  // lifts only the not-yet-known state of this start.
  if (!lost && lost_state_stored_) return;
  if (lost && !lost_state_stored_) {
    std::vector<storage::WriteOp> ops;
    ops.emplace_back(storage::PutMetaOp{"lost:" + opts_.name, {1}});
    storage_.submit(std::move(ops), [](auto) {});
    lost_state_stored_ = true;
  }
  if (raft_->lost_state() != lost) {
    raft_->set_lost_state(lost);
    spdlog::info("group {}: {}", opts_.name,
                 lost ? "this broker lost its data: this replica votes only after catching up with a leader"
                      : "nothing was lost (a new cluster, or peers know this data directory): votes as usual");
  }
  lost_state_.store(lost);
  pump();
}

void ReplicatedLog::maybe_finish_recovery() {
  if (!recovering_until_ || persisting_ || raft_->has_ready()) return;
  const auto& log = raft_->log();
  const bool reached = log.last_index() >= *recovering_until_ && raft_->commit_index() >= *recovering_until_;
  // Or the log already ranks above the one we held (an entry of a later term: the old tail was
  // not committed and a later leader replaced it, so an idle group might never reach its
  // index): held_before then adds nothing to Raft's own up-to-date check.
  const bool outranked = recovering_term_ && log.last_term() > *recovering_term_ && raft_->commit_index() >= log.last_index();
  if (!reached && !outranked) return;
  spdlog::info("group {}: recovered up to index {}; voting again", opts_.name, recovering_until_->value);
  recovering_until_.reset();
  recovering_term_.reset();
  recovering_.store(false);
  std::vector<storage::WriteOp> ops;
  ops.emplace_back(storage::DeleteMetaOp{"recovering:" + opts_.name});
  storage_.submit(std::move(ops), [](auto) {});
  votes_withheld_base_ += raft_->votes_withheld();
  raft_ = make_raft(raft_->hard_state(), raft_->applied_index(), lost_state_.load());
}

void ReplicatedLog::stop() {
  std::lock_guard lk(mu_);
  stopped_ = true;
  fail_pending(ErrorCode::not_leader, "partition " + opts_.name + " stopped on this broker");
}

void ReplicatedLog::step(const raft::Message& m) {
  std::lock_guard lk(mu_);
  if (stopped_ || !raft_) return;
  if ((m.type == raft::MessageType::append_resp || m.type == raft::MessageType::heartbeat_resp) &&
      raft_->role() == raft::Role::leader && m.term == raft_->term())
    heard_at_[m.from] = SteadyClock::now();
  if ((m.type == raft::MessageType::append || m.type == raft::MessageType::heartbeat) && m.commit.value > 0)
    leader_commit_seen_.store(std::max(leader_commit_seen_.load(), m.commit.value));
  const auto rejected_before = raft_->messages_rejected();
  raft_->step(m);
  if (raft_->messages_rejected() != rejected_before) {
    messages_rejected_.fetch_add(1, std::memory_order_relaxed);
    // Bounded: one line per group per 10 s, however many such messages arrive.
    const auto now = std::chrono::steady_clock::now();
    if (now - last_reject_log_ > std::chrono::seconds(10)) {
      last_reject_log_ = now;
      spdlog::warn("group {}: dropped a {} message from broker {}: {} (counted in "
                   "quorumq_raft_messages_rejected_total; a faulty or misconfigured peer)",
                   opts_.name, raft::to_string(m.type), m.from.value, raft_->last_reject_reason());
    }
  }
  pump();
}

void ReplicatedLog::tick() {
  std::lock_guard lk(mu_);
  if (stopped_ || !raft_) return;
  raft_->tick();
  pump();
}

void ReplicatedLog::campaign() {
  std::lock_guard lk(mu_);
  if (stopped_ || !raft_) return;
  raft_->campaign_now();
  pump();
}

bool ReplicatedLog::transfer_leadership() {
  std::lock_guard lk(mu_);
  if (stopped_ || !raft_ || raft_->role() != raft::Role::leader) return false;
  std::optional<node_id> best;
  std::uint64_t best_match = 0;
  for (const auto& v : opts_.voters) {
    if (v == opts_.self) continue;
    const auto* pr = raft_->progress(v);
    if (pr && (!best || pr->match.value > best_match)) best = v, best_match = pr->match.value;
  }
  if (!best) return false;
  const bool ok = raft_->transfer_leadership(*best).has_value();
  pump();
  return ok;
}

void ReplicatedLog::update_isr(SteadyClock::time_point now, std::chrono::milliseconds lag_max,
                               const std::function<SteadyClock::time_point(node_id)>& connected_since) {
  std::vector<node_id> isr;
  {
    std::lock_guard lk(mu_);
    if (!raft_ || stopped_ || raft_->role() != raft::Role::leader) {
      isr_samples_.clear();
      caught_up_at_.clear();
      heard_at_.clear();
      isr_term_ = 0;
    } else {
      if (isr_term_ != raft_->term().value) {  // a new leadership: everyone proves itself again
        isr_samples_.clear();
        caught_up_at_.clear();
        isr_term_ = raft_->term().value;
      }
      isr_samples_.emplace_back(now, raft_->log().last_index());
      while (isr_samples_.size() > 2 && now - isr_samples_.front().first > lag_max + std::chrono::seconds(1))
        isr_samples_.pop_front();
      isr.push_back(opts_.self);
      for (const auto& v : opts_.voters) {
        if (v == opts_.self) continue;
        const auto* pr = raft_->progress(v);
        if (!pr) continue;
        const auto since = connected_since ? connected_since(v) : SteadyClock::time_point{};
        auto& caught = caught_up_at_[v];
        if (caught < since) caught = {};  // reconnected (restarted?) since: prove it again
        // The newest sample, taken after the link came up, whose log end the follower reached.
        for (auto it = isr_samples_.rbegin(); it != isr_samples_.rend() && it->first >= since; ++it)
          if (it->second <= pr->match) {
            caught = std::max(caught, it->first);
            break;
          }
        const auto heard = heard_at_.find(v);
        const bool alive = heard != heard_at_.end() && heard->second >= since && now - heard->second <= lag_max;
        if (alive && caught != SteadyClock::time_point{} && now - caught <= lag_max) isr.push_back(v);
      }
      std::sort(isr.begin(), isr.end());
    }
  }
  std::lock_guard lk(isr_mu_);
  isr_ = std::move(isr);
}

std::vector<node_id> ReplicatedLog::isr() const {
  std::lock_guard lk(isr_mu_);
  return isr_;
}

std::vector<std::pair<node_id, std::uint64_t>> ReplicatedLog::follower_match() const {
  std::lock_guard lk(mu_);
  std::vector<std::pair<node_id, std::uint64_t>> out;
  if (!raft_ || raft_->role() != raft::Role::leader) return out;
  for (const auto& v : opts_.voters)
    if (const auto* pr = raft_->progress(v)) out.emplace_back(v, pr->match.value);
  return out;
}

std::optional<ProposeResult> ReplicatedLog::check_can_propose_locked() const {
  if (stopped_ || !raft_) return ProposeResult{ErrorCode::not_leader, -1, {}, "partition not served here", std::nullopt};
  if (raft_->role() != raft::Role::leader) {
    ProposeResult r;
    r.leader_hint = raft_->leader();
    r.error = r.leader_hint ? ErrorCode::not_leader : ErrorCode::leader_not_available;
    r.message = r.leader_hint ? "not the leader of " + opts_.name + "; leader is broker " + std::to_string(r.leader_hint->value)
                              : "no leader for " + opts_.name + " yet (election in progress); retry";
    return r;
  }
  if (raft_->commit_index() < term_start_index_)
    return ProposeResult{ErrorCode::leader_not_available, -1, {}, "new leader of " + opts_.name + " is not ready yet; retry", std::nullopt};
  if (raft_->transfer_target())
    return ProposeResult{ErrorCode::not_leader, -1, {}, "leadership of " + opts_.name + " is moving; retry", raft_->transfer_target()};
  return std::nullopt;
}

std::int64_t ReplicatedLog::propose_locked(std::vector<std::uint8_t> batch, AckLevel acks, ProposeCallback done) {
  const std::int64_t base = end_offset_;
  const term_t term = raft_->term();
  stamp_batch(batch, base, term.value);
  const std::int64_t count = BatchView(batch).offset_count();
  auto idx = raft_->propose(raft::make_payload(std::move(batch)));
  if (!idx) {
    ProposeResult r;
    r.error = ErrorCode::not_leader;
    r.leader_hint = idx.error().leader_hint;
    r.message = "proposal refused: " + idx.error().code.message();
    done(std::move(r));
    return -1;
  }
  end_offset_ = base + count;
  pending_.emplace(idx->value, Pending{term, acks, std::move(done), base});
  return base;
}

// Every batch that leaves this node or reaches its disk is stamped. Entries received from a
// leader and entries read from storage already are; the only unstamped entry that can exist is
// this leader's own no-op of its current term (made by the Raft core at election, §8), which
// takes no offsets and sits at the end offset the log had when this node became leader.
raft::Payload ReplicatedLog::stamped(const Entry& e) const {
  if (e.payload && !e.payload->empty()) return e.payload;
  // (An earlier term's own no-op still held in memory is placed by looking back in the log.)
  const std::int64_t base = e.term == raft_->term() ? noop_base_offset_ : end_offset_before(e.index);
  auto b = make_payload_batch(e.type == EntryType::config ? BatchType::config : BatchType::noop, {});
  stamp_batch(b, base, e.term.value);
  return raft::make_payload(std::move(b));
}

std::int64_t ReplicatedLog::end_offset_before(log_index i) const {
  const auto& rl = raft_->log();
  for (std::uint64_t j = i.value - 1; j >= rl.first_index().value && j > 0; --j) {
    auto es = rl.slice(log_index{j}, log_index{j + 1}, SIZE_MAX);
    if (!es.empty() && es.front().payload && !es.front().payload->empty()) return end_of(BatchView(*es.front().payload));
  }
  const auto st = log_->state();
  if (st.start_offset < 0) {
    spdlog::error("group {}: offsets unknown after a log reset with no entries; assuming 0", opts_.name);
    return 0;
  }
  return st.start_offset;
}

void ReplicatedLog::send_all(std::vector<raft::Message>& msgs) {
  for (auto& m : msgs) {
    for (auto& e : m.entries) e.payload = stamped(e);
    transport_.send(m.to, GroupMessage{opts_.name, std::move(m)});
  }
  msgs.clear();
}

void ReplicatedLog::publish_soft() {
  const auto role = raft_->role();
  const auto prev = role_.exchange(role);
  leader_.store(raft_->leader() ? raft_->leader()->value : -1);
  term_.store(raft_->term().value);
  commit_.store(raft_->commit_index().value);
  votes_withheld_.store(votes_withheld_base_ + raft_->votes_withheld(), std::memory_order_relaxed);
  applied_.store(raft_->applied_index().value);
  if (sim_regression::serve_before_applied)  // the old rule (simulation only)
    leader_ready_.store(role == raft::Role::leader && raft_->commit_index() >= term_start_index_ &&
                        !raft_->transfer_target());
  if (prev != role) {
    if (role == raft::Role::candidate) elections_started_.fetch_add(1, std::memory_order_relaxed);
    if (role == raft::Role::leader) elections_won_.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("group {}: {} in term {} (leader {})", opts_.name, raft::to_string(role), raft_->term().value,
                 raft_->leader() ? std::to_string(raft_->leader()->value) : std::string("none"));
    if (prev == raft::Role::leader)
      fail_pending(ErrorCode::not_leader, "this broker lost the leadership of " + opts_.name + "; retry");
    if (role == raft::Role::leader) {
      term_start_index_ = raft_->log().last_index();
      noop_base_offset_ = end_offset_ = end_offset_before(term_start_index_);
      // The whole tail after the commit index will commit under this leader.
      const log_index lo = raft_->commit_index().next();
      std::vector<Entry> tail;
      if (lo <= raft_->log().last_index()) tail = raft_->log().slice(lo, raft_->log().last_index().next(), SIZE_MAX);
      applier_->on_leader(tail);
    }
    applier_->on_role(role);
  }
  // Ready to serve once this term's first entry is committed *and applied*: every entry of
  // earlier terms is then in the state machine (offsets, producer table, high watermark). Set
  // after the transition above, which moves term_start_index_ to this term (found by the
  // driver-level simulation: a new leader briefly served a high watermark below its
  // predecessor's).
  if (!sim_regression::serve_before_applied)
    leader_ready_.store(role == raft::Role::leader && raft_->commit_index() >= term_start_index_ &&
                        raft_->applied_index() >= term_start_index_ && !raft_->transfer_target());
}

void ReplicatedLog::fail_pending(ErrorCode code, const std::string& why) {
  auto p = std::move(pending_);
  pending_.clear();
  for (auto& [idx, pe] : p) {
    ProposeResult r;
    r.error = code;
    r.index = log_index{idx};
    r.message = why;
    if (raft_) r.leader_hint = raft_->leader();
    pe.done(std::move(r));
  }
}

void ReplicatedLog::pump() {
  if (!raft_) return;
  publish_soft();
  if (persisting_ || stopped_ || !raft_->has_ready()) return;
  auto rd = std::make_shared<raft::Ready>(raft_->ready());
  send_all(rd->messages_early);
  if (rd->soft_state) publish_soft();
  persisting_ = true;
  persist(rd);
}

// What must be durable before a Ready's messages leave and its entries count: a new term or
// vote (a crash could otherwise let this node vote twice in one term), and log changes
// (entries, truncation, reset: an ack promises them). A commit index that moved is recorded
// too (so a restart applies everything it knew committed — the controller's topics before the
// broker answers anyone), but nothing waits for that write. Heartbeats, their answers and the
// applied index alone are never written: the applied index rides along with the next write
// (re-applying committed entries after a restart is what a restart does anyway). So an idle
// group costs the disk nothing.
void ReplicatedLog::persist(std::shared_ptr<raft::Ready> rd) {
  std::vector<storage::WriteOp> ops;
  const bool term_or_vote = rd->hard_state && (rd->hard_state->term != persisted_term_ ||
                                               rd->hard_state->vote != persisted_vote_);
  const bool commit_moved = rd->hard_state && rd->hard_state->commit != persisted_commit_;
  if (rd->reset_log) {
    // The leader removed what we lack; our log restarts at its first index. Its offsets start
    // where the first entry appended after the reset says (storage takes it from that batch).
    ops.emplace_back(storage::ResetLogOp{log_, rd->reset_log->first_index, rd->reset_log->prev_term, -1});
  }
  if (rd->truncate_from) ops.emplace_back(storage::TruncateSuffixOp{log_, *rd->truncate_from});
  if (!rd->entries.empty()) {
    storage::AppendAtOp op{log_, rd->entries.front().index, {}};
    op.batches.reserve(rd->entries.size());
    for (const auto& e : rd->entries) op.batches.push_back(*stamped(e));  // copy: storage owns its bytes
    ops.emplace_back(std::move(op));
  }
  // Not while recovering: that Raft object may be a learner (never lost_state) and is rebuilt
  // with the rule when recovery ends.
  if (lost_state_.load() && !raft_->lost_state() && !recovering_until_) {
    // In the same write as (or after) the entries that ended it: a crash before this lands
    // restarts with the rule still on, which is safe.
    if (lost_state_stored_) ops.emplace_back(storage::DeleteMetaOp{"lost:" + opts_.name});
    lost_state_stored_ = false;
    lost_end_index_.store(raft_->commit_index().value);
    lost_state_.store(false);
    spdlog::info("group {}: caught up with the leader (or won an election); votes as usual again", opts_.name);
  }
  if (!term_or_vote && !commit_moved && ops.empty()) {
    // Heartbeats and their answers: nothing to make durable.
    after_persist(rd);
    return;
  }
  // The hard state (with the current commit index) and the applied index ride along. They are
  // captured NOW, with the Ready: a retry after a failed write writes exactly these (not what
  // the core has moved on to meanwhile), and they count as persisted only once a write of them
  // succeeded — a vote must be on disk before the vote_resp leaves, also after a retry.
  auto plan = std::make_shared<PersistPlan>();
  plan->hs = raft_->hard_state();
  ops.emplace_back(storage::PutHardStateOp{opts_.name, {plan->hs.term, plan->hs.vote.value_or(node_id{-1}), plan->hs.commit}});
  if (opts_.persist_applied && raft_->applied_index().value > persisted_applied_) {
    plan->applied = raft_->applied_index().value;
    std::vector<std::uint8_t> v(8);
    std::memcpy(v.data(), &plan->applied, 8);
    ops.emplace_back(storage::PutMetaOp{"applied:" + opts_.name, std::move(v)});
  }
  // Only the commit index moved: it promises nothing new (the entries it commits are durable
  // here already, and it can be learned again), so applying does not wait for this sync; the
  // write goes out in order behind the earlier ones.
  plan->wait = term_or_vote || rd->reset_log || rd->truncate_from || !rd->entries.empty();
  plan->ops = std::move(ops);
  if (!plan->wait) {
    mark_persisted(*plan);  // if this write fails, the next one carries a newer commit anyway
    storage_.submit(std::move(plan->ops), [name = opts_.name](std::expected<storage::WriteResult, storage::Error> r) {
      if (!r) spdlog::warn("group {}: recording the commit index failed: {} (it is re-learned)", name, r.error().message);
    });
    after_persist(rd);
    return;
  }
  submit_plan(std::move(rd), std::move(plan));
}

void ReplicatedLog::mark_persisted(const PersistPlan& plan) {
  persisted_term_ = plan.hs.term;
  persisted_vote_ = plan.hs.vote;
  persisted_commit_ = std::max(persisted_commit_, plan.hs.commit);
  persisted_applied_ = std::max(persisted_applied_, plan.applied);
}

void ReplicatedLog::submit_plan(std::shared_ptr<raft::Ready> rd, std::shared_ptr<PersistPlan> plan) {
  auto self = shared_from_this();
  auto ops = plan->ops;  // a copy: a failed write is retried with the very same ops
  storage_.submit(std::move(ops), [self, rd, plan](std::expected<storage::WriteResult, storage::Error> r) {
    if (r) {
      self->exec_.post([self, rd, plan] {
        std::lock_guard lk(self->mu_);
        self->persist_failures_ = 0;
        self->mark_persisted(*plan);
        self->after_persist(rd);
      });
      return;
    }
    // Nothing of this Ready is durable: acknowledge nothing, send nothing, try again shortly.
    spdlog::error("group {}: persisting Raft state failed: {}; retrying", self->opts_.name, r.error().message);
    const auto backoff = std::chrono::milliseconds(std::min<std::uint64_t>(1000, 20u << std::min<std::uint64_t>(self->persist_failures_++, 6)));
    self->exec_.run_after(backoff, [self, rd, plan](bool) {
      std::lock_guard lk(self->mu_);
      if (self->stopped_) return;
      self->submit_plan(rd, plan);
    });
  });
}

void ReplicatedLog::after_persist(std::shared_ptr<raft::Ready> rd) {
  // Leader: acks=leader proposals are answered once their entry is durable here.
  if (!rd->entries.empty() && raft_->role() == raft::Role::leader) {
    const auto last = rd->entries.back().index.value;
    for (auto it = pending_.begin(); it != pending_.end() && it->first <= last;) {
      if (it->second.acks == AckLevel::leader && it->second.term == rd->entries.back().term) {
        ProposeResult r;
        r.base_offset = it->second.base_offset;
        r.index = log_index{it->first};
        it->second.done(std::move(r));
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }
  send_all(rd->messages);
  for (const auto& e : rd->committed_entries) {
    const auto payload = stamped_or_empty(e);
    applier_->apply(e, payload ? std::span<const std::uint8_t>(*payload) : std::span<const std::uint8_t>());
    auto it = pending_.find(e.index.value);
    if (it != pending_.end()) {
      ProposeResult r;
      r.index = e.index;
      if (it->second.term == e.term) {
        r.base_offset = it->second.base_offset;
      } else {
        r.error = ErrorCode::not_leader;
        r.message = "the entry was replaced after a leader change; retry";
      }
      it->second.done(std::move(r));
      pending_.erase(it);
    }
  }
  raft_->advance(*rd);
  persisting_ = false;
  maybe_finish_recovery();
  pump();
}

}  // namespace quorumq::broker
