#include "core.h"

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include <asio.hpp>

#include "connection.h"
#include "quorumq/protocol/messages.h"

namespace quorumq::client {

std::int32_t MetadataCache::leader(std::string_view t, std::int32_t partition) const {
  const TopicMeta* m = topic(t);
  if (!m || partition < 0 || static_cast<std::size_t>(partition) >= m->partitions.size()) return -1;
  return m->partitions[static_cast<std::size_t>(partition)].leader;
}

namespace {
bool parse_host_port(std::string_view s, std::string& host, std::uint16_t& port) {
  const auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= s.size()) return false;
  unsigned long p = 0;
  for (char c : s.substr(colon + 1)) {
    if (c < '0' || c > '9') return false;
    p = p * 10 + static_cast<unsigned long>(c - '0');
    if (p > 65535) return false;
  }
  if (p == 0) return false;
  host = std::string(s.substr(0, colon));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  port = static_cast<std::uint16_t>(p);
  return true;
}
}  // namespace

std::vector<std::string> split_bootstrap(std::string_view list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    auto comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    auto item = list.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    start = comma + 1;
  }
  return out;
}

bool valid_address(std::string_view s) {
  std::string h;
  std::uint16_t p;
  return parse_host_port(s, h, p);
}

struct Core::Impl {
  explicit Impl(const ClientConfig& c) : config(c), work(asio::make_work_guard(io)), sweep(io) {}

  ClientConfig config;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::thread thread;
  std::thread::id thread_id;
  std::atomic<bool> stopped{false};
  asio::steady_timer sweep;
  // run_after() timers still pending: stop() fires them at once (their functions see the
  // client stopped and finish) instead of the I/O thread waiting them out before it can end.
  std::mutex timers_mu;
  std::vector<std::weak_ptr<asio::steady_timer>> timers;

  std::map<std::string, std::shared_ptr<Connection>> connections;  // by "host:port"
  std::vector<std::string> bootstrap;
  std::size_t rotation = 0;
  bool ever_connected = false;
  Clock::time_point started = Clock::now();

  MetadataCache metadata;
  std::set<std::string> interest;
  bool interest_all = false;
  bool refresh_in_flight = false;
  std::vector<std::function<void(const Error*)>> refresh_waiters;  // attached to the request in flight
  std::vector<std::function<void(const Error*)>> next_waiters;
  Clock::time_point next_deadline{};
  bool stall_check_in_flight = false;
  Clock::time_point next_stall_check{};
  std::weak_ptr<Core> self_weak;

  std::shared_ptr<Connection> connection(const std::string& address) {
    auto it = connections.find(address);
    if (it != connections.end()) return it->second;
    std::string host;
    std::uint16_t port = 0;
    if (!parse_host_port(address, host, port)) return nullptr;
    auto c = std::make_shared<Connection>(io, config, host, port);
    connections.emplace(address, c);
    return c;
  }

  std::string address_of(std::int32_t node) const {
    auto it = metadata.brokers.find(node);
    if (it == metadata.brokers.end()) return {};
    return it->second.host + ":" + std::to_string(it->second.port);
  }

  // Candidates for "any broker": known brokers, then the bootstrap list.
  std::string pick_any() {
    std::vector<std::string> cands;
    for (const auto& [id, b] : metadata.brokers) cands.push_back(b.host + ":" + std::to_string(b.port));
    for (const auto& b : bootstrap)
      if (std::find(cands.begin(), cands.end(), b) == cands.end()) cands.push_back(b);
    if (cands.empty()) return {};
    const auto now = Clock::now();
    for (const auto& a : cands) {
      auto it = connections.find(a);
      if (it != connections.end() && it->second->ready() && !it->second->stalled(now)) return a;
    }
    for (std::size_t i = 0; i < cands.size(); ++i) {
      const auto& a = cands[(rotation + i) % cands.size()];
      auto it = connections.find(a);
      if (it == connections.end() || !it->second->in_backoff(now)) return a;
    }
    return cands[rotation % cands.size()];
  }

  // Never connected, and every bootstrap address failed in a way waiting does not fix (refused,
  // unresolvable, not a quorumq broker): the error to report now, naming each address.
  std::optional<Error> hopeless_bootstrap() const {
    if (ever_connected || !metadata.brokers.empty() || bootstrap.empty()) return std::nullopt;
    std::string why;
    for (const auto& a : bootstrap) {
      auto it = connections.find(a);
      if (it == connections.end() || !it->second->refused()) return std::nullopt;
      why += (why.empty() ? "" : "; ") + it->second->last_error().message;
    }
    if (bootstrap.size() == 1) return connections.find(bootstrap.front())->second->last_error();
    return make_error(ClientError::broker_unreachable, "no address of the bootstrap list is a reachable quorumq broker: " + why);
  }

  // node id of the broker at `address`, from metadata (-1 unknown).
  std::int32_t node_at(const std::string& address) const {
    for (const auto& [id, b] : metadata.brokers)
      if (b.host + ":" + std::to_string(b.port) == address) return id;
    return -1;
  }
  std::set<std::pair<std::string, std::int32_t>> led_by(std::int32_t node) const {
    std::set<std::pair<std::string, std::int32_t>> out;
    for (const auto& [name, tm] : metadata.topics)
      for (const auto& p : tm.partitions)
        if (p.leader == node) out.insert({name, p.partition});
    return out;
  }

  // A stalled connection (see ClientConfig::stall_timeout_ms): ask another broker for fresh
  // metadata; if partitions the stalled broker led have moved, drop its connection so what is
  // in flight there is retried at the new leaders now (idempotent produce keeps that safe).
  void check_stalls(Clock::time_point now) {
    if (stall_check_in_flight || now < next_stall_check) return;
    std::map<std::string, std::set<std::pair<std::string, std::int32_t>>> suspects;
    for (auto& [a, c] : connections)
      if (c->stalled(now)) {
        const std::int32_t node = node_at(a);
        if (node >= 0) suspects[a] = led_by(node);
      }
    if (suspects.empty()) return;
    auto self = self_weak.lock();
    if (!self) return;
    stall_check_in_flight = true;
    next_stall_check = now + std::chrono::milliseconds(config.stall_timeout_ms);
    self->refresh_metadata({}, now + std::chrono::milliseconds(config.request_timeout_ms),
                                      [this, suspects](const Error*) {
      stall_check_in_flight = false;
      const auto t = Clock::now();
      for (const auto& [a, before] : suspects) {
        auto it = connections.find(a);
        if (it == connections.end() || !it->second->stalled(t)) continue;
        const std::int32_t node = node_at(a);
        const auto after = led_by(node);
        bool moved = false;
        for (const auto& tp : before) moved |= !after.contains(tp);
        if (moved)
          it->second->abandon(make_error(ClientError::connection_lost,
                                         "broker " + std::to_string(node) + " at " + a +
                                             " stopped answering and its partitions have new leaders"));
      }
    });
  }

  void arm_sweep() {
    sweep.expires_after(std::chrono::milliseconds(50));
    sweep.async_wait([this](std::error_code ec) {
      if (ec || stopped) return;
      const auto now = Clock::now();
      for (auto& [a, c] : connections) {
        c->expire(now);
        if (c->ready()) ever_connected = true;
      }
      check_stalls(now);
      arm_sweep();
    });
  }
};

Core::Core(const ClientConfig& config) : impl_(std::make_unique<Impl>(config)) {
  impl_->bootstrap = split_bootstrap(config.bootstrap);
}

std::shared_ptr<Core> Core::start(const ClientConfig& config) {
  std::shared_ptr<Core> core(new Core(config));
  Impl* impl = core->impl_.get();
  impl->self_weak = core;
  impl->arm_sweep();
  impl->thread = std::thread([impl] { impl->io.run(); });
  impl->thread_id = impl->thread.get_id();
  return core;
}

Core::~Core() { stop(); }

void Core::stop() {
  if (impl_->stopped.exchange(true)) {
    return;
  }
  auto* impl = impl_.get();
  if (impl->thread.joinable() && std::this_thread::get_id() == impl->thread.get_id()) {
    // Called from a callback: cannot join ourselves. Close from here and let the thread end.
    impl->work.reset();
    impl->thread.detach();
    return;
  }
  asio::post(impl->io, [impl] {
    Error e = make_error(ClientError::closed, "the client was closed");
    impl->sweep.cancel();
    for (auto& [a, c] : impl->connections) c->close(e);
    {
      std::lock_guard lk(impl->timers_mu);
      for (auto& w : impl->timers)
        if (auto t = w.lock()) t->cancel();
      impl->timers.clear();
    }
    auto w = std::move(impl->refresh_waiters);
    auto n = std::move(impl->next_waiters);
    for (auto& f : w) f(&e);
    for (auto& f : n) f(&e);
    impl->work.reset();
  });
  if (impl->thread.joinable()) impl->thread.join();
}

bool Core::stopped() const noexcept { return impl_->stopped; }
const ClientConfig& Core::config() const noexcept { return impl_->config; }

void Core::post(std::function<void()> fn) { asio::post(impl_->io, std::move(fn)); }

void Core::run_after(std::chrono::milliseconds delay, std::function<void()> fn) {
  auto t = std::make_shared<asio::steady_timer>(impl_->io, delay);
  {
    std::lock_guard lk(impl_->timers_mu);
    std::erase_if(impl_->timers, [](const auto& w) { return w.expired(); });
    impl_->timers.push_back(t);
  }
  t->async_wait([t, fn = std::move(fn), impl = impl_.get()](std::error_code ec) {
    if (!ec || impl->stopped) fn();
  });
}

bool Core::on_io_thread() const noexcept { return std::this_thread::get_id() == impl_->thread_id; }

const MetadataCache& Core::metadata() const noexcept { return impl_->metadata; }

void Core::send(std::int32_t node, protocol::ApiId api, flatbuffers::DetachedBuffer body,
                Clock::time_point deadline, bool expect_response, ResponseFn fn, std::chrono::milliseconds expected) {
  auto* impl = impl_.get();
  std::string address;
  if (node >= 0) {
    address = impl->address_of(node);
  } else if (node == kController && impl->metadata.controller_id >= 0) {
    address = impl->address_of(impl->metadata.controller_id);
  }
  if (address.empty() && node < 0) address = impl->pick_any();
  if (impl->stopped) {
    post([fn = std::move(fn)] {
      Error e = make_error(ClientError::closed, "the client is closed");
      fn(&e, {});
    });
    return;
  }
  auto conn = address.empty() ? nullptr : impl->connection(address);
  if (!conn) {
    post([fn = std::move(fn), node] {
      Error e = make_error(ClientError::broker_unreachable,
                           node >= 0 ? "broker node " + std::to_string(node) + " is not in the cluster metadata"
                                     : std::string("no broker address known; set --bootstrap / QUORUMQ_BOOTSTRAP "
                                                   "(host:port[,host:port...])"));
      fn(&e, {});
    });
    return;
  }
  conn->request(api, std::move(body), deadline, expect_response, std::move(fn), expected);
}

namespace {
struct CallState {
  std::int32_t target;
  protocol::ApiId api;
  BuildFn build;
  Clock::time_point deadline;
  CallFn fn;
  std::optional<Error> last;
  int attempts = 0;
};
}  // namespace

void Core::call(std::int32_t target, protocol::ApiId api, BuildFn build, Clock::time_point deadline, CallFn fn) {
  auto st = std::make_shared<CallState>(CallState{target, api, std::move(build), deadline, std::move(fn), {}, 0});
  auto self = shared_from_this();
  auto attempt = std::make_shared<std::function<void()>>();
  // The attempt function refers to itself through a weak pointer held by the retry closures.
  *attempt = [self, st, weak = std::weak_ptr<std::function<void()>>(attempt)] {
    auto* impl = self->impl_.get();
    const auto now = Clock::now();
    if (impl->stopped) {
      Error e = make_error(ClientError::closed, "the client is closed");
      st->fn(&e, {});
      return;
    }
    if (now >= st->deadline) {
      Error e = st->last ? Error{st->last->code, st->last->message}
                         : make_error(ClientError::timed_out, "timed out");
      if (st->last && st->last->code != make_error_code(ClientError::broker_unreachable))
        e = make_error(ClientError::timed_out, "gave up after " + std::to_string(st->attempts) +
                                                   " attempts; last error: " + st->last->message);
      st->fn(&e, {});
      return;
    }
    ++st->attempts;
    const auto request_deadline =
        std::min(st->deadline, now + std::chrono::milliseconds(impl->config.request_timeout_ms));
    auto again = weak.lock();
    self->send(st->target, st->api, st->build(), request_deadline, true,
               [self, st, again](const Error* err, std::span<const std::uint8_t> payload) {
                 auto* impl = self->impl_.get();
                 std::optional<Error> retry;
                 if (err) {
                   // An address of the bootstrap list that is not a quorumq broker is a
                   // configuration mistake worth stopping for, unless the cluster is known.
                   const bool wrong_address = err->code == make_error_code(ClientError::not_a_broker);
                   if (wrong_address && !impl->ever_connected) {
                     if (auto e = impl->hopeless_bootstrap()) {
                       st->fn(&*e, {});
                       return;
                     }
                   } else if (!wrong_address && !is_retriable(err->code) &&
                              err->code != make_error_code(ClientError::protocol_error)) {
                     st->fn(err, {});
                     return;
                   }
                   retry = *err;
                   if (wrong_address) retry->code = make_error_code(ClientError::broker_unreachable);
                 } else {
                   // Payload: the caller decides.
                   auto r = st->fn(nullptr, payload);
                   if (!r) return;
                   retry = std::move(*r);
                 }
                 st->last = retry;
                 if (retry->code == make_error_code(ClientError::broker_unreachable)) {
                   ++impl->rotation;
                   // Refused everywhere: nothing listens there; say so now, not after retries.
                   if (auto e = impl->hopeless_bootstrap()) {
                     st->fn(&*e, {});
                     return;
                   }
                   // Never reached any broker: a missing cluster is reported, not waited for.
                   if (!impl->ever_connected &&
                       Clock::now() - impl->started >= std::chrono::milliseconds(impl->config.connect_timeout_ms)) {
                     st->fn(&*retry, {});
                     return;
                   }
                 } else {
                   impl->ever_connected = true;
                 }
                 if (retry->code == make_error_code(BrokerError::not_coordinator) ||
                     retry->code == make_error_code(ClientError::connection_lost))
                   ++impl->rotation;
                 const auto backoff = std::chrono::milliseconds(impl->config.retry_backoff_ms);
                 // Controller requests that failed (answered "not the controller", or the
                 // controller's broker is gone): learn who the controller is now (Metadata names
                 // it) before trying again, instead of asking the same broker.
                 if (st->target == kController) {
                   self->run_after(backoff, [self, st, again] {
                     self->refresh_metadata({}, st->deadline, [again](const Error*) { (*again)(); });
                   });
                   return;
                 }
                 self->run_after(backoff, [again] { (*again)(); });
               });
  };
  post([attempt] { (*attempt)(); });
}

std::size_t Core::in_flight(std::int32_t node) const {
  const auto a = impl_->address_of(node);
  auto it = impl_->connections.find(a);
  return it == impl_->connections.end() ? 0 : it->second->in_flight();
}

bool Core::reachable(std::int32_t node) const {
  const auto a = impl_->address_of(node);
  if (a.empty()) return false;
  auto it = impl_->connections.find(a);
  return it == impl_->connections.end() || !it->second->in_backoff(Clock::now());
}

void Core::refresh_metadata(const std::vector<std::string>& topics, Clock::time_point deadline,
                            std::function<void(const Error*)> done, bool all_topics) {
  auto* impl = impl_.get();
  for (const auto& t : topics) impl->interest.insert(t);
  if (all_topics) impl->interest_all = true;
  if (done) impl->next_waiters.push_back(std::move(done));
  if (impl->next_deadline < deadline) impl->next_deadline = deadline;
  if (impl->refresh_in_flight) return;
  impl->refresh_in_flight = true;
  impl->refresh_waiters = std::move(impl->next_waiters);
  impl->next_waiters.clear();
  const bool all = impl->interest_all;
  impl->interest_all = false;
  std::vector<std::string> names(impl->interest.begin(), impl->interest.end());
  auto self = shared_from_this();
  call(kAnyBroker, protocol::ApiId::metadata,
       [names, all] {
         flatbuffers::FlatBufferBuilder fbb(256);
         flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>> t;
         if (!all) t = fbb.CreateVectorOfStrings(names);
         fbb.Finish(wire::CreateMetadataRequest(fbb, t, false));
         return fbb.Release();
       },
       impl->next_deadline,
       [self, all](const Error* err, std::span<const std::uint8_t> payload) -> std::optional<Error> {
         auto* impl = self->impl_.get();
         if (!err) {
           const auto* r = protocol::payload_as<wire::MetadataResponse>(payload);
           if (r->error() != wire::ErrorCode::none) {
             Error e = broker_error(static_cast<std::int16_t>(r->error()), "metadata request failed");
             if (is_retriable(e.code)) return e;
             auto w = std::move(impl->refresh_waiters);
             impl->refresh_in_flight = false;
             for (auto& f : w) f(&e);
             return std::nullopt;
           }
           auto& md = impl->metadata;
           if (r->brokers()) {
             md.brokers.clear();
             for (const auto* b : *r->brokers())
               md.brokers[b->node_id()] =
                   BrokerInfo{b->node_id(), b->host() ? b->host()->str() : std::string(), b->port()};
           }
           md.controller_id = r->controller_id();
           if (r->cluster_id()) md.cluster_id = r->cluster_id()->str();
           if (all) {
             std::erase_if(md.topics, [](const auto&) { return true; });
           }
           if (r->topics())
             for (const auto* t : *r->topics()) {
               if (!t->name()) continue;
               TopicMeta tm;
               tm.error = static_cast<BrokerError>(t->error());
               tm.internal = t->internal();
               tm.topic_id = t->topic_id();
               if (t->configs())
                 for (const auto* c : *t->configs())
                   if (c->key()) tm.configs[c->key()->str()] = c->value() ? c->value()->str() : std::string();
               if (t->partitions()) {
                 std::int32_t max_id = -1;
                 for (const auto* p : *t->partitions()) max_id = std::max(max_id, p->partition());
                 tm.partitions.resize(static_cast<std::size_t>(max_id + 1));
                 for (std::size_t i = 0; i < tm.partitions.size(); ++i)
                   tm.partitions[i].partition = static_cast<std::int32_t>(i);
                 for (const auto* p : *t->partitions()) {
                   if (p->partition() < 0) continue;
                   auto& pi = tm.partitions[static_cast<std::size_t>(p->partition())];
                   pi.leader = p->error() == wire::ErrorCode::none ? p->leader_id() : -1;
                   if (p->leader_id() >= 0) pi.leader = p->leader_id();
                   pi.leader_epoch = p->leader_epoch();
                   if (p->replicas()) pi.replicas.assign(p->replicas()->begin(), p->replicas()->end());
                   if (p->isr()) pi.isr.assign(p->isr()->begin(), p->isr()->end());
                   pi.high_watermark = p->high_watermark();
                   pi.log_start_offset = p->log_start_offset();
                 }
               }
               md.topics[t->name()->str()] = std::move(tm);
             }
           md.updated = Clock::now();
         }
         impl->refresh_in_flight = false;
         auto w = std::move(impl->refresh_waiters);
         impl->refresh_waiters.clear();
         for (auto& f : w) f(err);
         if (!impl->next_waiters.empty()) self->refresh_metadata({}, impl->next_deadline, nullptr);
         return std::nullopt;
       });
}

void Core::apply_leader_hint(std::string_view topic, std::int32_t partition, std::int32_t node,
                             std::uint64_t epoch, std::string_view host, std::uint16_t port) {
  auto& md = impl_->metadata;
  if (node < 0) return;
  if (!host.empty() && port != 0 && !md.brokers.contains(node))
    md.brokers[node] = BrokerInfo{node, std::string(host), port};
  auto it = md.topics.find(topic);
  if (it == md.topics.end() || partition < 0 || static_cast<std::size_t>(partition) >= it->second.partitions.size())
    return;
  auto& p = it->second.partitions[static_cast<std::size_t>(partition)];
  if (epoch >= p.leader_epoch) {
    p.leader = node;
    p.leader_epoch = epoch;
  }
}

}  // namespace quorumq::client
