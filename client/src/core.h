// Core: what every client object (Producer, Consumer, Admin) shares internally: the I/O thread,
// the connections to brokers, the metadata cache and a retrying request helper.
//
// Lifecycle: start() launches one I/O thread; stop() (or destruction) closes every connection,
// fails what is pending with ClientError::closed and joins the thread.
// Thread: every member except post(), run_after(), stop() and on_io_thread() must be called on
// the I/O thread (from a posted function or a callback). All callbacks run on the I/O thread.
// This header keeps Asio out: only the Core's own files (core.cc, connection_pool.cc,
// metadata_cache.cc, through core_impl.h) and connection.cc compile it.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <flatbuffers/flatbuffers.h>

#include "quorumq/config.h"
#include "quorumq/error.h"
#include "quorumq/protocol/frame.h"
#include "quorumq/types.h"

namespace quorumq::client {

using Clock = std::chrono::steady_clock;

inline constexpr std::int32_t kAnyBroker = -1;
inline constexpr std::int32_t kController = -2;

// Called once per request: `err` set (transport failure, timeout, or a broker ErrorResponse)
// or `payload` is the api's response, already verified.
using ResponseFn = std::function<void(const Error* err, std::span<const std::uint8_t> payload)>;
// For call(): return std::nullopt when done, or the (retriable) reason to try again after the
// backoff. When call() gives up it calls once more with the error; that return is ignored.
using CallFn = std::function<std::optional<Error>(const Error* err, std::span<const std::uint8_t> payload)>;
using BuildFn = std::function<flatbuffers::DetachedBuffer()>;

struct TopicMeta {
  BrokerError error = BrokerError::none;
  std::string error_message;
  bool internal = false;
  std::vector<PartitionInfo> partitions;
  std::map<std::string, std::string> configs;
  std::uint64_t topic_id = 0;
};

struct MetadataCache {
  std::map<std::int32_t, BrokerInfo> brokers;
  std::map<std::string, TopicMeta, std::less<>> topics;
  std::int32_t controller_id = -1;
  std::string cluster_id;
  Clock::time_point updated{};

  const TopicMeta* topic(std::string_view name) const {
    auto it = topics.find(name);
    return it == topics.end() ? nullptr : &it->second;
  }
  // -1 if unknown.
  std::int32_t leader(std::string_view topic, std::int32_t partition) const;
};

class Core : public std::enable_shared_from_this<Core> {
 public:
  static std::shared_ptr<Core> start(const ClientConfig& config);
  ~Core();
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  // Thread-safe.
  void post(std::function<void()> fn);
  void run_after(std::chrono::milliseconds delay, std::function<void()> fn);
  bool on_io_thread() const noexcept;
  void stop();
  bool stopped() const noexcept;
  const ClientConfig& config() const noexcept;

  // One attempt: sends to `node` (a node id, kAnyBroker or kController). With
  // expect_response=false (acks=none) `fn` runs once the frame is written, with an empty payload.
  // `expected`: how long the answer may legitimately take (a long-poll fetch's max wait).
  void send(std::int32_t node, protocol::ApiId api, flatbuffers::DetachedBuffer body,
            Clock::time_point deadline, bool expect_response, ResponseFn fn,
            std::chrono::milliseconds expected = std::chrono::milliseconds(0));
  // Retrying request: rebuilds with `build` for each attempt; retries transport failures and
  // retriable ErrorResponses by itself (trying another broker for kAnyBroker, refreshing
  // metadata for node targets), and whatever `fn` returns false for, until `deadline`; then
  // calls `fn` one last time with the error (its return value ignored).
  void call(std::int32_t target, protocol::ApiId api, BuildFn build, Clock::time_point deadline, CallFn fn);

  // Requests in flight (sent, no answer yet) on the connection to `node`.
  std::size_t in_flight(std::int32_t node) const;
  // Whether a request to node would be sent now (connected, or connecting without backoff).
  bool reachable(std::int32_t node) const;

  const MetadataCache& metadata() const noexcept;
  // Refreshes the given topics (plus every topic asked for before); empty + all_topics: all.
  // Concurrent calls share requests. `done` gets nullptr on success.
  void refresh_metadata(const std::vector<std::string>& topics, Clock::time_point deadline,
                        std::function<void(const Error*)> done, bool all_topics = false);
  // A not_leader answer named the new leader: route there until the next refresh.
  void apply_leader_hint(std::string_view topic, std::int32_t partition, std::int32_t node,
                         std::uint64_t epoch, std::string_view host, std::uint16_t port);

  struct Impl;

 private:
  explicit Core(const ClientConfig& config);
  std::unique_ptr<Impl> impl_;
};

// Runs `fn` on the I/O thread and waits for the value it passes to its completion argument.
template <typename T>
T run_sync(Core& core, std::function<void(std::function<void(T)>)> fn);

Error make_error(std::error_code ec, std::string message);
// Internal code reports a failure as optional<Error> (nullopt: success); the public API as
// std::expected<void, Error>. This converts at that boundary.
inline std::expected<void, Error> as_expected(std::optional<Error> e) {
  if (e) return std::unexpected(std::move(*e));
  return {};
}
// "a:1,b:2" -> {"a:1","b:2"}; blanks trimmed.
std::vector<std::string> split_bootstrap(std::string_view list);
bool valid_address(std::string_view host_port);
Error broker_error(std::int16_t code, std::string_view message);

}  // namespace quorumq::client

#include <future>
template <typename T>
T quorumq::client::run_sync(Core& core, std::function<void(std::function<void(T)>)> fn) {
  auto p = std::make_shared<std::promise<T>>();
  auto f = p->get_future();
  core.post([p, fn = std::move(fn)] {
    auto once = std::make_shared<bool>(false);
    fn([p, once](T v) {
      if (*once) return;
      *once = true;
      p->set_value(std::move(v));
    });
  });
  return f.get();
}
