// Damage recovery and lost data directories.
//
// A stored entry that fails its CRC check at start cuts the log there; the replica rebuilds from
// the leader and votes as if it still held what it held (raft::Config::held_before), so it
// never decides an election with a damaged log. A broker that lost its data directory
// (Incarnation) votes only after catching up. Both facts survive restarts as meta records
// (replica_meta.h).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>

#include "quorumq/protocol/assert.h"
#include "replicated_log.h"

namespace quorumq::broker {

std::optional<log_index> ReplicatedLog::find_corruption(log_index from) const {
  const auto st = log_->state();
  log_index lo = std::max(from, st.first_index);
  while (!st.empty() && lo <= st.last_index) {
    auto r = log_->verify(lo, st.last_index, 16u << 20);
    if (!r) {
      spdlog::critical("group {}: checking the stored log: {}; stopping this broker", opts_.name, r.error().message);
      spdlog::default_logger()->flush();
      std::_Exit(3);
    }
    if (r->damaged) return r->damaged;
    lo = r->next;
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
  if (verify_hold_ && verifying_.load()) {
    // Not yet checked: hold as if it were damaged (the larger claim of the two counts).
    const auto [vi, vt] = *verify_hold_;
    if (!cfg.held_before || vt > cfg.held_before->second || (vt == cfg.held_before->second && vi > cfg.held_before->first))
      cfg.held_before = *verify_hold_;
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

void ReplicatedLog::load_recovery_state(std::optional<log_index> known_bad, log_index check_from) {
  if (!recovering_until_) {
    if (auto m = meta_.recovering()) {
      recovering_until_ = m->until;
      recovering_term_ = m->term;
    }
  }
  if (auto bad = known_bad ? known_bad : find_corruption(check_from)) {
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
    std::vector<storage::WriteOp> ops;
    ops.emplace_back(storage::TruncateSuffixOp{log_, *bad});
    ops.push_back(meta_.put_recovering({target, target_term}));
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
    if (verify_hold_ && verifying_.load()) {  // the scrub found it: the hold it had carries over
      const auto [vi, vt] = *verify_hold_;
      if (!recovering_term_ || vt > *recovering_term_ || (vt == *recovering_term_ && vi > *recovering_until_)) {
        recovering_until_ = vi, recovering_term_ = vt;
        std::vector<storage::WriteOp> again;
        again.push_back(meta_.put_recovering({vi, vt}));
        (void)storage_.write_sync(std::move(again));
      }
    }
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
      ops.push_back(meta_.delete_recovering());
      (void)storage_.write_sync(std::move(ops));
    }
  }
}

bool ReplicatedLog::load_lost_state() {
  // This broker may have lost what it held (Incarnation: known once a peer speaks). A known
  // loss is stored, so a restart before this group has caught up keeps the rule on.
  lost_state_stored_ = meta_.lost();
  if (!lost_state_stored_ && opts_.lost_state_known && can_lose_state()) {
    // Not waited for: if a crash loses it, the next start is "unknown" until a peer speaks,
    // and the peers still remember our old directory (we had not settled).
    std::vector<storage::WriteOp> ops;
    ops.push_back(meta_.put_lost());
    storage_.submit(std::move(ops), [](auto) {});
    lost_state_stored_ = true;
  }
  const bool lost = can_lose_state() && (lost_state_stored_ || opts_.lost_state || opts_.lost_state_known);
  if (lost_state_stored_)
    spdlog::info("group {}: this broker lost its data; until this replica has caught up with a leader it does not vote",
                 opts_.name);
  lost_state_.store(lost);
  return lost;
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
    ops.push_back(meta_.put_lost());
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
  ops.push_back(meta_.delete_recovering());
  storage_.submit(std::move(ops), [](auto) {});
  votes_withheld_base_ += raft_->votes_withheld();
  raft_ = make_raft(raft_->hard_state(), raft_->applied_index(), lost_state_.load());
}

bool ReplicatedLog::scrub_step(std::size_t max_bytes) {
  log_index lo, hi;
  {
    std::lock_guard lk(mu_);
    if (stopped_ || !verifying_.load() || scrub_damage_ || scrub_next_ > scrub_end_) return false;
    lo = scrub_next_;
    hi = scrub_end_;
  }
  auto r = log_->verify(lo, hi, max_bytes);  // no lock: LMDB reads see a consistent snapshot
  std::lock_guard lk(mu_);
  if (stopped_ || !verifying_.load()) return false;
  if (!r) {
    spdlog::warn("group {}: background check of the stored log: {}; retried", opts_.name, r.error().message);
    return false;
  }
  scrubbed_bytes_.fetch_add(r->bytes, std::memory_order_relaxed);
  if (r->damaged && *r->damaged <= scrub_end_) scrub_damage_ = r->damaged;
  else scrub_next_ = std::max(scrub_next_, r->next);
  const bool done = scrub_damage_ || scrub_next_ > scrub_end_;
  if (done) {
    // Acted on at a quiet point of the group (no Ready in flight), on the group's executor.
    exec_.post([self = shared_from_this()] {
      std::lock_guard lk2(self->mu_);
      if (self->stopped_ || !self->raft_) return;
      self->maybe_finish_verification();
      self->pump();
    });
  }
  return !done;
}

void ReplicatedLog::maybe_finish_verification() {
  if (!verifying_.load() || persisting_ || raft_->has_ready()) return;
  if (scrub_damage_) {
    const log_index d = *scrub_damage_;
    // Still there and still damaged? (A leader may have replaced that part of the log since.)
    const auto again = log_->verify(d, d, 1);
    if (!again || !again->damaged) {
      scrub_damage_.reset();
      scrub_next_ = std::max(scrub_next_, d.next());
      return;  // the scrub goes on
    }
    if (opts_.voters.size() == 1) {
      spdlog::critical("group {}: single replica: stored entry {} is damaged and there is no other copy; reads of it "
                       "fail with corrupt_message (restore the data directory from a backup to recover it)",
                       opts_.name, d.value);
      verifying_.store(false);
      return;
    }
    QQ_ASSERT_MSG(raft_->role() != raft::Role::leader, "a replica still verifying its log became leader");
    fail_pending(wire::ErrorCode::not_leader, "partition " + opts_.name + " is repairing its log on this broker");
    open_locked(d);  // cut at d, recover from the leader (recovering mark, held_before)
    recovering_.store(recovering_until_.has_value());
    return;
  }
  if (scrub_next_ <= scrub_end_) return;
  verifying_.store(false);
  spdlog::info("group {}: stored log checked in the background ({} MiB): no damage", opts_.name,
               scrubbed_bytes_.load() >> 20);
  if (verify_hold_) {
    verify_hold_.reset();
    votes_withheld_base_ += raft_->votes_withheld();
    raft_ = make_raft(raft_->hard_state(), raft_->applied_index(), lost_state_.load());
  }
}

}  // namespace quorumq::broker
