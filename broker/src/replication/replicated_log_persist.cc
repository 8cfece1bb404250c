// One Ready's storage write, its retries, and what follows once it is durable: acks, sends,
// applies, advance.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "quorumq/protocol/assert.h"
#include "replicated_log.h"

namespace quorumq::broker {

using raft::Entry;
using raft::EntryType;
using wire::ErrorCode;

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
    ops.emplace_back(storage::ResetLogOp{log_, rd->reset_log->first_index, rd->reset_log->prev_term, offset_t{-1}});
  }
  if (rd->truncate_from) ops.emplace_back(storage::TruncateSuffixOp{log_, *rd->truncate_from});
  // What the leader replaces needs no background check (the new entries are checked as written).
  if (rd->reset_log) scrub_end_ = log_index{0};
  if (rd->truncate_from && rd->truncate_from->value <= scrub_end_.value) scrub_end_ = log_index{rd->truncate_from->value - 1};
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
    if (lost_state_stored_) ops.push_back(meta_.delete_lost());
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
  if (!term_or_vote && ops.empty()) {
    // Only the commit index moved. Written at once, its two syncs (LMDB: data, then meta) stood
    // in front of the next write that an acknowledgement waits for: one message at a time,
    // every produce paid for its predecessor's commit record. It promises nothing (the entries
    // it commits are durable, and a restart learns it again from the leader or by committing
    // its own no-op), so it rides along with the next write, or goes on its own after
    // kCommitRecordDelay without one.
    schedule_commit_record();
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
    ops.push_back(meta_.put_applied(log_index{plan->applied}));
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
  QQ_ASSERT_MSG(persisting_, "a Ready advanced that was not taken");
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
    // In order, each once (a log reset may skip ahead: what it skipped is in the checkpoint).
    QQ_ASSERT_MSG(e.index > last_applied_, "committed entries applied out of order or twice");
    applier_->apply(e, payload ? std::span<const std::uint8_t>(*payload) : std::span<const std::uint8_t>());
    last_applied_ = e.index;
    auto it = pending_.find(e.index.value);
    if (it != pending_.end()) {
      ProposeResult r;
      r.index = e.index;
      if (it->second.term == e.term) {
        r.base_offset = it->second.base_offset;
      } else {
        r.status = Status{ErrorCode::not_leader, "the entry was replaced after a leader change; retry", raft_->leader()};
      }
      it->second.done(std::move(r));
      pending_.erase(it);
    }
  }
  raft_->advance(*rd);
  persisting_ = false;
  maybe_finish_recovery();
  maybe_finish_verification();
  pump();
}

void ReplicatedLog::schedule_commit_record() {
  if (commit_record_scheduled_) return;
  commit_record_scheduled_ = true;
  exec_.run_after(kCommitRecordDelay, [self = shared_from_this()](bool) {
    std::lock_guard lk(self->mu_);
    self->commit_record_scheduled_ = false;
    if (self->stopped_ || !self->raft_) return;
    self->write_commit_record();
  });
}

void ReplicatedLog::write_commit_record() {
  const auto hs = raft_->hard_state();
  if (hs.commit <= persisted_commit_) return;  // a later write carried it
  if (persisting_ || hs.term != persisted_term_ || hs.vote != persisted_vote_) {
    schedule_commit_record();  // a Ready is being written (it carries its own hard state): later
    return;
  }
  PersistPlan plan;
  plan.hs = hs;
  plan.ops.emplace_back(storage::PutHardStateOp{opts_.name, {hs.term, hs.vote.value_or(node_id{-1}), hs.commit}});
  if (opts_.persist_applied && raft_->applied_index().value > persisted_applied_) {
    plan.applied = raft_->applied_index().value;
    plan.ops.push_back(meta_.put_applied(log_index{plan.applied}));
  }
  mark_persisted(plan);  // if this write fails, the next one carries a newer commit anyway
  storage_.submit(std::move(plan.ops), [name = opts_.name](std::expected<storage::WriteResult, storage::Error> r) {
    if (!r) spdlog::warn("group {}: recording the commit index failed: {} (it is re-learned)", name, r.error().message);
  });
}

}  // namespace quorumq::broker
