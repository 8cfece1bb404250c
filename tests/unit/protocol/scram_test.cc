// SCRAM (protocol/include/quorumq/protocol/scram.h): RFC 7677's worked example on both ends, then
// what a broker must refuse: a wrong password, an unknown user (answered like a known one), a
// replayed client-final, messages out of order, malformed input.
#include <gtest/gtest.h>

#include <vector>

#include "quorumq/protocol/scram.h"

namespace quorumq::protocol::scram {
namespace {

// RFC 7677, section 3.
constexpr const char* kClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr const char* kServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr const char* kServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr const char* kClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr const char* kServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

Credential pencil() {
  return make_credential(Mechanism::sha256, "pencil", 4096, *base64_decode("W22ZaJ0SNY7soEsUEjb6gQ=="));
}
auto lookup_user(const Credential& c) {
  return [c](const std::string& u) { return u == "user" ? std::optional(c) : std::nullopt; };
}

TEST(Scram, ClientMatchesRfc7677) {
  ClientExchange c(Mechanism::sha256, "user", "pencil");
  EXPECT_EQ(c.first(kClientNonce), std::string("n,,n=user,r=") + kClientNonce);
  std::string why;
  auto final = c.final(kServerFirst, &why);
  ASSERT_TRUE(final) << why;
  EXPECT_EQ(*final, kClientFinal);
  EXPECT_TRUE(c.verify_server(kServerFinal, &why)) << why;
  EXPECT_FALSE(c.verify_server("v=AAAA", &why));
}

TEST(Scram, ServerMatchesRfc7677) {
  ServerExchange s(Mechanism::sha256);
  s.fix_server_nonce(kServerNonce);
  std::string why;
  auto first = s.first(std::string("n,,n=user,r=") + kClientNonce, lookup_user(pencil()), "k", &why);
  ASSERT_TRUE(first) << why;
  EXPECT_EQ(*first, kServerFirst);
  auto final = s.final(kClientFinal, &why);
  ASSERT_TRUE(final) << why;
  EXPECT_EQ(*final, kServerFinal);
  EXPECT_EQ(s.state(), ServerExchange::State::done);
}

// A full exchange between our two ends; returns server-final or nullopt.
std::optional<std::string> login(Mechanism m, const std::string& user, const std::string& password,
                                 const Credential& stored, std::string* why) {
  ClientExchange c(m, user, password);
  ServerExchange s(m);
  auto sf = s.first(c.first(), lookup_user(stored), "fake-key", why);
  if (!sf) return std::nullopt;
  auto cf = c.final(*sf, why);
  if (!cf) return std::nullopt;
  auto done = s.final(*cf, why);
  if (done && !c.verify_server(*done, why)) return std::nullopt;
  return done;
}

TEST(Scram, Sha512RoundTripAndWrongPassword) {
  const auto cred = make_credential(Mechanism::sha512, "correct horse", 4096);
  std::string why;
  EXPECT_TRUE(login(Mechanism::sha512, "user", "correct horse", cred, &why)) << why;
  EXPECT_FALSE(login(Mechanism::sha512, "user", "wrong horse", cred, &why));
  EXPECT_EQ(why, "wrong user name or password");
  EXPECT_TRUE(verify_password(cred, "correct horse"));
  EXPECT_FALSE(verify_password(cred, "correct hors"));
}

TEST(Scram, UnknownUserLooksLikeAKnownOneAndFailsAtTheEnd) {
  const auto cred = pencil();
  ServerExchange a(Mechanism::sha256), b(Mechanism::sha256);
  std::string why;
  auto fa = a.first("n,,n=ghost,r=abc", lookup_user(cred), "key", &why);
  auto fb = b.first("n,,n=ghost,r=abc", lookup_user(cred), "key", &why);
  ASSERT_TRUE(fa && fb);
  // The same made-up salt both times (asking twice reveals nothing), the default iterations.
  EXPECT_EQ(fa->substr(fa->find(",s=")), fb->substr(fb->find(",s=")));
  EXPECT_NE(fa->find(",i=4096"), std::string::npos);
  std::string why2;
  EXPECT_FALSE(login(Mechanism::sha256, "ghost", "pencil", cred, &why2));
  EXPECT_EQ(why2, "wrong user name or password");  // the same reason as a wrong password
}

TEST(Scram, ReplayedClientFinalIsRefused) {
  const auto cred = pencil();
  ClientExchange c(Mechanism::sha256, "user", "pencil");
  ServerExchange s1(Mechanism::sha256);
  std::string why;
  const auto cfirst = c.first();
  auto sf = s1.first(cfirst, lookup_user(cred), "k", &why);
  ASSERT_TRUE(sf);
  auto cf = c.final(*sf, &why);
  ASSERT_TRUE(cf && s1.final(*cf, &why));
  // The same two client messages against a new exchange: its nonce is new, the proof is stale.
  ServerExchange s2(Mechanism::sha256);
  ASSERT_TRUE(s2.first(cfirst, lookup_user(cred), "k", &why));
  EXPECT_FALSE(s2.final(*cf, &why));
  EXPECT_EQ(why, "SCRAM nonce does not match this exchange");
}

// librdkafka before 2.6.1 repeats its own nonce in front of the server's in client-final (its
// PR #4895); that exact form is accepted, any other nonce is not.
TEST(Scram, LibrdkafkasRepeatedClientNonceIsAcceptedNothingElse) {
  auto attempt = [](const std::string& nonce_in_final) {
    ServerExchange s(Mechanism::sha256);
    s.fix_server_nonce(kServerNonce);
    std::string why;
    EXPECT_TRUE(s.first(std::string("n,,n=user,r=") + kClientNonce, lookup_user(pencil()), "k", &why));
    // The proof is over the message as sent: compute it as the client would for this nonce.
    ClientExchange c(Mechanism::sha256, "user", "pencil");
    c.first(kClientNonce);
    auto cf = c.final(kServerFirst, &why);
    std::string msg = *cf;
    msg.replace(msg.find(",r=") + 3, msg.find(",p=") - msg.find(",r=") - 3, nonce_in_final);
    return s.final(msg, &why).has_value() || why != "SCRAM nonce does not match this exchange";
  };
  const std::string server_nonce = std::string(kClientNonce) + kServerNonce;
  EXPECT_TRUE(attempt(std::string(kClientNonce) + server_nonce));  // nonce accepted (proof then differs)
  EXPECT_FALSE(attempt(std::string("x") + server_nonce));
  EXPECT_FALSE(attempt(server_nonce + kClientNonce));
  EXPECT_FALSE(attempt(kClientNonce));
}

TEST(Scram, OutOfOrderAndMalformedMessagesAreRefused) {
  const auto cred = pencil();
  std::string why;
  ServerExchange s(Mechanism::sha256);
  EXPECT_FALSE(s.final("c=biws,r=x,p=AAAA", &why));  // final before first
  for (const char* bad : {"", "n,,", "n,,n=user", "n,,r=abc,n=user", "x,,n=user,r=abc", "p=tls-unique,,n=user,r=abc",
                          "n,,n=us=er,r=abc", "n,a=other,n=user,r=abc", "n,,n=user,r=ab,c", "n,,n=user,r=abc,m=ext"}) {
    ServerExchange e(Mechanism::sha256);
    EXPECT_FALSE(e.first(bad, lookup_user(cred), "k", &why)) << bad;
    EXPECT_EQ(e.state(), ServerExchange::State::failed) << bad;
  }
  ServerExchange t(Mechanism::sha256);
  ASSERT_TRUE(t.first("n,,n=user,r=abc", lookup_user(cred), "k", &why));
  EXPECT_FALSE(t.first("n,,n=user,r=abc", lookup_user(cred), "k", &why));  // first twice
  ServerExchange u(Mechanism::sha256);
  ASSERT_TRUE(u.first("n,,n=user,r=abc", lookup_user(cred), "k", &why));
  EXPECT_FALSE(u.final("c=biws,r=abc,p=not-base64!", &why));
  EXPECT_FALSE(u.final("c=biws", &why));  // once failed, always failed
  EXPECT_FALSE(parse_attributes(std::string(5000, 'a'), &why));
  // Escaped user names: "=2C" is ',' and "=3D" is '='.
  ServerExchange v(Mechanism::sha256);
  ASSERT_TRUE(v.first("n,,n=a=2Cb=3Dc,r=abc", lookup_user(cred), "k", &why));
  EXPECT_EQ(v.user(), "a,b=c");
}

TEST(Scram, Base64) {
  for (std::string s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\0\xff\x10", 3)})
    EXPECT_EQ(base64_decode(base64_encode(s)), s);
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  for (const char* bad : {"Zm9", "Zm9v!mFy", "Zg=a", "=Zg=", "Zm=v"}) EXPECT_FALSE(base64_decode(bad)) << bad;
}

TEST(Scram, CredentialValidity) {
  auto c = make_credential(Mechanism::sha256, "pw", 4096);
  EXPECT_TRUE(valid(c));
  c.iterations = 1000;
  EXPECT_FALSE(valid(c));
  c = make_credential(Mechanism::sha512, "pw", 4096);
  c.stored_key.pop_back();
  EXPECT_FALSE(valid(c));
}

}  // namespace
}  // namespace quorumq::protocol::scram
