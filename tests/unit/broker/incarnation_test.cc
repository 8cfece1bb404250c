// Incarnation: a broker learns from its peers whether it lost its data (a new data directory
// where they remember another one), and peers adopt its new directory only once it has caught
// up. Real LMDB storage in a temporary directory.
#include "incarnation.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "test_util.h"

namespace quorumq::broker {
namespace {

namespace fs = std::filesystem;
using Verdict = Incarnation::Verdict;

using storage::test::TempDir;  // tests/unit/storage/test_util.h

std::unique_ptr<storage::Storage> open_store(const fs::path& dir) {
  storage::StorageOptions o;
  o.dir = dir;
  auto s = storage::Storage::open(o);
  EXPECT_TRUE(s.has_value()) << s.error().message;
  return std::move(*s);
}

const node_id kPeer{2};

TEST(Incarnation, newDirectoryUnknownUntilAPeerThatNeverHeardOfItSpeaks) {
  TempDir d;
  auto st = open_store(d.path / "b1");
  Incarnation inc(*st, {kPeer});
  EXPECT_EQ(inc.verdict(), Verdict::unknown);
  EXPECT_TRUE(inc.lost());
  EXPECT_FALSE(inc.header_for(kPeer).sender_settled);
  EXPECT_EQ(inc.header_for(kPeer).receiver_dir, "");
  EXPECT_EQ(inc.on_header(kPeer, {"peer-dir-a", "", true}), Verdict::whole);  // a new cluster
  EXPECT_FALSE(inc.lost());
  EXPECT_TRUE(inc.header_for(kPeer).sender_settled);
  EXPECT_EQ(inc.header_for(kPeer).receiver_dir, "peer-dir-a");
  EXPECT_EQ(inc.header_for(kPeer).sender_dir, st->dir_id());
  EXPECT_EQ(inc.on_header(kPeer, {"peer-dir-a", st->dir_id(), true}), std::nullopt);  // no change
}

TEST(Incarnation, aPeerThatRemembersAnotherDirectoryMeansTheDataIsLost) {
  TempDir d;
  auto st = open_store(d.path / "b1");
  Incarnation inc(*st, {kPeer});
  EXPECT_EQ(inc.on_header(kPeer, {"peer-dir-a", "the-old-disk", true}), Verdict::lost);
  EXPECT_FALSE(inc.header_for(kPeer).sender_settled) << "peers must keep the old id until we caught up";
  // Later evidence that looks whole does not undo it in this life.
  EXPECT_EQ(inc.on_header(node_id{3}, {"peer-dir-b", "", true}), std::nullopt);
  EXPECT_EQ(inc.verdict(), Verdict::lost);
  inc.set_settled(true);
  EXPECT_TRUE(inc.header_for(kPeer).sender_settled);
}

// An existing directory may be a new one that crashed half-way through recovering: it waits for
// a peer too, which knows it under this id (whole) or under its previous one (lost).
TEST(Incarnation, anExistingDirectoryWaitsForAPeerToo) {
  TempDir d;
  std::string id;
  {
    auto st = open_store(d.path / "b1");
    id = st->dir_id();
  }
  auto st = open_store(d.path / "b1");
  ASSERT_EQ(st->dir_id(), id);
  {
    Incarnation inc(*st, {kPeer});
    EXPECT_EQ(inc.verdict(), Verdict::unknown);
    EXPECT_EQ(inc.on_header(kPeer, {"peer-dir-a", id, true}), Verdict::whole);
  }
  Incarnation inc(*st, {kPeer});
  EXPECT_EQ(inc.on_header(kPeer, {"peer-dir-a", "something-else", false}), Verdict::lost);
}

TEST(Incarnation, aPeersNewDirectoryIsAdoptedOnlyOnceItHasSettledAndIsRemembered) {
  TempDir d;
  {
    auto st = open_store(d.path / "b1");
    Incarnation inc(*st, {kPeer});
    inc.on_header(kPeer, {"old", "", true});
    EXPECT_EQ(inc.header_for(kPeer).receiver_dir, "old");
    inc.on_header(kPeer, {"new", "", false});  // the peer lost its disk, is catching up
    EXPECT_EQ(inc.header_for(kPeer).receiver_dir, "old");
    inc.on_header(kPeer, {"new", "", true});  // caught up
    EXPECT_EQ(inc.header_for(kPeer).receiver_dir, "new");
  }
  auto st = open_store(d.path / "b1");  // the record survives a restart
  Incarnation inc(*st, {kPeer});
  EXPECT_EQ(inc.header_for(kPeer).receiver_dir, "new");
}

}  // namespace
}  // namespace quorumq::broker
