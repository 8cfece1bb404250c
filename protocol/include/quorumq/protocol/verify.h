// Structural verification of frame payloads before anyone reads them. A payload that passes
// can be read with flatbuffers::GetRoot<T> without reading outside it; absent fields still have
// to be handled by the reader (every schema field is optional, for compatible evolution).
#pragma once

#include <cstdint>
#include <span>

#include "quorumq/protocol/errors.h"
#include "quorumq/protocol/frame.h"

namespace quorumq::protocol {

// Bounds on the flatbuffers Verifier's work, so a small hostile payload (deep nesting, or many
// offsets to the same table) cannot make verification slow. Our deepest message nests 5 tables.
struct VerifyLimits {
  std::uint32_t max_depth = 16;
  std::uint32_t max_tables = 250000;
};

// none: the payload is the api's request (or response) table at a supported version.
// unknown_api: id not in the version table. unsupported_version: outside [min, max].
// corrupt_message: the flatbuffer does not verify.
wire::ErrorCode verify_request(ApiId api, std::uint16_t version, std::span<const std::uint8_t> payload,
                               const VerifyLimits& limits = {});
wire::ErrorCode verify_response(ApiId api, std::uint16_t version, std::span<const std::uint8_t> payload,
                                const VerifyLimits& limits = {});
// The payload is a wire::ErrorResponse (any api, any version).
wire::ErrorCode verify_error_response(std::span<const std::uint8_t> payload, const VerifyLimits& limits = {});
// Dispatches on the frame's flags: request, response or error response.
wire::ErrorCode verify_frame(const Frame& frame, const VerifyLimits& limits = {});

// The error code to report (and log) when framing fails; the connection is closed after it.
wire::ErrorCode to_error_code(FrameError e) noexcept;

}  // namespace quorumq::protocol
