// The Kafka listener (--kafka-listen, issue 17): its accept loop and one KafkaConnection per
// client. Kafka framing is a big-endian int32 size, then the request; answers go back in request
// order, so a connection handles one request at a time (a client may pipeline: the rest waits in
// the socket buffer, which is TCP backpressure).
//
// Limits as on the native listener: a request larger than --max-frame-bytes, a malformed one or
// one for an api not served closes that connection only; the request's bytes count against
// --max-buffered-bytes while it is handled; a frame that does not complete within
// --partial-frame-timeout-ms, an answer the client does not read within --write-timeout-ms and a
// connection idle for --idle-timeout-ms are closed; the connection counts toward
// --max-connections.
#include "kafka_api.h"
#include "server_impl.h"

namespace quorumq::broker {

class KafkaConnection : public std::enable_shared_from_this<KafkaConnection> {
 public:
  KafkaConnection(Server::Impl& srv, Socket sock)
      : srv_(srv), sock_(std::move(sock)), reply_wake_(sock_.get_executor()), watchdog_(sock_.get_executor()) {}

  void start() {
    auto self = shared_from_this();
    asio::co_spawn(sock_.get_executor(), [self] { return self->session(); }, asio::detached);
    asio::co_spawn(sock_.get_executor(), [self] { return self->watch(); }, asio::detached);
  }
  void close_from_any_thread() {
    asio::dispatch(sock_.get_executor(), [self = shared_from_this()] { self->close(); });
  }

 private:
  awaitable<void> session() {
    std::vector<std::uint8_t> buf;
    for (;;) {
      std::array<std::uint8_t, 4> size_bytes{};
      auto [ec, n] = co_await asio::async_read(sock_, asio::buffer(size_bytes), kTuple);
      if (ec || closed_) co_return close();
      partial_since_ = Clock::now();
      const std::int32_t size = static_cast<std::int32_t>(
          (std::uint32_t{size_bytes[0]} << 24) | (std::uint32_t{size_bytes[1]} << 16) |
          (std::uint32_t{size_bytes[2]} << 8) | std::uint32_t{size_bytes[3]});
      if (size < 8 || static_cast<std::uint32_t>(size) > srv_.config.max_frame_bytes) {
        srv_.metrics.bad_frames.fetch_add(1, std::memory_order_relaxed);
        srv_.log_limited(spdlog::level::warn, "kafka-badframe",
                         "Kafka connection {}: request size {} outside [8, {}] (--max-frame-bytes); closing it", peer(),
                         size, srv_.config.max_frame_bytes);
        co_return close();
      }
      // The broker-wide cap holds everyone back: wait before taking the bytes in.
      while (srv_.over_buffer_cap() && !closed_) {
        reply_wake_.expires_after(std::chrono::milliseconds(50));
        co_await reply_wake_.async_wait(kTuple);
      }
      buf.resize(static_cast<std::size_t>(size));
      charge(buf.size());
      auto [ec2, n2] = co_await asio::async_read(sock_, asio::buffer(buf), kTuple);
      partial_since_.reset();
      last_read_ = Clock::now();
      if (ec2 || closed_) {
        release(buf.size());
        co_return close();
      }
      answered_.reset();
      busy_ = true;
      srv_.outstanding.fetch_add(1);
      auto self = shared_from_this();
      kafka::handle(srv_.ctx, buf, [self](kafka::Answer a) {
        asio::dispatch(self->sock_.get_executor(), [self, a = std::move(a)]() mutable {
          self->answered_ = std::move(a);
          self->reply_wake_.cancel();
        });
      });
      while (!answered_ && !closed_) {
        reply_wake_.expires_at(Clock::time_point::max());
        co_await reply_wake_.async_wait(kTuple);
      }
      srv_.outstanding.fetch_sub(1);
      busy_ = false;
      release(buf.size());
      // A large request's buffer goes once the client pauses (a producer that keeps sending
      // reuses it: no fresh pages to fault in per request).
      if (std::error_code aec; buf.capacity() > (256u << 10) && sock_.available(aec) == 0)
        std::vector<std::uint8_t>().swap(buf);
      if (closed_ || !answered_) co_return close();
      kafka::Answer a = std::move(*answered_);
      answered_.reset();
      if (!a.bytes.empty()) {
        charge(a.bytes.size());
        answer_bytes_ = a.bytes.size();
        write_since_ = Clock::now();
        auto progress = [this](const std::error_code& wec, std::size_t) -> std::size_t {
          write_since_ = Clock::now();
          return wec ? 0 : 256 * 1024;
        };
        auto [wec, wn] = co_await asio::async_write(sock_, asio::buffer(a.bytes), progress, kTuple);
        write_since_.reset();
        answer_bytes_ = 0;
        release(a.bytes.size());
        if (wec) co_return close();
      }
      if (a.close) {
        srv_.metrics.bad_frames.fetch_add(1, std::memory_order_relaxed);
        srv_.log_limited(spdlog::level::warn, "kafka-badrequest", "Kafka connection {}: {}; closing it", peer(), a.why);
        std::error_code ignored;
        sock_.shutdown(tcp::socket::shutdown_send, ignored);
        co_return close();
      }
    }
  }

  awaitable<void> watch() {
    while (!closed_) {
      watchdog_.expires_after(std::chrono::seconds(1));
      co_await watchdog_.async_wait(kTuple);
      if (closed_) co_return;
      if (srv_.time_limit_reached("Kafka connection", peer(), answer_bytes_, write_since_, partial_since_,
                                  !busy_ && !write_since_, last_read_))
        close();
    }
  }

  void charge(std::size_t n) { srv_.buffered_bytes.fetch_add(static_cast<std::int64_t>(n), std::memory_order_relaxed); }
  void release(std::size_t n) { srv_.buffered_bytes.fetch_sub(static_cast<std::int64_t>(n), std::memory_order_relaxed); }

  void close() {
    if (closed_) return;
    closed_ = true;
    std::error_code ec;
    sock_.close(ec);
    reply_wake_.cancel();
    watchdog_.cancel();
    srv_.metrics.connections_open.fetch_sub(1);
    srv_.on_kafka_closed(shared_from_this());
  }

  std::string peer() const {
    std::error_code ec;
    const auto ep = sock_.remote_endpoint(ec);
    return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  Server::Impl& srv_;
  Socket sock_;
  Timer reply_wake_, watchdog_;
  std::optional<kafka::Answer> answered_;
  bool busy_ = false;
  std::size_t answer_bytes_ = 0;  // the answer being written
  bool closed_ = false;
  Clock::time_point last_read_ = Clock::now();
  std::optional<Clock::time_point> partial_since_;
  std::optional<Clock::time_point> write_since_;
};

awaitable<void> Server::Impl::kafka_accept_loop() {
  return accept_connections(kafka_acceptor, "Kafka client", [this](Socket sock) {
    auto c = std::make_shared<KafkaConnection>(*this, std::move(sock));
    {
      std::lock_guard lk(conns_mu);
      kafka_conns.insert(c);
    }
    c->start();
  });
}

void Server::Impl::on_kafka_closed(const std::shared_ptr<KafkaConnection>& c) {
  std::lock_guard lk(conns_mu);
  kafka_conns.erase(c);
}

void close_kafka_connection(const std::shared_ptr<KafkaConnection>& c) { c->close_from_any_thread(); }

}  // namespace quorumq::broker
