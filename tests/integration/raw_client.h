// A deliberately dumb blocking TCP client for protocol tests: sends exact bytes (valid or not)
// and reads frames back with a deadline, so tests can say precisely what the broker must do.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "quorumq/protocol/frame.h"
#include "quorumq/protocol/messages.h"

namespace quorumq::test {

struct ReceivedFrame {
  protocol::FrameHeader header;
  std::vector<std::uint8_t> payload;
};

class RawClient {
 public:
  explicit RawClient(std::uint16_t port);
  ~RawClient();
  bool connected() const { return fd_ >= 0; }
  bool send_bytes(std::span<const std::uint8_t> bytes);
  bool send_frame(const protocol::OutgoingFrame& f) { return send_bytes(f.to_bytes()); }
  // Like send_bytes, but gives up (false) if the peer stops taking bytes for `timeout`: for
  // clients that never read, whose sends block once the broker applies backpressure.
  bool try_send_bytes(std::span<const std::uint8_t> bytes, std::chrono::milliseconds timeout);
  // A small kernel receive buffer, so a client that never reads stalls the broker's writes soon.
  void set_recv_buffer(int bytes);
  // Next frame, or nullopt on timeout / close / framing error.
  std::optional<ReceivedFrame> read_frame(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // True once the peer closed the connection (reads return 0 or reset) within the timeout.
  bool wait_closed(std::chrono::milliseconds timeout);
  // Exactly n bytes, or nullopt on timeout / close (for protocols other than ours: Kafka).
  std::optional<std::vector<std::uint8_t>> read_exact(std::size_t n,
                                                      std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  int fd_ = -1;
  protocol::FrameDecoder decoder_;
};

// A valid ApiVersions request frame.
protocol::OutgoingFrame api_versions_request(std::uint32_t correlation_id);
// The error code in an ErrorResponse payload.
int error_code_of(const ReceivedFrame& f);

}  // namespace quorumq::test
