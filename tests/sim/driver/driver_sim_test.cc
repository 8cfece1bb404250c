// Runs the driver-level simulation (cluster_sim.h) over many seeds. Environment:
//   QUORUMQ_SIM_DRIVER_SEED=N    replay only seed N (prints its trace tail)
//   QUORUMQ_SIM_DRIVER_SEEDS=N   seeds over the shards (default 1000); when unset,
//   QUORUMQ_SIM_SEEDS=N          (the Raft-core simulation's knob) sets both simulations' seeds
// A failure prints "DRIVER SIM FAILED seed=N" with what failed and the last events.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>
#include <string>

#include "cluster_sim.h"
#include "partition.h"
#include "replicated_log.h"

namespace quorumq::sim {
namespace {

std::optional<std::uint64_t> env_u64(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::strtoull(v, nullptr, 10);
}

// tmpfs when there is one: thousands of small LMDB environments.
std::filesystem::path work_root() {
  std::error_code ec;
  const std::filesystem::path shm("/dev/shm");
  const auto base = std::filesystem::is_directory(shm, ec) ? shm : std::filesystem::temp_directory_path();
  return base / ("quorumq-driver-sim-" + std::to_string(::getpid()));
}

DriverSimResult run_seed(std::uint64_t seed, bool print = false, bool quiet = false, bool gone_signals = true) {
  DriverSimOptions o;
  o.seed = seed;
  o.gone_signals = gone_signals;
  o.work_dir = work_root() / std::to_string(seed);
  auto r = run_driver_sim(o);
  if ((!r.ok && !quiet) || print)
    std::fprintf(stderr, "%s seed=%llu: %s (%d brokers, %llu records acked, %llu commits, %llu crashes, %llu damaged, "
                         "%llu wiped)\n%s",
                 r.ok ? "driver sim ok" : "DRIVER SIM FAILED", static_cast<unsigned long long>(seed), r.failure.c_str(),
                 r.brokers, static_cast<unsigned long long>(r.acked_records), static_cast<unsigned long long>(r.commits_acked),
                 static_cast<unsigned long long>(r.crashes), static_cast<unsigned long long>(r.damaged),
                 static_cast<unsigned long long>(r.wiped), r.trace_tail.c_str());
  return r;
}

class DriverSim : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    spdlog::set_level(spdlog::level::off);
    // QUORUMQ_SIM_DRIVER_REGRESSION=producer|learner|serve forces a fixed bug back on (to hunt seeds).
    if (const char* r = std::getenv("QUORUMQ_SIM_DRIVER_REGRESSION")) {
      const std::string which(r);
      broker::sim_regression::producer_state_from_uncommitted_tail = which == "producer";
      broker::sim_regression::damaged_replica_is_learner = which == "learner";
      broker::sim_regression::serve_before_applied = which == "serve";
    }
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    std::filesystem::remove_all(work_root(), ec);
  }
};

constexpr std::uint64_t kShards = 2;

void run_shard(std::uint64_t shard) {
  // Snapshots of the producer table every few entries, so crashes restart from them. (The
  // regression seeds run with the default: their traces predate snapshots.)
  broker::partition_tuning::producer_snapshot_every = 7;
  if (auto one = env_u64("QUORUMQ_SIM_DRIVER_SEED")) {
    if (shard != 0) GTEST_SKIP() << "QUORUMQ_SIM_DRIVER_SEED set: replayed by shard 0";
    auto r = run_seed(*one, true);
    EXPECT_TRUE(r.ok) << r.failure;
    return;
  }
  const std::uint64_t total =
      env_u64("QUORUMQ_SIM_DRIVER_SEEDS").or_else([] { return env_u64("QUORUMQ_SIM_SEEDS"); }).value_or(1000);
  const auto t0 = std::chrono::steady_clock::now();
  std::uint64_t acked = 0, crashes = 0, damaged = 0, wiped = 0, gone = 0, failures = 0;
  for (std::uint64_t seed = 1 + shard; seed <= total; seed += kShards) {
    auto r = run_seed(seed);
    acked += r.acked_records, crashes += r.crashes, damaged += r.damaged, wiped += r.wiped, gone += r.gone_signals;
    if (!r.ok) {
      ADD_FAILURE() << "DRIVER SIM FAILED seed=" << seed << ": " << r.failure
                    << " (replay: QUORUMQ_SIM_DRIVER_SEED=" << seed << ")";
      if (++failures >= 3) break;
    }
  }
  std::fprintf(stderr, "driver sim shard %llu: seeds up to %llu, %llu records acked, %llu crashes, %llu damaged, %llu wiped, %llu gone signals, %.1f s\n",
               static_cast<unsigned long long>(shard), static_cast<unsigned long long>(total),
               static_cast<unsigned long long>(acked), static_cast<unsigned long long>(crashes),
               static_cast<unsigned long long>(damaged), static_cast<unsigned long long>(wiped),
               static_cast<unsigned long long>(gone), std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

// Seeds that found fixed bugs: each must fail with its bug forced back on and pass without it.
// When a change to the simulation moves them, find new ones with
//   QUORUMQ_SIM_DRIVER_REGRESSION=producer|learner|serve driver_sim_tests
// (the failing seeds are printed) and update this table.
struct RegressionCase {
  const char* bug;
  bool* flag;
  std::vector<std::uint64_t> seeds;
};

TEST_F(DriverSim, RegressionSeedsStillFindFixedBugs) {
  if (std::getenv("QUORUMQ_SIM_DRIVER_REGRESSION") != nullptr) GTEST_SKIP() << "a regression is forced for the whole run";
  const auto snapshot_every = broker::partition_tuning::producer_snapshot_every;
  broker::partition_tuning::producer_snapshot_every = 1000;
  const RegressionCase cases[] = {
      {"27d463b producer table from the uncommitted tail", &broker::sim_regression::producer_state_from_uncommitted_tail,
       {368, 1438, 2071}},
      {"96dd009 damaged replica demoted to learner", &broker::sim_regression::damaged_replica_is_learner, {833, 2087, 2261}},
      {"a new leader serving before its term's first entry is applied", &broker::sim_regression::serve_before_applied,
       {4532, 9459}},
  };
  for (const auto& c : cases) {
    for (std::uint64_t seed : c.seeds) {
      *c.flag = true;
      const auto with_bug = run_seed(seed, false, /*quiet=*/true, /*gone_signals=*/false);
      *c.flag = false;
      EXPECT_FALSE(with_bug.ok) << c.bug << ": seed " << seed << " no longer finds it";
      std::fprintf(stderr, "regression seed %llu finds \"%s\": %s\n", static_cast<unsigned long long>(seed), c.bug,
                   with_bug.failure.c_str());
      const auto fixed = run_seed(seed, false, false, /*gone_signals=*/false);
      EXPECT_TRUE(fixed.ok) << c.bug << ": seed " << seed << " fails without the bug: " << fixed.failure;
    }
  }
  broker::partition_tuning::producer_snapshot_every = snapshot_every;
}

TEST_F(DriverSim, Shard0) { run_shard(0); }
TEST_F(DriverSim, Shard1) { run_shard(1); }

}  // namespace
}  // namespace quorumq::sim
