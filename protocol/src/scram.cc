#include "quorumq/protocol/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <charconv>
#include <stdexcept>
#include <vector>

namespace quorumq::protocol::scram {

namespace {
const EVP_MD* md(Mechanism m) { return m == Mechanism::sha512 ? EVP_sha512() : EVP_sha256(); }
std::size_t md_size(Mechanism m) { return m == Mechanism::sha512 ? 64 : 32; }

std::string hmac(Mechanism m, std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!HMAC(md(m), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
            data.size(), out, &n))
    throw std::runtime_error("scram: HMAC failed");
  return std::string(reinterpret_cast<char*>(out), n);
}
std::string digest(Mechanism m, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!EVP_Digest(data.data(), data.size(), out, &n, md(m), nullptr)) throw std::runtime_error("scram: digest failed");
  return std::string(reinterpret_cast<char*>(out), n);
}
std::string salted_password(Mechanism m, std::string_view password, std::string_view salt, int iterations) {
  std::string out(md_size(m), '\0');
  if (!PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                         reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()), iterations,
                         md(m), static_cast<int>(out.size()), reinterpret_cast<unsigned char*>(out.data())))
    throw std::runtime_error("scram: PBKDF2 failed");
  return out;
}
std::string xor_bytes(std::string_view a, std::string_view b) {
  std::string out(a);
  for (std::size_t i = 0; i < out.size() && i < b.size(); ++i) out[i] = static_cast<char>(out[i] ^ b[i]);
  return out;
}
std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    throw std::runtime_error("scram: no random bytes");
  return out;
}

void set_why(std::string* why, std::string text) {
  if (why) *why = std::move(text);
}

// One "k=v" attribute list; values may contain '=' (base64) but not ','.
struct Attr {
  char key;
  std::string_view value;
};
bool split_attrs(std::string_view msg, std::vector<Attr>& out, std::string* why) {
  if (msg.size() > kMaxMessageBytes) return set_why(why, "SCRAM message over 4096 bytes"), false;
  std::size_t at = 0;
  while (at <= msg.size()) {
    auto end = msg.find(',', at);
    if (end == std::string_view::npos) end = msg.size();
    const auto part = msg.substr(at, end - at);
    if (part.size() < 2 || part[1] != '=' || !((part[0] >= 'a' && part[0] <= 'z') || (part[0] >= 'A' && part[0] <= 'Z')))
      return set_why(why, "malformed SCRAM attribute"), false;
    out.push_back({part[0], part.substr(2)});
    if (out.size() > 64) return set_why(why, "too many SCRAM attributes"), false;
    at = end + 1;
  }
  return true;
}
// saslname (RFC 5802 5.1): ',' is "=2C" and '=' is "=3D"; any other '=' is malformed.
std::optional<std::string> decode_saslname(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == ',') return std::nullopt;
    if (s[i] != '=') {
      out.push_back(s[i]);
      continue;
    }
    if (s.substr(i, 3) == "=2C") out.push_back(',');
    else if (s.substr(i, 3) == "=3D") out.push_back('=');
    else return std::nullopt;
    i += 2;
  }
  return out;
}
std::string encode_saslname(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == ',') out += "=2C";
    else if (c == '=') out += "=3D";
    else out.push_back(c);
  }
  return out;
}
bool printable_nonce(std::string_view n) {
  if (n.empty() || n.size() > 512) return false;
  for (unsigned char c : n)
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  return true;
}
}  // namespace

const char* mechanism_name(Mechanism m) noexcept { return m == Mechanism::sha512 ? "SCRAM-SHA-512" : "SCRAM-SHA-256"; }

std::optional<Mechanism> mechanism_from_name(std::string_view name) noexcept {
  if (name == "SCRAM-SHA-256") return Mechanism::sha256;
  if (name == "SCRAM-SHA-512") return Mechanism::sha512;
  return std::nullopt;
}

bool equal_ct(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Credential make_credential(Mechanism m, std::string_view password, int iterations, std::string salt) {
  Credential c;
  c.mechanism = m;
  c.salt = salt.empty() ? random_bytes(24) : std::move(salt);
  c.iterations = iterations;
  const auto sp = salted_password(m, password, c.salt, iterations);
  c.stored_key = digest(m, hmac(m, sp, "Client Key"));
  c.server_key = hmac(m, sp, "Server Key");
  return c;
}

bool verify_password(const Credential& c, std::string_view password) {
  if (!valid(c)) return false;
  const auto sp = salted_password(c.mechanism, password, c.salt, c.iterations);
  return equal_ct(digest(c.mechanism, hmac(c.mechanism, sp, "Client Key")), c.stored_key);
}

bool valid(const Credential& c) noexcept {
  return (c.mechanism == Mechanism::sha256 || c.mechanism == Mechanism::sha512) && c.iterations >= kMinIterations &&
         c.iterations <= kMaxIterations && !c.salt.empty() && c.salt.size() <= 128 &&
         c.stored_key.size() == md_size(c.mechanism) && c.server_key.size() == md_size(c.mechanism);
}

std::string base64_encode(std::string_view raw) {
  static constexpr char kAlpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((raw.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < raw.size(); i += 3) {
    const std::uint32_t v = (static_cast<std::uint8_t>(raw[i]) << 16) | (static_cast<std::uint8_t>(raw[i + 1]) << 8) |
                            static_cast<std::uint8_t>(raw[i + 2]);
    out += {kAlpha[v >> 18], kAlpha[(v >> 12) & 63], kAlpha[(v >> 6) & 63], kAlpha[v & 63]};
  }
  if (raw.size() - i == 1) {
    const std::uint32_t v = static_cast<std::uint8_t>(raw[i]) << 16;
    out += {kAlpha[v >> 18], kAlpha[(v >> 12) & 63], '=', '='};
  } else if (raw.size() - i == 2) {
    const std::uint32_t v = (static_cast<std::uint8_t>(raw[i]) << 16) | (static_cast<std::uint8_t>(raw[i + 1]) << 8);
    out += {kAlpha[v >> 18], kAlpha[(v >> 12) & 63], kAlpha[(v >> 6) & 63], '='};
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0 || text.size() > 2 * kMaxMessageBytes) return std::nullopt;
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + static_cast<std::size_t>(k)];
      if (c == '=' && last && k >= 2) {
        ++pad;
        v[k] = 0;
        continue;
      }
      if (pad > 0) return std::nullopt;  // data after padding
      v[k] = val(c);
      if (v[k] < 0) return std::nullopt;
    }
    const std::uint32_t w = (static_cast<std::uint32_t>(v[0]) << 18) | (static_cast<std::uint32_t>(v[1]) << 12) |
                            (static_cast<std::uint32_t>(v[2]) << 6) | static_cast<std::uint32_t>(v[3]);
    out.push_back(static_cast<char>(w >> 16));
    if (pad < 2) out.push_back(static_cast<char>((w >> 8) & 0xff));
    if (pad < 1) out.push_back(static_cast<char>(w & 0xff));
  }
  return out;
}

std::string random_nonce() { return base64_encode(random_bytes(24)); }

bool parse_attributes(std::string_view msg, std::string* why) {
  std::vector<Attr> attrs;
  return split_attrs(msg, attrs, why);
}

// client-first = gs2-header client-first-bare; gs2-header = ("n" / "y" / "p=...") "," [authzid] ","
bool ServerExchange::parse_first(std::string_view msg, std::string* why) {
  if (state_ != State::start) return set_why(why, "SCRAM client-first sent twice"), state_ = State::failed, false;
  state_ = State::failed;
  if (msg.size() > kMaxMessageBytes) return set_why(why, "SCRAM client-first over 4096 bytes"), false;
  if (msg.starts_with("p=")) return set_why(why, "SCRAM channel binding is not supported (use SCRAM without -PLUS)"), false;
  if (!(msg.starts_with("n,") || msg.starts_with("y,"))) return set_why(why, "malformed SCRAM client-first (gs2 header)"), false;
  const auto second = msg.find(',', 2);
  if (second == std::string_view::npos) return set_why(why, "malformed SCRAM client-first (gs2 header)"), false;
  const auto authzid = msg.substr(2, second - 2);
  gs2_header_ = std::string(msg.substr(0, second + 1));
  client_first_bare_ = std::string(msg.substr(second + 1));
  std::vector<Attr> attrs;
  if (!split_attrs(client_first_bare_, attrs, why)) return false;
  if (attrs.size() < 2 || attrs[0].key != 'n' || attrs[1].key != 'r')
    return set_why(why, "malformed SCRAM client-first (expected n=user,r=nonce)"), false;
  auto user = decode_saslname(attrs[0].value);
  if (!user || user->empty() || user->size() > kMaxUserBytes)
    return set_why(why, "malformed SCRAM client-first (user name)"), false;
  if (!authzid.empty()) {
    // "a=<name>": acting as another user is not supported; the same user is allowed.
    auto az = authzid.starts_with("a=") ? decode_saslname(authzid.substr(2)) : std::nullopt;
    if (!az || *az != *user) return set_why(why, "SCRAM authorization identity differs from the user: not supported"), false;
  }
  if (!printable_nonce(attrs[1].value)) return set_why(why, "malformed SCRAM client-first (nonce)"), false;
  for (std::size_t i = 2; i < attrs.size(); ++i)
    if (attrs[i].key == 'm') return set_why(why, "SCRAM mandatory extension not supported"), false;
  user_ = std::move(*user);
  nonce_ = std::string(attrs[1].value);
  client_nonce_size_ = nonce_.size();
  return true;
}

std::string ServerExchange::answer_first(const Credential* cred, std::string_view fake_salt_key) {
  known_ = cred != nullptr && cred->mechanism == mech_ && valid(*cred);
  if (known_) {
    cred_ = *cred;
  } else {
    // The same salt every time for the same name (an attacker asking twice sees no difference),
    // the default iteration count; keys nobody can match.
    cred_.mechanism = mech_;
    cred_.salt = hmac(Mechanism::sha256, fake_salt_key, "quorumq-fake-salt:" + user_).substr(0, 24);
    cred_.iterations = kMinIterations;
    cred_.stored_key = random_bytes(md_size(mech_));
    cred_.server_key = random_bytes(md_size(mech_));
  }
  nonce_ += fixed_nonce_.empty() ? random_nonce() : fixed_nonce_;
  server_first_ = "r=" + nonce_ + ",s=" + base64_encode(cred_.salt) + ",i=" + std::to_string(cred_.iterations);
  state_ = State::sent_first;
  return server_first_;
}

std::optional<std::string> ServerExchange::final(std::string_view msg, std::string* why) {
  if (state_ != State::sent_first) return set_why(why, "SCRAM client-final out of order"), std::nullopt;
  state_ = State::failed;
  std::vector<Attr> attrs;
  if (!split_attrs(msg, attrs, why)) return std::nullopt;
  if (attrs.size() < 3 || attrs[0].key != 'c' || attrs[1].key != 'r' || attrs.back().key != 'p')
    return set_why(why, "malformed SCRAM client-final (expected c=,r=,...,p=)"), std::nullopt;
  const auto cbind = base64_decode(attrs[0].value);
  if (!cbind || *cbind != gs2_header_) return set_why(why, "SCRAM channel binding does not match"), std::nullopt;
  // RFC 5802 wants the nonce of server-first back. librdkafka before 2.6.1 (Debian 12 ships 2.0.2)
  // sends its own nonce once more in front of it (librdkafka PR #4895; Kafka accepts it since
  // 3.8.1): accept exactly that form too. Either way the server's fresh nonce must come back, so
  // a replayed client-final still fails.
  const auto echoed = attrs[1].value;
  const std::string_view client_nonce = std::string_view(nonce_).substr(0, client_nonce_size_);
  const bool nonce_ok = equal_ct(echoed, nonce_) ||
                        (echoed.size() == client_nonce.size() + nonce_.size() &&
                         equal_ct(echoed.substr(0, client_nonce.size()), client_nonce) &&
                         equal_ct(echoed.substr(client_nonce.size()), nonce_));
  if (!nonce_ok) return set_why(why, "SCRAM nonce does not match this exchange"), std::nullopt;
  const auto proof = base64_decode(attrs.back().value);
  if (!proof || proof->size() != md_size(mech_)) return set_why(why, "malformed SCRAM proof"), std::nullopt;
  const auto without_proof = msg.substr(0, msg.rfind(",p="));
  const std::string auth_message = client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
  const auto client_signature = hmac(mech_, cred_.stored_key, auth_message);
  const auto client_key = xor_bytes(*proof, client_signature);
  const bool ok = equal_ct(digest(mech_, client_key), cred_.stored_key);
  if (!ok || !known_) return set_why(why, "wrong user name or password"), std::nullopt;
  state_ = State::done;
  return "v=" + base64_encode(hmac(mech_, cred_.server_key, auth_message));
}

ClientExchange::ClientExchange(Mechanism m, std::string user, std::string password)
    : mech_(m), user_(std::move(user)), password_(std::move(password)) {}

std::string ClientExchange::first(std::string nonce) {
  nonce_ = nonce.empty() ? random_nonce() : std::move(nonce);
  client_first_bare_ = "n=" + encode_saslname(user_) + ",r=" + nonce_;
  return "n,," + client_first_bare_;
}

std::optional<std::string> ClientExchange::final(std::string_view server_first, std::string* why) {
  std::vector<Attr> attrs;
  if (!split_attrs(server_first, attrs, why)) return std::nullopt;
  if (attrs.size() < 3 || attrs[0].key != 'r' || attrs[1].key != 's' || attrs[2].key != 'i')
    return set_why(why, "malformed SCRAM server-first"), std::nullopt;
  const auto nonce = attrs[0].value;
  if (!nonce.starts_with(nonce_) || nonce.size() == nonce_.size() || !printable_nonce(nonce))
    return set_why(why, "the broker's SCRAM nonce does not extend ours"), std::nullopt;
  const auto salt = base64_decode(attrs[1].value);
  int iterations = 0;
  const auto iv = attrs[2].value;
  auto [p, ec] = std::from_chars(iv.data(), iv.data() + iv.size(), iterations);
  if (!salt || salt->empty() || ec != std::errc{} || p != iv.data() + iv.size() || iterations < kMinIterations ||
      iterations > kMaxIterations)
    return set_why(why, "malformed SCRAM server-first (salt or iteration count)"), std::nullopt;
  const auto sp = salted_password(mech_, password_, *salt, iterations);
  const auto client_key = hmac(mech_, sp, "Client Key");
  const auto stored_key = digest(mech_, client_key);
  const std::string without_proof = "c=" + base64_encode("n,,") + ",r=" + std::string(nonce);
  const std::string auth_message = client_first_bare_ + "," + std::string(server_first) + "," + without_proof;
  const auto proof = xor_bytes(client_key, hmac(mech_, stored_key, auth_message));
  server_signature_ = hmac(mech_, hmac(mech_, sp, "Server Key"), auth_message);
  return without_proof + ",p=" + base64_encode(proof);
}

bool ClientExchange::verify_server(std::string_view server_final, std::string* why) const {
  if (server_final.starts_with("e=")) return set_why(why, "the broker refused: " + std::string(server_final.substr(2))), false;
  if (!server_final.starts_with("v=")) return set_why(why, "malformed SCRAM server-final"), false;
  const auto sig = base64_decode(server_final.substr(2));
  if (!sig || !equal_ct(*sig, server_signature_))
    return set_why(why, "the broker's SCRAM signature is wrong: it does not know this user's credential"), false;
  return true;
}

}  // namespace quorumq::protocol::scram
