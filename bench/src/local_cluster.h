// LocalCluster: the --spawn N brokers — testsupport::LocalCluster (free loopback ports, --peers,
// a cluster secret file, one temporary directory removed at the end) with what the bench adds:
// brokers die with the bench whatever kills it and ignore a terminal's Ctrl-C (the bench
// decides when they stop), brokers are named by node id (1..N), and the chaos thread and the
// main thread may both call in.
//
// Chaos hooks: kill (SIGKILL + reap), start again on the same ports and data, pause (SIGSTOP),
// resume (SIGCONT), and which broker leads which partition according to its own /metrics.
//
// Thread-safety: one mutex guards the process table. /metrics polling happens outside the lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "quorumq/testsupport/local_cluster.h"

namespace quorumq::bench {

struct ClusterOptions {
  int brokers = 1;
  std::string broker_bin;          // empty: next to the bench build tree or $QUORUMQ_BROKER_BIN
  std::string log_level = "warn";
  std::filesystem::path base_dir;  // temp dirs go under this (empty: the system temp dir)
  bool keep_data = false;          // leave the directory for inspection
  std::vector<std::string> extra_args;
};

class LocalCluster {
 public:
  explicit LocalCluster(ClusterOptions options);
  ~LocalCluster();  // stop_all() + remove the directory unless keep_data
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  // Spawns all brokers and waits until every one answers /readyz 200.
  std::expected<void, std::string> start(std::chrono::milliseconds timeout);
  void stop_all();

  std::string bootstrap() const { return cluster_.bootstrap(); }
  const std::filesystem::path& dir() const { return cluster_.dir(); }
  const std::string& broker_bin() const { return bin_; }
  int size() const { return cluster_.size(); }

  // By node id (1..N).
  void kill(int node);
  std::expected<void, std::string> restart(int node, std::chrono::milliseconds ready_timeout);
  void pause(int node);
  void resume(int node);
  bool running(int node) const;  // spawned and not paused

  // node id -> partitions it leads (by its /metrics), over running, unpaused brokers.
  std::map<int, std::set<std::int32_t>> leaders(const std::string& topic) const;
  std::vector<int> nodes() const;
  // node id -> the value of an unlabelled /metrics sample, over running, unpaused brokers that answer.
  std::map<int, double> sample(const std::string& name) const;
  // A counter summed over every process a node has had: kill() and restart() read a watched
  // counter from the victim before killing it (a restarted broker counts from 0 again).
  void watch_counter(std::string name);
  std::map<int, double> counter_total(const std::string& name) const;

  // Where the broker binary is: --broker-bin, $QUORUMQ_BROKER_BIN, or <bench dir>/../broker/.
  static std::expected<std::string, std::string> find_broker_bin(const std::string& flag);

 private:
  static std::string resolve_broker_bin(const std::string& flag);  // throws if there is none
  static testsupport::ClusterOptions cluster_options(const ClusterOptions& o, const std::string& bin);
  testsupport::BrokerProcess& node_locked(int node) { return cluster_.broker(node - 1); }

  std::string bin_;
  mutable std::mutex mu_;
  testsupport::LocalCluster cluster_;  // guarded by mu_ (its brokers' processes)
  std::vector<std::string> watched_;                          // guarded by mu_
  std::map<std::string, std::map<int, double>> retired_;      // guarded by mu_: killed processes' last values
  void retire_locked(int node);
};

}  // namespace quorumq::bench
