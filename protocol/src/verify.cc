#include "quorumq/protocol/verify.h"

#include <flatbuffers/flatbuffers.h>

namespace quorumq::protocol {

PayloadVerifier internal_api_verifier(ApiId a) noexcept;  // frame.cc

namespace {
using wire::ErrorCode;

template <typename T>
bool verify_as(std::span<const std::uint8_t> payload, const VerifyLimits& limits) {
  // The Verifier asserts on buffers past flatbuffers' 2 GiB limit; refuse them first.
  if (payload.size() >= FLATBUFFERS_MAX_BUFFER_SIZE) return false;
  flatbuffers::Verifier v(payload.data(), payload.size(), limits.max_depth, limits.max_tables);
  return v.VerifyBuffer<T>(nullptr);
}

using Fn = bool (*)(std::span<const std::uint8_t>, const VerifyLimits&);
struct Pair {
  Fn request;
  Fn response;
};

// Indexed by ApiId; must follow the order of the ApiId enum (checked by a unit test over
// supported_apis()).
constexpr Pair kVerifiers[] = {
    {&verify_as<wire::ApiVersionsRequest>, &verify_as<wire::ApiVersionsResponse>},
    {&verify_as<wire::MetadataRequest>, &verify_as<wire::MetadataResponse>},
    {&verify_as<wire::CreateTopicRequest>, &verify_as<wire::CreateTopicResponse>},
    {&verify_as<wire::DeleteTopicRequest>, &verify_as<wire::DeleteTopicResponse>},
    {&verify_as<wire::ListTopicsRequest>, &verify_as<wire::ListTopicsResponse>},
    {&verify_as<wire::ProduceRequest>, &verify_as<wire::ProduceResponse>},
    {&verify_as<wire::FetchRequest>, &verify_as<wire::FetchResponse>},
    {&verify_as<wire::ListOffsetsRequest>, &verify_as<wire::ListOffsetsResponse>},
    {&verify_as<wire::OffsetCommitRequest>, &verify_as<wire::OffsetCommitResponse>},
    {&verify_as<wire::OffsetFetchRequest>, &verify_as<wire::OffsetFetchResponse>},
    {&verify_as<wire::InitProducerIdRequest>, &verify_as<wire::InitProducerIdResponse>},
    {&verify_as<wire::GroupHeartbeatRequest>, &verify_as<wire::GroupHeartbeatResponse>},
    {&verify_as<wire::DescribeGroupsRequest>, &verify_as<wire::DescribeGroupsResponse>},
    {&verify_as<wire::AlterTopicConfigRequest>, &verify_as<wire::AlterTopicConfigResponse>},
    {&verify_as<wire::OffsetDeleteRequest>, &verify_as<wire::OffsetDeleteResponse>},
    {&verify_as<wire::SaslAuthenticateRequest>, &verify_as<wire::SaslAuthenticateResponse>},
    {&verify_as<wire::AlterUsersRequest>, &verify_as<wire::AlterUsersResponse>},
    {&verify_as<wire::DescribeUsersRequest>, &verify_as<wire::DescribeUsersResponse>},
    {&verify_as<wire::CreateAclsRequest>, &verify_as<wire::CreateAclsResponse>},
    {&verify_as<wire::DeleteAclsRequest>, &verify_as<wire::DeleteAclsResponse>},
    {&verify_as<wire::DescribeAclsRequest>, &verify_as<wire::DescribeAclsResponse>},
};

ErrorCode verify(ApiId api, std::uint16_t version, std::span<const std::uint8_t> payload,
                 const VerifyLimits& limits, bool response) {
  const ApiVersionRange* range = find_api(api);
  if (range == nullptr) return ErrorCode::unknown_api;
  if (version < range->min_version || version > range->max_version) return ErrorCode::unsupported_version;
  const auto i = static_cast<std::size_t>(api);
  bool ok = false;
  if (i < std::size(kVerifiers)) {
    ok = response ? kVerifiers[i].response(payload, limits) : kVerifiers[i].request(payload, limits);
  } else if (PayloadVerifier f = internal_api_verifier(api); f != nullptr) {
    ok = payload.size() < FLATBUFFERS_MAX_BUFFER_SIZE &&
         f(payload, response, limits.max_depth, limits.max_tables);
  }
  return ok ? ErrorCode::none : ErrorCode::corrupt_message;
}
}  // namespace

ErrorCode verify_request(ApiId api, std::uint16_t version, std::span<const std::uint8_t> payload,
                         const VerifyLimits& limits) {
  return verify(api, version, payload, limits, false);
}

ErrorCode verify_response(ApiId api, std::uint16_t version, std::span<const std::uint8_t> payload,
                          const VerifyLimits& limits) {
  return verify(api, version, payload, limits, true);
}

ErrorCode verify_error_response(std::span<const std::uint8_t> payload, const VerifyLimits& limits) {
  return verify_as<wire::ErrorResponse>(payload, limits) ? ErrorCode::none : ErrorCode::corrupt_message;
}

ErrorCode verify_frame(const Frame& frame, const VerifyLimits& limits) {
  const FrameHeader& h = frame.header;
  if (h.is_error_payload()) {
    // An error answer is only ever a response; its api/version echo the failed request, which
    // may well be unknown or unsupported, so they are not checked.
    if (!h.is_response()) return ErrorCode::invalid_request;
    return verify_error_response(frame.payload, limits);
  }
  return h.is_response() ? verify_response(h.api_id, h.api_version, frame.payload, limits)
                         : verify_request(h.api_id, h.api_version, frame.payload, limits);
}

ErrorCode to_error_code(FrameError e) noexcept {
  switch (e) {
    case FrameError::ok:
    case FrameError::need_more: return ErrorCode::none;
    case FrameError::frame_too_large: return ErrorCode::frame_too_large;
    case FrameError::frame_too_short:
    case FrameError::bad_crc:
    case FrameError::truncated: return ErrorCode::corrupt_message;
  }
  return ErrorCode::unknown;
}

}  // namespace quorumq::protocol
