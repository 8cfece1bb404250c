#include "producer_state.h"

namespace quorumq::broker {

ProducerStateTable::Result ProducerStateTable::check_and_reserve(std::int64_t pid, std::int16_t epoch,
                                                                 std::int32_t base_seq, std::int32_t count) {
  auto it = producers_.find(pid);
  if (it == producers_.end()) {
    // Unknown producer: either new, or its state aged out of the log tail we keep. Accept its
    // sequence as the start of what we know.
    Entry e;
    e.epoch = epoch;
    e.next_seq = base_seq + count;
    e.durable_next_seq = base_seq;
    producers_.emplace(pid, e);
    return {};
  }
  Entry& e = it->second;
  if (epoch < e.epoch) return {SeqCheck::fenced, -1};
  if (epoch > e.epoch) {
    if (base_seq != 0) return {SeqCheck::out_of_order, -1};
    e = Entry{};
    e.epoch = epoch;
    e.next_seq = count;
    return {};
  }
  if (base_seq == e.next_seq) {
    e.next_seq += count;
    return {};
  }
  for (const auto& r : e.recent)
    if (r.first_seq == base_seq && r.last_seq == base_seq + count - 1) return {SeqCheck::duplicate, r.base_offset};
  if (base_seq < e.next_seq && base_seq >= e.durable_next_seq) return {SeqCheck::in_flight, -1};
  return {SeqCheck::out_of_order, -1};
}

void ProducerStateTable::on_durable(std::int64_t pid, std::int16_t epoch, std::int32_t base_seq, std::int32_t count,
                                    std::int64_t base_offset) {
  replay(pid, epoch, base_seq, count, base_offset);
}

void ProducerStateTable::on_failed(std::int64_t pid) {
  auto it = producers_.find(pid);
  if (it != producers_.end()) it->second.next_seq = it->second.durable_next_seq;
}

void ProducerStateTable::replay(std::int64_t pid, std::int16_t epoch, std::int32_t base_seq, std::int32_t count,
                                std::int64_t base_offset, std::uint64_t index) {
  Entry& e = producers_[pid];
  if (epoch > e.epoch) {
    e = Entry{};
    e.epoch = epoch;
  } else if (epoch < e.epoch) {
    return;
  }
  if (index > e.last_index) e.last_index = index;
  const std::int32_t end = base_seq + count;
  // The same batch can be replayed twice (leader tail at election, then at commit).
  for (const auto& r : e.recent)
    if (r.first_seq == base_seq && r.base_offset == base_offset) return;
  if (end > e.durable_next_seq) e.durable_next_seq = end;
  if (e.next_seq < e.durable_next_seq) e.next_seq = e.durable_next_seq;
  e.recent.push_back({base_seq, end - 1, base_offset});
  while (e.recent.size() > kRecentBatches) e.recent.pop_front();
}

std::vector<ProducerStateTable::Durable> ProducerStateTable::durable() const {
  std::vector<Durable> out;
  out.reserve(producers_.size());
  for (const auto& [pid, e] : producers_)
    out.push_back(Durable{pid, e.epoch, e.durable_next_seq, e.last_index, {e.recent.begin(), e.recent.end()}});
  return out;
}

void ProducerStateTable::restore(const Durable& d) {
  Entry e;
  e.epoch = d.epoch;
  e.next_seq = e.durable_next_seq = d.next_seq;
  e.last_index = d.last_index;
  const std::size_t skip = d.recent.size() > kRecentBatches ? d.recent.size() - kRecentBatches : 0;
  e.recent.assign(d.recent.begin() + static_cast<std::ptrdiff_t>(skip), d.recent.end());
  producers_[d.pid] = std::move(e);
}

void ProducerStateTable::expire_before(std::uint64_t index) {
  std::erase_if(producers_, [index](const auto& kv) { return kv.second.last_index < index; });
}

}  // namespace quorumq::broker
