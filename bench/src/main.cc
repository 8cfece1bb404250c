// quorumq-bench: the load generator. See bench/README.md and docs/benchmarks.md.
//
// Order of a run: parse flags -> spawn brokers (--spawn) -> probe the fsync ceiling -> create
// the topic -> consumers, producers, chaos, a live line per second -> producers flush -> chaos
// brings every victim back -> consumers drain until every acknowledged message was read (or no
// progress for --drain-timeout) -> summary, JSON, `lost= duplicated= reordered=`.
// Exit code: 0 ok, 1 the verification found something or the run failed, 2 bad usage.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <thread>

#include "chaos.h"
#include "fsync_probe.h"
#include "load.h"
#include "local_cluster.h"
#include "options.h"
#include "report.h"
#include "topic_setup.h"

using namespace quorumq::bench;
using namespace std::chrono_literals;

namespace {

std::atomic<int> g_interrupts{0};

void on_signal(int) {
  // The first Ctrl-C stops the load and still reports; the second leaves at once (spawned
  // brokers die with us through PR_SET_PDEATHSIG).
  if (g_interrupts.fetch_add(1) >= 1) _exit(130);
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

int run(const BenchConfig& cfg) {
  Report rep;
  rep.cfg = cfg;
  rep.cores = std::thread::hardware_concurrency();
  rep.loadavg_before = loadavg();
  std::random_device rd;
  const std::uint32_t run_id = rd() | 1u;
  rep.topic = cfg.topic.empty() ? "quorumq-bench-" + std::to_string(run_id) : cfg.topic;

  std::unique_ptr<LocalCluster> cluster;
  if (cfg.spawn) {
    ClusterOptions co;
    co.brokers = cfg.spawn;
    co.broker_bin = cfg.broker_bin;
    co.log_level = cfg.broker_log_level;
    co.keep_data = cfg.keep_data;
    if (cfg.election_timeout_ms) co.extra_args.push_back("--election-timeout-ms=" + std::to_string(cfg.election_timeout_ms));
    // Two attempts: the free ports are picked by binding port 0 and closing it, so another
    // process on the machine can take one before the broker binds it.
    for (int attempt = 1;; ++attempt) {
      try {
        cluster = std::make_unique<LocalCluster>(co);
      } catch (const std::exception& e) {
        std::cerr << "quorumq-bench: " << e.what() << "\n";
        return 1;
      }
      std::cout << "spawning " << cfg.spawn << " broker(s) (" << cluster->broker_bin() << ") in " << cluster->dir().string() << "\n";
      auto r = cluster->start(60s);
      if (r) break;
      std::cerr << "quorumq-bench: " << r.error() << "\n";
      cluster.reset();
      if (attempt == 2 || g_interrupts.load()) return 1;
      std::cerr << "quorumq-bench: trying once more with new ports\n";
    }
    rep.bootstrap = cluster->bootstrap();
  } else {
    rep.bootstrap = cfg.bootstrap;
  }

  const std::filesystem::path probe_dir = !cfg.fsync_dir.empty() ? std::filesystem::path(cfg.fsync_dir)
                                          : cluster ? cluster->dir() : std::filesystem::current_path();
  if (auto f = probe_fsync(probe_dir)) {
    rep.fsync = *f;
    std::printf("fsync ceiling of %s: %.0f fsyncs/s (4 KiB write + fdatasync, %.0f us each)\n", probe_dir.c_str(),
                f->fsyncs_per_s, f->mean_us);
  } else {
    rep.fsync_error = f.error();
    std::printf("fsync ceiling of %s: unknown (%s)\n", probe_dir.c_str(), f.error().c_str());
  }

  auto layout = setup_topic(rep.bootstrap, rep.topic, cfg.partitions, cfg.replicas, cfg.security());
  if (!layout) {
    std::cerr << "quorumq-bench: " << layout.error() << "\n";
    return 1;
  }
  rep.brokers = layout->brokers;
  rep.replicas = layout->replicas;
  std::cout << "topic " << rep.topic << ": " << cfg.partitions << " partitions x " << rep.replicas << " replicas on "
            << rep.brokers << " broker(s) (" << rep.bootstrap << "); " << (cfg.open_loop() ? "open loop" : "closed loop") << ", acks=" << cfg.acks
            << "\n";

  Verifier verifier(static_cast<std::uint32_t>(cfg.producers));
  Counters counters;
  LatencyRecorder ack_lat, e2e_lat;
  ErrorLog errors;
  std::atomic<bool> stop_producing{false}, stop_consuming{false};
  const std::int64_t start_ns = now_ns() + 20'000'000;  // a moment for the threads to start
  std::unique_ptr<AvailabilityTracker> tracker;
  if (cfg.chaos.kind != ChaosSpec::Kind::none)
    tracker = std::make_unique<AvailabilityTracker>(start_ns, cfg.chaos.every_s, cfg.partitions);
  LoadContext ctx{cfg,      rep.topic,   rep.bootstrap, run_id,  start_ns,       0,
                  verifier, tracker.get(), counters,     ack_lat, e2e_lat,        errors,
                  stop_producing, stop_consuming};
  if (cfg.duration_s > 0) ctx.end_ns = start_ns + static_cast<std::int64_t>(cfg.duration_s * 1e9);

  // Elections the brokers start during the load: with no faults injected, any is a spurious one
  // (a timeout too short for this machine's stalls).
  const std::string elections_metric = "quorumq_raft_elections_started_total";
  std::map<int, double> elections_before;
  if (cluster) {
    cluster->watch_counter(elections_metric);
    elections_before = cluster->counter_total(elections_metric);
  }

  std::vector<std::thread> consumers, producers;
  auto start_consumers = [&] {
    for (int i = 0; i < cfg.consumers; ++i) consumers.emplace_back([&ctx, i] { run_consumer(ctx, i); });
  };
  if (!cfg.catch_up) start_consumers();
  std::atomic<int> producing{cfg.producers};
  for (int i = 0; i < cfg.producers; ++i)
    producers.emplace_back([&ctx, &producing, i] {
      run_producer(ctx, i);
      producing.fetch_sub(1);
    });
  std::unique_ptr<ChaosDriver> chaos;
  if (tracker) {
    chaos = std::make_unique<ChaosDriver>(cfg.chaos, *cluster, *tracker, rep.topic, cfg.partitions, layout->replicas_of, start_ns,
                                           ctx.end_ns);
    chaos->start();
  }

  // Live line once a second while producing.
  std::uint64_t last_acked = 0, last_bytes = 0, last_consumed = 0;
  std::int64_t last_t = start_ns;
  auto sample = [&](std::int64_t t) {
    Sample s;
    const double dt = static_cast<double>(t - last_t) / 1e9;
    const auto acked = counters.acked.load(), bytes = counters.acked_bytes.load(), consumed = counters.consumed.load();
    const Histogram h = ack_lat.take_interval();
    s.elapsed_s = static_cast<double>(t - start_ns) / 1e9;
    s.msgs_per_s = dt > 0 ? static_cast<double>(acked - last_acked) / dt : 0;
    s.mb_per_s = dt > 0 ? static_cast<double>(bytes - last_bytes) / dt / 1e6 : 0;
    s.consumed_per_s = dt > 0 ? static_cast<double>(consumed - last_consumed) / dt : 0;
    s.ack_p50_us = static_cast<double>(h.percentile(50)) / 1000;
    s.ack_p99_us = static_cast<double>(h.percentile(99)) / 1000;
    s.errors = counters.failed.load() + counters.consumer_errors.load();
    s.in_flight = counters.sent.load() - acked - counters.failed.load();
    last_acked = acked, last_bytes = bytes, last_consumed = consumed, last_t = t;
    rep.timeline.push_back(s);
    if (!cfg.quiet) print_live(std::cout, s);
  };
  std::int64_t next_tick = start_ns + 1'000'000'000;
  while (producing.load() > 0) {
    std::this_thread::sleep_for(20ms);
    if (g_interrupts.load() > 0) stop_producing = true;
    const std::int64_t t = now_ns();
    if (chaos && ctx.end_ns && t >= ctx.end_ns) chaos->stop();  // brings every victim back
    if (t >= next_tick) {
      sample(t);
      if (cluster)  // brokers' peak memory (RSS without the LMDB map), reported beside throughput
        for (const auto& [node, v] : cluster->sample("quorumq_process_anon_memory_bytes"))
          rep.broker_rss_max[node] = std::max(rep.broker_rss_max[node], v);
      next_tick += 1'000'000'000;
    }
  }
  for (auto& t : producers) t.join();
  const std::int64_t produce_end = now_ns();
  rep.produce_s = static_cast<double>(produce_end - start_ns) / 1e9;
  if (chaos) chaos->stop();
  if (cluster) {
    std::uint64_t n = 0;
    for (const auto& [node, after] : cluster->counter_total(elections_metric)) {
      const auto it = elections_before.find(node);
      const double before = it == elections_before.end() ? 0 : it->second;
      if (after > before) n += static_cast<std::uint64_t>(after - before);
    }
    rep.elections_started = n;
  }
  if (tracker) {
    rep.availability = tracker->finish(produce_end);
    rep.faults = tracker->faults();
    rep.chaos_notes = chaos->notes();
  }

  // --catch-up: the backlog is all there; the consumers start now and read it from the start.
  const auto catch_up_t0 = std::chrono::steady_clock::now();
  if (cfg.catch_up) {
    if (!cfg.quiet) std::cout << "producing ended; " << cfg.consumers << " consumer(s) catching up on " << counters.acked.load()
                              << " messages" << std::endl;
    start_consumers();
  }
  // Drain: consumers go on until every acknowledged message was read, or nothing moved for a while.
  if (cfg.consumers > 0) {
    std::uint64_t last = verifier.consumed();
    auto last_progress = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point first_read{};  // --catch-up: the first message read
    const auto patience = std::chrono::duration<double>(g_interrupts.load() ? 3.0 : cfg.drain_timeout_s);
    while (verifier.outstanding() > 0) {
      std::this_thread::sleep_for(20ms);
      const auto c = verifier.consumed();
      if (c != last) last = c, last_progress = std::chrono::steady_clock::now();
      if (cfg.catch_up && c > 0 && first_read == std::chrono::steady_clock::time_point{}) first_read = last_progress;
      if (std::chrono::steady_clock::now() - last_progress > patience || g_interrupts.load() > 1) break;
    }
    rep.drain_complete = verifier.outstanding() == 0;
    rep.verified = true;
    if (cfg.catch_up) {
      rep.catch_up_s = std::chrono::duration<double>(last_progress - catch_up_t0).count();
      if (first_read != std::chrono::steady_clock::time_point{})
        rep.catch_up_read_s = std::chrono::duration<double>(last_progress - first_read).count();
    }
  }
  stop_consuming = true;
  for (auto& t : consumers) t.join();

  rep.sent = counters.sent.load();
  rep.acked = counters.acked.load();
  rep.failed = counters.failed.load();
  rep.consumed = counters.consumed.load();
  rep.ack_latency = ack_lat.total();
  rep.e2e_latency = e2e_lat.total();
  rep.verify = verifier.result();
  rep.errors = errors.counts();
  rep.loadavg_after = loadavg();
  if (cluster) cluster->stop_all();

  print_summary(std::cout, rep);
  if (!cfg.json.empty()) {
    std::ofstream f(cfg.json);
    f << to_json(rep);
    if (!f) std::cerr << "quorumq-bench: cannot write " << cfg.json << "\n";
  }
  if (rep.verified)
    std::cout << "lost=" << rep.verify.lost << " duplicated=" << rep.verify.duplicated << " reordered=" << rep.verify.reordered
              << std::endl;
  if (rep.verified && !rep.verify.ok()) return 1;
  if (rep.acked == 0) {
    std::cerr << "quorumq-bench: nothing was acknowledged\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto cfg = parse_options(argc, argv);
  if (!cfg) return cfg.error();
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  return run(*cfg);
}
