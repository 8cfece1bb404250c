#include "quorumq/protocol/errors.h"

#include <string>

namespace quorumq::wire {

namespace {
struct Info {
  const char* message;
  bool retriable;
};

// Messages say what the user should do, because that is what a user reading one needs.
Info info(ErrorCode e) noexcept {
  switch (e) {
    case ErrorCode::none: return {"success", false};
    case ErrorCode::unknown:
      return {"internal broker error; check the broker log and report it if it repeats", false};
    case ErrorCode::corrupt_message:
      return {"message failed its checksum or structure check; the sender has a bug or the "
              "network corrupted it",
              false};
    case ErrorCode::unsupported_version:
      return {"the broker does not support this request version; upgrade the client or broker "
              "so their ApiVersions ranges overlap",
              false};
    case ErrorCode::unknown_api:
      return {"the broker does not know this request type; upgrade the broker", false};
    case ErrorCode::invalid_request:
      return {"the request is malformed or inconsistent; fix the calling code", false};
    case ErrorCode::message_too_large:
      return {"a record batch exceeds the broker's size limit; send smaller batches or raise "
              "the topic's max message size",
              false};
    case ErrorCode::frame_too_large:
      return {"the request frame exceeds the broker's maximum frame size; send fewer or smaller "
              "batches per request",
              false};
    case ErrorCode::unknown_topic_or_partition:
      return {"the topic or partition does not exist; create it or check the name", false};
    case ErrorCode::topic_already_exists:
      return {"a topic with this name already exists; choose another name or use it", false};
    case ErrorCode::invalid_partitions:
      return {"the partition count must be at least 1 and within the broker's limit", false};
    case ErrorCode::invalid_replication_factor:
      return {"the replication factor must be at least 1 and at most the number of brokers",
              false};
    case ErrorCode::not_leader:
      return {"this broker is not the partition leader; refresh metadata (or use the leader "
              "hint) and retry",
              true};
    case ErrorCode::leader_not_available:
      return {"the partition has no leader right now (election in progress); retry after a "
              "short backoff",
              true};
    case ErrorCode::request_timed_out:
      return {"the request timed out on the broker; retry (idempotent producers will not "
              "duplicate)",
              true};
    case ErrorCode::not_enough_replicas:
      return {"a quorum of replicas is not reachable; retry later and check broker health", true};
    case ErrorCode::offset_out_of_range:
      return {"the offset is outside the log (deleted by retention or not yet written); reset "
              "to earliest or latest",
              false};
    case ErrorCode::out_of_order_sequence:
      return {"the broker received a producer sequence gap; the producer must reset its "
              "producer id (records may have been lost before this point)",
              false};
    case ErrorCode::duplicate_sequence:
      return {"this batch was already written; treat it as acknowledged", false};
    case ErrorCode::invalid_producer_epoch:
      return {"a newer producer instance with the same id fenced this one; stop this producer",
              false};
    case ErrorCode::unknown_producer_id:
      return {"the broker no longer knows this producer id; call InitProducerId again", false};
    case ErrorCode::coordinator_not_available:
      return {"the group coordinator is not available yet; retry after a short backoff", true};
    case ErrorCode::not_coordinator:
      return {"this broker is not the group's coordinator; refresh metadata and retry", true};
    case ErrorCode::illegal_generation:
      return {"the consumer group generation is stale; rejoin the group", false};
    case ErrorCode::unknown_member_id:
      return {"the coordinator does not know this member id; rejoin the group", false};
    case ErrorCode::rebalance_in_progress:
      return {"the group is rebalancing; rejoin the group, then commit again", false};
    case ErrorCode::storage_error:
      return {"the broker hit a storage error; check the broker's disk and log", false};
    case ErrorCode::disk_full:
      return {"the broker's disk is full; free space or raise retention, then retry", true};
    case ErrorCode::broker_shutting_down:
      return {"the broker is shutting down; retry against another broker", true};
    case ErrorCode::throttled:
      return {"the request was throttled by a quota; retry after the throttle time", true};
    case ErrorCode::invalid_config:
      return {"a configuration key or value is invalid; fix the topic config", false};
    case ErrorCode::group_id_not_found:
      return {"no such consumer group; check the group id", false};
    case ErrorCode::group_not_empty:
      return {"the consumer group has members; stop them (or wait for their session timeout) first", false};
    case ErrorCode::sasl_authentication_failed:
      return {"authentication failed: wrong user name or password (check --user and the password)", false};
    case ErrorCode::authentication_required:
      return {"this broker requires SASL authentication: give a user and password (--user, --password-file)", false};
    case ErrorCode::unsupported_sasl_mechanism:
      return {"unsupported SASL mechanism; use SCRAM-SHA-256 or SCRAM-SHA-512", false};
    case ErrorCode::topic_authorization_failed:
      return {"not authorized for this topic operation; ask an administrator for an ACL (quorumq acl add)", false};
    case ErrorCode::group_authorization_failed:
      return {"not authorized for this consumer group; ask an administrator for an ACL (quorumq acl add)", false};
    case ErrorCode::cluster_authorization_failed:
      return {"not authorized for this cluster operation; ask an administrator for an ACL (quorumq acl add)", false};
  }
  return {"unknown error code (the peer is newer than this build); upgrade", false};
}

class WireCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "quorumq.wire"; }
  std::string message(int ev) const override {
    return error_message(static_cast<ErrorCode>(ev));
  }
};
}  // namespace

const char* error_message(ErrorCode e) noexcept { return info(e).message; }

const char* error_name(ErrorCode e) noexcept {
  if (!is_known(e)) return "unknown_code";
  return EnumNameErrorCode(e);
}

bool is_retriable(ErrorCode e) noexcept { return info(e).retriable; }

bool is_known(ErrorCode e) noexcept {
  return e >= ErrorCode::MIN && e <= ErrorCode::MAX;
}

const std::error_category& wire_category() noexcept {
  static const WireCategory c;
  return c;
}

}  // namespace quorumq::wire
