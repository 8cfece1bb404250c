#include "sticky_partitioner.h"

namespace quorumq::client {

std::int32_t StickyPartitioner::partition(const Accumulator& acc, std::string_view topic, std::int32_t count,
                                          std::int64_t now_ms) {
  auto& s = sticky_[std::string(topic)];
  if (s.partition < 0 || s.partition >= count) {
    s.partition = static_cast<std::int32_t>(static_cast<std::uint64_t>(now_ms) % static_cast<std::uint64_t>(count));
    s.batch_id = 0;
  } else if (s.batch_id != 0 && acc.open_batch_id(TopicPartition{std::string(topic), s.partition}) != s.batch_id) {
    s.partition = (s.partition + 1) % count;  // that batch closed: move on
    s.batch_id = 0;
  }
  return s.partition;
}

void StickyPartitioner::appended(const std::string& topic, std::int32_t partition, std::int32_t count,
                                 const ProducerBatch& batch) {
  // Stay on this partition while its batch fills; move on once it is full, or once the record
  // opened a new batch (see the header).
  auto& s = sticky_[topic];
  const bool new_batch = s.batch_id != 0 && batch.id != s.batch_id;
  if (batch.sealed || new_batch) {
    s.partition = (partition + 1) % count;
    s.batch_id = 0;
  } else {
    s.batch_id = batch.id;
  }
}

}  // namespace quorumq::client
