// All of the broker's Asio code: listener, connections (one reader and one writer coroutine
// each, on a per-connection strand), the admin HTTP endpoint, timers and signals.
#include "server.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <charconv>
#include <chrono>
#include <cctype>
#include <deque>
#include <filesystem>
#include <sstream>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "context.h"
#include "handlers.h"
#include "peer_transport.h"
#include "raft_codec.h"
#include "quorumq/protocol/frame.h"
#include "quorumq/protocol/messages.h"
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

class AsioTimer final : public TimerHandle, public std::enable_shared_from_this<AsioTimer> {
 public:
  explicit AsioTimer(asio::io_context& io) : timer_(asio::make_strand(io)) {}
  void start(std::chrono::milliseconds d, std::function<void(bool)> fn) {
    timer_.expires_after(d);
    timer_.async_wait([self = shared_from_this(), fn = std::move(fn)](std::error_code ec) {
      fn(ec == asio::error::operation_aborted);
    });
  }
  void cancel() override {
    asio::post(timer_.get_executor(), [self = shared_from_this()] { self->timer_.cancel(); });
  }

 private:
  Timer timer_;
};

std::vector<node_id> peer_ids(const BrokerConfig& config) {
  std::vector<node_id> out;
  for (const auto& p : config.peers)
    if (p.id != config.node_id) out.push_back(node_id{p.id});
  return out;
}

class AsioExecutor final : public Executor {
 public:
  explicit AsioExecutor(asio::io_context& io) : io_(io) {}
  void post(std::function<void()> fn) override { asio::post(io_, std::move(fn)); }
  std::shared_ptr<TimerHandle> run_after(std::chrono::milliseconds d, std::function<void(bool)> fn) override {
    auto t = std::make_shared<AsioTimer>(io_);
    t->start(d, std::move(fn));
    return t;
  }

 private:
  asio::io_context& io_;
};

}  // namespace

class Connection;

struct Server::Impl {
  const BrokerConfig& config;
  Metrics& metrics;
  storage::Storage& storage;
  asio::io_context io;
  AsioExecutor exec{io};
  Incarnation incarnation{storage, peer_ids(config)};
  PeerTransport transport{io, config, incarnation, storage.dir_id()};
  ReplicaManager replication{config, transport, incarnation};
  TopicManager topics{storage, metrics, node_id{config.node_id}, config.max_partitions};
  GroupRegistry groups;
  Controller controller{storage, topics, replication.brokers(), node_id{config.node_id}};
  GroupCoordinator coordinator{controller, groups, topics, exec,
                               GroupCoordinator::Limits{config.max_groups, config.max_group_members}};
  BrokerContext ctx;
  tcp::acceptor acceptor{io};
  tcp::acceptor admin_acceptor{io};
  asio::signal_set signals{io, SIGINT, SIGTERM};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{io.get_executor()};
  std::mutex conns_mu;
  std::set<std::shared_ptr<Connection>> conns;
  std::atomic<std::int64_t> outstanding{0};  // requests accepted but not yet answered
  // Bytes client connections hold (requests in flight, answers not yet written, decoder
  // buffers); past --max-buffered-bytes every connection stops reading until it drops.
  std::atomic<std::int64_t> buffered_bytes{0};
  bool over_buffer_cap() const {
    return buffered_bytes.load(std::memory_order_relaxed) > static_cast<std::int64_t>(config.max_buffered_bytes);
  }
  std::atomic<bool> stopping{false};
  // Hot backup (POST /v1/backup): one at a time, on its own thread so the LMDB copy never
  // blocks an io thread; joined before storage closes (the destructor runs before members die).
  std::atomic<bool> backup_running{false};
  std::mutex backup_mu;
  std::thread backup_thread;

  Impl(const BrokerConfig& c, storage::Storage& s, Metrics& m)
      : config(c), metrics(m), storage(s), ctx(c, s, topics, m, exec, replication, controller, groups, coordinator) {}
  ~Impl() {
    std::lock_guard lk(backup_mu);
    if (backup_thread.joinable()) backup_thread.join();
  }

  awaitable<void> accept_loop();
  awaitable<void> admin_loop();
  awaitable<void> admin_session(Socket sock);
  awaitable<void> shutdown();
  awaitable<void> retention_loop();
  awaitable<void> raft_clock();
  void update_in_sync();
  mutable std::mutex sync_mu;
  std::vector<std::string> out_of_sync;  // under sync_mu
  bool sync_checked = false;             // under sync_mu: update_in_sync() ran at least once
  bool controller_caught_up = false;     // raft_clock only
  // A led partition's high watermark and log start, for the leader announcement.
  void fill_announcement(LeaderAnnouncement& a) const {
    const auto slash = a.group.rfind('/');
    if (slash == std::string::npos) return;
    std::int32_t pid = -1;
    const auto num = a.group.substr(slash + 1);
    if (std::from_chars(num.data(), num.data() + num.size(), pid).ec != std::errc{}) return;
    if (auto t = topics.find(a.group.substr(0, slash)))
      if (const Partition* p = t->local(pid); p && p->serving())
        a.high_watermark = p->high_watermark(), a.log_start_offset = p->log_start_offset();
  }
  void begin_shutdown();
  // A warning at most once a minute per key (hostile clients must not flood the log).
  template <typename... Args>
  void log_limited(spdlog::level::level_enum lvl, const std::string& key, fmt::format_string<Args...> f,
                   Args&&... args) {
    {
      std::lock_guard lk(log_mu);
      if (log_last.size() > 1024) log_last.clear();
      auto& last = log_last[key];
      const auto now = Clock::now();
      if (last != Clock::time_point{} && now - last < std::chrono::seconds(60)) return;
      last = now;
    }
    spdlog::log(lvl, f, std::forward<Args>(args)...);
  }
  std::mutex log_mu;
  std::map<std::string, Clock::time_point> log_last;
  void on_closed(const std::shared_ptr<Connection>& c) {
    std::lock_guard lk(conns_mu);
    conns.erase(c);
  }
  std::string render_metrics() const;
  awaitable<std::pair<int, std::string>> backup(const std::string& query);
};

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
      : srv_(srv), sock_(std::move(sock)), decoder_(srv.config.max_frame_bytes), out_wake_(sock_.get_executor()),
        in_wake_(sock_.get_executor()), watchdog_(sock_.get_executor()) {}

  void start() {
    auto self = shared_from_this();
    asio::co_spawn(sock_.get_executor(), [self] { return self->reader(); }, asio::detached);
    asio::co_spawn(sock_.get_executor(), [self] { return self->writer(); }, asio::detached);
    asio::co_spawn(sock_.get_executor(), [self] { return self->watch(); }, asio::detached);
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
    handle_request(srv_.ctx, h, frame.payload, [self, charged, reserved](std::optional<protocol::OutgoingFrame> f) {
      self->send(std::move(f), charged, reserved);
    });
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
    const auto& cfg = srv_.config;
    while (!closed_) {
      watchdog_.expires_after(std::chrono::seconds(1));
      co_await watchdog_.async_wait(kTuple);
      if (closed_) co_return;
      const auto now = Clock::now();
      if (write_since_ && now - *write_since_ > std::chrono::milliseconds(cfg.write_timeout_ms)) {
        srv_.metrics.connections_write_timeouts.fetch_add(1, std::memory_order_relaxed);
        srv_.log_limited(spdlog::level::warn, "write-timeout",
                         "connection {}: the client took none of its answers' bytes for {} ms ({} bytes "
                         "waiting); closing it (--write-timeout-ms)",
                         peer(), cfg.write_timeout_ms, held_);
        close();
      } else if (partial_since_ && now - *partial_since_ > std::chrono::milliseconds(cfg.partial_frame_timeout_ms)) {
        srv_.log_limited(spdlog::level::warn, "partial-frame", "connection {}: a frame stayed incomplete for {} ms; closing it",
                         peer(), cfg.partial_frame_timeout_ms);
        close();
      } else if (outstanding_ == 0 && outq_.empty() && now - last_read_ > std::chrono::milliseconds(cfg.idle_timeout_ms)) {
        spdlog::debug("connection {}: idle for {} ms; closing it", peer(), cfg.idle_timeout_ms);
        close();
      }
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

  std::string peer() const {
    std::error_code ec;
    const auto ep = sock_.remote_endpoint(ec);
    return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  Server::Impl& srv_;
  Socket sock_;
  protocol::FrameDecoder decoder_;
  std::deque<protocol::OutgoingFrame> outq_;
  Timer out_wake_, in_wake_, watchdog_;
  std::size_t held_ = 0;          // requests in flight (+ reservations) and queued answers
  std::size_t decoder_held_ = 0;  // the decoder's buffers, as counted broker-wide
  std::int64_t outstanding_ = 0;
  bool closing_ = false;
  bool closed_ = false;
  Clock::time_point last_read_ = Clock::now();
  std::optional<Clock::time_point> partial_since_;
  std::optional<Clock::time_point> write_since_;
};

awaitable<void> Server::Impl::accept_loop() {
  int backoff_ms = 10;
  for (;;) {
    auto [ec, sock] = co_await acceptor.async_accept(asio::make_strand(io), kTuple);
    if (ec) {
      if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
      // EMFILE/ENFILE (out of file descriptors) and the like: back off instead of spinning on
      // the error; the log says it at a bounded rate.
      metrics.accept_errors.fetch_add(1, std::memory_order_relaxed);
      log_limited(spdlog::level::warn, "accept:" + ec.message(),
                  "accepting a client connection failed: {}; retrying with backoff (raise `ulimit -n` or lower "
                  "--max-connections if this says 'Too many open files')",
                  ec.message());
      asio::steady_timer t(io);
      t.expires_after(std::chrono::milliseconds(backoff_ms));
      co_await t.async_wait(kTuple);
      backoff_ms = std::min(backoff_ms * 2, 1000);
      continue;
    }
    backoff_ms = 10;
    if (metrics.connections_open.load() >= static_cast<std::int64_t>(config.max_connections)) {
      metrics.connections_refused.fetch_add(1, std::memory_order_relaxed);
      log_limited(spdlog::level::warn, "max-connections", "refusing a client connection: {} open (--max-connections)",
                  config.max_connections);
      std::error_code ignored;
      sock.close(ignored);
      continue;
    }
    std::error_code ignored;
    sock.set_option(tcp::no_delay(true), ignored);
    metrics.connections_accepted.fetch_add(1, std::memory_order_relaxed);
    metrics.connections_open.fetch_add(1);
    auto c = std::make_shared<Connection>(*this, Socket(std::move(sock)));
    {
      std::lock_guard lk(conns_mu);
      conns.insert(c);
    }
    c->start();
  }
}

namespace {
// A Prometheus label value (text format 0.0.4): backslash, double quote and newline escaped, so
// no name a client chose (a group id, say) can break the page.
std::string label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (const char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}
}  // namespace

// The standard process metrics (Prometheus client conventions), from /proc/self.
static void render_process_metrics(std::string& out) {
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  std::ifstream stat("/proc/self/stat");
  std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto rp = all.rfind(')');
  std::vector<std::string> f;
  if (rp != std::string::npos) {
    std::istringstream rest(all.substr(rp + 2));
    for (std::string x; rest >> x;) f.push_back(x);
  }
  // Fields after the command name, numbered from 3 (state) as in proc(5).
  auto field = [&](std::size_t n) { return n - 3 < f.size() ? std::stod(f[n - 3]) : 0.0; };
  std::size_t fds = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec))
    ++fds;
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  const double boot = [] {
    std::ifstream s("/proc/stat");
    for (std::string line; std::getline(s, line);)
      if (line.starts_with("btime ")) return std::stod(line.substr(6));
    return 0.0;
  }();
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "# HELP process_cpu_seconds_total User and system CPU time\n# TYPE process_cpu_seconds_total counter\n"
                "process_cpu_seconds_total %.2f\n"
                "# HELP process_resident_memory_bytes Resident memory\n# TYPE process_resident_memory_bytes gauge\n"
                "process_resident_memory_bytes %.0f\n"
                "# HELP process_virtual_memory_bytes Virtual memory (the LMDB map counts in full)\n"
                "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %.0f\n"
                "# HELP process_open_fds Open file descriptors\n# TYPE process_open_fds gauge\nprocess_open_fds %zu\n"
                "# HELP process_max_fds File descriptor limit\n# TYPE process_max_fds gauge\nprocess_max_fds %llu\n"
                "# HELP process_start_time_seconds Start time since the epoch\n# TYPE process_start_time_seconds gauge\n"
                "process_start_time_seconds %.2f\n",
                (field(14) + field(15)) / tick, field(24) * page, field(23), fds,
                static_cast<unsigned long long>(rl.rlim_cur), boot + field(22) / tick);
  out += buf;
}

std::string Server::Impl::render_metrics() const {
  std::string out;
  out.reserve(8192);
  auto counter = [&](const char* name, const char* help, std::uint64_t v, const char* type = "counter") {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
           std::to_string(v) + "\n";
  };
  const auto& m = metrics;
  counter("quorumq_connections_accepted_total", "Client connections accepted", m.connections_accepted);
  counter("quorumq_connections_open", "Client connections open", static_cast<std::uint64_t>(std::max<std::int64_t>(0, m.connections_open)), "gauge");
  counter("quorumq_connections_refused_total", "Connections refused by --max-connections", m.connections_refused);
  counter("quorumq_bad_frames_total", "Malformed, oversized or unverifiable frames (connection closed)", m.bad_frames);
  counter("quorumq_connection_buffered_bytes",
          "Bytes client connections make the broker hold (requests in flight, unread answers, frame buffers); "
          "capped by --max-buffered-bytes",
          static_cast<std::uint64_t>(std::max<std::int64_t>(0, buffered_bytes.load())), "gauge");
  counter("quorumq_connections_backpressured_total",
          "Times a connection stopped being read because it (or the broker) held its budget of bytes",
          m.connections_backpressured);
  counter("quorumq_connections_write_timeouts_total",
          "Connections closed because the client read none of its answers for --write-timeout-ms",
          m.connections_write_timeouts);
  counter("quorumq_accept_errors_total", "Failed accepts (e.g. out of file descriptors), retried with backoff",
          m.accept_errors);
  counter("quorumq_produce_requests_total", "Produce requests", m.produce_requests);
  counter("quorumq_produce_records_total", "Records received in produce requests", m.produce_records);
  counter("quorumq_produce_bytes_total", "Record batch bytes received", m.produce_bytes);
  counter("quorumq_produce_errors_total", "Partition produce results with an error", m.produce_errors);
  counter("quorumq_produce_duplicates_total", "Retried idempotent batches recognised and not written again", m.produce_duplicates);
  counter("quorumq_fetch_requests_total", "Fetch requests", m.fetch_requests);
  counter("quorumq_produce_timeouts_total",
          "Partitions of produce requests answered when timeout_ms ran out (request_timed_out or disk_full)",
          m.produce_timeouts);
  counter("quorumq_storage_disk_full", "1 while the data directory's disk is full (writes fail; reads go on)",
          ctx.storage.disk_full() ? 1 : 0, "gauge");
  counter("quorumq_fetch_wakeups_total", "Long-poll fetches woken by a high-watermark move (never by a timer loop)",
          m.fetch_wakeups);
  counter("quorumq_fetch_bytes_total", "Record batch bytes served", m.fetch_bytes);
  counter("quorumq_fetch_errors_total", "Partition fetch results with an error", m.fetch_errors);
  counter("quorumq_offset_commits_total", "Offset commit requests", m.offset_commits);
  counter("quorumq_offset_commits_fenced_total",
          "Partition commits refused because the group member does not own the partition (stale or removed member)",
          m.offset_commits_fenced);
  {
    // Consumer groups, as applied from the controller log (the same on every broker).
    const auto groups_now = groups.all();
    out += "# HELP quorumq_group_members Members of each consumer group\n# TYPE quorumq_group_members gauge\n";
    for (const auto& g : groups_now)
      out += "quorumq_group_members{group=\"" + label(g.name) + "\"} " + std::to_string(g.members.size()) + "\n";
    out += "# HELP quorumq_group_generation Generation of each consumer group (+1 per replicated change)\n"
           "# TYPE quorumq_group_generation gauge\n";
    for (const auto& g : groups_now)
      out += "quorumq_group_generation{group=\"" + label(g.name) + "\"} " + std::to_string(g.generation) + "\n";
  }
  counter("quorumq_other_requests_total", "Other requests (metadata, admin, offsets)", m.other_requests);
  m.produce_latency.render(out, "quorumq_produce_latency_seconds", "Produce request latency until the answer");
  m.fetch_latency.render(out, "quorumq_fetch_latency_seconds", "Fetch request latency including long-poll waits");
  const auto st = ctx.storage.stats();
  counter("quorumq_storage_commits_total", "Group commits (durable LMDB transactions)", st.commits);
  counter("quorumq_storage_writes_total", "Writes (appends, offset commits, ...) carried by commits", st.writes);
  counter("quorumq_storage_failed_writes_total", "Writes that failed", st.failed_writes);
  counter("quorumq_storage_appended_batches_total", "Record batches appended", st.appended_batches);
  counter("quorumq_storage_appended_bytes_total", "Record batch bytes appended", st.appended_bytes);
  counter("quorumq_storage_map_resizes_total", "LMDB map size doublings", st.map_resizes);
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "# HELP quorumq_storage_appends_per_commit Mean writes carried by one group commit\n"
                "# TYPE quorumq_storage_appends_per_commit gauge\nquorumq_storage_appends_per_commit %.3f\n",
                st.commits ? static_cast<double>(st.writes) / static_cast<double>(st.commits) : 0.0);
  out += buf;
  std::snprintf(buf, sizeof buf,
                "# HELP quorumq_storage_commit_seconds_total Time spent committing (syncing)\n"
                "# TYPE quorumq_storage_commit_seconds_total counter\nquorumq_storage_commit_seconds_total %.6f\n",
                static_cast<double>(st.commit_ns_total) / 1e9);
  out += buf;
  counter("quorumq_storage_used_bytes", "Bytes of the LMDB data file in use", ctx.storage.used_bytes(), "gauge");
  std::error_code ec;
  const auto space = std::filesystem::space(ctx.storage.dir(), ec);
  if (!ec) counter("quorumq_storage_free_bytes", "Free bytes on the data directory's filesystem", space.available, "gauge");
  const auto topics = ctx.topics.list();
  std::size_t parts = 0;
  for (const auto& t : topics)
    for (const auto& p : t->partitions) parts += p != nullptr;
  counter("quorumq_partitions", "Partitions hosted on this broker", parts, "gauge");
  std::size_t led = 0, ready_led = 0;
  for (const auto& t : topics)
    for (const auto& p : t->partitions)
      if (p && p->group() && p->group()->is_leader()) ++led, ready_led += p->serving();
  counter("quorumq_partitions_led", "Partitions this broker leads", led, "gauge");
  std::uint64_t elections_started = 0, elections_won = 0;  // controller + hosted partitions
  std::uint64_t votes_withheld = 0, lost_state = 0, recovering = 0;
  auto add_group_counts = [&](const ReplicatedLog* g) {
    if (!g) return;
    elections_started += g->elections_started(), elections_won += g->elections_won();
    votes_withheld += g->votes_withheld(), lost_state += g->lost_state(), recovering += g->recovering();
  };
  add_group_counts(controller.group());
  for (const auto& t : topics)
    for (const auto& p : t->partitions)
      if (p) add_group_counts(p->group());
  counter("quorumq_raft_elections_started_total", "Raft elections this broker started (turned candidate), all groups",
          elections_started);
  counter("quorumq_raft_elections_won_total", "Raft elections this broker won (turned leader), all groups", elections_won);
  counter("quorumq_raft_votes_withheld_total",
          "Votes refused because this broker started with an empty data directory and had not caught up yet",
          votes_withheld);
  counter("quorumq_raft_groups_lost_state",
          "Groups (controller + partitions) that do not vote yet: this broker lost its data directory (or does "
          "not know yet whether it did) and they have not caught up with a leader",
          lost_state, "gauge");
  counter("quorumq_raft_groups_recovering",
          "Groups re-fetching a log cut at a damaged entry (non-voting until they hold what they held before)",
          recovering, "gauge");
  const auto ps = transport.stats();
  counter("quorumq_replication_dropped_messages_total", "Raft messages dropped by full or broken peer links",
          ps.dropped_messages);
  counter("quorumq_peer_links_inbound", "Authenticated inbound peer links (one per peer broker)", ps.inbound_open,
          "gauge");
  counter("quorumq_peer_handshakes_accepted_total", "Peer handshakes completed (inbound and outbound)",
          ps.handshakes_accepted);
  counter("quorumq_peer_handshakes_refused_total",
          "Peer handshakes refused (other cluster, wrong secret, unknown or duplicate node id, timeout)",
          ps.handshakes_refused);
  counter("quorumq_peer_connections_refused_total", "Peer-listener connections refused (over its budget)",
          ps.connections_refused);
  counter("quorumq_peer_frames_rejected_total", "Malformed or unexpected frames on peer links (link closed)",
          ps.frames_rejected);
  std::uint64_t raft_rejected = replication.rejected_messages();
  raft_rejected += controller.group() ? controller.group()->messages_rejected() : 0;
  for (const auto& t : topics)
    for (const auto& p : t->partitions)
      if (p && p->group()) raft_rejected += p->group()->messages_rejected();
  counter("quorumq_raft_messages_rejected_total",
          "Raft messages dropped as impossible (misaddressed, not from the authenticated peer, malformed, a log "
          "reset not from the current leader)",
          raft_rejected);
  out += "# HELP quorumq_partition_leader 1 if this broker leads the partition\n# TYPE quorumq_partition_leader gauge\n";
  for (const auto& t : topics)
    for (const auto& p : t->partitions)
      if (p && p->group())
        out += "quorumq_partition_leader{topic=\"" + label(t->name) + "\",partition=\"" + std::to_string(p->id()) + "\"} " +
               (p->group()->is_leader() ? "1\n" : "0\n");
  out += "# HELP quorumq_partition_follower_lag_entries Leader's view of how many entries each follower lacks\n"
         "# TYPE quorumq_partition_follower_lag_entries gauge\n";
  std::size_t under = 0;
  std::string isr_lines;
  for (const auto& t : topics)
    for (const auto& p : t->partitions) {
      if (!p || !p->group() || !p->group()->is_leader()) continue;
      const auto last = p->log()->state().last_index.value;
      for (const auto& [n, match] : p->group()->follower_match()) {
        if (n.value == config.node_id) continue;
        const auto lag = last > match ? last - match : 0;
        out += "quorumq_partition_follower_lag_entries{topic=\"" + label(t->name) + "\",partition=\"" + std::to_string(p->id()) +
               "\",follower=\"" + std::to_string(n.value) + "\"} " + std::to_string(lag) + "\n";
      }
      const auto isr = p->group()->isr().size();
      under += isr < p->replicas().size();
      isr_lines += "quorumq_partition_isr_size{topic=\"" + label(t->name) + "\",partition=\"" + std::to_string(p->id()) +
                   "\"} " + std::to_string(isr) + "\n";
    }
  out += "# HELP quorumq_partition_isr_size In-sync replicas of each led partition (leader included)\n"
         "# TYPE quorumq_partition_isr_size gauge\n" + isr_lines;
  counter("quorumq_under_replicated_partitions",
          "Led partitions with a replica out of the in-sync replicas (not caught up within --replica-lag-max-ms)",
          under, "gauge");
  out += "# HELP quorumq_partition_high_watermark Committed end offset per partition\n"
         "# TYPE quorumq_partition_high_watermark gauge\n";
  for (const auto& t : topics)
    for (const auto& p : t->partitions)
      if (p) out += "quorumq_partition_high_watermark{topic=\"" + label(t->name) + "\",partition=\"" + std::to_string(p->id()) +
             "\"} " + std::to_string(p->high_watermark()) + "\n";
  out += "# HELP quorumq_partition_log_start_offset First offset still stored per partition\n"
         "# TYPE quorumq_partition_log_start_offset gauge\n";
  for (const auto& t : topics)
    for (const auto& p : t->partitions)
      if (p) out += "quorumq_partition_log_start_offset{topic=\"" + label(t->name) + "\",partition=\"" + std::to_string(p->id()) +
             "\"} " + std::to_string(p->log_start_offset()) + "\n";
  if (const auto* cg = controller.group()) {
    const auto cs = cg->log()->state();
    counter("quorumq_controller_log_entries",
            "Entries in this broker's copy of the controller log (compacted by checkpoints: follows the "
            "cluster's state, not its history)",
            cs.empty() ? 0 : cs.last_index.value - cs.first_index.value + 1, "gauge");
  }
  counter("quorumq_controller_checkpoints_total", "Controller checkpoints applied (each lets the log before it go)",
          controller.checkpoints_applied());
  std::size_t behind = 0;
  {
    std::lock_guard lk(sync_mu);
    behind = sync_checked ? out_of_sync.size() : 1;
  }
  // Consumer lag per group on the partitions this broker leads (their offsets' coordinator).
  out += "# HELP quorumq_group_lag Messages a consumer group has not committed yet (high watermark - committed offset)\n"
         "# TYPE quorumq_group_lag gauge\n";
  for (const auto& t : topics)
    for (const auto& p : t->partitions) {
      if (!p || !p->serving()) continue;
      const auto hw = p->high_watermark();
      for (const auto& [g, c] : p->committed_offsets())
        out += "quorumq_group_lag{group=\"" + label(g) + "\",topic=\"" + label(t->name) + "\",partition=\"" +
               std::to_string(p->id()) + "\"} " + std::to_string(std::max<std::int64_t>(0, hw - c.offset)) + "\n";
    }
  out += "# HELP quorumq_build_info The running build (always 1)\n# TYPE quorumq_build_info gauge\n"
         "quorumq_build_info{version=\"" QUORUMQ_VERSION "\"} 1\n";
  render_process_metrics(out);
  counter("quorumq_replicas_out_of_sync",
          "Hosted replicas their leader does not count as in sync (catching up, or cut off)", behind, "gauge");
  counter("quorumq_ready", "1 when the broker is ready (/readyz 200): controller known, every hosted replica in sync",
          ctx.ready.load() && behind == 0 ? 1 : 0, "gauge");
  return out;
}

awaitable<void> Server::Impl::admin_session(Socket sock) {
  std::string req;
  Timer deadline(sock.get_executor());
  deadline.expires_after(std::chrono::seconds(5));
  deadline.async_wait([&sock](std::error_code ec) {
    if (!ec) {
      std::error_code ignored;
      sock.close(ignored);
    }
  });
  // Bytes that cannot start an HTTP request (a quorumq or Kafka client dialed the admin port by
  // mistake) are answered at once, so that client can say where it went instead of waiting.
  auto http_so_far = [](const std::string& r) {
    for (std::size_t i = 0; i < r.size() && i < 8; ++i) {
      if (r[i] == ' ') return i > 0;
      if (r[i] < 'A' || r[i] > 'Z') return false;
    }
    return r.size() < 8;
  };
  char chunk[4096];
  bool bad = false;
  for (;;) {
    auto [ec, n] = co_await sock.async_read_some(asio::buffer(chunk), kTuple);
    if (ec) {
      deadline.cancel();
      co_return;
    }
    req.append(chunk, n);
    if (!http_so_far(req) || req.size() > 16 * 1024) {
      bad = true;
      break;
    }
    if (req.find("\r\n\r\n") != std::string::npos) break;
  }
  deadline.cancel();
  if (bad) {
    const std::string body = "this is the quorumq admin HTTP port (/healthz, /readyz, /metrics); quorumq and Kafka "
                             "clients connect to the broker's client listener\n";
    std::string resp = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    co_await asio::async_write(sock, asio::buffer(resp), kTuple);
    std::error_code ignored;
    sock.shutdown(tcp::socket::shutdown_both, ignored);
    co_return;
  }
  std::string path, method, query;
  {
    const auto sp1 = req.find(' ');
    const auto sp2 = req.find(' ', sp1 + 1);
    if (sp1 != std::string::npos && sp2 != std::string::npos) path = req.substr(sp1 + 1, sp2 - sp1 - 1);
    if (sp1 != std::string::npos) method = req.substr(0, sp1);
    if (const auto q = path.find('?'); q != std::string::npos) query = path.substr(q + 1), path.resize(q);
  }
  int status = 200;
  std::string body, type = "text/plain; charset=utf-8";
  if (path == "/healthz") {
    body = "ok\n";
  } else if (path == "/readyz") {
    // Ready: the controller is known (topics applied) and every hosted replica is in its
    // leader's in-sync replicas.
    std::string behind;
    {
      std::lock_guard lk(sync_mu);
      for (std::size_t i = 0; i < out_of_sync.size() && i < 10; ++i) behind += " " + out_of_sync[i];
      if (out_of_sync.size() > 10) behind += " ... (" + std::to_string(out_of_sync.size()) + " in all)";
      if (!sync_checked) behind = " (not checked yet)";
    }
    if (ctx.ready.load() && behind.empty()) body = "ready\n";
    else if (ctx.ready.load()) status = 503, body = "catching up: not yet in the in-sync replicas of" + behind + "\n";
    else status = 503, body = stopping ? "shutting down\n" : "starting (no controller leader known yet)\n";
  } else if (path == "/metrics") {
    body = render_metrics();
    type = "text/plain; version=0.0.4; charset=utf-8";
  } else if (path == "/v1/backup") {
    type = "application/json";
    if (method != "POST") status = 405, body = "{\"ok\":false,\"error\":\"use POST /v1/backup?to=DIR (below --backup-dir)\"}\n";
    else std::tie(status, body) = co_await backup(query);
  } else {
    status = 404;
    body = "not found: try /healthz, /readyz, /metrics or POST /v1/backup?to=DIR (below --backup-dir)\n";
  }
  const char* reason = status == 200 ? "OK" : status == 503 ? "Service Unavailable" : status == 400 ? "Bad Request"
                       : status == 405 ? "Method Not Allowed" : status == 409 ? "Conflict"
                       : status == 403 ? "Forbidden" : status == 507 ? "Insufficient Storage"
                       : status == 500 ? "Internal Server Error" : "Not Found";
  std::string resp = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: " + type +
                     "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  co_await asio::async_write(sock, asio::buffer(resp), kTuple);
  std::error_code ignored;
  sock.shutdown(tcp::socket::shutdown_both, ignored);
}

namespace {
std::string json_escape(const std::string& in) {
  std::string out;
  for (const char c : in) {
    if (c == '"' || c == '\\') out += '\\', out += c;
    else if (static_cast<unsigned char>(c) < 0x20) out += ' ';
    else out += c;
  }
  return out;
}
// The value of `key` in a query string, %XX- and '+'-decoded; nullopt if absent or malformed.
std::optional<std::string> query_param(const std::string& query, const std::string& key) {
  std::size_t at = 0;
  while (at <= query.size()) {
    const auto amp = std::min(query.find('&', at), query.size());
    const std::string item = query.substr(at, amp - at);
    if (item.rfind(key + "=", 0) == 0) {
      std::string v;
      for (std::size_t i = key.size() + 1; i < item.size(); ++i) {
        if (item[i] == '+') v += ' ';
        else if (item[i] != '%') v += item[i];
        else {
          if (i + 2 >= item.size() || !std::isxdigit(static_cast<unsigned char>(item[i + 1])) ||
              !std::isxdigit(static_cast<unsigned char>(item[i + 2])))
            return std::nullopt;
          v += static_cast<char>(std::stoi(item.substr(i + 1, 2), nullptr, 16));
          i += 2;
        }
      }
      return v;
    }
    at = amp + 1;
  }
  return std::nullopt;
}
}  // namespace

// POST /v1/backup?to=DIR: LMDB's online compacting copy of this broker's environment into DIR,
// which must lie below --backup-dir (a relative DIR is taken below it; off without it), be empty
// or new, and leave the data directory's filesystem its free-space floor. The broker keeps
// serving; the copy is one consistent read snapshot, written 0700/0600. Answers JSON: 200 done,
// 400 bad path, 403 backups off or outside --backup-dir, 409 busy or not empty, 507 no room.
awaitable<std::pair<int, std::string>> Server::Impl::backup(const std::string& query) {
  namespace fs = std::filesystem;
  auto fail = [](int status, const std::string& msg) {
    return std::pair<int, std::string>{status, "{\"ok\":false,\"error\":\"" + json_escape(msg) + "\"}\n"};
  };
  if (config.backup_dir.empty())
    co_return fail(403, "backups are off on this broker: start it with --backup-dir DIR (where backups may be "
                        "written, outside the data directory)");
  const auto to = query_param(query, "to");
  if (!to || to->empty()) co_return fail(400, "missing ?to=DIR (a new or empty directory below --backup-dir)");
  if (to->find('\0') != std::string::npos) co_return fail(400, "bad backup directory name");
  const fs::path asked(*to);
  for (const auto& part : asked)
    if (part == "..") co_return fail(400, "backup directory must not contain '..': " + *to);
  const fs::path root(config.backup_dir);
  const fs::path dir = asked.is_absolute() ? asked : root / asked;
  std::error_code ec;
  fs::create_directories(root, ec);
  const auto root_c = fs::weakly_canonical(root, ec);
  const auto target = fs::weakly_canonical(dir, ec);
  const auto rel = target.lexically_relative(root_c);
  if (rel.empty() || rel == "." || *rel.begin() == "..")
    co_return fail(403, "backup directory " + *to + " is not below --backup-dir " + config.backup_dir +
                            ": backups go only there");
  // Room: a backup is about as large as the data in use. On the data directory's own
  // filesystem it must leave --backup-min-free-percent free (a backup must never be what fills
  // the disk the broker writes to); elsewhere it must simply fit.
  const std::uint64_t need = storage.used_bytes();
  struct stat data_st {}, root_st {};
  struct statvfs vfs {};
  if (::stat(storage.dir().c_str(), &data_st) == 0 && ::stat(root_c.c_str(), &root_st) == 0 &&
      ::statvfs(root_c.c_str(), &vfs) == 0) {
    const std::uint64_t free_bytes = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    const std::uint64_t total = static_cast<std::uint64_t>(vfs.f_blocks) * vfs.f_frsize;
    const bool same_fs = data_st.st_dev == root_st.st_dev;
    const std::uint64_t floor = same_fs ? total / 100 * config.backup_min_free_percent : (16u << 20);
    if (free_bytes < need + floor)
      co_return fail(507, "not enough room for a backup of ~" + std::to_string(need >> 20) + " MiB below " +
                              config.backup_dir + ": " + std::to_string(free_bytes >> 20) + " MiB free" +
                              (same_fs ? " on the data directory's filesystem, which must keep " +
                                             std::to_string(config.backup_min_free_percent) +
                                             "% free (--backup-min-free-percent)"
                                       : std::string()) +
                              "; back up to another disk or free space");
  }
  if (backup_running.exchange(true)) co_return fail(409, "another backup is running; try again when it is done");
  spdlog::info("hot backup to {} started", dir.string());
  const auto started = Clock::now();
  // A named initiation (not a temporary in the co_await expression): GCC 12 destroys such
  // temporaries twice in coroutines.
  auto start_copy = [this, dir](auto handler) {
        std::lock_guard lk(backup_mu);
        if (backup_thread.joinable()) backup_thread.join();  // the previous one has finished
        backup_thread = std::thread([this, dir, h = std::move(handler)]() mutable {
          auto r = storage.backup(dir);
          auto ex = asio::get_associated_executor(h);
          asio::post(ex, [h = std::move(h), r = std::move(r)]() mutable { std::move(h)(std::move(r)); });
        });
      };
  auto result = co_await asio::async_initiate<decltype(use_awaitable), void(std::expected<void, storage::Error>)>(
      start_copy, use_awaitable);
  backup_running = false;
  const double secs = std::chrono::duration<double>(Clock::now() - started).count();
  if (!result) {
    spdlog::error("hot backup to {} failed: {}", dir.string(), result.error().message);
    co_return fail(result.error().code == storage::errc::invalid_argument ? 409 : 500, result.error().message);
  }
  const auto bytes = std::filesystem::file_size(dir / "data.mdb", ec);
  spdlog::info("hot backup to {} done: {} bytes in {:.3f} s", dir.string(), ec ? 0 : bytes, secs);
  char buf[96];
  std::snprintf(buf, sizeof buf, "\",\"bytes\":%llu,\"seconds\":%.3f}\n", static_cast<unsigned long long>(ec ? 0 : bytes), secs);
  co_return std::pair<int, std::string>{200, "{\"ok\":true,\"node_id\":" + std::to_string(config.node_id) +
                                                 ",\"dir\":\"" + json_escape(dir.string()) + buf};
}

awaitable<void> Server::Impl::admin_loop() {
  for (;;) {
    auto [ec, sock] = co_await admin_acceptor.async_accept(asio::make_strand(io), kTuple);
    if (ec) {
      if (!admin_acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
      continue;
    }
    Socket s(std::move(sock));
    auto ex = s.get_executor();
    asio::co_spawn(ex, admin_session(std::move(s)), asio::detached);
  }
}

// Retention (by bytes and by age, per partition): trims whole batches from the front of each
// log, never past the high watermark, and never the last batch.
awaitable<void> Server::Impl::retention_loop() {
  asio::steady_timer t(io);
  while (!stopping) {
    t.expires_after(std::chrono::milliseconds(config.retention_check_ms));
    co_await t.async_wait(kTuple);
    if (stopping) co_return;
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
    for (const auto& topic : ctx.topics.list()) {
      // The topic's retention.ms / retention.bytes override the broker's (-1: no limit).
      const auto ts = topic_settings(topic->config);
      std::optional<std::int64_t> retention_ms = config.retention_ms;
      std::optional<std::uint64_t> retention_bytes = config.retention_bytes;
      if (ts.retention_ms) retention_ms = *ts.retention_ms > 0 ? std::optional(*ts.retention_ms) : std::nullopt;
      if (ts.retention_bytes)
        retention_bytes = *ts.retention_bytes > 0 ? std::optional(static_cast<std::uint64_t>(*ts.retention_bytes)) : std::nullopt;
      if (!retention_ms && !retention_bytes) continue;
      std::optional<std::int64_t> min_ts;
      if (retention_ms) min_ts = now_ms - *retention_ms;
      for (const auto& p : topic->partitions) {
        if (!p) continue;
        auto* log = p->log();
        const auto st = log->state();
        if (st.empty()) continue;
        const auto hw_index = log->index_of_offset(p->high_watermark() - 1);
        const log_index limit = hw_index ? hw_index->next() : st.first_index;
        const log_index point = log->retention_point(retention_bytes, min_ts, limit);
        if (point <= st.first_index) continue;
        std::vector<storage::WriteOp> ops;
        ops.emplace_back(storage::TrimPrefixOp{log, point});
        ctx.storage.submit(std::move(ops), [name = log->name(), point](auto r) {
          if (!r) spdlog::warn("retention on {}: {}", name, r.error().message);
          else spdlog::debug("retention on {}: trimmed before index {}", name, point.value);
        });
      }
    }
  }
}

// The Raft clock: every group ticks every kTickMs; leaders announce themselves twice a second;
// the broker turns ready once the cluster has a controller leader (topics are then applied),
// and not ready again once it has known none for kNotReadyAfter (it lost the quorum or is
// partitioned away: it can serve nothing durable), so a load balancer stops sending clients.
awaitable<void> Server::Impl::raft_clock() {
  static constexpr auto kNotReadyAfter = std::chrono::seconds(5);
  asio::steady_timer t(io);
  auto next = Clock::now();
  auto leader_seen = Clock::now();
  int n = 0;
  for (;;) {
    next += std::chrono::milliseconds(ReplicaManager::kTickMs);
    t.expires_at(next);
    co_await t.async_wait(kTuple);
    if (io.stopped()) co_return;
    replication.tick_all();
    // Every 500 ms, and at once: the announcement also carries the incarnation header, which a
    // broker on a new data directory waits for before its groups vote (incarnation.h).
    if (n++ % 50 == 0) transport.announce(replication.led_groups([this](LeaderAnnouncement& a) { fill_announcement(a); }));
    if (n % 100 == 0) controller.maybe_checkpoint();  // once a second: compact the controller log
    // After a restart the controller must first apply what was committed while this broker
    // was away (topics created meanwhile), or it would answer "no such topic" (sticky once met).
    if (!controller_caught_up) {
      const auto* cg = controller.group();
      controller_caught_up = cg && (cg->is_leader() || (cg->leader_commit_seen() > 0 &&
                                                        cg->applied_index() >= cg->leader_commit_seen()));
    }
    if (const auto leader = controller.leader(); leader && controller_caught_up) {
      leader_seen = Clock::now();
      if (!stopping && !ctx.ready) {
        ctx.ready = true;
        spdlog::info("ready: controller is broker {}", leader->value);
      }
    } else if (ctx.ready && Clock::now() - leader_seen > kNotReadyAfter) {
      ctx.ready = false;
      spdlog::warn("not ready: no controller leader known for {} s (quorum lost or partitioned away)",
                   std::chrono::duration_cast<std::chrono::seconds>(kNotReadyAfter).count());
    }
    if (n % 50 == 25) update_in_sync();
    if (Clock::now() - next > std::chrono::seconds(1)) next = Clock::now();  // do not burst after a stall
  }
}

// Replicas of hosted partitions that their leader does not count as in sync (from the leaders'
// announcements): /readyz stays 503 until there are none, so a rolling restart moves on to the
// next broker only once this one's replicas are back in the ISR.
void Server::Impl::update_in_sync() {
  std::vector<std::string> behind;
  for (const auto& t : topics.list())
    for (const auto& p : t->partitions) {
      if (!p || !p->group()) continue;
      const std::string g = TopicManager::log_name(t->name, p->id());
      const auto leader = replication.leader_of(g);
      if (leader && *leader == replication.self()) continue;  // we lead it
      // No leader known (yet): after a restart that means we have not heard from it; during an
      // election the partition serves nothing either. Not in sync either way.
      const auto a = replication.announced(g);
      const bool in =
          leader && a && a->leader == leader->value &&
          std::find(a->isr.begin(), a->isr.end(), replication.self().value) != a->isr.end();
      if (!in) behind.push_back(g);
    }
  std::lock_guard lk(sync_mu);
  if (behind.empty() && !out_of_sync.empty())
    spdlog::info("every hosted replica is in its leader's in-sync replicas");
  else if (!behind.empty() && out_of_sync.empty())
    spdlog::info("{} hosted replica(s) not in their leader's in-sync replicas (e.g. {}): not ready until they are",
                 behind.size(), behind.front());
  out_of_sync = std::move(behind);
  sync_checked = true;
}

void Server::Impl::begin_shutdown() {
  if (stopping.exchange(true)) return;
  spdlog::info("shutting down: handing over leadership, then finishing in-flight requests");
  ctx.ready = false;
  asio::co_spawn(io, shutdown(), asio::detached);
}

awaitable<void> Server::Impl::shutdown() {
  asio::steady_timer t(io);
  const auto deadline = Clock::now() + std::chrono::milliseconds(config.shutdown_timeout_ms);
  // 1. Leadership transfer (thesis §3.10): followers take over before we stop, so producers
  //    see a redirect instead of an election timeout.
  if (replication.brokers().size() > 1) {
    const auto transfer_deadline = Clock::now() + std::chrono::milliseconds(std::min<std::uint32_t>(3000, config.shutdown_timeout_ms));
    auto last_try = Clock::time_point{};
    while (replication.leading_count() > 0 && Clock::now() < transfer_deadline) {
      if (Clock::now() - last_try > std::chrono::milliseconds(config.election_timeout_ms)) {
        replication.transfer_all();
        last_try = Clock::now();
      }
      t.expires_after(std::chrono::milliseconds(5));
      co_await t.async_wait(kTuple);
    }
    spdlog::info("shutdown: still leading {} group(s) after the transfer", replication.leading_count());
  }
  // 2. No new work; what was accepted finishes and is answered.
  ctx.shutting_down = true;
  coordinator.stop();  // parked group heartbeats are answered: members go to the next coordinator
  {
    std::error_code ec;
    acceptor.close(ec);
  }
  // Produce requests already accepted finish (their appends are durable) and are answered.
  while (outstanding.load() > 0 && Clock::now() < deadline) {
    t.expires_after(std::chrono::milliseconds(10));
    co_await t.async_wait(kTuple);
  }
  if (outstanding.load() > 0)
    spdlog::warn("shutdown: {} request(s) still unanswered after {} ms", outstanding.load(), config.shutdown_timeout_ms);
  // Give the writers a moment to flush the last answers, then close everything.
  t.expires_after(std::chrono::milliseconds(50));
  co_await t.async_wait(kTuple);
  std::vector<std::shared_ptr<Connection>> all;
  {
    std::lock_guard lk(conns_mu);
    all.assign(conns.begin(), conns.end());
  }
  for (auto& c : all) c->close_from_any_thread();
  controller.stop();
  for (const auto& tp : topics.list())
    for (const auto& p : tp->partitions)
      if (p) p->stop();
  transport.stop();
  std::error_code ec;
  admin_acceptor.close(ec);
  signals.cancel(ec);
  work.reset();
  t.expires_after(std::chrono::milliseconds(20));
  co_await t.async_wait(kTuple);
  io.stop();
}

Server::Server(const BrokerConfig& config, storage::Storage& storage, Metrics& metrics)
    : impl_(std::make_unique<Impl>(config, storage, metrics)) {}

Server::~Server() = default;

namespace {
std::expected<tcp::endpoint, std::string> resolve(asio::io_context& io, const HostPort& hp) {
  std::error_code ec;
  tcp::resolver r(io);
  auto res = r.resolve(hp.host, std::to_string(hp.port), tcp::resolver::passive, ec);
  if (ec || res.empty()) return std::unexpected("cannot resolve " + hp.str() + ": " + ec.message());
  return res.begin()->endpoint();
}

std::expected<void, std::string> bind(tcp::acceptor& a, const tcp::endpoint& ep, const std::string& what) {
  std::error_code ec;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return std::unexpected("cannot listen on " + what + " " + ep.address().to_string() + ":" +
                           std::to_string(ep.port()) + ": " + ec.message() + " (is another process using it?)");
  return {};
}
}  // namespace

std::expected<void, std::string> Server::start() {
  auto& d = *impl_;
  auto ep = resolve(d.io, d.config.listen);
  if (!ep) return std::unexpected("--listen: " + ep.error());
  if (auto b = bind(d.acceptor, *ep, "--listen"); !b) return b;
  auto aep = resolve(d.io, d.config.admin_listen);
  if (!aep) return std::unexpected("--admin-listen: " + aep.error());
  if (auto b = bind(d.admin_acceptor, *aep, "--admin-listen"); !b) return b;
  spdlog::info("node {} listening on {} (admin http on {})", d.config.node_id, d.config.listen.str(),
               d.config.admin_listen.str());
  register_raft_api();
  if (auto p = d.transport.listen(); !p) return std::unexpected(p.error());
  if (d.config.peers.size() > 1) {
    spdlog::info("node {}: peers connect to {}; peer links {}", d.config.node_id, d.config.peer_listen->str(),
                 d.config.cluster_secret.empty() ? "NOT authenticated" : "authenticated with the cluster secret");
    if (d.config.cluster_secret.empty())
      spdlog::warn("--allow-unauthenticated-peers: anyone who can reach {} can pose as a broker of this cluster; "
                   "give every broker the same --cluster-secret-file (e.g. `head -c 32 /dev/urandom | base64 > FILE`)",
                   d.config.peer_listen->str());
    if (d.config.cluster_secret_world_readable)
      spdlog::warn("--cluster-secret-file {} is readable by every user of this machine: chmod 600 it",
                   d.config.cluster_secret_file);
  }
  d.topics.set_hooks(
      [&d](Partition& p, bool) {
        auto opts = d.replication.base_options();
        opts.name = TopicManager::log_name(p.topic(), p.id());
        opts.voters = p.replicas();
        std::sort(opts.voters.begin(), opts.voters.end());
        // The preferred leader asks at once instead of waiting out an election timeout.
        opts.campaign_at_start = p.replicas().front() == d.replication.self();
        p.start(opts, d.transport, d.exec);
        d.replication.add(p.group_ptr());
      },
      [&d](Partition& p) { d.replication.remove(TopicManager::log_name(p.topic(), p.id())); });
  d.transport.start(PeerTransport::Hooks{
      [&d](const DecodedEnvelope& env) { d.replication.deliver(env); },
      [&d](node_id n, HostPort hp) { d.replication.learn_client_address(n, std::move(hp)); },
      [&d](node_id n) { d.replication.peer_connected(n); }});
  d.replication.set_replica_lag_max(std::chrono::milliseconds(d.config.replica_lag_max_ms));
  d.controller.set_extension(&d.groups);  // consumer groups live in the controller log
  if (auto c = d.controller.start(d.replication.base_options(), d.transport, d.exec); !c) return std::unexpected(c.error());
  d.replication.add(d.controller.group_ptr());
  d.coordinator.start();
  asio::co_spawn(d.io, d.accept_loop(), asio::detached);
  asio::co_spawn(d.io, d.admin_loop(), asio::detached);
  asio::co_spawn(d.io, d.retention_loop(), asio::detached);
  asio::co_spawn(d.io, d.raft_clock(), asio::detached);
  d.signals.async_wait([&d](std::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("signal {} received", sig);
    d.begin_shutdown();
  });
  return {};
}

void Server::run() {
  auto& d = *impl_;
  unsigned n = d.config.io_threads ? d.config.io_threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < n; ++i) threads.emplace_back([&d] { d.io.run(); });
  d.io.run();
  for (auto& t : threads) t.join();
}

void Server::stop() {
  asio::post(impl_->io, [d = impl_.get()] { d->begin_shutdown(); });
}

}  // namespace quorumq::broker
