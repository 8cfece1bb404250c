// Disk full: on a tiny tmpfs, appends fail with errc::disk_full and a clear message, every
// earlier acknowledged append stays intact, and appends work again once space is freed.
// Needs root (mount); elsewhere the test is skipped with the reason, never passed.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "test_util.h"

namespace quorumq::storage::test {
namespace {

class DiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mnt = dir.path / "mnt";
    fs::create_directory(mnt);
    if (::geteuid() != 0) GTEST_SKIP() << "disk-full test needs root to mount a tiny tmpfs";
    if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=4m") != 0)
      GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno) << "): disk-full test not run";
    mounted = true;
  }
  void TearDown() override {
    if (mounted && ::umount2(mnt.c_str(), MNT_DETACH) != 0)
      ADD_FAILURE() << "umount " << mnt << ": " << std::strerror(errno);
  }
  TempDir dir;
  fs::path mnt;
  bool mounted = false;
};

TEST_F(DiskFullTest, append_failsCleanlyKeepsAckedAndRecoversWhenSpaceFreed) {
  const fs::path data = mnt / "data", filler = mnt / "filler";
  {
    std::ofstream f(filler, std::ios::binary);
    const std::string chunk(64 << 10, 'f');
    for (int i = 0; i < 8; ++i) f.write(chunk.data(), chunk.size());  // 512 KiB to free later
  }
  std::vector<Rec> acked;
  {
    StorageOptions o;
    o.dir = data;
    o.map_size_bytes = 64ull << 20;  // bigger than the filesystem: LMDB fails at commit with ENOSPC
    auto s = Storage::open(o);
    ASSERT_TRUE(s) << s.error().message;
    auto log = (*s)->open_log("p");
    ASSERT_TRUE(log);
    std::optional<Error> full;
    for (int i = 0; i < 1000 && !full; ++i) {
      std::vector<WriteOp> ops;
      ops.push_back(AppendOp{*log, {data_batch("v" + std::to_string(i), 4, 1000, 8 << 10)}, term_t{1}});
      auto r = (*s)->write_sync(std::move(ops));
      if (!r) {
        full = r.error();
        break;
      }
      for (int k = 0; k < 4; ++k) {
        std::string v = "v" + std::to_string(i) + "-" + std::to_string(k);
        v.resize(8 << 10, 'x');
        acked.push_back({r->appends[0].base_offset.value + k, v});
      }
    }
    ASSERT_TRUE(full) << "the 4 MiB filesystem never filled";
    EXPECT_EQ(full->code, errc::disk_full) << full->message;
    EXPECT_NE(full->message.find("full"), std::string::npos) << full->message;
    EXPECT_NE(full->message.find(data.string()), std::string::npos) << full->message;
    ASSERT_GT(acked.size(), 0u);
    // The failed write left nothing behind; the state is what was acknowledged.
    EXPECT_EQ((*log)->state().next_offset, offset_t{static_cast<std::int64_t>(acked.size())});
    EXPECT_EQ(read_all(**log), acked);
    // Still full: still a clean error.
    std::vector<WriteOp> ops;
    ops.push_back(AppendOp{*log, {data_batch("again", 4, 1000, 8 << 10)}, term_t{1}});
    auto again = (*s)->write_sync(std::move(ops));
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, errc::disk_full);
    // Free space: appends work again, in the same process.
    fs::remove(filler);
    ops.clear();
    ops.push_back(AppendOp{*log, {data_batch("after", 1, 1000, 100)}, term_t{1}});
    auto ok = (*s)->write_sync(std::move(ops));
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_EQ(ok->appends[0].base_offset, offset_t{static_cast<std::int64_t>(acked.size())});
    std::string v = "after-0";
    v.resize(100, 'x');
    acked.push_back({ok->appends[0].base_offset.value, v});
  }
  // After a reopen everything acknowledged is there, nothing else.
  auto s = open_storage(data);
  ASSERT_TRUE(s);
  PartitionLog* log = open_log(*s, "p");
  EXPECT_EQ(read_all(*log), acked);
}

}  // namespace
}  // namespace quorumq::storage::test
