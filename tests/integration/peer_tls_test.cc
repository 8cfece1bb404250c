// Mutual TLS on the peer links (issue 18), with real broker processes and certificates made by
// the openssl command line: three brokers whose only peer authentication is TLS replicate with
// acks=quorum and fail over when the leader is killed -9; a forger is refused, whether it dials
// a broker (a certificate from another CA; a valid certificate naming quorumq-node-9 while
// claiming to be broker 2) or answers where a broker is expected (a valid certificate for the
// wrong node); a plain-text broker that knows the cluster secret is refused at the TLS port.
// Each refusal is logged with what was expected and found and counted in /metrics, and the
// cluster keeps working.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>

#include "cluster.h"
#include "harness.h"
#include "load.h"
#include "peer_auth.h"

namespace quorumq::test {
namespace {

// A CA and another CA nobody trusts; node certificates for brokers 1..3 (1 and 2 name the node
// in CN and SAN, 3 only in a DNS SAN); a valid certificate naming quorumq-node-9; one naming
// quorumq-node-2 from the other CA. EC P-256 keys: quick to make on a busy machine.
class NodeCertificates {
 public:
  explicit NodeCertificates(const std::filesystem::path& dir) : dir_(dir) {
    ca("ca");
    ca("other-ca");
    leaf("node1", "ca", "quorumq-node-1", "quorumq-node-1");
    leaf("node2", "ca", "quorumq-node-2", "quorumq-node-2");
    leaf("node3", "ca", "broker-three.example", "quorumq-node-3");
    leaf("node9", "ca", "quorumq-node-9", "quorumq-node-9");
    leaf("foreign2", "other-ca", "quorumq-node-2", "quorumq-node-2");
  }
  std::string operator()(const std::string& name) const { return (dir_ / name).string(); }
  // The peer TLS flags of broker `node` (1-based).
  std::vector<std::string> flags(int node) const {
    const std::string n = "node" + std::to_string(node);
    return {"--peer-tls-cert-file=" + (*this)(n + ".pem"), "--peer-tls-key-file=" + (*this)(n + ".key"),
            "--peer-tls-ca-file=" + (*this)("ca.pem")};
  }

 private:
  void run(const std::vector<std::string>& argv) {
    auto r = run_program(argv, {}, std::chrono::seconds(60));
    ASSERT_EQ(r.status, 0) << r.err;
  }
  void ca(const std::string& n) {
    run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
         (*this)(n + ".key"), "-out", (*this)(n + ".pem"), "-days", "2", "-subj", "/CN=" + n});
  }
  void leaf(const std::string& n, const std::string& ca, const std::string& cn, const std::string& dns) {
    run({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
         (*this)(n + ".key"), "-out", (*this)(n + ".csr"), "-subj", "/CN=" + cn});
    // Each broker is a TLS server (its peer listener) and a TLS client (its links).
    std::ofstream((*this)(n + ".ext")) << "subjectAltName=DNS:" << dns
                                       << "\nextendedKeyUsage=serverAuth,clientAuth\n";
    run({"openssl", "x509", "-req", "-in", (*this)(n + ".csr"), "-CA", (*this)(ca + ".pem"), "-CAkey",
         (*this)(ca + ".key"), "-CAcreateserial", "-out", (*this)(n + ".pem"), "-days", "2", "-extfile",
         (*this)(n + ".ext")});
  }
  std::filesystem::path dir_;
};

// A counter or gauge from a broker's /metrics (-1: not there).
std::int64_t metric(testsupport::BrokerProcess& b, const std::string& name) {
  auto m = http_get(b.admin_port(), "/metrics");
  if (!m) return -1;
  const auto at = m->body.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stoll(m->body.substr(at + name.size() + 2));
}

// Three brokers with peer TLS (and the cluster secret only if `secret`).
testsupport::ClusterOptions tls_cluster(const NodeCertificates& certs, bool secret) {
  testsupport::ClusterOptions o;
  o.brokers = 3;
  o.cluster_secret = secret;
  for (int i = 1; i <= 3; ++i) o.node_args.push_back(certs.flags(i));
  return o;
}

// Produces `n` messages tagged `group` with acks=quorum, then reads the topic (`total` messages
// by now) back from the start: every one of them acknowledged and present exactly once.
void produce_and_read_back(Cluster& cl, const std::string& topic, int n, const std::string& group, std::size_t total) {
  ProducerConfig pc;
  pc.bootstrap = cl.bootstrap();
  pc.acks = Acks::quorum;
  auto p = Producer::create(pc);
  ASSERT_TRUE(p.has_value()) << p.error().message;
  std::set<std::string> acked;
  std::mutex mu;
  for (int i = 0; i < n; ++i) {
    const std::string v = group + "-" + std::to_string(i);
    (*p)->send(topic, std::nullopt, v, {}, [&, v](const SendResult& r) {
      std::lock_guard lk(mu);
      if (r) acked.insert(v);
    });
  }
  ASSERT_TRUE((*p)->flush(60s));
  {
    std::lock_guard lk(mu);
    ASSERT_EQ(acked.size(), static_cast<std::size_t>(n));
  }
  const auto got = consume_all(cl.bootstrap(), topic, group, total, 60s);
  EXPECT_EQ(got.size(), total);
  std::multiset<std::string> seen;
  for (const auto& m : got)
    if (m.value.starts_with(group + "-")) seen.insert(m.value);
  for (const auto& v : acked) EXPECT_EQ(seen.count(v), 1u) << v;
}

TEST(PeerTls, threeBrokersReplicateAndFailOver_withPeerTlsAlone) {
  TempDir dir;
  NodeCertificates certs(dir.path());
  Cluster cl(tls_cluster(certs, /*secret=*/false));
  cl.start_all();
  EXPECT_NE(cl.broker(0).log_contains("peer links mutual TLS").find("quorumq-node-<id>"), std::string::npos);
  create_topic(cl.bootstrap(), "pt", 1, 3);
  Load load(cl.bootstrap(), "pt", 1);
  ASSERT_TRUE(wait_until([&] { return load.ack_count() > 1000; }, 30s));
  // SIGHUP rereads the peer certificate (new links use it; here the same files).
  ASSERT_EQ(::kill(cl.broker(0).pid(), SIGHUP), 0);
  EXPECT_TRUE(wait_until([&] { return !cl.broker(0).log_contains("SIGHUP: peer TLS certificates reloaded").empty(); }, 10s));
  int leader = -1;
  ASSERT_TRUE(wait_until([&] { return (leader = cl.leader_of("pt", 0)) >= 0; }, 10s));
  const auto t0 = Clock::now();
  cl.broker(leader).kill9();
  std::optional<Clock::time_point> back;
  ASSERT_TRUE(wait_until([&] { return (back = load.first_ack_after(0, t0)).has_value(); }, 15s))
      << "no acknowledged produce after the leader was killed";
  std::printf("peer TLS failover: first acknowledged produce %.0f ms after kill -9 of the leader\n",
              std::chrono::duration<double, std::milli>(*back - t0).count());
  // The killed broker comes back over TLS and catches up.
  cl.broker(leader).start(30s);
  const auto before = load.ack_count();
  ASSERT_TRUE(wait_until([&] { return load.ack_count() > before + 1000; }, 30s));
  load.stop();
  EXPECT_TRUE(load.failures().empty()) << load.failures().front();
  const auto got = consume_all(cl.bootstrap(), "pt", "verify", load.ack_count(), 60s);
  std::map<std::string, int> count;
  for (const auto& m : got) ++count[m.value];
  std::size_t lost = 0, dup = 0;
  for (const auto& [i, a] : load.acks()) {
    const int c = count["v" + std::to_string(i)];
    lost += c == 0;
    dup += c > 1;
  }
  EXPECT_EQ(lost, 0u) << "acknowledged messages lost";
  EXPECT_EQ(dup, 0u) << "messages delivered twice";
  EXPECT_TRUE(wait_until([&] { return cl.replicas_agree("pt", 1); }, 30s));
  for (int i = 0; i < 3; ++i) {
    EXPECT_GT(metric(cl.broker(i), "quorumq_peer_handshakes_accepted_total"), 0) << "broker " << i + 1;
    EXPECT_EQ(metric(cl.broker(i), "quorumq_peer_tls_identity_failures_total"), 0) << "broker " << i + 1;
    EXPECT_GT(metric(cl.broker(i), "quorumq_peer_tls_certificate_not_after_seconds"), 0) << "broker " << i + 1;
  }
}

// A forger dialing broker 1's peer port with openssl s_client: first with a certificate from
// another CA (the TLS handshake fails), then with a valid certificate naming quorumq-node-9,
// sending a well-formed hello that claims to be broker 2 (refused: the certificate does not
// name broker 2). Broker 2's real link is not displaced; the cluster keeps replicating.
TEST(PeerTls, forgedDialer_otherCaOrWrongNode_refusedClusterKeepsWorking) {
  TempDir dir;
  NodeCertificates certs(dir.path());
  Cluster cl(tls_cluster(certs, /*secret=*/false));
  cl.start_all();
  create_topic(cl.bootstrap(), "f", 1, 3);
  produce_and_read_back(cl, "f", 50, "before", 50);
  auto& b1 = cl.broker(0);
  broker::HandshakeMsg h;
  h.step = broker::HandshakeStep::hello;
  h.cluster_id = "quorumq";
  h.node_id = 2;
  h.target_id = 1;
  h.dir_id = "forged";
  h.nonce = broker::make_nonce();
  const auto bytes = broker::encode_handshake(h).to_bytes();
  const std::string hello(bytes.begin(), bytes.end());
  auto s_client = [&](const std::string& cert) {
    return run_program({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(cl.peer_port(0)), "-cert",
                        certs(cert + ".pem"), "-key", certs(cert + ".key"), "-CAfile", certs("ca.pem"), "-quiet",
                        "-nocommands"},
                       hello, 30s);
  };

  // 1. Another CA's certificate naming quorumq-node-2.
  const auto tls_failures = metric(b1, "quorumq_peer_tls_handshake_failures_total");
  auto r = s_client("foreign2");
  EXPECT_TRUE(wait_until([&] { return metric(b1, "quorumq_peer_tls_handshake_failures_total") > tls_failures; }, 10s));
  EXPECT_TRUE(wait_until([&] { return !b1.log_contains("TLS handshake failed").empty(); }, 10s));
  EXPECT_NE(b1.log_contains("TLS handshake failed").find("certificate"), std::string::npos)
      << b1.log_contains("TLS handshake failed");

  // 2. Our CA's certificate for node 9, claiming to be broker 2.
  r = s_client("node9");
  EXPECT_NE(r.out.find("expected quorumq-node-2"), std::string::npos) << "the refusal should reach the forger: " << r.out;
  ASSERT_TRUE(wait_until([&] { return !b1.log_contains("it claims to be broker 2").empty(); }, 10s));
  const std::string line = b1.log_contains("it claims to be broker 2");
  EXPECT_NE(line.find("peer listener: refused 127.0.0.1:"), std::string::npos) << line;
  EXPECT_NE(line.find("CN=quorumq-node-9"), std::string::npos) << line;
  EXPECT_NE(line.find("expected quorumq-node-2"), std::string::npos) << line;
  EXPECT_EQ(metric(b1, "quorumq_peer_tls_identity_failures_total"), 1);
  EXPECT_EQ(metric(b1, "quorumq_peer_links_inbound"), 2);

  produce_and_read_back(cl, "f", 50, "after", 100);
  EXPECT_TRUE(wait_until([&] { return cl.replicas_agree("f", 1); }, 30s));
}

// Where broker 3 should be, openssl s_server answers with a valid certificate for node 9:
// brokers 1 and 2 complete the TLS handshake, see the wrong name, and send it nothing (logged,
// counted). With broker 3 itself back, all three replicate.
TEST(PeerTls, forgedListener_wrongNodeCertificate_dialersRefuseIt) {
  TempDir dir;
  NodeCertificates certs(dir.path());
  Cluster cl(tls_cluster(certs, /*secret=*/false));
  testsupport::SpawnOptions o;
  o.argv = {"openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(cl.peer_port(2)), "-cert",
            certs("node9.pem"), "-key", certs("node9.key"), "-CAfile", certs("ca.pem"), "-Verify", "1", "-www"};
  o.search_path = true;
  o.output = dir.path() / "s_server.out";
  testsupport::Process forger(o);
  // Brokers 1 and 2 are a majority: they become ready without broker 3.
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(cl.broker(i).try_spawn());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(cl.broker(i).try_wait_ready(60s));
  for (int i = 0; i < 2; ++i) {
    auto& b = cl.broker(i);
    EXPECT_TRUE(wait_until([&] { return metric(b, "quorumq_peer_tls_identity_failures_total") > 0; }, 15s))
        << "broker " << i + 1 << " did not notice";
    std::string line;
    EXPECT_TRUE(wait_until([&] { return !(line = b.log_contains("replication link to broker 3 at")).empty(); }, 10s));
    EXPECT_NE(line.find("it is not broker 3: its certificate names CN=quorumq-node-9, DNS:quorumq-node-9, expected "
                        "quorumq-node-3"),
              std::string::npos)
        << line;
  }
  forger.kill9();
  cl.broker(2).start(30s);
  create_topic(cl.bootstrap(), "l", 1, 3);
  produce_and_read_back(cl, "l", 50, "three", 50);
  EXPECT_TRUE(wait_until([&] { return cl.replicas_agree("l", 1); }, 30s));
}

// A broker without peer TLS, with the right cluster secret and claiming to be broker 2 (at its
// own peer port), dials brokers 1 and 3: their TLS peer ports refuse its plain text (logged
// with the hint, counted), and the TLS + secret cluster goes on.
TEST(PeerTls, plainTextPeer_refusedAtTheTlsPort) {
  TempDir dir;
  NodeCertificates certs(dir.path());
  Cluster cl(tls_cluster(certs, /*secret=*/true));
  cl.start_all();
  EXPECT_FALSE(cl.broker(0).log_contains("mutual TLS (certificates naming quorumq-node-<id>) and the cluster secret").empty());
  create_topic(cl.bootstrap(), "p", 1, 3);
  produce_and_read_back(cl, "p", 20, "before", 20);
  BrokerProcess plain(2, dir.path() / "plain",
                      {"--peers=" + cl.peers(), "--peer-listen=127.0.0.1:" + std::to_string(free_port()),
                       "--cluster-secret-file=" + cl.secret_file().string(), "--log-level=info"});
  plain.spawn();  // never ready: nobody accepts its links
  for (int i : {0, 2}) {
    auto& b = cl.broker(i);
    EXPECT_TRUE(wait_until([&] { return metric(b, "quorumq_peer_tls_handshake_failures_total") > 0; }, 15s))
        << "broker " << i + 1;
    std::string line;
    EXPECT_TRUE(wait_until([&] { return !(line = b.log_contains("TLS handshake failed")).empty(); }, 10s));
    EXPECT_NE(line.find("peer listener: 127.0.0.1:"), std::string::npos) << line;
    EXPECT_NE(line.find("plain text at the other end?"), std::string::npos) << line;
    EXPECT_EQ(metric(b, "quorumq_peer_links_inbound"), 2) << "broker " << i + 1;
  }
  EXPECT_TRUE(wait_until([&] { return !plain.log_contains("replication link to broker 1").empty(); }, 15s));
  plain.kill9();
  produce_and_read_back(cl, "p", 20, "after", 40);
}

// Peer TLS flags that cannot work stop the broker at start, saying what to do.
TEST(PeerTls, badPeerTlsConfig_refusedAtStartSayingWhy) {
  TempDir dir;
  NodeCertificates certs(dir.path());
  const std::string peers = "1@127.0.0.1:" + std::to_string(free_port()) + ",2@127.0.0.1:" + std::to_string(free_port()) +
                            ",3@127.0.0.1:" + std::to_string(free_port());
  auto start = [&](std::vector<std::string> more) {
    std::vector<std::string> argv = {broker_binary(), "--node-id=1", "--listen=127.0.0.1:" + std::to_string(free_port()),
                                     "--admin-listen=127.0.0.1:" + std::to_string(free_port()),
                                     "--data-dir=" + (dir.path() / "d").string(), "--peers=" + peers};
    argv.insert(argv.end(), more.begin(), more.end());
    return run_program(argv, {}, 30s);
  };
  // Two of three.
  auto r = start({"--peer-tls-cert-file=" + certs("node1.pem"), "--peer-tls-key-file=" + certs("node1.key")});
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("--peer-tls-ca-file missing"), std::string::npos) << r.err;
  // Another node's certificate: the other brokers would refuse this one.
  auto f = certs.flags(2);
  f[1] = "--peer-tls-key-file=" + certs("node2.key");
  r = start(f);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("names CN=quorumq-node-2, DNS:quorumq-node-2, not quorumq-node-1"), std::string::npos) << r.err;
  // A key that is not the certificate's.
  f = certs.flags(1);
  f[1] = "--peer-tls-key-file=" + certs("node2.key");
  r = start(f);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--peer-tls-key-file " + certs("node2.key")), std::string::npos) << r.err;
}

}  // namespace
}  // namespace quorumq::test
