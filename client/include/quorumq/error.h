// Errors as values. Every failure the SDK reports is a quorumq::Error: an std::error_code plus
// the human-readable message (the broker's own message when the broker sent one).
//
// Two categories:
//  - broker_category(): the wire ErrorCode every broker api answers with. BrokerError mirrors
//    the schema's numbers (protocol/schema/quorumq.fbs); they never change.
//  - client_category(): failures that happen in the SDK itself (no broker reachable, timeout,
//    closed client, bad config, buffer full).
#pragma once

#include "quorumq/export.h"

#include <cstdint>
#include <string>
#include <system_error>

namespace quorumq {

// Mirror of quorumq::wire::ErrorCode (checked against the schema at build time).
enum class BrokerError : std::int16_t {
  none = 0,
  unknown = 1,
  corrupt_message = 2,
  unsupported_version = 3,
  unknown_api = 4,
  invalid_request = 5,
  message_too_large = 6,
  frame_too_large = 7,
  unknown_topic_or_partition = 8,
  topic_already_exists = 9,
  invalid_partitions = 10,
  invalid_replication_factor = 11,
  not_leader = 12,
  leader_not_available = 13,
  request_timed_out = 14,
  not_enough_replicas = 15,
  offset_out_of_range = 16,
  out_of_order_sequence = 17,
  duplicate_sequence = 18,
  invalid_producer_epoch = 19,
  unknown_producer_id = 20,
  coordinator_not_available = 21,
  not_coordinator = 22,
  illegal_generation = 23,
  unknown_member_id = 24,
  rebalance_in_progress = 25,
  storage_error = 26,
  disk_full = 27,
  broker_shutting_down = 28,
  throttled = 29,
  invalid_config = 30,
  group_id_not_found = 31,
  group_not_empty = 32,
  sasl_authentication_failed = 33,
  authentication_required = 34,
  unsupported_sasl_mechanism = 35,
  topic_authorization_failed = 36,
  group_authorization_failed = 37,
  cluster_authorization_failed = 38,
};

enum class ClientError : int {
  ok = 0,
  broker_unreachable = 1,   // could not connect (refused, timeout, DNS)
  connection_lost = 2,      // the connection died with the request in flight
  timed_out = 3,            // no answer within request/delivery/api timeout
  closed = 4,               // the client was closed
  invalid_config = 5,
  buffer_exhausted = 6,     // producer buffer_memory full for longer than max_block_ms
  protocol_error = 7,       // the broker sent something we could not decode
  invalid_argument = 8,
  record_too_large = 9,     // a record larger than batch_bytes / max_request_bytes
  not_a_broker = 10,        // the address answers, but not as a quorumq broker (e.g. an HTTP port)
};

QUORUMQ_API const std::error_category& broker_category() noexcept;
QUORUMQ_API const std::error_category& client_category() noexcept;
inline std::error_code make_error_code(BrokerError e) noexcept {
  return {static_cast<int>(e), broker_category()};
}
inline std::error_code make_error_code(ClientError e) noexcept {
  return {static_cast<int>(e), client_category()};
}

// True if retrying the same operation later may succeed (what the SDK itself retries).
QUORUMQ_API bool is_retriable(std::error_code ec) noexcept;

struct QUORUMQ_API Error {
  std::error_code code;
  std::string message;  // says what happened and, where we know, what to do

  // "message (category:name)", e.g. "... (quorumq.client:timed_out)"; the name is the enum
  // value's name, never a bare number.
  std::string to_string() const;
};

}  // namespace quorumq

template <>
struct std::is_error_code_enum<quorumq::BrokerError> : std::true_type {};
template <>
struct std::is_error_code_enum<quorumq::ClientError> : std::true_type {};
