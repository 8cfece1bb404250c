// SASL SCRAM and ACLs on the native protocol (issue 18), with real broker processes and the
// quorumq CLI as a user types it: a broker with --sasl refuses clients without a login, a wrong
// password and an unknown user alike (slowly, counted, logged with the address), and a replayed
// SCRAM exchange; users are created, changed and deleted with `quorumq user`, never appear in
// clear in the broker's log, and replicate to every broker; with authentication on nothing is
// allowed without an ACL: produce, fetch, group consume, offset reset, create, delete and user
// changes are each refused with a clear error and change nothing, then allowed by `quorumq acl`;
// a deny wins. With mutual TLS the certificate's CN is the principal.
#include <gtest/gtest.h>

#include <deque>
#include <filesystem>
#include <fstream>

#include "cluster.h"
#include "harness.h"
#include "quorumq/protocol/scram.h"
#include "raw_client.h"

namespace quorumq::test {
namespace {

std::string cli() { return std::filesystem::path(broker_binary()).parent_path().parent_path() / "client/cli/quorumq"; }

constexpr const char* kToken = "admin-token-0123456789abcdef";

// With authentication on, /metrics needs the admin token (or a permitted user).
std::string metric(std::uint16_t admin_port, const std::string& name) {
  auto m = http_get(admin_port, "/metrics", 2s, std::string("Authorization: Bearer ") + kToken + "\r\n");
  if (!m) return {};
  const auto at = m->body.find("\n" + name + " ");
  if (at == std::string::npos) return {};
  const auto end = m->body.find('\n', at + 1);
  return m->body.substr(at + name.size() + 2, end - at - name.size() - 2);
}

void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p) << text;
  std::filesystem::permissions(p, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

// The CLI as `user` (password from a file) against `bootstrap`.
class As {
 public:
  As(std::string bootstrap, const std::filesystem::path& dir, std::string user, const std::string& password)
      : bootstrap_(std::move(bootstrap)), user_(std::move(user)) {
    if (!user_.empty()) {
      pw_ = dir / ("pw-" + user_ + "-" + std::to_string(std::hash<std::string>{}(password)));
      write_file(pw_, password + "\n");
    }
  }
  testsupport::RunResult operator()(std::vector<std::string> args, const std::string& input = {}) const {
    std::vector<std::string> argv = {cli(), "--bootstrap", bootstrap_, "--connect-timeout-ms", "5000"};
    if (!user_.empty()) argv.insert(argv.end(), {"--user", user_, "--password-file", pw_.string()});
    argv.insert(argv.end(), args.begin(), args.end());
    return run_program(argv, input, 60s);
  }

 private:
  std::string bootstrap_, user_;
  std::filesystem::path pw_;
};

class Sasl : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(dir.path() / "boot", "admin:bootstrap-secret-1\n");
    write_file(dir.path() / "token", kToken);
    b = std::make_unique<BrokerProcess>(
        1, dir.path() / "d",
        std::vector<std::string>{"--log-level=info", "--sasl", "--sasl-bootstrap-user-file=" + (dir.path() / "boot").string(),
                                 "--admin-token-file=" + (dir.path() / "token").string()});
    b->start();
  }
  As as(const std::string& user, const std::string& pw) { return As(b->address(), dir.path(), user, pw); }
  As admin() { return as("admin", "bootstrap-secret-1"); }
  TempDir dir;
  std::unique_ptr<BrokerProcess> b;
};

TEST_F(Sasl, loginsAreRequiredAndFailuresLookAlike) {
  auto r = as("", "")({"topic", "list"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("requires SASL"), std::string::npos) << r.err;
  const auto started = std::chrono::steady_clock::now();
  auto wrong = as("admin", "not-the-password")({"topic", "list"});
  const auto took = std::chrono::steady_clock::now() - started;
  auto ghost = as("ghost", "not-the-password")({"topic", "list"});
  EXPECT_NE(wrong.status, 0);
  EXPECT_NE(ghost.status, 0);
  EXPECT_NE(wrong.err.find("authentication failed: wrong user name or password"), std::string::npos) << wrong.err;
  EXPECT_NE(ghost.err.find("authentication failed: wrong user name or password"), std::string::npos) << ghost.err;
  EXPECT_GE(took, 900ms) << "a failed login is answered after a fixed delay";
  EXPECT_EQ(metric(b->admin_port(), "quorumq_sasl_authentication_failures_total"), "2");
  // Logged with the client's address (one line a minute per address: the first failure here).
  EXPECT_NE(b->log_contains("SASL authentication failed (user 'admin')").find("connection 127.0.0.1:"), std::string::npos);
  // The admin endpoint: probes open; /metrics needs the token (or a user with the ACL), and a
  // password is not taken over plain HTTP.
  EXPECT_EQ(http_get(b->admin_port(), "/healthz")->status, 200);
  EXPECT_EQ(http_get(b->admin_port(), "/metrics")->status, 401);
  const std::string basic = "Authorization: Basic " + protocol::scram::base64_encode("admin:bootstrap-secret-1") + "\r\n";
  auto m = http_get(b->admin_port(), "/metrics", 2s, basic);
  EXPECT_EQ(m->status, 401);
  EXPECT_NE(m->body.find("over --admin-tls"), std::string::npos) << m->body;
  // The bootstrap super user gets in (here through a client config file, as QUORUMQ_CLIENT_CONFIG).
  write_file(dir.path() / "admin.pw", "bootstrap-secret-1\n");
  write_file(dir.path() / "client.toml", "bootstrap = \"" + b->address() + "\"\nuser = \"admin\"\npassword-file = \"" +
                                             (dir.path() / "admin.pw").string() + "\"\n");
  r = run_program({"env", "QUORUMQ_CLIENT_CONFIG=" + (dir.path() / "client.toml").string(), cli(), "topic", "create", "t",
                   "-p", "1", "-r", "1"},
                  {}, 60s);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(metric(b->admin_port(), "quorumq_sasl_authentications_total"), "1");
}

// Two connections: the second replays the first one's client-final against its own exchange.
TEST_F(Sasl, aReplayedScramExchangeIsRefused) {
  using namespace protocol;
  auto frame = [](std::uint32_t corr, const std::string& mech, const std::string& token) {
    flatbuffers::FlatBufferBuilder fbb(256);
    const auto m = fbb.CreateString(mech);
    const auto t = fbb.CreateVector(reinterpret_cast<const std::uint8_t*>(token.data()), token.size());
    fbb.Finish(wire::CreateSaslAuthenticateRequest(fbb, m, t));
    return finish_frame(fbb, FrameHeader{ApiId::sasl_authenticate, 0, corr, 0});
  };
  std::deque<ReceivedFrame> frames;  // each answer's bytes stay put while the test reads them
  auto answer = [&frames](RawClient& c) -> const wire::SaslAuthenticateResponse* {
    auto f = c.read_frame(5s);
    if (!f || f->header.is_error_payload()) return nullptr;
    frames.push_back(std::move(*f));
    return payload_as<wire::SaslAuthenticateResponse>(frames.back().payload);
  };
  auto bytes = [](const wire::SaslAuthenticateResponse* r) {
    return std::string(reinterpret_cast<const char*>(r->auth_bytes()->data()), r->auth_bytes()->size());
  };
  scram::ClientExchange ex(scram::Mechanism::sha256, "admin", "bootstrap-secret-1");
  const auto first = ex.first();
  RawClient one(b->port());
  ASSERT_TRUE(one.send_frame(frame(1, "SCRAM-SHA-256", first)));
  auto r1 = answer(one);
  ASSERT_TRUE(r1 && r1->error() == wire::ErrorCode::none);
  std::string why;
  const auto final = ex.final(bytes(r1), &why);
  ASSERT_TRUE(final) << why;
  ASSERT_TRUE(one.send_frame(frame(2, "", *final)));
  auto r2 = answer(one);
  ASSERT_TRUE(r2 && r2->error() == wire::ErrorCode::none);
  EXPECT_TRUE(ex.verify_server(bytes(r2), &why)) << why;
  EXPECT_EQ(r2->principal()->str(), "User:admin");

  RawClient two(b->port());
  ASSERT_TRUE(two.send_frame(frame(1, "SCRAM-SHA-256", first)));
  auto r3 = answer(two);
  ASSERT_TRUE(r3 && r3->error() == wire::ErrorCode::none);
  EXPECT_NE(bytes(r3), bytes(r1)) << "every exchange gets a fresh server nonce";
  ASSERT_TRUE(two.send_frame(frame(2, "", *final)));
  auto r4 = answer(two);
  ASSERT_TRUE(r4);
  EXPECT_EQ(r4->error(), wire::ErrorCode::sasl_authentication_failed);
  EXPECT_TRUE(two.wait_closed(5s));
  EXPECT_NE(b->log_contains("SCRAM nonce does not match"), "");
}

TEST_F(Sasl, usersAndAclsDecideWhatEachUserMayDo) {
  auto adm = admin();
  ASSERT_EQ(adm({"topic", "create", "orders", "-p", "1", "-r", "1"}).status, 0);
  ASSERT_EQ(adm({"produce", "orders"}, "first\n").status, 0);
  auto r = adm({"user", "create", "alice"}, "alice-password-1\n");
  ASSERT_EQ(r.status, 0) << r.err;
  r = adm({"user", "create", "alice"}, "alice-password-1\n");
  EXPECT_NE(r.status, 0);  // already there
  r = adm({"user", "list"});
  EXPECT_NE(r.out.find("alice\tSCRAM-SHA-256(8192),SCRAM-SHA-512(8192)"), std::string::npos) << r.out;
  EXPECT_EQ(b->log_contains("alice-password-1"), "") << "a password reached the broker's log";

  auto alice = as("alice", "alice-password-1");
  r = alice({"topic", "list"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "") << "without an ACL alice sees no topic";
  auto refused = [](const testsupport::RunResult& res, const std::string& what) {
    EXPECT_NE(res.status, 0) << what;
    EXPECT_NE(res.err.find("authorization_failed"), std::string::npos) << what << ": " << res.err;
  };
  refused(alice({"produce", "orders"}, "evil\n"), "produce");
  refused(alice({"consume", "orders", "-p", "0", "-e"}), "fetch");
  refused(alice({"consume", "orders", "-g", "g", "-e", "--from-beginning", "--timeout-ms", "20000"}), "group consume");
  refused(alice({"group", "reset", "g", "-t", "orders", "--to", "earliest"}), "group reset");
  refused(alice({"topic", "create", "mine", "-p", "1", "-r", "1"}), "create");
  refused(alice({"topic", "delete", "orders"}), "delete");
  refused(alice({"user", "create", "mallory"}, "mallory-password\n"), "user create");
  refused(alice({"acl", "add", "--principal", "User:alice", "--operation", "all", "--topic", "*"}), "acl add");
  EXPECT_NE(metric(b->admin_port(), "quorumq_authorization_failures_total"), "0");
  // Nothing changed.
  r = adm({"consume", "orders", "-p", "0", "-e"});
  EXPECT_EQ(r.out, "first\n");
  r = adm({"topic", "list"});
  EXPECT_EQ(r.out.find("mine"), std::string::npos);
  EXPECT_NE(r.out.find("orders"), std::string::npos);
  EXPECT_EQ(adm({"user", "list"}).out.find("mallory"), std::string::npos);

  // Granted: write and read orders, read group g (prefixed).
  ASSERT_EQ(adm({"acl", "add", "--principal", "User:alice", "--operation", "write", "--topic", "orders"}).status, 0);
  ASSERT_EQ(adm({"acl", "add", "--principal", "User:alice", "--operation", "read", "--topic", "ord", "--prefixed"}).status, 0);
  ASSERT_EQ(adm({"acl", "add", "--principal", "User:alice", "--operation", "read", "--group", "g"}).status, 0);
  r = adm({"acl", "list", "--principal", "User:alice"});
  EXPECT_NE(r.out.find("User:alice\tallow\tread\ttopic:ord*\tprefixed"), std::string::npos) << r.out;
  r = alice({"produce", "orders"}, "second\n");
  EXPECT_EQ(r.status, 0) << r.err;
  r = alice({"--sasl-mechanism", "SCRAM-SHA-512", "consume", "orders", "-g", "g", "--from-beginning", "-e"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "first\nsecond\n");
  r = adm({"group", "offsets", "g"});
  EXPECT_NE(r.out.find("orders"), std::string::npos) << r.out;
  EXPECT_EQ(alice({"topic", "list"}).out.find("orders"), 0u) << "describe is implied by read";

  // A deny wins over the allows.
  ASSERT_EQ(adm({"acl", "add", "--principal", "User:*", "--operation", "read", "--topic", "orders", "--deny"}).status, 0);
  refused(alice({"consume", "orders", "-p", "0", "-e"}), "fetch under a deny");
  r = adm({"acl", "remove", "--deny", "--topic", "orders"});
  EXPECT_NE(r.out.find("removed 1 ACL(s)"), std::string::npos) << r.out;
  EXPECT_EQ(alice({"consume", "orders", "-p", "0", "-e"}).status, 0);

  // A new password replaces the old; a deleted user is gone.
  ASSERT_EQ(adm({"user", "passwd", "alice"}, "alice-password-2\n").status, 0);
  EXPECT_NE(alice({"topic", "list"}).status, 0);
  EXPECT_EQ(as("alice", "alice-password-2")({"topic", "list"}).status, 0);
  ASSERT_EQ(adm({"user", "delete", "alice"}).status, 0);
  EXPECT_NE(as("alice", "alice-password-2")({"topic", "list"}).status, 0);
}

// Users and ACLs go through the controller log: made at one broker, they hold at every broker,
// and after a broker is killed and restarts.
TEST(SaslCluster, usersAndAclsReplicateAndSurviveARestart) {
  TempDir tmp;
  write_file(tmp.path() / "boot", "admin:bootstrap-secret-1\n");
  Cluster c(3, {"--sasl", "--sasl-bootstrap-user-file=" + (tmp.path() / "boot").string()});
  c.start_all();
  As adm(c.bootstrap(), tmp.path(), "admin", "bootstrap-secret-1");
  ASSERT_EQ(adm({"topic", "create", "t", "-p", "3", "-r", "3"}).status, 0);
  ASSERT_EQ(adm({"user", "create", "bob"}, "bob-password-1\n").status, 0);
  ASSERT_EQ(adm({"acl", "add", "--principal", "User:bob", "--operation", "all", "--topic", "t"}).status, 0);
  ASSERT_EQ(adm({"acl", "add", "--principal", "User:bob", "--operation", "read", "--group", "*"}).status, 0);
  for (int i = 0; i < 3; ++i) {
    As bob(c.broker(i).address(), tmp.path(), "bob", "bob-password-1");
    // Each broker applies the log on its own: wait for this one to have the user and ACL.
    EXPECT_TRUE(wait_until([&] { return bob({"topic", "list"}).out.find("t\t") == 0; }, 20s)) << "broker " << i;
  }
  As bob(c.bootstrap(), tmp.path(), "bob", "bob-password-1");
  auto r = bob({"produce", "t", "--acks", "quorum"}, "a\nb\nc\n");
  ASSERT_EQ(r.status, 0) << r.err;
  c.broker(1).kill9();
  c.broker(1).start();
  As bob1(c.broker(1).address(), tmp.path(), "bob", "bob-password-1");
  EXPECT_TRUE(wait_until([&] { return bob1({"topic", "list"}).out.find("t\t") == 0; }, 20s));
  r = bob({"consume", "t", "-g", "bobs", "--from-beginning", "-e"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.size(), 6u) << r.out;  // a, b, c (in partition order)
}

}  // namespace
}  // namespace quorumq::test
