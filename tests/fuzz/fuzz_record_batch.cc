// libFuzzer target: BatchView::validate and for_each_record (record_batch.h) on arbitrary bytes,
// the way a broker meets a producer's batch. for_each_record must be safe even on batches that
// did not validate; headers are read only from validated batches (for_each_header's contract).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "quorumq/protocol/record_batch.h"

using namespace quorumq;

namespace {
volatile std::size_t g_sink;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> bytes(data, data + size);
  BatchView v(bytes);
  const BatchError e = v.validate();
  std::uint32_t n = 0;
  const bool ok = v.for_each_record([&](const RecordView& r) {
    ++n;
    g_sink = g_sink + r.key.value_or("").size() + r.value.value_or("").size() + r.headers_raw.size();
    if (e == BatchError::ok)
      r.for_each_header([&](std::string_view k, std::string_view val) { g_sink = g_sink + k.size() + val.size(); });
  });
  if (e == BatchError::ok) {
    // A valid data batch iterates to exactly record_count records.
    if (v.type() == BatchType::data && (!ok || n != v.record_count())) std::abort();
    // The leader stamps offsets without touching the CRC.
    stamp_batch(bytes, 12345, 6);
    if (BatchView(bytes).validate() != BatchError::ok) std::abort();
  }
  return 0;
}
