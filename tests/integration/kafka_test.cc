// The Kafka listener (issue 17) with clients nobody here wrote: kcat (librdkafka) and
// kafka-python list the cluster, produce and consume through --kafka-listen of three real
// brokers, and what they write is what quorumq's own CLI reads (and the other way round);
// hostile bytes on the Kafka port close that connection and nothing else. Groups come next.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>

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
    EXPECT_EQ((*r)[6], 7);  // compact array: 6 apis
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
// not quietly plain; kcat reads every message back identically. librdkafka before 2.11.1
// compresses lz4 only for a broker listing FindCoordinator v0 (its "LZ4" feature), so until the
// Kafka listener serves groups its lz4 goes plain, as its own debug output says (-d feature);
// kafka-python's test above sends lz4 compressed.
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
    auto p = run_program({"kcat", "-b", kafka_address(1), "-P", "-t", "kt", "-p", "0", "-K:", "-z", codec, "-d",
                          "msg,feature"},
                         in, 60s);
    ASSERT_EQ(p.status, 0) << codec << ": " << p.err;
    const bool lz4_off = p.err.find("Disabling feature LZ4") != std::string::npos;
    const std::string sent_as = codec == "lz4" && lz4_off ? "uncompressed" : codec;
    std::istringstream lines(p.err);
    int sets = 0;
    for (std::string line; std::getline(lines, line);) {
      if (line.find("Produce MessageSet with") == std::string::npos) continue;
      ++sets;
      EXPECT_TRUE(line.ends_with(", " + sent_as + ")")) << codec << " batch sent as: " << line;
    }
    EXPECT_GT(sets, 0) << codec << ": no Produce MessageSet in librdkafka's debug output";
    if (codec == "lz4" && lz4_off) std::printf("kcat: lz4 sent uncompressed (librdkafka wants FindCoordinator v0)\n");
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
