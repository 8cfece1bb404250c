// The bench message payload: a fixed header the consumer side needs, then filler up to --size.
//
//   offset 0  u32 magic 'QBEN'
//          4  u32 run id      (a random number per run: another run's messages are skipped)
//          8  u32 producer    (index of the bench producer)
//         12  u32 reserved
//         16  u64 seq         (per producer, in send() order: the verifier's identity and order)
//         24  i64 intended_ns (steady clock of this process: when the message was meant to be
//                              sent; end-to-end latency is measured from it)
// Little-endian, as the machines we run on. Consumers run in the same process as producers, so
// one steady clock serves both ends.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace quorumq::bench {

struct PayloadHeader {
  std::uint32_t run_id = 0;
  std::uint32_t producer = 0;
  std::uint64_t seq = 0;
  std::int64_t intended_ns = 0;
};

inline constexpr std::uint32_t kPayloadMagic = 0x4e454251;  // "QBEN"
inline constexpr std::size_t kPayloadHeaderBytes = 32;

// Writes the header into the first kPayloadHeaderBytes of buf (buf.size() >= that).
inline void write_payload_header(std::string& buf, const PayloadHeader& h) {
  char* p = buf.data();
  const std::uint32_t reserved = 0;
  std::memcpy(p + 0, &kPayloadMagic, 4);
  std::memcpy(p + 4, &h.run_id, 4);
  std::memcpy(p + 8, &h.producer, 4);
  std::memcpy(p + 12, &reserved, 4);
  std::memcpy(p + 16, &h.seq, 8);
  std::memcpy(p + 24, &h.intended_ns, 8);
}

// The header of a bench payload of this run, or nullopt for anything else.
inline std::optional<PayloadHeader> read_payload_header(std::string_view v, std::uint32_t run_id) {
  if (v.size() < kPayloadHeaderBytes) return std::nullopt;
  std::uint32_t magic = 0;
  PayloadHeader h;
  std::memcpy(&magic, v.data(), 4);
  std::memcpy(&h.run_id, v.data() + 4, 4);
  if (magic != kPayloadMagic || h.run_id != run_id) return std::nullopt;
  std::memcpy(&h.producer, v.data() + 8, 4);
  std::memcpy(&h.seq, v.data() + 16, 8);
  std::memcpy(&h.intended_ns, v.data() + 24, 8);
  return h;
}

}  // namespace quorumq::bench
