// Internal to the server layer: Server::Impl (the composition root's state) and the Asio
// glue the server's files share. Included only by broker/src/server/*.cc.
#pragma once

#include "server.h"

#include <spdlog/spdlog.h>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <charconv>
#include <chrono>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <condition_variable>
#include <stop_token>
#include <thread>

#include "context.h"
#include "handlers.h"
#include "peer_transport.h"
#include "raft_codec.h"
#include "tls_stream.h"
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
using ClientStream = BasicStream<Socket>;

namespace server_detail {

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

inline std::vector<node_id> peer_ids(const BrokerConfig& config) {
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

}  // namespace server_detail
// PeerRequests over Asio (peer_requests.cc): a short-lived connection to the other broker's
// client listener per request.
class AsioPeerRequests final : public PeerRequests {
 public:
  AsioPeerRequests(asio::io_context& io, ReplicaManager& replication, const BrokerConfig& config)
      : io_(io), replication_(replication), config_(config) {}
  void send(node_id to, protocol::ApiId api, std::vector<std::uint8_t> payload, std::chrono::milliseconds timeout,
            std::function<void(Reply)> done) override;

 private:
  // With --tls-cert-file the other brokers' client listeners speak TLS: this broker dials them
  // as a TLS client, presenting its own certificate (for --tls-client-auth=required) and checking
  // theirs against --tls-ca-file when given.
  std::shared_ptr<asio::ssl::context> client_tls();
  asio::io_context& io_;
  ReplicaManager& replication_;
  const BrokerConfig& config_;
  std::mutex tls_mu_;
  std::shared_ptr<asio::ssl::context> tls_;
  std::string tls_error_;
  std::string broker_password_;  // Security::kBrokerUser's, derived once (PBKDF2) under tls_mu_
};

using server_detail::AsioExecutor;
using server_detail::peer_ids;

class Connection;
class KafkaConnection;

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
  KafkaGroupCoordinator kafka_groups{controller, groups, exec,
                                      KafkaGroupCoordinator::Limits{config.max_groups, config.max_group_members}};
  AsioPeerRequests peer_requests{io, replication, config};
  Security security;
  BrokerContext ctx;
  tcp::acceptor acceptor{io};
  tcp::acceptor admin_acceptor{io};
  tcp::acceptor kafka_acceptor{io};  // open only with --kafka-listen
  // TLS for the client and Kafka listeners (--tls-cert-file), built at start and again on
  // SIGHUP (tls.cc); new connections take the current context.
  std::shared_ptr<asio::ssl::context> tls;  // under tls_mu
  std::mutex tls_mu;
  asio::signal_set hup{io, SIGHUP};
  std::optional<std::string> load_tls();  // an error message, or nullopt
  awaitable<void> reload_tls_on_sighup();  // the listeners' and the peer links' certificates
  void reload_listener_tls();
  // A client stream on a socket accepted by a client listener: TLS if configured.
  ClientStream client_stream(Socket sock) {
    std::shared_ptr<asio::ssl::context> ctx;
    {
      std::lock_guard lk(tls_mu);
      ctx = tls;
    }
    return ClientStream(std::move(sock), std::move(ctx));
  }
  // The TLS handshake of an accepted connection, within --partial-frame-timeout-ms; false (the
  // stream closed, the failure counted and logged) if it failed. True at once without TLS.
  awaitable<bool> tls_handshake(ClientStream& s, std::string_view kind);
  // "User:<CN>" of the client's certificate when the listener requires one
  // (--tls-client-auth=required), else "" (tls.cc).
  std::string certificate_principal(ClientStream& s);
  asio::signal_set signals{io, SIGINT, SIGTERM};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{io.get_executor()};
  std::mutex conns_mu;
  std::set<std::shared_ptr<Connection>> conns;
  std::set<std::shared_ptr<KafkaConnection>> kafka_conns;  // under conns_mu
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
  // The background check of stored logs after a restart (ReplicaManager::scrub_some): one
  // thread, one group at a time, 4 MiB a step, so no io thread ever waits on those reads.
  std::jthread scrub_thread;

  Impl(const BrokerConfig& c, storage::Storage& s, Metrics& m)
      : config(c), metrics(m), storage(s), ctx(c, s, topics, m, exec, replication, controller, groups, coordinator, kafka_groups, peer_requests,
            security) {}
  ~Impl() {
    if (scrub_thread.joinable()) {
      scrub_thread.request_stop();
      scrub_thread.join();
    }
    std::lock_guard lk(backup_mu);
    if (backup_thread.joinable()) backup_thread.join();
  }

  awaitable<void> accept_loop();
  // Accepts on `from` until it closes: counts, refuses past --max-connections, backs off on
  // errors, and hands each socket to `adopt` (connection.cc).
  awaitable<void> accept_connections(tcp::acceptor& from, std::string what, std::function<void(Socket)> adopt);
  awaitable<void> kafka_accept_loop();  // kafka_connection.cc
  void on_kafka_closed(const std::shared_ptr<KafkaConnection>& c);
  // The time limits every client connection lives by: true when --write-timeout-ms (a write
  // took no bytes since write_since), --partial-frame-timeout-ms (a frame incomplete since
  // partial_since) or, when `idle`, --idle-timeout-ms since last_read ran out; the first two
  // are logged (and counted) naming `kind` ("connection", "Kafka connection"). The caller closes.
  bool time_limit_reached(std::string_view kind, const std::string& peer, std::size_t held_bytes,
                          std::optional<Clock::time_point> write_since, std::optional<Clock::time_point> partial_since,
                          bool idle, Clock::time_point last_read);
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

// Closes a client connection from any thread (connection.cc).
void close_connection(const std::shared_ptr<Connection>& c);
void close_kafka_connection(const std::shared_ptr<KafkaConnection>& c);

}  // namespace quorumq::broker
