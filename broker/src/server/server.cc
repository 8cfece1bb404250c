// The composition root: Server::start wires storage, replication, the controller, groups and
// the listeners; the Raft clock, retention, in-sync tracking and graceful shutdown run here.
// Connections are in connection.cc, the admin endpoint in admin_http.cc, /metrics in
// metrics_page.cc (all sharing server_impl.h).
#include "server.h"

#include "server_impl.h"

namespace quorumq::broker {

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
        const auto hw_index = log->index_of_offset(offset_t{p->high_watermark() - 1});
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
  kafka_groups.stop();
  {
    std::error_code ec;
    acceptor.close(ec);
    kafka_acceptor.close(ec);
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
  for (auto& c : all) close_connection(c);
  std::vector<std::shared_ptr<KafkaConnection>> kafka_all;
  {
    std::lock_guard lk(conns_mu);
    kafka_all.assign(kafka_conns.begin(), kafka_conns.end());
  }
  for (auto& c : kafka_all) close_kafka_connection(c);
  controller.stop();
  for (const auto& tp : topics.list())
    for (const auto& p : tp->partitions)
      if (p) p->stop();
  transport.stop();
  std::error_code ec;
  admin_acceptor.close(ec);
  signals.cancel(ec);
  hup.cancel(ec);
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
  if (d.config.kafka_listen) {
    auto kep = resolve(d.io, *d.config.kafka_listen);
    if (!kep) return std::unexpected("--kafka-listen: " + kep.error());
    if (auto b = bind(d.kafka_acceptor, *kep, "--kafka-listen"); !b) return b;
    spdlog::info("node {} serves Kafka clients on {}", d.config.node_id, d.config.kafka_listen->str());
  }
  register_raft_api();
  if (auto e = d.load_tls()) return std::unexpected(*e);
  if (auto p = d.transport.listen(); !p) return std::unexpected(p.error());
  if (d.config.peers.size() > 1) {
    const bool secret = !d.config.cluster_secret.empty(), tls = d.config.peer_tls();
    spdlog::info("node {}: peers connect to {}; peer links {}", d.config.node_id, d.config.peer_listen->str(),
                 tls && secret ? "mutual TLS (certificates naming quorumq-node-<id>) and the cluster secret"
                 : tls         ? "mutual TLS (certificates naming quorumq-node-<id>)"
                 : secret      ? "authenticated with the cluster secret (not encrypted: see --peer-tls-cert-file)"
                               : "NOT authenticated");
    if (!secret && !tls)
      spdlog::warn("--allow-unauthenticated-peers: anyone who can reach {} can pose as a broker of this cluster; "
                   "give every broker the same --cluster-secret-file (e.g. `head -c 32 /dev/urandom | base64 > FILE`) "
                   "or peer TLS (--peer-tls-cert-file, --peer-tls-key-file, --peer-tls-ca-file)",
                   d.config.peer_listen->str());
    if (d.config.cluster_secret_world_readable)
      spdlog::warn("--cluster-secret-file {} is readable by every user of this machine: chmod 600 it",
                   d.config.cluster_secret_file);
  }
  if (d.config.admin_token.empty()) {
    const auto& h = d.config.admin_listen.host;
    if (h != "127.0.0.1" && h != "localhost" && h != "::1")
      spdlog::warn("admin endpoint {} has no --admin-token-file: anyone who reaches it can read /metrics{}; give it a "
                   "token file (e.g. `head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE`)",
                   d.config.admin_listen.str(), d.config.backup_dir.empty() ? "" : " and start backups");
  } else if (d.config.admin_token_world_readable) {
    spdlog::warn("--admin-token-file {} is readable by every user of this machine: chmod 600 it",
                 d.config.admin_token_file);
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
      [&d](node_id n) { d.replication.peer_connected(n); },
      [&d](node_id n) { d.replication.peer_unreachable(n); },
      [&d](node_id n, HostPort hp) { d.replication.learn_kafka_address(n, std::move(hp)); }});
  d.replication.set_replica_lag_max(std::chrono::milliseconds(d.config.replica_lag_max_ms));
  d.controller.add_extension(&d.groups);  // consumer groups live in the controller log
  auto security = security_options(d.config);
  if (!security) return std::unexpected(security.error());
  d.security.configure(std::move(*security));
  d.controller.add_extension(&d.security);  // so do users and ACLs
  if (auto c = d.controller.start(d.replication.base_options(), d.transport, d.exec); !c) return std::unexpected(c.error());
  d.replication.add(d.controller.group_ptr());
  d.coordinator.start();
  d.kafka_groups.start();
  asio::co_spawn(d.io, d.accept_loop(), asio::detached);
  if (d.config.kafka_listen) asio::co_spawn(d.io, d.kafka_accept_loop(), asio::detached);
  asio::co_spawn(d.io, d.admin_loop(), asio::detached);
  asio::co_spawn(d.io, d.retention_loop(), asio::detached);
  asio::co_spawn(d.io, d.raft_clock(), asio::detached);
  d.scrub_thread = std::jthread([&d](std::stop_token stop) {
    std::mutex m;
    std::condition_variable_any cv;
    while (!stop.stop_requested()) {
      if (d.replication.scrub_some(4u << 20)) continue;
      std::unique_lock lk(m);
      cv.wait_for(lk, stop, std::chrono::seconds(1), [] { return false; });  // nothing to check: look again later
    }
  });
  asio::co_spawn(d.io, d.reload_tls_on_sighup(), asio::detached);
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
