#include "peer_transport.h"

#include <spdlog/spdlog.h>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <atomic>
#include <deque>
#include <map>

#include "peer_auth.h"
#include "quorumq/protocol/errors.h"
#include "quorumq/protocol/quorumq_generated.h"
#include "quorumq/protocol/verify.h"

namespace quorumq::broker {

using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;
using Socket = tcp::socket::rebind_executor<Strand>::other;
using Timer = asio::steady_timer::rebind_executor<Strand>::other;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = asio::experimental::as_tuple(use_awaitable);

namespace {
constexpr std::size_t kQueueBytesMax = 64u << 20;
constexpr std::size_t kEnvelopeBytesMax = 4u << 20;
constexpr auto kHandshakeTimeout = std::chrono::seconds(5);
constexpr auto kRepeatLogEvery = std::chrono::seconds(60);

std::size_t approx_bytes(const GroupMessage& gm) {
  std::size_t n = 96 + gm.group.size();
  for (const auto& e : gm.msg.entries) n += e.size_bytes();
  return n;
}

std::string endpoint_of(const Socket& s) {
  std::error_code ec;
  const auto ep = s.remote_endpoint(ec);
  return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
}

// Reads the next whole frame. The payload points into `d`: valid until the next call on `d`.
awaitable<std::optional<protocol::Frame>> next_frame(Socket& s, protocol::FrameDecoder& d, std::string& why) {
  for (;;) {
    auto r = d.next();
    if (r.status == protocol::FrameError::ok) co_return r.frame;
    if (r.status != protocol::FrameError::need_more) {
      why = protocol::to_string(r.status);
      co_return std::nullopt;
    }
    auto buf = d.prepare(64 * 1024);
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf.data(), buf.size()), kTuple);
    d.commit(ec ? 0 : n);
    if (ec) {
      why = ec == asio::error::eof ? "the connection was closed" : ec.message();
      co_return std::nullopt;
    }
  }
}

awaitable<bool> write_frame(Socket& s, const protocol::OutgoingFrame& f) {
  std::array<asio::const_buffer, 2> bufs{asio::buffer(f.header.data(), f.header.size()),
                                         asio::buffer(f.body.data(), f.body.size())};
  auto [ec, n] = co_await asio::async_write(s, bufs, kTuple);
  co_return !ec;
}

// A handshake message from a frame, or why not (an ErrorResponse names the peer's complaint:
// typically a client listener refusing internal apis, i.e. --peers points at client ports).
std::optional<HandshakeMsg> handshake_of(const protocol::Frame& f, std::string& why) {
  if (f.header.is_error_payload()) {
    flatbuffers::Verifier v(f.payload.data(), f.payload.size());
    if (v.VerifyBuffer<wire::ErrorResponse>(nullptr)) {
      const auto* e = flatbuffers::GetRoot<wire::ErrorResponse>(f.payload.data());
      why = std::string("it answered with an error: ") + (e->message() ? e->message()->str() : "(no message)");
    } else {
      why = "it answered with an unreadable error";
    }
    return std::nullopt;
  }
  if (f.header.api_id != kPeerHandshakeApi) {
    why = "it sent api " + std::to_string(static_cast<int>(f.header.api_id)) + " instead of the peer handshake";
    return std::nullopt;
  }
  auto m = decode_handshake(f.payload);
  if (!m) why = "its handshake message is malformed";
  return m;
}

// Logs a line once per key, then at most once per kRepeatLogEvery with the count since (so a
// misconfigured or hostile peer cannot flood the log). Bounded: forgets everything past 1024 keys.
class LogLimiter {
 public:
  template <typename... Args>
  void log(spdlog::level::level_enum lvl, const std::string& key, fmt::format_string<Args...> f, Args&&... args) {
    std::uint64_t suppressed = 0;
    {
      std::lock_guard lk(mu_);
      if (seen_.size() > 1024) seen_.clear();
      auto& e = seen_[key];
      ++e.count;
      const auto now = Clock::now();
      if (e.logged_count != 0 && now - e.last < kRepeatLogEvery) return;
      suppressed = e.count - e.logged_count - 1;  // since the last line, not counting this one
      e.logged_count = e.count;
      e.last = now;
    }
    auto line = fmt::format(f, std::forward<Args>(args)...);
    if (suppressed > 0) line += fmt::format(" ({} more times since the last report)", suppressed);
    spdlog::log(lvl, "{}", line);
  }

 private:
  struct Entry {
    std::uint64_t count = 0;
    std::uint64_t logged_count = 0;
    Clock::time_point last{};
  };
  std::mutex mu_;
  std::map<std::string, Entry> seen_;
};

class Link;
class Inbound;
}  // namespace

struct PeerTransport::Impl {
  asio::io_context& io;
  const BrokerConfig& config;
  const Incarnation& incarnation;
  const std::string dir_id;
  Hooks hooks;
  std::map<node_id, std::shared_ptr<Link>> links;
  std::optional<tcp::acceptor> acceptor;
  std::atomic<bool> stopped{false};
  LogLimiter log;

  std::atomic<std::uint64_t> dropped{0}, handshakes_accepted{0}, handshakes_refused{0}, connections_refused{0},
      frames_rejected{0};
  std::atomic<std::int64_t> inbound_total{0};  // connections on the peer listener (any state)
  // Connections that have not finished the handshake, oldest first: at most pending_cap(); a
  // new one evicts the oldest, so silent connections cannot lock real peers out.
  std::deque<std::weak_ptr<Inbound>> pending;  // under sessions_mu

  std::mutex sessions_mu;
  struct Session {
    std::weak_ptr<Inbound> conn;
    std::string dir_id;
    std::string address;
  };
  std::map<node_id, Session> sessions;  // authenticated inbound sessions, one per peer

  Impl(asio::io_context& i, const BrokerConfig& c, const Incarnation& inc, std::string dir)
      : io(i), config(c), incarnation(inc), dir_id(std::move(dir)) {}

  bool is_peer(std::int32_t id) const {
    if (id == config.node_id) return false;
    for (const auto& p : config.peers)
      if (p.id == id) return true;
    return false;
  }
  HostPort own_client_address() const { return config.advertised.value_or(config.listen); }
  std::size_t pending_cap() const { return 2 * config.peers.size() + 4; }
  void add_pending(const std::shared_ptr<Inbound>& c);
  void remove_pending(const Inbound* c);

  awaitable<void> accept_loop();
  void session_authenticated(node_id peer, const std::shared_ptr<Inbound>& s, const std::string& dir,
                             const std::string& address);
  void session_closed(node_id peer, const Inbound* s);
};

namespace {

// One inbound connection on the peer listener: the listener's half of the handshake, then
// envelopes from that (authenticated) peer until it closes or misbehaves.
class Inbound : public std::enable_shared_from_this<Inbound> {
 public:
  // Handshake frames are small: until the peer is authenticated the decoder takes at most
  // kHandshakeFrameMax bytes, so unauthenticated connections cannot make the broker buffer much.
  static constexpr std::uint32_t kHandshakeFrameMax = 8 * 1024;
  Inbound(PeerTransport::Impl& t, Socket sock)
      : t_(t), sock_(std::move(sock)), decoder_(kHandshakeFrameMax), deadline_(sock_.get_executor()) {}

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
    address_ = endpoint_of(sock_);
    deadline_.expires_after(kHandshakeTimeout);
    deadline_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (!ec && !self->authenticated_) {
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
    // 1. hello
    auto f = co_await next_frame(sock_, decoder_, why);
    if (!f) co_return;
    const auto hello = handshake_of(*f, why);
    if (const auto reason = check_hello(hello, why, key)) {
      co_await refuse(key, *reason);
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
  Socket sock_;
  protocol::FrameDecoder decoder_;
  Timer deadline_;
  std::string address_;
  bool authenticated_ = false;
  std::optional<node_id> peer_;
};

// One outbound link: connect, the dialer's half of the handshake, then envelopes.
class Link : public std::enable_shared_from_this<Link> {
 public:
  Link(PeerTransport::Impl& t, node_id peer, HostPort addr)
      : t_(t), strand_(asio::make_strand(t.io)), sock_(strand_), wake_(strand_), peer_(peer), addr_(std::move(addr)) {}

  void start() {
    asio::co_spawn(strand_, [self = shared_from_this()] { return self->run(); }, asio::detached);
  }
  void stop() {
    stopped_.store(true);
    asio::post(strand_, [self = shared_from_this()] {
      std::error_code ec;
      self->sock_.close(ec);
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

  // TCP connect, then the handshake; false (socket closed) on any failure.
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
    Timer deadline(strand_);
    deadline.expires_after(kHandshakeTimeout);
    deadline.async_wait([this](std::error_code ec) {
      if (!ec) {
        std::error_code ignored;
        sock_.close(ignored);
      }
    });
    auto [ec, ep] = co_await asio::async_connect(sock_, eps, kTuple);
    if (ec) {
      deadline.cancel();
      co_return false;  // the peer is down or not reachable: silent, retried with backoff
    }
    std::error_code ignored;
    sock_.set_option(tcp::no_delay(true), ignored);
    std::string why;
    const bool ok = co_await handshake(why);
    deadline.cancel();
    if (!ok) {
      t_.handshakes_refused.fetch_add(1, std::memory_order_relaxed);
      t_.log.log(spdlog::level::warn, "dial:" + std::to_string(peer_.value) + ":" + why,
                 "replication link to broker {} at {}: {}", peer_.value, addr_.str(),
                 why.empty() ? std::string("the handshake did not finish in time") : why);
      co_return false;
    }
    t_.handshakes_accepted.fetch_add(1, std::memory_order_relaxed);
    // Nothing comes back on this connection after the welcome; reading tells us when the peer
    // closes it.
    asio::co_spawn(strand_, [self = shared_from_this()]() -> awaitable<void> {
      char buf[256];
      for (;;) {
        auto [rec2, n] = co_await self->sock_.async_read_some(asio::buffer(buf), kTuple);
        if (rec2) break;
      }
      std::error_code ig;
      self->sock_.close(ig);
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
    hello.nonce = make_nonce();
    const auto hello_frame = encode_handshake(hello);  // named: see Inbound::session
    if (!co_await write_frame(sock_, hello_frame)) co_return false;
    auto f = co_await next_frame(sock_, decoder, why);
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
    if (!co_await write_frame(sock_, proof_frame)) co_return false;
    f = co_await next_frame(sock_, decoder, why);
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
          sock_.close(ig);
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
        if (!sock_.is_open()) {
          connected = false;
          continue;
        }
        wake_.expires_at(std::chrono::steady_clock::time_point::max());
        co_await wake_.async_wait(kTuple);
        if (!sock_.is_open()) connected = false;
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
      std::vector<asio::const_buffer> bufs;
      for (const auto& f : frames) {
        bufs.emplace_back(f.header.data(), f.header.size());
        bufs.emplace_back(f.body.data(), f.body.size());
      }
      auto [ec, n] = co_await asio::async_write(sock_, bufs, kTuple);
      if (ec) {
        spdlog::debug("replication link to broker {}: {}; reconnecting", peer_.value, ec.message());
        t_.dropped.fetch_add(batch.size(), std::memory_order_relaxed);
        std::error_code ig;
        sock_.close(ig);
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
  Socket sock_;
  Timer wake_;
  node_id peer_;
  HostPort addr_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> signaled_{false};
  std::mutex mu_;
  std::vector<GroupMessage> queue_;
  std::size_t queued_bytes_ = 0;
  std::vector<LeaderAnnouncement> announce_;
  bool have_announce_ = false;
};
}  // namespace

void PeerTransport::Impl::session_authenticated(node_id peer, const std::shared_ptr<Inbound>& s,
                                                const std::string& dir, const std::string& address) {
  std::shared_ptr<Inbound> old;
  {
    std::lock_guard lk(sessions_mu);
    auto& e = sessions[peer];
    old = e.conn.lock();
    if (old && !e.dir_id.empty() && !dir.empty() && e.dir_id != dir)
      log.log(spdlog::level::err, "dup:" + std::to_string(peer.value),
              "two brokers claim node id {}: one at {} (data directory {}), one at {} (data directory {}); "
              "stop one of them: node ids must be unique in a cluster",
              peer.value, e.address, e.dir_id, address, dir);
    e = Session{s, dir, address};
  }
  if (old) old->close_from_any_thread();  // one session per peer: the newer one wins
}

void PeerTransport::Impl::add_pending(const std::shared_ptr<Inbound>& c) {
  std::shared_ptr<Inbound> evict;
  {
    std::lock_guard lk(sessions_mu);
    std::erase_if(pending, [](const auto& w) { return w.expired(); });
    if (pending.size() >= pending_cap()) {
      evict = pending.front().lock();
      pending.pop_front();
    }
    pending.push_back(c);
  }
  if (evict) {
    connections_refused.fetch_add(1, std::memory_order_relaxed);
    log.log(spdlog::level::warn, "evict", "peer listener: {} handshakes unfinished (the limit for {} peers); closing "
            "the oldest to make room", pending_cap(), config.peers.size() - 1);
    evict->close_from_any_thread();
  }
}

void PeerTransport::Impl::remove_pending(const Inbound* c) {
  std::lock_guard lk(sessions_mu);
  std::erase_if(pending, [c](const auto& w) {
    auto p = w.lock();
    return !p || p.get() == c;
  });
}

void PeerTransport::Impl::session_closed(node_id peer, const Inbound* s) {
  std::lock_guard lk(sessions_mu);
  auto it = sessions.find(peer);
  if (it == sessions.end()) return;
  auto cur = it->second.conn.lock();
  if (!cur || cur.get() == s) sessions.erase(it);
}

awaitable<void> PeerTransport::Impl::accept_loop() {
  int backoff_ms = 10;
  for (;;) {
    auto [ec, sock] = co_await acceptor->async_accept(asio::make_strand(io), kTuple);
    if (ec) {
      if (!acceptor->is_open() || ec == asio::error::operation_aborted || stopped) co_return;
      // EMFILE/ENFILE and the like: back off instead of spinning; logged at a bounded rate.
      log.log(spdlog::level::warn, "accept:" + ec.message(), "peer listener: accept failed: {}; retrying", ec.message());
      asio::steady_timer t(io);
      t.expires_after(std::chrono::milliseconds(backoff_ms));
      co_await t.async_wait(kTuple);
      backoff_ms = std::min(backoff_ms * 2, 1000);
      continue;
    }
    backoff_ms = 10;
    Socket s(std::move(sock));
    std::error_code ig;
    s.set_option(tcp::no_delay(true), ig);
    inbound_total.fetch_add(1);
    auto c = std::make_shared<Inbound>(*this, std::move(s));
    add_pending(c);
    c->start();
  }
}

PeerTransport::PeerTransport(asio::io_context& io, const BrokerConfig& config, const Incarnation& incarnation,
                             std::string dir_id)
    : impl_(std::make_unique<Impl>(io, config, incarnation, std::move(dir_id))) {
  register_handshake_api();
  for (const auto& p : config.peers) {
    if (p.id == config.node_id) continue;
    impl_->links.emplace(node_id{p.id}, std::make_shared<Link>(*impl_, node_id{p.id}, p.addr));
  }
}

PeerTransport::~PeerTransport() = default;

std::expected<void, std::string> PeerTransport::listen() {
  auto& d = *impl_;
  if (!d.config.peer_listen || d.config.peers.size() <= 1) return {};
  std::error_code ec;
  tcp::resolver r(d.io);
  const auto& hp = *d.config.peer_listen;
  auto res = r.resolve(hp.host, std::to_string(hp.port), tcp::resolver::passive, ec);
  if (ec || res.empty()) return std::unexpected("--peer-listen: cannot resolve " + hp.str() + ": " + ec.message());
  const auto ep = res.begin()->endpoint();
  d.acceptor.emplace(d.io);
  d.acceptor->open(ep.protocol(), ec);
  if (!ec) d.acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) d.acceptor->bind(ep, ec);
  if (!ec) d.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return std::unexpected("cannot listen on --peer-listen " + hp.str() + ": " + ec.message() +
                           " (is another process using it?)");
  return {};
}

void PeerTransport::start(Hooks hooks) {
  impl_->hooks = std::move(hooks);
  if (impl_->acceptor) asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  for (auto& [_, l] : impl_->links) l->start();
}

void PeerTransport::stop() {
  impl_->stopped = true;
  if (impl_->acceptor) {
    asio::post(impl_->io, [d = impl_.get()] {
      std::error_code ec;
      d->acceptor->close(ec);
    });
  }
  std::vector<std::shared_ptr<Inbound>> open;
  {
    std::lock_guard lk(impl_->sessions_mu);
    for (auto& [_, s] : impl_->sessions)
      if (auto c = s.conn.lock()) open.push_back(std::move(c));
  }
  for (auto& c : open) c->close_from_any_thread();
  for (auto& [_, l] : impl_->links) l->stop();
}

void PeerTransport::send(node_id to, GroupMessage m) {
  auto it = impl_->links.find(to);
  if (it == impl_->links.end()) return;
  it->second->push(std::move(m));
}

void PeerTransport::announce(const std::vector<LeaderAnnouncement>& led) {
  for (auto& [_, l] : impl_->links) l->push_announcement(led);
}

PeerTransport::Stats PeerTransport::stats() const {
  Stats s;
  s.dropped_messages = impl_->dropped.load();
  s.handshakes_accepted = impl_->handshakes_accepted.load();
  s.handshakes_refused = impl_->handshakes_refused.load();
  s.connections_refused = impl_->connections_refused.load();
  s.frames_rejected = impl_->frames_rejected.load();
  {
    std::lock_guard lk(impl_->sessions_mu);
    s.inbound_open = impl_->sessions.size();
  }
  return s;
}

}  // namespace quorumq::broker
