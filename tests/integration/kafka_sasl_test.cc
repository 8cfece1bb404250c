// SASL SCRAM and ACLs on the Kafka listener (issue 18) with clients nobody here wrote: kcat and
// confluent-kafka (librdkafka) over SASL_PLAINTEXT and SASL_SSL with SCRAM-SHA-256 and -512,
// kafka-python 2.0.2 (SaslHandshake v0, then bare tokens); wrong passwords, unknown users and
// clients without SASL refused and counted; ACLs enforced through Kafka clients (produce, fetch,
// group consumption, topic creation and deletion refused with Kafka's codes and changing
// nothing, then allowed once `quorumq acl add` grants them); and a 3-broker SASL cluster whose
// coordinator forwards a kcat group's commits to the partitions' leaders, logging in to them as
// the broker user.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "harness.h"
#include "quorumq/testsupport/local_cluster.h"

namespace quorumq::test {
namespace {

namespace fs = std::filesystem;

std::string cli() { return fs::path(broker_binary()).parent_path().parent_path() / "client/cli/quorumq"; }

using Args = std::vector<std::string>;
Args operator+(Args a, const Args& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
  fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write);
}

// With --sasl, /metrics needs the admin token (or a permitted user): every broker here has one.
constexpr const char* kAdminToken = "admin-token-0123456789abcdef";
std::optional<testsupport::HttpReply> metrics_page(std::uint16_t admin_port) {
  return http_get(admin_port, "/metrics", 2s, std::string("Authorization: Bearer ") + kAdminToken + "\r\n");
}

std::string metric(std::uint16_t admin_port, const std::string& name) {
  auto m = metrics_page(admin_port);
  if (!m) return {};
  const auto at = m->body.find("\n" + name + " ");
  if (at == std::string::npos) return {};
  return m->body.substr(at + name.size() + 2, m->body.find('\n', at + 1) - at - name.size() - 2);
}

// A CA and a broker certificate for localhost / 127.0.0.1 (librdkafka checks the host name).
void make_certificates(const fs::path& dir) {
  auto run = [](const std::vector<std::string>& argv) {
    auto r = run_program(argv, {}, 60s);
    ASSERT_EQ(r.status, 0) << r.err;
  };
  const auto p = [&dir](const std::string& n) { return (dir / n).string(); };
  run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days",
       "2", "-subj", "/CN=test-ca"});
  run({"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", p("broker.key"), "-out", p("broker.csr"), "-subj",
       "/CN=localhost"});
  std::ofstream(p("broker.ext")) << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
  run({"openssl", "x509", "-req", "-in", p("broker.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial",
       "-out", p("broker.pem"), "-days", "2", "-extfile", p("broker.ext")});
}

// kcat's settings for a SCRAM login.
std::vector<std::string> scram(const std::string& user, const std::string& password,
                               const std::string& mechanism = "SCRAM-SHA-256",
                               const std::string& protocol = "SASL_PLAINTEXT") {
  return {"-X", "security.protocol=" + protocol, "-X", "sasl.mechanisms=" + mechanism,
          "-X", "sasl.username=" + user,         "-X", "sasl.password=" + password};
}

constexpr const char* kAdminPassword = "admin-secret-1";

// One broker with --sasl, a bootstrap super user "admin", a Kafka listener (TLS on both
// listeners when `tls`), and users alice and bob (no ACLs yet) made through the CLI.
class KafkaSasl : public ::testing::Test {
 protected:
  void start(bool tls) {
    write_file(dir.path() / "admin.user", std::string("admin:") + kAdminPassword);
    write_file(dir.path() / "admin.token", kAdminToken);
    write_file(dir.path() / "admin.pw", kAdminPassword);
    std::vector<std::string> flags = {"--log-level=info", "--sasl",
                                      "--sasl-bootstrap-user-file=" + (dir.path() / "admin.user").string(),
                                      "--admin-token-file=" + (dir.path() / "admin.token").string(),
                                      "--kafka-listen=127.0.0.1:" + std::to_string(kafka_port)};
    if (tls) {
      make_certificates(dir.path());
      flags = flags + Args{"--tls-cert-file=" + (dir.path() / "broker.pem").string(),
                                               "--tls-key-file=" + (dir.path() / "broker.key").string()};
    }
    broker = std::make_unique<BrokerProcess>(1, dir.path() / "d", flags);
    broker->start();
    admin = {cli(), "--bootstrap", (tls ? "localhost:" : "127.0.0.1:") + std::to_string(broker->port()), "--user",
             "admin", "--password-file", (dir.path() / "admin.pw").string()};
    if (tls) admin = admin + Args{"--tls-ca-file", (dir.path() / "ca.pem").string()};
    for (const char* u : {"alice", "bob"}) as_admin({"user", "create", u}, std::string(u) + "-password\n");
  }
  RunResult as_admin(const std::vector<std::string>& args, const std::string& in = {}) {
    auto r = run_program(admin + args, in, 60s);
    EXPECT_EQ(r.status, 0) << r.err;
    return r;
  }
  std::string kafka() const { return "127.0.0.1:" + std::to_string(kafka_port); }
  // A python3 script (Debian's, where python3-kafka and python3-confluent-kafka live).
  RunResult python(const std::string& script) { return run_program({"/usr/bin/python3", "-c", script}, {}, 120s); }

  TempDir dir;
  const std::uint16_t kafka_port = free_port();
  std::unique_ptr<BrokerProcess> broker;
  std::vector<std::string> admin;
};

TEST_F(KafkaSasl, kcatScram256And512_badLoginsAndPlainClientsRefused) {
  start(false);
  as_admin({"topic", "create", "t", "--partitions", "1", "--replicas", "1"});
  as_admin({"acl", "add", "--principal", "User:alice", "--operation", "all", "--topic", "t"});
  auto r = run_program(Args{"kcat", "-b", kafka(), "-P", "-t", "t"} + scram("alice", "alice-password"), "one\ntwo\n", 60s);
  ASSERT_EQ(r.status, 0) << r.err;
  r = run_program(Args{"kcat", "-b", kafka(), "-C", "-t", "t", "-o", "beginning", "-e", "-q"} +
                      scram("alice", "alice-password", "SCRAM-SHA-512"),
                  {}, 60s);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "one\ntwo\n");
  EXPECT_NE(broker->log_contains("authenticated as User:alice"), "");

  // A wrong password and an unknown user: librdkafka reports the broker's refusal; counted.
  const auto failures_before = std::stoll(metric(broker->admin_port(), "quorumq_sasl_authentication_failures_total"));
  for (const auto& [user, pw] : {std::pair{"alice", "wrong-password"}, std::pair{"mallory", "whatever-pw"}}) {
    r = run_program(Args{"kcat", "-b", kafka(), "-L", "-m", "5"} + scram(user, pw), {}, 60s);
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("Authentication failed: wrong user name or password"), std::string::npos) << user << r.err;
  }
  EXPECT_TRUE(wait_until([&] {
    return std::stoll(metric(broker->admin_port(), "quorumq_sasl_authentication_failures_total")) >=
           failures_before + 2;
  }, 10s));
  EXPECT_NE(broker->log_contains("SASL authentication failed (user 'mallory')"), "");
  // Without SASL: nothing is served, nothing written.
  r = run_program(Args{"kcat", "-b", kafka(), "-P", "-t", "t", "-X", "message.timeout.ms=3000"}, "plain\n", 60s);
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(as_admin({"consume", "t", "-p", "0", "-e"}).out, "one\ntwo\n");
}

TEST_F(KafkaSasl, saslSslWithKcatAndConfluentKafka) {
  start(true);
  as_admin({"topic", "create", "s", "--partitions", "2", "--replicas", "1"});
  as_admin({"acl", "add", "--principal", "User:alice", "--operation", "write", "--topic", "s"});
  as_admin({"acl", "add", "--principal", "User:bob", "--operation", "read", "--topic", "s"});
  as_admin({"acl", "add", "--principal", "User:bob", "--operation", "read", "--group", "sg"});
  const auto ssl = Args{"-X", "ssl.ca.location=" + (dir.path() / "ca.pem").string()};
  auto r = run_program(Args{"kcat", "-b", kafka(), "-P", "-t", "s", "-p", "0"} +
                           scram("alice", "alice-password", "SCRAM-SHA-512", "SASL_SSL") + ssl,
                       "k1\nk2\n", 60s);
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string conf = "{'bootstrap.servers': '" + kafka() +
                           "', 'security.protocol': 'SASL_SSL', 'ssl.ca.location': '" + (dir.path() / "ca.pem").string() +
                           "', 'sasl.mechanisms': 'SCRAM-SHA-256'";
  r = python("from confluent_kafka import Producer, Consumer\n"
             "p = Producer(dict(" + conf + ", 'sasl.username': 'alice', 'sasl.password': 'alice-password'}, acks='all'))\n"
             "for i in range(3): p.produce('s', b'c%d' % i, partition=1)\n"
             "print('unsent', p.flush(60))\n"
             "c = Consumer(dict(" + conf + ", 'sasl.username': 'bob', 'sasl.password': 'bob-password'},"
             " **{'group.id': 'sg', 'auto.offset.reset': 'earliest'}))\n"
             "c.subscribe(['s'])\n"
             "got = []\n"
             "import time\n"
             "end = time.time() + 60\n"
             "while len(got) < 5 and time.time() < end:\n"
             "    m = c.poll(1)\n"
             "    if m is None: continue\n"
             "    if m.error(): print('error', m.error().name()); break\n"
             "    got.append(m.value().decode())\n"
             "c.commit(asynchronous=False)\n"
             "c.close()\n"
             "print(sorted(got))\n");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "unsent 0\n['c0', 'c1', 'c2', 'k1', 'k2']\n") << r.err;
  // The group's commits, as the native CLI reads them.
  r = as_admin({"group", "offsets", "sg"});
  EXPECT_TRUE(std::regex_search(r.out, std::regex("(^|\\n)s\\t0\\t2\\t"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("(^|\\n)s\\t1\\t3\\t"))) << r.out;
}

TEST_F(KafkaSasl, kafkaPythonScram256_rawTokensAfterAV0Handshake) {
  start(false);
  as_admin({"topic", "create", "py", "--partitions", "1", "--replicas", "1"});
  as_admin({"acl", "add", "--principal", "User:alice", "--operation", "all", "--topic", "py"});
  auto r = python("from kafka import KafkaProducer, KafkaConsumer, TopicPartition\n"
                  "kw = dict(bootstrap_servers='" + kafka() + "', security_protocol='SASL_PLAINTEXT',"
                  " sasl_mechanism='SCRAM-SHA-256', sasl_plain_username='alice', sasl_plain_password='alice-password',"
                  " api_version_auto_timeout_ms=10000)\n"
                  "p = KafkaProducer(acks='all', **kw)\n"
                  "for i in range(10): p.send('py', b'p%d' % i).get(30)\n"
                  "p.close()\n"
                  "c = KafkaConsumer(consumer_timeout_ms=5000, **kw)\n"
                  "tp = TopicPartition('py', 0)\n"
                  "c.assign([tp]); c.seek_to_beginning(tp)\n"
                  "print(len([m for m in c]))\n");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "10\n") << r.err;
  EXPECT_NE(broker->log_contains("authenticated as User:alice"), "");
  // A wrong password: the broker refuses the exchange; kafka-python finds no broker it may use.
  r = python("from kafka import KafkaProducer\n"
             "try:\n"
             "    KafkaProducer(bootstrap_servers='" + kafka() + "', security_protocol='SASL_PLAINTEXT',"
             " sasl_mechanism='SCRAM-SHA-256', sasl_plain_username='alice', sasl_plain_password='nope',"
             " api_version_auto_timeout_ms=5000)\n"
             "except Exception as e: print(type(e).__name__)\n");
  EXPECT_TRUE(r.out == "NoBrokersAvailable\n" || r.out.find("Authentication") != std::string::npos) << r.out << r.err;
  EXPECT_TRUE(wait_until([&] { return !broker->log_contains("SASL authentication failed (user 'alice')").empty(); }, 10s));
}

// What bob, with only describe on topic "acl" (and read on groups g-*), can do through librdkafka: each refusal names
// Kafka's code and changes nothing; the same script succeeds once he has the ACLs.
TEST_F(KafkaSasl, aclsRefuseKafkaClientsWithKafkasCodes_andAllowOnceGranted) {
  start(false);
  as_admin({"topic", "create", "acl", "--partitions", "1", "--replicas", "1"});
  as_admin({"produce", "acl"}, "existing\n");
  as_admin({"topic", "create", "doomed", "--partitions", "1", "--replicas", "1"});
  as_admin({"acl", "add", "--principal", "User:bob", "--operation", "describe", "--topic", "acl"});
  // Groups "g-*" he may use (a consumer with a group.id asks for its coordinator even when it
  // assigns partitions itself), so the plain consumer meets the topic's refusal.
  as_admin({"acl", "add", "--principal", "User:bob", "--operation", "read", "--group", "g-", "--prefixed"});
  const std::string script =
      "import time\n"
      "from confluent_kafka import Producer, Consumer, TopicPartition, KafkaException\n"
      "from confluent_kafka.admin import AdminClient, NewTopic\n"
      "conf = {'bootstrap.servers': '" + kafka() + "', 'security.protocol': 'SASL_PLAINTEXT',"
      " 'sasl.mechanisms': 'SCRAM-SHA-256', 'sasl.username': 'bob', 'sasl.password': 'bob-password'}\n"
      "out = []\n"
      "def report(err, msg): out.append('produce ' + (err.name() if err else 'ok'))\n"
      "p = Producer(dict(conf, **{'message.timeout.ms': 20000}))\n"
      "p.produce('acl', b'by-bob', callback=report); p.flush(30)\n"
      "def consume(group, assign):\n"
      "    c = Consumer(dict(conf, **{'group.id': group, 'auto.offset.reset': 'earliest', 'enable.auto.commit': False}))\n"
      "    if assign: c.assign([TopicPartition('acl', 0, 0)])\n"
      "    else: c.subscribe(['acl'])\n"
      "    end, res = time.time() + 30, 'nothing'\n"
      "    while time.time() < end:\n"
      "        m = c.poll(0.5)\n"
      "        if m is None: continue\n"
      "        if m.error(): res = m.error().name(); break\n"
      "        res = 'read ' + m.value().decode()\n"
      "        if not assign: c.commit(m, asynchronous=False)\n"
      "        break\n"
      "    c.close()\n"
      "    return res\n"
      "out.append('consume ' + consume('g-assign', True))\n"
      "out.append('group ' + consume('bobs', False))\n"
      "a = AdminClient(conf)\n"
      "for what, f in (('create', lambda: a.create_topics([NewTopic('bob-made', 1, 1)])['bob-made']),\n"
      "                ('delete', lambda: a.delete_topics(['doomed'])['doomed'])):\n"
      "    try: f().result(30); out.append(what + ' ok')\n"
      "    except KafkaException as e: out.append(what + ' ' + e.args[0].name())\n"
      "print('\\n'.join(out))\n";
  auto r = python(script);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "produce TOPIC_AUTHORIZATION_FAILED\nconsume TOPIC_AUTHORIZATION_FAILED\n"
            "group GROUP_AUTHORIZATION_FAILED\ncreate TOPIC_AUTHORIZATION_FAILED\ndelete TOPIC_AUTHORIZATION_FAILED\n")
      << r.err;
  // Nothing changed: the topic holds what it held, no topic made or deleted, no commits.
  EXPECT_EQ(as_admin({"consume", "acl", "-p", "0", "-e"}).out, "existing\n");
  auto topics = as_admin({"topic", "list"}).out;
  EXPECT_EQ(topics.find("bob-made"), std::string::npos) << topics;
  EXPECT_NE(topics.find("doomed"), std::string::npos) << topics;
  EXPECT_EQ(as_admin({"group", "offsets", "bobs"}).out.find("acl\t0\t1"), std::string::npos);
  EXPECT_NE(broker->log_contains("User:bob may not write topic 'acl'"), "");

  // Granted: the same work succeeds.
  for (const auto& acl : std::vector<std::vector<std::string>>{{"--operation", "write", "--topic", "acl"},
                                                               {"--operation", "read", "--topic", "acl"},
                                                               {"--operation", "read", "--group", "bobs"},
                                                               {"--operation", "create", "--topic", "bob-", "--prefixed"},
                                                               {"--operation", "delete", "--topic", "doomed"}})
    as_admin(Args{"acl", "add", "--principal", "User:bob"} + acl);
  r = python(script);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "produce ok\nconsume read existing\ngroup read existing\ncreate ok\ndelete ok\n") << r.err;
  EXPECT_EQ(as_admin({"consume", "acl", "-p", "0", "-e"}).out, "existing\nby-bob\n");
  EXPECT_TRUE(wait_until([&] {
    topics = run_program(admin + Args{"topic", "list"}, {}, 30s).out;
    return topics.find("bob-made") != std::string::npos && topics.find("doomed") == std::string::npos;
  }, 20s)) << topics;
  EXPECT_TRUE(std::regex_search(as_admin({"group", "offsets", "bobs"}).out, std::regex("(^|\\n)acl\\t0\\t1\\t")));
}

// Index of the broker leading topic/partition by its own /metrics, or -1.
int leader_of(testsupport::LocalCluster& cl, const std::string& topic, int partition) {
  const std::string needle =
      "quorumq_partition_leader{topic=\"" + topic + "\",partition=\"" + std::to_string(partition) + "\"} 1";
  for (int i = 0; i < cl.size(); ++i) {
    auto m = metrics_page(cl.broker(i).admin_port());
    if (m && m->body.find(needle) != std::string::npos) return i;
  }
  return -1;
}

// Three brokers with --sasl and a cluster secret: a kcat group consumer's commits reach every
// partition's leader, including those the coordinator does not lead (it forwards them to their
// client listeners, logging in as the broker user).
TEST(KafkaSaslCluster, groupCommitsAreForwardedToOtherLeadersWithSasl) {
  TempDir keys;
  write_file(keys.path() / "admin.user", std::string("admin:") + kAdminPassword);
  write_file(keys.path() / "admin.pw", kAdminPassword);
  testsupport::ClusterOptions o;
  o.brokers = 3;
  o.broker_bin = broker_binary();
  o.kafka = true;
  o.cluster_secret = true;
  write_file(keys.path() / "admin.token", kAdminToken);
  o.extra_args = {"--sasl", "--sasl-bootstrap-user-file=" + (keys.path() / "admin.user").string(),
                  "--admin-token-file=" + (keys.path() / "admin.token").string()};
  testsupport::LocalCluster cl(o);
  auto started = cl.start(90s);
  ASSERT_TRUE(started) << started.error();
  const std::vector<std::string> admin = {cli(), "--bootstrap", cl.bootstrap(), "--user", "admin", "--password-file",
                                          (keys.path() / "admin.pw").string()};
  auto as_admin = [&](const std::vector<std::string>& args, const std::string& in = {}) {
    auto r = run_program(admin + args, in, 60s);
    EXPECT_EQ(r.status, 0) << r.err;
    return r;
  };
  constexpr int kPartitions = 6;
  as_admin({"topic", "create", "ct", "--partitions", std::to_string(kPartitions), "--replicas", "3"});
  as_admin({"user", "create", "carol"}, "carol-password\n");
  as_admin({"acl", "add", "--principal", "User:carol", "--operation", "all", "--topic", "ct"});
  as_admin({"acl", "add", "--principal", "User:carol", "--operation", "read", "--group", "cg"});
  const std::string kafka = "127.0.0.1:" + std::to_string(cl.kafka_port(0));
  const auto carol = scram("carol", "carol-password");
  // The coordinator is the controller's leader (kcat -L marks it); some partition must be led
  // by another broker for this test to mean anything.
  std::map<int, int> leaders;
  int coordinator = -1;
  ASSERT_TRUE(wait_until([&] {
    auto md = run_program(Args{"kcat", "-b", kafka, "-L", "-m", "5"} + carol, {}, 30s).out;
    std::smatch m;
    if (!std::regex_search(md, m, std::regex("broker ([123]) at [^ ]+ \\(controller\\)"))) return false;
    coordinator = std::stoi(m[1]) - 1;
    for (int p = 0; p < kPartitions; ++p)
      if ((leaders[p] = leader_of(cl, "ct", p)) < 0) return false;
    return true;
  }, 30s));
  std::set<int> elsewhere;
  for (const auto& [p, l] : leaders)
    if (l != coordinator) elsewhere.insert(l);
  ASSERT_FALSE(elsewhere.empty()) << "the coordinator leads every partition";

  std::string input;
  for (int i = 0; i < 60; ++i) input += "m" + std::to_string(i) + "\n";
  auto r = run_program(Args{"kcat", "-b", kafka, "-P", "-t", "ct"} + carol, input, 60s);
  ASSERT_EQ(r.status, 0) << r.err;
  r = run_program(Args{"kcat", "-b", kafka, "-G", "cg", "-X", "auto.offset.reset=earliest", "-e", "-q", "ct"} + carol, {},
                  120s);
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream lines(r.out);
  std::set<std::string> got;
  for (std::string l; std::getline(lines, l);) got.insert(l);
  EXPECT_EQ(got.size(), 60u) << r.out;
  // The commits kcat made on leaving, as the native CLI reads them: every message counted.
  std::string shown;
  EXPECT_TRUE(wait_until([&] {
    shown = run_program(admin + Args{"group", "offsets", "cg"}, {}, 30s).out;
    std::int64_t sum = 0;
    const std::regex row("ct\\t[0-9]\\t([0-9]+)\\t");
    for (std::sregex_iterator it(shown.begin(), shown.end(), row), end; it != end; ++it) sum += std::stoll((*it)[1]);
    return sum == 60;
  }, 30s)) << shown;
  // The coordinator logged in to the other leaders as the broker user to write them.
  for (const int b : elsewhere)
    EXPECT_NE(cl.broker(b).log_contains("authenticated as User:__quorumq_broker"), "") << "broker " << b + 1;
}

}  // namespace
}  // namespace quorumq::test
