// The peer transport: the peer listener and its sessions, the links to every peer, and the
// public PeerTransport (peer_transport.h). Connections live in peer_inbound.cc and peer_link.cc.
#include "peer_transport.h"

#include <spdlog/spdlog.h>

#include "peer_transport_impl.h"
#include "quorumq/protocol/errors.h"
#include "tls_context.h"
#include "quorumq/protocol/quorumq_generated.h"
#include "quorumq/protocol/verify.h"

namespace quorumq::broker {

namespace peer_detail {
std::size_t approx_bytes(const GroupMessage& gm) {
  std::size_t n = 96 + gm.group.size();
  for (const auto& e : gm.msg.entries) n += e.size_bytes();
  return n;
}

// Reads the next whole frame. The payload points into `d`: valid until the next call on `d`.
awaitable<std::optional<protocol::Frame>> next_frame(PeerStream& s, protocol::FrameDecoder& d, std::string& why) {
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
      why = ec == asio::error::eof || ec == asio::ssl::error::stream_truncated ? "the connection was closed"
                                                                                 : ec.message();
      co_return std::nullopt;
    }
  }
}

awaitable<std::error_code> write_frames(PeerStream& s, const std::vector<protocol::OutgoingFrame>& frames,
                                        std::vector<std::uint8_t>& scratch) {
  if (s.is_tls()) {
    scratch.clear();
    for (const auto& f : frames) {
      scratch.insert(scratch.end(), f.header.begin(), f.header.end());
      scratch.insert(scratch.end(), f.body.data(), f.body.data() + f.body.size());
    }
    auto [ec, n] = co_await asio::async_write(s, asio::buffer(scratch), kTuple);
    // A burst's buffer is not kept: an idle link holds no megabytes.
    if (scratch.capacity() > (1u << 20)) std::vector<std::uint8_t>().swap(scratch);
    co_return ec;
  }
  std::vector<asio::const_buffer> bufs;
  bufs.reserve(2 * frames.size());
  for (const auto& f : frames) {
    bufs.emplace_back(f.header.data(), f.header.size());
    bufs.emplace_back(f.body.data(), f.body.size());
  }
  auto [ec, n] = co_await asio::async_write(s, bufs, kTuple);
  co_return ec;
}

awaitable<bool> write_frame(PeerStream& s, const protocol::OutgoingFrame& f) {
  if (s.is_tls()) {
    const auto bytes = f.to_bytes();  // handshake frames: small
    auto [ec, n] = co_await asio::async_write(s, asio::buffer(bytes), kTuple);
    co_return !ec;
  }
  std::array<asio::const_buffer, 2> bufs{asio::buffer(f.header.data(), f.header.size()),
                                         asio::buffer(f.body.data(), f.body.size())};
  auto [ec, n] = co_await asio::async_write(s, bufs, kTuple);
  co_return !ec;
}

awaitable<bool> tls_handshake(PeerStream& s, asio::ssl::stream_base::handshake_type role, std::string& why) {
  if (!s.is_tls()) co_return true;
  auto [ec] = co_await s.async_handshake(role, kTuple);
  if (!ec) co_return true;
  why = "TLS handshake failed: " + tls_failure_reason(ec);
  if (looks_like_plain_text(why) || ec == asio::error::eof || ec == asio::ssl::error::stream_truncated)
    why += " (plain text at the other end? every broker needs the same --peer-tls-* settings)";
  co_return false;
}

std::string node_identity(std::int32_t id) { return "quorumq-node-" + std::to_string(id); }

std::optional<std::string> identity_mismatch(PeerStream& s, std::int32_t id) {
  if (!s.is_tls()) return std::nullopt;
  const auto names = certificate_names(s.peer_certificate());
  const auto expected = node_identity(id);
  if (names.matches(expected)) return std::nullopt;
  return "its certificate names " + names.str() + ", expected " + expected + " (as CN or DNS subjectAltName)";
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
}  // namespace peer_detail

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
  if (old) peer_detail::close_inbound(old);  // one session per peer: the newer one wins
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
    peer_detail::close_inbound(evict);
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
    peer_detail::start_inbound(*this, std::move(s));
  }
}

PeerTransport::PeerTransport(asio::io_context& io, const BrokerConfig& config, const Incarnation& incarnation,
                             std::string dir_id)
    : impl_(std::make_unique<Impl>(io, config, incarnation, std::move(dir_id))) {
  register_handshake_api();
  for (const auto& p : config.peers) {
    if (p.id == config.node_id) continue;
    impl_->links.emplace(node_id{p.id}, peer_detail::make_link(*impl_, node_id{p.id}, p.addr));
  }
}

PeerTransport::~PeerTransport() = default;

std::optional<std::string> PeerTransport::Impl::load_tls() {
  if (!config.peer_tls()) return std::nullopt;
  const TlsFiles files{config.peer_tls_cert_file, config.peer_tls_key_file, config.peer_tls_ca_file,
                       "--peer-tls-cert-file", "--peer-tls-key-file", "--peer-tls-ca-file"};
  auto server = make_server_context(files, PeerCertificates::required);
  if (!server) return server.error();
  auto client = make_client_context(files);
  if (!client) return client.error();
  // Our own certificate must name us, or every other broker refuses our links: say so now.
  const auto names = certificate_names(SSL_CTX_get0_certificate(server->ctx->native_handle()));
  const auto own = peer_detail::node_identity(config.node_id);
  if (!names.matches(own))
    return "--peer-tls-cert-file " + config.peer_tls_cert_file + " names " + names.str() + ", not " + own +
           ": the other brokers would refuse this one (issue it with CN or subjectAltName DNS:" + own + ")";
  {
    std::lock_guard lk(tls_mu);
    tls_server = std::move(server->ctx);
    tls_client = std::move(client->ctx);
  }
  tls_not_after.store(server->not_after, std::memory_order_relaxed);
  return std::nullopt;
}

std::optional<std::string> PeerTransport::reload_tls() { return impl_->load_tls(); }

std::expected<void, std::string> PeerTransport::listen() {
  auto& d = *impl_;
  if (auto e = d.load_tls()) return std::unexpected(*e);
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
  for (auto& [_, l] : impl_->links) peer_detail::start_link(*l);
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
  for (auto& c : open) peer_detail::close_inbound(c);
  for (auto& [_, l] : impl_->links) peer_detail::stop_link(*l);
}

void PeerTransport::send(node_id to, GroupMessage m) {
  auto it = impl_->links.find(to);
  if (it == impl_->links.end()) return;
  peer_detail::push_to_link(*it->second, std::move(m));
}

void PeerTransport::announce(const std::vector<LeaderAnnouncement>& led) {
  for (auto& [_, l] : impl_->links) peer_detail::announce_on_link(*l, led);
}

PeerTransport::Stats PeerTransport::stats() const {
  Stats s;
  s.dropped_messages = impl_->dropped.load();
  s.handshakes_accepted = impl_->handshakes_accepted.load();
  s.handshakes_refused = impl_->handshakes_refused.load();
  s.connections_refused = impl_->connections_refused.load();
  s.frames_rejected = impl_->frames_rejected.load();
  s.tls_handshake_failures = impl_->tls_handshake_failures.load();
  s.tls_identity_failures = impl_->tls_identity_failures.load();
  s.tls_not_after = impl_->tls_not_after.load();
  {
    std::lock_guard lk(impl_->sessions_mu);
    s.inbound_open = impl_->sessions.size();
  }
  return s;
}

}  // namespace quorumq::broker
