// Core's lifecycle (start, stop, the I/O thread), posting and timers, one-shot send() and the
// retrying call(). The connection pool is in connection_pool.cc, the metadata cache in
// metadata_cache.cc; the state they share is Core::Impl (core_impl.h).
#include "core.h"

#include <algorithm>

#include "core_impl.h"
#include "quorumq/protocol/messages.h"

namespace quorumq::client {

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

}  // namespace quorumq::client
