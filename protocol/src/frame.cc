#include "quorumq/protocol/frame.h"

#include <algorithm>
#include <cstring>

#include "quorumq/protocol/assert.h"
#include "quorumq/protocol/crc32c.h"

namespace quorumq::protocol {

namespace {
// Public apis and their versions. Bump max_version when a request or response changes meaning
// (protocol/README.md "Versioning"); raise min_version only when dropping an old client.
constexpr ApiVersionRange kApis[] = {
    {ApiId::api_versions, 0, 0},  {ApiId::metadata, 0, 0},      {ApiId::create_topic, 0, 0},
    {ApiId::delete_topic, 0, 0},  {ApiId::list_topics, 0, 0},   {ApiId::produce, 0, 0},
    {ApiId::fetch, 0, 0},         {ApiId::list_offsets, 0, 0},  {ApiId::offset_commit, 0, 0},
    {ApiId::offset_fetch, 0, 0},  {ApiId::init_producer_id, 0, 0},
    {ApiId::group_heartbeat, 0, 0}, {ApiId::describe_groups, 0, 0}, {ApiId::alter_topic_config, 0, 0},
    {ApiId::offset_delete, 0, 0},
    {ApiId::sasl_authenticate, 0, 0}, {ApiId::alter_users, 0, 0}, {ApiId::describe_users, 0, 0},
    {ApiId::create_acls, 0, 0},   {ApiId::delete_acls, 0, 0},   {ApiId::describe_acls, 0, 0},
};
constexpr const char* kApiNames[] = {
    "api_versions", "metadata",      "create_topic", "delete_topic",  "list_topics",      "produce",
    "fetch",        "list_offsets", "offset_commit", "offset_fetch", "init_producer_id",
    "group_heartbeat", "describe_groups", "alter_topic_config", "offset_delete",
    "sasl_authenticate", "alter_users", "describe_users", "create_acls", "delete_acls", "describe_acls",
};
static_assert(std::size(kApis) == std::size(kApiNames));

constexpr std::size_t kInternalCount =
    static_cast<std::size_t>(ApiId::internal_last) - static_cast<std::size_t>(ApiId::internal_first) + 1;
struct InternalApi {
  ApiVersionRange range;
  PayloadVerifier verify = nullptr;
};
// Filled at start-up only (see register_internal_api), read-only afterwards: no locking.
InternalApi g_internal[kInternalCount];

template <typename T>
void put(std::uint8_t* p, T v) noexcept {
  std::memcpy(p, &v, sizeof v);
}
template <typename T>
T get(const std::uint8_t* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
}  // namespace

PayloadVerifier internal_api_verifier(ApiId a) noexcept;  // used by verify.cc
PayloadVerifier internal_api_verifier(ApiId a) noexcept {
  if (!is_internal_api(a)) return nullptr;
  return g_internal[static_cast<std::size_t>(a) - static_cast<std::size_t>(ApiId::internal_first)].verify;
}

const char* api_name(ApiId a) noexcept {
  const auto i = static_cast<std::size_t>(a);
  if (i < std::size(kApiNames)) return kApiNames[i];
  if (is_internal_api(a) && internal_api_verifier(a) != nullptr) return "internal";
  return "unknown";
}

std::span<const ApiVersionRange> supported_apis() noexcept { return kApis; }

const ApiVersionRange* find_api(ApiId a) noexcept {
  const auto i = static_cast<std::size_t>(a);
  if (i < std::size(kApis)) return &kApis[i];
  if (is_internal_api(a)) {
    const auto& e = g_internal[i - static_cast<std::size_t>(ApiId::internal_first)];
    if (e.verify != nullptr) return &e.range;
  }
  return nullptr;
}

bool register_internal_api(ApiVersionRange range, PayloadVerifier verify) noexcept {
  if (!is_internal_api(range.api) || verify == nullptr || range.min_version > range.max_version)
    return false;
  auto& e = g_internal[static_cast<std::size_t>(range.api) - static_cast<std::size_t>(ApiId::internal_first)];
  if (e.verify != nullptr) return false;
  e.range = range;
  e.verify = verify;
  return true;
}

const char* to_string(FrameError e) noexcept {
  switch (e) {
    case FrameError::ok: return "ok";
    case FrameError::need_more: return "need more bytes";
    case FrameError::frame_too_large: return "frame length above the maximum frame size";
    case FrameError::frame_too_short: return "frame length shorter than the frame header";
    case FrameError::bad_crc: return "frame CRC32C mismatch (corrupt frame)";
    case FrameError::truncated: return "stream ended inside a frame";
  }
  return "unknown frame error";
}

std::array<std::uint8_t, kFrameHeaderSize> encode_frame_header(
    const FrameHeader& h, std::span<const std::uint8_t> payload) noexcept {
  QQ_ASSERT(payload.size() <= 0xFFFFFFFFu - kFrameHeaderAfterLength);
  std::array<std::uint8_t, kFrameHeaderSize> b{};
  put<std::uint32_t>(b.data(), static_cast<std::uint32_t>(kFrameHeaderAfterLength + payload.size()));
  put<std::uint16_t>(b.data() + 8, static_cast<std::uint16_t>(h.api_id));
  put<std::uint16_t>(b.data() + 10, h.api_version);
  put<std::uint32_t>(b.data() + 12, h.correlation_id);
  b[16] = h.flags;
  std::uint32_t crc = crc32c(b.data() + 8, kFrameHeaderSize - 8);
  crc = crc32c_extend(crc, payload.data(), payload.size());
  put<std::uint32_t>(b.data() + 4, crc);
  return b;
}

void encode_frame(const FrameHeader& h, std::span<const std::uint8_t> payload,
                  std::vector<std::uint8_t>& out) {
  const auto hdr = encode_frame_header(h, payload);
  out.reserve(out.size() + hdr.size() + payload.size());
  out.insert(out.end(), hdr.begin(), hdr.end());
  out.insert(out.end(), payload.begin(), payload.end());
}

std::vector<std::uint8_t> encode_frame(const FrameHeader& h, std::span<const std::uint8_t> payload) {
  std::vector<std::uint8_t> out;
  encode_frame(h, payload, out);
  return out;
}

// ---- FrameDecoder ----

FrameDecoder::FrameDecoder(std::uint32_t max_frame_bytes) : max_frame_bytes_(max_frame_bytes) {}

void FrameDecoder::make_room(std::size_t n) {
  // end_ starts at kLead even while the buffer is still unallocated (capacity 0).
  if (end_ <= capacity() && capacity() - end_ >= n) return;
  // Move the unconsumed bytes to the front, at the offset that 8-aligns a payload, so a frame
  // that spans several reads ends up aligned and needs no copy in next().
  const std::size_t live = end_ - begin_;
  if (begin_ != kLead) {
    if (live != 0) std::memmove(base() + kLead, base() + begin_, live);
    begin_ = kLead;
    end_ = kLead + live;
  }
  if (end_ <= capacity() && capacity() - end_ >= n) return;
  const std::size_t need = end_ + n;
  const std::size_t want = std::max(need, capacity() * 2);
  buf_.resize((want + sizeof(std::uint64_t) - 1) / sizeof(std::uint64_t));
}

void FrameDecoder::feed(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) return;
  make_room(bytes.size());
  std::memcpy(base() + end_, bytes.data(), bytes.size());
  end_ += bytes.size();
}

std::span<std::uint8_t> FrameDecoder::prepare(std::size_t n) {
  make_room(n);
  return {base() + end_, n};
}

void FrameDecoder::commit(std::size_t n) {
  QQ_ASSERT_MSG(end_ <= capacity() && n <= capacity() - end_, "commit() of more than prepare() gave");
  end_ += n;
}

DecodeResult FrameDecoder::next() {
  if (sticky_ != FrameError::ok) return {sticky_, {}};
  if (begin_ == end_) {
    // Nothing buffered: restart at the aligned slot so the next frame needs no copy.
    begin_ = end_ = kLead;
    return {FrameError::need_more, {}};
  }
  const std::size_t avail = end_ - begin_;
  if (avail < kFrameLengthFieldSize) return {FrameError::need_more, {}};
  const std::uint8_t* p = base() + begin_;
  const std::uint32_t length = get<std::uint32_t>(p);
  // Checked before waiting for (and so before buffering) the rest of the frame.
  if (length > max_frame_bytes_) return {sticky_ = FrameError::frame_too_large, {}};
  if (length < kFrameHeaderAfterLength) return {sticky_ = FrameError::frame_too_short, {}};
  const std::size_t total = kFrameLengthFieldSize + std::size_t{length};
  if (avail < total) return {FrameError::need_more, {}};
  if (crc32c(p + 8, total - 8) != get<std::uint32_t>(p + 4)) return {sticky_ = FrameError::bad_crc, {}};

  Frame f;
  f.header.api_id = static_cast<ApiId>(get<std::uint16_t>(p + 8));
  f.header.api_version = get<std::uint16_t>(p + 10);
  f.header.correlation_id = get<std::uint32_t>(p + 12);
  f.header.flags = p[16];
  const std::uint8_t* payload = p + kFrameHeaderSize;
  const std::size_t payload_size = total - kFrameHeaderSize;
  begin_ += total;
  if (reinterpret_cast<std::uintptr_t>(payload) % alignof(std::uint64_t) != 0 && payload_size != 0) {
    // Several frames arrived in one read: this one is misaligned. Copy only its payload (linear
    // in its size) rather than shifting everything buffered behind it.
    scratch_.resize((payload_size + 7) / 8);
    std::memcpy(scratch_.data(), payload, payload_size);
    payload = reinterpret_cast<const std::uint8_t*>(scratch_.data());
  }
  f.payload = {payload, payload_size};
  return {FrameError::ok, f};
}

void FrameDecoder::release_if_idle(std::size_t keep_bytes) {
  if (begin_ != end_) return;
  if (capacity() > keep_bytes) {
    std::vector<std::uint64_t>().swap(buf_);
    begin_ = end_ = kLead;
  }
  if (scratch_.capacity() * sizeof(std::uint64_t) > keep_bytes) std::vector<std::uint64_t>().swap(scratch_);
}

FrameError FrameDecoder::finish() const noexcept {
  if (sticky_ != FrameError::ok) return sticky_;
  return begin_ == end_ ? FrameError::ok : FrameError::truncated;
}

}  // namespace quorumq::protocol
