#include "quorumq/protocol/verify.h"

#include <gtest/gtest.h>

#include <random>

#include "samples.h"

namespace quorumq::protocol {
namespace {
using wire::ErrorCode;

TEST(Verify, verifyRequestAndResponse_acceptSampleForEveryApi) {
  for (const ApiVersionRange& a : supported_apis()) {
    const auto req = testing::sample_request(a.api);
    const auto resp = testing::sample_response(a.api);
    ASSERT_FALSE(req.empty()) << api_name(a.api);
    ASSERT_FALSE(resp.empty()) << api_name(a.api);
    EXPECT_EQ(verify_request(a.api, a.max_version, req), ErrorCode::none) << api_name(a.api);
    EXPECT_EQ(verify_response(a.api, a.max_version, resp), ErrorCode::none) << api_name(a.api);
  }
}

TEST(Verify, verifyRequest_rejectsGarbageForEveryApi) {
  std::mt19937 rng(7);
  for (const ApiVersionRange& a : supported_apis()) {
    const auto good = testing::sample_request(a.api);
    // Empty, too short for a root offset, all 0xFF (offsets far out of bounds).
    EXPECT_EQ(verify_request(a.api, 0, {}), ErrorCode::corrupt_message) << api_name(a.api);
    const std::uint8_t three[3] = {1, 2, 3};
    EXPECT_EQ(verify_request(a.api, 0, three), ErrorCode::corrupt_message) << api_name(a.api);
    const std::vector<std::uint8_t> ff(64, 0xFF);
    EXPECT_EQ(verify_request(a.api, 0, ff), ErrorCode::corrupt_message) << api_name(a.api);
    // The valid message cut short: the root table now points past the end.
    for (std::size_t n = 4; n < good.size(); n += 4) {
      const std::span<const std::uint8_t> cut(good.data(), n);
      EXPECT_EQ(verify_request(a.api, 0, cut), ErrorCode::corrupt_message) << api_name(a.api) << " " << n;
    }
    // Random bytes of the message's size.
    std::vector<std::uint8_t> noise(good.size());
    for (int round = 0; round < 50; ++round) {
      for (auto& b : noise) b = static_cast<std::uint8_t>(rng() | 0x80);  // high bit: huge offsets
      EXPECT_EQ(verify_request(a.api, 0, noise), ErrorCode::corrupt_message) << api_name(a.api);
    }
  }
}

TEST(Verify, verifyRequest_rejectsUnknownApi) {
  const auto p = testing::sample_request(ApiId::metadata);
  EXPECT_EQ(verify_request(static_cast<ApiId>(21), 0, p), ErrorCode::unknown_api);
  EXPECT_EQ(verify_request(static_cast<ApiId>(120), 0, p), ErrorCode::unknown_api);
  EXPECT_EQ(verify_response(static_cast<ApiId>(0xFFFF), 0, p), ErrorCode::unknown_api);
}

TEST(Verify, verifyRequest_rejectsUnsupportedVersion) {
  const auto p = testing::sample_request(ApiId::metadata);
  const auto* range = find_api(ApiId::metadata);
  ASSERT_NE(range, nullptr);
  EXPECT_EQ(verify_request(ApiId::metadata, static_cast<std::uint16_t>(range->max_version + 1), p),
            ErrorCode::unsupported_version);
}

TEST(Verify, verifyRequest_depthLimitRejectsDeepMessage) {
  const auto p = testing::sample_request(ApiId::produce);  // request -> topic -> partition
  EXPECT_EQ(verify_request(ApiId::produce, 0, p, VerifyLimits{1, 1000}), ErrorCode::corrupt_message);
  EXPECT_EQ(verify_request(ApiId::produce, 0, p, VerifyLimits{16, 2}), ErrorCode::corrupt_message);
  EXPECT_EQ(verify_request(ApiId::produce, 0, p, VerifyLimits{16, 1000}), ErrorCode::none);
}

TEST(Verify, verifyFrame_dispatchesOnFlags) {
  const auto req = testing::sample_request(ApiId::fetch);
  const auto resp = testing::sample_response(ApiId::fetch);
  EXPECT_EQ(verify_frame(Frame{FrameHeader{ApiId::fetch, 0, 1, 0}, req}), ErrorCode::none);
  EXPECT_EQ(verify_frame(Frame{FrameHeader{ApiId::fetch, 0, 1, kFlagResponse}, resp}), ErrorCode::none);
  // An error payload on a request makes no sense.
  EXPECT_EQ(verify_frame(Frame{FrameHeader{ApiId::fetch, 0, 1, kFlagErrorPayload}, req}),
            ErrorCode::invalid_request);
}

}  // namespace
}  // namespace quorumq::protocol
