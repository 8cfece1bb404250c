// The authorization rules (broker/src/security/security.h) and the replicated user/ACL state: how
// bindings combine (deny wins, prefixes, "*", implied describe, super users), what an unknown or
// anonymous principal may do, and that records and checkpoints carry exactly the state.
#include <gtest/gtest.h>

#include "security.h"
#include "state_record.h"

namespace quorumq::broker {
namespace {

using Op = AclOperation;
using Type = ResourceType;

AclEntry acl(std::string principal, Op op, Type type, std::string name, bool allow = true, bool prefixed = false) {
  return AclEntry{std::move(principal), "*", allow, op, type, prefixed, std::move(name)};
}

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SecurityOptions o;
    o.authentication = true;
    o.authorization = true;
    o.super_users = {"User:root"};
    sec.configure(o);
  }
  void add(std::vector<AclEntry> a) { sec.apply_command(Security::encode_acls(a, true), log_index{1}); }
  void remove(std::vector<AclEntry> a) { sec.apply_command(Security::encode_acls(a, false), log_index{2}); }
  bool may(const std::string& who, Op op, Type t, const std::string& name) {
    return sec.allowed(Principal{who}, op, t, name);
  }
  Security sec;
};

TEST_F(SecurityTest, NothingIsAllowedWithoutAnAcl) {
  EXPECT_FALSE(may("User:alice", Op::read, Type::topic, "orders"));
  EXPECT_FALSE(may("", Op::describe, Type::topic, "orders"));  // anonymous
  EXPECT_TRUE(may("User:root", Op::del, Type::cluster, "kafka-cluster"));  // super user
  Principal internal{"", true};
  EXPECT_TRUE(sec.allowed(internal, Op::write, Type::topic, "orders"));
}

TEST_F(SecurityTest, LiteralPrefixedWildcardAndImpliedDescribe) {
  add({acl("User:alice", Op::read, Type::topic, "orders"), acl("User:alice", Op::write, Type::topic, "logs.", true, true),
       acl("User:*", Op::describe, Type::group, "*")});
  EXPECT_TRUE(may("User:alice", Op::read, Type::topic, "orders"));
  EXPECT_FALSE(may("User:alice", Op::read, Type::topic, "orders2"));  // literal means exactly
  EXPECT_FALSE(may("User:alice", Op::write, Type::topic, "orders"));
  EXPECT_TRUE(may("User:alice", Op::describe, Type::topic, "orders"));  // read implies describe
  EXPECT_TRUE(may("User:alice", Op::write, Type::topic, "logs.app"));
  EXPECT_FALSE(may("User:alice", Op::write, Type::topic, "log"));
  EXPECT_TRUE(may("User:bob", Op::describe, Type::group, "anything"));  // User:* and "*"
  EXPECT_FALSE(may("User:bob", Op::read, Type::group, "anything"));
  EXPECT_FALSE(may("User:bob", Op::read, Type::topic, "orders"));
  EXPECT_FALSE(may("User:alice", Op::read, Type::group, "orders"));  // another resource type
}

TEST_F(SecurityTest, DenyWinsAndAllCoversEveryOperation) {
  add({acl("User:alice", Op::all, Type::topic, "*"), acl("User:alice", Op::del, Type::topic, "audit", false)});
  EXPECT_TRUE(may("User:alice", Op::del, Type::topic, "orders"));
  EXPECT_FALSE(may("User:alice", Op::del, Type::topic, "audit"));
  EXPECT_TRUE(may("User:alice", Op::read, Type::topic, "audit"));
  add({acl("User:*", Op::all, Type::topic, "audit", false)});
  EXPECT_FALSE(may("User:alice", Op::read, Type::topic, "audit"));
  EXPECT_TRUE(may("User:root", Op::read, Type::topic, "audit"));  // super users skip the ACLs
  remove({acl("User:*", Op::all, Type::topic, "audit", false)});
  EXPECT_TRUE(may("User:alice", Op::read, Type::topic, "audit"));
}

TEST(Security, AuthorizationOffAllowsEverything) {
  Security sec;
  sec.configure(SecurityOptions{});
  EXPECT_TRUE(sec.allowed(Principal{}, Op::del, Type::cluster, "kafka-cluster"));
}

TEST_F(SecurityTest, UsersAndAclsSurviveACheckpoint) {
  add({acl("User:alice", Op::read, Type::topic, "orders")});
  UserInfo u{"alice", {protocol::scram::make_credential(protocol::scram::Mechanism::sha256, "pw", 4096)}};
  sec.apply_command(Security::encode_user(u), log_index{3});
  sec.apply_command(Security::encode_user(UserInfo{"gone", u.credentials}), log_index{4});
  sec.apply_command(Security::encode_user_delete("gone"), log_index{5});
  ASSERT_EQ(sec.users().size(), 1u);
  EXPECT_TRUE(sec.credential("alice", protocol::scram::Mechanism::sha256));
  EXPECT_FALSE(sec.credential("alice", protocol::scram::Mechanism::sha512));
  EXPECT_FALSE(sec.credential("gone", protocol::scram::Mechanism::sha256));

  const auto items = sec.checkpoint_items();
  std::vector<std::span<const std::uint8_t>> spans(items.begin(), items.end());
  Security other;
  other.apply_command(Security::encode_user(UserInfo{"stale", u.credentials}), log_index{1});
  ASSERT_TRUE(other.restore_checkpoint(spans));
  EXPECT_EQ(other.acls(), sec.acls());
  ASSERT_EQ(other.users().size(), 1u);  // exactly the checkpoint's: "stale" is gone
  EXPECT_EQ(other.users()[0].name, "alice");
  EXPECT_EQ(other.users()[0].credentials[0].stored_key, u.credentials[0].stored_key);
}

TEST_F(SecurityTest, DamagedRecordsChangeNothing) {
  add({acl("User:alice", Op::read, Type::topic, "orders")});
  auto rec = Security::encode_acls({acl("User:bob", Op::read, Type::topic, "x")}, true);
  rec[rec.size() / 2] ^= 0xff;
  sec.apply_command(rec, log_index{9});
  auto bad_user = Security::encode_user(UserInfo{"eve", {protocol::scram::Credential{}}});  // invalid credential
  sec.apply_command(bad_user, log_index{10});
  EXPECT_EQ(sec.acls().size(), 1u);
  EXPECT_FALSE(sec.user_exists("eve"));
  // An invalid binding (bad principal) is dropped when read.
  add({AclEntry{"alice", "*", true, Op::read, Type::topic, false, "t"}});
  EXPECT_EQ(sec.acls().size(), 1u);
}

TEST(Security, CertificatePrincipalRules) {
  SecurityOptions o;
  for (const char* text : {"RULE:^CN=([^,]+),OU=apps,.*$/$1/L", "RULE:^CN=([^,]+),OU=ops,.*$/ops-$1/", "DEFAULT"}) {
    auto r = parse_principal_rule(text);
    ASSERT_TRUE(r) << r.error();
    o.principal_rules.push_back(std::move(*r));
  }
  Security sec;
  sec.configure(std::move(o));
  EXPECT_EQ(sec.certificate_principal("CN=Billing,OU=apps,O=Acme", "Billing"), "User:billing");
  EXPECT_EQ(sec.certificate_principal("CN=bob,OU=ops,O=Acme", "bob"), "User:ops-bob");
  EXPECT_EQ(sec.certificate_principal("CN=carol,O=Acme", "carol"), "User:carol");  // DEFAULT: the CN
  EXPECT_EQ(sec.certificate_principal("O=Acme", ""), "");                          // nobody
  for (const char* bad : {"RULE:^CN=(.*$/$1/", "RULE:x/y", "RULE:x/y/Q", "CN=x", ""})
    EXPECT_FALSE(parse_principal_rule(bad)) << bad;
}

}  // namespace
}  // namespace quorumq::broker
