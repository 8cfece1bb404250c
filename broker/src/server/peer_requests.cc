// AsioPeerRequests (server_impl.h): one native request to another broker's client listener.
//
// A connection per request: the only users are Kafka consumer groups' offset commits and
// fetches (seconds apart per consumer), so pooling would buy little and cost a cache of
// connections to invalidate when a broker moves. A deadline covers resolve, connect, the TLS
// handshake (when the brokers have TLS), write and read; the answer is read with the same frame
// decoder and size limit as any client frame.
#include <openssl/ssl.h>

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

awaitable<PeerRequests::Reply> exchange(std::shared_ptr<Call> c, HostPort addr, protocol::ApiId api,
                                        std::vector<std::uint8_t> payload) {
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
  const auto* info = protocol::find_api(api);
  const protocol::FrameHeader h{api, static_cast<std::uint16_t>(info ? info->max_version : 0), 1, 0};
  const auto head = protocol::encode_frame_header(h, payload);
  std::array<asio::const_buffer, 2> out{asio::buffer(head), asio::buffer(payload)};
  auto [wec, wn] = co_await asio::async_write(c->stream, out, kTuple);
  if (wec) co_return fail("writing to", wec);
  for (;;) {
    auto r = c->decoder.next();
    if (r.status == protocol::FrameError::ok) {
      if (!r.frame.header.is_response() || r.frame.header.correlation_id != 1) continue;
      co_return Reply{true, {}, r.frame.header.is_error_payload(), {r.frame.payload.begin(), r.frame.payload.end()}};
    }
    if (r.status != protocol::FrameError::need_more)
      co_return Reply{false, std::string("bad answer from ") + addr.str() + ": " + protocol::to_string(r.status), false,
                      {}};
    auto buf = c->decoder.prepare(64 * 1024);
    auto [rec2, n] = co_await c->stream.async_read_some(asio::buffer(buf.data(), buf.size()), kTuple);
    c->decoder.commit(rec2 ? 0 : n);
    if (rec2) co_return fail("reading from", rec2);
  }
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
  auto c = std::make_shared<Call>(io_, config_.max_frame_bytes, std::move(tls));
  c->timer.expires_after(timeout);
  c->timer.async_wait([c](std::error_code ec) {
    if (ec) return;
    c->timed_out = true;
    c->resolver.cancel();
    c->stream.close(ec);
  });
  asio::co_spawn(c->stream.get_executor(), exchange(c, std::move(*addr), api, std::move(payload)),
                 [c, done = std::move(done)](std::exception_ptr e, Reply r) {
                   c->timer.cancel();
                   std::error_code ignored;
                   c->stream.close(ignored);
                   if (e) r = Reply{false, "forwarding failed", false, {}};
                   done(std::move(r));
                 });
}

}  // namespace quorumq::broker
