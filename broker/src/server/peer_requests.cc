// AsioPeerRequests (server_impl.h): one native request to another broker's client listener.
//
// A connection per request: the only users are Kafka consumer groups' offset commits and
// fetches (seconds apart per consumer), so pooling would buy little and cost a cache of
// connections to invalidate when a broker moves. A deadline covers resolve, connect, the TLS
// handshake (when the brokers have TLS), write and read; the answer is read with the same frame
// decoder and size limit as any client frame.
//
// With --sasl the client listeners require a SCRAM login first: the broker logs in as
// Security::kBrokerUser with the password derived from the cluster secret (every broker has that
// user locally, as a super user), two SaslAuthenticate rounds, within the same deadline. The
// coordinator has already checked the client's own permissions before it forwards.
#include <openssl/ssl.h>

#include "quorumq/protocol/scram.h"
#include "security.h"
#include "server_impl.h"

namespace quorumq::broker {

namespace {
struct Call {
  Call(asio::io_context& io, std::uint32_t max_frame, std::shared_ptr<asio::ssl::context> tls)
      : stream(Socket(asio::make_strand(io)), std::move(tls)), resolver(stream.get_executor()),
        timer(stream.get_executor()), decoder(max_frame) {}
  ClientStream stream;
  tcp::resolver resolver;
  Timer timer;
  protocol::FrameDecoder decoder;
  bool timed_out = false;
};

// Writes one request frame (correlation id `corr`) and reads the answer to it.
awaitable<PeerRequests::Reply> round_trip(Call& c, const HostPort& addr, protocol::ApiId api, std::uint32_t corr,
                                          std::span<const std::uint8_t> payload) {
  using Reply = PeerRequests::Reply;
  auto fail = [&](std::string what, std::error_code ec) {
    return Reply{false, what + " " + addr.str() + ": " + (c.timed_out ? "timed out" : ec.message()), false, {}};
  };
  const auto* info = protocol::find_api(api);
  const protocol::FrameHeader h{api, static_cast<std::uint16_t>(info ? info->max_version : 0), corr, 0};
  const auto head = protocol::encode_frame_header(h, payload);
  std::array<asio::const_buffer, 2> out{asio::buffer(head), asio::buffer(payload.data(), payload.size())};
  auto [wec, wn] = co_await asio::async_write(c.stream, out, kTuple);
  if (wec) co_return fail("writing to", wec);
  for (;;) {
    auto r = c.decoder.next();
    if (r.status == protocol::FrameError::ok) {
      if (!r.frame.header.is_response() || r.frame.header.correlation_id != corr) continue;
      co_return Reply{true, {}, r.frame.header.is_error_payload(), {r.frame.payload.begin(), r.frame.payload.end()}};
    }
    if (r.status != protocol::FrameError::need_more)
      co_return Reply{false, std::string("bad answer from ") + addr.str() + ": " + protocol::to_string(r.status), false,
                      {}};
    auto buf = c.decoder.prepare(64 * 1024);
    auto [rec, n] = co_await c.stream.async_read_some(asio::buffer(buf.data(), buf.size()), kTuple);
    c.decoder.commit(rec ? 0 : n);
    if (rec) co_return fail("reading from", rec);
  }
}

// One SaslAuthenticate round: the broker's token (ok) or why the login failed.
struct SaslRound {
  bool ok = false;
  std::string bytes;
};
awaitable<SaslRound> sasl_round(Call& c, const HostPort& addr, std::uint32_t corr, const std::string& token) {
  namespace scram = protocol::scram;
  flatbuffers::FlatBufferBuilder fbb(256);
  const auto m = fbb.CreateString(scram::mechanism_name(scram::Mechanism::sha256));
  const auto b = fbb.CreateVector(reinterpret_cast<const std::uint8_t*>(token.data()), token.size());
  fbb.Finish(wire::CreateSaslAuthenticateRequest(fbb, m, b));
  auto reply = co_await round_trip(c, addr, protocol::ApiId::sasl_authenticate, corr, {fbb.GetBufferPointer(), fbb.GetSize()});
  if (!reply.ok) co_return SaslRound{false, reply.why};
  const auto* info = protocol::find_api(protocol::ApiId::sasl_authenticate);
  if (reply.error_payload ||
      protocol::verify_response(protocol::ApiId::sasl_authenticate, static_cast<std::uint16_t>(info ? info->max_version : 0),
                                reply.payload) != wire::ErrorCode::none)
    co_return SaslRound{false, "SASL login to " + addr.str() + ": an error or malformed answer"};
  const auto* r = protocol::payload_as<wire::SaslAuthenticateResponse>(reply.payload);
  if (r->error() != wire::ErrorCode::none)
    co_return SaslRound{false, "SASL login to " + addr.str() + " as " + std::string(Security::kBrokerUser) + " refused (" +
                                   wire::EnumNameErrorCode(r->error()) + "): do all brokers share the cluster secret?"};
  const auto* bytes = r->auth_bytes();
  co_return SaslRound{true, bytes ? std::string(reinterpret_cast<const char*>(bytes->data()), bytes->size()) : std::string()};
}

// The SCRAM login as the broker user (client-first, client-final, the broker's proof checked):
// "" once logged in, else why not.
awaitable<std::string> login(Call& c, const HostPort& addr, const std::string& password) {
  protocol::scram::ClientExchange ex(protocol::scram::Mechanism::sha256, std::string(Security::kBrokerUser), password);
  const auto first = co_await sasl_round(c, addr, 1, ex.first());
  if (!first.ok) co_return first.bytes;
  std::string why;
  const auto final = ex.final(first.bytes, &why);
  if (!final) co_return "SASL login to " + addr.str() + ": " + why;
  const auto last = co_await sasl_round(c, addr, 2, *final);
  if (!last.ok) co_return last.bytes;
  if (!ex.verify_server(last.bytes, &why)) co_return "SASL login to " + addr.str() + ": " + why;
  co_return std::string();
}

awaitable<PeerRequests::Reply> exchange(std::shared_ptr<Call> c, HostPort addr, protocol::ApiId api,
                                        std::vector<std::uint8_t> payload, std::optional<std::string> sasl_password) {
  using Reply = PeerRequests::Reply;
  auto fail = [&](std::string what, std::error_code ec) {
    return Reply{false, what + " " + addr.str() + ": " + (c->timed_out ? "timed out" : ec.message()), false, {}};
  };
  auto [rec, eps] = co_await c->resolver.async_resolve(addr.host, std::to_string(addr.port), kTuple);
  if (rec || c->timed_out) co_return fail("resolving", rec);
  auto [cec, ep] = co_await asio::async_connect(c->stream.socket(), eps, kTuple);
  if (cec || c->timed_out) co_return fail("connecting to", cec);
  if (c->stream.is_tls()) {
    auto [hec] = co_await c->stream.async_handshake(asio::ssl::stream_base::client, kTuple);
    if (hec || c->timed_out) co_return fail("TLS handshake with", hec);
  }
  if (sasl_password) {
    auto why = co_await login(*c, addr, *sasl_password);
    if (!why.empty()) co_return Reply{false, c->timed_out ? "SASL login to " + addr.str() + ": timed out" : why, false, {}};
  }
  co_return co_await round_trip(*c, addr, api, 3, payload);
}
}  // namespace

std::shared_ptr<asio::ssl::context> AsioPeerRequests::client_tls() {
  if (config_.tls_cert_file.empty()) return nullptr;
  std::lock_guard lk(tls_mu_);
  if (tls_ || !tls_error_.empty()) return tls_;
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  std::error_code ec;
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  ctx->use_certificate_chain_file(config_.tls_cert_file, ec);
  if (!ec) ctx->use_private_key_file(config_.tls_key_file, asio::ssl::context::pem, ec);
  if (!ec && !config_.tls_ca_file.empty()) {
    ctx->load_verify_file(config_.tls_ca_file, ec);
    if (!ec) ctx->set_verify_mode(asio::ssl::verify_peer, ec);
  } else if (!ec) {
    spdlog::warn("forwarded offset requests to other brokers do not check their TLS certificates: give "
                 "--tls-ca-file (the CA that signed the brokers' certificates) to have them checked");
    ctx->set_verify_mode(asio::ssl::verify_none, ec);
  }
  if (ec) {
    tls_error_ = ec.message();
    spdlog::error("cannot make the TLS context for forwarding to other brokers: {}", tls_error_);
    return nullptr;
  }
  tls_ = std::move(ctx);
  return tls_;
}

void AsioPeerRequests::send(node_id to, protocol::ApiId api, std::vector<std::uint8_t> payload,
                            std::chrono::milliseconds timeout, std::function<void(Reply)> done) {
  auto addr = replication_.address_of(to);
  if (!addr) return done(Reply{false, "no client address known for broker " + std::to_string(to.value), false, {}});
  auto tls = client_tls();
  if (!config_.tls_cert_file.empty() && !tls)
    return done(Reply{false, "no TLS context for forwarding (see the log)", false, {}});
  std::optional<std::string> sasl_password;
  if (config_.sasl) {
    if (config_.cluster_secret.empty())
      return done(Reply{false, "cannot forward to broker " + std::to_string(to.value) +
                                   ": its listener requires SASL and brokers log in with a password derived from the "
                                   "cluster secret (--cluster-secret-file), which this broker has not",
                        false, {}});
    std::lock_guard lk(tls_mu_);
    if (broker_password_.empty()) broker_password_ = broker_password(config_.cluster_secret);
    sasl_password = broker_password_;
  }
  auto c = std::make_shared<Call>(io_, config_.max_frame_bytes, std::move(tls));
  c->timer.expires_after(timeout);
  c->timer.async_wait([c](std::error_code ec) {
    if (ec) return;
    c->timed_out = true;
    c->resolver.cancel();
    c->stream.close(ec);
  });
  asio::co_spawn(c->stream.get_executor(), exchange(c, std::move(*addr), api, std::move(payload), std::move(sasl_password)),
                 [c, done = std::move(done)](std::exception_ptr e, Reply r) {
                   c->timer.cancel();
                   std::error_code ignored;
                   c->stream.close(ignored);
                   if (e) r = Reply{false, "forwarding failed", false, {}};
                   done(std::move(r));
                 });
}

}  // namespace quorumq::broker
