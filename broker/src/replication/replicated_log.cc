// The Raft driver: one Raft group's core, its storage and its peers (Ready → one storage write →
// send → apply → advance). Split by concern:
//   replicated_log.cc           start, inputs (step, tick, propose), the Ready loop
//   replicated_log_persist.cc   one Ready's storage write and what follows it
//   replicated_log_recovery.cc  damaged logs, lost data directories (with replica_meta)
//   replicated_log_offsets.cc   offset stamping of entries
//   replicated_log_isr.cc       in-sync replicas
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
    : opts_(std::move(opts)), storage_(storage), meta_(storage, opts_.name), log_(log), transport_(transport), exec_(exec), applier_(applier),
      reader_(std::make_unique<Reader>(log)) {}

ReplicatedLog::~ReplicatedLog() = default;
void ReplicatedLog::start() {
  std::lock_guard lk(mu_);
  open_locked(std::nullopt);
  if (opts_.campaign_at_start) raft_->campaign_now();  // a no-op while held (damage, loss, verification)
  pump();
}

// Meta records first (damage, loss), then the hard state and the applied index; then the core.
// Entries from the applied index on are read at once (replayed into the state machine) and are
// checked here; those before it are checked in the background (scrub_step), so opening a group
// reads only its unapplied tail however long its log is.
void ReplicatedLog::open_locked(std::optional<log_index> known_bad) {
  const bool reopen = raft_ != nullptr;
  raft::HardState hs{};
  log_index applied{0};
  if (reopen) {  // at a quiet point: everything the core holds was persisted
    hs = raft_->hard_state();
    applied = raft_->applied_index();
  } else {
    if (auto h = storage_.hard_state(opts_.name)) {
      hs.term = h->term;
      if (h->vote.value >= 0) hs.vote = h->vote;
      hs.commit = h->commit;
    }
    if (opts_.persist_applied) applied = meta_.applied().value_or(log_index{0});
  }
  const auto before = log_->state();
  const log_index check_from = std::max(before.first_index, std::min({applied, hs.commit, before.last_index}));
  load_recovery_state(known_bad, check_from);
  const bool lost = reopen ? lost_state_.load() : load_lost_state();
  const auto st = log_->state();
  hs.commit = std::min(hs.commit, st.last_index);
  // Applied can lag behind a trimmed prefix only if retention outran a crash; entries below
  // first_index - 1 are gone and were applied before they were trimmed.
  applied = std::min(applied, hs.commit);
  if (applied.value + 1 < st.first_index.value) applied = log_index{st.first_index.value - 1};
  std::int64_t applied_end = st.start_offset.value;
  if (applied >= st.first_index) {
    if (auto e = log_->entries(applied, applied, 1); e && !e->empty()) applied_end = end_of(BatchView(e->front().batch));
  }
  applier_->on_start(applied, applied_end);
  end_offset_ = st.next_offset.value;
  persisted_term_ = hs.term;
  persisted_vote_ = hs.vote;
  persisted_commit_ = hs.commit;
  persisted_applied_ = reopen ? std::min(persisted_applied_, applied.value) : applied.value;
  last_applied_ = applied;
  // What is left to check in the background: the prefix before check_from, unless a cut
  // happened (everything before a cut found by the scrub was checked, and a cut at start came
  // from a check of the whole range after check_from only: the prefix is still unchecked).
  scrub_damage_.reset();
  if (!known_bad && !st.empty() && check_from > st.first_index) {
    scrub_next_ = st.first_index;
    scrub_end_ = std::min(log_index{check_from.value - 1}, st.last_index);
    verifying_.store(true);
    if (opts_.voters.size() > 1) verify_hold_ = std::pair{st.last_index, st.last_term};
  } else {
    scrub_next_ = log_index{1};
    scrub_end_ = log_index{0};
    verifying_.store(false);
    verify_hold_.reset();
  }
  raft_ = make_raft(hs, applied, lost);
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

void ReplicatedLog::peer_unreachable(node_id peer) {
  std::lock_guard lk(mu_);
  if (stopped_ || !raft_) return;
  raft_->peer_unreachable(peer);
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

std::optional<Status> ReplicatedLog::check_can_propose_locked() const {
  if (stopped_ || !raft_) return Status{ErrorCode::not_leader, "partition not served here", std::nullopt};
  if (raft_->role() != raft::Role::leader) {
    Status r;
    r.leader_hint = raft_->leader();
    r.code = r.leader_hint ? ErrorCode::not_leader : ErrorCode::leader_not_available;
    r.message = r.leader_hint ? "not the leader of " + opts_.name + "; leader is broker " + std::to_string(r.leader_hint->value)
                              : "no leader for " + opts_.name + " yet (election in progress); retry";
    return r;
  }
  if (raft_->commit_index() < term_start_index_)
    return Status{ErrorCode::leader_not_available, "new leader of " + opts_.name + " is not ready yet; retry", std::nullopt};
  if (raft_->transfer_target())
    return Status{ErrorCode::not_leader, "leadership of " + opts_.name + " is moving; retry", raft_->transfer_target()};
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
    r.status = Status{ErrorCode::not_leader, "proposal refused: " + idx.error().code.message(), idx.error().leader_hint};
    done(std::move(r));
    return -1;
  }
  QQ_ASSERT(count >= 0);
  end_offset_ = base + count;  // within a term it only grows: every proposal starts where the last ended
  QQ_ASSERT_MSG(!pending_.contains(idx->value), "two proposals at one index");
  pending_.emplace(idx->value, Pending{term, acks, std::move(done), base});
  return base;
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
    r.status = Status{code, why, raft_ ? raft_->leader() : std::nullopt};
    r.index = log_index{idx};
    pe.done(std::move(r));
  }
}

void ReplicatedLog::pump() {
  if (!raft_) return;
  publish_soft();
  if (persisting_ || stopped_ || !raft_->has_ready()) return;
  auto rd = std::make_shared<raft::Ready>(raft_->ready());
  // The core hands out entries to apply in order, each once.
  QQ_ASSERT(rd->committed_entries.empty() || rd->committed_entries.front().index > last_applied_);
  send_all(rd->messages_early);
  if (rd->soft_state) publish_soft();
  persisting_ = true;
  persist(rd);
}

}  // namespace quorumq::broker
