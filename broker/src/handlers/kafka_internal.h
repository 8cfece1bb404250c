// Internal to the Kafka handlers (kafka_api.cc: framing, metadata and data apis;
// kafka_group_api.cc: groups, offsets and admin apis): error mapping, running a native request
// through the native handlers, answer framing.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "handler_util.h"
#include "handlers.h"
#include "kafka_api.h"
#include "kafka_requests.h"
#include "kafka_wire.h"

namespace quorumq::broker::kafka {

// Kafka's codes for SASL and authorization (the handlers answer them directly too).
inline constexpr std::int16_t kTopicAuthorizationFailed = 29;
inline constexpr std::int16_t kGroupAuthorizationFailed = 30;
inline constexpr std::int16_t kClusterAuthorizationFailed = 31;
inline constexpr std::int16_t kUnsupportedSaslMechanism = 33;
inline constexpr std::int16_t kIllegalSaslState = 34;
inline constexpr std::int16_t kSaslAuthenticationFailed = 58;

// quorumq's error codes as Kafka's, chosen so a Kafka client does what it should: retry, refresh
// metadata, or fail the request.
inline std::int16_t kafka_code(wire::ErrorCode c) {
  using E = wire::ErrorCode;
  switch (c) {
    case E::none: return 0;
    case E::duplicate_sequence: return 0;  // already written: Kafka answers success with its offset
    case E::corrupt_message: return 2;
    case E::unsupported_version: return 35;
    case E::invalid_request: return 42;
    case E::message_too_large:
    case E::frame_too_large: return 10;
    case E::unknown_topic_or_partition: return 3;
    case E::topic_already_exists: return 36;
    case E::invalid_partitions: return 37;
    case E::invalid_replication_factor: return 38;
    case E::not_leader:
    case E::broker_shutting_down: return 6;  // NOT_LEADER_OR_FOLLOWER: refresh metadata, retry
    case E::leader_not_available: return 5;
    case E::request_timed_out: return 7;
    case E::not_enough_replicas: return 19;
    case E::offset_out_of_range: return 1;
    case E::out_of_order_sequence: return 45;
    case E::invalid_producer_epoch: return 47;
    case E::unknown_producer_id: return 59;
    case E::coordinator_not_available: return 15;
    case E::not_coordinator: return 16;
    case E::illegal_generation: return 22;
    case E::unknown_member_id: return 25;
    case E::rebalance_in_progress: return 27;
    case E::storage_error:
    case E::disk_full: return 56;  // KAFKA_STORAGE_ERROR: retriable
    case E::invalid_config: return 40;
    case E::group_id_not_found: return 69;
    case E::group_not_empty: return 68;
    case E::sasl_authentication_failed: return kSaslAuthenticationFailed;
    case E::authentication_required: return kIllegalSaslState;
    case E::unsupported_sasl_mechanism: return kUnsupportedSaslMechanism;
    case E::topic_authorization_failed: return kTopicAuthorizationFailed;
    case E::group_authorization_failed: return kGroupAuthorizationFailed;
    case E::cluster_authorization_failed: return kClusterAuthorizationFailed;
    default: return -1;  // UNKNOWN_SERVER_ERROR
  }
}

// Runs a native request (a finished flatbuffer) through the native handlers and hands its
// response payload (nullptr: none, or an ErrorResponse) to `then`.
template <typename Response>
void call_native(BrokerContext& ctx, const Principal& who, protocol::ApiId api, flatbuffers::FlatBufferBuilder& fbb,
                 std::function<void(const Response*, wire::ErrorCode)> then) {
  auto buf = std::make_shared<flatbuffers::DetachedBuffer>(fbb.Release());
  const auto* info = protocol::find_api(api);
  const protocol::FrameHeader h{api, static_cast<std::uint16_t>(info ? info->max_version : 0), 0, 0};
  handle_request(ctx, h, {buf->data(), buf->size()},
                 [buf, then = std::move(then)](std::optional<protocol::OutgoingFrame> f) {
                   if (!f) return then(nullptr, wire::ErrorCode::none);
                   const auto payload = f->payload();
                   if (f->header[16] & protocol::kFlagErrorPayload) {
                     const auto* e = protocol::payload_as<wire::ErrorResponse>(payload);
                     return then(nullptr, e->error());
                   }
                   then(protocol::payload_as<Response>(payload), wire::ErrorCode::none);
                 },
                 who);
}

// A request's topics as the answer walks them: names owned (the request's bytes are gone by
// then), partitions as decoded, in request order.
template <typename Partition>
struct OwnedTopic {
  std::string name;
  std::vector<Partition> partitions;
};
template <typename Topic>
auto owned(const std::vector<Topic>& topics) {
  std::vector<OwnedTopic<typename decltype(Topic::partitions)::value_type>> out;
  out.reserve(topics.size());
  for (const auto& t : topics) out.push_back({std::string(t.name), t.partitions});
  return out;
}

// A native answer's partitions by (topic, partition), each turned into `Result` by `f`.
template <typename Result, typename NativeResponse, typename F>
std::map<std::pair<std::string, std::int32_t>, Result> by_partition(const NativeResponse* resp, F&& f) {
  std::map<std::pair<std::string, std::int32_t>, Result> out;
  if (resp && resp->topics())
    for (const auto* t : *resp->topics())
      if (t->name() && t->partitions())
        for (const auto* p : *t->partitions()) out[{t->name()->str(), p->partition()}] = f(p);
  return out;
}

// The code for a partition the native answer did not mention.
inline std::int16_t missing_code(wire::ErrorCode whole) {
  return kafka_code(whole == wire::ErrorCode::none ? wire::ErrorCode::unknown : whole);
}

// A request's header and who sent it (the connection's SASL principal; authorized by each api).
struct Header : RequestHeader {
  Principal who;
};

// The response: size prefix (patched by finish), correlation id (response header v0).
inline Writer start(const Header& h) {
  Writer w;
  w.i32(0);
  w.i32(h.correlation);
  return w;
}
inline Answer finish(Writer& w) {
  w.patch_i32(0, static_cast<std::int32_t>(w.size() - 4));
  return Answer{std::move(w.bytes()), false, {}};
}
inline Answer close_with(std::string why) { return Answer{{}, true, std::move(why)}; }
// The answer to a data request that does not parse or names more partitions than one request may.
inline Answer malformed_or_too_many(BrokerContext& ctx, std::string_view api) {
  return close_with("malformed " + std::string(api) + " request, or more than " +
                    std::to_string(ctx.config.max_partitions_per_request) + " partitions (--max-partitions-per-request)");
}

// kafka_sasl.cc: SaslHandshake and SaslAuthenticate (and bare tokens after a v0 handshake).
std::span<const ApiRange> sasl_apis();
void sasl_handshake(BrokerContext& ctx, Session& s, const Header& h, Reader& r, std::function<void(Answer)> done);
void sasl_authenticate(BrokerContext& ctx, Session& s, const Header& h, Reader& r, std::function<void(Answer)> done);
void sasl_raw_token(BrokerContext& ctx, Session& s, std::span<const std::uint8_t> token, std::function<void(Answer)> done);
// Whether `h.who` may do `op` on the resource; counts and logs a refusal.
bool allowed(BrokerContext& ctx, const Header& h, AclOperation op, ResourceType type, std::string_view name);

// kafka_group_api.cc: the group, offset and admin apis, and their handler (false: not one of them).
std::span<const ApiRange> group_apis();
bool handle_group_api(BrokerContext& ctx, const Header& h, Reader& r, std::function<void(Answer)>& done);

}  // namespace quorumq::broker::kafka
