// LocalCluster: N real brokers (node ids 1..N) on loopback, as a production cluster would run:
// each with a client, an admin and a peer port (free ports, chosen once and kept across
// restarts), --peers naming every peer listener, one cluster secret file (0600) they all
// prove they know (unless ClusterOptions::cluster_secret is off), and a data directory and log file each, all in one temporary directory
// that is removed at the end (kept with keep_data or QUORUMQ_TEST_KEEP=1).
//
//   <dir>/cluster.secret  <dir>/b1/ (data)  <dir>/b1.log  <dir>/b2/ ...
//
// Used by bench/ (--spawn) and tests/integration/ (Cluster). Brokers are reached by index
// (0..N-1) through broker(i) for kill/restart/pause. Not thread-safe (bench/ locks around it).
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "quorumq/testsupport/broker.h"
#include "quorumq/testsupport/temp_dir.h"

namespace quorumq::testsupport {

struct ClusterOptions {
  int brokers = 1;
  std::string broker_bin;                  // the quorumq-broker to run (see find_broker_bin)
  std::string log_level = "info";          // --log-level
  std::vector<std::string> extra_args;     // appended to every broker's flags
  std::filesystem::path base_dir;          // the temporary directory goes under this (empty: system temp)
  std::string dir_prefix = "quorumq-cluster";
  bool keep_data = false;                  // leave the directory for inspection
  bool die_with_parent = false;            // brokers die with this process (BrokerProcess::set_die_with_parent)
  bool kafka = false;                      // each broker also serves Kafka clients (--kafka-listen, a free port)
  bool cluster_secret = true;              // false: no --cluster-secret-file (peers authenticate by peer TLS)
  std::vector<std::vector<std::string>> node_args;  // node_args[i]: appended to broker i's flags only
};

class LocalCluster {
 public:
  explicit LocalCluster(ClusterOptions options);
  ~LocalCluster();  // SIGKILLs every broker, then removes the directory (unless kept)
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  // Spawns every broker, then waits until each answers /readyz 200 (a broker is ready only once
  // the controller group has a leader, which needs a majority: so they start together).
  std::expected<void, std::string> start(std::chrono::milliseconds timeout);
  void stop_all();  // SIGKILL

  BrokerProcess& broker(int i) { return *brokers_.at(static_cast<std::size_t>(i)); }
  const BrokerProcess& broker(int i) const { return *brokers_.at(static_cast<std::size_t>(i)); }
  int size() const { return static_cast<int>(brokers_.size()); }
  std::string bootstrap() const;  // every broker's client address, comma-separated
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::uint16_t peer_port(int i) const { return peer_ports_.at(static_cast<std::size_t>(i)); }
  const std::string& peers() const { return peers_; }  // the --peers value
  const std::filesystem::path& secret_file() const { return secret_file_; }
  // With ClusterOptions::kafka: broker i's Kafka port, and every broker's Kafka address.
  std::uint16_t kafka_port(int i) const { return kafka_ports_.at(static_cast<std::size_t>(i)); }
  std::string kafka_bootstrap() const;

 private:
  ClusterOptions options_;
  TempDir dir_;
  std::vector<std::uint16_t> peer_ports_;
  std::vector<std::uint16_t> kafka_ports_;
  std::string peers_;
  std::filesystem::path secret_file_;
  std::vector<std::unique_ptr<BrokerProcess>> brokers_;
};

}  // namespace quorumq::testsupport
