// quorumq-broker: parses config, opens storage, loads topics, serves until SIGTERM/SIGINT.
// Exit codes: 0 clean shutdown, 1 runtime failure (storage, bind), 2 bad configuration.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "config.h"
#include "metrics.h"
#include "server.h"
#include "quorumq/storage/storage.h"

int main(int argc, char** argv) {
  using namespace quorumq;
  // Large buffers (request frames, record batches, fetch answers) are mmapped and go back to the
  // OS when freed. glibc's default threshold rises to 32 MiB after the first large free, after
  // which such buffers come from its heap and stay there: one burst of large requests (or a
  // client that never read) pinned its size in the broker for good.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  std::string help;
  auto cfg = broker::parse_config(argc, argv, &help);
  if (!cfg) {
    if (!help.empty()) {
      std::fputs(help.c_str(), stdout);
      return 0;
    }
    std::fprintf(stderr, "quorumq-broker: bad configuration: %s\n", cfg.error().c_str());
    return 2;
  }
  auto logger = spdlog::stderr_color_mt("quorumq");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(cfg->log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [node " + std::to_string(cfg->node_id) + "] %v");

  // File descriptors: every client connection takes one, and the broker needs some of its own
  // (LMDB, listeners, peer links, admin, logs). Raise the soft limit to what --max-connections
  // needs; if even the hard limit is too low, an explicit --max-connections refuses to start (it
  // could not be kept) and the default is lowered to fit, said once.
  {
    const rlim_t reserve = 64 + 4 * static_cast<rlim_t>(cfg->peers.size());
    const rlim_t need = static_cast<rlim_t>(cfg->max_connections) + reserve;
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
      rlimit raised = rl;
      raised.rlim_cur = rl.rlim_max == RLIM_INFINITY ? need : std::min(need, rl.rlim_max);
      if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
    }
    if (rl.rlim_cur < need) {
      if (cfg->max_connections_explicit) {
        std::fprintf(stderr,
                     "quorumq-broker: bad configuration: --max-connections %u needs about %llu file descriptors, "
                     "but this process may open at most %llu (ulimit -n; hard limit %llu): raise the limit "
                     "(ulimit -n, systemd LimitNOFILE=, docker --ulimit nofile=) or lower --max-connections\n",
                     cfg->max_connections, static_cast<unsigned long long>(need),
                     static_cast<unsigned long long>(rl.rlim_cur), static_cast<unsigned long long>(rl.rlim_max));
        return 2;
      }
      const auto fit = rl.rlim_cur > reserve + 16 ? rl.rlim_cur - reserve : 16;
      std::fprintf(stderr,
                   "quorumq-broker: only %llu file descriptors allowed (ulimit -n): serving at most %llu client "
                   "connections instead of the default %u; raise the limit or set --max-connections\n",
                   static_cast<unsigned long long>(rl.rlim_cur), static_cast<unsigned long long>(fit),
                   cfg->max_connections);
      cfg->max_connections = static_cast<unsigned>(fit);
    }
  }

  storage::StorageOptions so;
  so.dir = cfg->data_dir;
  so.map_size_bytes = cfg->map_size_bytes;
  so.max_logs = cfg->max_partitions + 16;
  auto st = storage::Storage::open(so);
  if (!st) {
    const bool config_error = st.error().code == storage::errc::not_a_data_dir || st.error().code == storage::errc::newer_format;
    std::fprintf(stderr, "quorumq-broker: %s\n", st.error().message.c_str());
    return config_error ? 2 : 1;
  }
  spdlog::info("data directory {} (id {}) opened", cfg->data_dir, (*st)->dir_id());
  // A data directory belongs to one broker of one cluster (like Kafka's meta.properties): a
  // broker started on another node's directory, or on a backup restored under another id,
  // would serve nothing of what it holds while its peers count it as a replica.
  {
    auto owner = [&](const char* key) -> std::optional<std::string> {
      auto v = (*st)->meta(key);
      if (!v) return std::nullopt;
      return std::string(v->begin(), v->end());
    };
    const std::string node = std::to_string(cfg->node_id);
    const auto stored_cluster = owner("owner_cluster_id");
    const auto stored_node = owner("owner_node_id");
    if ((stored_cluster && *stored_cluster != cfg->cluster_id) || (stored_node && *stored_node != node)) {
      std::fprintf(stderr,
                   "quorumq-broker: bad configuration: data directory %s belongs to node %s of cluster '%s', but this "
                   "broker is node %s of cluster '%s': start it with --node-id %s --cluster-id %s, or give this broker "
                   "its own (empty) data directory\n",
                   cfg->data_dir.c_str(), stored_node.value_or("?").c_str(), stored_cluster.value_or("?").c_str(),
                   node.c_str(), cfg->cluster_id.c_str(), stored_node.value_or(node).c_str(),
                   stored_cluster.value_or(cfg->cluster_id).c_str());
      return 2;
    }
    if (!stored_cluster || !stored_node) {
      std::vector<storage::WriteOp> ops;
      ops.emplace_back(storage::PutMetaOp{"owner_cluster_id", {cfg->cluster_id.begin(), cfg->cluster_id.end()}});
      ops.emplace_back(storage::PutMetaOp{"owner_node_id", {node.begin(), node.end()}});
      if (auto w = (*st)->write_sync(std::move(ops)); !w) {
        std::fprintf(stderr, "quorumq-broker: cannot record the owner of %s: %s\n", cfg->data_dir.c_str(),
                     w.error().message.c_str());
        return 1;
      }
    }
  }
  {
    std::string peers;
    for (const auto& p : cfg->peers) peers += (peers.empty() ? "" : ",") + std::to_string(p.id) + "@" + p.addr.str();
    spdlog::info("quorumq-broker {} starting: node {} of cluster '{}'; clients {} (advertised {}); peers {} on {} ({}); "
                 "admin {}; data {}",
                 QUORUMQ_VERSION, cfg->node_id, cfg->cluster_id, cfg->listen.str(),
                 cfg->client_address().str(), peers.empty() ? "none (single broker)" : peers,
                 cfg->peer_listen ? cfg->peer_listen->str() : std::string("-"),
                 cfg->cluster_secret.empty() ? (cfg->peer_tls() ? "peer TLS" : "no cluster secret")
                                             : (cfg->peer_tls() ? "cluster secret set, peer TLS" : "cluster secret set"),
                 cfg->admin_listen.str(),
                 cfg->data_dir);
    spdlog::info("limits: {} connections, {} B per connection, {} B buffered, frame {} B, batch {} B, fetch {} B, {} "
                 "partitions per request, {} partitions, write timeout {} ms, replica lag {} ms, backups {}",
                 cfg->max_connections, cfg->max_inflight_bytes_per_connection, cfg->max_buffered_bytes,
                 cfg->max_frame_bytes, cfg->max_message_bytes, cfg->max_fetch_bytes, cfg->max_partitions_per_request,
                 cfg->max_partitions, cfg->write_timeout_ms, cfg->replica_lag_max_ms,
                 cfg->backup_dir.empty() ? std::string("off") : cfg->backup_dir);
  }

  broker::Metrics metrics;
  {
    broker::Server server(*cfg, **st, metrics);
    if (auto s = server.start(); !s) {
      std::fprintf(stderr, "quorumq-broker: %s\n", s.error().c_str());
      return 1;
    }
    server.run();
  }
  st->reset();  // completes queued writes, syncs, closes LMDB
  spdlog::info("stopped cleanly");
  return 0;
}
