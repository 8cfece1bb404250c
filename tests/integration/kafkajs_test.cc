// KafkaJS 2.2.4 (npm, installed into tests/integration/kafkajs/ by scripts/install-deps.sh)
// against three real brokers' Kafka listeners (issue 17): a producer with acks -1 sends keyed
// messages with headers; a consumer of a group reads part of them, commits what it processed,
// and leaves (or dies mid-batch); a new consumer process of the group resumes where the commits
// say, after the leader of a committed partition was kill -9ed. Together they see every message,
// in order per partition, and only what was not committed twice. The offsets KafkaJS commits
// are the ones the native CLI shows (`quorumq group offsets`), and KafkaJS's admin client
// creates, lists, describes and deletes topics the native CLI sees. The JS side is
// tests/integration/kafkajs/client.js: one JSON object per line on stdout.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "cluster.h"
#include "load.h"
#include "quorumq/testsupport/local_cluster.h"

namespace quorumq::test {
namespace {

using nlohmann::json;

const std::filesystem::path kClientDir = std::filesystem::path(__FILE__).parent_path() / "kafkajs";

std::string cli() { return std::filesystem::path(broker_binary()).parent_path().parent_path() / "client/cli/quorumq"; }

std::vector<json> json_lines(const std::string& out) {
  std::vector<json> v;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) v.push_back(json::parse(line));
  return v;
}

// One message as the producer sent it (i) and where it was acknowledged, or as a consumer saw it.
struct Seen {
  int p = -1;
  std::int64_t o = -1;
  std::string k, v;
  std::map<std::string, std::string> h;
};

// What one `client.js consume` run printed.
struct ConsumerRun {
  int status = -1;
  std::string err;
  std::vector<Seen> messages;               // in the order processed
  std::map<int, std::int64_t> committed;    // partition -> last offset committed
  std::vector<json> described, joined;
};

class KafkaJs : public ::testing::Test {
 protected:
  static testsupport::ClusterOptions options() {
    testsupport::ClusterOptions o;
    o.brokers = 3;
    o.broker_bin = broker_binary();
    o.kafka = true;
    return o;
  }
  void SetUp() override {
    // Installed by scripts/install-deps.sh (which the test command runs): its absence is a
    // failure, not a skip.
    ASSERT_TRUE(std::filesystem::exists(kClientDir / "node_modules/kafkajs/package.json"))
        << "KafkaJS is not installed in " << kClientDir << ": run scripts/install-deps.sh";
    auto node = run_program({"node", "-p", "require('" + (kClientDir / "node_modules/kafkajs/package.json").string() + "').version"}, {}, 30s);
    ASSERT_EQ(node.status, 0) << "node: " << node.err << " (run scripts/install-deps.sh)";
    ASSERT_EQ(node.out, "2.2.4\n");
    auto r = cl.start(90s);
    ASSERT_TRUE(r) << r.error();
    create_topic(cl.bootstrap(), kTopic, 3, 3);
  }

  std::string kafka_address(int i) const { return "127.0.0.1:" + std::to_string(cl.kafka_port(i)); }
  // Every broker's Kafka address, without broker `skip` (a stopped one).
  std::string kafka_bootstrap(int skip = -1) const {
    std::string b;
    for (int i = 0; i < cl.size(); ++i)
      if (i != skip) b += (b.empty() ? "" : ",") + kafka_address(i);
    return b;
  }

  RunResult node(std::vector<std::string> args, std::chrono::milliseconds timeout = 180s) {
    args.insert(args.begin(), {"node", (kClientDir / "client.js").string()});
    return run_program(args, {}, timeout);
  }

  // Produces `n` messages with KafkaJS; what each was acknowledged at, by i.
  std::vector<Seen> produce(int n) {
    auto r = node({"produce", kafka_bootstrap(), kTopic, std::to_string(n)});
    EXPECT_EQ(r.status, 0) << r.err;
    std::vector<Seen> sent(static_cast<std::size_t>(n));
    for (const auto& j : json_lines(r.out)) {
      const int i = j.at("i");
      sent.at(static_cast<std::size_t>(i)) = {j.at("p"), std::stoll(j.at("o").get<std::string>()), key(i), value(i), headers(i)};
    }
    return sent;
  }

  ConsumerRun consume(const std::string& bootstrap, const std::string& group, const std::string& limit, bool crash = false) {
    std::vector<std::string> args{"consume", bootstrap, kTopic, group, limit};
    if (crash) args.push_back("crash");
    auto r = node(args);
    ConsumerRun run;
    run.status = r.status;
    run.err = r.err;
    for (const auto& j : json_lines(r.out)) {
      if (j.contains("committed")) run.committed[j["committed"].at("p")] = std::stoll(j["committed"].at("o").get<std::string>());
      else if (j.contains("described")) run.described.push_back(j["described"]);
      else if (j.contains("joined")) run.joined.push_back(j["joined"]);
      else run.messages.push_back({j.at("p"), std::stoll(j.at("o").get<std::string>()), j.at("k"), j.at("v"),
                                   j.at("h").get<std::map<std::string, std::string>>()});
    }
    return run;
  }

  // The group's committed offsets as the native CLI reads them: partition -> offset (-1: none).
  std::map<int, std::int64_t> cli_committed(const std::string& group) {
    auto r = run_program({cli(), "--bootstrap", cl.bootstrap(), "--json", "group", "offsets", group}, {}, 60s);
    EXPECT_EQ(r.status, 0) << r.err;
    std::map<int, std::int64_t> out;
    for (const auto& j : json_lines(r.out))
      if (j.value("topic", "") == kTopic)
        out[j.at("partition")] = j.at("committed").is_number() ? j.at("committed").get<std::int64_t>() : -1;
    return out;
  }

  static std::string key(int i) { return "key-" + std::to_string(i % 7); }
  static std::string value(int i) { return "message " + std::to_string(i); }
  static std::map<std::string, std::string> headers(int i) {
    return {{"seq", std::to_string(i)}, {"origin", "kafkajs"}, {"ü", "wert ✓"}};
  }

  // Index of the broker leading kTopic/partition by its own /metrics (-1 if none yet).
  int leader_of(int partition) {
    const std::string needle = "quorumq_partition_leader{topic=\"" + std::string(kTopic) + "\",partition=\"" +
                               std::to_string(partition) + "\"} 1";
    for (int i = 0; i < cl.size(); ++i) {
      if (!cl.broker(i).running()) continue;
      auto m = http_get(cl.broker(i).admin_port(), "/metrics");
      if (m && m->body.find(needle) != std::string::npos) return i;
    }
    return -1;
  }

  static constexpr const char* kTopic = "kjs";
  testsupport::LocalCluster cl{options()};
};

// The acknowledged offsets: per partition 0, 1, 2, ... with no gap and no offset twice.
void expect_dense_offsets(const std::vector<Seen>& sent, std::map<int, std::int64_t>& ends) {
  std::map<int, std::set<std::int64_t>> per;
  for (const auto& s : sent) {
    ASSERT_GE(s.p, 0);
    EXPECT_TRUE(per[s.p].insert(s.o).second) << "two messages acknowledged at " << s.p << "/" << s.o;
  }
  for (const auto& [p, offs] : per) {
    EXPECT_EQ(*offs.begin(), 0);
    EXPECT_EQ(*offs.rbegin(), static_cast<std::int64_t>(offs.size()) - 1) << "partition " << p;
    ends[p] = static_cast<std::int64_t>(offs.size());
  }
}

// What a consumer saw is what was sent at that partition/offset: key, value and headers.
void expect_matches_sent(const std::vector<Seen>& seen, const std::vector<Seen>& sent) {
  std::map<std::pair<int, std::int64_t>, const Seen*> at;
  for (const auto& s : sent) at[{s.p, s.o}] = &s;
  for (const auto& m : seen) {
    auto it = at.find({m.p, m.o});
    ASSERT_NE(it, at.end()) << "consumed " << m.p << "/" << m.o << ", which nobody acknowledged";
    EXPECT_EQ(m.k, it->second->k) << m.p << "/" << m.o;
    EXPECT_EQ(m.v, it->second->v) << m.p << "/" << m.o;
    EXPECT_EQ(m.h, it->second->h) << m.p << "/" << m.o;
  }
}

// Offsets a run saw on each partition, in the order it saw them.
std::map<int, std::vector<std::int64_t>> by_partition(const std::vector<Seen>& seen) {
  std::map<int, std::vector<std::int64_t>> out;
  for (const auto& m : seen) out[m.p].push_back(m.o);
  return out;
}

// `run` read each partition from `from` (0 if absent) to `to` (its end, or the last offset it
// saw if absent), one offset after the other: nothing skipped, nothing twice.
void expect_contiguous(const ConsumerRun& run, const std::map<int, std::int64_t>& from, const std::string& who) {
  for (const auto& [p, offs] : by_partition(run.messages)) {
    const std::int64_t first = from.contains(p) ? from.at(p) : 0;
    for (std::size_t n = 0; n < offs.size(); ++n)
      ASSERT_EQ(offs[n], first + static_cast<std::int64_t>(n)) << who << ", partition " << p << ", message " << n;
  }
}

TEST_F(KafkaJs, producesConsumesInAGroupCommitsAndAnotherProcessResumesAfterALeaderKill) {
  constexpr int kMessages = 300;
  const auto sent = produce(kMessages);
  ASSERT_EQ(sent.size(), static_cast<std::size_t>(kMessages));
  std::map<int, std::int64_t> ends;
  expect_dense_offsets(sent, ends);
  ASSERT_EQ(ends.size(), 3u) << "seven keys spread over the three partitions";

  // The native CLI reads what KafkaJS wrote, headers included.
  for (const auto& [p, end] : ends) {
    auto q = run_program({cli(), "--bootstrap", cl.bootstrap(), "consume", kTopic, "-p", std::to_string(p), "-e", "-f",
                          "%o %k=%v [%h]\n"},
                         {}, 60s);
    ASSERT_EQ(q.status, 0) << q.err;
    std::string want;  // in send order, which is offset order within a partition
    for (const auto& s : sent)
      if (s.p == p)
        want += std::to_string(s.o) + " " + s.k + "=" + s.v + " [seq=" + s.h.at("seq") + ",origin=kafkajs,ü=wert ✓]\n";
    EXPECT_EQ(q.out, want) << "partition " << p;
  }

  // The first consumer of the group reads 120 messages, commits each batch it processed, leaves.
  const auto first = consume(kafka_bootstrap(), "G", "120");
  ASSERT_EQ(first.status, 0) << first.err;
  ASSERT_EQ(first.messages.size(), 120u) << first.err;
  ASSERT_FALSE(first.committed.empty());
  expect_matches_sent(first.messages, sent);
  expect_contiguous(first, {}, "first consumer");
  // It committed exactly what it processed: one past the last message of each partition.
  for (const auto& [p, offs] : by_partition(first.messages)) EXPECT_EQ(first.committed.at(p), offs.back() + 1);
  // While it ran, KafkaJS's describeGroups saw it as the one member of a stable group.
  ASSERT_EQ(first.described.size(), 1u);
  ASSERT_EQ(first.joined.size(), 1u);
  const auto& g = first.described[0].at(0);
  EXPECT_EQ(g.at("groupId"), "G");
  EXPECT_EQ(g.at("state"), "Stable");
  EXPECT_EQ(g.at("protocolType"), "consumer");
  EXPECT_EQ(g.at("protocol"), "RoundRobinAssigner");
  ASSERT_EQ(g.at("members").size(), 1u);
  EXPECT_EQ(g.at("members")[0].at("memberId"), first.joined[0].at("memberId"));
  EXPECT_EQ(g.at("members")[0].at("clientId"), "quorumq-kafkajs-consume");
  EXPECT_EQ(first.joined[0].at("assignment").at(kTopic).size(), 3u);

  // Mixed protocols: the native CLI shows the offsets KafkaJS committed.
  std::map<int, std::int64_t> want_committed;
  for (const auto& [p, _] : ends) want_committed[p] = first.committed.contains(p) ? first.committed.at(p) : -1;
  EXPECT_EQ(cli_committed("G"), want_committed);

  // A broker crash: the leader of a partition the group committed on is kill -9ed, so that
  // partition's committed offset must come from the replicated state at its new leader.
  const int committed_partition = first.committed.begin()->first;
  int victim = -1;
  ASSERT_TRUE(wait_until([&] { return (victim = leader_of(committed_partition)) >= 0; }, 20s));
  cl.broker(victim).kill9();
  ASSERT_TRUE(wait_until([&] { const int l = leader_of(committed_partition); return l >= 0 && l != victim; }, 30s))
      << "no new leader for partition " << committed_partition;

  // A new consumer process of the group, through the two survivors, resumes at the commits and
  // reads up to the acknowledged ends (told, so that it waits for them rather than trusting a
  // new leader's first answer to ListOffsets).
  std::string until = "end:";
  for (const auto& [p, end] : ends) until += (until.size() > 4 ? "," : "") + std::to_string(p) + "=" + std::to_string(end);
  const auto second = consume(kafka_bootstrap(victim), "G", until);
  ASSERT_EQ(second.status, 0) << second.err;
  expect_matches_sent(second.messages, sent);
  std::map<int, std::int64_t> resume_at;
  for (const auto& [p, _] : ends) resume_at[p] = first.committed.contains(p) ? first.committed.at(p) : 0;
  expect_contiguous(second, resume_at, "second consumer");
  for (const auto& [p, end] : ends) {
    const auto offs = by_partition(second.messages)[p];
    EXPECT_EQ(resume_at[p] + static_cast<std::int64_t>(offs.size()), end) << "second consumer, partition " << p;
  }
  // Together: every message exactly once, and each key's messages in send order.
  EXPECT_EQ(first.messages.size() + second.messages.size(), static_cast<std::size_t>(kMessages));
  std::set<std::string> values;
  std::map<std::string, int> last_seq;
  for (const auto* run : {&first, &second})
    for (const auto& m : run->messages) {
      EXPECT_TRUE(values.insert(m.v).second) << m.v << " seen twice";
      const int seq = std::stoi(m.h.at("seq"));
      auto [it, fresh] = last_seq.try_emplace(m.k, seq);
      if (!fresh) {
        EXPECT_GT(seq, it->second) << "key " << m.k << ": message " << seq << " after " << it->second;
        it->second = seq;
      }
    }
  EXPECT_EQ(values.size(), static_cast<std::size_t>(kMessages));

  // The broker comes back; the native CLI (through any broker) shows the group at the end.
  cl.broker(victim).start(30s);
  std::map<int, std::int64_t> at_end;
  ASSERT_TRUE(wait_until([&] { return (at_end = cli_committed("G")) == ends; }, 30s))
      << "the CLI shows other committed offsets than KafkaJS committed";
}

TEST_F(KafkaJs, consumerKilledMidBatch_theNextOneRedeliversOnlyWhatWasNotCommitted) {
  constexpr int kMessages = 200;
  const auto sent = produce(kMessages);
  std::map<int, std::int64_t> ends;
  expect_dense_offsets(sent, ends);

  // It SIGKILLs itself after printing message number crash_at, before committing that batch.
  // crash_at is past the largest partition, so it has committed at least one batch by then.
  std::int64_t largest = 0;
  for (const auto& [p, end] : ends) largest = std::max(largest, end);
  const std::int64_t crash_at = largest + (kMessages - largest) / 2;
  ASSERT_LT(crash_at, kMessages);
  const auto dead = consume(kafka_bootstrap(), "K", std::to_string(crash_at), /*crash=*/true);
  ASSERT_EQ(dead.status, 128 + 9) << dead.err;
  ASSERT_EQ(dead.messages.size(), static_cast<std::size_t>(crash_at));
  ASSERT_FALSE(dead.committed.empty());
  expect_matches_sent(dead.messages, sent);
  expect_contiguous(dead, {}, "killed consumer");
  std::map<int, std::int64_t> want_committed;
  for (const auto& [p, _] : ends) want_committed[p] = dead.committed.contains(p) ? dead.committed.at(p) : -1;
  EXPECT_EQ(cli_committed("K"), want_committed);

  // The next consumer waits for the dead member's session to expire (10 s), then resumes at the
  // commits and reads to the end offsets KafkaJS's fetchTopicOffsets (ListOffsets) reports:
  // what the dead one processed without committing comes again, nothing else does.
  const auto next = consume(kafka_bootstrap(), "K", "end");
  ASSERT_EQ(next.status, 0) << next.err;
  expect_matches_sent(next.messages, sent);
  std::map<int, std::int64_t> resume_at;
  for (const auto& [p, _] : ends) resume_at[p] = dead.committed.contains(p) ? dead.committed.at(p) : 0;
  expect_contiguous(next, resume_at, "next consumer");
  std::size_t redelivered = 0;
  for (const auto& [p, offs] : by_partition(dead.messages)) {
    EXPECT_LE(offs.front(), resume_at[p]);
    redelivered += static_cast<std::size_t>(offs.back() + 1 - resume_at[p]);
  }
  EXPECT_GT(redelivered, 0u) << "the killed consumer died with processed, uncommitted messages";
  std::map<std::string, int> times_seen;
  for (const auto* run : {&dead, &next})
    for (const auto& m : run->messages) ++times_seen[m.v];
  std::size_t twice = 0;
  for (const auto& [v, n] : times_seen) {
    EXPECT_LE(n, 2) << v;
    if (n == 2) ++twice;
  }
  EXPECT_EQ(times_seen.size(), static_cast<std::size_t>(kMessages)) << "every message seen";
  EXPECT_EQ(twice, redelivered) << "only the uncommitted ones twice";
  EXPECT_EQ(cli_committed("K"), ends);
}

TEST_F(KafkaJs, adminCreatesListsDescribesAndDeletesTopicsTheNativeCliSees) {
  auto r = node({"admin", kafka_bootstrap(), "made-by-kafkajs"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::map<std::string, json> got;
  for (const auto& j : json_lines(r.out)) got[j.begin().key()] = j.begin().value();
  EXPECT_EQ(got["created"], true);
  EXPECT_EQ(got["createdAgain"], false) << "createTopics of an existing topic answers false (TOPIC_ALREADY_EXISTS)";
  EXPECT_EQ(got["topics"], json::array({kTopic, "made-by-kafkajs"}));
  // fetchTopicMetadata: three partitions of three replicas, each with a leader among them.
  ASSERT_EQ(got["metadata"].size(), 1u);
  const auto& parts = got["metadata"][0].at("partitions");
  ASSERT_EQ(parts.size(), 3u);
  for (const auto& p : parts) {
    EXPECT_EQ(p.at("partitionErrorCode"), 0);
    auto replicas = p.at("replicas").get<std::vector<int>>();
    std::sort(replicas.begin(), replicas.end());
    EXPECT_EQ(replicas, (std::vector<int>{1, 2, 3}));
    EXPECT_TRUE(std::find(replicas.begin(), replicas.end(), p.at("leader").get<int>()) != replicas.end()) << p;
  }
  // describeCluster: every broker at its Kafka port, a controller among them.
  const auto& brokers = got["cluster"].at("brokers");
  ASSERT_EQ(brokers.size(), 3u);
  std::set<int> ports;
  for (const auto& b : brokers) ports.insert(b.at("port").get<int>());
  EXPECT_EQ(ports, (std::set<int>{cl.kafka_port(0), cl.kafka_port(1), cl.kafka_port(2)}));
  EXPECT_GE(got["cluster"].at("controller").get<int>(), 1);
  EXPECT_LE(got["cluster"].at("controller").get<int>(), 3);
  // The native CLI sees the topic KafkaJS created, as KafkaJS described it.
  auto desc = run_program({cli(), "--bootstrap", cl.bootstrap(), "--json", "topic", "describe", "made-by-kafkajs"}, {}, 60s);
  ASSERT_EQ(desc.status, 0) << desc.err;
  const auto native = json::parse(desc.out);
  ASSERT_EQ(native.at("partitions").size(), 3u) << desc.out;
  for (const auto& p : native.at("partitions")) {
    const int id = p.at("partition");
    const auto it = std::find_if(parts.begin(), parts.end(), [&](const json& k) { return k.at("partitionId") == id; });
    ASSERT_NE(it, parts.end()) << desc.out;
    EXPECT_EQ(p.at("replicas"), it->at("replicas")) << "partition " << id << ": native and KafkaJS replica lists differ";
  }
  // deleteTopics: gone for KafkaJS and for the native CLI.
  auto del = node({"delete", kafka_bootstrap(), "made-by-kafkajs"});
  ASSERT_EQ(del.status, 0) << del.err;
  const auto after = json_lines(del.out);
  ASSERT_EQ(after.size(), 2u) << del.out;
  EXPECT_EQ(after[0].at("deleted"), "made-by-kafkajs");
  EXPECT_EQ(after[1].at("topics"), json::array({kTopic}));
  auto list = run_program({cli(), "--bootstrap", cl.bootstrap(), "topic", "list"}, {}, 60s);
  ASSERT_EQ(list.status, 0) << list.err;
  EXPECT_EQ(list.out.find("made-by-kafkajs"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find(kTopic), std::string::npos) << list.out;
  // describeGroups of a group nobody has used: Dead, no members, as Kafka answers.
  auto d = node({"describe", kafka_bootstrap(), "nobody"});
  ASSERT_EQ(d.status, 0) << d.err;
  const auto lines = json_lines(d.out);
  ASSERT_EQ(lines.size(), 1u);
  const auto& nobody = lines[0].at("described").at(0);
  EXPECT_EQ(nobody.at("state"), "Dead");
  EXPECT_EQ(nobody.at("errorCode"), 0);
  EXPECT_TRUE(nobody.at("members").empty());
}

// KafkaJS's admin resetOffsets (earliest, then latest) on a group that has read a topic: KafkaJS
// commits the sentinels -2 / -1; the broker resolves them at each partition's leader to the
// log's start and end, which fetchOffsets, the native CLI and the group's next consumer all see.
TEST_F(KafkaJs, adminResetOffsetsToEarliestAndLatest_theGroupRereadsOrSkips) {
  const auto sent = produce(60);
  std::map<int, std::int64_t> ends;
  expect_dense_offsets(sent, ends);
  std::string until = "end:";
  for (const auto& [p, end] : ends) until += (until.size() > 4 ? "," : "") + std::to_string(p) + "=" + std::to_string(end);
  const auto first = consume(kafka_bootstrap(), "R", until);
  ASSERT_EQ(first.status, 0) << first.err;
  ASSERT_EQ(first.messages.size(), 60u);
  EXPECT_EQ(cli_committed("R"), ends);

  auto r = node({"reset", kafka_bootstrap(), kTopic, "R", "earliest"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::map<int, std::int64_t> zero;
  for (const auto& [p, _] : ends) zero[p] = 0;
  auto fetched = [](const RunResult& res) {
    std::map<int, std::int64_t> out;
    for (const auto& j : json_lines(res.out))
      for (const auto& o : j.at("offsets")) out[o.at("partition")] = std::stoll(o.at("offset").get<std::string>());
    return out;
  };
  EXPECT_EQ(fetched(r), zero) << r.out;
  EXPECT_EQ(cli_committed("R"), zero);
  const auto again = consume(kafka_bootstrap(), "R", until);
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(again.messages.size(), 60u) << "the whole topic again after a reset to earliest";

  r = node({"reset", kafka_bootstrap(), kTopic, "R", "latest"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(fetched(r), ends) << r.out;
  EXPECT_EQ(cli_committed("R"), ends);
}

}  // namespace
}  // namespace quorumq::test
