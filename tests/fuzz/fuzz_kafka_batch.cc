// libFuzzer target: the Kafka listener's RecordBatch v2 decoder (broker/src/kafka/kafka_batch.h)
// on arbitrary bytes, the way a broker meets a Kafka producer's records field (each batch also
// with its CRC-32C made right, so mutations reach compressed records and the decompressors of
// kafka_compression.h), the decompressors on the raw bytes, and the wire reader's primitives. A
// batch it accepts must be a valid quorumq batch that converts back to Kafka and again to the
// same quorumq bytes; decompression never holds more than the limit.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "kafka_batch.h"
#include "kafka_compression.h"
#include "kafka_wire.h"
#include "quorumq/protocol/crc32c.h"

using namespace quorumq;
using namespace quorumq::broker::kafka;

// Compressed records (gzip, snappy, lz4, zstd) decompress to at most this: a bomb stops here.
constexpr std::size_t kMaxRecords = 1 << 20;

namespace {
void convert(std::span<const std::uint8_t> p) {
  ConvertError err;
  std::vector<std::uint8_t> q;
  if (!to_quorumq(p, q, err, kMaxRecords)) {
    if (err.code == BatchCheck::ok || err.message.empty()) std::abort();
    return;
  }
  if (BatchView(q).validate() != BatchError::ok) std::abort();
  Writer w;
  if (!append_as_kafka(BatchView(q), w)) std::abort();
  std::vector<std::uint8_t> again;
  if (!to_quorumq(w.bytes(), again, err, kMaxRecords) || again != q) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> in(data, size);
  std::vector<std::span<const std::uint8_t>> parts;
  ConvertError err;
  if (split_batches(in, parts, err)) {
    for (const auto& p : parts) {
      convert(p);
      // Again with the CRC-32C made right, so that mutations reach the records and the
      // decompressors behind the checksum.
      if (p.size() >= kRecordBatchHeaderSize) {
        std::vector<std::uint8_t> fixed(p.begin(), p.end());
        const std::uint32_t c = crc32c(fixed.data() + 21, fixed.size() - 21);
        for (int i = 0; i < 4; ++i) fixed[17 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(c >> (8 * (3 - i)));
        convert(fixed);
      }
    }
  }
  // The decompressors on the bytes themselves (the first byte picks the codec): never past the
  // limit, a reason for every refusal.
  if (size > 0) {
    std::vector<std::uint8_t> out;
    std::string why;
    const auto r = decompress(data[0] & 7, in.subspan(1), kMaxRecords, out, why);
    if (out.capacity() > kMaxRecords + 1) std::abort();
    if (r == Decompressed::ok ? out.size() > kMaxRecords : why.empty()) std::abort();
  }
  // The primitives on the same bytes: never read past the end, fail() once anything is short.
  Reader r(in);
  while (!r.fail() && r.remaining() > 0) {
    switch (r.i8() & 7) {
      case 0: (void)r.nullable_string(); break;
      case 1: (void)r.compact_nullable_string(); break;
      case 2: (void)r.nullable_bytes(); break;
      case 3: (void)r.array_length(); break;
      case 4: (void)r.compact_array_length(); break;
      case 5: r.skip_tagged_fields(); break;
      case 6: (void)r.varlong(); break;
      default: (void)r.i64(); break;
    }
  }
  return 0;
}
