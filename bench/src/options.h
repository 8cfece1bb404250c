// BenchConfig: every setting of a run (the command line, parsed and checked). Written into the
// JSON as "settings" so a result always says how it was made.
#pragma once

#include <cstdint>
#include <expected>
#include <string>

#include "chaos_spec.h"
#include "topic_setup.h"

namespace quorumq::bench {

struct BenchConfig {
  // Cluster: spawn N local brokers, or use a running cluster.
  int spawn = 0;
  std::string bootstrap;
  std::string broker_bin;
  std::string broker_log_level = "warn";
  std::uint32_t election_timeout_ms = 0;  // 0: broker default
  bool keep_data = false;
  std::string fsync_dir;                  // --bootstrap runs: where to probe the fsync ceiling
  std::string tls_ca_file;                // --bootstrap runs: brokers with TLS, their CA (PEM)
  std::string sasl_user, sasl_password_file;  // --bootstrap runs: brokers with --sasl
  std::string sasl_password;              // read from sasl_password_file

  // Workload.
  double duration_s = 10;                 // 0 with --messages: until that many are sent
  std::uint64_t messages = 0;             // 0: no limit
  int producers = 1;
  int consumers = 1;
  std::size_t size_bytes = 1024;
  int partitions = 3;
  int replicas = 0;                       // 0: min(3, brokers)
  std::string topic;                      // empty: a fresh quorumq-bench-<run id>
  std::string acks = "quorum";
  double rate = 0;                        // msgs/s over all producers; 0: closed loop
  std::uint64_t window = 0;               // closed loop: messages in flight per producer (0: auto)
  std::uint64_t keys = 0;                 // 0: no key (sticky partitioner), else N distinct keys
  std::uint32_t linger_ms = 5;
  std::size_t batch_bytes = 256 * 1024;
  std::uint32_t max_in_flight = 5;
  double drain_timeout_s = 30;            // after producing: stop consuming after this long without progress
  bool catch_up = false;                  // consumers start after producing ends: the catch-up rate

  // Output and faults.
  std::string json;
  std::string chaos_text;
  ChaosSpec chaos;
  bool quiet = false;                     // no live lines

  bool open_loop() const { return rate > 0; }
  ClientSecurity security() const { return ClientSecurity{tls_ca_file, sasl_user, sasl_password}; }
};

// Parses argv. On --help or an error the caller exits with the returned code after the message
// (already printed by CLI11) — 0 for help, 2 for bad usage.
std::expected<BenchConfig, int> parse_options(int argc, char** argv);

}  // namespace quorumq::bench
