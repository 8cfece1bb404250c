// Connection: one TCP connection to one broker, with many requests in flight.
//
// Lifecycle: idle -> connecting (TCP connect with connect_timeout, then the ApiVersions
// handshake) -> ready -> (error) -> backoff -> connecting ... -> closed (close(), final).
// Requests made while not ready wait in a queue; a failed connect fails them (so the caller
// can pick another broker) and the next attempt waits the reconnect backoff, which doubles per
// consecutive failure. A lost connection fails every request in flight with connection_lost;
// an expired request closes the connection (its answer could otherwise arrive later and be
// mistaken), exactly as if it had died.
// Thread: the Core's I/O thread only. Reads: one coroutine; writes: gather-writes of all queued
// frames. Responses are matched by correlation id; every payload is verified before the
// callback sees it, and the callback runs while the payload is still in the decoder's buffer
// (no copy): it must not keep the span.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>

#include <asio.hpp>

#include "core.h"
#include "tls_stream.h"
#include "quorumq/protocol/frame.h"
#include "quorumq/protocol/messages.h"

namespace quorumq::client {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `tls`: the client's TLS context (null: plain TCP); it outlives the connection.
  Connection(asio::io_context& io, const ClientConfig& config, std::string host, std::uint16_t port,
             asio::ssl::context* tls = nullptr);

  // `expected`: how long the answer may legitimately take (a fetch's long-poll wait); past
  // that plus stall_timeout_ms the connection counts as stalled (see Core).
  void request(protocol::ApiId api, flatbuffers::DetachedBuffer body, Clock::time_point deadline,
               bool expect_response, ResponseFn fn,
               std::chrono::milliseconds expected = std::chrono::milliseconds(0));
  void close(const Error& reason);
  // Fails everything in flight with `reason` and reconnects on the next request.
  void abandon(const Error& reason) { fail_connection(reason); }
  // A request has been in flight longer than it should (a paused or partitioned broker keeps
  // its TCP connection open, so only time tells), or requests have waited that long behind a
  // connect or handshake that does not finish (its kernel still accepts connections).
  bool stalled(Clock::time_point now) const noexcept;
  // Fails requests whose deadline passed; called by the Core's sweep timer.
  void expire(Clock::time_point now);

  std::size_t in_flight() const noexcept { return in_flight_.size(); }
  bool ready() const noexcept { return state_ == State::ready; }
  bool in_backoff(Clock::time_point now) const noexcept {
    return state_ == State::idle && now < next_attempt_;
  }
  bool closed() const noexcept { return state_ == State::closed; }
  // The last connect attempt failed in a way waiting does not fix: refused (nothing listens
  // there), the name does not resolve, or what answered is not a quorumq broker.
  bool refused() const noexcept { return refused_; }
  const Error& last_error() const noexcept { return last_error_; }
  std::int32_t node_id() const noexcept { return node_id_; }
  const std::string& address() const noexcept { return address_; }

 private:
  enum class State { idle, connecting, ready, closed };
  struct Queued {
    protocol::ApiId api;
    flatbuffers::DetachedBuffer body;
    Clock::time_point deadline;
    bool expect_response;
    ResponseFn fn;
    std::chrono::milliseconds expected{0};
  };
  struct InFlight {
    protocol::ApiId api;
    std::uint16_t version;
    Clock::time_point deadline;
    ResponseFn fn;
    Clock::time_point stall_at = Clock::time_point::max();
  };
  struct Outgoing {
    protocol::OutgoingFrame frame;
    ResponseFn written;  // fire-and-forget requests complete when written
  };

  void start_connect();
  asio::awaitable<void> connect_and_run(std::uint64_t generation);
  void on_connect_failed(const Error& e);
  void on_ready();
  void start_sasl(std::uint64_t generation);
  void dispatch(const protocol::Frame& frame);
  void send_now(Queued q);
  void do_write();
  void fail_connection(const Error& e);
  Error not_a_broker_error() const;
  std::uint16_t version_for(protocol::ApiId api) const;

  asio::io_context& io_;
  const ClientConfig& config_;
  std::string host_;
  std::uint16_t port_;
  std::string address_;
  asio::ssl::context* tls_;
  std::shared_ptr<BrokerStream> stream_;  // this attempt's; operations hold their own reference
  State state_ = State::idle;
  std::uint64_t generation_ = 0;  // bumps per connect attempt: stale coroutines stop
  std::uint32_t failures_ = 0;
  Clock::time_point next_attempt_{};
  Clock::time_point connecting_since_{};  // when the current connect attempt began
  std::int32_t node_id_ = -1;
  std::map<std::uint16_t, std::pair<std::uint16_t, std::uint16_t>> broker_versions_;
  std::uint32_t next_correlation_ = 1;
  std::deque<Queued> queued_;
  std::map<std::uint32_t, InFlight> in_flight_;
  std::deque<Outgoing> write_queue_;
  bool writing_ = false;
  std::unique_ptr<asio::steady_timer> backoff_timer_;
  bool refused_ = false;
  Error last_error_;
  std::string first_bytes_;  // the first bytes the peer sent on this connection (diagnostics)
};

}  // namespace quorumq::client
