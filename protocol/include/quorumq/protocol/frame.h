// Framing: how one request or response travels on a TCP connection.
//
// Frame layout (little-endian), 17 header bytes then the payload:
//   0  u32 length          bytes after this field (13 + payload size)
//   4  u32 crc32c          CRC32C over every byte after this field (header rest + payload)
//   8  u16 api_id          ApiId
//  10  u16 api_version
//  12  u32 correlation_id  chosen by the requester, echoed in the response
//  16  u8  flags           bit0 response, bit1 payload is an ErrorResponse; others 0
//  17  payload             one finished flatbuffer (schema/quorumq.fbs)
//
// The length comes first so a reader knows how much to buffer; the maximum frame size is
// checked against it before anything is allocated, so a hostile 2 GiB prefix costs nothing.
// No exceptions, no <expected>: the fuzzers build this as C++20 with clang 14.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace quorumq::protocol {

inline constexpr std::size_t kFrameLengthFieldSize = 4;
inline constexpr std::size_t kFrameHeaderSize = 17;
// Bytes counted by the length field that are header, not payload.
inline constexpr std::uint32_t kFrameHeaderAfterLength = kFrameHeaderSize - kFrameLengthFieldSize;
// Default maximum of the length field; brokers make it configurable (a produce request holds
// whole batches, so this must exceed the largest batch plus its envelope).
inline constexpr std::uint32_t kDefaultMaxFrameBytes = 64u << 20;

enum class ApiId : std::uint16_t {
  api_versions = 0,
  metadata = 1,
  create_topic = 2,
  delete_topic = 3,
  list_topics = 4,
  produce = 5,
  fetch = 6,
  list_offsets = 7,
  offset_commit = 8,
  offset_fetch = 9,
  init_producer_id = 10,
  group_heartbeat = 11,
  describe_groups = 12,
  alter_topic_config = 13,
  offset_delete = 14,
  sasl_authenticate = 15,
  alter_users = 16,
  describe_users = 17,
  create_acls = 18,
  delete_acls = 19,
  describe_acls = 20,
  // 100..149: reserved for broker-to-broker apis (raft_append, raft_vote, raft_install_snapshot,
  // ...) that the replication work adds. Clients never send them.
  internal_first = 100,
  internal_last = 149,
};
inline constexpr bool is_internal_api(ApiId a) noexcept {
  return a >= ApiId::internal_first && a <= ApiId::internal_last;
}

// Short name ("produce"), or "unknown" for ids not in the version table.
const char* api_name(ApiId a) noexcept;

struct ApiVersionRange {
  ApiId api;
  std::uint16_t min_version;
  std::uint16_t max_version;
};
// Every api this build speaks, ascending by id; ApiVersions answers with exactly this.
std::span<const ApiVersionRange> supported_apis() noexcept;
// nullptr if this build does not know `a`.
const ApiVersionRange* find_api(ApiId a) noexcept;
// Registers a broker-to-broker api (id in 100..149) at start-up, before any frame is verified,
// so the replication module owns its schemas without editing this module's table. Returns false
// for an id outside the reserved range or already registered.
using PayloadVerifier = bool (*)(std::span<const std::uint8_t> payload, bool is_response,
                                 std::uint32_t max_depth, std::uint32_t max_tables);
bool register_internal_api(ApiVersionRange range, PayloadVerifier verify) noexcept;

enum FrameFlags : std::uint8_t {
  kFlagResponse = 0x01,
  kFlagErrorPayload = 0x02,  // the payload is a wire::ErrorResponse, not the api's response
};

struct FrameHeader {
  ApiId api_id = ApiId::api_versions;
  std::uint16_t api_version = 0;
  std::uint32_t correlation_id = 0;
  std::uint8_t flags = 0;

  bool is_response() const noexcept { return (flags & kFlagResponse) != 0; }
  bool is_error_payload() const noexcept { return (flags & kFlagErrorPayload) != 0; }
};

// A decoded frame. `payload` points into the FrameDecoder's buffer: valid until the next
// call of any FrameDecoder member. It is 8-byte aligned, as flatbuffers reads want.
struct Frame {
  FrameHeader header;
  std::span<const std::uint8_t> payload;
};

enum class FrameError : std::uint8_t {
  ok = 0,
  need_more,        // not an error: feed more bytes
  frame_too_large,  // length field above the configured maximum; close the connection
  frame_too_short,  // length field below the 13 header bytes it must cover
  bad_crc,
  truncated,        // the stream ended inside a frame
};
const char* to_string(FrameError e) noexcept;

// The 17 header bytes for `payload`. With the payload they form the frame: send the two as an
// iovec pair (scatter/gather) and the payload is never copied.
std::array<std::uint8_t, kFrameHeaderSize> encode_frame_header(const FrameHeader& h,
                                                                std::span<const std::uint8_t> payload) noexcept;
// Appends header + payload to `out` (one copy of the payload).
void encode_frame(const FrameHeader& h, std::span<const std::uint8_t> payload,
                  std::vector<std::uint8_t>& out);
std::vector<std::uint8_t> encode_frame(const FrameHeader& h, std::span<const std::uint8_t> payload);

struct DecodeResult {
  FrameError status = FrameError::need_more;
  Frame frame;  // meaningful only when status == ok
};

// Incremental decoder for one connection's byte stream.
// Lifecycle: construct with the maximum frame size, then loop { feed(bytes); while next() is ok:
// handle frame }. After an error other than need_more the stream is unusable (framing is lost);
// every later next() repeats the error: close the connection.
// Thread: used by one thread at a time (the connection's reader).
// Memory: buffers at most one frame plus what was fed past it; never allocates for a frame
// whose length field is above `max_frame_bytes`.
class FrameDecoder {
 public:
  explicit FrameDecoder(std::uint32_t max_frame_bytes = kDefaultMaxFrameBytes);

  // Copies `bytes` into the buffer.
  void feed(std::span<const std::uint8_t> bytes);
  // Zero-copy alternative to feed(): read from the socket straight into prepare(n), then
  // commit(bytes_read). prepare's span is valid until commit.
  std::span<std::uint8_t> prepare(std::size_t n);
  void commit(std::size_t n);

  DecodeResult next();
  // Call when the stream ended: ok if it ended between frames, else truncated.
  FrameError finish() const noexcept;

  std::size_t buffered_bytes() const noexcept { return end_ - begin_; }
  // Memory the decoder holds (its buffers' capacity), idle or not.
  std::size_t capacity_bytes() const noexcept {
    return (buf_.capacity() + scratch_.capacity()) * sizeof(std::uint64_t);
  }
  // Frees the buffers when no byte is buffered and they hold more than `keep_bytes`: one large
  // request must not pin its size in memory for the rest of the connection's life. Invalidates
  // the payload of the last frame returned by next().
  void release_if_idle(std::size_t keep_bytes);
  std::uint32_t max_frame_bytes() const noexcept { return max_frame_bytes_; }
  // Changes the maximum for frames not yet decoded (a peer link allows large frames only once
  // its handshake is done).
  void set_max_frame_bytes(std::uint32_t n) noexcept { max_frame_bytes_ = n; }

 private:
  // Frames are placed so that their payload lands on an 8-byte boundary.
  static constexpr std::size_t kLead = 8 - (kFrameHeaderSize % 8);
  std::uint8_t* base() noexcept { return reinterpret_cast<std::uint8_t*>(buf_.data()); }
  std::size_t capacity() const noexcept { return buf_.size() * sizeof(std::uint64_t); }
  void make_room(std::size_t n);
  void realign();

  std::vector<std::uint64_t> buf_;      // uint64_t storage: aligned to 8
  std::vector<std::uint64_t> scratch_;  // a misaligned frame's payload, copied aligned
  std::size_t begin_ = kLead;       // first unconsumed byte
  std::size_t end_ = kLead;         // one past the last fed byte
  std::uint32_t max_frame_bytes_;
  FrameError sticky_ = FrameError::ok;
};

}  // namespace quorumq::protocol
