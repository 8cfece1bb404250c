// Client connections: the accept loop and one Connection per client (a reader and a writer
// coroutine on a per-connection strand), with its byte budget and backpressure.
#include "security_handlers.h"
#include "server_impl.h"

namespace quorumq::broker {


// One client connection. Lives while its coroutines run; all its state is touched only on its
// strand.
//
// Memory is bounded per connection and per broker. `held_` counts what this connection makes
// the broker keep: the bytes of each request until it is answered, a reservation for its answer
// (a fetch's max_bytes, clamped), and the answers queued until the socket took them. The reader
// dispatches the next request only while held_ is within --max-inflight-bytes (one request is
// always allowed) and the broker-wide total within --max-buffered-bytes; otherwise it stops
// reading (TCP backpressure). A client that never reads its answers therefore stops being read
// from, and is closed once a write makes no progress for --write-timeout-ms. The frame
// decoder's buffers count too and are released after a large request.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server::Impl& srv, Socket sock)
      : srv_(srv), sock_(srv.client_stream(std::move(sock))), decoder_(srv.config.max_frame_bytes),
        out_wake_(sock_.get_executor()), in_wake_(sock_.get_executor()), watchdog_(sock_.get_executor()) {}

  void start() {
    auto self = shared_from_this();
    asio::co_spawn(sock_.get_executor(), [self] { return self->begin(); }, asio::detached);
  }

  // Any thread. Releases what the request held (`charged` bytes, plus `reserved` for its answer
  // on this connection only) and queues `f` (if any) for sending.
  void send(std::optional<protocol::OutgoingFrame> f, std::size_t charged, std::size_t reserved) {
    srv_.outstanding.fetch_sub(1);
    asio::dispatch(sock_.get_executor(), [self = shared_from_this(), f = std::move(f), charged, reserved]() mutable {
      self->release(charged);
      self->held_ -= reserved;
      --self->outstanding_;
      if (f && !self->closed_) {
        self->charge(f->size_bytes());
        self->outq_.push_back(std::move(*f));
        self->out_wake_.cancel();
      }
      self->in_wake_.cancel();
    });
  }

  void close_from_any_thread() {
    asio::dispatch(sock_.get_executor(), [self = shared_from_this()] { self->close(); });
  }

 private:
  // The TLS handshake (if the listener has TLS), then reading, writing and the time limits.
  awaitable<void> begin() {
    if (!co_await srv_.tls_handshake(sock_, "client")) co_return close();
    if (auto p = srv_.certificate_principal(sock_); !p.empty() && !srv_.ctx.security.authentication_required())
      session_.set_principal(Principal{std::move(p)});
    auto self = shared_from_this();
    asio::co_spawn(sock_.get_executor(), [self] { return self->reader(); }, asio::detached);
    asio::co_spawn(sock_.get_executor(), [self] { return self->writer(); }, asio::detached);
    asio::co_spawn(sock_.get_executor(), [self] { return self->watch(); }, asio::detached);
  }

  // What an answer may need before it exists: a fetch reserves its (clamped) max_bytes.
  static constexpr std::size_t kAnswerReserve = 4096;

  void charge(std::size_t n) {
    held_ += n;
    srv_.buffered_bytes.fetch_add(static_cast<std::int64_t>(n), std::memory_order_relaxed);
  }
  void release(std::size_t n) {
    held_ -= n;
    srv_.buffered_bytes.fetch_sub(static_cast<std::int64_t>(n), std::memory_order_relaxed);
  }
  // Keeps the broker-wide total in step with the decoder's buffers.
  void account_decoder() {
    const std::size_t cap = closed_ ? 0 : decoder_.capacity_bytes();
    srv_.buffered_bytes.fetch_add(static_cast<std::int64_t>(cap) - static_cast<std::int64_t>(decoder_held_),
                                  std::memory_order_relaxed);
    decoder_held_ = cap;
  }
  bool over_budget() const {
    return (held_ > srv_.config.max_inflight_bytes_per_connection && outstanding_ + outq_.size() > 0) ||
           srv_.over_buffer_cap();
  }
  // Waits until this connection may take more work (or closes). Woken by send() and the writer;
  // while the broker-wide cap holds everyone back, it re-checks every 50 ms.
  awaitable<void> wait_for_budget() {
    bool counted = false;
    while (over_budget() && !closed_ && !closing_) {
      if (!counted) {
        srv_.metrics.connections_backpressured.fetch_add(1, std::memory_order_relaxed);
        counted = true;
      }
      in_wake_.expires_after(std::chrono::milliseconds(50));
      co_await in_wake_.async_wait(kTuple);
    }
    // The broker held the reader back, not the client: a frame it was sending may finish now.
    if (counted && partial_since_) partial_since_ = Clock::now();
  }

  awaitable<void> reader() {
    for (;;) {
      co_await wait_for_budget();
      if (closed_ || closing_) co_return;
      auto buf = decoder_.prepare(64 * 1024);
      account_decoder();
      auto [ec, n] = co_await sock_.async_read_some(asio::buffer(buf.data(), buf.size()), kTuple);
      if (ec || closed_) {
        decoder_.commit(0);
        if (ec != asio::error::eof && ec != asio::error::operation_aborted)
          spdlog::debug("connection {}: read: {}", peer(), ec.message());
        close();
        co_return;
      }
      decoder_.commit(n);
      last_read_ = Clock::now();
      for (;;) {
        auto r = decoder_.next();
        if (r.status == protocol::FrameError::need_more) break;
        if (r.status != protocol::FrameError::ok) {
          srv_.metrics.bad_frames.fetch_add(1, std::memory_order_relaxed);
          srv_.log_limited(spdlog::level::warn, "badframe", "connection {}: {}; closing it", peer(),
                           protocol::to_string(r.status));
          fail(protocol::make_error_response(0, protocol::ApiId::api_versions, protocol::to_error_code(r.status),
                                             protocol::to_string(r.status)));
          co_return;
        }
        // The frame's payload stays valid while we wait: the decoder is not touched meanwhile.
        if (over_budget()) co_await wait_for_budget();
        if (closing_ || closed_) co_return;
        dispatch(r.frame);
        if (closing_ || closed_) co_return;
      }
      // Every complete request is parsed (handlers copy what they keep): a large one must not
      // pin its buffer for the rest of the connection's life.
      decoder_.release_if_idle(256 * 1024);
      account_decoder();
      partial_since_ = decoder_.buffered_bytes() == 0 ? std::nullopt
                                                      : std::optional(partial_since_.value_or(Clock::now()));
    }
  }

  void dispatch(const protocol::Frame& frame) {
    const auto& h = frame.header;
    wire::ErrorCode code = wire::ErrorCode::none;
    if (h.is_response()) code = wire::ErrorCode::invalid_request;
    else code = protocol::verify_request(h.api_id, h.api_version, frame.payload);
    if (code == wire::ErrorCode::none && protocol::is_internal_api(h.api_id)) {
      // Broker-to-broker apis (replication, the peer handshake) are served only on the peer
      // listener, after the handshake: a client can never pose as a peer.
      srv_.metrics.bad_frames.fetch_add(1, std::memory_order_relaxed);
      srv_.log_limited(spdlog::level::warn, "internal-api",
                       "connection {}: broker-to-broker api {} on the client listener; refused and closed (peers "
                       "connect to --peer-listen)",
                       peer(), static_cast<int>(h.api_id));
      fail(protocol::make_error_response(h, wire::ErrorCode::invalid_request,
                                         "api " + std::to_string(static_cast<int>(h.api_id)) +
                                             " is broker-to-broker: this is the client listener (--listen); brokers "
                                             "connect to each other's --peer-listen address (--peers)"));
      return;
    }
    if (code != wire::ErrorCode::none) {
      srv_.metrics.bad_frames.fetch_add(1, std::memory_order_relaxed);
      srv_.log_limited(spdlog::level::warn, "badrequest",
                       "connection {}: request api {} v{}: {}; closing it", peer(), static_cast<int>(h.api_id),
                       h.api_version, wire::error_message(code));
      fail(protocol::make_error_response(h, code));
      return;
    }
    if (auth_failed_) return;  // the refusal is on its way; nothing else is served
    if (h.api_id == protocol::ApiId::sasl_authenticate) return sasl_step(h, frame.payload);
    if (srv_.ctx.security.authentication_required() && !session_.authenticated() &&
        h.api_id != protocol::ApiId::api_versions) {
      srv_.log_limited(spdlog::level::warn, "unauthenticated",
                       "connection {}: api {} before SASL authentication; refused and closed", peer(),
                       protocol::api_name(h.api_id));
      fail(protocol::make_error_response(h, wire::ErrorCode::authentication_required,
                                         "this broker requires SASL SCRAM authentication (--sasl) before any request "
                                         "but ApiVersions: give the client a user and password (CLI: --user and "
                                         "--password-file; SDK: ClientConfig::sasl_user)"));
      return;
    }
    // The request's bytes count everywhere; the reservation for its answer (a fetch's clamped
    // max_bytes) only against this connection's budget: a long poll that waits holds no memory
    // yet, and twenty idle consumers must not stop the broker reading everyone else.
    const std::size_t charged = frame.payload.size() + protocol::kFrameHeaderSize;
    std::size_t reserved = kAnswerReserve;
    if (h.api_id == protocol::ApiId::fetch) {
      const auto* req = protocol::payload_as<wire::FetchRequest>(frame.payload);
      reserved += static_cast<std::size_t>(std::clamp<std::int64_t>(req->max_bytes(), 1, srv_.config.max_fetch_bytes));
    }
    charge(charged);
    held_ += reserved;
    ++outstanding_;
    srv_.outstanding.fetch_add(1);
    auto self = shared_from_this();
    handle_request(
        srv_.ctx, h, frame.payload,
        [self, charged, reserved](std::optional<protocol::OutgoingFrame> f) { self->send(std::move(f), charged, reserved); },
        session_.principal());
  }

  // One SASL token (SaslAuthenticate). A failure of any kind is answered the same way, after the
  // same delay, and closes the connection: a client learns nothing about which users exist and
  // cannot try passwords quickly.
  void sasl_step(const protocol::FrameHeader& h, std::span<const std::uint8_t> payload) {
    const auto* req = protocol::payload_as<wire::SaslAuthenticateRequest>(payload);
    if (!srv_.ctx.security.authentication_required()) {
      fail(protocol::make_error_response(h, wire::ErrorCode::invalid_request,
                                         "SASL is not enabled on this broker (it runs without --sasl): connect "
                                         "without a user"));
      return;
    }
    const auto* bytes = req->auth_bytes();
    const std::string_view token = bytes ? std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size())
                                         : std::string_view();
    auto step = session_.step(srv_.ctx.security, req->mechanism() ? req->mechanism()->string_view() : "", token);
    count_login(srv_.ctx, "client", peer(), session_, step, true);
    flatbuffers::FlatBufferBuilder fbb(256);
    if (step.outcome == SaslSession::Step::failed) {
      const auto msg = fbb.CreateString(step.code == wire::ErrorCode::unsupported_sasl_mechanism
                                            ? "unsupported SASL mechanism: use SCRAM-SHA-256 or SCRAM-SHA-512"
                                            : "authentication failed: wrong user name or password");
      auto f = protocol::finish_response(fbb, wire::CreateSaslAuthenticateResponse(fbb, step.code, msg), h);
      auth_failed_ = true;
      auto timer = std::make_shared<Timer>(sock_.get_executor());
      timer->expires_after(kSaslFailureDelay);
      timer->async_wait([self = shared_from_this(), timer, f = std::move(f)](std::error_code) mutable {
        if (!self->closed_) self->fail(std::move(f));
      });
      return;
    }
    const std::string principal = step.outcome == SaslSession::Step::done ? session_.principal().name : "";
    const auto out = fbb.CreateVector(reinterpret_cast<const std::uint8_t*>(step.bytes.data()), step.bytes.size());
    const auto who = fbb.CreateString(principal);
    auto f = protocol::finish_response(fbb, wire::CreateSaslAuthenticateResponse(fbb, wire::ErrorCode::none, 0, out, who), h);
    charge(f.size_bytes());
    outq_.push_back(std::move(f));
    out_wake_.cancel();
  }

  // Answer with an error, flush, close: the stream can no longer be trusted.
  void fail(protocol::OutgoingFrame f) {
    charge(f.size_bytes());
    outq_.push_back(std::move(f));
    closing_ = true;
    out_wake_.cancel();
  }

  awaitable<void> writer() {
    std::vector<protocol::OutgoingFrame> batch;
    std::vector<asio::const_buffer> bufs;
    for (;;) {
      if (closed_) co_return;
      if (outq_.empty()) {
        if (closing_) {
          std::error_code ec;
          sock_.shutdown(tcp::socket::shutdown_send, ec);
          close();
          co_return;
        }
        out_wake_.expires_at(Clock::time_point::max());
        co_await out_wake_.async_wait(kTuple);
        continue;
      }
      batch.clear();
      bufs.clear();
      std::size_t bytes = 0;
      while (!outq_.empty() && batch.size() < 64) {
        bytes += outq_.front().size_bytes();
        batch.push_back(std::move(outq_.front()));
        outq_.pop_front();
      }
      for (const auto& f : batch) {
        bufs.emplace_back(f.header.data(), f.header.size());
        bufs.emplace_back(f.body.data(), f.body.size());
      }
      // --write-timeout-ms measures progress, not the whole write: every chunk the socket takes
      // restarts the clock (a slow but reading client is never cut off; one that reads nothing is).
      write_since_ = Clock::now();
      auto progress = [this](const std::error_code& wec, std::size_t) -> std::size_t {
        write_since_ = Clock::now();
        return wec ? 0 : 256 * 1024;
      };
      auto [ec, n] = co_await asio::async_write(sock_, bufs, progress, kTuple);
      write_since_.reset();
      batch.clear();  // the answers are on the wire (or lost with the connection): free them now
      release(bytes);
      in_wake_.cancel();
      if (ec) {
        close();
        co_return;
      }
    }
  }

  awaitable<void> watch() {
    while (!closed_) {
      watchdog_.expires_after(std::chrono::seconds(1));
      co_await watchdog_.async_wait(kTuple);
      if (closed_) co_return;
      if (srv_.time_limit_reached("connection", peer(), held_, write_since_, partial_since_,
                                  outstanding_ == 0 && outq_.empty(), last_read_))
        close();
    }
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    std::error_code ec;
    sock_.close(ec);
    out_wake_.cancel();
    in_wake_.cancel();
    watchdog_.cancel();
    // Answers not yet written are dropped with the connection; requests still running release
    // what they hold when they finish (send()).
    std::size_t queued = 0;
    for (const auto& f : outq_) queued += f.size_bytes();
    outq_.clear();
    release(queued);
    account_decoder();  // counts 0 from now on; the buffers go with this object
    srv_.metrics.connections_open.fetch_sub(1);
    srv_.on_closed(shared_from_this());
  }

  std::string peer() const { return sock_.peer(); }

  Server::Impl& srv_;
  ClientStream sock_;
  protocol::FrameDecoder decoder_;
  std::deque<protocol::OutgoingFrame> outq_;
  Timer out_wake_, in_wake_, watchdog_;
  std::size_t held_ = 0;          // requests in flight (+ reservations) and queued answers
  std::size_t decoder_held_ = 0;  // the decoder's buffers, as counted broker-wide
  std::int64_t outstanding_ = 0;
  bool closing_ = false;
  SaslSession session_;      // who this connection acts as (SASL, or the client certificate)
  bool auth_failed_ = false; // a SASL failure is being answered (after kSaslFailureDelay)
  bool closed_ = false;
  Clock::time_point last_read_ = Clock::now();
  std::optional<Clock::time_point> partial_since_;
  std::optional<Clock::time_point> write_since_;
};

bool Server::Impl::time_limit_reached(std::string_view kind, const std::string& peer, std::size_t held_bytes,
                                      std::optional<Clock::time_point> write_since,
                                      std::optional<Clock::time_point> partial_since, bool idle,
                                      Clock::time_point last_read) {
  const auto now = Clock::now();
  if (write_since && now - *write_since > std::chrono::milliseconds(config.write_timeout_ms)) {
    metrics.connections_write_timeouts.fetch_add(1, std::memory_order_relaxed);
    log_limited(spdlog::level::warn, std::string(kind) + ":write-timeout",
                "{} {}: the client took none of its answers' bytes for {} ms ({} bytes waiting); closing it "
                "(--write-timeout-ms)",
                kind, peer, config.write_timeout_ms, held_bytes);
    return true;
  }
  if (partial_since && now - *partial_since > std::chrono::milliseconds(config.partial_frame_timeout_ms)) {
    log_limited(spdlog::level::warn, std::string(kind) + ":partial-frame", "{} {}: a frame stayed incomplete for {} ms; closing it",
                kind, peer, config.partial_frame_timeout_ms);
    return true;
  }
  if (idle && now - last_read > std::chrono::milliseconds(config.idle_timeout_ms)) {
    spdlog::debug("{} {}: idle for {} ms; closing it", kind, peer, config.idle_timeout_ms);
    return true;
  }
  return false;
}

awaitable<void> Server::Impl::accept_connections(tcp::acceptor& from, std::string what,
                                                 std::function<void(Socket)> adopt) {
  int backoff_ms = 10;
  for (;;) {
    auto [ec, sock] = co_await from.async_accept(asio::make_strand(io), kTuple);
    if (ec) {
      if (!from.is_open() || ec == asio::error::operation_aborted) co_return;
      // EMFILE/ENFILE (out of file descriptors) and the like: back off instead of spinning on
      // the error; the log says it at a bounded rate.
      metrics.accept_errors.fetch_add(1, std::memory_order_relaxed);
      log_limited(spdlog::level::warn, "accept:" + ec.message(),
                  "accepting a {} connection failed: {}; retrying with backoff (raise `ulimit -n` or lower "
                  "--max-connections if this says 'Too many open files')",
                  what, ec.message());
      asio::steady_timer t(io);
      t.expires_after(std::chrono::milliseconds(backoff_ms));
      co_await t.async_wait(kTuple);
      backoff_ms = std::min(backoff_ms * 2, 1000);
      continue;
    }
    backoff_ms = 10;
    if (metrics.connections_open.load() >= static_cast<std::int64_t>(config.max_connections)) {
      metrics.connections_refused.fetch_add(1, std::memory_order_relaxed);
      log_limited(spdlog::level::warn, "max-connections", "refusing a {} connection: {} open (--max-connections)", what,
                  config.max_connections);
      std::error_code ignored;
      sock.close(ignored);
      continue;
    }
    std::error_code ignored;
    sock.set_option(tcp::no_delay(true), ignored);
    metrics.connections_accepted.fetch_add(1, std::memory_order_relaxed);
    metrics.connections_open.fetch_add(1);
    adopt(Socket(std::move(sock)));
  }
}

awaitable<void> Server::Impl::accept_loop() {
  return accept_connections(acceptor, "client", [this](Socket sock) {
    auto c = std::make_shared<Connection>(*this, std::move(sock));
    {
      std::lock_guard lk(conns_mu);
      conns.insert(c);
    }
    c->start();
  });
}

void close_connection(const std::shared_ptr<Connection>& c) { c->close_from_any_thread(); }

}  // namespace quorumq::broker
