#include "quorumq/protocol/frame.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "quorumq/protocol/crc32c.h"
#include "quorumq/protocol/messages.h"
#include "quorumq/protocol/verify.h"
#include "samples.h"

// Counts heap allocations, to prove a hostile length prefix allocates nothing.
// GCC 12 at -O2 pairs the inlined std::allocator delete with malloc below and warns about a
// mismatch that is not one (both sides are ours: new -> malloc, delete -> free).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
namespace {
std::atomic<std::size_t> g_allocations{0};
}
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace quorumq::protocol {
namespace {

std::vector<std::uint8_t> payload_of(std::size_t n, std::uint8_t seed) {
  std::vector<std::uint8_t> p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::uint8_t>(seed + i * 31);
  return p;
}

// Three frames back to back, of awkward sizes, so frame boundaries fall at every alignment.
std::vector<std::uint8_t> three_frames(std::vector<std::vector<std::uint8_t>>& payloads) {
  payloads = {payload_of(0, 1), payload_of(33, 2), payload_of(5, 3)};
  std::vector<std::uint8_t> stream;
  for (std::uint32_t i = 0; i < payloads.size(); ++i)
    encode_frame(FrameHeader{ApiId::produce, 0, 100 + i, static_cast<std::uint8_t>(i == 1 ? kFlagResponse : 0)},
                 payloads[i], stream);
  return stream;
}

TEST(EncodeFrame, encodeFrameHeader_layoutIsLittleEndianAsDocumented) {
  const auto p = payload_of(3, 9);
  const auto h = encode_frame_header(FrameHeader{ApiId::fetch, 0x0102, 0xAABBCCDD, kFlagResponse}, p);
  std::uint32_t len, crc;
  std::memcpy(&len, h.data(), 4);
  std::memcpy(&crc, h.data() + 4, 4);
  EXPECT_EQ(len, 13u + 3u);
  EXPECT_EQ(h[8], 6);  // api id low byte
  EXPECT_EQ(h[9], 0);
  EXPECT_EQ(h[10], 0x02);
  EXPECT_EQ(h[11], 0x01);
  EXPECT_EQ(h[12], 0xDD);
  EXPECT_EQ(h[15], 0xAA);
  EXPECT_EQ(h[16], kFlagResponse);
  std::vector<std::uint8_t> covered(h.begin() + 8, h.end());
  covered.insert(covered.end(), p.begin(), p.end());
  EXPECT_EQ(crc, crc32c(covered.data(), covered.size()));
}

TEST(FrameDecoder, next_decodesStreamSplitAtEveryByteBoundary) {
  std::vector<std::vector<std::uint8_t>> payloads;
  const auto stream = three_frames(payloads);
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    FrameDecoder d;
    std::vector<std::vector<std::uint8_t>> got;
    std::vector<std::uint32_t> corr;
    auto drain = [&] {
      for (;;) {
        const DecodeResult r = d.next();
        if (r.status == FrameError::need_more) return;
        ASSERT_EQ(r.status, FrameError::ok) << to_string(r.status);
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(r.frame.payload.data()) % 8, 0u);
        got.emplace_back(r.frame.payload.begin(), r.frame.payload.end());
        corr.push_back(r.frame.header.correlation_id);
        EXPECT_EQ(r.frame.header.api_id, ApiId::produce);
        EXPECT_EQ(r.frame.header.is_response(), r.frame.header.correlation_id == 101);
      }
    };
    d.feed(std::span(stream).first(cut));
    drain();
    d.feed(std::span(stream).subspan(cut));
    drain();
    ASSERT_EQ(got, payloads) << "cut at " << cut;
    EXPECT_EQ(corr, (std::vector<std::uint32_t>{100, 101, 102}));
    EXPECT_EQ(d.finish(), FrameError::ok);
  }
}

TEST(FrameDecoder, next_decodesOneByteAtATimeViaPrepareCommit) {
  std::vector<std::vector<std::uint8_t>> payloads;
  const auto stream = three_frames(payloads);
  FrameDecoder d;
  std::vector<std::vector<std::uint8_t>> got;
  for (std::uint8_t byte : stream) {
    auto buf = d.prepare(1);
    buf[0] = byte;
    d.commit(1);
    for (DecodeResult r = d.next(); r.status == FrameError::ok; r = d.next())
      got.emplace_back(r.frame.payload.begin(), r.frame.payload.end());
  }
  EXPECT_EQ(got, payloads);
}

TEST(FrameDecoder, next_refusesHugeLengthWithoutAllocating) {
  FrameDecoder d(1 << 20);
  const std::uint8_t prefix[4] = {0x00, 0x00, 0x00, 0x80};  // 2 GiB
  d.feed(prefix);
  const std::size_t before = g_allocations.load();
  const DecodeResult r = d.next();
  EXPECT_EQ(g_allocations.load(), before);
  EXPECT_EQ(r.status, FrameError::frame_too_large);
  EXPECT_EQ(d.buffered_bytes(), 4u);
  // Sticky: framing is lost, every later call says so.
  EXPECT_EQ(d.next().status, FrameError::frame_too_large);
  EXPECT_EQ(to_error_code(r.status), wire::ErrorCode::frame_too_large);
}

TEST(FrameDecoder, next_acceptsFrameExactlyAtMaximum) {
  const auto p = payload_of(100, 4);
  FrameDecoder d(kFrameHeaderAfterLength + 100);
  d.feed(encode_frame(FrameHeader{ApiId::fetch, 0, 1, 0}, p));
  EXPECT_EQ(d.next().status, FrameError::ok);
  FrameDecoder small(kFrameHeaderAfterLength + 99);
  small.feed(encode_frame(FrameHeader{ApiId::fetch, 0, 1, 0}, p));
  EXPECT_EQ(small.next().status, FrameError::frame_too_large);
}

TEST(FrameDecoder, next_rejectsLengthShorterThanHeader) {
  FrameDecoder d;
  const std::uint8_t bytes[8] = {12, 0, 0, 0, 0, 0, 0, 0};
  d.feed(bytes);
  EXPECT_EQ(d.next().status, FrameError::frame_too_short);
}

TEST(FrameDecoder, next_detectsBitFlipAnywhereAfterLength) {
  const auto good = encode_frame(FrameHeader{ApiId::metadata, 0, 7, 0}, payload_of(20, 5));
  for (std::size_t i = 4 * 8; i < good.size() * 8; ++i) {
    auto bad = good;
    bad[i / 8] ^= static_cast<std::uint8_t>(1u << (i % 8));
    FrameDecoder d;
    d.feed(bad);
    EXPECT_EQ(d.next().status, FrameError::bad_crc) << "bit " << i;
  }
}

TEST(FrameDecoder, finish_reportsTruncatedStream) {
  const auto f = encode_frame(FrameHeader{ApiId::metadata, 0, 7, 0}, payload_of(20, 5));
  FrameDecoder d;
  d.feed(std::span(f).first(f.size() - 1));
  EXPECT_EQ(d.next().status, FrameError::need_more);
  EXPECT_EQ(d.finish(), FrameError::truncated);
  EXPECT_EQ(to_error_code(FrameError::truncated), wire::ErrorCode::corrupt_message);
}

TEST(FrameError, toString_nonEmptyForEveryValue) {
  for (int e = 0; e <= static_cast<int>(FrameError::truncated); ++e)
    EXPECT_GT(std::strlen(to_string(static_cast<FrameError>(e))), 0u);
}

TEST(ApiTable, supportedApis_indexedByIdWithNames) {
  const auto apis = supported_apis();
  ASSERT_EQ(apis.size(), 21u);
  for (std::size_t i = 0; i < apis.size(); ++i) {
    EXPECT_EQ(static_cast<std::size_t>(apis[i].api), i);
    EXPECT_LE(apis[i].min_version, apis[i].max_version);
    EXPECT_STRNE(api_name(apis[i].api), "unknown");
    EXPECT_EQ(find_api(apis[i].api), &apis[i]);
  }
  EXPECT_EQ(find_api(static_cast<ApiId>(21)), nullptr);
  EXPECT_EQ(find_api(static_cast<ApiId>(100)), nullptr);
  EXPECT_STREQ(api_name(static_cast<ApiId>(999)), "unknown");
}

TEST(ApiTable, registerInternalApi_onlyReservedRangeAndOnce) {
  auto verify = [](std::span<const std::uint8_t> p, bool, std::uint32_t, std::uint32_t) {
    return !p.empty();
  };
  EXPECT_FALSE(register_internal_api({ApiId::produce, 0, 0}, verify));
  EXPECT_FALSE(register_internal_api({static_cast<ApiId>(150), 0, 0}, verify));
  ASSERT_TRUE(register_internal_api({static_cast<ApiId>(149), 0, 1}, verify));
  EXPECT_FALSE(register_internal_api({static_cast<ApiId>(149), 0, 1}, verify));
  EXPECT_NE(find_api(static_cast<ApiId>(149)), nullptr);
  const std::uint8_t one = 1;
  EXPECT_EQ(verify_request(static_cast<ApiId>(149), 1, {&one, 1}), wire::ErrorCode::none);
  EXPECT_EQ(verify_request(static_cast<ApiId>(149), 2, {&one, 1}), wire::ErrorCode::unsupported_version);
  EXPECT_EQ(verify_request(static_cast<ApiId>(149), 0, {}), wire::ErrorCode::corrupt_message);
}

TEST(OutgoingFrame, finishRequest_decodesToSamePayload) {
  flatbuffers::FlatBufferBuilder fbb;
  const auto root = wire::CreateDeleteTopicRequestDirect(fbb, "orders", 100);
  const OutgoingFrame out = finish_request(fbb, root, ApiId::delete_topic, 0, 77);
  FrameDecoder d;
  d.feed(out.header_bytes());
  d.feed(out.payload());
  const DecodeResult r = d.next();
  ASSERT_EQ(r.status, FrameError::ok);
  EXPECT_EQ(r.frame.header.correlation_id, 77u);
  ASSERT_EQ(verify_frame(r.frame), wire::ErrorCode::none);
  const auto* req = payload_as<wire::DeleteTopicRequest>(r.frame.payload);
  EXPECT_EQ(req->name()->string_view(), "orders");
  EXPECT_EQ(req->timeout_ms(), 100);
  EXPECT_EQ(out.to_bytes().size(), out.size_bytes());
}

TEST(OutgoingFrame, makeErrorResponse_echoesRequestAndVerifies) {
  const FrameHeader req{static_cast<ApiId>(77), 9, 1234, 0};
  const OutgoingFrame out = make_error_response(req, wire::ErrorCode::unknown_api);
  FrameDecoder d;
  d.feed(out.to_bytes());
  const DecodeResult r = d.next();
  ASSERT_EQ(r.status, FrameError::ok);
  EXPECT_TRUE(r.frame.header.is_response());
  EXPECT_TRUE(r.frame.header.is_error_payload());
  EXPECT_EQ(r.frame.header.correlation_id, 1234u);
  EXPECT_EQ(r.frame.header.api_version, 9);
  ASSERT_EQ(verify_frame(r.frame), wire::ErrorCode::none);
  const auto* e = payload_as<wire::ErrorResponse>(r.frame.payload);
  EXPECT_EQ(e->error(), wire::ErrorCode::unknown_api);
  EXPECT_STREQ(e->message()->c_str(), wire::error_message(wire::ErrorCode::unknown_api));
}

TEST(OutgoingFrame, makeApiVersionsResponse_listsEverySupportedApi) {
  const OutgoingFrame out = make_api_versions_response(FrameHeader{ApiId::api_versions, 0, 5, 0}, 3, "c1");
  ASSERT_EQ(verify_response(ApiId::api_versions, 0, out.payload()), wire::ErrorCode::none);
  const auto* r = payload_as<wire::ApiVersionsResponse>(out.payload());
  ASSERT_NE(r->apis(), nullptr);
  EXPECT_EQ(r->apis()->size(), supported_apis().size());
  EXPECT_EQ(r->node_id(), 3);
  EXPECT_EQ(r->cluster_id()->string_view(), "c1");
}

}  // namespace
}  // namespace quorumq::protocol
