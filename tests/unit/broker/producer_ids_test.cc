// Producer ids (issue 14): unique across brokers for any node ids. The old scheme,
// counter * 1024 + node id, gave node 1's second block and node 1025's first block the same ids.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "context.h"
#include "test_util.h"

namespace quorumq::broker {
namespace {

using storage::test::TempDir;

using storage::test::open_storage;

TEST(ProducerIds, uniqueAcrossNodeIdsAboveTheOldStride) {
  TempDir d;
  std::set<std::int64_t> seen;
  for (const std::int32_t node : {1, 1025, 2049, 0, 1024, 2147483647}) {
    auto st = open_storage(d.path / ("b" + std::to_string(node)));
    ProducerIdAllocator ids(*st, node);
    for (int i = 0; i < 2500; ++i) {  // crosses two reserved blocks of 1000
      auto id = ids.next();
      ASSERT_TRUE(id.has_value());
      EXPECT_GE(*id, 0);
      EXPECT_TRUE(seen.insert(*id).second) << "node " << node << " handed out " << *id << " again";
    }
  }
}

TEST(ProducerIds, aRestartNeverHandsOutAnIdTwice) {
  TempDir d;
  std::set<std::int64_t> seen;
  for (int restart = 0; restart < 3; ++restart) {
    auto st = open_storage(d.path / "b");
    ProducerIdAllocator ids(*st, 7);
    for (int i = 0; i < 10; ++i) EXPECT_TRUE(seen.insert(*ids.next()).second);
  }
}

}  // namespace
}  // namespace quorumq::broker
