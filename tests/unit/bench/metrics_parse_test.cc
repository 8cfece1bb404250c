#include <gtest/gtest.h>

#include "metrics_parse.h"

namespace quorumq::bench {
namespace {

TEST(MetricsParse, ledPartitions_onlyThisTopicAndValueOne) {
  const std::string body =
      "# HELP quorumq_partition_leader 1 if this broker leads the partition\n"
      "# TYPE quorumq_partition_leader gauge\n"
      "quorumq_partition_leader{topic=\"orders\",partition=\"0\"} 1\n"
      "quorumq_partition_leader{topic=\"orders\",partition=\"1\"} 0\n"
      "quorumq_partition_leader{topic=\"orders\",partition=\"12\"} 1\n"
      "quorumq_partition_leader{topic=\"orders-eu\",partition=\"2\"} 1\n"
      "quorumq_partition_leader{topic=\"other\",partition=\"3\"} 1\n"
      "x_quorumq_partition_leader{topic=\"orders\",partition=\"4\"} 1\n"
      "quorumq_partition_leader{topic=\"orders\",partition=\"5\"} 10\n"
      "quorumq_partition_leader{topic=\"orders\",partition=\"6\"} 1";
  EXPECT_EQ(led_partitions(body, "orders"), (std::set<std::int32_t>{0, 12, 6}));
  EXPECT_EQ(led_partitions(body, "orders-eu"), (std::set<std::int32_t>{2}));
  EXPECT_TRUE(led_partitions(body, "order").empty());
  EXPECT_TRUE(led_partitions("", "orders").empty());
}

TEST(MetricsParse, sampleValue_unlabelledLineStartOnly) {
  const std::string body =
      "# HELP quorumq_raft_elections_started_total Raft elections\n"
      "x_quorumq_raft_elections_started_total 99\n"
      "quorumq_raft_elections_started_total_other 98\n"
      "quorumq_raft_elections_started_total 7\n"
      "quorumq_storage_commit_seconds_total 1.250000\n"
      "quorumq_bad notanumber\n";
  EXPECT_EQ(sample_value(body, "quorumq_raft_elections_started_total"), 7.0);
  EXPECT_EQ(sample_value(body, "quorumq_storage_commit_seconds_total"), 1.25);
  EXPECT_EQ(sample_value(body, "quorumq_bad"), std::nullopt);
  EXPECT_EQ(sample_value(body, "quorumq_missing"), std::nullopt);
  EXPECT_EQ(sample_value("", "quorumq_raft_elections_started_total"), std::nullopt);
}

}  // namespace
}  // namespace quorumq::bench
