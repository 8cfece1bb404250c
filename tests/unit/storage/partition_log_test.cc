// PartitionLog: appends, reads, the index <-> offset mapping, truncation, trimming, reset.
#include <gtest/gtest.h>

#include "test_util.h"

namespace quorumq::storage::test {
namespace {

class PartitionLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    s = open_storage(dir.path);
    ASSERT_TRUE(s);
    log = open_log(*s, "t-0");
    ASSERT_TRUE(log);
  }
  // Batches of 2, 3 and 1 records in term 1: indexes 1..3, offsets 0..5.
  void three_batches() {
    append(*s, log, {data_batch("a", 2), data_batch("b", 3), data_batch("c", 1)});
  }
  TempDir dir;
  std::unique_ptr<Storage> s;
  PartitionLog* log = nullptr;
};

TEST_F(PartitionLogTest, append_assignsContiguousIndexesAndOffsets) {
  const AppendResult r1 = append(*s, log, {data_batch("a", 2), data_batch("b", 3)});
  EXPECT_EQ(r1.first_index, log_index{1});
  EXPECT_EQ(r1.last_index, log_index{2});
  EXPECT_EQ(r1.base_offset, offset_t{0});
  EXPECT_EQ(r1.next_offset, offset_t{5});
  const AppendResult r2 = append(*s, log, {data_batch("c", 4)});
  EXPECT_EQ(r2.first_index, log_index{3});
  EXPECT_EQ(r2.last_index, log_index{3});
  EXPECT_EQ(r2.base_offset, offset_t{5});
  EXPECT_EQ(r2.next_offset, offset_t{9});
  const LogState st = log->state();
  EXPECT_EQ(st.first_index, log_index{1});
  EXPECT_EQ(st.last_index, log_index{3});
  EXPECT_EQ(st.start_offset, offset_t{0});
  EXPECT_EQ(st.next_offset, offset_t{9});
  const auto recs = read_all(*log);
  ASSERT_EQ(recs.size(), 9u);
  for (std::size_t i = 0; i < recs.size(); ++i) EXPECT_EQ(recs[i].offset, static_cast<std::int64_t>(i));
  EXPECT_EQ(recs[0].value, "a-0");
  EXPECT_EQ(recs[2].value, "b-0");
  EXPECT_EQ(recs[8].value, "c-3");
}

TEST_F(PartitionLogTest, append_noopBatchTakesIndexButNoOffset) {
  const AppendResult r = append(*s, log, {data_batch("a", 2), noop_batch(), data_batch("b", 3)});
  EXPECT_EQ(r.last_index, log_index{3});
  EXPECT_EQ(r.next_offset, offset_t{5});
  const auto control = make_payload_batch(BatchType::control, std::span<const std::uint8_t>{});
  const AppendResult r2 = append(*s, log, {control});
  EXPECT_EQ(r2.first_index, log_index{4});
  EXPECT_EQ(r2.base_offset, offset_t{5});
  EXPECT_EQ(r2.next_offset, offset_t{5});
  EXPECT_EQ(log->index_of_offset(offset_t{1}), log_index{1});
  EXPECT_EQ(log->index_of_offset(offset_t{2}), log_index{3});
  EXPECT_EQ(log->index_of_offset(offset_t{4}), log_index{3});
  EXPECT_EQ(log->index_of_offset(offset_t{5}), std::nullopt);
  auto rr = log->read(offset_t{0}, 1u << 20, offset_t{100});
  ASSERT_TRUE(rr);
  EXPECT_EQ(rr->batches, 2u);  // the no-op and control batches are not served to consumers
  EXPECT_EQ(rr->next_offset, offset_t{5});
  EXPECT_EQ(records_of(rr->bytes).size(), 5u);
  auto es = log->entries(log_index{1}, log_index{4}, 1u << 20);
  ASSERT_TRUE(es);
  ASSERT_EQ(es->size(), 4u);
  EXPECT_EQ(BatchView((*es)[1].batch).type(), BatchType::noop);
}

TEST_F(PartitionLogTest, read_fromMidBatchReturnsWholeBatch) {
  three_batches();
  auto r = log->read(offset_t{3}, 1u << 20, offset_t{6});  // offset 3 is inside batch b (offsets 2..4)
  ASSERT_TRUE(r);
  EXPECT_EQ(r->batches, 2u);
  const auto recs = records_of(r->bytes);
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs.front(), (Rec{2, "b-0"}));  // the caller skips offsets below 3
  EXPECT_EQ(r->next_offset, offset_t{6});
}

TEST_F(PartitionLogTest, read_atStartAndAtEnd) {
  three_batches();
  auto r = log->read(offset_t{0}, 1u << 20, offset_t{6});
  ASSERT_TRUE(r);
  EXPECT_EQ(records_of(r->bytes).size(), 6u);
  auto end = log->read(offset_t{6}, 1u << 20, offset_t{6});  // at the log end: nothing yet, not an error
  ASSERT_TRUE(end);
  EXPECT_EQ(end->batches, 0u);
  EXPECT_TRUE(end->bytes.empty());
  EXPECT_EQ(end->next_offset, offset_t{6});
  auto beyond = log->read(offset_t{7}, 1u << 20, offset_t{100});
  ASSERT_FALSE(beyond);
  EXPECT_EQ(beyond.error().code, errc::out_of_range);
  EXPECT_NE(beyond.error().message.find("t-0"), std::string::npos);
}

TEST_F(PartitionLogTest, read_maxBytesKeepsFirstBatchWhole) {
  three_batches();
  auto one = log->read(offset_t{0}, 1, offset_t{6});
  ASSERT_TRUE(one);
  EXPECT_EQ(one->batches, 1u);
  EXPECT_EQ(one->next_offset, offset_t{2});
  const std::size_t first_size = one->bytes.size();
  auto es = log->entries(log_index{2}, log_index{2}, 1u << 20);
  ASSERT_TRUE(es);
  const std::size_t two_sizes = first_size + (*es)[0].batch.size();
  auto two = log->read(offset_t{0}, two_sizes, offset_t{6});
  ASSERT_TRUE(two);
  EXPECT_EQ(two->batches, 2u);
  EXPECT_EQ(two->bytes.size(), two_sizes);
  auto almost = log->read(offset_t{0}, two_sizes - 1, offset_t{6});
  ASSERT_TRUE(almost);
  EXPECT_EQ(almost->batches, 1u);
}

TEST_F(PartitionLogTest, read_endOffsetStopsAtHighWatermark) {
  three_batches();
  auto r = log->read(offset_t{0}, 1u << 20, offset_t{5});  // high watermark before batch c
  ASSERT_TRUE(r);
  EXPECT_EQ(r->batches, 2u);
  EXPECT_EQ(r->next_offset, offset_t{5});
  auto none = log->read(offset_t{2}, 1u << 20, offset_t{2});
  ASSERT_TRUE(none);
  EXPECT_EQ(none->batches, 0u);
  EXPECT_EQ(none->next_offset, offset_t{2});
}

TEST_F(PartitionLogTest, entries_rangeAndMaxBytes) {
  three_batches();
  auto all = log->entries(log_index{1}, log_index{3}, 1u << 20);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*all)[i].index, log_index{i + 1});
    EXPECT_EQ(BatchView((*all)[i].batch).validate(), BatchError::ok);
  }
  EXPECT_EQ(BatchView((*all)[2].batch).base_offset(), 5);
  auto first = log->entries(log_index{1}, log_index{3}, 1);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->size(), 1u);
  auto mid = log->entries(log_index{2}, log_index{2}, 1u << 20);
  ASSERT_TRUE(mid);
  ASSERT_EQ(mid->size(), 1u);
  EXPECT_EQ(mid->front().index, log_index{2});
  EXPECT_EQ(log->entries(log_index{0}, log_index{2}, 100).error().code, errc::out_of_range);
  EXPECT_EQ(log->entries(log_index{2}, log_index{4}, 100).error().code, errc::out_of_range);
}

TEST_F(PartitionLogTest, termAt_acrossTermsAndBounds) {
  append(*s, log, {data_batch("a", 1), data_batch("b", 1)}, 1);
  append(*s, log, {noop_batch()}, 3);
  append(*s, log, {data_batch("c", 1)}, 3);
  EXPECT_EQ(log->term_at(log_index{0}), term_t{0});  // before the first entry: prev_term
  EXPECT_EQ(log->term_at(log_index{1}), term_t{1});
  EXPECT_EQ(log->term_at(log_index{2}), term_t{1});
  EXPECT_EQ(log->term_at(log_index{3}), term_t{3});
  EXPECT_EQ(log->term_at(log_index{4}), term_t{3});
  EXPECT_EQ(log->term_at(log_index{5}), std::nullopt);
  EXPECT_EQ(log->state().last_term, term_t{3});
  // A lower term than the log's last is refused.
  std::vector<WriteOp> ops;
  ops.push_back(AppendOp{log, {data_batch("d", 1)}, term_t{2}});
  auto r = s->write_sync(std::move(ops));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_argument);
}

TEST_F(PartitionLogTest, indexOfOffset_mapsEveryOffset) {
  three_batches();
  const std::uint64_t want[] = {1, 1, 2, 2, 2, 3};
  for (std::int64_t o = 0; o < 6; ++o) EXPECT_EQ(log->index_of_offset(offset_t{o}), log_index{want[o]}) << o;
  EXPECT_EQ(log->index_of_offset(offset_t{-1}), std::nullopt);
  EXPECT_EQ(log->index_of_offset(offset_t{6}), std::nullopt);
}

TEST_F(PartitionLogTest, truncateSuffix_fromMiddleThenAppendReusesOffsets) {
  three_batches();
  ASSERT_TRUE(write1(*s, TruncateSuffixOp{log, log_index{2}}));
  LogState st = log->state();
  EXPECT_EQ(st.last_index, log_index{1});
  EXPECT_EQ(st.next_offset, offset_t{2});
  EXPECT_EQ(st.last_term, term_t{1});
  EXPECT_EQ(read_all(*log).size(), 2u);
  EXPECT_EQ(log->read(offset_t{3}, 100, offset_t{100}).error().code, errc::out_of_range);
  const AppendResult r = append(*s, log, {data_batch("n", 2)}, 2);
  EXPECT_EQ(r.first_index, log_index{2});
  EXPECT_EQ(r.base_offset, offset_t{2});
  const auto recs = read_all(*log);
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs[2], (Rec{2, "n-0"}));
  EXPECT_EQ(recs[3], (Rec{3, "n-1"}));
  EXPECT_EQ(log->term_at(log_index{2}), term_t{2});
}

TEST_F(PartitionLogTest, truncateSuffix_fromFirstEmptiesLog) {
  three_batches();
  ASSERT_TRUE(write1(*s, TruncateSuffixOp{log, log_index{1}}));
  const LogState st = log->state();
  EXPECT_TRUE(st.empty());
  EXPECT_EQ(st.next_offset, offset_t{0});
  EXPECT_EQ(st.last_term, term_t{0});
  EXPECT_TRUE(read_all(*log).empty());
  const AppendResult r = append(*s, log, {data_batch("z", 1)});
  EXPECT_EQ(r.first_index, log_index{1});
  EXPECT_EQ(r.base_offset, offset_t{0});
}

TEST_F(PartitionLogTest, truncateSuffix_beyondLastIsNoop) {
  three_batches();
  ASSERT_TRUE(write1(*s, TruncateSuffixOp{log, log_index{4}}));
  ASSERT_TRUE(write1(*s, TruncateSuffixOp{log, log_index{100}}));
  EXPECT_EQ(log->state().last_index, log_index{3});
  EXPECT_EQ(read_all(*log).size(), 6u);
}

TEST_F(PartitionLogTest, truncateSuffix_belowFirstIsError) {
  three_batches();
  ASSERT_TRUE(write1(*s, TrimPrefixOp{log, log_index{2}}));
  auto r = write1(*s, TruncateSuffixOp{log, log_index{1}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_argument);
  EXPECT_NE(r.error().message.find("t-0"), std::string::npos);
  EXPECT_EQ(log->state().last_index, log_index{3});
  EXPECT_EQ(read_all(*log).size(), 4u);
}

TEST_F(PartitionLogTest, trimPrefix_middleThenReadAndAppend) {
  three_batches();
  ASSERT_TRUE(write1(*s, TrimPrefixOp{log, log_index{2}}));
  const LogState st = log->state();
  EXPECT_EQ(st.first_index, log_index{2});
  EXPECT_EQ(st.start_offset, offset_t{2});
  EXPECT_EQ(st.prev_term, term_t{1});
  EXPECT_EQ(log->term_at(log_index{1}), term_t{1});
  EXPECT_EQ(log->read(offset_t{1}, 100, offset_t{100}).error().code, errc::out_of_range);
  auto recs = read_all(*log);
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs[0], (Rec{2, "b-0"}));
  EXPECT_EQ(log->index_of_offset(offset_t{1}), std::nullopt);
  append(*s, log, {data_batch("d", 1)});
  recs = read_all(*log);
  ASSERT_EQ(recs.size(), 5u);
  EXPECT_EQ(recs.back(), (Rec{6, "d-0"}));
}

TEST_F(PartitionLogTest, trimPrefix_noneIsNoop) {
  three_batches();
  ASSERT_TRUE(write1(*s, TrimPrefixOp{log, log_index{1}}));
  ASSERT_TRUE(write1(*s, TrimPrefixOp{log, log_index{0}}));
  EXPECT_EQ(log->state().first_index, log_index{1});
  EXPECT_EQ(read_all(*log).size(), 6u);
}

TEST_F(PartitionLogTest, trimPrefix_allKeepsOffsetsAndTerm) {
  append(*s, log, {data_batch("a", 2), data_batch("b", 3)}, 4);
  ASSERT_TRUE(write1(*s, TrimPrefixOp{log, log_index{3}}));
  LogState st = log->state();
  EXPECT_TRUE(st.empty());
  EXPECT_EQ(st.first_index, log_index{3});
  EXPECT_EQ(st.start_offset, offset_t{5});
  EXPECT_EQ(st.next_offset, offset_t{5});
  EXPECT_EQ(st.prev_term, term_t{4});
  EXPECT_EQ(st.last_term, term_t{4});
  EXPECT_EQ(log->term_at(log_index{2}), term_t{4});
  auto r = log->read(offset_t{5}, 100, offset_t{100});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->batches, 0u);
  EXPECT_EQ(write1(*s, TrimPrefixOp{log, log_index{5}}).error().code, errc::invalid_argument);
  const AppendResult a = append(*s, log, {data_batch("c", 1)}, 4);
  EXPECT_EQ(a.first_index, log_index{3});
  EXPECT_EQ(a.base_offset, offset_t{5});
  EXPECT_EQ(read_all(*log), (std::vector<Rec>{{5, "c-0"}}));
}

TEST_F(PartitionLogTest, reset_installsAtLaterIndex) {
  three_batches();
  ASSERT_TRUE(write1(*s, ResetLogOp{log, log_index{100}, term_t{5}, offset_t{1000}}));
  LogState st = log->state();
  EXPECT_TRUE(st.empty());
  EXPECT_EQ(st.first_index, log_index{100});
  EXPECT_EQ(st.last_index, log_index{99});
  EXPECT_EQ(st.next_offset, offset_t{1000});
  EXPECT_EQ(st.start_offset, offset_t{1000});
  EXPECT_EQ(log->term_at(log_index{99}), term_t{5});
  EXPECT_EQ(log->term_at(log_index{3}), std::nullopt);
  auto b = data_batch("r", 2);
  stamp_batch(b, 1000, 5);
  auto w = write1(*s, AppendAtOp{log, log_index{100}, {b}});
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_EQ(w->appends[0].first_index, log_index{100});
  EXPECT_EQ(w->appends[0].next_offset, offset_t{1002});
  EXPECT_EQ(read_all(*log), (std::vector<Rec>{{1000, "r-0"}, {1001, "r-1"}}));
}

TEST_F(PartitionLogTest, appendAt_conflictingSuffixIsReplaced) {
  three_batches();  // indexes 1..3 term 1, offsets 0..5
  auto b = data_batch("new", 2);
  stamp_batch(b, 2, 2);  // index 2 holds offsets from 2 on
  auto w = write1(*s, AppendAtOp{log, log_index{2}, {b, noop_batch()}});
  ASSERT_FALSE(w);  // the no-op is not stamped (base offset 0): refused whole
  EXPECT_EQ(w.error().code, errc::invalid_argument);
  EXPECT_EQ(log->state().last_index, log_index{3});
  auto n = noop_batch();
  stamp_batch(n, 4, 2);
  w = write1(*s, AppendAtOp{log, log_index{2}, {b, n}});
  ASSERT_TRUE(w) << w.error().message;
  const LogState st = log->state();
  EXPECT_EQ(st.last_index, log_index{3});
  EXPECT_EQ(st.next_offset, offset_t{4});
  EXPECT_EQ(st.last_term, term_t{2});
  EXPECT_EQ(log->term_at(log_index{1}), term_t{1});
  EXPECT_EQ(log->term_at(log_index{2}), term_t{2});
  EXPECT_EQ(read_all(*log), (std::vector<Rec>{{0, "a-0"}, {1, "a-1"}, {2, "new-0"}, {3, "new-1"}}));
  // Past the end + 1 is a gap.
  auto gap = data_batch("g", 1);
  stamp_batch(gap, 4, 2);
  EXPECT_EQ(write1(*s, AppendAtOp{log, log_index{5}, {gap}}).error().code, errc::invalid_argument);
}

TEST_F(PartitionLogTest, offsetForTimestamp_findsFirstRecordAtOrAfter) {
  append(*s, log, {data_batch("a", 2, 1000), data_batch("b", 2, 2000), data_batch("c", 1, 3000)});
  EXPECT_EQ(log->offset_for_timestamp(0).value(), offset_t{0});
  EXPECT_EQ(log->offset_for_timestamp(1500).value(), offset_t{2});
  EXPECT_EQ(log->offset_for_timestamp(3000).value(), offset_t{4});
  EXPECT_EQ(log->offset_for_timestamp(3001).value(), offset_t{5});
}

TEST_F(PartitionLogTest, retentionPoint_byBytes) {
  std::vector<std::vector<std::uint8_t>> bs;
  for (int i = 0; i < 10; ++i) bs.push_back(data_batch("v" + std::to_string(i), 1, 1000, 1000));
  const std::size_t batch_size = bs[0].size();
  append(*s, log, std::move(bs));
  const log_index limit{11};
  EXPECT_EQ(log->retention_point(std::nullopt, std::nullopt, limit), log_index{1});
  EXPECT_EQ(log->retention_point(100 * batch_size, std::nullopt, limit), log_index{1});
  // Keep at most 3.5 batches' bytes: the oldest 7 go, 3 stay.
  EXPECT_EQ(log->retention_point(batch_size * 7 / 2, std::nullopt, limit), log_index{8});
  EXPECT_EQ(log->retention_point(3 * batch_size, std::nullopt, limit), log_index{8});
  // Never past the limit (e.g. the commit index) and never the last entry.
  EXPECT_EQ(log->retention_point(0, std::nullopt, log_index{4}), log_index{4});
  EXPECT_EQ(log->retention_point(0, std::nullopt, limit), log_index{10});
  ASSERT_TRUE(write1(*s, TrimPrefixOp{log, log_index{8}}));
  EXPECT_EQ(read_all(*log).front(), (Rec{7, "v7-0" + std::string(996, 'x')}));
}

TEST_F(PartitionLogTest, retentionPoint_byAge) {
  append(*s, log, {data_batch("a", 1, 1000), data_batch("b", 1, 2000), data_batch("c", 1, 3000),
                   data_batch("d", 1, 4000)});
  const log_index limit{5};
  EXPECT_EQ(log->retention_point(std::nullopt, 0, limit), log_index{1});
  EXPECT_EQ(log->retention_point(std::nullopt, 2500, limit), log_index{3});
  EXPECT_EQ(log->retention_point(std::nullopt, 3000, limit), log_index{3});
  EXPECT_EQ(log->retention_point(std::nullopt, 9999, limit), log_index{4});  // keeps the last
  EXPECT_EQ(log->retention_point(std::nullopt, 9999, log_index{2}), log_index{2});
}

TEST_F(PartitionLogTest, dropLog_removesItAndItsData) {
  three_batches();
  ASSERT_TRUE(s->drop_log("t-0"));
  EXPECT_TRUE(s->list_logs().empty());
  EXPECT_EQ(log->read(offset_t{0}, 100, offset_t{100}).error().code, errc::out_of_range);
  PartitionLog* again = open_log(*s, "t-0");
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->state().empty());
  EXPECT_EQ(append(*s, again, {data_batch("x", 1)}).base_offset, offset_t{0});
}

}  // namespace
}  // namespace quorumq::storage::test
