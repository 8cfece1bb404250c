#include "options.h"

#include <CLI/CLI.hpp>

#include <fstream>
#include <iostream>

namespace quorumq::bench {

std::expected<BenchConfig, int> parse_options(int argc, char** argv) {
  BenchConfig c;
  CLI::App app{"quorumq-bench: load generator for quorumq, with fault injection and measured availability"};
  app.option_defaults()->always_capture_default();
  app.set_version_flag("--version", "quorumq-bench " QUORUMQ_VERSION);
  std::string keys = "none";

  app.add_option("--spawn", c.spawn, "Start N local brokers in temp dirs (and remove them at the end)")->check(CLI::Range(1, 9));
  app.add_option("--bootstrap", c.bootstrap, "Running brokers HOST:PORT,... (instead of --spawn)");
  app.add_option("--tls-ca-file", c.tls_ca_file,
                 "Connect with TLS (brokers with --tls-cert-file), trusting this PEM CA (with --bootstrap)");
  app.add_option("--user", c.sasl_user, "Log in as this SASL SCRAM user (brokers with --sasl; with --bootstrap)");
  app.add_option("--password-file", c.sasl_password_file, "File whose first line is --user's password");
  app.add_option("--broker-bin", c.broker_bin, "quorumq-broker for --spawn (default: $QUORUMQ_BROKER_BIN or the build tree)");
  app.add_option("--broker-log-level", c.broker_log_level, "--log-level of spawned brokers");
  app.add_option("--election-timeout-ms", c.election_timeout_ms, "Passed to spawned brokers (0: their default)");
  app.add_flag("--keep-data", c.keep_data, "Keep the spawned brokers' directory");
  app.add_option("--fsync-dir", c.fsync_dir, "Directory whose fsync ceiling is probed (default: the spawned data dir, else .)");

  app.add_option("--duration", c.duration_s, "Seconds of load (0 with --messages: until all are sent)")->check(CLI::NonNegativeNumber);
  app.add_option("--messages", c.messages, "Messages to send in total (0: no limit)");
  app.add_option("--producers", c.producers, "Producer clients (each its own connection and I/O thread)")->check(CLI::Range(1, 64));
  app.add_option("--consumers", c.consumers, "Consumer clients of one group (0: produce only, no verification)")->check(CLI::Range(0, 64));
  app.add_flag("--catch-up", c.catch_up,
               "Consumers start only once producing ended and read the whole backlog from the start: "
               "reports the catch-up rate (msg/s from their start to the last message read)");
  app.add_option("--size", c.size_bytes, "Message value bytes (at least 32: the bench header)")->check(CLI::Range(32, 16 << 20));
  app.add_option("--partitions", c.partitions, "Partitions of the topic")->check(CLI::Range(1, 10000));
  app.add_option("--replicas", c.replicas, "Replication factor (0: min(3, brokers))")->check(CLI::Range(0, 9));
  app.add_option("--topic", c.topic, "Topic (default: a fresh quorumq-bench-<run id>)");
  app.add_option("--acks", c.acks, "none|leader|quorum")->check(CLI::IsMember({"none", "leader", "quorum"}));
  app.add_option("--rate", c.rate, "Open loop: messages/s over all producers, latency from each intended send time (0: closed loop)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--window", c.window, "Closed loop: messages in flight per producer (0: max-in-flight x batch-bytes x partitions / size)");
  app.add_option("--keys", keys, "Key distribution: 'none' (sticky partitioning) or N distinct keys");
  app.add_option("--linger-ms", c.linger_ms, "Producer linger");
  app.add_option("--batch-bytes", c.batch_bytes, "Producer batch size per partition")->check(CLI::Range(std::size_t{64}, std::size_t{64} << 20));
  app.add_option("--max-in-flight", c.max_in_flight, "Produce requests in flight per broker connection")->check(CLI::Range(1, 1000));
  app.add_option("--drain-timeout", c.drain_timeout_s, "Seconds without consumer progress before giving up on the drain");
  app.add_option("--json", c.json, "Write settings, machine, results, timeline and chaos figures here");
  app.add_option("--chaos", c.chaos_text, "kill-leader:EVERY_S | pause-leader:EVERY_S:FOR_S | restart-follower:EVERY_S (needs --spawn)");
  app.add_flag("--quiet", c.quiet, "No live line every second");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return std::unexpected(app.exit(e));
  }
  auto fail = [](const std::string& m) {
    std::cerr << "quorumq-bench: " << m << "\n";
    return std::unexpected(2);
  };
  if ((c.spawn > 0) == !c.bootstrap.empty()) return fail("give exactly one of --spawn N and --bootstrap LIST");
  if (c.duration_s == 0 && c.messages == 0) return fail("--duration 0 needs --messages N");
  if (keys != "none") {
    try {
      c.keys = std::stoull(keys);
    } catch (const std::exception&) {
      return fail("--keys must be 'none' or a number");
    }
    if (c.keys == 0) return fail("--keys must be 'none' or a positive number");
  }
  if (!c.chaos_text.empty()) {
    auto spec = ChaosSpec::parse(c.chaos_text);
    if (!spec) return fail(spec.error());
    if (c.spawn == 0) return fail("--chaos needs --spawn: the bench must own the brokers it kills");
    if (c.spawn < 3 && spec->kind != ChaosSpec::Kind::restart_follower)
      return fail("--chaos " + spec->name() + " needs --spawn 3 or more (a majority must survive)");
    c.chaos = *spec;
  }
  if (!c.sasl_user.empty()) {
    std::ifstream in(c.sasl_password_file);
    if (c.sasl_password_file.empty() || !in || !std::getline(in, c.sasl_password) || c.sasl_password.empty())
      return fail("--user needs --password-file FILE holding the password on its first line");
  }
  if (c.window == 0) {
    const std::uint64_t w = std::uint64_t{c.max_in_flight} * c.batch_bytes * static_cast<std::uint64_t>(c.partitions) / c.size_bytes;
    c.window = std::clamp<std::uint64_t>(w, 1, 200'000);
  }
  return c;
}

}  // namespace quorumq::bench
