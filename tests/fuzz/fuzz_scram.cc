// libFuzzer target: the broker's side of a SCRAM exchange (protocol/include/quorumq/protocol/scram.h)
// on arbitrary bytes, the way a broker meets a client's SaslAuthenticate tokens: the input is
// client-first, a 0 byte, client-final. Also the base64 decoder and the attribute parser. The
// exchange must never succeed without the password, and every answer stays within bounds.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "quorumq/protocol/scram.h"

using namespace quorumq::protocol::scram;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // One known user, derived once (PBKDF2 is slow on purpose: not per input).
  static const Credential cred = make_credential(Mechanism::sha256, "pencil", kMinIterations, "fixed-salt");
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto zero = in.find('\0');
  const auto first = in.substr(0, zero);
  const auto final = zero == std::string_view::npos ? std::string_view() : in.substr(zero + 1);

  (void)parse_attributes(in, nullptr);
  if (auto d = base64_decode(in); d && d->size() > in.size()) std::abort();

  for (auto mech : {Mechanism::sha256, Mechanism::sha512}) {
    ServerExchange ex(mech);
    std::string why;
    auto sf = ex.first(first, [&](const std::string& u) { return u == "user" ? std::optional(cred) : std::nullopt; },
                       "fake-key", &why);
    if (!sf) {
      if (ex.state() != ServerExchange::State::failed) std::abort();
      continue;
    }
    if (sf->size() > kMaxMessageBytes + 256 || ex.user().empty() || ex.user().size() > kMaxUserBytes) std::abort();
    auto done = ex.final(final, &why);
    // A proof that verifies needs the password: a fuzzer never finds it, and an unknown user
    // (or the other mechanism, whose credential does not exist) can never pass.
    if (done && (ex.user() != "user" || mech != Mechanism::sha256)) std::abort();
    if (ex.final(final, &why)) std::abort();  // a second final is always refused
  }
  ClientExchange c(Mechanism::sha256, "user", "pencil");
  (void)c.first();
  (void)c.verify_server(in, nullptr);  // before final(): nothing can verify
  return 0;
}
