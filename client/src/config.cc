#include "tls_stream.h"
#include "quorumq/config.h"
#include "quorumq/protocol/scram.h"

#include "core.h"

namespace quorumq {
namespace {
std::unexpected<Error> invalid(std::string msg) {
  return std::unexpected(Error{make_error_code(ClientError::invalid_config), std::move(msg)});
}
}  // namespace

std::expected<void, Error> ClientConfig::validate() const {
  const auto list = client::split_bootstrap(bootstrap);
  if (list.empty())
    return invalid("bootstrap is empty: give at least one broker as host:port (e.g. --bootstrap 127.0.0.1:9092 "
                   "or QUORUMQ_BOOTSTRAP)");
  for (const auto& a : list)
    if (!client::valid_address(a))
      return invalid("bootstrap entry '" + a + "' is not host:port with a port in 1..65535");
  if (connect_timeout_ms == 0) return invalid("connect_timeout_ms must be > 0");
  if (request_timeout_ms == 0) return invalid("request_timeout_ms must be > 0");
  if (reconnect_backoff_ms == 0 || reconnect_backoff_max_ms < reconnect_backoff_ms)
    return invalid("reconnect_backoff_ms must be > 0 and <= reconnect_backoff_max_ms");
  if (max_frame_bytes < 1024) return invalid("max_frame_bytes must be >= 1024");
  if (tls_cert_file.empty() != tls_key_file.empty())
    return invalid("tls_cert_file and tls_key_file go together (this client's certificate and its private key)");
  if (auto t = client::make_tls_context(*this); !t.error.empty()) return invalid(t.error);
  if (stall_timeout_ms == 0) return invalid("stall_timeout_ms must be > 0");
  if (!sasl_user.empty() && !protocol::scram::mechanism_from_name(sasl_mechanism))
    return invalid("sasl_mechanism must be SCRAM-SHA-256 or SCRAM-SHA-512 (got '" + sasl_mechanism + "')");
  if (!sasl_user.empty() && sasl_password.empty())
    return invalid("sasl_user is set but sasl_password is empty (CLI: --password-file)");
  if (sasl_user.size() > protocol::scram::kMaxUserBytes) return invalid("sasl_user is longer than 256 bytes");
  return {};
}

std::expected<void, Error> ProducerConfig::validate() const {
  if (auto r = ClientConfig::validate(); !r) return r;
  if (batch_bytes < 1024) return invalid("batch_bytes must be >= 1024");
  if (max_request_bytes < batch_bytes) return invalid("max_request_bytes must be >= batch_bytes");
  if (max_request_bytes + 4096 > max_frame_bytes)
    return invalid("max_request_bytes must leave room in max_frame_bytes (" + std::to_string(max_frame_bytes) + ")");
  if (max_in_flight == 0) return invalid("max_in_flight must be >= 1");
  if (buffer_memory < max_request_bytes) return invalid("buffer_memory must be >= max_request_bytes");
  if (delivery_timeout_ms < linger_ms) return invalid("delivery_timeout_ms must be >= linger_ms");
  if (acks != Acks::none && acks != Acks::leader && acks != Acks::quorum)
    return invalid("acks must be none, leader or quorum");
  return {};
}

std::expected<void, Error> ConsumerConfig::validate() const {
  if (auto r = ClientConfig::validate(); !r) return r;
  if (max_poll_records == 0) return invalid("max_poll_records must be >= 1");
  if (fetch_max_bytes == 0 || partition_fetch_max_bytes == 0)
    return invalid("fetch_max_bytes and partition_fetch_max_bytes must be > 0");
  if (fetch_max_wait_ms + 1000 > request_timeout_ms + fetch_max_wait_ms && request_timeout_ms < 1000)
    return invalid("request_timeout_ms must be >= 1000");
  if (enable_auto_commit && auto_commit_interval_ms == 0)
    return invalid("auto_commit_interval_ms must be > 0 with enable_auto_commit");
  if (api_timeout_ms == 0) return invalid("api_timeout_ms must be > 0");
  if (assignor != "sticky" && assignor != "range" && assignor != "roundrobin")
    return invalid("assignor '" + assignor + "' is unknown: use sticky, range or roundrobin");
  if (session_timeout_ms < 500 || session_timeout_ms > 300000) return invalid("session_timeout_ms must be 500..300000");
  if (rebalance_timeout_ms < 500) return invalid("rebalance_timeout_ms must be >= 500");
  if (heartbeat_interval_ms == 0 || heartbeat_interval_ms * 3 > session_timeout_ms)
    return invalid("heartbeat_interval_ms must be > 0 and at most a third of session_timeout_ms");
  return {};
}

std::expected<void, Error> AdminConfig::validate() const {
  if (auto r = ClientConfig::validate(); !r) return r;
  if (api_timeout_ms == 0) return invalid("api_timeout_ms must be > 0");
  return {};
}

}  // namespace quorumq
