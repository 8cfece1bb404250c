// Storage: the environment, group commit, reopen, hard state, offsets, meta, dir checks, backup.
#include <gtest/gtest.h>
#include <lmdb.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>

#include "test_util.h"

namespace quorumq::storage::test {
namespace {

// Holds the writer thread inside a completion until released, so the writes submitted meanwhile
// queue up and are committed together as one group.
class WriterGate {
 public:
  explicit WriterGate(Storage& s, PartitionLog* log) {
    std::vector<WriteOp> ops;
    ops.push_back(PutMetaOp{"gate", {1}});
    (void)log;
    s.submit(std::move(ops), [this](std::expected<WriteResult, Error>) {
      std::unique_lock lk(mu_);
      entered_ = true;
      cv_.notify_all();
      cv_.wait(lk, [&] { return released_; });
    });
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return entered_; });
  }
  void release() {
    std::lock_guard lk(mu_);
    released_ = true;
    cv_.notify_all();
  }
  ~WriterGate() { release(); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false, released_ = false;
};

// Counts completions; wait() blocks until `n` have arrived.
struct Completions {
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  void add() {
    std::lock_guard lk(mu);
    ++done;
    cv.notify_all();
  }
  void wait(int n) {
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return done >= n; });
  }
};

TEST(StorageTest, appendAt_wrongBaseOffsetFailsOnlyThatWrite) {
  TempDir dir;
  auto s = open_storage(dir.path);
  PartitionLog* a = open_log(*s, "a");
  PartitionLog* b = open_log(*s, "b");
  append(*s, a, {data_batch("a", 2)});
  const std::uint64_t commits_before = s->stats().commits;

  std::vector<std::expected<WriteResult, Error>> results(3, std::unexpected(Error{}));
  Completions c;
  {
    WriterGate gate(*s, a);
    auto good_a = data_batch("a2", 1);
    stamp_batch(good_a, 2, 1);
    auto bad = data_batch("bad", 1);
    stamp_batch(bad, 7, 1);  // the log continues at 0
    std::vector<WriteOp> w0, w1, w2;
    w0.push_back(AppendAtOp{a, log_index{2}, {good_a}});
    w1.push_back(AppendOp{b, {data_batch("b0", 1)}, term_t{1}});
    w1.push_back(AppendAtOp{b, log_index{2}, {bad}});  // the whole second write fails, atomically
    w2.push_back(AppendOp{b, {data_batch("b1", 2)}, term_t{1}});
    w2.push_back(PutMetaOp{"k", {9}});
    s->submit(std::move(w0), [&](auto r) { results[0] = std::move(r); c.add(); });
    s->submit(std::move(w1), [&](auto r) { results[1] = std::move(r); c.add(); });
    s->submit(std::move(w2), [&](auto r) { results[2] = std::move(r); c.add(); });
    gate.release();
    c.wait(3);
  }
  ASSERT_TRUE(results[0]) << results[0].error().message;
  ASSERT_FALSE(results[1]);
  EXPECT_EQ(results[1].error().code, errc::invalid_argument);
  EXPECT_NE(results[1].error().message.find("base offset 7"), std::string::npos) << results[1].error().message;
  ASSERT_TRUE(results[2]) << results[2].error().message;
  EXPECT_EQ(results[2]->appends[0].base_offset, offset_t{0});  // b0 of the failed write was never stored
  EXPECT_EQ(s->stats().commits - commits_before, 2u);  // the gate's write, then one group of three
  EXPECT_EQ(read_all(*a).size(), 3u);
  EXPECT_EQ(read_all(*b), (std::vector<Rec>{{0, "b1-0"}, {1, "b1-1"}}));
  EXPECT_EQ(s->meta("k"), (std::vector<std::uint8_t>{9}));
}

TEST(StorageTest, groupCommit_manyConcurrentSubmitters) {
  TempDir dir;
  auto s = open_storage(dir.path);
  constexpr int kThreads = 4, kPerThread = 300;
  std::vector<PartitionLog*> logs;
  for (int t = 0; t < kThreads; ++t) logs.push_back(open_log(*s, "p" + std::to_string(t)));
  const WriterStats before = s->stats();
  std::vector<std::atomic<int>> fired(kThreads * kPerThread);
  std::atomic<int> not_durable{0}, failed{0};
  std::vector<std::vector<std::int64_t>> bases(kThreads, std::vector<std::int64_t>(kPerThread, -1));
  Completions c;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::vector<WriteOp> ops;
        ops.push_back(AppendOp{logs[t], {data_batch("m" + std::to_string(i), 2)}, term_t{1}});
        s->submit(std::move(ops), [&, t, i](std::expected<WriteResult, Error> r) {
          fired[t * kPerThread + i].fetch_add(1);
          if (!r) {
            failed.fetch_add(1);
          } else {
            // Completion comes after the commit: the published (durable) state already has it.
            if (logs[t]->state().next_offset < r->appends[0].next_offset) not_durable.fetch_add(1);
            bases[t][i] = r->appends[0].base_offset.value;
          }
          c.add();
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  c.wait(kThreads * kPerThread);
  const WriterStats st = s->stats();
  const std::uint64_t commits = st.commits - before.commits, writes = st.writes - before.writes;
  EXPECT_EQ(writes, static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_LT(commits, writes) << "no group commit happened";
  EXPECT_EQ(st.appended_batches - before.appended_batches, writes);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(not_durable.load(), 0);
  for (auto& f : fired) EXPECT_EQ(f.load(), 1);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) EXPECT_EQ(bases[t][i], 2 * i) << "submission order kept per thread";
    EXPECT_EQ(logs[t]->state().next_offset, offset_t{2 * kPerThread});
  }
  std::printf("group commit: %llu writes in %llu commits\n", static_cast<unsigned long long>(writes),
              static_cast<unsigned long long>(commits));
}

TEST(StorageTest, reopen_keepsLogsHardStateOffsetsMetaAndTrims) {
  TempDir dir;
  std::string id;
  {
    auto s = open_storage(dir.path);
    id = s->dir_id();
    PartitionLog* a = open_log(*s, "a");
    PartitionLog* b = open_log(*s, "b");
    PartitionLog* c = open_log(*s, "c");
    append(*s, a, {data_batch("a", 2), noop_batch(), data_batch("b", 3)}, 2);
    append(*s, b, {data_batch("x", 1), data_batch("y", 1), data_batch("z", 1)}, 1);
    ASSERT_TRUE(write1(*s, TrimPrefixOp{b, log_index{3}}));
    ASSERT_TRUE(write1(*s, ResetLogOp{c, log_index{50}, term_t{7}, offset_t{500}}));
    std::vector<WriteOp> ops;
    ops.push_back(PutHardStateOp{"g1", HardState{term_t{9}, node_id{3}, log_index{4}}});
    ops.push_back(PutHardStateOp{"g2", HardState{term_t{1}, node_id{-1}, log_index{0}}});
    ops.push_back(PutOffsetOp{"grp", "topic", 3, CommittedOffset{42, "meta"}});
    ops.push_back(PutMetaOp{"cluster", {1, 2, 3}});
    ASSERT_TRUE(s->write_sync(std::move(ops)));
  }
  auto s = open_storage(dir.path);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->dir_id(), id);
  EXPECT_EQ(s->list_logs(), (std::vector<std::string>{"a", "b", "c"}));
  PartitionLog* a = open_log(*s, "a");
  PartitionLog* b = open_log(*s, "b");
  PartitionLog* c = open_log(*s, "c");
  LogState st = a->state();
  EXPECT_EQ(st.last_index, log_index{3});
  EXPECT_EQ(st.next_offset, offset_t{5});
  EXPECT_EQ(st.last_term, term_t{2});
  EXPECT_EQ(read_all(*a).size(), 5u);
  st = b->state();
  EXPECT_EQ(st.first_index, log_index{3});
  EXPECT_EQ(st.start_offset, offset_t{2});
  EXPECT_EQ(st.prev_term, term_t{1});
  EXPECT_EQ(read_all(*b), (std::vector<Rec>{{2, "z-0"}}));
  st = c->state();
  EXPECT_TRUE(st.empty());
  EXPECT_EQ(st.first_index, log_index{50});
  EXPECT_EQ(st.next_offset, offset_t{500});
  EXPECT_EQ(c->term_at(log_index{49}), term_t{7});
  EXPECT_EQ(s->hard_state("g1"), (HardState{term_t{9}, node_id{3}, log_index{4}}));
  EXPECT_EQ(s->hard_state("g2"), (HardState{term_t{1}, node_id{-1}, log_index{0}}));
  EXPECT_EQ(s->hard_state("nope"), std::nullopt);
  auto off = s->committed_offset("grp", "topic", 3);
  ASSERT_TRUE(off);
  EXPECT_EQ(off->offset, 42);
  EXPECT_EQ(off->metadata, "meta");
  EXPECT_EQ(s->meta("cluster"), (std::vector<std::uint8_t>{1, 2, 3}));
  // Appends continue where they were.
  EXPECT_EQ(append(*s, a, {data_batch("n", 1)}, 2).base_offset, offset_t{5});
  EXPECT_EQ(append(*s, b, {data_batch("n", 1)}, 1).first_index, log_index{4});
}

TEST(StorageTest, committedOffsets_roundTripAndListByGroup) {
  TempDir dir;
  auto s = open_storage(dir.path);
  std::vector<WriteOp> ops;
  ops.push_back(PutOffsetOp{"g", "t", 0, CommittedOffset{10, ""}});
  ops.push_back(PutOffsetOp{"g", "t", 1, CommittedOffset{11, "m"}});
  ops.push_back(PutOffsetOp{"g", "u", 0, CommittedOffset{12, ""}});
  ops.push_back(PutOffsetOp{"g2", "t", 0, CommittedOffset{13, ""}});
  ops.push_back(PutOffsetOp{"g", "t", 0, CommittedOffset{20, "later"}});  // later op wins
  ASSERT_TRUE(s->write_sync(std::move(ops)));
  EXPECT_EQ(s->committed_offset("g", "t", 0)->offset, 20);
  EXPECT_EQ(s->committed_offset("g", "t", 0)->metadata, "later");
  EXPECT_EQ(s->committed_offset("g", "t", 2), std::nullopt);
  const auto all = s->group_offsets("g");
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[1].topic, "t");
  EXPECT_EQ(all[1].partition, 1);
  EXPECT_EQ(all[1].value.offset, 11);
  EXPECT_EQ(all[2].topic, "u");
  EXPECT_EQ(s->groups(), (std::vector<std::string>{"g", "g2"}));
}

TEST(StorageTest, hardState_overwrites) {
  TempDir dir;
  auto s = open_storage(dir.path);
  ASSERT_TRUE(write1(*s, PutHardStateOp{"g", HardState{term_t{1}, node_id{2}, log_index{3}}}));
  ASSERT_TRUE(write1(*s, PutHardStateOp{"g", HardState{term_t{2}, node_id{-1}, log_index{5}}}));
  EXPECT_EQ(s->hard_state("g"), (HardState{term_t{2}, node_id{-1}, log_index{5}}));
  ASSERT_TRUE(write1(*s, DeleteMetaOp{"absent"}));
}

TEST(StorageTest, open_dirWithRandomFileIsNotADataDir) {
  TempDir dir;
  std::ofstream(dir.path / "notes.txt") << "hello";
  StorageOptions o;
  o.dir = dir.path;
  auto s = Storage::open(o);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, errc::not_a_data_dir);
  EXPECT_NE(s.error().message.find(dir.path.string()), std::string::npos) << s.error().message;
  // A data.mdb that is not LMDB.
  TempDir dir2;
  std::ofstream(dir2.path / "data.mdb") << std::string(8192, 'z');
  o.dir = dir2.path;
  s = Storage::open(o);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, errc::not_a_data_dir) << s.error().message;
  // A regular file.
  o.dir = dir.path / "notes.txt";
  s = Storage::open(o);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, errc::not_a_data_dir);
}

TEST(StorageTest, open_foreignLmdbEnvIsNotADataDir) {
  TempDir dir;
  {
    MDB_env* env;
    ASSERT_EQ(mdb_env_create(&env), 0);
    ASSERT_EQ(mdb_env_open(env, dir.path.c_str(), 0, 0640), 0);
    MDB_txn* txn;
    ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
    MDB_dbi dbi;
    ASSERT_EQ(mdb_dbi_open(txn, nullptr, 0, &dbi), 0);
    MDB_val k{5, const_cast<char*>("hello")}, d{5, const_cast<char*>("world")};
    ASSERT_EQ(mdb_put(txn, dbi, &k, &d, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
  }
  StorageOptions o;
  o.dir = dir.path;
  auto s = Storage::open(o);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, errc::not_a_data_dir);
  EXPECT_NE(s.error().message.find("not quorumq"), std::string::npos) << s.error().message;
}

TEST(StorageTest, open_newerFormatIsRefused) {
  TempDir dir;
  open_storage(dir.path).reset();
  {
    MDB_env* env;
    ASSERT_EQ(mdb_env_create(&env), 0);
    ASSERT_EQ(mdb_env_set_maxdbs(env, 8), 0);
    ASSERT_EQ(mdb_env_open(env, dir.path.c_str(), 0, 0640), 0);
    MDB_txn* txn;
    ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
    MDB_dbi dbi;
    ASSERT_EQ(mdb_dbi_open(txn, "qq_meta", 0, &dbi), 0);
    std::uint32_t v = kFormatVersion + 1;
    MDB_val k{14, const_cast<char*>("format_version")}, d{sizeof v, &v};
    ASSERT_EQ(mdb_put(txn, dbi, &k, &d, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
  }
  StorageOptions o;
  o.dir = dir.path;
  auto s = Storage::open(o);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, errc::newer_format);
  EXPECT_NE(s.error().message.find("format version 2"), std::string::npos) << s.error().message;
}

TEST(StorageTest, open_dirWithOnlyLockFileStarts) {
  TempDir dir;  // killed after LMDB made lock.mdb and before data.mdb
  std::ofstream(dir.path / "lock.mdb") << std::string(8192, '\0');
  auto s = open_storage(dir.path);
  ASSERT_TRUE(s);
  EXPECT_EQ(append(*s, open_log(*s, "a"), {data_batch("a", 1)}).base_offset, offset_t{0});
}

TEST(StorageTest, open_missingDirWithoutCreateFails) {
  TempDir dir;
  StorageOptions o;
  o.dir = dir.path / "absent";
  o.create_if_missing = false;
  auto s = Storage::open(o);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, errc::not_a_data_dir);
}

TEST(StorageTest, open_twiceIsInUse) {
  TempDir dir;
  auto first = open_storage(dir.path);
  StorageOptions o;
  o.dir = dir.path;
  auto second = Storage::open(o);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, errc::in_use);
  EXPECT_NE(second.error().message.find(dir.path.string()), std::string::npos);
  first.reset();
  EXPECT_TRUE(Storage::open(o));  // released on close
}

TEST(StorageTest, dirId_stableAcrossReopenAndUniquePerDir) {
  TempDir d1, d2;
  std::string id1;
  {
    auto s = open_storage(d1.path);
    id1 = s->dir_id();
  }
  EXPECT_EQ(id1.size(), 32u);
  EXPECT_EQ(open_storage(d1.path)->dir_id(), id1);
  EXPECT_NE(open_storage(d2.path)->dir_id(), id1);
}

TEST(StorageTest, backup_opensAsSameData) {
  TempDir dir, bdir;
  auto s = open_storage(dir.path);
  PartitionLog* a = open_log(*s, "a");
  append(*s, a, {data_batch("a", 3), data_batch("b", 2)});
  ASSERT_TRUE(write1(*s, TrimPrefixOp{a, log_index{2}}));
  ASSERT_TRUE(write1(*s, PutHardStateOp{"g", HardState{term_t{3}, node_id{1}, log_index{2}}}));
  ASSERT_TRUE(write1(*s, PutOffsetOp{"grp", "t", 0, CommittedOffset{4, ""}}));
  const auto target = bdir.path / "copy";
  auto r = s->backup(target);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(s->backup(target).error().code, errc::invalid_argument);  // not empty any more
  auto copy = open_storage(target);
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->dir_id(), s->dir_id());
  PartitionLog* ca = open_log(*copy, "a");
  EXPECT_EQ(ca->state().first_index, log_index{2});
  EXPECT_EQ(ca->state().next_offset, offset_t{5});
  EXPECT_EQ(read_all(*ca), read_all(*a));
  EXPECT_EQ(copy->hard_state("g"), s->hard_state("g"));
  EXPECT_EQ(copy->committed_offset("grp", "t", 0)->offset, 4);
}

TEST(StorageTest, submitAfterManyLogs_mapGrows) {
  TempDir dir;
  StorageOptions o;
  o.dir = dir.path;
  o.map_size_bytes = 1u << 20;  // 1 MiB: must grow several times
  auto s = Storage::open(o);
  ASSERT_TRUE(s);
  PartitionLog* a = open_log(**s, "a");
  for (int i = 0; i < 20; ++i) append(**s, a, {data_batch("big" + std::to_string(i), 4, 1000, 64 << 10)});
  EXPECT_GT((*s)->stats().map_resizes, 0u);
  EXPECT_EQ(read_all(*a).size(), 80u);
}


TEST(StorageTest, read_concurrentWithAppendsTrimsAndMapGrowth) {
  TempDir dir;
  StorageOptions o;
  o.dir = dir.path;
  o.map_size_bytes = 1u << 20;  // grows (exclusive lock) while readers run
  auto opened = Storage::open(o);
  ASSERT_TRUE(opened);
  Storage& s = **opened;
  PartitionLog* log = open_log(s, "c");
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0}, reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        const LogState st = log->state();
        auto r = log->read(st.start_offset, 1u << 20, st.next_offset);
        if (!r) {
          // A trim may pass start_offset between state() and read(): that is the only error.
          if (r.error().code != errc::out_of_range) {
            bad.fetch_add(1);
            ADD_FAILURE() << r.error().message;
          }
          continue;
        }
        std::int64_t expect = -1;
        for (const Rec& rec : records_of(r->bytes)) {
          if (expect >= 0 && rec.offset != expect) bad.fetch_add(1);
          if (rec.value.rfind("w" + std::to_string(rec.offset / 4) + "-", 0) != 0) bad.fetch_add(1);
          expect = rec.offset + 1;
        }
        reads.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 60; ++i) {
    append(s, log, {data_batch("w" + std::to_string(i), 4, 1000 + i, 16 << 10)});
    if (i % 10 == 9) {
      EXPECT_TRUE(write1(s, TrimPrefixOp{log, log_index{static_cast<std::uint64_t>(i - 5)}}));
    }
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_GT(s.stats().map_resizes, 0u);
}

}  // namespace
}  // namespace quorumq::storage::test
