// The Raft consensus core for one group: a pure, deterministic state machine (etcd raft style).
//
// Inputs: step(message), tick(), propose(payload), transfer_leadership(to).
// Output: ready() -> Ready; the driver persists, sends, applies (see ready.h) and calls advance().
//
// Lifecycle: construct from the durable state (LogReader + HardState) at every start; the node
// starts as a follower. Destroy at will: everything not reported persisted is simply lost,
// which is exactly a crash.
// Threading: none inside. Single-threaded; the caller serialises every call (one strand per
// partition in the broker).
// Invariants (checked by check_invariants() after every input in debug builds and in the sim):
//  - commit <= last log index; applied <= commit; first_index - 1 <= commit;
//  - terms in the log never decrease and never exceed the current term;
//  - a leader voted for itself, has a progress entry per member, counts itself in the commit
//    quorum only with its durable last index, and match < next for every follower;
//  - a learner never becomes a candidate or leader.
// Implemented: election with pre-vote and check-quorum (paper §5.2, thesis §9.6, §6.2), log
// replication with the consistency check and suffix truncation (§5.3), no-op at term start
// (thesis §6.4), commit only for current-term entries (§5.4.2), fast backtracking,
// pipelined batches, install-from-first-index, leadership transfer (thesis §3.10), learners
// (thesis §4.2.1).
#pragma once

#include <expected>
#include <functional>
#include <map>
#include <optional>
#include <utility>
#include <unordered_map>
#include <vector>

#include "quorumq/raft/errc.h"
#include "quorumq/raft/progress.h"
#include "quorumq/raft/raft_log.h"
#include "quorumq/raft/ready.h"
#include "quorumq/raft/rng.h"

namespace quorumq::raft {

struct Config {
  node_id id;
  std::vector<node_id> voters;    // includes id unless this node is a learner
  std::vector<node_id> learners;  // receive the log, never vote, never count for quorum
  // A follower campaigns after a randomised timeout in [T, 2T) ticks (paper §5.2).
  int election_timeout_ticks = 10;
  int heartbeat_interval_ticks = 1;
  std::size_t max_inflight_msgs = 64;         // per follower, in replicate state
  std::size_t max_msg_bytes = 1 << 20;        // per AppendEntries (at least one entry is sent)
  std::size_t max_committed_bytes = 8 << 20;  // per Ready's committed_entries
  bool pre_vote = true;
  bool check_quorum = true;
  std::uint64_t rng_seed = 0;
  // The driver's applied index at start; entries above it up to commit are redelivered.
  log_index applied{0};
  // This voter lost its durable state (its broker started on a new data directory while its
  // peers remember another one) or does not know yet whether it did. A voter that forgot its
  // log could elect a leader missing entries committed with its help. So it neither votes nor
  // stands until it has caught up with a leader: its log and commit index reach the leader's
  // last index at first contact (every entry that may have been committed is in that leader's
  // log). The driver ends it earlier with set_lost_state(false) once it knows nothing was lost
  // (a new cluster). (KIP-853 keys voters by directory id for the same reason.)
  // It relies on check_quorum: a leader cut off from a majority steps down within two election
  // timeouts, and a replaced disk takes longer than that to come back, so the first leader it
  // meets is not a stale one of an older term that missed entries committed since.
  bool lost_state = false;
  // The (index, term) of the last entry this replica held before it cut its log at a damaged
  // entry. It votes as if it still held that log (a candidate must be at least as up-to-date
  // as both that and its real last entry: exactly what an undamaged replica would require),
  // and never stands, until the driver rebuilds it without this once it has recovered. (A
  // learner in its place could leave a group with two damaged replicas without any leader.)
  std::optional<std::pair<log_index, term_t>> held_before;
};

class Raft {
 public:
  Raft(Config config, const LogReader& storage, HardState persisted);
  Raft(const Raft&) = delete;
  Raft& operator=(const Raft&) = delete;

  void tick();
  void step(const Message& m);
  // Leader only: appends the entry and returns its index.
  std::expected<log_index, ProposeError> propose(Payload payload,
                                                 EntryType type = EntryType::normal);
  // Leader only: hand leadership to `to` (thesis §3.10). Proposals are refused until it ends
  // (the target is elected, or one election timeout passes).
  std::expected<void, std::error_code> transfer_leadership(node_id to);
  // Campaign now (tests, or a driver that knows the leader is gone). Uses pre-vote if enabled.
  void campaign_now();
  // The driver learned that `peer`'s process is gone (its peer port refuses connections). A
  // follower whose leader it was forgets that leader at once, so it no longer honours the
  // leader's lease (and grants other survivors' pre-votes), and stands after a short delay in
  // an order every survivor computes alike: kFastElectionFirstTicks for the lowest surviving
  // voter id, kFastElectionStepTicks more for each next one, so two survivors do not split the
  // vote. Safety never depends on this: it only moves an election earlier than the timeout
  // would, which the timeout's randomness already allows. A wrong signal costs one election.
  void peer_unreachable(node_id peer);
  static constexpr int kFastElectionFirstTicks = 2;
  static constexpr int kFastElectionStepTicks = 5;
  // The driver learned whether this member lost its state (Config::lost_state). Turning it on
  // is ignored by a leader (it won a majority's votes, so it holds every committed entry) and
  // ends a candidacy.
  void set_lost_state(bool lost);

  // False while a Ready is outstanding (between ready() and advance()).
  bool has_ready() const;
  Ready ready();
  void advance(const Ready& rd);
  // The driver made entries up to (index, term) durable before advance(): a leader may count
  // itself toward commit for them now. The LogReader must already contain them.
  void on_persisted(log_index index, term_t term);

  // --- observers ---
  node_id id() const { return cfg_.id; }
  Role role() const { return role_; }
  term_t term() const { return term_; }
  std::optional<node_id> vote() const { return vote_; }
  std::optional<node_id> leader() const { return lead_; }
  log_index commit_index() const { return commit_; }
  log_index applied_index() const { return applied_; }
  bool is_learner() const { return is_learner_; }
  // Config::lost_state still in force (not yet caught up with a leader).
  bool lost_state() const { return lost_state_; }
  // Votes refused only because this member may have lost its state (since construction).
  std::uint64_t votes_withheld() const { return votes_withheld_; }
  // Messages dropped by step() because no correct peer can send them (misaddressed, from a
  // non-member, malformed entries, a log reset not from this term's leader, an ack beyond our
  // log): they come from the network, so they are counted, never asserted on.
  std::uint64_t messages_rejected() const { return messages_rejected_; }
  const char* last_reject_reason() const { return last_reject_reason_; }
  const RaftLog& log() const { return log_; }
  const Config& config() const { return cfg_; }
  const Progress* progress(node_id n) const;
  std::optional<node_id> transfer_target() const { return transferee_; }
  HardState hard_state() const { return {term_, vote_, commit_}; }
  // Internal consistency (LogCabin's RaftConsensusInvariants); empty string if consistent.
  std::string find_invariant_violation() const;

 private:
  enum class CampaignKind { pre_vote, election, transfer };

  // raft.cc: role changes, ticks, the term rules of step, Ready.
  void reset(term_t term);
  void become_follower(term_t term, std::optional<node_id> lead);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void tick_election();
  void tick_heartbeat();
  void send(Message m);
  // See Config::lost_state and Config::held_before.
  bool promotable() const { return !is_learner_ && !lost_state_ && !cfg_.held_before; }
  bool is_voter(node_id n) const;
  const char* reject_reason(const Message& m) const;
  void check_after_input() const;

  // raft_election.cc
  void campaign(CampaignKind kind);
  void handle_vote_request(const Message& m);
  void step_candidate(const Message& m);
  bool in_lease() const;

  // raft_replication.cc
  void step_leader(const Message& m);
  void step_follower(const Message& m);
  void handle_append(const Message& m);
  void handle_heartbeat(const Message& m);
  void handle_install(const Message& m);
  void handle_append_resp(const Message& m, Progress& pr);
  bool send_append(node_id to, bool send_if_empty = true);
  void bcast_append();
  void bcast_heartbeat();
  bool maybe_commit();
  void commit_to(log_index c);
  void append_entry(EntryType type, Payload payload);
  void update_self_match();
  bool quorum_active() const;
  void send_timeout_now(node_id to);
  // Config::lost_state: note the first leader's last index; lift the restriction once reached.
  void note_leader_contact(const Message& m);
  void maybe_end_lost_state();

  Config cfg_;
  bool is_learner_ = false;
  bool lost_state_ = false;
  std::optional<log_index> lost_state_target_;
  term_t lost_state_target_term_;  // the leader term the target was taken in
  std::uint64_t votes_withheld_ = 0;
  std::uint64_t messages_rejected_ = 0;
  const char* last_reject_reason_ = nullptr;
  std::vector<node_id> members_;  // voters then learners, sorted within each
  RaftLog log_;
  Rng rng_;

  term_t term_;
  std::optional<node_id> vote_;
  std::optional<node_id> lead_;
  Role role_ = Role::follower;
  log_index commit_;
  log_index applied_;   // last index handed to the driver and advanced
  log_index applying_;  // last index handed in the outstanding Ready's committed_entries

  int election_elapsed_ticks_ = 0;  // followers: since last leader contact; leader: check-quorum
  int heartbeat_elapsed_ticks_ = 0;
  int randomized_election_timeout_ticks_ = 0;
  std::unordered_map<node_id, bool> votes_;
  std::map<node_id, Progress> progress_;  // leader only; ordered for deterministic sends
  std::optional<node_id> transferee_;

  std::vector<Message> msgs_;        // sent after the Ready is persisted
  std::vector<Message> msgs_early_;  // leader replication, may precede persistence
  HardState prev_hard_state_;
  SoftState prev_soft_state_;
  bool ready_outstanding_ = false;
};

}  // namespace quorumq::raft
