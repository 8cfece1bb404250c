#include "cluster_sim.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "config.h"
#include "controller.h"
#include "executor.h"
#include "incarnation.h"
#include "metrics.h"
#include "partition.h"
#include "quorumq/protocol/record_batch.h"
#include "quorumq/raft/rng.h"
#include "quorumq/storage/storage.h"
#include "replication.h"
#include "topics.h"

namespace quorumq::sim {

using namespace quorumq::broker;
namespace fs = std::filesystem;

namespace {

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ------------------------------------------------------------------ executor, virtual time
class SimExecutor final : public Executor {
 public:
  explicit SimExecutor(const std::uint64_t& now) : now_(now) {}
  void post(std::function<void()> fn) override { posted_.push_back(std::move(fn)); }
  std::shared_ptr<TimerHandle> run_after(std::chrono::milliseconds d, std::function<void(bool)> fn) override {
    auto t = std::make_shared<Timer>();
    t->fn = std::move(fn);
    timers_.push_back({now_ + static_cast<std::uint64_t>(std::max<std::int64_t>(0, d.count())), seq_++, t});
    return t;
  }
  // Everything posted, and every timer due (or cancelled), until nothing is left to run now.
  void run_due() {
    for (int round = 0; round < 10000; ++round) {
      bool any = false;
      auto posted = std::move(posted_);
      posted_.clear();
      for (auto& f : posted) f(), any = true;
      std::vector<Entry> due;
      for (auto it = timers_.begin(); it != timers_.end();) {
        if (it->at <= now_ || it->t->cancelled) {
          due.push_back(*it);
          it = timers_.erase(it);
        } else {
          ++it;
        }
      }
      std::sort(due.begin(), due.end(), [](const Entry& a, const Entry& b) { return a.at != b.at ? a.at < b.at : a.seq < b.seq; });
      for (auto& e : due)
        if (!e.t->done) {
          e.t->done = true;
          auto fn = std::move(e.t->fn);
          fn(e.t->cancelled);
          any = true;
        }
      if (!any) return;
    }
    throw Failure("executor: tasks keep scheduling more tasks at the same instant (a busy loop)");
  }
  void clear() {
    posted_.clear();
    timers_.clear();
  }

 private:
  struct Timer final : TimerHandle {
    std::function<void(bool)> fn;
    bool cancelled = false;
    bool done = false;
    void cancel() override { cancelled = true; }
  };
  struct Entry {
    std::uint64_t at, seq;
    std::shared_ptr<Timer> t;
  };
  const std::uint64_t& now_;
  std::vector<std::function<void()>> posted_;
  std::vector<Entry> timers_;
  std::uint64_t seq_ = 0;
};

// ------------------------------------------------------------------------------- the sim
class ClusterSim {
 public:
  explicit ClusterSim(const DriverSimOptions& o)
      : opt_(o), rng_(o.seed * 0x9e3779b97f4a7c15ULL + 0x2545F4914F6CDD1DULL) {
    n_ = rng_.chance(0.7) ? 3 : 5;
    drop_ = rng_.chance(0.3) ? 0.0 : static_cast<double>(rng_.below(8)) / 100.0;
    dup_ = rng_.chance(0.5) ? 0.0 : static_cast<double>(rng_.below(4)) / 100.0;
    max_delay_ = 1 + rng_.below(rng_.chance(0.3) ? 40 : 8);
    crash_p_ = rng_.chance(0.2) ? 0.0 : 1.0 / static_cast<double>(300 + rng_.below(1500));
    partition_p_ = rng_.chance(0.3) ? 0.0 : 1.0 / static_cast<double>(300 + rng_.below(2000));
    damage_p_ = rng_.chance(0.5) ? 0.0 : 0.5;   // of a crash: the restarted replica's file is damaged
    wipe_p_ = rng_.chance(0.6) ? 0.0 : 0.3;     // of a crash: its data directory is lost
    sync_p_ = 0.1 + static_cast<double>(rng_.below(80)) / 100.0;  // a pending commit lands this ms
    fs::create_directories(opt_.work_dir);
    for (int i = 1; i <= n_; ++i) {
      auto b = std::make_unique<Broker>();
      b->id = i;
      b->dir = opt_.work_dir / ("b" + std::to_string(i));
      brokers_.push_back(std::move(b));
    }
    blocked_.assign(static_cast<std::size_t>(n_ + 1), std::vector<bool>(static_cast<std::size_t>(n_ + 1), false));
    for (auto& b : brokers_) b->cfg = config_for(b->id);
  }

  ~ClusterSim() {
    for (auto& b : brokers_) stop_broker(*b, /*crash=*/true);
    std::error_code ec;
    fs::remove_all(opt_.work_dir, ec);
  }

  DriverSimResult run() {
    DriverSimResult r;
    r.brokers = n_;
    try {
      for (auto& b : brokers_) start_broker(*b);
      // Chaos with load.
      while (now_ < static_cast<std::uint64_t>(opt_.chaos_ms)) {
        step();
        faults();
      }
      // Heal: no more faults; every broker back; everything must converge and go on.
      trace("heal");
      for (auto& row : blocked_) std::fill(row.begin(), row.end(), false);
      drop_ = dup_ = 0;
      faults_on_ = false;
      const std::uint64_t deadline = now_ + static_cast<std::uint64_t>(opt_.settle_ms);
      while (!converged()) {
        if (now_ > deadline) throw Failure("liveness: no convergence within " + std::to_string(opt_.settle_ms) +
                                           " ms after healing (" + why_not_converged_ + ")");
        for (auto& b : brokers_)
          if (!b->up) start_broker(*b);
        step();
      }
      verify_final();
    } catch (const Failure& f) {
      r.ok = false;
      r.failure = f.what();
      r.trace_tail = tail();
    }
    r.acked_batches = acked_batches_;
    r.acked_records = acked_records_;
    r.commits_acked = commits_acked_;
    r.crashes = crashes_, r.damaged = damaged_, r.wiped = wiped_, r.partitions = partitions_;
    r.gone_signals = gone_signals_;
    return r;
  }

 private:
  // ---- brokers
  struct Broker;
  class Transport final : public broker::Transport {
   public:
    Transport(ClusterSim& s, int self) : s_(s), self_(self) {}
    void send(node_id to, GroupMessage m) override { s_.send(self_, to.value, std::move(m)); }

   private:
    ClusterSim& s_;
    int self_;
  };
  struct Broker {
    int id = 0;
    fs::path dir;
    bool up = false;
    std::uint64_t restart_at = 0;
    int starts = 0;
    std::uint64_t started_at = 0;
    bool damaged_pending = false;  // a byte of its file was flipped while it was down
    bool healing = false;          // wiped or damaged: not whole until its replicas are back
    BrokerConfig cfg;
    Metrics metrics;
    std::unique_ptr<storage::Storage> storage;
    std::unique_ptr<SimExecutor> exec;
    std::unique_ptr<Transport> transport;
    std::unique_ptr<Incarnation> incarnation;
    std::unique_ptr<ReplicaManager> replication;
    std::unique_ptr<TopicManager> topics;
    std::unique_ptr<Controller> controller;
  };

  BrokerConfig config_for(int id) const {
    BrokerConfig c;
    c.node_id = id;
    c.cluster_id = "sim";
    c.data_dir = (opt_.work_dir / ("b" + std::to_string(id))).string();
    for (int i = 1; i <= n_; ++i) c.peers.push_back({i, HostPort{"sim", static_cast<std::uint16_t>(10000 + i)}});
    c.election_timeout_ms = 150;
    c.heartbeat_interval_ms = 30;
    return c;
  }

  std::uint64_t seed_for(const Broker& b, const std::string& what) const {
    return opt_.seed * 1000003ULL + static_cast<std::uint64_t>(b.id) * 7919ULL +
           static_cast<std::uint64_t>(b.starts) * 104729ULL + std::hash<std::string>{}(what);
  }

  void start_broker(Broker& b) {
    storage::StorageOptions so;
    so.dir = b.dir;
    so.map_size_bytes = 64u << 20;
    so.max_logs = 64;
    so.manual_writer = true;
    so.simulation_no_sync = true;
    auto st = storage::Storage::open(so);
    if (!st) throw Failure("broker " + std::to_string(b.id) + ": storage: " + st.error().message);
    ++b.starts;
    b.storage = std::move(*st);
    b.exec = std::make_unique<SimExecutor>(now_);
    b.transport = std::make_unique<Transport>(*this, b.id);
    std::vector<node_id> peers;
    for (int i = 1; i <= n_; ++i)
      if (i != b.id) peers.push_back(node_id{i});
    b.incarnation = std::make_unique<Incarnation>(*b.storage, peers);
    b.replication = std::make_unique<ReplicaManager>(b.cfg, *b.transport, *b.incarnation);
    b.topics = std::make_unique<TopicManager>(*b.storage, b.metrics, node_id{b.id}, 64);
    Broker* bp = &b;
    b.topics->set_hooks(
        [this, bp](Partition& p, bool) {
          auto opts = bp->replication->base_options();
          opts.name = TopicManager::log_name(p.topic(), p.id());
          opts.voters = p.replicas();
          std::sort(opts.voters.begin(), opts.voters.end());
          opts.campaign_at_start = p.replicas().front() == node_id{bp->id};
          opts.rng_seed = seed_for(*bp, opts.name);
          p.start(opts, *bp->transport, *bp->exec);
          bp->replication->add(p.group_ptr());
        },
        [bp](Partition& p) { bp->replication->remove(TopicManager::log_name(p.topic(), p.id())); });
    std::vector<node_id> all;
    for (int i = 1; i <= n_; ++i) all.push_back(node_id{i});
    b.controller = std::make_unique<Controller>(*b.storage, *b.topics, all, node_id{b.id});
    auto opts = b.replication->base_options();
    opts.rng_seed = seed_for(b, "__controller");
    if (auto c = b.controller->start(opts, *b.transport, *b.exec); !c)
      throw Failure("broker " + std::to_string(b.id) + ": controller: " + c.error());
    b.replication->add(b.controller->group_ptr());
    b.up = true;
    b.started_at = now_;
    trace("start b" + std::to_string(b.id) + (b.damaged_pending ? " (damaged file)" : ""));
    b.damaged_pending = false;
  }

  // A crash (kill -9): writes not yet committed and queued tasks are gone. `graceful` is not
  // modelled: every stop is a crash.
  void stop_broker(Broker& b, bool crash) {
    (void)crash;
    if (!b.up) return;
    b.up = false;
    b.storage->discard_pending();
    b.exec->clear();
    b.controller.reset();
    // Partitions stop: their pending proposals fail, as a client sees its connection drop when a
    // process dies. When the machine is lost (silent) nothing tells the client: it waits for
    // its request timeout.
    const auto answered_before = answers_.size();
    b.topics.reset();
    if (silent_crash_) answers_.erase(answers_.begin() + static_cast<std::ptrdiff_t>(answered_before), answers_.end());
    silent_crash_ = false;
    b.exec->clear();
    b.replication.reset();
    b.incarnation.reset();
    b.transport.reset();
    b.storage->discard_pending();
    b.storage.reset();
    b.exec.reset();
  }

  // ---- network
  struct Packet {
    std::uint64_t at, seq;
    int from, to;
    std::optional<GroupMessage> gm;  // none: the periodic announcement (header + led groups)
    DirHeader dirs;
    std::vector<LeaderAnnouncement> leaders;
  };
  // What PeerTransport::announce does every 500 ms (and at start): the incarnation header and
  // the groups the sender leads, to every peer.
  void announce(Broker& b) {
    const auto led = b.replication->led_groups();
    for (int to = 1; to <= n_; ++to) {
      if (to == b.id || (faults_on_ && rng_.chance(drop_))) continue;
      const auto h = b.incarnation->header_for(node_id{to});
      Packet p{now_ + 1 + rng_.below(max_delay_), seq_++, b.id, to, std::nullopt,
               {h.sender_dir, h.receiver_dir, h.sender_settled}, led};
      auto& last = link_last_[{b.id, to}];
      p.at = std::max(p.at, last);
      last = p.at;
      net_.push_back(std::move(p));
    }
  }
  void send(int from, int to, GroupMessage m) {
    if (to < 1 || to > n_) return;
    if (faults_on_ && rng_.chance(drop_)) return;
    const auto h = broker(from).incarnation->header_for(node_id{to});
    Packet p{now_ + 1 + rng_.below(max_delay_), seq_++, from, to, std::move(m), {h.sender_dir, h.receiver_dir, h.sender_settled}, {}};
    auto& last = link_last_[{from, to}];
    p.at = std::max(p.at, last);  // TCP: in order per link
    last = p.at;
    if (faults_on_ && rng_.chance(dup_)) {
      Packet d = p;
      d.seq = seq_++;
      d.at += 1 + rng_.below(max_delay_);
      net_.push_back(std::move(d));
    }
    net_.push_back(std::move(p));
  }
  void deliver_due() {
    std::vector<Packet> due;
    for (auto it = net_.begin(); it != net_.end();) {
      if (it->at <= now_) {
        due.push_back(std::move(*it));
        it = net_.erase(it);
      } else {
        ++it;
      }
    }
    std::sort(due.begin(), due.end(), [](const Packet& a, const Packet& b) { return a.at != b.at ? a.at < b.at : a.seq < b.seq; });
    for (auto& p : due) {
      Broker& to = broker(p.to);
      if (!to.up || blocked_[static_cast<std::size_t>(p.from)][static_cast<std::size_t>(p.to)]) continue;
      DecodedEnvelope env;
      env.from = p.from;
      env.cluster_id = "sim";
      env.dirs = p.dirs;
      env.leaders = std::move(p.leaders);
      if (p.gm) env.messages.push_back(std::move(*p.gm));
      to.replication->deliver(env);
    }
  }

  // ---- a crashed process's refused peer port (PeerTransport's peer_unreachable hook)
  struct GoneSignal {
    std::uint64_t at;
    int to, dead;
  };
  void schedule_gone_signals(int dead) {
    if (!opt_.gone_signals) return;
    for (auto& b : brokers_)
      if (b->id != dead && b->up && gone_rng_.chance(0.8))  // a link may not notice before the restart
        gone_.push_back({now_ + gone_rng_.below(30), b->id, dead});
  }
  void deliver_gone_signals() {
    for (auto it = gone_.begin(); it != gone_.end();) {
      if (it->at > now_) {
        ++it;
        continue;
      }
      Broker& b = *brokers_[static_cast<std::size_t>(it->to - 1)];
      // Only while the dead broker is still down: a restarted one accepts connections again.
      if (b.up && !brokers_[static_cast<std::size_t>(it->dead - 1)]->up) {
        trace("b" + std::to_string(it->to) + " hears b" + std::to_string(it->dead) + " is gone");
        b.replication->peer_unreachable(node_id{it->dead});
        ++gone_signals_;
      }
      it = gone_.erase(it);
    }
  }

  // ---- one millisecond
  void step() {
    ++now_;
    deliver_due();
    deliver_gone_signals();
    for (auto& b : brokers_) {
      if (!b->up) continue;
      if (now_ % ReplicaManager::kTickMs == static_cast<std::uint64_t>(b->id) % ReplicaManager::kTickMs)
        b->replication->tick_all();
      if (now_ % 500 == static_cast<std::uint64_t>(b->id) || now_ == b->started_at + 1) announce(*b);
      // The broker's scrub thread: a background check of the restarted logs, 64 KiB every 5 ms.
      if (now_ % 5 == static_cast<std::uint64_t>(b->id) % 5) b->replication->scrub_some(64u << 10);
      b->exec->run_due();
      // The disk: a queued group commit lands now or later.
      if (b->storage->pending_writes() > 0 && rng_.chance(sync_p_)) b->storage->run_pending(false);
      b->exec->run_due();
    }
    workload();
    process_answers();
    check_watermarks();
  }

  void faults() {
    if (!faults_on_) return;
    // Restarts due.
    for (auto& b : brokers_)
      if (!b->up && now_ >= b->restart_at) start_broker(*b);
    const int down = static_cast<int>(std::count_if(brokers_.begin(), brokers_.end(), [](const auto& b) { return !b->up; }));
    const int tolerate = (n_ - 1) / 2;
    if (down < tolerate && rng_.chance(crash_p_)) {
      Broker& b = *brokers_[rng_.below(static_cast<std::uint64_t>(n_))];
      if (b.up) {
        const auto tips = log_tips();
        ++crashes_;
        silent_crash_ = rng_.chance(0.5);
        const bool machine_lost = silent_crash_;
        stop_broker(b, true);
        if (!machine_lost) schedule_gone_signals(b.id);
        b.restart_at = now_ + 30 + rng_.below(600);
        trace("crash b" + std::to_string(b.id));
        // Disk faults, one damaged or lost replica at a time, only while every other broker is
        // up and whole (the fault model of the suite: a minority; Jepsen's: one node).
        const bool others_whole = down == 0 && !any_recovering();
        if (others_whole && rng_.chance(wipe_p_) && now_ > 2000) {
          std::error_code ec;
          fs::remove_all(b.dir, ec);
          ++wiped_;
          b.restart_at = now_ + 800 + rng_.below(400);  // a replaced disk takes a while
          b.healing = true;
          trace("wipe b" + std::to_string(b.id));
        } else if (others_whole && rng_.chance(damage_p_) && damage(b)) {
          ++damaged_;
          b.damaged_pending = b.healing = true;
          trace("damage b" + std::to_string(b.id));
          // Now and then a second replica goes down damaged too, in another record: a majority of
          // three damaged (the case 96dd009 fixed). Only while a broker that stays up has a log
          // at least as up to date as both (so it holds every committed entry: a damaged replica
          // drops its log from the damaged entry on, and nothing else could rebuild it).
          if (rng_.chance(0.3)) {
            Broker& c = *brokers_[rng_.below(static_cast<std::uint64_t>(n_))];
            if (&c != &b && c.up && covered_by_others(tips, b.id, c.id)) {
              ++crashes_;
              stop_broker(c, true);
              c.restart_at = now_ + 30 + rng_.below(600);
              trace("crash b" + std::to_string(c.id));
              if (damage(c, last_damaged_)) {
                ++damaged_;
                c.damaged_pending = c.healing = true;
                trace("damage b" + std::to_string(c.id));
              }
            }
          }
        }
      }
    }
    if (rng_.chance(partition_p_)) {
      for (auto& row : blocked_) std::fill(row.begin(), row.end(), false);
      if (rng_.chance(0.7)) {
        const int a = 1 + static_cast<int>(rng_.below(static_cast<std::uint64_t>(n_)));
        for (int j = 1; j <= n_; ++j)
          if (j != a) blocked_[static_cast<std::size_t>(a)][static_cast<std::size_t>(j)] = blocked_[static_cast<std::size_t>(j)][static_cast<std::size_t>(a)] = true;
        ++partitions_;
        trace("isolate b" + std::to_string(a));
      } else {
        trace("heal network");
      }
    }
    // Topic commands through the controller: a short-lived topic now and then.
    if (rng_.chance(0.0015)) {
      const std::string name = "x" + std::to_string(next_topic_++);
      if (auto* c = controller_leader()) {
        c->create_topic(name, TopicConfig{1, static_cast<std::int16_t>(std::min(3, n_)), {}}, [](auto) {});
        trace("create " + name);
      }
    }
    if (rng_.chance(0.001) && next_topic_ > 0) {
      const std::string name = "x" + std::to_string(rng_.below(static_cast<std::uint64_t>(next_topic_)));
      if (auto* c = controller_leader()) {
        c->delete_topic(name, [](auto) {});
        trace("delete " + name);
      }
    }
  }

  // (last term, last index) of every up broker's replica of each partition of "t".
  using Tip = std::pair<std::uint64_t, std::uint64_t>;
  std::map<std::pair<int, int>, Tip> log_tips() {
    std::map<std::pair<int, int>, Tip> out;
    for (auto& b : brokers_) {
      if (!b->up) continue;
      auto t = b->topics->find("t");
      for (int p = 0; t && p < kPartitions; ++p)
        if (Partition* part = t->local(p)) {
          const auto st = part->log()->state();
          out[{b->id, p}] = {st.last_term.value, st.last_index.value};
        }
    }
    return out;
  }
  bool covered_by_others(const std::map<std::pair<int, int>, Tip>& tips, int x, int y) {
    for (int p = 0; p < kPartitions; ++p) {
      Tip need{0, 0};
      for (int id : {x, y})
        if (auto it = tips.find({id, p}); it != tips.end()) need = std::max(need, it->second);
      bool covered = false;
      for (const auto& [key, tip] : tips)
        if (key.second == p && key.first != x && key.first != y && tip >= need) covered = true;
      if (!covered) return false;
    }
    return true;
  }

  bool any_recovering() {
    for (auto& b : brokers_) {
      if (!b->up) continue;
      if (b->damaged_pending) return true;
      if (b->healing) {
        // Whole again once it holds every partition of "t" and none is recovering.
        if (!b->controller || !b->controller->group() || b->controller->group()->lost_state()) return true;
        auto t = b->topics->find("t");
        if (!t) return true;
        for (int p = 0; p < kPartitions; ++p)
          if (Partition* part = t->local(p); !part || !part->group() || part->group()->lost_state() ||
                                              part->group()->recovering() || part->group()->verifying())
            return true;  // a log not yet checked may hold damage nobody knows of yet: not whole
        b->healing = false;
        trace("whole b" + std::to_string(b->id));
      }
      if (b->controller && b->controller->group() && b->controller->group()->recovering()) return true;
      for (const auto& t : b->topics->list())
        for (const auto& p : t->partitions)
          if (p && p->group() && (p->group()->recovering() || p->group()->lost_state() || p->group()->verifying())) return true;
    }
    return false;
  }

  // Flips one byte inside a record value of a stopped broker's data file; never inside a value
  // equal to `spare` (the record damaged on another replica).
  bool damage(Broker& b, const std::string& spare = {}) {
    const auto path = b.dir / "data.mdb";
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    if (!f) return false;
    std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::vector<std::size_t> hits;
    const auto value_at = [&](std::size_t at) {
      std::size_t end = at + 4;
      while (end < data.size() && (std::isdigit(static_cast<unsigned char>(data[end])) || data[end] == '-')) ++end;
      return data.substr(at, end - at);
    };
    for (std::size_t at = data.find("rec-"); at != std::string::npos; at = data.find("rec-", at + 1))
      if (spare.empty() || value_at(at) != spare) hits.push_back(at);
    if (hits.empty()) return false;
    const std::size_t hit = hits[rng_.below(hits.size())];
    last_damaged_ = value_at(hit);
    const std::size_t at = hit + 2;
    f.seekp(static_cast<std::streamoff>(at));
    f.put(static_cast<char>(data[at] ^ 0x01));
    return true;
  }

  Controller* controller_leader() {
    for (auto& b : brokers_)
      if (b->up && b->controller && b->controller->group() && b->controller->group()->leader_ready())
        return b->controller.get();
    return nullptr;
  }

  Partition* serving(int p, Broker** who = nullptr) {
    for (auto& b : brokers_) {
      if (!b->up) continue;
      auto t = b->topics->find("t");
      if (!t) continue;
      Partition* part = t->local(p);
      if (part && part->serving()) {
        if (who) *who = b.get();
        return part;
      }
    }
    return nullptr;
  }

  // ---- workload
  static constexpr int kPartitions = 2;
  struct Batch {
    std::int32_t seq = 0;
    std::vector<std::string> values;
    std::vector<std::uint8_t> bytes;
  };
  struct Producer {
    std::int64_t pid = 0;
    std::int32_t next_seq = 0;
    std::optional<Batch> current;
    bool waiting = false;
    std::uint64_t attempt = 0;
    std::uint64_t sent_at = 0;
    std::uint64_t retry_at = 0;
  };
  struct Answer {
    int partition;
    std::uint64_t attempt;
    bool commit;  // an offset commit's answer
    ProduceResult result;
    std::int64_t commit_offset = 0;
  };

  void workload() {
    if (!topic_created_) {
      if (now_ % 50 == 0)
        if (auto* c = controller_leader())
          c->create_topic("t", TopicConfig{kPartitions, static_cast<std::int16_t>(n_), {}}, [this](std::optional<Status> e) {
            if (!e || e->code == wire::ErrorCode::topic_already_exists) topic_created_ = true;
          });
      return;
    }
    for (int p = 0; p < kPartitions; ++p) {
      Producer& pr = producers_[p];
      if (pr.pid == 0) pr.pid = 7000 + p;
      if (pr.waiting && now_ - pr.sent_at > 3000) pr.waiting = false, pr.retry_at = now_;  // no answer: retry
      if (pr.waiting || now_ < pr.retry_at) continue;
      if (!pr.current) {
        if (!faults_on_ && pr.next_seq >= final_seq_[p]) continue;  // settle: no new batches
        Batch b;
        b.seq = pr.next_seq;
        BatchBuilder bb;
        const int records = 1 + static_cast<int>(rng_.below(3));
        for (int k = 0; k < records; ++k) {
          b.values.push_back("rec-" + std::to_string(p) + "-" + std::to_string(b.seq + k));
          bb.add(std::nullopt, b.values.back(), static_cast<std::int64_t>(now_));
        }
        b.bytes = bb.finish(ProducerInfo{pr.pid, 0, b.seq});
        pr.current = std::move(b);
      }
      Partition* part = serving(p);
      if (!part) continue;
      pr.waiting = true;
      pr.sent_at = now_;
      const auto attempt = ++pr.attempt;
      part->produce({pr.current->bytes}, wire::Acks::quorum, [this, p, attempt](ProduceResult r) {
        answers_.push_back({p, attempt, false, std::move(r)});
      });
    }
    // Offset commits: the end of what is acknowledged, now and then.
    if (now_ % 37 == 0)
      for (int p = 0; p < kPartitions; ++p) {
        const std::int64_t offset = acked_end_[p];
        if (offset == 0) continue;
        if (Partition* part = serving(p))
          part->commit_offset(OffsetCommitItem{"g", offset, {}}, [this, p, offset](ProduceResult r) {
            answers_.push_back({p, 0, true, std::move(r), offset});
          });
      }
  }

  void process_answers() {
    auto answers = std::move(answers_);
    answers_.clear();
    for (auto& a : answers) {
      if (a.commit) {
        if (a.result.status.ok()) {
          commits_max_[a.partition] = std::max(commits_max_[a.partition], a.commit_offset);
          ++commits_acked_;
        }
        continue;
      }
      Producer& pr = producers_[a.partition];
      if (a.attempt != pr.attempt || !pr.current) continue;  // an answer to an earlier attempt
      pr.waiting = false;
      const auto& r = a.result;
      if (r.status.ok() || r.status.code == wire::ErrorCode::duplicate_sequence) {
        const Batch& b = *pr.current;
        for (std::size_t k = 0; k < b.values.size(); ++k) {
          const std::int64_t off = r.base_offset + static_cast<std::int64_t>(k);
          auto [it, fresh] = acked_.emplace(b.values[k], std::pair{a.partition, off});
          if (!fresh && it->second.second != off)
            throw Failure(b.values[k] + " acknowledged at offset " + std::to_string(it->second.second) + " and again at " +
                          std::to_string(off));
        }
        acked_end_[a.partition] = std::max(acked_end_[a.partition], r.base_offset + static_cast<std::int64_t>(b.values.size()));
        ++acked_batches_;
        acked_records_ += b.values.size();
        trace("ack p" + std::to_string(a.partition) + " seq " + std::to_string(b.seq) + " @" + std::to_string(r.base_offset) +
              (r.status.code == wire::ErrorCode::duplicate_sequence ? " (dup)" : ""));
        pr.next_seq = b.seq + static_cast<std::int32_t>(b.values.size());
        pr.current.reset();
      } else {
        pr.retry_at = now_ + 10 + rng_.below(30);
      }
    }
  }

  // ---- checks
  void check_watermarks() {
    for (auto& b : brokers_) {
      if (!b->up) continue;
      auto t = b->topics->find("t");
      if (!t) continue;
      for (int p = 0; p < kPartitions; ++p) {
        Partition* part = t->local(p);
        if (!part || !part->serving()) continue;
        // A leader of term T must serve at least what any leader of a term <= T served (leader
        // completeness; and its own watermark only grows). A deposed leader that has not
        // heard of its successor yet (a lower term) may lag behind it: that is not a regression.
        const auto hw = part->high_watermark();
        const std::uint64_t term = part->group()->term();
        auto& served = served_hw_[p];
        for (auto it = served.begin(); it != served.end() && it->first <= term; ++it)
          if (hw < it->second)
            throw Failure("high watermark of t/" + std::to_string(p) + " went back: broker " + std::to_string(b->id) +
                          " (term " + std::to_string(term) + ") serves " + std::to_string(hw) + " after " +
                          std::to_string(it->second) + " was served in term " + std::to_string(it->first));
        auto& mine = served[term];
        mine = std::max(mine, hw);
      }
    }
  }

  // Every broker up, every partition led and serving, every producer done, every replica at
  // the leader's end.
  bool converged() {
    for (int p = 0; p < kPartitions; ++p)
      if (final_seq_[p] == 0) final_seq_[p] = producers_[p].next_seq + 3;  // a few batches after healing (liveness)
    for (auto& b : brokers_)
      if (!b->up) return why("a broker is down"), false;
    if (!topic_created_) return why("topic t not created"), false;
    for (int p = 0; p < kPartitions; ++p) {
      Broker* leader = nullptr;
      Partition* lp = serving(p, &leader);
      if (!lp) return why("t/" + std::to_string(p) + " has no serving leader;" + describe(p)), false;
      if (producers_[p].current || producers_[p].next_seq < final_seq_[p])
        return why("producer of t/" + std::to_string(p) + " not done (seq " + std::to_string(producers_[p].next_seq) + ")"), false;
      const auto lst = lp->log()->state();
      for (auto& b : brokers_) {
        auto t = b->topics->find("t");
        Partition* part = t ? t->local(p) : nullptr;
        if (!part) return why("broker " + std::to_string(b->id) + " lacks t/" + std::to_string(p)), false;
        const auto st = part->log()->state();
        if (st.last_index != lst.last_index || part->high_watermark() != lp->high_watermark() ||
            (part->group() && (part->group()->recovering() || part->group()->lost_state() || part->group()->verifying())))
          return why("t/" + std::to_string(p) + " on broker " + std::to_string(b->id) + " not caught up (or its log not yet checked)"), false;
      }
    }
    // The controller's topic tables agree.
    std::optional<std::map<std::string, std::uint64_t>> ref;
    for (auto& b : brokers_) {
      std::map<std::string, std::uint64_t> topics;
      for (const auto& t : b->topics->list()) topics[t->name] = t->id;
      if (ref && *ref != topics) return why("brokers disagree about the topics"), false;
      ref = std::move(topics);
    }
    return true;
  }
  void why(std::string s) { why_not_converged_ = std::move(s); }
  // Each replica's view of t/p, for a liveness failure.
  std::string describe(int p) {
    std::string out;
    for (auto& b : brokers_) {
      out += " b" + std::to_string(b->id) + ":";
      auto t = b->up ? b->topics->find("t") : nullptr;
      Partition* part = t ? t->local(p) : nullptr;
      if (!part || !part->group()) {
        out += "-";
        continue;
      }
      const auto* g = part->group();
      const auto st = part->log()->state();
      out += (g->is_leader() ? "leader" : g->leader() ? "follower" : "no-leader") + std::string(" term ") +
             std::to_string(g->term()) + " last " + std::to_string(st.last_index.value) + " commit " +
             std::to_string(g->commit_index()) + " applied " + std::to_string(g->applied_index()) +
             (g->recovering() ? " recovering" : "") + (g->lost_state() ? " lost" : "") + " withheld " +
             std::to_string(g->votes_withheld()) + ";";
    }
    return out;
  }

  void verify_final() {
    for (int p = 0; p < kPartitions; ++p) {
      Broker* leader = nullptr;
      Partition* lp = serving(p, &leader);
      const auto st = lp->log()->state();
      // The committed log, record by record.
      std::map<std::int64_t, std::string> by_offset;
      std::map<std::string, std::int64_t> seen;
      std::vector<std::vector<std::uint8_t>> ref_entries;
      if (!st.empty()) {
        auto es = lp->log()->entries(st.first_index, st.last_index, SIZE_MAX);
        if (!es) throw Failure("reading t/" + std::to_string(p) + ": " + es.error().message);
        for (const auto& e : *es) {
          ref_entries.push_back(e.batch);
          const BatchView v(e.batch);
          if (v.type() != BatchType::data) continue;
          v.for_each_record([&](const RecordView& r) {
            const std::string val(r.value.value_or(""));
            if (!seen.emplace(val, r.offset).second)
              throw Failure(val + " is in t/" + std::to_string(p) + " twice (offsets " + std::to_string(seen[val]) + " and " +
                            std::to_string(r.offset) + ")");
            by_offset[r.offset] = val;
          });
        }
      }
      for (const auto& [val, at] : acked_) {
        if (at.first != p) continue;
        if (at.second < st.start_offset.value) continue;  // (no retention here; kept for clarity)
        auto it = by_offset.find(at.second);
        if (it == by_offset.end() || it->second != val)
          throw Failure("acknowledged " + val + " at t/" + std::to_string(p) + "@" + std::to_string(at.second) +
                        " is not there (found " + (it == by_offset.end() ? std::string("nothing") : it->second) + ")");
      }
      // Every replica holds the same entries.
      for (auto& b : brokers_) {
        Partition* part = b->topics->find("t")->local(p);
        auto es = part->log()->entries(st.first_index, st.last_index, SIZE_MAX);
        if (!es || es->size() != ref_entries.size())
          throw Failure("t/" + std::to_string(p) + " on broker " + std::to_string(b->id) + " differs from the leader's");
        for (std::size_t i = 0; i < es->size(); ++i)
          if ((*es)[i].batch != ref_entries[i])
            throw Failure("t/" + std::to_string(p) + " entry " + std::to_string(st.first_index.value + i) + " differs on broker " +
                          std::to_string(b->id));
      }
      // Acknowledged offset commits stay committed.
      const auto c = lp->committed_offset("g");
      if (commits_max_[p] > 0 && (!c || c->offset < commits_max_[p]))
        throw Failure("offset commit " + std::to_string(commits_max_[p]) + " of t/" + std::to_string(p) +
                      " was acknowledged but the leader has " + (c ? std::to_string(c->offset) : std::string("none")));
    }
  }

  // ---- trace
  void trace(std::string what) {
    ring_.push_back(std::to_string(now_) + " " + std::move(what));
    if (ring_.size() > 40) ring_.pop_front();
  }
  std::string tail() const {
    std::string out;
    for (const auto& l : ring_) out += "  " + l + "\n";
    return out;
  }

  Broker& broker(int id) { return *brokers_[static_cast<std::size_t>(id - 1)]; }

  DriverSimOptions opt_;
  raft::Rng rng_;
  int n_ = 3;
  double drop_ = 0, dup_ = 0, crash_p_ = 0, partition_p_ = 0, damage_p_ = 0, wipe_p_ = 0, sync_p_ = 0.5;
  std::uint64_t max_delay_ = 1;
  bool faults_on_ = true;
  std::uint64_t now_ = 0;
  std::uint64_t seq_ = 0;
  std::vector<std::unique_ptr<Broker>> brokers_;
  std::vector<std::vector<bool>> blocked_;
  std::map<std::pair<int, int>, std::uint64_t> link_last_;
  std::deque<Packet> net_;
  bool topic_created_ = false;
  int next_topic_ = 0;
  Producer producers_[kPartitions];
  std::int32_t final_seq_[kPartitions] = {0, 0};
  std::vector<Answer> answers_;
  std::map<std::string, std::pair<int, std::int64_t>> acked_;  // value -> (partition, offset)
  std::int64_t acked_end_[kPartitions] = {0, 0};
  std::int64_t commits_max_[kPartitions] = {0, 0};
  std::map<std::uint64_t, std::int64_t> served_hw_[kPartitions];  // term -> highest watermark served
  std::uint64_t acked_batches_ = 0, acked_records_ = 0, commits_acked_ = 0;
  bool silent_crash_ = false;  // the next stop_broker: its clients hear nothing (machine lost)
  // Draws of the gone signals only: the other faults' draws stay as they were.
  raft::Rng gone_rng_{opt_.seed * 0xd1b54a32d192ed03ULL + 0x8cb92ba72f3d8dd7ULL};
  std::vector<GoneSignal> gone_;
  std::uint64_t gone_signals_ = 0;
  std::string last_damaged_;  // the record value damage() flipped a byte in last
  std::uint64_t crashes_ = 0, damaged_ = 0, wiped_ = 0, partitions_ = 0;
  std::string why_not_converged_;
  std::deque<std::string> ring_;
};

}  // namespace

DriverSimResult run_driver_sim(const DriverSimOptions& options) {
  ClusterSim sim(options);
  return sim.run();
}

}  // namespace quorumq::sim
