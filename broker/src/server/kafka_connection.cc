// The Kafka listener (--kafka-listen, issue 17): its accept loop and one KafkaConnection per
// client. Kafka framing is a big-endian int32 size, then the request; answers go back in request
// order. Produce and Fetch requests are handled up to 8 at a time (librdkafka keeps several in
// flight); any other request runs alone, as on a Kafka broker. What waits stays in the socket
// buffer: TCP backpressure.
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
      : srv_(srv), sock_(srv.client_stream(std::move(sock))), read_wake_(sock_.get_executor()),
        write_wake_(sock_.get_executor()), watchdog_(sock_.get_executor()) {}

  void start() {
    auto self = shared_from_this();
    asio::co_spawn(sock_.get_executor(), [self] { return self->begin(); }, asio::detached);
  }
  void close_from_any_thread() {
    asio::dispatch(sock_.get_executor(), [self = shared_from_this()] { self->close(); });
  }

 private:
  // Produce and Fetch requests (the data path) are handled up to kMaxInFlight at a time, as
  // librdkafka pipelines them; their answers still leave in request order, and the native
  // handlers append a partition's batches in the order they are called, so order and
  // idempotence hold. Any other request runs alone: it waits for those before it and holds back
  // those after it, as on a Kafka broker (group and offset requests never overlap).
  static constexpr std::size_t kMaxInFlight = 8;
  static constexpr std::size_t kSpareMax = 1u << 20;
  struct Slot {
    std::vector<std::uint8_t> request;  // kept until answered: the handlers may view it
    std::optional<kafka::Answer> answer;
    bool exclusive = false;
  };

  // The TLS handshake (SSL on the Kafka listener, if configured), then reading and writing.
  awaitable<void> begin() {
    if (!co_await srv_.tls_handshake(sock_, "Kafka")) co_return close();
    session_.peer = peer();
    if (auto p = srv_.certificate_principal(sock_); !p.empty() && !srv_.ctx.security.authentication_required())
      session_.sasl.set_principal(Principal{std::move(p)});
    auto self = shared_from_this();
    asio::co_spawn(sock_.get_executor(), [self] { return self->reader(); }, asio::detached);
    asio::co_spawn(sock_.get_executor(), [self] { return self->writer(); }, asio::detached);
    asio::co_spawn(sock_.get_executor(), [self] { return self->watch(); }, asio::detached);
  }

  static bool is_data_api(const std::vector<std::uint8_t>& req) {
    const int key = (int{req[0]} << 8) | req[1];
    return key == 0 || key == 1;  // Produce, Fetch
  }
  bool may_dispatch(bool data) const {
    if (slots_.empty()) return true;
    return data && !slots_.back()->exclusive && slots_.size() < kMaxInFlight;
  }

  awaitable<void> reader() {
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
        read_wake_.expires_after(std::chrono::milliseconds(50));
        co_await read_wake_.async_wait(kTuple);
      }
      auto slot = std::make_shared<Slot>();
      release(spare_.capacity());         // counted as the request's from here
      slot->request = std::move(spare_);  // a buffer whose pages are already there, if any
      spare_ = {};
      slot->request.resize(static_cast<std::size_t>(size));
      charge(slot->request.size());
      auto [ec2, n2] = co_await asio::async_read(sock_, asio::buffer(slot->request), kTuple);
      partial_since_.reset();
      last_read_ = Clock::now();
      if (ec2 || closed_) {
        release(slot->request.size());
        co_return close();
      }
      const bool data = is_data_api(slot->request);
      while (!closed_ && !may_dispatch(data)) {
        read_wake_.expires_at(Clock::time_point::max());
        co_await read_wake_.async_wait(kTuple);
      }
      if (closed_) {
        release(slot->request.size());
        co_return;
      }
      slot->exclusive = !data;
      slots_.push_back(slot);
      srv_.outstanding.fetch_add(1);
      auto self = shared_from_this();
      kafka::handle(srv_.ctx, session_, slot->request, [self, slot](kafka::Answer a) {
        asio::dispatch(self->sock_.get_executor(), [self, slot, a = std::move(a)]() mutable {
          // An answer waiting for its turn counts against --max-buffered-bytes from now on.
          self->charge(a.bytes.size());
          slot->answer = std::move(a);
          if (self->closed_) return self->drop_answered();
          self->write_wake_.cancel();
        });
      });
    }
  }

  // Answers in request order: the oldest request's answer as soon as it is there.
  awaitable<void> writer() {
    for (;;) {
      while (!closed_ && (slots_.empty() || !slots_.front()->answer)) {
        write_wake_.expires_at(Clock::time_point::max());
        co_await write_wake_.async_wait(kTuple);
      }
      if (closed_) co_return drop_answered();
      auto slot = std::move(slots_.front());
      slots_.pop_front();
      srv_.outstanding.fetch_sub(1);
      release(slot->request.size());
      read_wake_.cancel();  // room for the next request
      kafka::Answer a = std::move(*slot->answer);
      // One request buffer (at most 1 MiB, counted while kept) serves the next request: no fresh
      // pages to fault in per request. A large one goes once the client pauses.
      if (slot->request.capacity() <= kSpareMax && slot->request.capacity() > spare_.capacity()) {
        release(spare_.capacity());
        spare_ = std::move(slot->request);
        charge(spare_.capacity());
      }
      if (std::error_code aec; spare_.capacity() > (256u << 10) && sock_.available(aec) == 0) {
        release(spare_.capacity());
        std::vector<std::uint8_t>().swap(spare_);
      }
      slot.reset();
      if (!a.bytes.empty()) {
        answer_bytes_ = a.bytes.size();
        write_since_ = Clock::now();
        auto progress = [this](const std::error_code& wec, std::size_t) -> std::size_t {
          write_since_ = Clock::now();
          return wec ? 0 : 256 * 1024;
        };
        auto [wec, wn] = co_await asio::async_write(sock_, asio::buffer(a.bytes), progress, kTuple);
        write_since_.reset();
        answer_bytes_ = 0;
        if (wec) {
          release(a.bytes.size());
          close();
          co_return drop_answered();
        }
      }
      release(a.bytes.size());  // an empty answer (acks=0) was charged nothing
      if (a.close) {
        srv_.metrics.bad_frames.fetch_add(1, std::memory_order_relaxed);
        srv_.log_limited(spdlog::level::warn, "kafka-badrequest", "Kafka connection {}: {}; closing it", peer(), a.why);
        std::error_code ignored;
        sock_.shutdown(tcp::socket::shutdown_send, ignored);
        close();
        co_return drop_answered();
      }
    }
  }

  // After close: requests already answered give their bytes back now; the others when their
  // answer arrives (each handler answers exactly once).
  void drop_answered() {
    for (auto it = slots_.begin(); it != slots_.end();) {
      if ((*it)->answer) {
        release((*it)->request.size() + (*it)->answer->bytes.size());
        srv_.outstanding.fetch_sub(1);
        it = slots_.erase(it);
      } else {
        ++it;
      }
    }
  }

  awaitable<void> watch() {
    while (!closed_) {
      watchdog_.expires_after(std::chrono::seconds(1));
      co_await watchdog_.async_wait(kTuple);
      if (closed_) co_return;
      if (srv_.time_limit_reached("Kafka connection", peer(), answer_bytes_, write_since_, partial_since_,
                                  slots_.empty() && !write_since_, last_read_))
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
    release(spare_.capacity());
    std::vector<std::uint8_t>().swap(spare_);
    read_wake_.cancel();
    write_wake_.cancel();
    watchdog_.cancel();
    srv_.metrics.connections_open.fetch_sub(1);
    srv_.on_kafka_closed(shared_from_this());
  }

  std::string peer() const { return sock_.peer(); }

  Server::Impl& srv_;
  ClientStream sock_;
  Timer read_wake_, write_wake_, watchdog_;
  std::deque<std::shared_ptr<Slot>> slots_;  // requests being handled, oldest first
  std::vector<std::uint8_t> spare_;          // a request buffer to reuse
  std::size_t answer_bytes_ = 0;             // the answer being written
  bool closed_ = false;
  kafka::Session session_;  // SASL state and principal; SASL requests run alone (exclusive)
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
