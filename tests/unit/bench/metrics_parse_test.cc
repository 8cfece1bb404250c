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

}  // namespace
}  // namespace quorumq::bench
