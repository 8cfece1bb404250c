// A local cluster of real broker processes for integration tests: ports, --peers, start/stop,
// and what each broker's /metrics says about partitions (leader, high watermark).
#pragma once

#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "harness.h"

namespace quorumq::test {

class Cluster {
 public:
  // Brokers 1..n on loopback; each has a client port and a peer port (--peers lists the peer
  // ports), and all share a cluster secret file, as a production cluster would.
  Cluster(int n, std::vector<std::string> extra = {}) {
    std::string peers;
    std::vector<std::uint16_t> ports;
    for (int i = 0; i < n; ++i) ports.push_back(free_port());
    for (int i = 0; i < n; ++i) peer_ports_.push_back(free_port());
    for (int i = 0; i < n; ++i)
      peers += (i ? "," : "") + std::to_string(i + 1) + "@127.0.0.1:" + std::to_string(peer_ports_[static_cast<std::size_t>(i)]);
    peers_ = peers;
    secret_file_ = dir_.path() / "cluster.secret";
    {
      std::ofstream f(secret_file_);
      f << "integration-test-secret-" << ports[0] << "\n";
    }
    for (int i = 0; i < n; ++i) {
      auto args = extra;
      args.push_back("--peers=" + peers);
      args.push_back("--cluster-secret-file=" + secret_file_.string());
      args.push_back("--log-level=info");
      brokers_.push_back(std::make_unique<BrokerProcess>(i + 1, dir_.path() / ("b" + std::to_string(i + 1)), args,
                                                         ports[static_cast<std::size_t>(i)]));
    }
  }
  void start_all() {
    // Each broker waits for /readyz, which needs a controller leader, so start them together.
    for (auto& b : brokers_) b->spawn();
    for (auto& b : brokers_) b->wait_ready(30s);
  }
  BrokerProcess& broker(int i) { return *brokers_[static_cast<std::size_t>(i)]; }
  int size() const { return static_cast<int>(brokers_.size()); }
  std::string bootstrap() const {
    std::string s;
    for (const auto& b : brokers_) s += (s.empty() ? "" : ",") + b->address();
    return s;
  }
  const std::filesystem::path& dir() const { return dir_.path(); }
  // Broker i's peer listener port (what --peers names), the --peers value and the secret file.
  std::uint16_t peer_port(int i) const { return peer_ports_[static_cast<std::size_t>(i)]; }
  const std::string& peers() const { return peers_; }
  const std::filesystem::path& secret_file() const { return secret_file_; }

  // Index of the broker that leads topic/partition according to its own metrics, or -1.
  int leader_of(const std::string& topic, int partition) {
    const std::string needle = "quorumq_partition_leader{topic=\"" + topic + "\",partition=\"" + std::to_string(partition) + "\"} 1";
    for (int i = 0; i < size(); ++i) {
      if (!broker(i).running()) continue;
      auto m = http_get(broker(i).admin_port(), "/metrics");
      if (m && m->body.find(needle) != std::string::npos) return i;
    }
    return -1;
  }
  // High watermark of topic/partition on broker i (-1 if unknown).
  std::int64_t hw(int i, const std::string& topic, int partition) {
    if (!broker(i).running()) return -1;
    auto m = http_get(broker(i).admin_port(), "/metrics");
    if (!m) return -1;
    const std::string needle =
        "quorumq_partition_high_watermark{topic=\"" + topic + "\",partition=\"" + std::to_string(partition) + "\"} ";
    const auto at = m->body.find(needle);
    if (at == std::string::npos) return -1;
    return std::stoll(m->body.substr(at + needle.size()));
  }
  // True once every running broker reports the same high watermark for every partition.
  bool replicas_agree(const std::string& topic, int partitions) {
    for (int p = 0; p < partitions; ++p) {
      std::optional<std::int64_t> v;
      for (int i = 0; i < size(); ++i) {
        const auto h = hw(i, topic, p);
        if (h < 0) return false;
        if (v && *v != h) return false;
        v = h;
      }
    }
    return true;
  }

 private:
  TempDir dir_{"quorumq-cluster"};
  std::vector<std::uint16_t> peer_ports_;
  std::string peers_;
  std::filesystem::path secret_file_;
  std::vector<std::unique_ptr<BrokerProcess>> brokers_;
};

}  // namespace quorumq::test
