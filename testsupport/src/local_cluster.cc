#include "quorumq/testsupport/local_cluster.h"

#include <unistd.h>

#include <fstream>
#include <set>
#include <stdexcept>

#include "quorumq/testsupport/http.h"

namespace quorumq::testsupport {

namespace fs = std::filesystem;

LocalCluster::LocalCluster(ClusterOptions options)
    : options_(std::move(options)), dir_(options_.dir_prefix, options_.base_dir) {
  if (options_.broker_bin.empty()) throw std::invalid_argument("LocalCluster: no broker binary");
  dir_.keep(options_.keep_data);
  const int n = options_.brokers;
  std::vector<std::uint16_t> ports, admin_ports;
  // free_port() lets the port go again at once, so two calls may return the same one: every
  // port of the cluster must differ (a broker refuses --kafka-listen equal to --listen).
  std::set<std::uint16_t> used;
  auto fresh = [&used] {
    for (;;)
      if (const auto p = free_port(); used.insert(p).second) return p;
  };
  for (int i = 0; i < n; ++i) {
    ports.push_back(fresh());
    admin_ports.push_back(fresh());
    peer_ports_.push_back(fresh());
    if (options_.kafka) kafka_ports_.push_back(fresh());
    peers_ += (i ? "," : "") + std::to_string(i + 1) + "@127.0.0.1:" + std::to_string(peer_ports_.back());
  }
  secret_file_ = dir_.path() / "cluster.secret";
  {
    std::ofstream f(secret_file_);
    f << "local-cluster-secret-" << (n ? ports.front() : 0) << "-" << ::getpid() << "\n";
  }
  fs::permissions(secret_file_, fs::perms::owner_read | fs::perms::owner_write);
  for (int i = 0; i < n; ++i) {
    std::vector<std::string> args = {"--peers=" + peers_, "--log-level=" + options_.log_level};
    if (options_.cluster_secret) args.push_back("--cluster-secret-file=" + secret_file_.string());
    const auto at = static_cast<std::size_t>(i);
    if (options_.kafka) args.push_back("--kafka-listen=127.0.0.1:" + std::to_string(kafka_ports_[at]));
    args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
    if (at < options_.node_args.size())
      args.insert(args.end(), options_.node_args[at].begin(), options_.node_args[at].end());
    auto b = std::make_unique<BrokerProcess>(options_.broker_bin, i + 1, dir_.path() / ("b" + std::to_string(i + 1)),
                                             std::move(args), ports[at], admin_ports[at]);
    b->set_die_with_parent(options_.die_with_parent);
    brokers_.push_back(std::move(b));
  }
}

LocalCluster::~LocalCluster() { stop_all(); }

std::expected<void, std::string> LocalCluster::start(std::chrono::milliseconds timeout) {
  for (auto& b : brokers_)
    if (auto r = b->try_spawn(); !r) return r;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (auto& b : brokers_) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (auto r = b->try_wait_ready(std::max(left, std::chrono::milliseconds(0))); !r) return r;
  }
  return {};
}

void LocalCluster::stop_all() {
  for (auto& b : brokers_) b->kill9();
}

std::string LocalCluster::bootstrap() const {
  std::string s;
  for (const auto& b : brokers_) s += (s.empty() ? "" : ",") + b->address();
  return s;
}

std::string LocalCluster::kafka_bootstrap() const {
  std::string s;
  for (const auto p : kafka_ports_) s += (s.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(p);
  return s;
}

}  // namespace quorumq::testsupport
