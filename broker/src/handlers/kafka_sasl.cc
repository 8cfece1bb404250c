// SASL on the Kafka listener (issue 18): SaslHandshake 0-1 and SaslAuthenticate 0-1, SCRAM-SHA-256
// and SCRAM-SHA-512, the same exchange as the native SaslAuthenticate (SaslSession). After a v1
// handshake the tokens travel in SaslAuthenticate requests (librdkafka, KafkaJS); after a v0
// handshake as bare size-prefixed frames (kafka-python 2.0). A failure of any kind is answered
// after the same delay and closes the connection. Also the ACL check the Kafka apis share.
#include <spdlog/spdlog.h>

#include "kafka_internal.h"
#include "security_handlers.h"

namespace quorumq::broker::kafka {

namespace {
constexpr std::int16_t kNone = 0;

constexpr std::array<ApiRange, 2> kSaslApis{{{17, 0, 1}, {36, 0, 1}}};

// The failure (counted and logged by count_login), after kSaslFailureDelay; then the connection closes.
void fail_later(BrokerContext& ctx, Answer a, std::function<void(Answer)> done) {
  a.close = true;
  a.why = "SASL authentication failed";
  ctx.exec.run_after(kSaslFailureDelay, [a = std::move(a), done = std::move(done)](bool) mutable { done(std::move(a)); });
}
}  // namespace

std::span<const ApiRange> sasl_apis() { return kSaslApis; }

void sasl_handshake(BrokerContext& ctx, Session& s, const Header& h, Reader& r, std::function<void(Answer)> done) {
  const auto mech = r.string();
  if (r.fail() || mech.size() > 64) return done(close_with("malformed SaslHandshake request"));
  Writer w = start(h);
  const bool enabled = ctx.security.authentication_required();
  const bool known = protocol::scram::mechanism_from_name(mech).has_value();
  if (s.sasl.authenticated() || !s.mechanism.empty()) {
    w.i16(kIllegalSaslState);
  } else {
    w.i16(enabled && known ? kNone : kUnsupportedSaslMechanism);
  }
  if (enabled) {
    w.array_length(2);
    w.string("SCRAM-SHA-256");
    w.string("SCRAM-SHA-512");
  } else {
    w.array_length(0);
  }
  if (!enabled || !known || s.sasl.authenticated() || !s.mechanism.empty()) {
    auto a = finish(w);
    a.close = true;
    a.why = !enabled ? "SASL handshake, but this broker runs without --sasl (use security.protocol=SSL or PLAINTEXT)"
                     : "SASL handshake for an unsupported mechanism or out of order";
    return done(std::move(a));
  }
  s.mechanism = std::string(mech);
  s.raw_tokens = h.version == 0;
  done(finish(w));
}

void sasl_authenticate(BrokerContext& ctx, Session& s, const Header& h, Reader& r, std::function<void(Answer)> done) {
  const auto bytes = r.nullable_bytes();
  if (r.fail() || !bytes) return done(close_with("malformed SaslAuthenticate request"));
  auto answer = [&h](std::int16_t code, std::optional<std::string_view> msg, std::string_view token) {
    Writer w = start(h);
    w.i16(code);
    w.nullable_string(msg);
    w.bytes({reinterpret_cast<const std::uint8_t*>(token.data()), token.size()});
    if (h.version >= 1) w.i64(0);  // session_lifetime_ms: no re-authentication
    return finish(w);
  };
  if (s.mechanism.empty()) {
    auto a = answer(kIllegalSaslState, "SaslAuthenticate before SaslHandshake", "");
    a.close = true;
    a.why = "SaslAuthenticate before SaslHandshake";
    return done(std::move(a));
  }
  const std::string_view token(reinterpret_cast<const char*>(bytes->data()), bytes->size());
  auto step = s.sasl.step(ctx.security, s.mechanism, token);
  count_login(ctx, "Kafka", s.peer, s.sasl, step, false);
  if (step.outcome == SaslSession::Step::failed)
    return fail_later(ctx, answer(kSaslAuthenticationFailed, "Authentication failed: wrong user name or password", ""),
                      std::move(done));
  done(answer(kNone, std::nullopt, step.bytes));
}

void sasl_raw_token(BrokerContext& ctx, Session& s, std::span<const std::uint8_t> token, std::function<void(Answer)> done) {
  auto step = s.sasl.step(ctx.security, s.mechanism,
                          std::string_view(reinterpret_cast<const char*>(token.data()), token.size()));
  count_login(ctx, "Kafka", s.peer, s.sasl, step, false);
  if (step.outcome == SaslSession::Step::failed) return fail_later(ctx, Answer{}, std::move(done));
  if (step.outcome == SaslSession::Step::done) s.raw_tokens = false;  // Kafka requests again from here
  Writer w;
  w.i32(0);
  w.bytes().insert(w.bytes().end(), step.bytes.begin(), step.bytes.end());
  done(finish(w));
}

bool allowed(BrokerContext& ctx, const Header& h, AclOperation op, ResourceType type, std::string_view name) {
  if (ctx.security.allowed(h.who, op, type, name)) return true;
  count_refusal(ctx, h.who, op, type, name, "Kafka api " + std::to_string(h.key));
  return false;
}

}  // namespace quorumq::broker::kafka
