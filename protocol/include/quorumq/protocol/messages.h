// Small helpers so broker and client build frames the same way, without boilerplate:
// finish a flatbuffer, put a frame header in front, hand both pieces to the socket.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include <flatbuffers/flatbuffers.h>

#include "quorumq/protocol/errors.h"
#include "quorumq/protocol/frame.h"

namespace quorumq::protocol {

// A frame ready to send, in two pieces for scatter/gather I/O (asio::const_buffer pair or
// writev): the header, and the flatbuffer body still in the builder's memory. The body is never
// copied. Move-only (owns the builder's buffer).
struct OutgoingFrame {
  std::array<std::uint8_t, kFrameHeaderSize> header{};
  flatbuffers::DetachedBuffer body;

  std::span<const std::uint8_t> header_bytes() const noexcept { return header; }
  std::span<const std::uint8_t> payload() const noexcept { return {body.data(), body.size()}; }
  std::size_t size_bytes() const noexcept { return header.size() + body.size(); }
  // One contiguous copy, for tests and simple writers.
  std::vector<std::uint8_t> to_bytes() const;
};

// Takes the finished buffer out of `fbb` (fbb.Finish() must have been called) and frames it.
// `fbb` is left empty and reusable.
OutgoingFrame finish_frame(flatbuffers::FlatBufferBuilder& fbb, const FrameHeader& header);

// Finishes `root` as a request of `api` at `version`.
template <typename T>
OutgoingFrame finish_request(flatbuffers::FlatBufferBuilder& fbb, flatbuffers::Offset<T> root,
                             ApiId api, std::uint16_t version, std::uint32_t correlation_id) {
  fbb.Finish(root);
  return finish_frame(fbb, FrameHeader{api, version, correlation_id, 0});
}

// Finishes `root` as the response to the request whose header is `request`: same api, version
// and correlation id, response flag set.
template <typename T>
OutgoingFrame finish_response(flatbuffers::FlatBufferBuilder& fbb, flatbuffers::Offset<T> root,
                              const FrameHeader& request) {
  fbb.Finish(root);
  return finish_frame(fbb, FrameHeader{request.api_id, request.api_version, request.correlation_id,
                                       kFlagResponse});
}

// A wire::ErrorResponse frame (flags: response | error payload), for requests that could not be
// understood (unknown api, unsupported version, corrupt payload). An empty `message` sends
// error_message(code).
OutgoingFrame make_error_response(std::uint32_t correlation_id, ApiId api, wire::ErrorCode code,
                                  std::string_view message = {}, std::uint16_t api_version = 0);
inline OutgoingFrame make_error_response(const FrameHeader& request, wire::ErrorCode code,
                                         std::string_view message = {}) {
  return make_error_response(request.correlation_id, request.api_id, code, message, request.api_version);
}

// The root table of a payload that passed verify_request/verify_response for T's api.
template <typename T>
const T* payload_as(std::span<const std::uint8_t> payload) noexcept {
  return flatbuffers::GetRoot<T>(payload.data());
}

// ApiVersions response listing supported_apis(): the broker's whole handshake answer.
OutgoingFrame make_api_versions_response(const FrameHeader& request, std::int32_t node_id,
                                         std::string_view cluster_id);

}  // namespace quorumq::protocol
