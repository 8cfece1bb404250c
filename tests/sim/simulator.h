// A deterministic, single-threaded simulation of one Raft group (FoundationDB/TigerBeetle
// style): the real core, a fake network that drops, delays, duplicates and reorders messages
// and cuts links (symmetric and one-way partitions), crashes that lose everything a node had not
// reported persisted, restarts, lost disks (a voter or learner back with nothing, the voter
// under raft::Config::lost_state), retention trimming log prefixes, proposals and leadership
// transfers. Everything random comes from one seed, so a seed replays the same trace.
//
// Lifecycle: construct with options, run() once. Single-threaded.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <vector>

#include "checker.h"
#include "quorumq/raft/memory_log.h"
#include "quorumq/raft/raft.h"

namespace quorumq::sim {

struct SimOptions {
  std::uint64_t seed = 1;
  int chaos_ticks = 1000;   // ticks of faults before the network heals
  int liveness_ticks = 300; // after healing: max ticks without any commit progress
  // Also inject messages no correct peer can send (misaddressed, from the receiver itself or a
  // non-member, malformed entries, impossible acks and log resets) and replays of old ones.
  // The core must drop them all: every safety and liveness check still holds.
  bool hostile = false;
  // Tell survivors when a node crashes (and now and then wrongly about a live node), as a
  // broker's refused peer connection does (raft::Raft::peer_unreachable). Off for the kept
  // regression seeds, so they replay what they found.
  bool gone_signals = true;
};

struct SimResult {
  bool ok = true;
  std::string failure;
  std::string trace_tail;           // the last events, for a failure report
  std::uint64_t trace_hash = 0;     // hash of every event: equal for equal seeds
  std::size_t committed = 0;        // entries committed (applied somewhere)
  std::uint64_t events = 0;
  std::uint64_t injected = 0;       // hostile messages injected (SimOptions::hostile)
  std::uint64_t rejected = 0;       // messages the cores dropped as impossible
  std::uint64_t gone_signals = 0;   // peer_unreachable calls (right and wrong)
};

class Simulator {
 public:
  explicit Simulator(SimOptions options);
  SimResult run();
  // The trace tail so far (used by the abort handler when an assertion fires mid-run).
  std::string trace_tail() const;
  std::uint64_t seed() const { return opt_.seed; }

 private:
  struct Node {
    int id = 0;
    bool learner = false;
    bool lost_state = false;       // durable: raft::Config::lost_state still in force
    bool clear_lost_on_write = false;  // the pending Ready ends it
    raft::MemoryLog disk;          // survives crashes: only what was persisted
    raft::HardState hard_state;    // survives crashes
    std::unique_ptr<raft::Raft> raft;  // null while down
    std::optional<raft::Ready> pending;  // handed out, not yet persisted
    std::uint64_t write_at = 0;    // the pending Ready's disk write completes
    std::uint64_t persist_at = 0;  // then its messages are sent, entries applied, advance()
    bool written = false;
    bool report_early = false;     // call on_persisted() at write time
    std::uint64_t next_tick_at = 0;
    std::uint64_t restart_at = 0;
    log_index applied;
    int incarnation = 0;
    term_t led_term;  // last term we saw this node lead (leader completeness check once)
  };
  struct InFlight {
    std::uint64_t at;
    std::uint64_t seq;
    raft::Message msg;
    int deliver_to = 0;  // 0: msg.to; else a misaddressed delivery (hostile mode)
    bool operator>(const InFlight& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  struct TraceEvent {
    std::uint64_t time;
    const char* what;
    int node;
    std::uint64_t a, b, c;
    std::string detail;  // only for rare events (messages use the fields above)
  };

  void start_node(Node& n);
  void crash_node(Node& n);
  void step_once();  // one time unit: deliveries, ticks, completed persists
  void pump(Node& n);
  void write_disk(Node& n);
  void complete_persist(Node& n);
  void send(const raft::Message& m);
  void inject_hostile(const raft::Message& m);
  void deliver_due();
  void random_faults();
  void repartition();
  void propose_somewhere();
  void check_node(Node& n);
  void trace(const char* what, int node, std::uint64_t a = 0, std::uint64_t b = 0,
             std::uint64_t c = 0, std::string detail = {});
  bool link_ok(int from, int to) const;
  Node& node(int id) { return nodes_[static_cast<std::size_t>(id - 1)]; }
  raft::Config config_for(const Node& n) const;
  std::uint64_t rand(std::uint64_t n) { return rng_.below(n); }
  bool chance(double p) { return rng_.chance(p); }
  bool liveness_phase();

  SimOptions opt_;
  raft::Rng rng_;
  // Draws of the gone-signal faults only, so that adding them left every other draw (and the
  // kept seeds' schedules, with gone_signals off) as it was.
  raft::Rng gone_rng_;
  double gone_notice_prob_ = 0, gone_false_prob_ = 0;
  std::uint64_t gone_signals_ = 0;
  void signal_gone(int dead, bool wrong);
  Checker checker_;
  std::vector<Node> nodes_;
  std::vector<node_id> voters_;
  std::vector<node_id> learners_;
  std::uint64_t now_ = 0;
  std::uint64_t seq_ = 0;
  std::uint64_t next_payload_ = 1;
  std::priority_queue<InFlight, std::vector<InFlight>, std::greater<>> network_;
  std::vector<std::vector<bool>> blocked_;  // [from][to]
  std::vector<std::vector<std::uint64_t>> link_last_at_;  // [from][to]: FIFO delivery order

  // Per-seed fault profile.
  double drop_prob_ = 0, reorder_prob_ = 0, dup_prob_ = 0, crash_prob_ = 0, partition_prob_ = 0;
  double propose_prob_ = 0, retention_prob_ = 0, transfer_prob_ = 0;
  double wipe_voter_prob_ = 0;
  std::uint64_t max_delay_units_ = 1, max_persist_units_ = 0;
  bool faults_on_ = true;
  bool pre_vote_ = true, check_quorum_ = true;
  std::size_t max_inflight_ = 4, max_msg_bytes_ = 256;

  static constexpr std::uint64_t tick_units = 8;
  static constexpr std::size_t trace_keep = 60;
  std::vector<TraceEvent> trace_ring_;
  std::size_t trace_next_ = 0;
  std::uint64_t trace_hash_ = 1469598103934665603ULL;
  std::uint64_t events_ = 0;
  std::uint64_t injected_ = 0;
  std::uint64_t rejected_ = 0;  // summed over cores that were replaced (crashes)
};

}  // namespace quorumq::sim
