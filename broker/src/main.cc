// quorumq-broker: parses config, opens storage, loads topics, serves until SIGTERM/SIGINT.
// Exit codes: 0 clean shutdown, 1 runtime failure (storage, bind), 2 bad configuration.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>

#include "config.h"
#include "metrics.h"
#include "server.h"
#include "quorumq/storage/storage.h"

int main(int argc, char** argv) {
  using namespace quorumq;
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
