// One outbound link to a peer (peer_transport_impl.h).
#include <spdlog/spdlog.h>

#include "peer_transport_impl.h"
#include "quorumq/protocol/errors.h"
#include "quorumq/protocol/quorumq_generated.h"
#include "quorumq/protocol/verify.h"

namespace quorumq::broker::peer_detail {

// One outbound link: connect, the dialer's half of the handshake, then envelopes.
class Link : public std::enable_shared_from_this<Link> {
 public:
  Link(PeerTransport::Impl& t, node_id peer, HostPort addr)
      : t_(t), strand_(asio::make_strand(t.io)), wake_(strand_), peer_(peer), addr_(std::move(addr)) {}

  void start() {
    asio::co_spawn(strand_, [self = shared_from_this()] { return self->run(); }, asio::detached);
  }
  void stop() {
    stopped_.store(true);
    asio::post(strand_, [self = shared_from_this()] {
      std::error_code ec;
      if (self->sock_) self->sock_->close(ec);
      self->wake_.cancel();
    });
  }
  void push(GroupMessage m) {
    const std::size_t b = approx_bytes(m);
    {
      std::lock_guard lk(mu_);
      // A link holds at most a few frames' worth (and always room for one largest batch).
      const std::size_t limit = std::max<std::size_t>(kQueueBytesMax, 2 * std::size_t{t_.config.max_frame_bytes});
      if (queued_bytes_ + b > limit) {
        t_.dropped.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      queued_bytes_ += b;
      queue_.push_back(std::move(m));
    }
    signal();
  }
  void push_announcement(std::vector<LeaderAnnouncement> a) {
    {
      std::lock_guard lk(mu_);
      announce_ = std::move(a);
      have_announce_ = true;
    }
    signal();
  }

 private:
  void signal() {
    if (!signaled_.exchange(true))
      asio::post(strand_, [self = shared_from_this()] { self->wake_.cancel(); });
  }

  // TCP connect, TLS (with --peer-tls-*: the listener's certificate must chain to the peer CA and
  // name the broker we meant to reach), then the handshake; false (socket closed) on any
  // failure. Each attempt makes a new stream (a TLS session is not reusable).
  awaitable<bool> connect() {
    tcp::resolver resolver(strand_);
    const std::string port = std::to_string(addr_.port);
    auto [rec, eps] = co_await resolver.async_resolve(addr_.host, port, kTuple);
    if (rec) {
      t_.log.log(spdlog::level::warn, "resolve:" + std::to_string(peer_.value),
                 "replication link to broker {}: cannot resolve {}: {} (check --peers)", peer_.value, addr_.str(),
                 rec.message());
      co_return false;
    }
    auto stream = std::make_shared<PeerStream>(Socket(strand_), t_.client_tls());
    sock_ = stream;
    // One deadline for connect, TLS and the peer handshake together.
    Timer deadline(strand_);
    deadline.expires_after(kHandshakeTimeout);
    deadline.async_wait([stream](std::error_code ec) {
      if (!ec) {
        std::error_code ignored;
        stream->close(ignored);
      }
    });
    auto [ec, ep] = co_await asio::async_connect(stream->socket(), eps, kTuple);
    if (ec) {
      deadline.cancel();
      // Refused right after the link was up: nothing listens on the peer port any more, so the
      // peer's process is gone (a kill -9 or a crash; the kernel answered for it). Groups it led
      // elect at once instead of waiting out the election timeout. A paused or partitioned
      // peer never refuses: those wait for the timeout.
      if (ec == asio::error::connection_refused && was_up_) {
        was_up_ = false;
        spdlog::info("replication link to broker {}: its peer port refuses connections (process gone)", peer_.value);
        if (t_.hooks.peer_unreachable) t_.hooks.peer_unreachable(peer_);
      }
      co_return false;  // the peer is down or not reachable: retried with backoff
    }
    std::error_code ignored;
    stream->socket().set_option(tcp::no_delay(true), ignored);
    std::string why;
    bool ok = co_await tls_handshake(*stream, asio::ssl::stream_base::client, why);
    if (!ok) {
      if (stream->is_open()) t_.tls_handshake_failures.fetch_add(1, std::memory_order_relaxed);
      else why.clear();  // the deadline (or stop) closed it: "did not finish in time"
    }
    if (ok) {
      if (auto mismatch = identity_mismatch(*stream, peer_.value)) {
        // Whoever answers at this address holds a certificate from our CA, but not broker
        // peer_'s: tell it nothing.
        t_.tls_identity_failures.fetch_add(1, std::memory_order_relaxed);
        why = "it is not broker " + std::to_string(peer_.value) + ": " + *mismatch +
              " (check --peers and that broker's --peer-tls-cert-file)";
        ok = false;
      }
    }
    if (ok) ok = co_await handshake(why);
    deadline.cancel();
    if (!ok) {
      t_.handshakes_refused.fetch_add(1, std::memory_order_relaxed);
      t_.log.log(spdlog::level::warn, "dial:" + std::to_string(peer_.value) + ":" + why,
                 "replication link to broker {} at {}: {}", peer_.value, addr_.str(),
                 why.empty() ? std::string("the handshake did not finish in time") : why);
      co_return false;
    }
    t_.handshakes_accepted.fetch_add(1, std::memory_order_relaxed);
    was_up_ = true;
    // Nothing comes back on this connection after the welcome; reading tells us when the peer
    // closes it.
    // It closes only its own stream: a later connection has a new one.
    asio::co_spawn(strand_, [self = shared_from_this(), stream]() -> awaitable<void> {
      char buf[256];
      for (;;) {
        auto [rec2, n] = co_await stream->async_read_some(asio::buffer(buf), kTuple);
        if (rec2) break;
      }
      std::error_code ig;
      stream->close(ig);
      self->wake_.cancel();
    }, asio::detached);
    co_return true;
  }

  awaitable<bool> handshake(std::string& why) {
    const auto& cfg = t_.config;
    protocol::FrameDecoder decoder(1u << 20);
    HandshakeMsg hello;
    hello.step = HandshakeStep::hello;
    hello.cluster_id = cfg.cluster_id;
    hello.node_id = cfg.node_id;
    hello.target_id = peer_.value;
    hello.dir_id = t_.dir_id;
    const auto own = t_.own_client_address();
    hello.client_host = own.host;
    hello.client_port = own.port;
    if (const auto k = t_.own_kafka_address()) {
      hello.kafka_host = k->host;
      hello.kafka_port = k->port;
    }
    hello.nonce = make_nonce();
    const auto hello_frame = encode_handshake(hello);  // named: see Inbound::session
    auto& sock = *sock_;
    if (!co_await write_frame(sock, hello_frame)) co_return false;
    auto f = co_await next_frame(sock, decoder, why);
    if (!f) co_return false;
    auto ch = handshake_of(*f, why);
    if (!ch) {
      why = "not a quorumq peer listener: " + why + " (--peers must list each broker's --peer-listen address)";
      co_return false;
    }
    if (ch->step == HandshakeStep::refused) {
      why = "refused: " + ch->reason;
      co_return false;
    }
    if (ch->step != HandshakeStep::challenge || ch->nonce.size() != kNonceBytes) {
      why = "unexpected handshake step " + std::to_string(static_cast<int>(ch->step));
      co_return false;
    }
    if (ch->cluster_id != cfg.cluster_id || ch->node_id != peer_.value) {
      why = "the broker there is node " + std::to_string(ch->node_id) + " of cluster '" + ch->cluster_id +
            "', not node " + std::to_string(peer_.value) + " of '" + cfg.cluster_id + "' (check --peers)";
      co_return false;
    }
    const auto expected = handshake_mac(cfg.cluster_secret, MacRole::listener, cfg.cluster_id, cfg.node_id,
                                        peer_.value, hello.nonce, ch->nonce);
    if (!mac_equal(ch->mac, expected)) {
      why = "it does not know the cluster secret (check --cluster-secret-file on both brokers)";
      co_return false;
    }
    HandshakeMsg proof;
    proof.step = HandshakeStep::proof;
    proof.cluster_id = cfg.cluster_id;
    proof.node_id = cfg.node_id;
    proof.mac = handshake_mac(cfg.cluster_secret, MacRole::dialer, cfg.cluster_id, cfg.node_id, peer_.value,
                              hello.nonce, ch->nonce);
    const auto proof_frame = encode_handshake(proof);
    if (!co_await write_frame(sock, proof_frame)) co_return false;
    f = co_await next_frame(sock, decoder, why);
    if (!f) co_return false;
    auto w = handshake_of(*f, why);
    if (!w) co_return false;
    if (w->step == HandshakeStep::refused) {
      why = "refused: " + w->reason;
      co_return false;
    }
    if (w->step != HandshakeStep::welcome) {
      why = "unexpected handshake step " + std::to_string(static_cast<int>(w->step));
      co_return false;
    }
    if (t_.hooks.client_address && !ch->client_host.empty())
      t_.hooks.client_address(peer_, HostPort{ch->client_host, ch->client_port});
    if (t_.hooks.kafka_address && !ch->kafka_host.empty())
      t_.hooks.kafka_address(peer_, HostPort{ch->kafka_host, ch->kafka_port});
    co_return true;
  }

  awaitable<void> run() {
    int backoff_ms = 20;
    bool connected = false;
    std::vector<GroupMessage> batch;
    std::vector<LeaderAnnouncement> ann;
    while (!stopped_.load()) {
      if (!connected) {
        connected = co_await connect();
        if (!connected) {
          std::error_code ig;
          if (sock_) sock_->close(ig);
          drop_queue();
          Timer t(strand_);
          t.expires_after(std::chrono::milliseconds(backoff_ms));
          co_await t.async_wait(kTuple);
          backoff_ms = std::min(backoff_ms * 2, 500);
          continue;
        }
        backoff_ms = 20;
        spdlog::debug("replication link to broker {} ({}) up", peer_.value, addr_.str());
      }
      batch.clear();
      ann.clear();
      bool have_ann = false;
      {
        std::lock_guard lk(mu_);
        signaled_.store(false);
        batch.swap(queue_);
        queued_bytes_ = 0;
        if (have_announce_) ann.swap(announce_), have_ann = true, have_announce_ = false;
      }
      if (batch.empty() && !have_ann) {
        if (!sock_->is_open()) {
          connected = false;
          continue;
        }
        wake_.expires_at(std::chrono::steady_clock::time_point::max());
        co_await wake_.async_wait(kTuple);
        if (!sock_->is_open()) connected = false;
        continue;
      }
      // Chunk into envelopes of bounded size; the announcement rides in the first.
      std::vector<protocol::OutgoingFrame> frames;
      const auto h = t_.incarnation.header_for(peer_);
      const DirHeader dirs{h.sender_dir, h.receiver_dir, h.sender_settled};
      std::vector<GroupMessage> chunk;
      std::size_t bytes = 0;
      const auto self_id = t_.config.node_id;
      for (auto& m : batch) {
        // Flush before a message would take the envelope past its size (one large batch then
        // travels alone, within the receiver's --max-frame-bytes, which exceeds any batch).
        const std::size_t mb = approx_bytes(m);
        if (!chunk.empty() && bytes + mb > kEnvelopeBytesMax) {
          frames.push_back(encode_envelope(self_id, t_.config.cluster_id, chunk,
                                           have_ann ? ann : std::vector<LeaderAnnouncement>{}, dirs));
          have_ann = false;
          chunk.clear();
          bytes = 0;
        }
        bytes += mb;
        chunk.push_back(std::move(m));
      }
      if (!chunk.empty() || have_ann)
        frames.push_back(encode_envelope(self_id, t_.config.cluster_id, chunk, ann, dirs));
      const auto stream = sock_;  // alive across the write
      const auto ec = co_await write_frames(*stream, frames, out_);
      if (ec) {
        spdlog::debug("replication link to broker {}: {}; reconnecting", peer_.value, ec.message());
        t_.dropped.fetch_add(batch.size(), std::memory_order_relaxed);
        std::error_code ig;
        stream->close(ig);
        connected = false;
      }
    }
  }

  void drop_queue() {
    std::lock_guard lk(mu_);
    t_.dropped.fetch_add(queue_.size(), std::memory_order_relaxed);
    queue_.clear();
    queued_bytes_ = 0;
    signaled_.store(false);
  }

  PeerTransport::Impl& t_;
  Strand strand_;
  std::shared_ptr<PeerStream> sock_;  // on the strand: the current connection (null before the first)
  std::vector<std::uint8_t> out_;     // on the strand: a TLS write's gathered frames
  Timer wake_;
  node_id peer_;
  HostPort addr_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> signaled_{false};
  bool was_up_ = false;  // on the strand: a handshake succeeded since the last refusal
  std::mutex mu_;
  std::vector<GroupMessage> queue_;
  std::size_t queued_bytes_ = 0;
  std::vector<LeaderAnnouncement> announce_;
  bool have_announce_ = false;
};

std::shared_ptr<Link> make_link(PeerTransport::Impl& t, node_id peer, const HostPort& addr) {
  return std::make_shared<Link>(t, peer, addr);
}
void start_link(Link& l) { l.start(); }
void stop_link(Link& l) { l.stop(); }
void push_to_link(Link& l, GroupMessage m) { l.push(std::move(m)); }
void announce_on_link(Link& l, const std::vector<LeaderAnnouncement>& led) { l.push_announcement(led); }

}  // namespace quorumq::broker::peer_detail
