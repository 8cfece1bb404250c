// TLS on the client and Kafka listeners (issue 18, first part), with real processes and
// certificates made by the openssl command line: the quorumq CLI (our SDK) and kcat (librdkafka,
// security.protocol=SSL) produce and consume through a broker with --tls-cert-file; a plain-text
// client, a client that does not trust the broker's CA, and (with --tls-client-auth=required) a
// client without a certificate are each refused with a message that says what to do, counted in
// quorumq_tls_handshake_failures_total, and change nothing; a key that does not match its
// certificate stops the broker at start.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "harness.h"
#include "quorumq/testsupport/local_cluster.h"

namespace quorumq::test {
namespace {

std::string cli() { return std::filesystem::path(broker_binary()).parent_path().parent_path() / "client/cli/quorumq"; }

// A CA, a broker certificate for localhost / 127.0.0.1 signed by it, a client certificate signed
// by it, and a second CA nobody uses.
class Certificates {
 public:
  explicit Certificates(const std::filesystem::path& dir) : dir_(dir) {
    ca("ca");
    ca("other-ca");
    leaf("broker", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1");
    leaf("client", "quorumq-client", "extendedKeyUsage=clientAuth");
  }
  std::string operator()(const std::string& name) const { return (dir_ / name).string(); }

 private:
  void run(const std::vector<std::string>& argv) {
    auto r = run_program(argv, {}, std::chrono::seconds(60));
    ASSERT_EQ(r.status, 0) << r.err;
  }
  void ca(const std::string& n) {
    run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", (*this)(n + ".key"), "-out",
         (*this)(n + ".pem"), "-days", "2", "-subj", "/CN=" + n});
  }
  void leaf(const std::string& n, const std::string& cn, const std::string& ext) {
    run({"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", (*this)(n + ".key"), "-out", (*this)(n + ".csr"),
         "-subj", "/CN=" + cn});
    std::ofstream((*this)(n + ".ext")) << ext << "\n";
    run({"openssl", "x509", "-req", "-in", (*this)(n + ".csr"), "-CA", (*this)("ca.pem"), "-CAkey", (*this)("ca.key"),
         "-CAcreateserial", "-out", (*this)(n + ".pem"), "-days", "2", "-extfile", (*this)(n + ".ext")});
  }
  std::filesystem::path dir_;
};

std::string metric(std::uint16_t admin_port, const std::string& name) {
  auto m = http_get(admin_port, "/metrics");
  if (!m) return {};
  const auto at = m->body.find("\n" + name + " ");
  if (at == std::string::npos) return {};
  const auto end = m->body.find('\n', at + 1);
  return m->body.substr(at + name.size() + 2, end - at - name.size() - 2);
}

TEST(Tls, cliAndKcatOverTls_plainAndUntrustedClientsRefused) {
  TempDir dir;
  Certificates certs(dir.path());
  const std::uint16_t kafka_port = free_port();
  BrokerProcess b(1, dir.path() / "d",
                  {"--log-level=info", "--tls-cert-file=" + certs("broker.pem"), "--tls-key-file=" + certs("broker.key"),
                   "--kafka-listen=127.0.0.1:" + std::to_string(kafka_port)});
  b.start();
  EXPECT_NE(b.log_contains("TLS on the client and Kafka listener(s)").find("TLS 1.2+"), std::string::npos);
  const std::vector<std::string> tls = {cli(), "--bootstrap", "localhost:" + std::to_string(b.port()), "--tls-ca-file",
                                        certs("ca.pem")};
  auto with = [](std::vector<std::string> base, std::vector<std::string> more) {
    base.insert(base.end(), more.begin(), more.end());
    return base;
  };
  auto r = run_program(with(tls, {"topic", "create", "t", "--partitions", "1", "--replicas", "1"}), {}, 60s);
  ASSERT_EQ(r.status, 0) << r.err;
  r = run_program(with(tls, {"produce", "t"}), "one\ntwo\n", 60s);
  ASSERT_EQ(r.status, 0) << r.err;
  r = run_program(with(tls, {"consume", "t", "-p", "0", "-e"}), {}, 60s);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "one\ntwo\n");

  // A plain-text client: refused, told about TLS; the broker counts and logs it.
  r = run_program({cli(), "--bootstrap", b.address(), "--connect-timeout-ms", "3000", "topic", "list"}, {}, 60s);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("if the broker has TLS on, connect with --tls-ca-file"), std::string::npos) << r.err;
  EXPECT_TRUE(wait_until([&] { return !b.log_contains("TLS handshake failed").empty(); }, 10s));
  EXPECT_NE(b.log_contains("TLS handshake failed").find("plain text"), std::string::npos);
  // A client that trusts another CA: refused by its own check, before it sends anything.
  r = run_program({cli(), "--bootstrap", "localhost:" + std::to_string(b.port()), "--tls-ca-file", certs("other-ca.pem"),
                   "--connect-timeout-ms", "3000", "topic", "list"},
                  {}, 60s);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("certificate verify failed"), std::string::npos) << r.err;
  EXPECT_NE(metric(b.admin_port(), "quorumq_tls_handshake_failures_total"), "0");

  // kcat over SSL on the Kafka listener reads what the CLI wrote and writes more.
  const std::string kafka = "127.0.0.1:" + std::to_string(kafka_port);
  const std::vector<std::string> ssl = {"-X", "security.protocol=SSL", "-X", "ssl.ca.location=" + certs("ca.pem")};
  r = run_program(with({"kcat", "-b", kafka, "-P", "-t", "t"}, ssl), "three\n", 60s);
  ASSERT_EQ(r.status, 0) << r.err;
  r = run_program(with({"kcat", "-b", kafka, "-C", "-t", "t", "-o", "beginning", "-e", "-q"}, ssl), {}, 60s);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "one\ntwo\nthree\n");
  // kcat in plain text gets nowhere (and writes nothing).
  r = run_program({"kcat", "-b", kafka, "-P", "-t", "t", "-X", "message.timeout.ms=3000"}, "plain\n", 60s);
  EXPECT_NE(r.status, 0);
  r = run_program(with(tls, {"consume", "t", "-p", "0", "-e"}), {}, 60s);
  EXPECT_EQ(r.out, "one\ntwo\nthree\n");
}

TEST(Tls, mutualTls_aClientWithoutACertificateIsRefused) {
  TempDir dir;
  Certificates certs(dir.path());
  BrokerProcess b(1, dir.path() / "d",
                  {"--log-level=info", "--tls-cert-file=" + certs("broker.pem"), "--tls-key-file=" + certs("broker.key"),
                   "--tls-ca-file=" + certs("ca.pem"), "--tls-client-auth=required", "--super-users=quorumq-client",
                   "--tls-principal-rule=RULE:^CN=(reader)$/app-$1/"});
  b.start();
  const std::vector<std::string> base = {cli(), "--bootstrap", "localhost:" + std::to_string(b.port()),
                                         "--tls-ca-file", certs("ca.pem"), "--connect-timeout-ms", "3000"};
  auto with = [&](std::vector<std::string> more) {
    auto v = base;
    v.insert(v.end(), more.begin(), more.end());
    return v;
  };
  auto r = run_program(with({"topic", "list"}), {}, 60s);
  EXPECT_NE(r.status, 0) << "no client certificate, yet the broker answered: " << r.out;
  EXPECT_TRUE(wait_until([&] { return !b.log_contains("TLS handshake failed").empty(); }, 10s));
  r = run_program(with({"--tls-cert-file", certs("client.pem"), "--tls-key-file", certs("client.key"), "topic", "create",
                        "m", "--partitions", "1", "--replicas", "1"}),
                  {}, 60s);
  EXPECT_EQ(r.status, 0) << r.err;
  // The certificate names the principal (its CN, or what a --tls-principal-rule makes of its
  // subject: "reader" becomes app-reader), and mutual TLS turns the ACLs on: reader (no ACL, not
  // a super user) may connect but not create or delete topics.
  for (auto argv : std::vector<std::vector<std::string>>{
           {"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", certs("reader.key"), "-out", certs("reader.csr"),
            "-subj", "/CN=reader"},
           {"openssl", "x509", "-req", "-in", certs("reader.csr"), "-CA", certs("ca.pem"), "-CAkey", certs("ca.key"),
            "-CAcreateserial", "-out", certs("reader.pem"), "-days", "2", "-extfile", certs("client.ext")}})
    ASSERT_EQ(run_program(argv, {}, 60s).status, 0);
  const std::vector<std::string> reader = {"--tls-cert-file", certs("reader.pem"), "--tls-key-file", certs("reader.key")};
  auto as_reader = [&](std::vector<std::string> more) {
    auto v = reader;
    v.insert(v.end(), more.begin(), more.end());
    return with(v);
  };
  r = run_program(as_reader({"topic", "delete", "m"}), {}, 60s);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("User:app-reader may not delete topic 'm'"), std::string::npos) << r.err;
  r = run_program(as_reader({"topic", "list"}), {}, 60s);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "") << "reader may not describe m";
}

// SIGHUP reloads the certificate files: new connections get the new certificate (here one from
// another CA, so who trusts what tells them apart), a connection opened before keeps working,
// and a reload of broken files keeps the previous certificate (counted, logged).
TEST(Tls, sighupReloadsCertificates_openConnectionsCarryOn) {
  TempDir dir;
  Certificates certs(dir.path());
  // The broker reads these two paths; the test swaps what they hold.
  const auto cert = dir.path() / "live.pem", key = dir.path() / "live.key";
  std::filesystem::copy_file(certs("broker.pem"), cert);
  std::filesystem::copy_file(certs("broker.key"), key);
  // A second broker certificate, from the other CA.
  auto mk = [&](std::vector<std::string> argv) {
    auto r = run_program(argv, {}, 60s);
    ASSERT_EQ(r.status, 0) << r.err;
  };
  mk({"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", certs("b2.key"), "-out", certs("b2.csr"), "-subj",
      "/CN=localhost"});
  mk({"openssl", "x509", "-req", "-in", certs("b2.csr"), "-CA", certs("other-ca.pem"), "-CAkey", certs("other-ca.key"),
      "-CAcreateserial", "-out", certs("b2.pem"), "-days", "2", "-extfile", certs("broker.ext")});
  BrokerProcess b(1, dir.path() / "d",
                  {"--log-level=info", "--tls-cert-file=" + cert.string(), "--tls-key-file=" + key.string()});
  b.start();
  auto client = [&](const std::string& ca) {
    return std::vector<std::string>{cli(), "--bootstrap", "localhost:" + std::to_string(b.port()), "--tls-ca-file", ca,
                                    "--connect-timeout-ms", "3000"};
  };
  auto with = [](std::vector<std::string> base, std::vector<std::string> more) {
    base.insert(base.end(), more.begin(), more.end());
    return base;
  };
  ASSERT_EQ(run_program(with(client(certs("ca.pem")), {"topic", "create", "t", "--partitions", "1", "--replicas", "1"}),
                        {}, 60s).status, 0);
  // A consumer that connected under the first certificate, printing as messages arrive.
  testsupport::SpawnOptions o;
  o.argv = with(client(certs("ca.pem")), {"consume", "t", "-p", "0", "-o", "beginning", "-n", "2", "--timeout-ms", "60000"});
  o.output = dir.path() / "consumer.out";
  testsupport::Process consumer(o);
  ASSERT_EQ(run_program(with(client(certs("ca.pem")), {"produce", "t"}), "before\n", 60s).status, 0);
  auto out = [&] {
    std::ifstream f(dir.path() / "consumer.out");
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  };
  ASSERT_TRUE(wait_until([&] { return out().find("before\n") != std::string::npos; }, 30s)) << out();

  // Broken files first: the reload fails and the old certificate stays.
  std::filesystem::copy_file(certs("client.key"), key, std::filesystem::copy_options::overwrite_existing);
  ASSERT_EQ(::kill(b.pid(), SIGHUP), 0);
  EXPECT_TRUE(wait_until([&] { return !b.log_contains("TLS certificates NOT reloaded").empty(); }, 10s));
  EXPECT_EQ(run_program(with(client(certs("ca.pem")), {"topic", "list"}), {}, 60s).status, 0);
  // Then the other CA's certificate: new clients must trust that CA now.
  std::filesystem::copy_file(certs("b2.pem"), cert, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(certs("b2.key"), key, std::filesystem::copy_options::overwrite_existing);
  ASSERT_EQ(::kill(b.pid(), SIGHUP), 0);
  EXPECT_TRUE(wait_until([&] { return !b.log_contains("TLS certificates reloaded from").empty(); }, 10s));
  auto r = run_program(with(client(certs("ca.pem")), {"topic", "list"}), {}, 60s);
  EXPECT_NE(r.status, 0) << "a client trusting only the old CA still connected";
  EXPECT_NE(r.err.find("certificate verify failed"), std::string::npos) << r.err;
  r = run_program(with(client(certs("other-ca.pem")), {"produce", "t"}), "after\n", 60s);
  EXPECT_EQ(r.status, 0) << r.err;
  // The consumer's connection, made under the old certificate, still delivers.
  EXPECT_TRUE(wait_until([&] { return out().find("after\n") != std::string::npos; }, 30s)) << out();
  EXPECT_EQ(consumer.wait(30s), std::optional<int>(0)) << out();
}

// --admin-tls: the admin endpoint speaks HTTPS with the broker's certificate (curl trusting the
// CA reads the probes and, with the token, /metrics); plain HTTP gets no answer.
TEST(Tls, adminEndpointOverHttps) {
  TempDir dir;
  Certificates certs(dir.path());
  std::ofstream(dir.path() / "token") << "admin-token-0123456789abcdef\n";
  BrokerProcess b(1, dir.path() / "d",
                  {"--log-level=info", "--tls-cert-file=" + certs("broker.pem"), "--tls-key-file=" + certs("broker.key"),
                   "--admin-tls", "--admin-token-file=" + (dir.path() / "token").string()});
  b.spawn();  // its readiness is HTTPS now: polled with curl below
  const std::string https = "https://localhost:" + std::to_string(b.admin_port());
  auto code = [&](std::vector<std::string> argv) { return run_program(argv, {}, 30s).out; };
  const std::vector<std::string> curl = {"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", certs("ca.pem")};
  auto with = [](std::vector<std::string> base, std::vector<std::string> more) {
    base.insert(base.end(), more.begin(), more.end());
    return base;
  };
  ASSERT_TRUE(wait_until([&] { return code(with(curl, {https + "/readyz"})) == "200"; }, 30s)) << b.log_file();
  EXPECT_EQ(code(with(curl, {https + "/healthz"})), "200");
  EXPECT_EQ(code(with(curl, {https + "/metrics"})), "401");
  EXPECT_EQ(code(with(curl, {"-H", "Authorization: Bearer admin-token-0123456789abcdef", https + "/metrics"})), "200");
  // Plain HTTP to the HTTPS port: no HTTP answer (curl reports 000), the failure counted.
  EXPECT_EQ(code({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                  "http://127.0.0.1:" + std::to_string(b.admin_port()) + "/healthz"}),
            "000");
  EXPECT_TRUE(wait_until([&] { return !b.log_contains("admin connection from").empty(); }, 10s));
}

// Expired certificates (made with -days 0: expired a second later): a client refuses a broker
// whose certificate expired (and the broker warns about it at start), and a broker requiring
// client certificates refuses an expired one.
TEST(Tls, expiredCertificatesAreRefusedBothWays) {
  TempDir dir;
  Certificates certs(dir.path());
  auto mk = [&](const std::string& n, const std::string& cn, const std::string& ext) {
    std::ofstream(certs(n + ".ext")) << ext << "\n";
    for (auto argv : std::vector<std::vector<std::string>>{
             {"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", certs(n + ".key"), "-out", certs(n + ".csr"),
              "-subj", "/CN=" + cn},
             {"openssl", "x509", "-req", "-in", certs(n + ".csr"), "-CA", certs("ca.pem"), "-CAkey", certs("ca.key"),
              "-CAcreateserial", "-out", certs(n + ".pem"), "-days", "0", "-extfile", certs(n + ".ext")}})
      ASSERT_EQ(run_program(argv, {}, 60s).status, 0);
  };
  mk("old-broker", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1");
  mk("old-client", "quorumq-client", "extendedKeyUsage=clientAuth");
  // Past their notAfter (the same second they were made) before anything uses them.
  ASSERT_TRUE(wait_until([&] {
    return run_program({"openssl", "verify", "-CAfile", certs("ca.pem"), certs("old-client.pem")}, {}, 10s).status != 0;
  }, 10s));
  BrokerProcess expired(1, dir.path() / "d1",
                        {"--log-level=info", "--tls-cert-file=" + certs("old-broker.pem"),
                         "--tls-key-file=" + certs("old-broker.key")});
  expired.start();
  EXPECT_NE(expired.log_contains("clients will refuse it"), "");
  auto r = run_program({cli(), "--bootstrap", "localhost:" + std::to_string(expired.port()), "--tls-ca-file",
                        certs("ca.pem"), "--connect-timeout-ms", "3000", "topic", "list"},
                       {}, 60s);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("certificate has expired"), std::string::npos) << r.err;

  BrokerProcess strict(2, dir.path() / "d2",
                       {"--log-level=info", "--tls-cert-file=" + certs("broker.pem"), "--tls-key-file=" + certs("broker.key"),
                        "--tls-ca-file=" + certs("ca.pem"), "--tls-client-auth=required", "--super-users=quorumq-client"});
  strict.start();
  auto as = [&](const std::string& cert) {
    return run_program({cli(), "--bootstrap", "localhost:" + std::to_string(strict.port()), "--tls-ca-file",
                        certs("ca.pem"), "--tls-cert-file", certs(cert + ".pem"), "--tls-key-file", certs(cert + ".key"),
                        "--connect-timeout-ms", "3000", "topic", "list"},
                       {}, 60s);
  };
  EXPECT_EQ(as("client").status, 0);
  r = as("old-client");
  EXPECT_NE(r.status, 0) << "an expired client certificate was accepted";
  EXPECT_TRUE(wait_until([&] { return !strict.log_contains("certificate has expired").empty(); }, 10s));
}

// With SASL on, the admin endpoint over HTTPS takes a user's password (HTTP Basic) in place of
// the token, and the ACLs decide: cluster describe for /metrics, cluster alter for a backup.
TEST(Tls, adminOverHttpsWithSasl_usersNeedTheClusterAcl) {
  TempDir dir;
  Certificates certs(dir.path());
  std::ofstream(dir.path() / "boot") << "admin:bootstrap-secret-1\n";
  std::filesystem::permissions(dir.path() / "boot", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  std::filesystem::create_directories(dir.path() / "backups");
  BrokerProcess b(1, dir.path() / "d",
                  {"--log-level=info", "--tls-cert-file=" + certs("broker.pem"), "--tls-key-file=" + certs("broker.key"),
                   "--admin-tls", "--sasl", "--sasl-bootstrap-user-file=" + (dir.path() / "boot").string(),
                   "--backup-dir=" + (dir.path() / "backups").string()});
  b.spawn();
  const std::string https = "https://localhost:" + std::to_string(b.admin_port());
  auto code = [&](std::vector<std::string> more) {
    std::vector<std::string> argv = {"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", certs("ca.pem")};
    argv.insert(argv.end(), more.begin(), more.end());
    return run_program(argv, {}, 30s).out;
  };
  ASSERT_TRUE(wait_until([&] { return code({https + "/readyz"}) == "200"; }, 30s)) << b.log_file();
  std::ofstream(dir.path() / "pw") << "bootstrap-secret-1\n";
  auto admin = [&](std::vector<std::string> more, const std::string& in = {}) {
    std::vector<std::string> argv = {cli(), "--bootstrap", "localhost:" + std::to_string(b.port()), "--tls-ca-file",
                                     certs("ca.pem"), "--user", "admin", "--password-file", (dir.path() / "pw").string()};
    argv.insert(argv.end(), more.begin(), more.end());
    return run_program(argv, in, 60s);
  };
  auto r = admin({"user", "create", "ops"}, "ops-password-1\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(code({https + "/metrics"}), "401");
  EXPECT_EQ(code({"-u", "ops:wrong-password", https + "/metrics"}), "401");
  EXPECT_EQ(code({"-u", "ops:ops-password-1", https + "/metrics"}), "403");
  EXPECT_EQ(code({"-u", "admin:bootstrap-secret-1", https + "/metrics"}), "200");  // a super user
  ASSERT_EQ(admin({"acl", "add", "--principal", "User:ops", "--operation", "describe", "--cluster"}).status, 0);
  EXPECT_EQ(code({"-u", "ops:ops-password-1", https + "/metrics"}), "200");
  EXPECT_EQ(code({"-u", "ops:ops-password-1", "-X", "POST", https + "/v1/backup?to=one"}), "403");
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "backups" / "one"));
  ASSERT_EQ(admin({"acl", "add", "--principal", "User:ops", "--operation", "alter", "--cluster"}).status, 0);
  EXPECT_EQ(code({"-u", "ops:ops-password-1", "-X", "POST", https + "/v1/backup?to=one"}), "200");
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "backups" / "one" / "data.mdb"));
}

// Three TLS brokers: a kcat consumer group over SSL commits offsets of partitions led by other
// brokers than the coordinator (which forwards them over TLS, presenting its own certificate),
// and the native CLI over TLS reads those commits back.
TEST(Tls, threeBrokers_kafkaGroupCommitsForwardedOverTls) {
  TempDir dir;
  Certificates certs(dir.path());
  testsupport::ClusterOptions o;
  o.brokers = 3;
  o.broker_bin = broker_binary();
  o.kafka = true;
  o.extra_args = {"--tls-cert-file=" + certs("broker.pem"), "--tls-key-file=" + certs("broker.key"),
                  "--tls-ca-file=" + certs("ca.pem")};
  testsupport::LocalCluster cl(o);
  auto started = cl.start(90s);
  ASSERT_TRUE(started) << started.error();
  const std::vector<std::string> cli_tls = {cli(), "--bootstrap", cl.bootstrap(), "--tls-ca-file", certs("ca.pem")};
  auto with = [](std::vector<std::string> base, std::vector<std::string> more) {
    base.insert(base.end(), more.begin(), more.end());
    return base;
  };
  auto r = run_program(with(cli_tls, {"topic", "create", "g3", "--partitions", "3", "--replicas", "3"}), {}, 60s);
  ASSERT_EQ(r.status, 0) << r.err;
  std::string in;
  for (int i = 0; i < 30; ++i) in += "k" + std::to_string(i) + ":v" + std::to_string(i) + "\n";
  const std::vector<std::string> ssl = {"-X", "security.protocol=SSL", "-X", "ssl.ca.location=" + certs("ca.pem")};
  const std::string kafka = "127.0.0.1:" + std::to_string(cl.kafka_port(0));
  ASSERT_TRUE(wait_until([&] {
    return run_program(with({"kcat", "-b", kafka, "-P", "-t", "g3", "-K:"}, ssl), in, 60s).status == 0;
  }, 30s));
  r = run_program(with({"kcat", "-b", kafka, "-G", "tg", "-X", "auto.offset.reset=earliest", "-e", "-q", "g3"}, ssl), {},
                  90s);
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream lines(r.out);
  int n = 0;
  for (std::string l; std::getline(lines, l);) ++n;
  EXPECT_EQ(n, 30) << r.out;
  // kcat committed on leaving: the commits are in the partitions' logs, all 30 messages' worth.
  std::int64_t sum = 0;
  EXPECT_TRUE(wait_until([&] {
    auto q = run_program(with(cli_tls, {"group", "offsets", "tg"}), {}, 60s);
    sum = 0;
    std::istringstream qs(q.out);
    for (std::string line; std::getline(qs, line);) {
      std::istringstream ls(line);
      std::string t, committed;
      int p;
      if (ls >> t >> p >> committed && t == "g3" && committed != "-") sum += std::stoll(committed);
    }
    return sum == 30;
  }, 30s)) << "committed offsets sum to " << sum;
}

TEST(Tls, badCertificateFilesStopTheBrokerSayingWhy) {
  TempDir dir;
  Certificates certs(dir.path());
  auto start = [&](const std::string& cert, const std::string& key) {
    return run_program({broker_binary(), "--node-id=1", "--listen=127.0.0.1:" + std::to_string(free_port()),
                        "--admin-listen=127.0.0.1:" + std::to_string(free_port()),
                        "--data-dir=" + (dir.path() / "d").string(), "--tls-cert-file=" + cert, "--tls-key-file=" + key},
                       {}, 30s);
  };
  auto r = start(certs("broker.pem"), certs("client.key"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--tls-key-file " + certs("client.key") + ": key values mismatch"), std::string::npos) << r.err;
  r = start(certs("missing.pem"), certs("broker.key"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--tls-cert-file " + certs("missing.pem")), std::string::npos) << r.err;
}

}  // namespace
}  // namespace quorumq::test
