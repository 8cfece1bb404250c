// quorumq-bench end to end: it spawns 3 brokers, produces and consumes for a few seconds while
// killing one partition leader, and its verifier must find nothing lost or duplicated. Also
// checks that the availability figures made it into the JSON.
#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "harness.h"

namespace quorumq::test {
namespace {

// The number at json[section][key], if there is one.
std::optional<double> json_number(const nlohmann::json& json, const std::string& section, const std::string& key) {
  if (!json.contains(section) || !json[section].is_object()) return std::nullopt;
  const auto& s = json[section];
  if (!s.contains(key) || !s[key].is_number()) return std::nullopt;
  return s[key].get<double>();
}

TEST(BenchE2E, spawn3_killLeader_nothingLostOrDuplicated) {
  TempDir dir("quorumq-bench-e2e");
  const std::string json = (dir.path() / "run.json").string();
  const RunResult r = run_program({QUORUMQ_BENCH_BIN, "--spawn", "3", "--broker-bin", QUORUMQ_BENCH_BROKER_BIN, "--duration", "5",
                                   "--chaos", "kill-leader:3", "--partitions", "3", "--size", "256", "--rate", "2000",
                                   "--acks", "quorum", "--drain-timeout", "15", "--json", json},
                                  {}, std::chrono::seconds(90));
  SCOPED_TRACE("stdout:\n" + r.out + "\nstderr:\n" + r.err);
  std::ifstream f(json);
  ASSERT_TRUE(f) << "no JSON written";
  const nlohmann::json j = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << "the JSON does not parse";

  EXPECT_EQ(json_number(j, "verify", "lost"), 0.0);
  EXPECT_EQ(json_number(j, "verify", "duplicated"), 0.0);
  EXPECT_EQ(json_number(j, "verify", "reordered"), 0.0);
  EXPECT_GT(json_number(j, "verify", "acked").value_or(0), 1000.0);
  EXPECT_EQ(json_number(j, "chaos", "faults"), 1.0);
  const auto avail = json_number(j, "chaos", "availability");
  ASSERT_TRUE(avail);
  EXPECT_GT(*avail, 0.0);
  EXPECT_LE(*avail, 1.0);
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("lost=0 duplicated=0 reordered=0"), std::string::npos);
}

}  // namespace
}  // namespace quorumq::test
