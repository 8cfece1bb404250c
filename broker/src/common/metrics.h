// Broker metrics ("probe", as Redpanda calls it): counters the hot path bumps with relaxed
// atomics, rendered to Prometheus text only when /metrics is scraped. Logic never reads them.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

namespace quorumq::broker {

// Cumulative latency histogram with fixed Prometheus buckets (seconds).
class LatencyHistogram {
 public:
  static constexpr std::array<double, 16> kBoundsUs = {50,    100,   200,    300,    500,    750,   1000,   2000,
                                                       3000,  5000,  10000,  25000,  50000,  100000, 500000, 1000000};
  void record_us(std::uint64_t us) noexcept;
  void render(std::string& out, const std::string& name, const std::string& help) const;

 private:
  std::array<std::atomic<std::uint64_t>, kBoundsUs.size() + 1> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_us_{0};
};

struct Metrics {
  std::atomic<std::uint64_t> connections_accepted{0};
  std::atomic<std::int64_t> connections_open{0};
  std::atomic<std::uint64_t> connections_refused{0};
  std::atomic<std::uint64_t> bad_frames{0};
  std::atomic<std::uint64_t> admin_auth_failures{0};
  std::atomic<std::uint64_t> sasl_authentications{0};        // SASL exchanges that succeeded
  std::atomic<std::uint64_t> sasl_authentication_failures{0};
  std::atomic<std::uint64_t> authorization_failures{0};      // requests refused by the ACLs
  std::atomic<std::uint64_t> tls_handshake_failures{0};  // client/Kafka connections whose TLS handshake failed
  std::atomic<std::uint64_t> tls_reloads{0}, tls_reload_failures{0};  // SIGHUP
  std::atomic<std::int64_t> tls_certificate_not_after{0};  // Unix time; 0: no TLS  // admin requests without the right bearer token
  std::atomic<std::uint64_t> connections_backpressured{0};  // times a connection stopped reading (budget)
  std::atomic<std::uint64_t> connections_write_timeouts{0};  // closed: answers not read for --write-timeout-ms
  std::atomic<std::uint64_t> accept_errors{0};     // accept() failed (e.g. out of descriptors)
  std::atomic<std::uint64_t> fetch_wakeups{0};     // long polls woken by a high-watermark move
  std::atomic<std::uint64_t> produce_timeouts{0};  // partitions answered at timeout_ms (timed out / disk full)
  std::atomic<std::uint64_t> produce_requests{0};
  std::atomic<std::uint64_t> produce_records{0};
  std::atomic<std::uint64_t> produce_bytes{0};
  std::atomic<std::uint64_t> produce_errors{0};
  std::atomic<std::uint64_t> produce_duplicates{0};
  std::atomic<std::uint64_t> fetch_requests{0};
  std::atomic<std::uint64_t> fetch_bytes{0};
  std::atomic<std::uint64_t> fetch_errors{0};
  std::atomic<std::uint64_t> other_requests{0};
  std::atomic<std::uint64_t> offset_commits{0};
  std::atomic<std::uint64_t> offset_commits_fenced{0};  // refused: the member does not own the partition
  LatencyHistogram produce_latency;
  LatencyHistogram fetch_latency;
};

}  // namespace quorumq::broker
