// SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677): the password authentication both the
// native protocol (SaslAuthenticate) and the Kafka listener (SaslHandshake + SaslAuthenticate)
// speak. Here are the message formats, the key derivations and both ends of one exchange; the
// broker and the SDK drive them. No sockets, no clocks: every parser takes bytes from the network
// and never trusts them (lengths bounded, every field checked; fuzzed by fuzz_scram).
//
// A credential never holds the password: only salt, iteration count, StoredKey and ServerKey
// (RFC 5802 section 3), which is what the broker replicates and keeps.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace quorumq::protocol::scram {

enum class Mechanism : std::uint8_t { sha256 = 1, sha512 = 2 };

// "SCRAM-SHA-256" / "SCRAM-SHA-512" (case as IANA registers them).
const char* mechanism_name(Mechanism m) noexcept;
std::optional<Mechanism> mechanism_from_name(std::string_view name) noexcept;

inline constexpr int kMinIterations = 4096;
inline constexpr int kMaxIterations = 1'000'000;
inline constexpr std::size_t kMaxMessageBytes = 4096;  // any one SCRAM message
inline constexpr std::size_t kMaxUserBytes = 256;

struct Credential {
  Mechanism mechanism = Mechanism::sha256;
  std::string salt;        // raw bytes
  int iterations = kMinIterations;
  std::string stored_key;  // H(ClientKey), raw bytes
  std::string server_key;  // HMAC(SaltedPassword, "Server Key"), raw bytes
};

// A credential for `password` (an empty salt: 24 random bytes).
Credential make_credential(Mechanism m, std::string_view password, int iterations, std::string salt = {});
// Whether `password` is the one `c` was made from (constant-time comparison).
bool verify_password(const Credential& c, std::string_view password);
// A well-formed credential for this mechanism (key lengths, iteration bounds).
bool valid(const Credential& c) noexcept;

std::string base64_encode(std::string_view raw);
std::optional<std::string> base64_decode(std::string_view text);
// Random printable nonce (base64 of 24 random bytes).
std::string random_nonce();
// Constant-time equality of two byte strings (false on different lengths).
bool equal_ct(std::string_view a, std::string_view b) noexcept;

// The server's side of one exchange: client-first -> server-first, client-final -> server-final.
class ServerExchange {
 public:
  enum class State { start, sent_first, done, failed };
  explicit ServerExchange(Mechanism m) : mech_(m) {}

  // The user named in client-first (after parse); set once first() succeeded in parsing.
  const std::string& user() const { return user_; }
  State state() const { return state_; }
  // Tests only (RFC 7677's example): the server's part of the nonce instead of a random one.
  void fix_server_nonce(std::string n) { fixed_nonce_ = std::move(n); }

  // Step 1. `lookup` is called with the user name and returns its credential for this
  // mechanism, or nullopt for an unknown user; then `fake_salt_key` keys a made-up salt so an
  // unknown user gets the same shaped answer as a known one (no enumeration). Returns
  // server-first, or nullopt with `why` for a malformed message.
  template <class Lookup>
  std::optional<std::string> first(std::string_view client_first, Lookup&& lookup, std::string_view fake_salt_key,
                                   std::string* why) {
    if (!parse_first(client_first, why)) return std::nullopt;
    auto cred = lookup(user_);
    return answer_first(cred ? &*cred : nullptr, fake_salt_key);
  }
  // Step 2: server-final ("v=...") when the proof is right; nullopt with `why` when it is not
  // (wrong password, unknown user, wrong nonce, malformed).
  std::optional<std::string> final(std::string_view client_final, std::string* why);

 private:
  bool parse_first(std::string_view msg, std::string* why);
  std::string answer_first(const Credential* cred, std::string_view fake_salt_key);

  Mechanism mech_;
  State state_ = State::start;
  std::string user_;
  std::string gs2_header_;
  std::string client_first_bare_;
  std::string server_first_;
  std::string nonce_;  // client nonce + server nonce
  std::size_t client_nonce_size_ = 0;
  bool known_ = false;
  Credential cred_;
  std::string fixed_nonce_;
};

// The client's side: first() -> client-first; on server-first, final() -> client-final; then
// verify_server() checks server-final (the broker proved it knows the credential too).
class ClientExchange {
 public:
  ClientExchange(Mechanism m, std::string user, std::string password);
  // `nonce`: tests only (RFC 7677's example); empty: a random one.
  std::string first(std::string nonce = {});
  // nullopt with `why`: a malformed server-first, a nonce that does not extend ours, or an
  // iteration count out of bounds.
  std::optional<std::string> final(std::string_view server_first, std::string* why);
  bool verify_server(std::string_view server_final, std::string* why) const;

 private:
  Mechanism mech_;
  std::string user_;
  std::string password_;
  std::string nonce_;
  std::string client_first_bare_;
  std::string server_signature_;
};

// Exposed for the fuzzer and unit tests: parse the attribute list "a=v,b=w" of a SCRAM message.
// False when malformed (no '=', empty key, over the size limit).
bool parse_attributes(std::string_view msg, std::string* why);

}  // namespace quorumq::protocol::scram
