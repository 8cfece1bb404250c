// ReplicatedLog: drives one Raft group (broker/raft) over one storage partition log — the
// "driver" of the Ready/advance contract. It owns the only mutex of the group; everything that
// reads or changes the group's state machine runs under it.
//
// Per Ready (raft/ready.h): send messages_early; persist hard state, log reset, truncation and
// entries (plus the applied index) in ONE storage write, which joins the broker-wide group
// commit; when durable: send messages, apply committed entries through the Applier, advance.
// A leader stamps each proposed batch with its term and base offset, so offsets stay contiguous
// although no-op/config/control entries take Raft indexes but no offsets.
//
// Lifecycle: make_shared → start() → inputs (tick, step, propose) from any thread → stop().
// Threads: inputs lock `mu_`; storage completions are moved to the Executor (never run Raft on
// the storage writer thread); outbound messages go to the Transport, which never blocks.
// Failure: a persist that fails (disk full) is retried with backoff; the Ready is not
// acknowledged meanwhile, so nothing is promised that is not durable.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "executor.h"
#include "quorumq/protocol/errors.h"
#include "quorumq/raft/raft.h"
#include "quorumq/storage/partition_log.h"
#include "quorumq/storage/storage.h"
#include "replica_meta.h"
#include "status.h"
#include "raft_codec.h"

namespace quorumq::broker {

namespace sim_regression {
// Forced on only by the driver-level simulation (tests/sim/driver) to show its regression seeds
// still find a fixed bug. 96dd009: a replica recovering a damaged log was a non-voting learner
// (two damaged replicas of three then never elected the whole one).
inline bool damaged_replica_is_learner = false;
// Found by the driver-level simulation: a new leader was ready to serve before this term's first
// entry was applied (and, on the step that made it leader, judged against the previous term's
// start), so it briefly served a high watermark below its predecessor's.
inline bool serve_before_applied = false;
}  // namespace sim_regression

class Transport {
 public:
  virtual ~Transport() = default;
  // Queues a message for a peer; may drop it (Raft retransmits). Never blocks.
  virtual void send(node_id to, GroupMessage m) = 0;
};

// The state machine a group's committed entries are applied to. All calls hold the group lock.
class Applier {
 public:
  virtual ~Applier() = default;
  // Where the applied state starts (entries up to `applied` are reflected already); called once
  // from start() with the end offset of the entry at `applied`.
  virtual void on_start(log_index applied, std::int64_t applied_end_offset) = 0;
  // One committed entry, in log order. `batch` is the stored record batch (empty only for a
  // fresh no-op that carries nothing).
  virtual void apply(const raft::Entry& e, std::span<const std::uint8_t> batch) = 0;
  // This node became leader: `tail` is its log after the commit index (it will all commit).
  virtual void on_leader(const std::vector<raft::Entry>& /*tail*/) {}
  virtual void on_role(raft::Role /*role*/) {}
};

struct GroupOptions {
  std::string name;  // "__controller" or "topic/partition"
  node_id self{0};
  std::vector<node_id> voters;
  std::vector<node_id> learners;
  int election_timeout_ticks = 30;
  int heartbeat_interval_ticks = 5;
  bool persist_applied = true;  // false: replay from the start on every restart (controller)
  bool campaign_at_start = false;
  // This broker may have lost its data (Incarnation: verdict not yet known): start with
  // raft::Config::lost_state. lost_state_known: the loss is known (stored per group).
  bool lost_state = false;
  bool lost_state_known = false;
  // The Raft core's randomness (election timeouts): set by the deterministic simulation, which
  // must replay a seed exactly; unset, it is mixed from the clock.
  std::optional<std::uint64_t> rng_seed;
};

// A proposal's outcome: committed at `index` (data batches: from `base_offset` on), or why not.
struct ProposeResult {
  Status status;
  std::int64_t base_offset = -1;
  log_index index{0};
};
using ProposeCallback = std::move_only_function<void(ProposeResult)>;

enum class AckLevel { leader, quorum };

class ReplicatedLog : public std::enable_shared_from_this<ReplicatedLog> {
 public:
  ReplicatedLog(GroupOptions opts, storage::Storage& storage, storage::PartitionLog* log, Transport& transport,
                Executor& exec, Applier* applier);
  ~ReplicatedLog();

  void start();
  void stop();  // fails pending proposals; later inputs are ignored

  // Runs f under the group lock and then processes any Ready it caused.
  template <typename F>
  auto locked(F&& f) {
    std::unique_lock lk(mu_);
    if constexpr (std::is_void_v<decltype(f())>) {
      f();
      pump();
    } else {
      auto r = f();
      pump();
      return r;
    }
  }

  // Under locked(): leader check for proposals. Not-ready leaders (no entry of their term
  // committed yet) refuse, so no client sees a high watermark going backwards.
  std::optional<Status> check_can_propose_locked() const;
  // Under locked(): stamps `batch` (term, base offset) and proposes it. `done` runs exactly once,
  // WITH THE GROUP LOCK HELD (from an io thread, or inline when the proposal is refused): it may
  // call *_locked functions of this group and post work elsewhere, never locked() or any other
  // input of this group (that would deadlock), and never block. Returns the batch's base offset.
  std::int64_t propose_locked(std::vector<std::uint8_t> batch, AckLevel acks, ProposeCallback done);
  std::int64_t end_offset_locked() const { return end_offset_; }
  // Under locked(): every entry of the log is applied and no Ready is being persisted (a state
  // snapshot taken now reflects exactly the log up to last_index_locked()).
  bool caught_up_locked() const {
    return raft_ && !persisting_ && pending_.empty() && raft_->applied_index() == raft_->log().last_index();
  }
  log_index last_index_locked() const { return raft_->log().last_index(); }

  void step(const raft::Message& m);
  void tick();
  // `peer`'s process is gone (raft::Raft::peer_unreachable): stand soon if it led this group.
  void peer_unreachable(node_id peer);
  // Hands leadership to the most caught-up voter; false if not leader or nobody to take it.
  bool transfer_leadership();
  void campaign();

  // Observers, any thread.
  const std::string& name() const { return opts_.name; }
  bool is_leader() const { return role_.load() == raft::Role::leader; }
  bool recovering() const { return recovering_.load(); }
  // After a restart, the stored entries up to the applied index are CRC-checked in the
  // background instead of before serving (a restart is then as quick for a 10 GB log as for an
  // empty one). Until then this replica never stands for leader and votes as if it held its
  // whole log (raft::Config::held_before); a damaged entry found cuts the log there and the
  // replica recovers from the leader as after a damaged start. Single-replica groups serve at
  // once (there is no other copy to prefer): a damaged entry there is reported, not cut.
  bool verifying() const { return verifying_.load(); }
  // One step of that check, about max_bytes, from any thread (the broker's scrub thread, the
  // simulation's loop); reads without the group lock. Returns whether work is left.
  bool scrub_step(std::size_t max_bytes);
  std::uint64_t scrubbed_bytes() const { return scrubbed_bytes_.load(std::memory_order_relaxed); }
  // This broker may have lost its data and this group has not caught up with a leader yet
  // (raft::Config::lost_state): it does not vote.
  bool lost_state() const { return lost_state_.load(); }
  std::uint64_t votes_withheld() const { return votes_withheld_.load(std::memory_order_relaxed); }
  // The broker's incarnation verdict: lost (this broker forgot what it held) or whole.
  void set_lost_state(bool lost);
  // Not in lost_state, and everything committed when it ended is applied (for the controller:
  // every partition this broker hosts exists again).
  bool settled() const {
    return !lost_state_.load() && applied_.load() >= lost_end_index_.load();
  }
  bool leader_ready() const { return leader_ready_.load(); }
  std::optional<node_id> leader() const {
    const auto l = leader_.load();
    return l < 0 ? std::nullopt : std::optional(node_id{l});
  }
  std::uint64_t term() const { return term_.load(); }
  const GroupOptions& options() const { return opts_; }
  storage::PartitionLog* log() const { return log_; }
  std::uint64_t commit_index() const { return commit_.load(); }
  std::uint64_t applied_index() const { return applied_.load(); }
  // The highest commit index a leader told this replica since it started (0: none yet). A
  // replica has caught up with what was committed while it was away once it applied that far.
  std::uint64_t leader_commit_seen() const { return leader_commit_seen_.load(); }
  // Leader only: the highest index each follower is known to have (for lag metrics).
  std::vector<std::pair<node_id, std::uint64_t>> follower_match() const;

  // In-sync replicas (Kafka's ISR, replica.lag.time.max.ms): the leader, and each follower that
  // reached, within the last `lag_max`, the end the leader's log had at some moment since the
  // follower last (re)connected, and was heard from within `lag_max`. Followers that reconnect
  // (a restart) are out until they catch up again. Called every ~100 ms by the
  // ReplicaManager; `connected_since(n)` is when peer n's current link came up.
  using SteadyClock = std::chrono::steady_clock;
  void update_isr(SteadyClock::time_point now, std::chrono::milliseconds lag_max,
                  const std::function<SteadyClock::time_point(node_id)>& connected_since);
  // The ISR as last computed (leader), or empty (not leading).
  std::vector<node_id> isr() const;
  // Elections this replica ran (turned candidate) and won (turned leader), for /metrics.
  std::uint64_t elections_started() const { return elections_started_.load(std::memory_order_relaxed); }
  std::uint64_t elections_won() const { return elections_won_.load(std::memory_order_relaxed); }
  // Peer messages the Raft core refused as malformed or impossible (raft::Raft::messages_rejected).
  std::uint64_t messages_rejected() const { return messages_rejected_.load(std::memory_order_relaxed); }

 private:
  class Reader;
  struct Pending {
    term_t term;
    AckLevel acks;
    ProposeCallback done;
    std::int64_t base_offset;
  };

  // Everything below runs with mu_ held (the driver's invariant: one Ready in flight, taken by
  // pump(), handed back by after_persist()).
  void pump();
  // Damage recovery (replicated_log_recovery.cc).
  // Check of every stored batch's CRC from `from` on; the first damaged index, if any.
  std::optional<log_index> find_corruption(log_index from) const;
  // Opens the group over the stored log: at start, and again in place after the scrub found a
  // damaged entry (`known_bad`: cut there). Sets the applied state, the scrub range, the core.
  void open_locked(std::optional<log_index> known_bad);
  // Reads the recovering mark; cuts a damaged log (the first damage from `check_from` on, or
  // `known_bad`) and records the mark.
  void load_recovery_state(std::optional<log_index> known_bad, log_index check_from);
  // At a quiet point: ends the background check (lifts the hold) or acts on a damage it found.
  void maybe_finish_verification();
  // At start: whether this replica may have lost acknowledged data (and records a known loss).
  bool load_lost_state();
  std::unique_ptr<raft::Raft> make_raft(const raft::HardState& hs, log_index applied, bool lost_state) const;
  void maybe_finish_recovery();
  bool can_lose_state() const;  // a voter of a group with other voters
  // One Ready's storage write, captured when the Ready is taken (retried as is on failure).
  struct PersistPlan {
    std::vector<storage::WriteOp> ops;
    raft::HardState hs;
    std::uint64_t applied = 0;  // 0: the applied index is not in this write
    bool wait = true;           // false: only a moved commit index; nothing waits for it
  };
  void persist(std::shared_ptr<raft::Ready> rd);
  // A commit index that moved alone is recorded lazily (replicated_log_persist.cc).
  static constexpr std::chrono::milliseconds kCommitRecordDelay{50};
  void schedule_commit_record();
  void write_commit_record();
  void submit_plan(std::shared_ptr<raft::Ready> rd, std::shared_ptr<PersistPlan> plan);
  void mark_persisted(const PersistPlan& plan);
  void after_persist(std::shared_ptr<raft::Ready> rd);
  raft::Payload stamped(const raft::Entry& e) const;
  raft::Payload stamped_or_empty(const raft::Entry& e) const { return stamped(e); }
  std::int64_t end_offset_before(log_index i) const;
  void publish_soft();
  void fail_pending(wire::ErrorCode code, const std::string& why);
  void send_all(std::vector<raft::Message>& msgs);

  GroupOptions opts_;
  storage::Storage& storage_;
  ReplicaMeta meta_;
  storage::PartitionLog* const log_;
  Transport& transport_;
  Executor& exec_;
  Applier* const applier_;
  std::unique_ptr<raft::LogReader> reader_;  // a Reader (replicated_log.cc)

  mutable std::mutex mu_;
  std::unique_ptr<raft::Raft> raft_;
  bool persisting_ = false;             // a Ready is taken and not yet advanced (at most one)
  bool commit_record_scheduled_ = false;
  log_index last_applied_{0};           // index of the last entry handed to the Applier
  bool stopped_ = false;
  std::int64_t end_offset_ = 0;         // leader: offset after the last entry in the Raft log
  std::int64_t noop_base_offset_ = 0;   // leader: base offset of its own no-op of this term
  log_index term_start_index_{0};       // first index of this leader's term (its no-op)
  std::map<std::uint64_t, Pending> pending_;
  std::uint64_t persist_failures_ = 0;
  term_t persisted_term_{0};               // term and vote last handed to storage
  std::optional<node_id> persisted_vote_;
  std::uint64_t persisted_applied_ = 0;    // applied index last handed to storage
  log_index persisted_commit_{0};          // commit index last handed to storage
  // Set while this replica rebuilds a log it had to cut because of corruption: until its log
  // reaches what it held before it never stands, and it votes as if it still held that log
  // (raft::Config::held_before), so it can never decide an election with a damaged log, yet two
  // damaged replicas at once still let the third, whole one be elected.
  std::optional<log_index> recovering_until_;
  std::optional<term_t> recovering_term_;  // term of the entry at recovering_until_ (held_before)
  // The background check (scrub_step): [scrub_next_, scrub_end_] is left to check; the hold
  // (the log's last index and term when it was opened) applies while verifying_ is set.
  log_index scrub_next_{1};
  log_index scrub_end_{0};
  std::optional<log_index> scrub_damage_;
  std::optional<std::pair<log_index, term_t>> verify_hold_;
  // "lost:<group>" is stored while a KNOWN loss holds (it must survive a restart of a broker
  // that has not caught up yet); deleted with the Ready that ends the rule.
  bool lost_state_stored_ = false;
  std::uint64_t votes_withheld_base_ = 0;  // withheld by Raft objects replaced since start

  std::atomic<raft::Role> role_{raft::Role::follower};
  std::atomic<std::int32_t> leader_{-1};
  std::atomic<std::uint64_t> term_{0};
  std::atomic<std::uint64_t> commit_{0};
  std::atomic<bool> leader_ready_{false};
  std::atomic<std::uint64_t> elections_started_{0};
  std::atomic<std::uint64_t> elections_won_{0};
  std::atomic<bool> recovering_{false};
  std::atomic<bool> verifying_{false};
  std::atomic<std::uint64_t> scrubbed_bytes_{0};
  std::atomic<bool> lost_state_{false};
  std::atomic<std::uint64_t> applied_{0};
  std::atomic<std::uint64_t> lost_end_index_{0};
  std::atomic<std::uint64_t> votes_withheld_{0};
  std::atomic<std::uint64_t> messages_rejected_{0};
  std::atomic<std::uint64_t> leader_commit_seen_{0};
  std::chrono::steady_clock::time_point last_reject_log_{};  // under mu_
  // ISR bookkeeping (leader, under mu_): the leader's last index sampled over time, when each
  // follower was last caught up to a sample, when it was last heard from.
  std::deque<std::pair<SteadyClock::time_point, log_index>> isr_samples_;
  std::map<node_id, SteadyClock::time_point> caught_up_at_;
  std::map<node_id, SteadyClock::time_point> heard_at_;
  std::uint64_t isr_term_ = 0;  // the term the bookkeeping belongs to
  mutable std::mutex isr_mu_;
  std::vector<node_id> isr_;    // under isr_mu_
};

}  // namespace quorumq::broker
