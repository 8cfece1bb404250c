// Core::Impl: the state behind a Core, shared by the files that implement it. Internal to
// core.cc (lifecycle, send, retrying call), connection_pool.cc (connections by address, broker
// choice, stall detection) and metadata_cache.cc (the Metadata request and the cache it fills).
//
// Thread: everything here belongs to the I/O thread, except `stopped` (atomic) and `timers`
// (guarded by timers_mu), which run_after() and stop() touch from any thread.
// Includes Asio: only the Core's own files include this header.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <asio.hpp>

#include "tls_stream.h"
#include "connection.h"
#include "core.h"

namespace quorumq::client {

// "host:port" or "[v6]:port" -> host, port; false if malformed or port 0.
bool parse_host_port(std::string_view s, std::string& host, std::uint16_t& port);

struct Core::Impl {
  explicit Impl(const ClientConfig& c)
      : config(c), tls(client::make_tls_context(c).context), work(asio::make_work_guard(io)), sweep(io) {}

  ClientConfig config;
  std::shared_ptr<asio::ssl::context> tls;  // null without TLS (validate() refused bad TLS files)
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

  // ---- connection pool (connection_pool.cc) ----
  // The connection to `address`, created on first use; nullptr if the address is malformed.
  std::shared_ptr<Connection> connection(const std::string& address);
  // "host:port" of broker `node` from metadata; "" if unknown.
  std::string address_of(std::int32_t node) const;
  // Candidates for "any broker": known brokers, then the bootstrap list.
  std::string pick_any();
  // Never connected, and every bootstrap address failed in a way waiting does not fix (refused,
  // unresolvable, not a quorumq broker): the error to report now, naming each address.
  std::optional<Error> hopeless_bootstrap() const;
  // node id of the broker at `address`, from metadata (-1 unknown).
  std::int32_t node_at(const std::string& address) const;
  std::set<std::pair<std::string, std::int32_t>> led_by(std::int32_t node) const;
  // A stalled connection (see ClientConfig::stall_timeout_ms): ask another broker for fresh
  // metadata; if partitions the stalled broker led have moved, drop its connection so what is
  // in flight there is retried at the new leaders now (idempotent produce keeps that safe).
  void check_stalls(Clock::time_point now);
  // Every 50 ms: expire overdue requests, note connections that came up, check for stalls.
  void arm_sweep();
};

}  // namespace quorumq::client
