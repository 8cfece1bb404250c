// Health that tells the truth, and data directories that belong to one broker (issue 14, the
// broker side): the in-sync replicas and watermarks every broker reports, the under-replicated
// gauge, readiness that waits for catch-up, data-directory ownership, duplicate node ids,
// offsets of deleted topics, per-topic configs, and the metrics an operator needs. Real broker
// processes on loopback.
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "cluster.h"
#include "harness.h"
#include "quorumq/admin.h"
#include "quorumq/producer.h"
#include "quorumq/protocol/errors.h"
#include "quorumq/protocol/quorumq_generated.h"
#include "quorumq/protocol/record_batch.h"
#include "raw_client.h"

namespace quorumq::test {
namespace {

using protocol::ApiId;
std::uint32_t g_corr = 5000;

double metric(std::uint16_t admin_port, const std::string& name) {
  auto m = http_get(admin_port, "/metrics");
  if (!m) return -1;
  std::istringstream in(m->body);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(name + " ", 0) == 0 || line.rfind(name + "{", 0) == 0) return std::stod(line.substr(line.rfind(' ') + 1));
  return -1;
}

// Sum of a gauge over the brokers that answer.
double sum_metric(Cluster& c, const std::string& name) {
  double s = 0;
  for (int i = 0; i < c.size(); ++i)
    if (c.broker(i).running()) s += std::max(0.0, metric(c.broker(i).admin_port(), name));
  return s;
}

struct PartitionView {
  int leader = -1;
  std::int64_t hw = -1, lso = -1;
  std::vector<int> isr;
  bool operator==(const PartitionView&) const = default;
};

// What broker `port` answers in Metadata for `topic`, per partition.
std::map<int, PartitionView> metadata(std::uint16_t port, const std::string& topic) {
  std::map<int, PartitionView> out;
  RawClient c(port);
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<flatbuffers::String>> ts{fbb.CreateString(topic)};
  auto root = wire::CreateMetadataRequest(fbb, fbb.CreateVector(ts));
  if (!c.send_frame(protocol::finish_request(fbb, root, ApiId::metadata, 0, ++g_corr))) return out;
  auto f = c.read_frame(5s);
  if (!f || f->header.is_error_payload()) return out;
  const auto* r = flatbuffers::GetRoot<wire::MetadataResponse>(f->payload.data());
  if (!r->topics() || r->topics()->size() != 1 || !r->topics()->Get(0)->partitions()) return out;
  for (const auto* p : *r->topics()->Get(0)->partitions()) {
    PartitionView v{p->leader_id(), p->high_watermark(), p->log_start_offset(), {}};
    if (p->isr()) v.isr.assign(p->isr()->begin(), p->isr()->end());
    std::sort(v.isr.begin(), v.isr.end());
    out[p->partition()] = v;
  }
  return out;
}

std::size_t produce_n(const std::string& bootstrap, const std::string& topic, std::size_t n) {
  ProducerConfig c;
  c.bootstrap = bootstrap;
  c.delivery_timeout_ms = 30000;
  auto p = Producer::create(c);
  EXPECT_TRUE(p.has_value());
  std::vector<std::future<SendResult>> fs;
  for (std::size_t i = 0; i < n; ++i) fs.push_back((*p)->send(topic, std::nullopt, "m" + std::to_string(i)));
  (void)(*p)->flush(40s);  // the futures tell
  std::size_t ok = 0;
  for (auto& f : fs) ok += f.get().has_value();
  return ok;
}

std::unique_ptr<Admin> admin_for(const std::string& bootstrap) {
  AdminConfig c;
  c.bootstrap = bootstrap;
  auto a = Admin::create(c);
  EXPECT_TRUE(a.has_value());
  return std::move(*a);
}

// ------------------------------------------------------------------------------ ISR, URP

class Health : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_.start_all();
    admin_ = admin_for(cluster_.bootstrap());
    ASSERT_TRUE(admin_->create_topic("h", 3, 3).has_value());
    ASSERT_TRUE(wait_until([&] { return cluster_.leader_of("h", 0) >= 0 && cluster_.leader_of("h", 1) >= 0 &&
                                        cluster_.leader_of("h", 2) >= 0; }, 20s));
    ASSERT_EQ(produce_n(cluster_.bootstrap(), "h", 300), 300u);
  }
  Cluster cluster_{3, {"--replica-lag-max-ms=2000"}};
  std::unique_ptr<Admin> admin_;
};

// The under-replicated gauge said 0 for 40 s with a follower down, while the operations doc told
// operators to gate upgrades on it. Now: a stopped follower leaves the ISR within
// --replica-lag-max-ms (2 s here); after a restart it is back once caught up; /readyz of the
// restarted broker waits for that.
TEST_F(Health, followerDown_underReplicatedWithinTheBound_zeroAgainAfterCatchUp) {
  ASSERT_TRUE(wait_until([&] { return sum_metric(cluster_, "quorumq_under_replicated_partitions") == 0; }, 10s));
  for (const bool graceful : {false, true}) {
    const int victim = 2;
    if (graceful) ASSERT_EQ(cluster_.broker(victim).terminate(), 0);
    else cluster_.broker(victim).kill9();
    // Every partition has a replica on the victim; its leader (elsewhere now) reports it.
    EXPECT_TRUE(wait_until([&] { return sum_metric(cluster_, "quorumq_under_replicated_partitions") == 3; }, 10s))
        << (graceful ? "SIGTERM" : "kill -9") << ": under-replicated partitions "
        << sum_metric(cluster_, "quorumq_under_replicated_partitions") << " of 3";
    ASSERT_EQ(produce_n(cluster_.bootstrap(), "h", 300), 300u);  // it misses these
    cluster_.broker(victim).spawn();
    cluster_.broker(victim).wait_ready(30s);  // ready = every replica back in its leader's ISR
    EXPECT_EQ(sum_metric(cluster_, "quorumq_under_replicated_partitions"), 0)
        << "the restarted broker said ready while a leader still counted it out of sync";
    EXPECT_EQ(metric(cluster_.broker(victim).admin_port(), "quorumq_replicas_out_of_sync"), 0);
  }
}

// `topic describe` showed the ISR as all replicas always, and -1 watermarks for partitions the
// answering broker did not lead. Now every broker answers with the leader's view.
TEST_F(Health, metadata_sameTableFromEveryBroker_realIsrAndWatermarks) {
  auto same = [&] {
    const auto a = metadata(cluster_.broker(0).port(), "h");
    if (a.size() != 3) return false;
    for (const auto& [p, v] : a)
      if (v.hw < 0 || v.lso < 0 || v.isr.empty()) return false;
    for (int i = 1; i < 3; ++i)
      if (cluster_.broker(i).running() && metadata(cluster_.broker(i).port(), "h") != a) return false;
    return true;
  };
  ASSERT_TRUE(wait_until(same, 10s)) << "brokers disagree about topic h";
  for (const auto& [p, v] : metadata(cluster_.broker(1).port(), "h")) {
    EXPECT_EQ(v.isr, (std::vector<int>{1, 2, 3})) << "partition " << p;
    EXPECT_EQ(v.lso, 0);
  }
  std::int64_t total = 0;
  for (const auto& [p, v] : metadata(cluster_.broker(2).port(), "h")) total += v.hw;
  EXPECT_EQ(total, 300);
  // A follower down: the ISR every broker reports drops it.
  cluster_.broker(2).kill9();
  EXPECT_TRUE(wait_until(
      [&] {
        for (int i = 0; i < 2; ++i)
          for (const auto& [p, v] : metadata(cluster_.broker(i).port(), "h"))
            if (v.isr != std::vector<int>{1, 2}) return false;
        return true;
      },
      15s));
}

// ------------------------------------------------------------------- data directories

// A broker started on another node's data directory (or a backup restored under another id)
// started, said "caught up" and served nothing of what it held. Now it refuses (exit 2), naming
// both ids and what to do.
TEST(DataDir, belongsToOneNodeOfOneCluster) {
  TempDir dir;
  const auto data = dir.path() / "data";
  {
    BrokerProcess b(1, data, {"--log-level=warn"});
    b.start();
    ASSERT_EQ(b.terminate(), 0);
  }
  auto run = [&](int node, const std::string& cluster) {
    return run_program({broker_binary(), "--node-id=" + std::to_string(node),
                        "--listen=127.0.0.1:" + std::to_string(free_port()),
                        "--admin-listen=127.0.0.1:" + std::to_string(free_port()), "--data-dir=" + data.string(),
                        "--cluster-id=" + cluster},
                       {}, 30s);
  };
  auto other_node = run(2, "quorumq");
  EXPECT_EQ(other_node.status, 2) << other_node.err;
  EXPECT_NE(other_node.err.find("belongs to node 1 of cluster 'quorumq'"), std::string::npos) << other_node.err;
  EXPECT_NE(other_node.err.find("--node-id 1"), std::string::npos) << other_node.err;
  auto other_cluster = run(1, "another");
  EXPECT_EQ(other_cluster.status, 2) << other_cluster.err;
  EXPECT_NE(other_cluster.err.find("cluster 'quorumq'"), std::string::npos) << other_cluster.err;
  // Its own node and cluster start as before.
  BrokerProcess again(1, data, {"--log-level=warn"});
  again.start();
  EXPECT_TRUE(again.running());
}

// Two running brokers with one node id were met with silence (or 822 "request is malformed"
// warnings in 40 s). Now the brokers they reach say so, by name, once.
TEST(DataDir, twoBrokersWithOneNodeId_reportedByName) {
  Cluster cluster(3);
  cluster.start_all();
  TempDir dir;
  BrokerProcess impostor(2, dir.path() / "impostor",
                         {"--peers=" + cluster.peers(), "--cluster-secret-file=" + cluster.secret_file().string(),
                          "--peer-listen=127.0.0.1:" + std::to_string(free_port()), "--log-level=info"});
  impostor.spawn();
  EXPECT_TRUE(wait_until([&] { return !cluster.broker(0).log_contains("two brokers claim node id 2").empty(); }, 20s))
      << "broker 1 did not report the duplicate node id; its log: " << cluster.broker(0).log_file();
  const auto line = cluster.broker(0).log_contains("two brokers claim node id 2");
  EXPECT_NE(line.find("stop one of them"), std::string::npos) << line;
}

// The start-up log says what this broker is.
TEST(DataDir, startupLogSaysVersionIdsListenersAndLimits) {
  TempDir dir;
  BrokerProcess b(1, dir.path() / "d", {"--log-level=info"});
  b.start();
  const auto line = b.log_contains("quorumq-broker 0.");
  EXPECT_NE(line.find("node 1 of cluster 'quorumq'"), std::string::npos) << line;
  EXPECT_NE(line.find("clients 127.0.0.1:"), std::string::npos) << line;
  EXPECT_NE(b.log_contains("limits: ").find("connections"), std::string::npos);
  auto v = run_program({broker_binary(), "--version"});
  EXPECT_EQ(v.status, 0);
  EXPECT_EQ(v.out.rfind("quorumq-broker 0.", 0), 0u) << v.out;
}

// ------------------------------------------------------------------------ topics and groups

class OneBroker : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = std::make_unique<BrokerProcess>(1, dir_.path() / "b1", std::vector<std::string>{"--log-level=info"});
    broker_->start();
    admin_ = admin_for(broker_->address());
  }
  TempDir dir_;
  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<Admin> admin_;
};

// A topic deleted and created again inherited the old committed offsets, so the group skipped
// the new topic's first messages.
TEST_F(OneBroker, deletedTopicCreatedAgain_startsWithNoOffsets) {
  ASSERT_TRUE(admin_->create_topic("t", 1, 1).has_value());
  ASSERT_EQ(produce_n(broker_->address(), "t", 50), 50u);
  auto commit = [&](std::int64_t offset) {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<wire::OffsetCommitPartition>> ps{wire::CreateOffsetCommitPartition(fbb, 0, offset)};
    std::vector<flatbuffers::Offset<wire::OffsetCommitTopic>> ts{
        wire::CreateOffsetCommitTopic(fbb, fbb.CreateString("t"), fbb.CreateVector(ps))};
    RawClient c(broker_->port());
    EXPECT_TRUE(c.send_frame(protocol::finish_request(
        fbb, wire::CreateOffsetCommitRequest(fbb, fbb.CreateString("g"), -1, 0, fbb.CreateVector(ts)),
        ApiId::offset_commit, 0, ++g_corr)));
    auto f = c.read_frame(10s);
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(flatbuffers::GetRoot<wire::OffsetCommitResponse>(f->payload.data())->topics()->Get(0)->partitions()->Get(0)->error(),
              wire::ErrorCode::none);
  };
  auto fetched = [&]() -> std::int64_t {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<std::int32_t> parts{0};
    std::vector<flatbuffers::Offset<wire::OffsetFetchTopic>> ts{wire::CreateOffsetFetchTopicDirect(fbb, "t", &parts)};
    RawClient c(broker_->port());
    EXPECT_TRUE(c.send_frame(protocol::finish_request(
        fbb, wire::CreateOffsetFetchRequest(fbb, fbb.CreateString("g"), -1, 0, fbb.CreateVector(ts)),
        ApiId::offset_fetch, 0, ++g_corr)));
    auto f = c.read_frame(10s);
    if (!f) return -2;
    const auto* p = flatbuffers::GetRoot<wire::OffsetFetchResponse>(f->payload.data())->topics()->Get(0)->partitions()->Get(0);
    return p->error() == wire::ErrorCode::none ? p->offset() : -3;
  };
  commit(40);
  ASSERT_EQ(fetched(), 40);
  ASSERT_TRUE(admin_->delete_topic("t").has_value());
  ASSERT_TRUE(wait_until([&] { return admin_->create_topic("t", 1, 1).has_value(); }, 10s));
  ASSERT_TRUE(wait_until([&] { return fetched() != -3; }, 10s));  // its new leader serves
  EXPECT_EQ(fetched(), -1) << "the recreated topic inherited the old topic's committed offset";
  // And after a restart (the offsets table is what a restart reads).
  broker_->kill9();
  broker_->start();
  ASSERT_TRUE(wait_until([&] { return fetched() != -3; }, 10s));
  EXPECT_EQ(fetched(), -1);
}

// topic create --config accepted any key and applied none per topic.
TEST_F(OneBroker, topicConfigs_validatedAppliedShownAltered) {
  auto create = [&](std::vector<std::pair<std::string, std::string>> cfg) {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<wire::ConfigEntry>> es;
    for (const auto& [k, v] : cfg) es.push_back(wire::CreateConfigEntryDirect(fbb, k.c_str(), v.c_str()));
    RawClient c(broker_->port());
    EXPECT_TRUE(c.send_frame(protocol::finish_request(
        fbb, wire::CreateCreateTopicRequest(fbb, fbb.CreateString("cfg"), 1, 1, fbb.CreateVector(es)),
        ApiId::create_topic, 0, ++g_corr)));
    auto f = c.read_frame(10s);
    return f ? flatbuffers::GetRoot<wire::CreateTopicResponse>(f->payload.data())->error() : wire::ErrorCode::unknown;
  };
  EXPECT_EQ(create({{"retention.msec", "5"}}), wire::ErrorCode::invalid_config);
  EXPECT_EQ(create({{"retention.ms", "soon"}}), wire::ErrorCode::invalid_config);
  EXPECT_EQ(create({{"max.message.bytes", "1"}}), wire::ErrorCode::invalid_config);
  ASSERT_EQ(create({{"max.message.bytes", "1000"}, {"retention.ms", "3600000"}}), wire::ErrorCode::none);
  // Shown in Metadata.
  auto configs = [&] {
    std::map<std::string, std::string> out;
    RawClient c(broker_->port());
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<flatbuffers::String>> ts{fbb.CreateString("cfg")};
    c.send_frame(protocol::finish_request(fbb, wire::CreateMetadataRequest(fbb, fbb.CreateVector(ts)),
                                          ApiId::metadata, 0, ++g_corr));
    auto f = c.read_frame(5s);
    const auto* t = flatbuffers::GetRoot<wire::MetadataResponse>(f->payload.data())->topics()->Get(0);
    if (t->configs())
      for (const auto* e : *t->configs()) out[e->key()->str()] = e->value()->str();
    return out;
  };
  EXPECT_EQ(configs(), (std::map<std::string, std::string>{{"max.message.bytes", "1000"}, {"retention.ms", "3600000"}}));
  // Applied: a 2 KB batch is over this topic's 1000 bytes (the broker's own limit is 4 MiB).
  ASSERT_TRUE(wait_until([&] { return metric(broker_->admin_port(), "quorumq_partitions_led") >= 1; }, 10s));
  auto produce_2k = [&] {
    BatchBuilder b;
    b.add(std::nullopt, std::string(2000, 'x'), 1700000000000);
    const auto batch = b.finish();
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<wire::ProducePartitionData>> ps{
        wire::CreateProducePartitionData(fbb, 0, fbb.CreateVector(batch))};
    std::vector<flatbuffers::Offset<wire::ProduceTopicData>> ts{
        wire::CreateProduceTopicData(fbb, fbb.CreateString("cfg"), fbb.CreateVector(ps))};
    RawClient c(broker_->port());
    c.send_frame(protocol::finish_request(fbb, wire::CreateProduceRequest(fbb, wire::Acks::quorum, 10000, fbb.CreateVector(ts)),
                                          ApiId::produce, 0, ++g_corr));
    auto f = c.read_frame(10s);
    return f ? flatbuffers::GetRoot<wire::ProduceResponse>(f->payload.data())->topics()->Get(0)->partitions()->Get(0)->error()
             : wire::ErrorCode::unknown;
  };
  ASSERT_TRUE(wait_until([&] { return produce_2k() == wire::ErrorCode::message_too_large; }, 10s));
  // Altered: raise the limit, drop retention.ms.
  {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<wire::ConfigEntry>> set{wire::CreateConfigEntryDirect(fbb, "max.message.bytes", "100000")};
    std::vector<flatbuffers::Offset<flatbuffers::String>> del{fbb.CreateString("retention.ms")};
    RawClient c(broker_->port());
    c.send_frame(protocol::finish_request(
        fbb, wire::CreateAlterTopicConfigRequest(fbb, fbb.CreateString("cfg"), fbb.CreateVector(set), fbb.CreateVector(del)),
        ApiId::alter_topic_config, 0, ++g_corr));
    auto f = c.read_frame(10s);
    ASSERT_TRUE(f.has_value());
    ASSERT_FALSE(f->header.is_error_payload());
    EXPECT_EQ(flatbuffers::GetRoot<wire::AlterTopicConfigResponse>(f->payload.data())->error(), wire::ErrorCode::none);
  }
  EXPECT_TRUE(wait_until([&] { return configs() == std::map<std::string, std::string>{{"max.message.bytes", "100000"}}; }, 10s));
  EXPECT_EQ(produce_2k(), wire::ErrorCode::none);
  // And it survives a restart (it is in the controller log).
  broker_->kill9();
  broker_->start();
  EXPECT_EQ(configs(), (std::map<std::string, std::string>{{"max.message.bytes", "100000"}}));
}

// Per-group lag, build info and process metrics.
TEST_F(OneBroker, metrics_groupLagBuildInfoAndProcess) {
  ASSERT_TRUE(admin_->create_topic("lag", 1, 1).has_value());
  ASSERT_EQ(produce_n(broker_->address(), "lag", 30), 30u);
  {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<wire::OffsetCommitPartition>> ps{wire::CreateOffsetCommitPartition(fbb, 0, 10)};
    std::vector<flatbuffers::Offset<wire::OffsetCommitTopic>> ts{
        wire::CreateOffsetCommitTopic(fbb, fbb.CreateString("lag"), fbb.CreateVector(ps))};
    RawClient c(broker_->port());
    ASSERT_TRUE(c.send_frame(protocol::finish_request(
        fbb, wire::CreateOffsetCommitRequest(fbb, fbb.CreateString("lagging"), -1, 0, fbb.CreateVector(ts)),
        ApiId::offset_commit, 0, ++g_corr)));
    ASSERT_TRUE(c.read_frame(10s).has_value());
  }
  auto m = http_get(broker_->admin_port(), "/metrics");
  ASSERT_TRUE(m.has_value());
  EXPECT_NE(m->body.find("quorumq_group_lag{group=\"lagging\",topic=\"lag\",partition=\"0\"} 20"), std::string::npos);
  EXPECT_NE(m->body.find("quorumq_build_info{version=\"0."), std::string::npos);
  EXPECT_GT(metric(broker_->admin_port(), "process_resident_memory_bytes"), 1e6);
  EXPECT_GT(metric(broker_->admin_port(), "process_open_fds"), 3);
  EXPECT_GT(metric(broker_->admin_port(), "process_max_fds"), 100);
  EXPECT_GT(metric(broker_->admin_port(), "process_start_time_seconds"), 1.6e9);
}

}  // namespace
}  // namespace quorumq::test
