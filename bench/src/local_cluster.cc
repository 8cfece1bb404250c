#include "local_cluster.h"

#include <stdexcept>

#include "metrics_parse.h"
#include "quorumq/testsupport/http.h"
#include "quorumq/testsupport/wait.h"

namespace quorumq::bench {

using namespace std::chrono_literals;

std::expected<std::string, std::string> LocalCluster::find_broker_bin(const std::string& flag) {
  return testsupport::find_broker_bin(flag);
}

std::string LocalCluster::resolve_broker_bin(const std::string& flag) {
  auto bin = find_broker_bin(flag);
  if (!bin) throw std::runtime_error(bin.error());
  return *bin;
}

testsupport::ClusterOptions LocalCluster::cluster_options(const ClusterOptions& o, const std::string& bin) {
  testsupport::ClusterOptions c;
  c.brokers = o.brokers;
  c.broker_bin = bin;
  c.log_level = o.log_level;
  c.extra_args = o.extra_args;
  c.base_dir = o.base_dir;
  c.dir_prefix = "quorumq-bench";
  c.keep_data = o.keep_data;
  // Die with the bench, whatever kills it (the SIGINT handler cleans up; SIGKILL cannot), and
  // stay out of the terminal's process group.
  c.die_with_parent = true;
  return c;
}

LocalCluster::LocalCluster(ClusterOptions options)
    : bin_(resolve_broker_bin(options.broker_bin)), cluster_(cluster_options(options, bin_)) {}

LocalCluster::~LocalCluster() { stop_all(); }

std::expected<void, std::string> LocalCluster::start(std::chrono::milliseconds timeout) {
  std::lock_guard lock(mu_);
  return cluster_.start(timeout);
}

void LocalCluster::stop_all() {
  std::lock_guard lock(mu_);
  cluster_.stop_all();
}

void LocalCluster::kill(int node) {
  std::lock_guard lock(mu_);
  retire_locked(node);
  node_locked(node).kill9();
}

void LocalCluster::retire_locked(int node) {
  auto& b = node_locked(node);
  if (watched_.empty() || !b.running() || b.paused()) return;
  auto m = testsupport::http_get(b.admin_port(), "/metrics", 1000ms);
  if (!m || m->status != 200) return;
  for (const auto& name : watched_)
    if (auto v = sample_value(m->body, name)) retired_[name][node] += *v;
}

void LocalCluster::watch_counter(std::string name) {
  std::lock_guard lock(mu_);
  watched_.push_back(std::move(name));
}

std::map<int, double> LocalCluster::counter_total(const std::string& name) const {
  auto out = sample(name);
  std::lock_guard lock(mu_);
  if (auto it = retired_.find(name); it != retired_.end())
    for (const auto& [node, v] : it->second) out[node] += v;
  return out;
}

std::expected<void, std::string> LocalCluster::restart(int node, std::chrono::milliseconds ready_timeout) {
  {
    std::lock_guard lock(mu_);
    auto& b = node_locked(node);
    retire_locked(node);
    b.kill9();
    if (auto r = b.try_spawn(); !r) return r;
  }
  // Waiting for /readyz outside the lock, so the main thread's running()/leaders() go on.
  const std::uint16_t admin_port = cluster_.broker(node - 1).admin_port();  // fixed at construction
  const bool ready = testsupport::wait_until(
      [&] {
        auto r = testsupport::http_get(admin_port, "/readyz", 500ms);
        return r && r->status == 200;
      },
      ready_timeout, 20ms);
  if (!ready) return std::unexpected("restarted broker " + std::to_string(node) + " not ready in time");
  return {};
}

void LocalCluster::pause(int node) {
  std::lock_guard lock(mu_);
  node_locked(node).pause();
}

void LocalCluster::resume(int node) {
  std::lock_guard lock(mu_);
  node_locked(node).resume();
}

bool LocalCluster::running(int node) const {
  std::lock_guard lock(mu_);
  const auto& b = cluster_.broker(node - 1);
  return b.running() && !b.paused();
}

std::vector<int> LocalCluster::nodes() const {
  std::vector<int> ids;
  for (int i = 1; i <= cluster_.size(); ++i) ids.push_back(i);
  return ids;
}

std::map<int, double> LocalCluster::sample(const std::string& name) const {
  std::vector<std::pair<int, std::uint16_t>> live;
  {
    std::lock_guard lock(mu_);
    for (int i = 0; i < cluster_.size(); ++i) {
      const auto& b = cluster_.broker(i);
      if (b.running() && !b.paused()) live.emplace_back(b.node_id(), b.admin_port());
    }
  }
  std::map<int, double> out;
  for (const auto& [id, port] : live) {
    auto m = testsupport::http_get(port, "/metrics", 1000ms);
    if (!m || m->status != 200) continue;
    if (auto v = sample_value(m->body, name)) out[id] = *v;
  }
  return out;
}

std::map<int, std::set<std::int32_t>> LocalCluster::leaders(const std::string& topic) const {
  std::vector<std::pair<int, std::uint16_t>> live;
  {
    std::lock_guard lock(mu_);
    for (int i = 0; i < cluster_.size(); ++i) {
      const auto& b = cluster_.broker(i);
      if (b.running() && !b.paused()) live.emplace_back(b.node_id(), b.admin_port());
    }
  }
  std::map<int, std::set<std::int32_t>> out;
  for (const auto& [id, port] : live) {
    auto m = testsupport::http_get(port, "/metrics", 1000ms);
    if (!m || m->status != 200) continue;
    if (auto led = led_partitions(m->body, topic); !led.empty()) out[id] = std::move(led);
  }
  return out;
}

}  // namespace quorumq::bench
