// The Kafka listener (issue 17) with clients nobody here wrote: kcat (librdkafka) and
// kafka-python list the cluster, produce and consume through --kafka-listen of three real
// brokers, and what they write is what quorumq's own CLI reads (and the other way round);
// hostile bytes on the Kafka port close that connection and nothing else; consumer groups of
// kcat, kafka-python and confluent-kafka commit, resume, survive a killed member and a killed
// coordinator; librdkafka's AdminClient creates, describes and deletes topics.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <tuple>

#include "cluster.h"
#include "load.h"
#include "quorumq/testsupport/local_cluster.h"
#include "raw_client.h"

namespace quorumq::test {
namespace {

// Three brokers, each with a Kafka listener; a topic of 3 partitions x 3 replicas.
class KafkaListener : public ::testing::Test {
 protected:
  static testsupport::ClusterOptions options() {
    testsupport::ClusterOptions o;
    o.brokers = 3;
    o.broker_bin = broker_binary();
    o.kafka = true;
    return o;
  }
  void SetUp() override {
    auto r = cl.start(90s);
    ASSERT_TRUE(r) << r.error();
    create_topic(cl.bootstrap(), "kt", 3, 3);
  }
  // kcat -L until every partition has a leader and all three brokers are listed (leaders are
  // elected and Kafka addresses learned in the peer handshakes within a few hundred ms).
  std::string metadata_when_settled(const std::string& bootstrap) {
    std::string out;
    wait_until([&] {
      auto r = run_program({"kcat", "-b", bootstrap, "-L", "-t", "kt", "-m", "5"}, {}, 20s);
      out = r.out + r.err;
      return r.status == 0 && out.find(" 3 brokers:") != std::string::npos &&
             std::regex_search(out, std::regex("partition 2, leader [123],")) &&
             std::regex_search(out, std::regex("partition 0, leader [123],")) &&
             std::regex_search(out, std::regex("partition 1, leader [123],"));
    }, 30s);
    return out;
  }
  std::string kafka_address(int i) const { return "127.0.0.1:" + std::to_string(cl.kafka_port(i)); }

  testsupport::LocalCluster cl{options()};
};

TEST_F(KafkaListener, kcatListsEveryBrokerTopicAndLeaderFromAnyBroker) {
  for (int i = 0; i < 3; ++i) {
    const std::string out = metadata_when_settled(kafka_address(i));
    SCOPED_TRACE(out);
    // Every broker at its Kafka port (learned from the peer handshakes), one the controller.
    for (int b = 0; b < 3; ++b)
      EXPECT_NE(out.find("broker " + std::to_string(b + 1) + " at " + kafka_address(b)), std::string::npos);
    EXPECT_NE(out.find("(controller)"), std::string::npos);
    EXPECT_NE(out.find("topic \"kt\" with 3 partitions:"), std::string::npos);
    for (int p = 0; p < 3; ++p)
      EXPECT_TRUE(std::regex_search(out, std::regex("partition " + std::to_string(p) +
                                                    ", leader [123], replicas: [123],[123],[123], isrs: ")));
  }
  // The leaders kcat reports are the ones the brokers' own /metrics report.
  const std::string out = metadata_when_settled(kafka_address(0));
  for (int p = 0; p < 3; ++p) {
    std::smatch m;
    ASSERT_TRUE(std::regex_search(out, m, std::regex("partition " + std::to_string(p) + ", leader ([123]),")));
    const int leader = std::stoi(m[1]);
    const std::string needle = "quorumq_partition_leader{topic=\"kt\",partition=\"" + std::to_string(p) + "\"} 1";
    auto met = http_get(cl.broker(leader - 1).admin_port(), "/metrics");
    ASSERT_TRUE(met);
    EXPECT_NE(met->body.find(needle), std::string::npos) << "kcat says broker " << leader << " leads partition " << p;
  }
  // An unknown topic is reported as such, not invented.
  auto r = run_program({"kcat", "-b", kafka_address(1), "-L", "-t", "no-such-topic", "-m", "5"}, {}, 20s);
  EXPECT_NE((r.out + r.err).find("Broker: Unknown topic or partition"), std::string::npos) << r.out << r.err;
}

TEST_F(KafkaListener, kafkaPythonProbesVersionsAndReadsMetadata) {
  // kafka-python 2.0.2 sends ApiVersions v0 and Metadata v0 back to back while it probes.
  (void)metadata_when_settled(kafka_address(0));
  const std::string script =
      "from kafka import KafkaConsumer\n"
      "c = KafkaConsumer(bootstrap_servers='" + kafka_address(2) + "', api_version_auto_timeout_ms=10000)\n"
      "print(sorted(c.partitions_for_topic('kt')))\n"
      "print('kt' in c.topics())\n";
  auto r = run_program({"/usr/bin/python3", "-c", script}, {}, 60s);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("[0, 1, 2]\nTrue"), std::string::npos) << r.out << r.err;
}

// One Kafka request frame: size, api key, version, correlation id, client id, body.
std::vector<std::uint8_t> kafka_request(std::int16_t key, std::int16_t version, std::int32_t corr,
                                        std::vector<std::uint8_t> body, bool flexible_header = false) {
  std::vector<std::uint8_t> b;
  auto be = [&b](std::uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  };
  be(0, 4);
  be(static_cast<std::uint16_t>(key), 2);
  be(static_cast<std::uint16_t>(version), 2);
  be(static_cast<std::uint32_t>(corr), 4);
  be(4, 2);
  for (char c : std::string("test")) b.push_back(static_cast<std::uint8_t>(c));
  if (flexible_header) b.push_back(0);  // no tagged fields
  b.insert(b.end(), body.begin(), body.end());
  const auto size = static_cast<std::uint32_t>(b.size() - 4);
  for (int i = 0; i < 4; ++i) b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(size >> (8 * (3 - i)));
  return b;
}

std::optional<std::vector<std::uint8_t>> kafka_response(RawClient& c) {
  auto size = c.read_exact(4);
  if (!size) return std::nullopt;
  const std::uint32_t n = (std::uint32_t{(*size)[0]} << 24) | (std::uint32_t{(*size)[1]} << 16) |
                          (std::uint32_t{(*size)[2]} << 8) | (*size)[3];
  return c.read_exact(n);
}

TEST_F(KafkaListener, apiVersionsAnswersEachVersionAndTellsNewerClientsTheRange) {
  // v3: flexible request (header v2), response header v0, compact array.
  {
    RawClient c(cl.kafka_port(0));
    ASSERT_TRUE(c.send_bytes(kafka_request(18, 3, 7, {5, 'q', 'q', 'q', 'q', 2, '1', 0}, true)));
    auto r = kafka_response(c);
    ASSERT_TRUE(r);
    ASSERT_GE(r->size(), 7u);
    EXPECT_EQ((*r)[3], 7);  // correlation id
    EXPECT_EQ((*r)[4], 0);  // error code 0
    EXPECT_EQ((*r)[5], 0);
    EXPECT_EQ((*r)[6], 21);  // compact array: 20 apis (18 + SaslHandshake, SaslAuthenticate)
  }
  // v9 (a client newer than us): UNSUPPORTED_VERSION with a v0 body listing ApiVersions 0-3.
  {
    RawClient c(cl.kafka_port(1));
    ASSERT_TRUE(c.send_bytes(kafka_request(18, 9, 8, {0, 1, 2})));
    auto r = kafka_response(c);
    ASSERT_TRUE(r);
    const std::vector<std::uint8_t> want{0, 0, 0, 8, 0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, 3};
    EXPECT_EQ(*r, want);
  }
}

TEST_F(KafkaListener, hostileBytesCloseOnlyTheirConnection) {
  (void)metadata_when_settled(kafka_address(0));
  const std::vector<std::vector<std::uint8_t>> attacks = {
      {0x7F, 0xFF, 0xFF, 0xFF, 1, 2, 3},                  // a 2 GiB request announced
      {0xFF, 0xFF, 0xFF, 0xFF},                           // a negative size
      {0, 0, 0, 2, 0, 3},                                 // shorter than a header
      kafka_request(3, 1, 1, {0x7F, 0xFF, 0xFF, 0xFF}),   // Metadata naming 2^31-1 topics
      kafka_request(3, 1, 1, {0, 0, 0, 1, 0x7F, 0x00}),   // a topic name running past the end
      kafka_request(3, 99, 1, {}),                        // a Metadata version nobody speaks
      kafka_request(0, 7, 1, {1, 2, 3}),                  // a Produce cut short
      kafka_request(-5, 0, 1, {}),                        // no such api
  };
  for (std::size_t i = 0; i < attacks.size(); ++i) {
    RawClient bad(cl.kafka_port(0));
    ASSERT_TRUE(bad.connected());
    ASSERT_TRUE(bad.send_bytes(attacks[i]));
    EXPECT_TRUE(bad.wait_closed(10s)) << "attack " << i << " left its connection open";
  }
  // A silent connection that announced a request and never sent it costs nothing meanwhile.
  RawClient slow(cl.kafka_port(0));
  ASSERT_TRUE(slow.send_bytes(std::vector<std::uint8_t>{0, 0, 1, 0, 0}));
  // Every broker still serves Kafka and native clients.
  const std::string out = metadata_when_settled(kafka_address(0));
  EXPECT_NE(out.find(" 3 brokers:"), std::string::npos) << out;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(cl.broker(i).running());
  create_topic(cl.bootstrap(), "after-attacks", 1, 3);
}

std::string cli() { return std::filesystem::path(broker_binary()).parent_path().parent_path() / "client/cli/quorumq"; }

TEST_F(KafkaListener, kcatProducesKeysAndHeaders_kcatAndTheQuorumqCliReadThem) {
  (void)metadata_when_settled(kafka_address(0));
  // librdkafka's default acks is all (-1): the quorum.
  auto p = run_program({"kcat", "-b", kafka_address(1), "-P", "-t", "kt", "-p", "1", "-K:", "-H", "trace=abc", "-H",
                        "n=1"},
                       "k1:first\nk2:second\nk3:third\n", 60s);
  ASSERT_EQ(p.status, 0) << p.err;
  auto c = run_program({"kcat", "-b", kafka_address(2), "-C", "-t", "kt", "-p", "1", "-o", "beginning", "-e", "-f",
                        "%o %k=%s [%h]\n"},
                       {}, 60s);
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_EQ(c.out, "0 k1=first [trace=abc,n=1]\n1 k2=second [trace=abc,n=1]\n2 k3=third [trace=abc,n=1]\n");
  auto q = run_program({cli(), "--bootstrap", cl.bootstrap(), "consume", "kt", "-p", "1", "-e", "-f", "%o %k=%v [%h]\n"},
                       {}, 60s);
  ASSERT_EQ(q.status, 0) << q.err;
  EXPECT_EQ(q.out, c.out) << "the native CLI reads what kcat wrote, keys and headers included";
}

TEST_F(KafkaListener, quorumqCliProduces_kcatReadsFromAnOffset) {
  (void)metadata_when_settled(kafka_address(0));
  auto p = run_program({cli(), "--bootstrap", cl.bootstrap(), "produce", "kt", "--partition", "2", "-k", "key"},
                       "a\nb\nc\nd\n", 60s);
  ASSERT_EQ(p.status, 0) << p.err;
  auto c = run_program({"kcat", "-b", kafka_address(0), "-C", "-t", "kt", "-p", "2", "-o", "1", "-e", "-f", "%o %k=%s\n"},
                       {}, 60s);
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_EQ(c.out, "1 key=b\n2 key=c\n3 key=d\n");
  // ListOffsets: the end of the partition, as kcat's query mode asks it.
  auto q = run_program({"kcat", "-b", kafka_address(0), "-Q", "-t", "kt:2:-1"}, {}, 60s);
  EXPECT_NE(q.out.find("kt [2] offset 4"), std::string::npos) << q.out << q.err;
}

// kafka-python compresses whatever the broker's ApiVersions say (zstd from Kafka 2.1 on, which it
// infers from the versions quorumq lists); its snappy is the xerial framing Java clients use.
TEST_F(KafkaListener, kafkaPythonProducesAndConsumes_plainAndEachCodec) {
  (void)metadata_when_settled(kafka_address(0));
  const std::string script =
      "from kafka import KafkaProducer, KafkaConsumer, TopicPartition\n"
      "b = '" + kafka_address(0) + "," + kafka_address(1) + "'\n"
      "p = KafkaProducer(bootstrap_servers=b, acks='all')\n"
      "fs = [p.send('kt', key=b'k%d' % i, value=b'v%d' % i, partition=0, headers=[('h', b'x')]) for i in range(200)]\n"
      "p.flush()\n"
      "print('offsets', [f.get(30).offset for f in fs] == list(range(200)))\n"
      "want = [(i, b'k%d' % i, b'v%d' % i, [('h', b'x')]) for i in range(200)]\n"
      "for codec in ('gzip', 'snappy', 'lz4', 'zstd'):\n"
      "    g = KafkaProducer(bootstrap_servers=b, acks='all', compression_type=codec, retries=0, linger_ms=50)\n"
      "    vals = [(codec + '-%d ' % i).encode() * 20 for i in range(50)]\n"
      "    fs = [g.send('kt', key=codec.encode(), value=v, partition=0) for v in vals]\n"
      "    g.flush()\n"
      "    offs = [f.get(30).offset for f in fs]\n"
      "    print(codec, offs == list(range(len(want), len(want) + 50)))\n"
      "    want += [(o, codec.encode(), v, []) for o, v in zip(offs, vals)]\n"
      "    g.close()\n"
      "c = KafkaConsumer(bootstrap_servers=b, group_id=None, auto_offset_reset='earliest', consumer_timeout_ms=5000)\n"
      "c.assign([TopicPartition('kt', 0)])\n"
      "c.seek_to_beginning()\n"
      "got = [(m.offset, m.key, m.value, m.headers) for m in c]\n"
      "print('consumed', got == want, len(got))\n";
  auto r = run_program({"/usr/bin/python3", "-c", script}, {}, 120s);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "offsets True\ngzip True\nsnappy True\nlz4 True\nzstd True\nconsumed True 400\n") << r.err;
}

// kcat (librdkafka 2.0.2) producing with each codec (-z): librdkafka names the codec of every
// Produce MessageSet it sends (-d msg), so the test knows what went over the wire compressed and
// not quietly plain; kcat reads every message back identically. (librdkafka before 2.11.1
// compresses gzip and snappy only for a broker listing Produce v0, and lz4 only for one listing
// FindCoordinator v0: both are listed.)
TEST_F(KafkaListener, kcatProducesWithEachCodec_kcatReadsEveryMessageBack) {
  (void)metadata_when_settled(kafka_address(0));
  std::string want;
  int offset = 0;
  for (const std::string codec : {"gzip", "snappy", "lz4", "zstd"}) {
    std::string in;
    for (int i = 0; i < 100; ++i) {
      std::string value;
      for (int k = 0; k < 10; ++k) value += codec + " value " + std::to_string(i) + ", ";
      const std::string key = codec + "-" + std::to_string(i);
      in += key + ":" + value + "\n";
      want += std::to_string(offset++) + " " + key + "=" + value + "\n";
    }
    auto p = run_program({"kcat", "-b", kafka_address(1), "-P", "-t", "kt", "-p", "0", "-K:", "-z", codec, "-d", "msg"},
                         in, 60s);
    ASSERT_EQ(p.status, 0) << codec << ": " << p.err;
    const std::string& sent_as = codec;
    std::istringstream lines(p.err);
    int sets = 0;
    for (std::string line; std::getline(lines, line);) {
      if (line.find("Produce MessageSet with") == std::string::npos) continue;
      ++sets;
      EXPECT_TRUE(line.ends_with(", " + sent_as + ")")) << codec << " batch sent as: " << line;
    }
    EXPECT_GT(sets, 0) << codec << ": no Produce MessageSet in librdkafka's debug output";
  }
  auto c = run_program({"kcat", "-b", kafka_address(2), "-C", "-t", "kt", "-p", "0", "-o", "beginning", "-e", "-f",
                        "%o %k=%s\n"},
                       {}, 60s);
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_EQ(c.out, want);
}

// librdkafka's idempotent producer (confluent-kafka, enable.idempotence, acks=all) keeps
// producing while the leader of a partition is kill -9ed: every acknowledged message is stored
// exactly once, in send order per partition, and nothing was written twice by its retries.
TEST_F(KafkaListener, idempotentConfluentProducerAcrossLeaderKill_everyAckedMessageOnce) {
  (void)metadata_when_settled(kafka_address(0));
  int victim = -1;
  ASSERT_TRUE(wait_until([&] {
    for (int i = 0; i < 3; ++i) {
      auto m = http_get(cl.broker(i).admin_port(), "/metrics");
      if (m && m->body.find("quorumq_partition_leader{topic=\"kt\",partition=\"0\"} 1") != std::string::npos)
        return (victim = i) >= 0;
    }
    return false;
  }, 20s));
  const auto acked_file = cl.dir() / "acked.txt";
  std::string boot;
  for (int i = 0; i < 3; ++i) boot += (i ? "," : "") + kafka_address(i);
  const std::string script =
      "import os, signal, sys\n"
      "from confluent_kafka import Producer\n"
      "p = Producer({'bootstrap.servers': '" + boot + "', 'enable.idempotence': True, 'acks': 'all',\n"
      "              'linger.ms': 2, 'message.timeout.ms': 60000})\n"
      "acked, failed = [], []\n"
      "def cb(err, msg):\n"
      "    (failed if err else acked).append((msg.partition(), msg.offset() if not err else -1, msg.value().decode()))\n"
      "killed = False\n"
      "for i in range(20000):\n"
      "    p.produce('kt', key=str(i % 30), value='m%d' % i, on_delivery=cb)\n"
      "    p.poll(0)\n"
      "    if not killed and len(acked) >= 3000:\n"
      "        os.kill(" + std::to_string(cl.broker(victim).pid()) + ", signal.SIGKILL)\n"
      "        killed = True\n"
      "    if i % 1000 == 999: p.flush(30)\n"
      "p.flush(120)\n"
      "with open('" + acked_file.string() + "', 'w') as f:\n"
      "    for a in acked: f.write('%d %d %s\\n' % a)\n"
      "print('acked', len(acked), 'failed', len(failed), 'killed', killed)\n";
  auto r = run_program({"/usr/bin/python3", "-c", script}, {}, 240s);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  std::printf("confluent-kafka: %s", r.out.c_str());
  ASSERT_NE(r.out.find("killed True"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("failed 0"), std::string::npos) << r.out << " (an idempotent producer retries until acknowledged)";
  // What was acknowledged, per partition in acknowledgement order.
  std::map<int, std::vector<std::pair<std::int64_t, std::string>>> acked;
  {
    std::ifstream f(acked_file);
    int p;
    std::int64_t o;
    std::string v;
    while (f >> p >> o >> v) acked[p].push_back({o, v});
  }
  ASSERT_FALSE(acked.empty());
  // What is stored, read back through a surviving broker's Kafka listener.
  const int reader = (victim + 1) % 3;
  std::map<int, std::vector<std::pair<std::int64_t, std::string>>> stored;
  for (int p = 0; p < 3; ++p) {
    auto c = run_program({"kcat", "-b", kafka_address(reader), "-C", "-t", "kt", "-p", std::to_string(p), "-o",
                          "beginning", "-e", "-f", "%o %s\n"},
                         {}, 120s);
    ASSERT_EQ(c.status, 0) << c.err;
    std::istringstream in(c.out);
    std::int64_t o;
    std::string v;
    while (in >> o >> v) stored[p].push_back({o, v});
  }
  std::size_t n_acked = 0;
  for (const auto& [p, list] : acked) {
    n_acked += list.size();
    std::map<std::string, std::int64_t> at;
    for (const auto& [o, v] : stored[p]) EXPECT_TRUE(at.emplace(v, o).second) << v << " stored twice in partition " << p;
    for (const auto& [o, v] : list) {
      auto it = at.find(v);
      ASSERT_NE(it, at.end()) << "acknowledged " << v << " missing from partition " << p;
      EXPECT_EQ(it->second, o) << v << " acknowledged at one offset, stored at another";
    }
    // Send order is kept: values of one key rise with their offsets.
    std::map<std::string, int> last;  // key (i % 30) -> last i
    for (const auto& [o, v] : stored[p]) {
      const int i = std::stoi(v.substr(1));
      auto& l = last.try_emplace(std::to_string(i % 30), -1).first->second;
      EXPECT_GT(i, l) << "partition " << p << " stores " << v << " after m" << l;
      l = i;
    }
  }
  EXPECT_EQ(n_acked, 20000u);
}

// Committed offsets of `group` per partition of `topic`, as the native CLI reads them
// (`quorumq group offsets`): partition -> committed offset (-1: none).
std::map<int, std::int64_t> committed_offsets(const std::string& bootstrap, const std::string& group,
                                              const std::string& topic) {
  std::map<int, std::int64_t> out;
  auto r = run_program({cli(), "--bootstrap", bootstrap, "group", "offsets", group}, {}, 60s);
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream l(line);
    std::string t, committed;
    int p;
    if (l >> t >> p >> committed && t == topic) out[p] = committed == "-" ? -1 : std::stoll(committed);
  }
  return out;
}

// kcat in a consumer group (-G): the group is coordinated by the controller's leader, every
// message is read once, the commits kcat makes land in each partition's log where the native
// CLI reads them, and a second run of the group resumes after them.
TEST_F(KafkaListener, kcatConsumesInAGroup_commitsShowInTheQuorumqCli_andTheGroupResumes) {
  (void)metadata_when_settled(kafka_address(0));
  std::string input;
  for (int i = 0; i < 60; ++i) input += "k" + std::to_string(i) + ":v" + std::to_string(i) + "\n";
  auto p = run_program({"kcat", "-b", kafka_address(0), "-P", "-t", "kt", "-K:"}, input, 60s);
  ASSERT_EQ(p.status, 0) << p.err;
  auto consume = [&](int broker) {
    // auto.offset.reset for partitions the group never committed (kcat's -o would override
    // the committed offsets too).
    auto c = run_program({"kcat", "-b", kafka_address(broker), "-G", "kg", "-X", "auto.offset.reset=earliest", "-e",
                          "-q", "-f", "%p %o %s\n", "kt"},
                         {}, 90s);
    EXPECT_EQ(c.status, 0) << c.err;
    std::set<std::string> got;
    std::istringstream in(c.out);
    std::string part, off, v;
    while (in >> part >> off >> v) EXPECT_TRUE(got.insert(v).second) << v << " read twice";
    return got;
  };
  const auto first = consume(1);
  EXPECT_EQ(first.size(), 60u);
  // kcat commits what it consumed when it leaves: the native CLI sees those offsets.
  std::map<int, std::int64_t> latest;
  for (int part = 0; part < 3; ++part) {
    auto q = run_program({"kcat", "-b", kafka_address(0), "-Q", "-t", "kt:" + std::to_string(part) + ":-1"}, {}, 30s);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(q.out, m, std::regex("offset ([0-9]+)"))) << q.out << q.err;
    latest[part] = std::stoll(m[1]);
  }
  std::map<int, std::int64_t> committed;
  EXPECT_TRUE(wait_until([&] { return (committed = committed_offsets(cl.bootstrap(), "kg", "kt")) == latest; }, 30s))
      << "committed " << ::testing::PrintToString(committed) << " latest " << ::testing::PrintToString(latest);
  // Ten more; the group's next run reads exactly those.
  std::string more;
  for (int i = 60; i < 70; ++i) more += "k" + std::to_string(i) + ":v" + std::to_string(i) + "\n";
  p = run_program({"kcat", "-b", kafka_address(2), "-P", "-t", "kt", "-K:"}, more, 60s);
  ASSERT_EQ(p.status, 0) << p.err;
  const auto second = consume(2);
  std::set<std::string> want;
  for (int i = 60; i < 70; ++i) want.insert("v" + std::to_string(i));
  EXPECT_EQ(second, want);
}

// kafka-python: a consumer in a group reads part of a topic, commits and closes; a new process
// of the same group resumes exactly after the commit. A native consumer cannot join the Kafka
// group while it has members (a group is one kind or the other).
TEST_F(KafkaListener, kafkaPythonGroupCommitsAndANewProcessResumes) {
  (void)metadata_when_settled(kafka_address(0));
  const std::string b = kafka_address(0) + "," + kafka_address(2);
  const std::string produce =
      "from kafka import KafkaProducer\n"
      "p = KafkaProducer(bootstrap_servers='" + b + "', acks='all')\n"
      "for i in range(90): p.send('kt', key=b'k%d' % i, value=b'v%d' % i)\n"
      "p.flush()\n";
  auto r = run_program({"/usr/bin/python3", "-c", produce}, {}, 60s);
  ASSERT_EQ(r.status, 0) << r.err;
  // Reads `n` messages (or until idle), commits what it returned, prints the values.
  auto consume = [&](int n) {
    const std::string script =
        "from kafka import KafkaConsumer\n"
        "c = KafkaConsumer('kt', bootstrap_servers='" + b + "', group_id='pyg', auto_offset_reset='earliest',\n"
        "                  enable_auto_commit=False, consumer_timeout_ms=8000)\n"
        "got = []\n"
        "for m in c:\n"
        "    got.append(m.value.decode())\n"
        "    if len(got) == " + std::to_string(n) + ": break\n"
        "c.commit()\n"
        "c.close()\n"
        "print(' '.join(got))\n";
    auto res = run_program({"/usr/bin/python3", "-c", script}, {}, 120s);
    EXPECT_EQ(res.status, 0) << res.err;
    std::vector<std::string> got;
    std::istringstream in(res.out);
    std::string v;
    while (in >> v) got.push_back(v);
    return got;
  };
  const auto first = consume(40);
  ASSERT_EQ(first.size(), 40u);
  const auto second = consume(1000);
  std::set<std::string> all(first.begin(), first.end());
  for (const auto& v : second) EXPECT_TRUE(all.insert(v).second) << v << " read by both processes";
  EXPECT_EQ(all.size(), 90u) << "every message read once across the two processes";
  std::int64_t sum = 0;
  for (const auto& [part, off] : committed_offsets(cl.bootstrap(), "pyg", "kt")) sum += std::max<std::int64_t>(off, 0);
  EXPECT_EQ(sum, 90) << "the commits are in the partitions' logs, where the native CLI reads them";
}

// The confluent-kafka group tests' Python. A consumer process (argv: its output file, the
// brokers) of `group` on `topic`, committing each message after writing "partition offset value".
std::string confluent_consumer(const std::string& group, const std::string& topic, const std::string& config) {
  return R"PY(
import sys
from confluent_kafka import Consumer, KafkaException
name, boot = sys.argv[1], sys.argv[2]
c = Consumer({'bootstrap.servers': boot, 'group.id': ')PY" + group + R"PY(', 'auto.offset.reset': 'earliest',
              'enable.auto.commit': False, 'heartbeat.interval.ms': 500, )PY" + config + R"PY(})
c.subscribe([')PY" + topic + R"PY('])
out = open(name, 'a', buffering=1)
failed = open(name + '.failed', 'a', buffering=1)
while True:
    m = c.poll(0.2)
    if m is None or m.error():
        continue
    out.write('%d %d %s\n' % (m.partition(), m.offset(), m.value().decode()))
    try:
        c.commit(message=m, asynchronous=False)
    except KafkaException as e:  # e.g. REBALANCE_IN_PROGRESS while a rebalance completes, as in Kafka
        failed.write('%d %d\n' % (m.partition(), m.offset()))
        sys.stderr.write('commit failed: %s\n' % e)
)PY";
}
// The driver's start (argv: brokers, a directory, the consumer script, ...): produce(lo, hi)
// sends m<lo>..m<hi-1> to `topic` with acks=all; spawn(n) starts n consumers writing
// <dir>/c<i>.txt; lines(f) reads one's output; wait(cond, secs) polls a condition.
std::string confluent_driver(const std::string& topic) {
  return R"PY(
import os, signal, subprocess, sys, time
from confluent_kafka import Producer
boot, d, consumer = sys.argv[1], sys.argv[2], sys.argv[3]
p = Producer({'bootstrap.servers': boot, 'acks': 'all', 'linger.ms': 5, 'message.timeout.ms': 60000})
def produce(lo, hi):
    for i in range(lo, hi):
        p.produce(')PY" + topic + R"PY(', key=str(i), value='m%d' % i)
        p.poll(0)
    p.flush(90)
def spawn(n):
    files = [os.path.join(d, 'c%d.txt' % i) for i in range(n)]
    return files, [subprocess.Popen([sys.executable, '-c', consumer, f, boot]) for f in files]
def lines(f):
    try:
        with open(f) as h: return [l.split() for l in h if l.endswith('\n')]
    except FileNotFoundError: return []
def wait(cond, secs):
    end = time.time() + secs
    while time.time() < end:
        if cond(): return True
        time.sleep(0.05)
    return False
)PY";
}
// The (partition, offset) pairs whose commit consumer i saw refused.
std::set<std::pair<int, std::int64_t>> commit_refused_by(const std::filesystem::path& dir, int i) {
  std::set<std::pair<int, std::int64_t>> out;
  std::ifstream f(dir / ("c" + std::to_string(i) + ".txt.failed"));
  int part;
  std::int64_t off;
  while (f >> part >> off) out.emplace(part, off);
  return out;
}
// What consumer i wrote: (partition, offset, value) per message, in order.
std::vector<std::tuple<int, std::int64_t, std::string>> consumed_by(const std::filesystem::path& dir, int i) {
  std::vector<std::tuple<int, std::int64_t, std::string>> out;
  std::ifstream f(dir / ("c" + std::to_string(i) + ".txt"));
  int part;
  std::int64_t off;
  std::string v;
  while (f >> part >> off >> v) out.emplace_back(part, off, v);
  return out;
}

// Three confluent-kafka (librdkafka) consumer processes share six partitions in one group with
// the cooperative-sticky assignor (incremental rebalances: members keep what they keep while the
// rest moves in two steps), committing after each message; one is kill -9ed. The other two take
// its partitions over after its session timeout and resume from its last commits: no offset of
// any partition is skipped, and a message is read twice only if it was not committed: the killed
// process's last one in a partition, or one whose commit was refused while a rebalance completed
// (REBALANCE_IN_PROGRESS, as Kafka answers) before its partition moved.
TEST_F(KafkaListener, confluentGroupOfThree_oneKilled_theOthersResumeWithNothingSkipped) {
  (void)metadata_when_settled(kafka_address(0));
  create_topic(cl.bootstrap(), "k6", 6, 3);
  std::string boot;
  for (int i = 0; i < 3; ++i) boot += (i ? "," : "") + kafka_address(i);
  const auto dir = cl.dir();
  const std::string consumer =
      confluent_consumer("k6g", "k6", "'session.timeout.ms': 6000, 'partition.assignment.strategy': 'cooperative-sticky'");
  const std::string script = confluent_driver("k6") + R"PY(
produce(0, 3000)
files, procs = spawn(3)
# All three own partitions (each has read something), then one dies mid-stream.
ok = wait(lambda: all(len(lines(f)) > 0 for f in files), 60)
produce(3000, 6000)
ok = ok and wait(lambda: sum(len(lines(f)) for f in files) >= 4000, 60)
procs[0].send_signal(signal.SIGKILL)
procs[0].wait()
victim = lines(files[0])
produce(6000, 9000)
seen = lambda: {(l[0], l[1]) for f in files for l in lines(f)}
ok = wait(lambda: len(seen()) >= 9000, 120) and ok
for pr in procs[1:]:
    pr.terminate()
    pr.wait()
print('ok', ok, 'victim', len(victim), 'victim_partitions', len({l[0] for l in victim}))
)PY";
  auto r = run_program({"/usr/bin/python3", "-c", script, boot, dir.string(), consumer}, {}, 300s);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  std::printf("confluent-kafka group: %s", r.out.c_str());
  EXPECT_NE(r.out.find("ok True"), std::string::npos) << r.out;
  // Every offset of every partition was read; the survivors' reads of the victim's partitions
  // start at most one message before where it stopped (its last message may be uncommitted).
  std::map<int, std::set<std::int64_t>> read;
  std::map<std::pair<int, std::int64_t>, int> times;
  std::map<int, std::int64_t> victim_last;
  std::set<std::string> values;
  for (int i = 0; i < 3; ++i)
    for (const auto& [part, off, v] : consumed_by(dir, i)) {
      read[part].insert(off);
      ++times[{part, off}];
      values.insert(v);
      if (i == 0) victim_last[part] = std::max(victim_last.count(part) ? victim_last[part] : -1, off);
    }
  EXPECT_EQ(values.size(), 9000u) << "every message was read";
  for (const auto& [part, offs] : read) {
    ASSERT_FALSE(offs.empty());
    EXPECT_EQ(*offs.begin(), 0) << "partition " << part;
    EXPECT_EQ(static_cast<std::size_t>(*offs.rbegin() + 1), offs.size()) << "partition " << part << " has a gap";
  }
  std::set<std::pair<int, std::int64_t>> refused;
  for (int i = 0; i < 3; ++i) refused.merge(commit_refused_by(dir, i));
  int twice = 0;
  for (const auto& [tp, n] : times) {
    if (n < 2) continue;
    ++twice;
    auto it = victim_last.find(tp.first);
    const bool victims_last = it != victim_last.end() && it->second == tp.second;
    EXPECT_TRUE(victims_last || refused.contains(tp))
        << tp.first << "/" << tp.second << " read " << n
        << " times, but it was committed (not the killed consumer's last message, no commit of it refused)";
  }
  std::printf("confluent-kafka group: %d message(s) read twice (uncommitted: the killed consumer's last ones, %zu "
              "commits refused during rebalances)\n",
              twice, refused.size());
}

// Admin apis through librdkafka's AdminClient (sent to the controller, as Kafka clients do):
// create a topic, see its configs, delete it; a bad request gets Kafka's error, not a hang.
TEST_F(KafkaListener, confluentAdminCreatesDescribesAndDeletesTopics) {
  (void)metadata_when_settled(kafka_address(0));
  const std::string script =
      "from confluent_kafka.admin import AdminClient, NewTopic, ConfigResource\n"
      "a = AdminClient({'bootstrap.servers': '" + kafka_address(1) + "'})\n"
      "f = a.create_topics([NewTopic('made-by-kafka', 4, 3, config={'retention.ms': '3600000'})], operation_timeout=30)\n"
      "f['made-by-kafka'].result(60)\n"
      "print('created')\n"
      "try:\n"
      "    a.create_topics([NewTopic('made-by-kafka', 1, 1)])['made-by-kafka'].result(60)\n"
      "except Exception as e:\n"
      "    print('again:', e.args[0].name())\n"
      "try:\n"
      "    a.create_topics([NewTopic('too-many-replicas', 1, 5)])['too-many-replicas'].result(60)\n"
      "except Exception as e:\n"
      "    print('rf5:', e.args[0].name())\n"
      "r = a.describe_configs([ConfigResource('topic', 'made-by-kafka')])\n"
      "cfg = list(r.values())[0].result(60)\n"
      "print('retention.ms', cfg['retention.ms'].value)\n"
      "import time\n"
      "end = time.time() + 20\n"  // every broker learns of the topic when it applies the controller's entry
      "while True:\n"
      "    md = a.list_topics(timeout=30)\n"  // from any broker
      "    if 'made-by-kafka' in md.topics or time.time() > end: break\n"
      "    time.sleep(0.05)\n"
      "print('partitions', len(md.topics['made-by-kafka'].partitions))\n"
      "a.delete_topics(['made-by-kafka'], operation_timeout=30)['made-by-kafka'].result(60)\n"
      "print('deleted')\n";
  auto r = run_program({"/usr/bin/python3", "-c", script}, {}, 120s);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "created\nagain: TOPIC_ALREADY_EXISTS\nrf5: INVALID_REPLICATION_FACTOR\nretention.ms 3600000\n"
            "partitions 4\ndeleted\n")
      << r.err;
  // The native side agrees: the topic is gone (once the broker asked has applied the deletion).
  std::string listed;
  EXPECT_TRUE(wait_until([&] {
    listed = run_program({cli(), "--bootstrap", cl.bootstrap(), "topic", "list"}, {}, 30s).out;
    return listed.find("kt") != std::string::npos && listed.find("made-by-kafka") == std::string::npos;
  }, 20s)) << listed;
}

// A group is Kafka or native, never both at once: while a kafka-python member holds group
// "mixed", the native CLI's consumer is refused with a message saying why; while a native
// member holds group "native", a Kafka consumer's JoinGroup gets INCONSISTENT_GROUP_PROTOCOL.
TEST_F(KafkaListener, aGroupIsKafkaOrNative_theOtherKindIsRefusedWhileItHasMembers) {
  (void)metadata_when_settled(kafka_address(0));
  const std::string script =
      "import subprocess, sys, time\n"
      "from kafka import KafkaConsumer\n"
      "c = KafkaConsumer('kt', bootstrap_servers='" + kafka_address(0) + "', group_id='mixed')\n"
      "end = time.time() + 30\n"
      "while not c.assignment() and time.time() < end: c.poll(200)\n"
      "print('kafka member', len(c.assignment()))\n"
      "r = subprocess.run(sys.argv[1:] + ['consume', 'kt', '--group', 'mixed', '-e', '--timeout-ms', '10000'],\n"
      "                   capture_output=True, text=True)\n"
      "print('native', r.returncode, 'used by 1 Kafka-protocol consumer' in r.stderr)\n"
      "sys.stderr.write(r.stderr)\n"
      "c.close()\n";
  auto r = run_program({"/usr/bin/python3", "-c", script, cli(), "--bootstrap", cl.bootstrap()}, {}, 90s);
  EXPECT_EQ(r.out, "kafka member 3\nnative 1 True\n") << r.err;

  testsupport::SpawnOptions o;
  o.argv = {cli(), "--bootstrap", cl.bootstrap(), "consume", "kt", "--group", "native", "--timeout-ms", "60000"};
  o.output = cl.dir() / "native-consumer.log";
  testsupport::Process native(o);
  ASSERT_TRUE(wait_until([&] {
    auto d = run_program({cli(), "--bootstrap", cl.bootstrap(), "group", "list"}, {}, 30s);
    return std::regex_search(d.out, std::regex("native\tstable\t[0-9]+\tsticky\t1"));
  }, 30s));
  const std::string join =
      "from kafka import KafkaConsumer\n"
      "try:\n"
      "    k = KafkaConsumer('kt', bootstrap_servers='" + kafka_address(1) + "', group_id='native')\n"
      "    k.poll(10000)\n"
      "    print('joined', len(k.assignment()))\n"
      "except Exception as e:\n"
      "    print(type(e).__name__)\n";
  r = run_program({"/usr/bin/python3", "-c", join}, {}, 60s);
  EXPECT_EQ(r.out, "InconsistentGroupProtocolError\n") << r.err;
  EXPECT_TRUE(native.running()) << "the native member carries on";
}

// The coordinator of Kafka groups is the controller's leader: kill -9 it while two confluent-kafka
// consumers read and commit. They find the new coordinator, keep their generation (it reloads
// the group from the replicated state) and read every message; no offset is skipped.
TEST_F(KafkaListener, confluentGroupSurvivesItsCoordinatorKilled_nothingSkipped) {
  const std::string md = metadata_when_settled(kafka_address(0));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(md, m, std::regex("broker ([123]) at [^ ]+ \\(controller\\)"))) << md;
  const int coordinator = std::stoi(m[1]) - 1;
  std::string boot;
  for (int i = 0; i < 3; ++i) boot += (i ? "," : "") + kafka_address(i);
  const auto dir = cl.dir();
  const std::string consumer = confluent_consumer("fo", "kt", "'session.timeout.ms': 10000");
  const std::string script = confluent_driver("kt") + R"PY(
victim = int(sys.argv[4])
produce(0, 2000)
files, procs = spawn(2)
ok = wait(lambda: all(len(lines(f)) > 0 for f in files) and sum(len(lines(f)) for f in files) >= 1000, 60)
os.kill(victim, signal.SIGKILL)
produce(2000, 4000)
seen = lambda: {l[2] for f in files for l in lines(f)}
ok = wait(lambda: len(seen()) >= 4000, 120) and ok
for pr in procs:
    pr.terminate()
    pr.wait()
print('ok', ok)
)PY";
  auto r = run_program({"/usr/bin/python3", "-c", script, boot, dir.string(), consumer,
                        std::to_string(cl.broker(coordinator).pid())},
                       {}, 300s);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "ok True\n") << r.err;
  std::map<int, std::set<std::int64_t>> read;
  std::set<std::string> values;
  std::size_t lines = 0;
  for (int i = 0; i < 2; ++i)
    for (const auto& [part, off, v] : consumed_by(dir, i)) read[part].insert(off), values.insert(v), ++lines;
  EXPECT_EQ(values.size(), 4000u);
  for (const auto& [part, offs] : read)
    EXPECT_EQ(static_cast<std::size_t>(*offs.rbegin() + 1), offs.size()) << "partition " << part << " has a gap";
  std::printf("coordinator kill: %zu reads for %zu messages\n", lines, values.size());
}

// Compressed batches against the limits, on one broker with 6 MiB frames and the default 4 MiB
// batches: kafka-python gzips 5 MiB of zeros (5 KiB on the wire) and gets MESSAGE_TOO_LARGE
// (MessageSizeTooLargeError), nothing written; three partitions of 3 MB each in one request
// decompress to more than a frame together, so exactly one is refused the same way while the
// other two are stored.
class KafkaCompressionLimits : public ::testing::Test {
 protected:
  static testsupport::ClusterOptions options() {
    testsupport::ClusterOptions o;
    o.brokers = 1;
    o.broker_bin = broker_binary();
    o.kafka = true;
    o.extra_args = {"--max-frame-bytes", std::to_string(6 << 20)};
    return o;
  }
  void SetUp() override {
    auto r = cl.start(90s);
    ASSERT_TRUE(r) << r.error();
    create_topic(cl.bootstrap(), "kb", 3, 1);
  }
  testsupport::LocalCluster cl{options()};
};

TEST_F(KafkaCompressionLimits, kafkaPythonGzipBombAndOversizedRequestAreRefused_nothingOfThemWritten) {
  const std::string b = "127.0.0.1:" + std::to_string(cl.kafka_port(0));
  const std::string script =
      "from kafka import KafkaProducer, KafkaConsumer, TopicPartition\n"
      "from kafka.errors import MessageSizeTooLargeError\n"
      "def producer():\n"
      "    return KafkaProducer(bootstrap_servers='" + b + "', acks='all', compression_type='gzip', retries=0,\n"
      "                         max_request_size=64 << 20, batch_size=16 << 20, buffer_memory=128 << 20, linger_ms=300)\n"
      "def outcome(f):\n"
      "    try:\n"
      "        f.get(30)\n"
      "        return 'ok'\n"
      "    except MessageSizeTooLargeError:\n"
      "        return 'too large'\n"
      "p = producer()\n"
      "print('bomb', outcome(p.send('kb', bytes(5 << 20), partition=0)))\n"
      "p.close()\n"
      "p = producer()\n"
      "fs = [p.send('kb', bytes(3000000), partition=i) for i in range(3)]\n"
      "p.flush()\n"
      "got = [outcome(f) for f in fs]\n"
      "print('request', sorted(got))\n"
      "c = KafkaConsumer(bootstrap_servers='" + b + "')\n"
      "ends = c.end_offsets([TopicPartition('kb', i) for i in range(3)])\n"
      "print('stored', [ends[TopicPartition('kb', i)] for i in range(3)] == [int(g == 'ok') for g in got])\n";
  auto r = run_program({"/usr/bin/python3", "-c", script}, {}, 120s);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "bomb too large\nrequest ['ok', 'ok', 'too large']\nstored True\n") << r.err;
  EXPECT_TRUE(cl.broker(0).running());
}

}  // namespace
}  // namespace quorumq::test
