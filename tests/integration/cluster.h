// A local cluster of real broker processes for integration tests (testsupport::LocalCluster),
// and what each broker's /metrics says about partitions (leader, high watermark).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "harness.h"
#include "quorumq/testsupport/local_cluster.h"

namespace quorumq::test {

class Cluster {
 public:
  // Brokers 1..n on loopback (testsupport::LocalCluster): each has a client, an admin and a
  // peer port (--peers lists the peer ports), and all share a cluster secret file, as a
  // production cluster would. `extra` flags go to every broker; their log level is info.
  Cluster(int n, std::vector<std::string> extra = {}) : cluster_(options(n, std::move(extra))) {}
  // Any other set-up (per-broker flags, no cluster secret, ...); broker_bin is filled in.
  explicit Cluster(testsupport::ClusterOptions o) : cluster_(with_binary(std::move(o))) {}
  void start_all() {
    // Each broker waits for /readyz, which needs a controller leader, so start them together.
    if (auto r = cluster_.start(30s * size()); !r) throw std::runtime_error(r.error());
  }
  testsupport::BrokerProcess& broker(int i) { return cluster_.broker(i); }
  int size() const { return cluster_.size(); }
  std::string bootstrap() const { return cluster_.bootstrap(); }
  const std::filesystem::path& dir() const { return cluster_.dir(); }
  // Broker i's peer listener port (what --peers names), the --peers value and the secret file.
  std::uint16_t peer_port(int i) const { return cluster_.peer_port(i); }
  const std::string& peers() const { return cluster_.peers(); }
  const std::filesystem::path& secret_file() const { return cluster_.secret_file(); }

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
  static testsupport::ClusterOptions options(int n, std::vector<std::string> extra) {
    testsupport::ClusterOptions o;
    o.brokers = n;
    o.broker_bin = broker_binary();
    o.log_level = "info";
    o.extra_args = std::move(extra);
    return o;
  }
  static testsupport::ClusterOptions with_binary(testsupport::ClusterOptions o) {
    if (o.broker_bin.empty()) o.broker_bin = broker_binary();
    return o;
  }
  testsupport::LocalCluster cluster_;
};

}  // namespace quorumq::test
