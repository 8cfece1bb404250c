// Bad input on raw sockets (issue 3): garbage, truncated frames, a 2 GiB length prefix, unknown
// api ids, wrong versions, bad checksums and a slow-loris client. The broker answers with an
// error where it can, closes that connection, and keeps serving everyone else; its memory
// stays bounded.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "harness.h"
#include "raw_client.h"
#include "quorumq/protocol/errors.h"
#include "quorumq/protocol/quorumq_generated.h"

namespace quorumq::test {
namespace {

using protocol::ApiId;
using protocol::FrameHeader;

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = std::make_unique<BrokerProcess>(
        0, dir_.path() / "b0",
        std::vector<std::string>{"--partial-frame-timeout-ms=1500", "--max-connections=64", "--log-level=warn"});
    broker_->start();
  }
  // A healthy client still gets its ApiVersions answered.
  void expect_serving() {
    RawClient c(broker_->port());
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.send_frame(api_versions_request(4242)));
    auto f = c.read_frame();
    ASSERT_TRUE(f.has_value()) << "broker stopped answering; log: " << broker_->log_file();
    EXPECT_EQ(f->header.correlation_id, 4242u);
    EXPECT_TRUE(f->header.is_response());
    EXPECT_FALSE(f->header.is_error_payload());
  }
  TempDir dir_;
  std::unique_ptr<BrokerProcess> broker_;
};

std::vector<std::uint8_t> bytes_of(const protocol::OutgoingFrame& f) { return f.to_bytes(); }

TEST_F(BadInput, garbage_closesConnectionAndKeepsServing) {
  std::mt19937 rng(7);
  for (int i = 0; i < 20; ++i) {
    RawClient c(broker_->port());
    std::vector<std::uint8_t> junk(1 + rng() % 4096);
    for (auto& b : junk) b = static_cast<std::uint8_t>(rng());
    junk[0] = 0x40;  // length 64+: a frame that then fails its CRC (or exceeds the limit)
    c.send_bytes(junk);
    EXPECT_TRUE(c.wait_closed(5s)) << "connection " << i << " not closed";
  }
  expect_serving();
}

TEST_F(BadInput, truncatedFrame_thenClose_brokerUnaffected) {
  const auto full = bytes_of(api_versions_request(1));
  for (std::size_t cut : {1ul, 4ul, 10ul, full.size() - 1}) {
    RawClient c(broker_->port());
    c.send_bytes(std::span(full).first(cut));
  }  // each client disconnects mid-frame
  expect_serving();
}

TEST_F(BadInput, hugeLengthPrefix_refusedWithoutAllocating) {
  const auto rss_before = broker_->rss_bytes();
  for (int i = 0; i < 20; ++i) {
    RawClient c(broker_->port());
    std::uint8_t prefix[17] = {};
    const std::uint32_t len = 0x7FFFFFF0u;  // ~2 GiB
    std::memcpy(prefix, &len, 4);
    c.send_bytes(prefix);
    auto f = c.read_frame(5s);
    ASSERT_TRUE(f.has_value()) << "expected an error response before the close";
    EXPECT_TRUE(f->header.is_error_payload());
    EXPECT_EQ(error_code_of(*f), static_cast<int>(wire::ErrorCode::frame_too_large));
    EXPECT_TRUE(c.wait_closed(5s));
  }
  // 20 x 2 GiB was asked for; memory grew by far less than one such frame.
  EXPECT_LT(broker_->rss_bytes(), rss_before + (64u << 20));
  expect_serving();
}

TEST_F(BadInput, unknownApi_errorResponseThenClose) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(wire::CreateErrorResponse(fbb));
  const auto frame = protocol::encode_frame(FrameHeader{static_cast<ApiId>(77), 0, 99, 0},
                                            {fbb.GetBufferPointer(), fbb.GetSize()});
  RawClient c(broker_->port());
  c.send_bytes(frame);
  auto f = c.read_frame(5s);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->header.correlation_id, 99u);
  EXPECT_TRUE(f->header.is_error_payload());
  EXPECT_EQ(error_code_of(*f), static_cast<int>(wire::ErrorCode::unknown_api));
  EXPECT_TRUE(c.wait_closed(5s));
  expect_serving();
}

TEST_F(BadInput, internalApiFromClient_refused) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(wire::CreateErrorResponse(fbb));
  const auto frame = protocol::encode_frame(FrameHeader{static_cast<ApiId>(100), 0, 5, 0},
                                            {fbb.GetBufferPointer(), fbb.GetSize()});
  RawClient c(broker_->port());
  c.send_bytes(frame);
  auto f = c.read_frame(5s);
  ASSERT_TRUE(f.has_value());
  EXPECT_TRUE(f->header.is_error_payload());
  EXPECT_TRUE(c.wait_closed(5s));
  expect_serving();
}

TEST_F(BadInput, unsupportedVersion_errorResponseThenClose) {
  auto req = api_versions_request(11);
  auto bytes = req.to_bytes();
  const auto payload = std::span(bytes).subspan(protocol::kFrameHeaderSize);
  const auto frame = protocol::encode_frame(FrameHeader{ApiId::api_versions, 99, 11, 0}, payload);
  RawClient c(broker_->port());
  c.send_bytes(frame);
  auto f = c.read_frame(5s);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(error_code_of(*f), static_cast<int>(wire::ErrorCode::unsupported_version));
  EXPECT_TRUE(c.wait_closed(5s));
  expect_serving();
}

TEST_F(BadInput, unverifiablePayload_corruptMessage) {
  std::vector<std::uint8_t> payload(64, 0xEE);  // not a flatbuffer
  const auto frame = protocol::encode_frame(FrameHeader{ApiId::produce, 0, 12, 0}, payload);
  RawClient c(broker_->port());
  c.send_bytes(frame);
  auto f = c.read_frame(5s);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(error_code_of(*f), static_cast<int>(wire::ErrorCode::corrupt_message));
  EXPECT_TRUE(c.wait_closed(5s));
  expect_serving();
}

TEST_F(BadInput, badCrc_closed) {
  auto bytes = api_versions_request(3).to_bytes();
  bytes.back() ^= 0x01;  // payload bit flip: the frame CRC no longer matches
  RawClient c(broker_->port());
  c.send_bytes(bytes);
  EXPECT_TRUE(c.wait_closed(5s));
  expect_serving();
}

TEST_F(BadInput, slowLoris_closedAfterPartialFrameTimeout) {
  RawClient slow(broker_->port());
  const auto bytes = api_versions_request(8).to_bytes();
  slow.send_bytes(std::span(bytes).first(6));  // start a frame, never finish it
  expect_serving();                            // others are served meanwhile
  EXPECT_TRUE(slow.wait_closed(10s)) << "slow-loris connection was never closed";
  expect_serving();
}

TEST_F(BadInput, pipelinedRequests_allAnsweredByCorrelationId) {
  RawClient c(broker_->port());
  std::vector<std::uint8_t> all;
  for (std::uint32_t i = 1; i <= 200; ++i) {
    auto b = api_versions_request(i).to_bytes();
    all.insert(all.end(), b.begin(), b.end());
  }
  ASSERT_TRUE(c.send_bytes(all));
  std::vector<bool> seen(201, false);
  for (int i = 0; i < 200; ++i) {
    auto f = c.read_frame(10s);
    ASSERT_TRUE(f.has_value()) << "after " << i << " responses";
    ASSERT_LE(f->header.correlation_id, 200u);
    EXPECT_FALSE(seen[f->header.correlation_id]);
    seen[f->header.correlation_id] = true;
  }
}

TEST_F(BadInput, tooManyConnections_refusedOthersServed) {
  std::vector<std::unique_ptr<RawClient>> held;
  for (int i = 0; i < 64; ++i) {
    held.push_back(std::make_unique<RawClient>(broker_->port()));
    ASSERT_TRUE(held.back()->send_frame(api_versions_request(static_cast<std::uint32_t>(i))));
    ASSERT_TRUE(held.back()->read_frame(10s).has_value());  // accepted and counted
  }
  RawClient extra(broker_->port());
  EXPECT_TRUE(extra.wait_closed(5s)) << "connection over --max-connections was not refused";
  held.pop_back();
  // A slot frees up once the broker notices the close.
  EXPECT_TRUE(wait_until(
      [&] {
        RawClient c(broker_->port());
        if (!c.send_frame(api_versions_request(1))) return false;
        return c.read_frame(2s).has_value();
      },
      10s));
}

TEST_F(BadInput, sigterm_exitsZero) { EXPECT_EQ(broker_->terminate(), 0); }

}  // namespace
}  // namespace quorumq::test
