// Internals of the peer transport (peer_transport.h), shared by its three files:
//   peer_transport.cc  the listener, sessions, frame helpers, the public PeerTransport
//   peer_inbound.cc    one inbound connection: the listener's half of the handshake, envelopes in
//   peer_link.cc       one outbound link: dial, the dialer's half of the handshake, envelopes out
// Only the replication layer includes this (and Asio).
#pragma once

#include <spdlog/spdlog.h>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>

#include "peer_auth.h"
#include "peer_transport.h"
#include "quorumq/protocol/frame.h"
#include "tls_stream.h"

namespace quorumq::broker {

using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;
using Socket = tcp::socket::rebind_executor<Strand>::other;
using Timer = asio::steady_timer::rebind_executor<Strand>::other;
// A peer link's bytes: plain TCP, or TLS with --peer-tls-cert-file.
using PeerStream = BasicStream<Socket>;
using Clock = std::chrono::steady_clock;
inline constexpr auto kTuple = asio::experimental::as_tuple(use_awaitable);

namespace peer_detail {
inline constexpr std::size_t kQueueBytesMax = 64u << 20;
inline constexpr std::size_t kEnvelopeBytesMax = 4u << 20;
inline constexpr auto kHandshakeTimeout = std::chrono::seconds(5);
inline constexpr auto kRepeatLogEvery = std::chrono::seconds(60);

std::size_t approx_bytes(const GroupMessage& gm);
// Reads the next whole frame. The payload points into `d`: valid until the next call on `d`.
awaitable<std::optional<protocol::Frame>> next_frame(PeerStream& s, protocol::FrameDecoder& d, std::string& why);
awaitable<bool> write_frame(PeerStream& s, const protocol::OutgoingFrame& f);
// Writes `frames` whole. Over TLS they are first gathered into `scratch` (Asio's TLS stream
// would make one record and one write per buffer); over TCP they go out as one writev.
awaitable<std::error_code> write_frames(PeerStream& s, const std::vector<protocol::OutgoingFrame>& frames,
                                        std::vector<std::uint8_t>& scratch);
// The TLS handshake of a peer link (no-op without TLS); false with `why` on failure. The
// caller's handshake deadline bounds it: closing the socket ends it.
awaitable<bool> tls_handshake(PeerStream& s, asio::ssl::stream_base::handshake_type role, std::string& why);
// The name a broker's peer certificate must carry (CN or DNS SAN): "quorumq-node-<id>".
std::string node_identity(std::int32_t id);
// Why the certificate the other end of `s` presented does not name broker `id` ("its
// certificate names CN=x, DNS:y, expected quorumq-node-<id> ..."); nullopt: it does, or the
// link has no TLS.
std::optional<std::string> identity_mismatch(PeerStream& s, std::int32_t id);
// A handshake message from a frame, or why not (an ErrorResponse names the peer's complaint:
// typically a client listener refusing internal apis, i.e. --peers points at client ports).
std::optional<HandshakeMsg> handshake_of(const protocol::Frame& f, std::string& why);

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


class Inbound;
class Link;
// peer_inbound.cc: a connection accepted on the peer listener.
std::shared_ptr<Inbound> start_inbound(PeerTransport::Impl& t, Socket sock);
void close_inbound(const std::shared_ptr<Inbound>& c);  // from any thread
// peer_link.cc: the link to one peer.
std::shared_ptr<Link> make_link(PeerTransport::Impl& t, node_id peer, const HostPort& addr);
void start_link(Link& l);
void stop_link(Link& l);
void push_to_link(Link& l, GroupMessage m);
void announce_on_link(Link& l, const std::vector<LeaderAnnouncement>& led);
}  // namespace peer_detail

using peer_detail::Inbound;
using peer_detail::Link;
using peer_detail::LogLimiter;

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
      frames_rejected{0}, tls_handshake_failures{0}, tls_identity_failures{0};

  // Peer TLS (--peer-tls-*): the listener's and the dialer's contexts, both null without it. A
  // reload (SIGHUP) replaces them; a connection keeps the context it was made with.
  std::mutex tls_mu;
  std::shared_ptr<asio::ssl::context> tls_server, tls_client;  // under tls_mu
  std::atomic<std::int64_t> tls_not_after{0};
  std::shared_ptr<asio::ssl::context> server_tls() {
    std::lock_guard lk(tls_mu);
    return tls_server;
  }
  std::shared_ptr<asio::ssl::context> client_tls() {
    std::lock_guard lk(tls_mu);
    return tls_client;
  }
  std::optional<std::string> load_tls();  // both contexts from the files, or why not (the old ones stay)
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
  HostPort own_client_address() const { return config.client_address(); }
  // This broker's Kafka listener as clients should reach it; none without --kafka-listen.
  std::optional<HostPort> own_kafka_address() const { return config.kafka_address(); }
  std::size_t pending_cap() const { return 2 * config.peers.size() + 4; }
  void add_pending(const std::shared_ptr<Inbound>& c);
  void remove_pending(const Inbound* c);

  awaitable<void> accept_loop();
  void session_authenticated(node_id peer, const std::shared_ptr<Inbound>& s, const std::string& dir,
                             const std::string& address);
  void session_closed(node_id peer, const Inbound* s);
};

}  // namespace quorumq::broker
