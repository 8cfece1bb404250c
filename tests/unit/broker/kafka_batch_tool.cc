// Test tool for kafka_batch_oracle.py: converts between Kafka RecordBatch v2 files and quorumq
// batches so that kafka-python (an implementation nobody here wrote) can check both directions.
//   kafka_batch_tool to-kafka OUT     writes a sample quorumq batch as Kafka bytes
//   kafka_batch_tool from-kafka IN [MAX]  converts Kafka bytes (compressed records decompress to
//                                     at most MAX bytes, default 16 MiB) and prints each record
//                                     as a JSON line (or "refused CODE MESSAGE" and exit 1)
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "kafka_batch.h"
#include "quorumq/protocol/crc32c.h"

using namespace quorumq;
using namespace quorumq::broker::kafka;

int main(int argc, char** argv) {
  if (argc != 3 && !(argc == 4 && std::string(argv[1]) == "from-kafka")) {
    std::fprintf(stderr, "usage: %s to-kafka OUT | from-kafka IN [MAX]\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  if (mode == "to-kafka") {
    BatchBuilder b;
    const std::vector<std::pair<std::string, std::string>> h{{"trace", "abc"}, {"empty", ""}};
    b.add("k1", "value one", 1700000000000, h);
    b.add(std::nullopt, "value two", 1700000000005);
    b.add("k3", std::nullopt, 1699999999990);
    auto q = b.finish(ProducerInfo{77, 3, 41});
    stamp_batch(q, 1000, 9);
    Writer w;
    if (!append_as_kafka(BatchView(q), w)) return 1;
    std::ofstream(argv[2], std::ios::binary).write(reinterpret_cast<const char*>(w.bytes().data()),
                                                   static_cast<std::streamsize>(w.bytes().size()));
    return 0;
  }
  if (mode != "from-kafka") return 2;
  const std::size_t max_records = argc == 4 ? std::stoull(argv[3]) : std::size_t{16} << 20;
  std::ifstream f(argv[2], std::ios::binary);
  const std::vector<std::uint8_t> k((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::span<const std::uint8_t>> parts;
  ConvertError err;
  if (!split_batches(k, parts, err)) {
    std::printf("refused %d %s\n", static_cast<int>(err.code), err.message.c_str());
    return 1;
  }
  for (const auto& part : parts) {
    std::vector<std::uint8_t> out;
    if (!to_quorumq(part, out, err, max_records)) {
      std::printf("refused %d %s\n", static_cast<int>(err.code), err.message.c_str());
      return 1;
    }
    const BatchView v(out);
    if (v.validate() != BatchError::ok) return 3;
    v.for_each_record([&](const RecordView& r) {
      nlohmann::json j;
      j["producer"] = {v.producer_id(), v.producer_epoch(), v.base_sequence()};
      j["offset_delta"] = r.offset - v.base_offset();
      j["timestamp"] = r.timestamp_ms;
      j["key"] = r.key ? nlohmann::json(std::string(*r.key)) : nlohmann::json(nullptr);
      j["value"] = r.value ? nlohmann::json(std::string(*r.value)) : nlohmann::json(nullptr);
      j["value_crc"] = r.value ? crc32c(r.value->data(), r.value->size()) : 0;
      j["headers"] = nlohmann::json::array();
      r.for_each_header([&](std::string_view hk, std::string_view hv) {
        j["headers"].push_back({std::string(hk), std::string(hv)});
      });
      std::printf("%s\n", j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace).c_str());
    });
  }
  return 0;
}
