// libFuzzer target: FrameDecoder over arbitrary byte streams split at arbitrary points.
// Property checked besides memory safety: how the stream is split never changes the result,
// i.e. feeding in fuzzer-chosen chunks yields exactly the frames (and the final status) that
// feeding everything at once yields. Every decoded frame is also run through verify_frame.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "quorumq/protocol/frame.h"
#include "quorumq/protocol/verify.h"

using namespace quorumq::protocol;

namespace {
struct Seen {
  FrameHeader header;
  std::vector<std::uint8_t> payload;
};

// Drains the decoder; returns the terminal status (need_more or an error).
FrameError drain(FrameDecoder& d, std::vector<Seen>& out) {
  for (;;) {
    const DecodeResult r = d.next();
    if (r.status != FrameError::ok) return r.status;
    if (reinterpret_cast<std::uintptr_t>(r.frame.payload.data()) % 8 != 0 && !r.frame.payload.empty())
      std::abort();  // payload must be aligned for flatbuffers reads
    (void)verify_frame(r.frame);
    out.push_back({r.frame.header, {r.frame.payload.begin(), r.frame.payload.end()}});
  }
}

bool same(const std::vector<Seen>& a, const std::vector<Seen>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto& x = a[i].header;
    const auto& y = b[i].header;
    if (x.api_id != y.api_id || x.api_version != y.api_version || x.correlation_id != y.correlation_id ||
        x.flags != y.flags || a[i].payload != b[i].payload)
      return false;
  }
  return true;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider fdp(data, size);
  // Small maximum so the fuzzer reaches frame_too_large easily.
  const std::uint32_t max_frame = fdp.ConsumeIntegralInRange<std::uint32_t>(13, 4096);
  const auto split_seed = fdp.ConsumeIntegral<std::uint32_t>();
  const std::vector<std::uint8_t> stream = fdp.ConsumeRemainingBytes<std::uint8_t>();

  FrameDecoder whole(max_frame);
  std::vector<Seen> expect;
  whole.feed(stream);
  const FrameError expect_end = drain(whole, expect);

  FrameDecoder chunked(max_frame);
  std::vector<Seen> got;
  FrameError end = FrameError::need_more;
  std::uint32_t rng = split_seed | 1;
  std::size_t at = 0;
  bool use_prepare = false;
  while (at < stream.size()) {
    rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;  // xorshift: chunk sizes from the input
    const std::size_t n = std::min<std::size_t>(stream.size() - at, 1 + rng % 64);
    if (use_prepare) {
      auto buf = chunked.prepare(n);
      std::copy(stream.begin() + static_cast<std::ptrdiff_t>(at),
                stream.begin() + static_cast<std::ptrdiff_t>(at + n), buf.begin());
      chunked.commit(n);
    } else {
      chunked.feed({stream.data() + at, n});
    }
    use_prepare = !use_prepare;
    at += n;
    end = drain(chunked, got);
  }
  if (stream.empty()) end = drain(chunked, got);
  if (!same(expect, got) || end != expect_end) std::abort();
  if (whole.finish() != chunked.finish()) std::abort();
  return 0;
}
