// Batching, linger, sequence numbers and retry ordering of the producer, on a fake clock.
#include <gtest/gtest.h>

#include "accumulator.h"
#include "quorumq/protocol/record_batch.h"

namespace quorumq::client {
namespace {

using namespace std::chrono_literals;

struct Fixture : ::testing::Test {
  AccClock::time_point t0 = AccClock::time_point{} + 1000s;
  Accumulator::Options opt;
  Accumulator::Identity id{7, 0};
  TopicPartition p0{"t", 0}, p1{"t", 1};
  std::map<TopicPartition, std::int32_t> leaders{{p0, 1}, {p1, 1}};

  std::map<std::int32_t, std::vector<BatchPtr>> drain(Accumulator& a, AccClock::time_point now, bool flush = false) {
    return a.drain(
        now, flush, id, 1 << 20, [&](const TopicPartition& tp) { return leaders.count(tp) ? leaders[tp] : -1; },
        [](std::int32_t) { return true; });
  }
  std::vector<BatchPtr> drain_all(Accumulator& a, AccClock::time_point now, bool flush = false) {
    std::vector<BatchPtr> out;
    for (auto& [n, v] : drain(a, now, flush)) out.insert(out.end(), v.begin(), v.end());
    return out;
  }
  void add(Accumulator& a, const TopicPartition& tp, int n, AccClock::time_point now, std::size_t value_size = 10) {
    for (int i = 0; i < n; ++i) a.append(tp, std::nullopt, std::string(value_size, 'x'), {}, 0, nullptr, now);
  }
};

TEST_F(Fixture, linger_holds_a_batch_until_it_expires) {
  opt.linger_ms = 5;
  Accumulator a(opt);
  add(a, p0, 3, t0);
  EXPECT_TRUE(drain_all(a, t0 + 4ms).empty());
  EXPECT_EQ(a.next_ready_time(t0 + 4ms), t0 + 5ms);
  auto out = drain_all(a, t0 + 5ms);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->record_count(), 3u);
}

TEST_F(Fixture, flush_sends_before_linger) {
  opt.linger_ms = 1000;
  Accumulator a(opt);
  add(a, p0, 1, t0);
  EXPECT_TRUE(drain_all(a, t0).empty());
  EXPECT_EQ(drain_all(a, t0, true).size(), 1u);
}

TEST_F(Fixture, full_batch_is_sealed_and_sent_without_linger) {
  opt.linger_ms = 1000;
  opt.batch_bytes = 1024;
  Accumulator a(opt);
  add(a, p0, 10, t0, 200);  // ~2 KiB: seals the first batch after ~4 records
  auto out = drain_all(a, t0);
  ASSERT_EQ(out.size(), 1u);  // one batch per partition per drain
  EXPECT_TRUE(out[0]->sealed);
  EXPECT_LE(out[0]->bytes.size(), 1024u + 300u);
  EXPECT_GE(a.queued_batches(), 1u);
}

TEST_F(Fixture, sequence_numbers_count_records_per_partition) {
  opt.linger_ms = 0;
  Accumulator a(opt);
  add(a, p0, 3, t0);
  add(a, p1, 2, t0);
  auto first = drain_all(a, t0);
  ASSERT_EQ(first.size(), 2u);
  add(a, p0, 4, t0);
  add(a, p1, 1, t0);
  auto second = drain_all(a, t0);
  ASSERT_EQ(second.size(), 2u);
  for (auto& b : first) {
    EXPECT_EQ(b->base_sequence, 0);
    EXPECT_EQ(BatchView(b->bytes).base_sequence(), 0);
    EXPECT_EQ(BatchView(b->bytes).producer_id(), 7);
  }
  for (auto& b : second) EXPECT_EQ(b->base_sequence, b->tp == p0 ? 3 : 2);
  EXPECT_EQ(BatchView(second[0]->bytes).validate(), BatchError::ok);
}

TEST_F(Fixture, in_flight_limit_per_partition) {
  opt.linger_ms = 0;
  opt.max_in_flight_per_partition = 2;
  Accumulator a(opt);
  for (int i = 0; i < 4; ++i) {
    add(a, p0, 1, t0);
    drain_all(a, t0);  // seals each batch
  }
  EXPECT_EQ(a.in_flight_batches(), 2u);
  EXPECT_EQ(a.queued_batches(), 1u);  // records 3 and 4 share the batch that waits
  auto out = drain_all(a, t0);
  EXPECT_TRUE(out.empty());
}

TEST_F(Fixture, retry_keeps_sequence_and_resends_in_order) {
  opt.linger_ms = 0;
  opt.retry_backoff_ms = 100;
  Accumulator a(opt);
  std::vector<BatchPtr> sent;
  for (int i = 0; i < 3; ++i) {
    add(a, p0, 2, t0);
    auto d = drain_all(a, t0);
    ASSERT_EQ(d.size(), 1u);
    sent.push_back(d[0]);
  }
  EXPECT_EQ(sent[2]->base_sequence, 4);
  const auto bytes1 = sent[1]->bytes;
  // The first fails (leader moved); the broker then refuses the others as out of order.
  EXPECT_TRUE(a.on_error(sent[0], make_error_code(BrokerError::not_leader), t0));
  EXPECT_TRUE(a.in_recovery(p0));
  EXPECT_TRUE(drain_all(a, t0 + 200ms).empty()) << "nothing is resent while batches are in flight";
  EXPECT_TRUE(a.on_error(sent[2], make_error_code(BrokerError::out_of_order_sequence), t0));
  EXPECT_TRUE(a.on_error(sent[1], make_error_code(BrokerError::out_of_order_sequence), t0));
  EXPECT_TRUE(drain_all(a, t0 + 50ms).empty()) << "retry backoff";
  // Recovery: one at a time, in sequence order, same bytes.
  add(a, p0, 1, t0 + 100ms);  // a new record meanwhile: must go after the retries
  for (int i = 0; i < 3; ++i) {
    auto d = drain_all(a, t0 + 100ms);
    ASSERT_EQ(d.size(), 1u) << i;
    EXPECT_EQ(d[0], sent[static_cast<std::size_t>(i)]);
    EXPECT_EQ(d[0]->base_sequence, 2 * i);
    EXPECT_TRUE(drain_all(a, t0 + 100ms).empty());
    a.on_success(d[0]);
  }
  EXPECT_EQ(sent[1]->bytes, bytes1);
  auto next = drain_all(a, t0 + 100ms);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0]->base_sequence, 6);
  EXPECT_FALSE(a.in_recovery(p0));
}

TEST_F(Fixture, connection_loss_retries_everything_in_order) {
  opt.linger_ms = 0;
  opt.retry_backoff_ms = 0;
  Accumulator a(opt);
  std::vector<BatchPtr> sent;
  for (int i = 0; i < 3; ++i) {
    add(a, p0, 1, t0);
    sent.push_back(drain_all(a, t0)[0]);
  }
  // All answers lost, reported in any order.
  for (int i : {2, 0, 1}) EXPECT_TRUE(a.on_error(sent[static_cast<std::size_t>(i)], make_error_code(ClientError::connection_lost), t0));
  for (int i = 0; i < 3; ++i) {
    auto d = drain_all(a, t0);
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0], sent[static_cast<std::size_t>(i)]);
    EXPECT_EQ(d[0]->attempts, 2);
    a.on_success(d[0]);
  }
}

TEST_F(Fixture, non_retriable_error_is_final_and_its_sequence_is_reused) {
  opt.linger_ms = 0;
  Accumulator a(opt);
  add(a, p0, 3, t0);
  auto b = drain_all(a, t0)[0];
  EXPECT_FALSE(a.on_error(b, make_error_code(BrokerError::invalid_request), t0));
  add(a, p0, 1, t0);
  EXPECT_EQ(drain_all(a, t0)[0]->base_sequence, 0);
}

TEST_F(Fixture, out_of_order_without_an_earlier_batch_is_final) {
  opt.linger_ms = 0;
  Accumulator a(opt);
  add(a, p0, 1, t0);
  auto b = drain_all(a, t0)[0];
  EXPECT_FALSE(a.on_error(b, make_error_code(BrokerError::out_of_order_sequence), t0));
}

TEST_F(Fixture, retriable_error_after_delivery_timeout_is_final) {
  opt.linger_ms = 0;
  opt.delivery_timeout_ms = 1000;
  Accumulator a(opt);
  add(a, p0, 1, t0);
  auto b = drain_all(a, t0)[0];
  EXPECT_FALSE(a.on_error(b, make_error_code(BrokerError::not_leader), t0 + 2s));
}

TEST_F(Fixture, queued_batches_expire) {
  opt.linger_ms = 0;
  opt.delivery_timeout_ms = 1000;
  Accumulator a(opt);
  leaders.clear();  // no leader: nothing can be sent
  add(a, p0, 1, t0);
  EXPECT_TRUE(drain_all(a, t0).empty());
  EXPECT_TRUE(a.expire(t0 + 999ms).empty());
  EXPECT_EQ(a.expire(t0 + 1s).size(), 1u);
  EXPECT_EQ(a.queued_batches(), 0u);
}

TEST_F(Fixture, no_leader_is_reported_and_batches_wait) {
  opt.linger_ms = 0;
  Accumulator a(opt);
  add(a, TopicPartition{"other", 0}, 1, t0);
  std::vector<TopicPartition> no_leader;
  auto d = a.drain(t0, false, id, 1 << 20, [](const TopicPartition&) { return -1; }, [](std::int32_t) { return true; },
                   &no_leader);
  EXPECT_TRUE(d.empty());
  ASSERT_EQ(no_leader.size(), 1u);
  EXPECT_EQ(no_leader[0].topic, "other");
}

TEST_F(Fixture, request_size_limit_splits_partitions_across_requests) {
  opt.linger_ms = 0;
  Accumulator a(opt);
  add(a, p0, 10, t0, 100);
  add(a, p1, 10, t0, 100);
  auto d = a.drain(t0, false, id, 1500, [](const TopicPartition&) { return 1; }, [](std::int32_t) { return true; });
  ASSERT_EQ(d[1].size(), 1u);
  auto d2 = a.drain(t0, false, id, 1500, [](const TopicPartition&) { return 1; }, [](std::int32_t) { return true; });
  ASSERT_EQ(d2[1].size(), 1u);
}

TEST_F(Fixture, node_without_room_gets_nothing) {
  opt.linger_ms = 0;
  Accumulator a(opt);
  add(a, p0, 1, t0);
  auto d = a.drain(t0, false, id, 1 << 20, [](const TopicPartition&) { return 1; }, [](std::int32_t) { return false; });
  EXPECT_TRUE(d.empty());
  EXPECT_EQ(a.queued_batches(), 1u);
}

TEST_F(Fixture, without_idempotence_batches_carry_no_producer_id) {
  opt.linger_ms = 0;
  opt.idempotent = false;
  Accumulator a(opt);
  add(a, p0, 2, t0);
  auto b = drain_all(a, t0)[0];
  EXPECT_EQ(BatchView(b->bytes).producer_id(), -1);
  EXPECT_EQ(b->base_sequence, -1);
}

}  // namespace
}  // namespace quorumq::client

namespace quorumq::client {
namespace {

TEST_F(Fixture, new_identity_restarts_sequences_and_keeps_numbered_batches) {
  opt.linger_ms = 0;
  Accumulator a(opt);
  add(a, p0, 3, t0);
  auto old = drain_all(a, t0)[0];
  EXPECT_TRUE(a.on_error(old, make_error_code(ClientError::connection_lost), t0));
  a.reset_sequences();
  id = {8, 0};
  add(a, p0, 2, t0 + 1s);
  auto resent = drain_all(a, t0 + 1s);
  ASSERT_EQ(resent.size(), 1u);
  EXPECT_EQ(resent[0], old);  // the retry first, unchanged
  EXPECT_EQ(BatchView(resent[0]->bytes).producer_id(), 7);
  a.on_success(old);
  auto fresh = drain_all(a, t0 + 1s)[0];
  EXPECT_EQ(fresh->base_sequence, 0);
  EXPECT_EQ(BatchView(fresh->bytes).producer_id(), 8);
}

}  // namespace
}  // namespace quorumq::client

namespace quorumq::client {
namespace {

std::vector<std::string> values_of(const BatchPtr& b) {
  std::vector<std::string> out;
  BatchView(b->bytes).for_each_record([&](const RecordView& r) { out.emplace_back(r.value ? *r.value : ""); });
  return out;
}

// Issue 14: a batch the broker finds too large is split (halves keep its order and sequence
// numbers) until it fits; the records of the later batch follow after the halves.
TEST_F(Fixture, too_large_batch_is_split_in_order_with_its_sequence_numbers) {
  opt.linger_ms = 0;
  Accumulator a(opt);
  for (int i = 0; i < 5; ++i) a.append(p0, std::nullopt, "v" + std::to_string(i), {{"h", "x"}}, 100 + i, nullptr, t0);
  auto big = drain_all(a, t0)[0];
  add(a, p0, 2, t0);
  auto later = drain_all(a, t0)[0];
  ASSERT_EQ(big->record_count(), 5u);
  EXPECT_EQ(later->base_sequence, 5);
  const std::size_t buffered = big->size_bytes;
  ASSERT_TRUE(a.on_too_large(big, t0));
  EXPECT_TRUE(a.in_recovery(p0));
  EXPECT_TRUE(drain_all(a, t0).empty()) << "the later batch is still in flight";
  EXPECT_TRUE(a.on_error(later, make_error_code(BrokerError::out_of_order_sequence), t0));
  auto h1 = drain_all(a, t0);
  ASSERT_EQ(h1.size(), 1u);
  EXPECT_EQ(h1[0]->record_count(), 2u);
  EXPECT_EQ(h1[0]->base_sequence, 0);
  EXPECT_EQ(BatchView(h1[0]->bytes).validate(), BatchError::ok);
  EXPECT_EQ(BatchView(h1[0]->bytes).base_sequence(), 0);
  EXPECT_EQ(values_of(h1[0]), (std::vector<std::string>{"v0", "v1"}));
  // Still too large: split again.
  ASSERT_TRUE(a.on_too_large(h1[0], t0));
  std::vector<std::vector<std::string>> order;
  std::size_t sizes = 0;
  for (;;) {
    auto d = drain_all(a, t0);
    if (d.empty()) break;
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(BatchView(d[0]->bytes).validate(), BatchError::ok);
    EXPECT_EQ(BatchView(d[0]->bytes).base_sequence(), d[0]->base_sequence);
    order.push_back(values_of(d[0]));
    if (d[0] != later) sizes += d[0]->size_bytes;
    a.on_success(d[0]);
  }
  EXPECT_EQ(order, (std::vector<std::vector<std::string>>{{"v0"}, {"v1"}, {"v2", "v3", "v4"}, {std::string(10, 'x'), std::string(10, 'x')}}))
      << "halves first, in order, then the later batch";
  EXPECT_EQ(sizes, buffered) << "buffer accounting is kept across splits";
  add(a, p0, 1, t0);
  auto next = drain_all(a, t0);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0]->base_sequence, 7);
  EXPECT_FALSE(a.in_recovery(p0));
}

TEST_F(Fixture, too_large_single_record_fails_alone_and_later_batches_close_the_gap) {
  opt.linger_ms = 0;
  Accumulator a(opt);
  add(a, p0, 2, t0);
  auto first = drain_all(a, t0)[0];
  a.append(p0, std::nullopt, std::string(5000, 'L'), {}, 0, nullptr, t0);
  auto huge = drain_all(a, t0)[0];
  add(a, p0, 3, t0);
  auto after = drain_all(a, t0)[0];
  EXPECT_EQ(huge->base_sequence, 2);
  EXPECT_EQ(after->base_sequence, 3);
  a.on_success(first);
  EXPECT_FALSE(a.on_too_large(huge, t0)) << "one record cannot be split: it fails";
  // The batch after it was sent with sequence 3; the broker (expecting 2) refuses it as out of
  // order, which is retriable now: it is resent renumbered to 2.
  EXPECT_TRUE(a.on_error(after, make_error_code(BrokerError::out_of_order_sequence), t0));
  add(a, p0, 1, t0);
  auto d = drain_all(a, t0);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0], after);
  EXPECT_EQ(d[0]->base_sequence, 2);
  EXPECT_EQ(BatchView(d[0]->bytes).base_sequence(), 2);
  EXPECT_EQ(BatchView(d[0]->bytes).validate(), BatchError::ok);
  EXPECT_EQ(values_of(d[0]).size(), 3u);
  a.on_success(d[0]);
  auto next = drain_all(a, t0);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0]->base_sequence, 5);
}

TEST_F(Fixture, learned_topic_limit_caps_new_batches) {
  opt.linger_ms = 1000;
  Accumulator a(opt);
  a.limit_batch_bytes("t", 600);
  add(a, p0, 10, t0, 100);
  auto d = drain_all(a, t0);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_TRUE(d[0]->sealed);
  EXPECT_LE(d[0]->bytes.size(), 600u);
  EXPECT_EQ(a.batch_bytes_for("other"), opt.batch_bytes);
}

}  // namespace
}  // namespace quorumq::client
