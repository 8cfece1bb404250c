// Writes the committed seed corpora under tests/fuzz/seeds/ from the unit tests' sample
// messages. Run by hand after a schema change:  scripts/fuzz.sh --seeds
#include <cstdio>
#include <string>
#include <vector>

#include "../unit/protocol/samples.h"
#include "quorumq/protocol/frame.h"

using namespace quorumq;
using namespace quorumq::protocol;

namespace {
void write(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    std::perror(path.c_str());
    std::exit(1);
  }
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}
}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "tests/fuzz/seeds";
  // fuzz_verify: payload, then the choices the target reads.
  // FuzzedDataProvider takes integers from the END of the input and bytes from the front, so
  // the trailer is: bool (response), version, api; the payload comes first.
  for (const ApiVersionRange& a : supported_apis()) {
    for (int resp = 0; resp < 2; ++resp) {
      auto b = resp ? testing::sample_response(a.api) : testing::sample_request(a.api);
      b.push_back(static_cast<std::uint8_t>(resp));  // ConsumeBool
      b.push_back(0);                                // version
      b.push_back(static_cast<std::uint8_t>(a.api)); // api pick
      write(dir + "/fuzz_verify/" + api_name(a.api) + (resp ? "_response" : "_request"), b);
    }
  }
  // fuzz_frame_decoder: stream first, trailer = split seed (4 bytes) + max frame size (4 bytes).
  std::vector<std::uint8_t> stream;
  encode_frame(FrameHeader{ApiId::produce, 0, 1, 0}, testing::sample_request(ApiId::produce), stream);
  encode_frame(FrameHeader{ApiId::fetch, 0, 2, kFlagResponse}, testing::sample_response(ApiId::fetch), stream);
  encode_frame(FrameHeader{ApiId::metadata, 0, 3, 0}, {}, stream);
  auto with_trailer = [](std::vector<std::uint8_t> s, std::uint32_t seed, std::uint32_t max) {
    for (int i = 0; i < 4; ++i) s.push_back(static_cast<std::uint8_t>(seed >> (8 * (3 - i))));
    for (int i = 0; i < 4; ++i) s.push_back(static_cast<std::uint8_t>(max >> (8 * (3 - i))));
    return s;
  };
  write(dir + "/fuzz_frame_decoder/three_frames", with_trailer(stream, 0x12345678, 4000));
  write(dir + "/fuzz_frame_decoder/too_large", with_trailer({0, 0, 0, 0x80, 1, 2, 3, 4}, 7, 100));
  auto bad = stream;
  bad[20] ^= 1;
  write(dir + "/fuzz_frame_decoder/bad_crc", with_trailer(bad, 99, 4000));
  // fuzz_record_batch: raw batches.
  write(dir + "/fuzz_record_batch/three_records", testing::sample_batch());
  write(dir + "/fuzz_record_batch/empty_data_batch", BatchBuilder().finish());
  const std::vector<std::uint8_t> payload = {1, 2, 3};
  write(dir + "/fuzz_record_batch/config_batch", make_payload_batch(BatchType::config, payload));
  return 0;
}
