// One inbound connection on the peer listener (peer_transport_impl.h).
#include <spdlog/spdlog.h>

#include "peer_transport_impl.h"
#include "quorumq/protocol/errors.h"
#include "quorumq/protocol/quorumq_generated.h"
#include "quorumq/protocol/verify.h"

namespace quorumq::broker::peer_detail {

// One inbound connection on the peer listener: the listener's half of the handshake, then
// envelopes from that (authenticated) peer until it closes or misbehaves.
class Inbound : public std::enable_shared_from_this<Inbound> {
 public:
  // Handshake frames are small: until the peer is authenticated the decoder takes at most
  // kHandshakeFrameMax bytes, so unauthenticated connections cannot make the broker buffer much.
  static constexpr std::uint32_t kHandshakeFrameMax = 8 * 1024;
  // The stream is TLS when the transport has peer TLS (the context current at accept time).
  Inbound(PeerTransport::Impl& t, Socket sock)
      : t_(t), sock_(std::move(sock), t.server_tls()), decoder_(kHandshakeFrameMax), deadline_(sock_.get_executor()) {}

  void start() {
    asio::co_spawn(sock_.get_executor(), [self = shared_from_this()] { return self->run(); }, asio::detached);
  }
  void close_from_any_thread() {
    asio::post(sock_.get_executor(), [self = shared_from_this()] { self->close(); });
  }

 private:
  void close() {
    std::error_code ec;
    sock_.close(ec);
    deadline_.cancel();
  }

  awaitable<void> refuse(const std::string& key, const std::string& reason) {  // both outlive the await
    t_.handshakes_refused.fetch_add(1, std::memory_order_relaxed);
    t_.log.log(spdlog::level::warn, key, "peer listener: refused {}: {}", address_, reason);
    HandshakeMsg r;
    r.step = HandshakeStep::refused;
    r.cluster_id = t_.config.cluster_id;
    r.node_id = t_.config.node_id;
    r.reason = reason;
    const auto frame = encode_handshake(r);  // named: no temporaries in a co_await (GCC 12)
    co_await write_frame(sock_, frame);
    close();
  }

  awaitable<void> run() {
    address_ = sock_.peer();
    // One deadline for the TLS handshake and the peer handshake together.
    deadline_.expires_after(kHandshakeTimeout);
    deadline_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (!ec && !self->authenticated_) {
        self->timed_out_ = true;
        self->t_.handshakes_refused.fetch_add(1, std::memory_order_relaxed);
        self->t_.log.log(spdlog::level::warn, "timeout:" + self->address_,
                         "peer listener: {} did not finish the peer handshake within {} s; closed", self->address_,
                         std::chrono::duration_cast<std::chrono::seconds>(kHandshakeTimeout).count());
        self->close();
      }
    });
    co_await session();
    close();
    t_.remove_pending(this);
    t_.inbound_total.fetch_sub(1);
    if (peer_) t_.session_closed(*peer_, this);
  }

  // Why a hello is refused (and the key its log line is limited by), or nullopt to go on.
  std::optional<std::string> check_hello(const std::optional<HandshakeMsg>& hello, const std::string& why,
                                         std::string& key) const {
    const auto& cfg = t_.config;
    if (!hello || hello->step != HandshakeStep::hello) {
      t_.frames_rejected.fetch_add(1, std::memory_order_relaxed);
      key = "nohello:" + address_;
      return "expected the peer handshake (is a client talking to the peer port? clients use --listen): " +
             (why.empty() ? std::string("wrong first message") : why);
    }
    if (hello->version != kHandshakeVersion) {
      key = "version:" + address_;
      return "handshake version " + std::to_string(hello->version) + " is not " +
             std::to_string(kHandshakeVersion) + ": run the same quorumq version on every broker";
    }
    if (hello->cluster_id != cfg.cluster_id) {
      key = "cluster:" + hello->cluster_id;
      return "broker " + std::to_string(hello->node_id) + " belongs to cluster '" + hello->cluster_id +
             "', this is cluster '" + cfg.cluster_id + "' (check --cluster-id and --peers)";
    }
    if (hello->node_id == cfg.node_id) {
      key = "self:" + address_;
      return "it claims this broker's own node id " + std::to_string(cfg.node_id) +
             ": two brokers run with the same --node-id; give each a unique one";
    }
    if (!t_.is_peer(hello->node_id)) {
      key = "stranger:" + std::to_string(hello->node_id);
      return "node id " + std::to_string(hello->node_id) + " is not in this broker's --peers";
    }
    if (hello->target_id != cfg.node_id) {
      key = "target:" + std::to_string(hello->node_id);
      return "broker " + std::to_string(hello->node_id) + " meant to reach node " + std::to_string(hello->target_id) +
             " but this is node " + std::to_string(cfg.node_id) + " (its --peers lists the wrong address)";
    }
    if (hello->nonce.size() != kNonceBytes) {
      t_.frames_rejected.fetch_add(1, std::memory_order_relaxed);
      key = "nonce:" + address_;
      return std::string("malformed hello (nonce)");
    }
    return std::nullopt;
  }

  // Every string and frame passed to a co_await is a named local: GCC 12 destroys temporaries
  // in a co_await expression twice.
  awaitable<void> session() {
    const auto& cfg = t_.config;
    std::string why, key;
    // 0. TLS (with --peer-tls-*): the dialer's certificate must chain to the peer CA.
    if (!co_await tls_handshake(sock_, asio::ssl::stream_base::server, why)) {
      if (timed_out_) co_return;  // the deadline logged and counted it
      t_.tls_handshake_failures.fetch_add(1, std::memory_order_relaxed);
      t_.log.log(spdlog::level::warn, "tls:" + host_of(address_), "peer listener: {}: {}", address_, why);
      co_return;
    }
    // 1. hello
    auto f = co_await next_frame(sock_, decoder_, why);
    if (!f) co_return;
    const auto hello = handshake_of(*f, why);
    if (const auto reason = check_hello(hello, why, key)) {
      co_await refuse(key, *reason);
      co_return;
    }
    // 1b. The certificate must name the node the hello claims, before we tell it anything.
    if (const auto mismatch = identity_mismatch(sock_, hello->node_id)) {
      t_.tls_identity_failures.fetch_add(1, std::memory_order_relaxed);
      key = "identity:" + host_of(address_);
      const std::string reason = "it claims to be broker " + std::to_string(hello->node_id) + " but " + *mismatch;
      co_await refuse(key, reason);
      co_return;
    }
    // 2. challenge: prove we know the secret, ask the dialer to prove it.
    HandshakeMsg ch;
    ch.step = HandshakeStep::challenge;
    ch.cluster_id = cfg.cluster_id;
    ch.node_id = cfg.node_id;
    ch.target_id = hello->node_id;
    ch.dir_id = t_.dir_id;
    const auto own = t_.own_client_address();
    ch.client_host = own.host;
    ch.client_port = own.port;
    if (const auto k = t_.own_kafka_address()) {
      ch.kafka_host = k->host;
      ch.kafka_port = k->port;
    }
    ch.nonce = make_nonce();
    ch.mac = handshake_mac(cfg.cluster_secret, MacRole::listener, cfg.cluster_id, hello->node_id, cfg.node_id,
                           hello->nonce, ch.nonce);
    const auto ch_frame = encode_handshake(ch);
    if (!co_await write_frame(sock_, ch_frame)) co_return;
    // 3. proof
    f = co_await next_frame(sock_, decoder_, why);
    if (!f) co_return;
    const auto proof = handshake_of(*f, why);
    if (!proof || proof->step != HandshakeStep::proof) {
      t_.frames_rejected.fetch_add(1, std::memory_order_relaxed);
      key = "noproof:" + address_;
      const std::string reason = "expected the handshake proof: " + why;
      co_await refuse(key, reason);
      co_return;
    }
    const auto expected = handshake_mac(cfg.cluster_secret, MacRole::dialer, cfg.cluster_id, hello->node_id,
                                        cfg.node_id, hello->nonce, ch.nonce);
    if (!mac_equal(proof->mac, expected)) {
      key = "secret:" + std::to_string(hello->node_id);
      const std::string reason = "broker " + std::to_string(hello->node_id) +
                                 " does not know the cluster secret (check --cluster-secret-file on both)";
      co_await refuse(key, reason);
      co_return;
    }
    // 4. welcome
    HandshakeMsg w;
    w.step = HandshakeStep::welcome;
    w.cluster_id = cfg.cluster_id;
    w.node_id = cfg.node_id;
    const auto w_frame = encode_handshake(w);
    if (!co_await write_frame(sock_, w_frame)) co_return;
    authenticated_ = true;
    deadline_.cancel();
    t_.remove_pending(this);
    decoder_.set_max_frame_bytes(cfg.max_frame_bytes);  // envelopes from here on
    peer_ = node_id{hello->node_id};
    t_.handshakes_accepted.fetch_add(1, std::memory_order_relaxed);
    t_.session_authenticated(*peer_, shared_from_this(), hello->dir_id, address_);
    if (t_.hooks.peer_connected) t_.hooks.peer_connected(*peer_);
    if (t_.hooks.client_address && !hello->client_host.empty())
      t_.hooks.client_address(*peer_, HostPort{hello->client_host, hello->client_port});
    if (t_.hooks.kafka_address && !hello->kafka_host.empty())
      t_.hooks.kafka_address(*peer_, HostPort{hello->kafka_host, hello->kafka_port});
    spdlog::debug("peer link from broker {} ({}) authenticated", peer_->value, address_);
    // Envelopes until the peer closes or sends anything else.
    for (;;) {
      f = co_await next_frame(sock_, decoder_, why);
      if (!f) {
        if (decoder_.buffered_bytes() != 0 || why.find("closed") == std::string::npos)
          spdlog::debug("peer link from broker {}: {}", peer_->value, why);
        co_return;
      }
      const auto& h = f->header;
      wire::ErrorCode code = wire::ErrorCode::invalid_request;
      if (h.api_id == kRaftEnvelopeApi && !h.is_response())
        code = protocol::verify_request(h.api_id, h.api_version, f->payload);
      std::optional<DecodedEnvelope> env;
      if (code == wire::ErrorCode::none) env = decode_envelope(f->payload);
      if (!env || env->from != peer_->value || env->cluster_id != cfg.cluster_id) {
        t_.frames_rejected.fetch_add(1, std::memory_order_relaxed);
        t_.log.log(spdlog::level::warn, "badframe:" + std::to_string(peer_->value),
                   "peer link from broker {} ({}): a frame that is not a valid replication envelope from it "
                   "(api {}); closing the link (it reconnects)",
                   peer_->value, address_, static_cast<int>(h.api_id));
        co_return;
      }
      t_.hooks.deliver(*env);
    }
  }

  PeerTransport::Impl& t_;
  // "1.2.3.4" of "1.2.3.4:5678": log lines are limited per host, not per connection.
  static std::string host_of(const std::string& address) { return address.substr(0, address.rfind(':')); }

  PeerStream sock_;
  protocol::FrameDecoder decoder_;
  Timer deadline_;
  std::string address_;
  bool authenticated_ = false;
  bool timed_out_ = false;  // the handshake deadline closed the connection
  std::optional<node_id> peer_;
};

std::shared_ptr<Inbound> start_inbound(PeerTransport::Impl& t, Socket sock) {
  auto c = std::make_shared<Inbound>(t, std::move(sock));
  t.add_pending(c);
  c->start();
  return c;
}

void close_inbound(const std::shared_ptr<Inbound>& c) { c->close_from_any_thread(); }

}  // namespace quorumq::broker::peer_detail
