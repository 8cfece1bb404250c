// Report: what a run measured, printed as the final summary table and written as JSON.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "availability.h"
#include "fsync_probe.h"
#include "histogram.h"
#include "options.h"
#include "verifier.h"

namespace quorumq::bench {

// One live-line sample (also the JSON timeline).
struct Sample {
  double elapsed_s = 0;
  double msgs_per_s = 0, mb_per_s = 0, consumed_per_s = 0;
  double ack_p50_us = 0, ack_p99_us = 0;
  std::uint64_t errors = 0, in_flight = 0;
};

struct Report {
  BenchConfig cfg;
  std::string topic;
  std::string bootstrap;
  int brokers = 0;
  int replicas = 0;
  unsigned cores = 0;
  std::string loadavg_before, loadavg_after;
  std::optional<FsyncCeiling> fsync;
  std::string fsync_error;

  double produce_s = 0;   // first send to last completion
  std::uint64_t sent = 0, acked = 0, failed = 0;
  std::uint64_t consumed = 0;
  Histogram ack_latency, e2e_latency;
  bool verified = false;  // consumers ran and the drain finished or timed out
  bool drain_complete = false;
  double catch_up_s = 0;       // --catch-up: consumers' start (group join included) to the last message read
  double catch_up_read_s = 0;  // --catch-up: first message read to the last
  VerifyResult verify;
  std::optional<AvailabilityStats> availability;
  std::vector<FaultRecord> faults;
  std::vector<std::string> chaos_notes;
  std::optional<std::uint64_t> elections_started;  // spawned brokers only
  std::map<int, double> broker_rss_max;             // spawned brokers: node -> peak RSS without the LMDB map (RssAnon), bytes, sampled each second
  std::map<std::string, std::uint64_t> errors;
  std::vector<Sample> timeline;

  double msgs_per_s() const { return produce_s > 0 ? static_cast<double>(acked) / produce_s : 0; }
  double mb_per_s() const { return msgs_per_s() * static_cast<double>(cfg.size_bytes) / 1e6; }
};

void print_live(std::ostream& out, const Sample& s);
void print_summary(std::ostream& out, const Report& r);
std::string to_json(const Report& r);

}  // namespace quorumq::bench
