// StickyPartitioner: where a record goes that has neither a key nor an explicit partition.
// Records of a topic stay on one partition while its open batch fills (few, full batches
// instead of many small ones), then move on to the next partition, round robin. The first
// partition of a topic is picked from the clock, so producers started together spread out.
// A new batch (the previous one filled up) or a full one also moves on: otherwise a partition
// whose batches cannot drain (in-flight limit, slow leader) would keep all the traffic.
//
// Keyed records never come here: partition_for_key (partitioner.h) is fixed forever.
// Thread: not thread-safe; the Producer calls it with its mutex held.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "accumulator.h"

namespace quorumq::client {

class StickyPartitioner {
 public:
  // The partition for the next keyless record of `topic`, which has `count` (> 0) partitions.
  // `acc` says whether the batch this partitioner stuck to is still open.
  std::int32_t partition(const Accumulator& acc, std::string_view topic, std::int32_t count, std::int64_t now_ms);
  // The record went into `batch` of `partition`: stick to that batch while it fills.
  void appended(const std::string& topic, std::int32_t partition, std::int32_t count, const ProducerBatch& batch);

 private:
  struct Sticky {
    std::int32_t partition = -1;
    std::uint64_t batch_id = 0;
  };
  std::map<std::string, Sticky, std::less<>> sticky_;
};

}  // namespace quorumq::client
