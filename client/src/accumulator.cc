#include "accumulator.h"

#include <algorithm>

#include "quorumq/error.h"

namespace quorumq::client {

BatchPtr Accumulator::append(const TopicPartition& tp, std::optional<std::string_view> key, std::string_view value,
                             const Headers& headers, std::int64_t timestamp_ms, SendCallback cb,
                             AccClock::time_point now) {
  PartitionState& ps = parts_[tp];
  BatchPtr open;
  if (!ps.queue.empty() && !ps.queue.back()->sealed && ps.queue.back()->order < 0) open = ps.queue.back();
  const std::size_t rec = BatchBuilder::record_size(key ? key->size() : 0, value.size(), headers);
  if (open && open->builder.record_count() > 0 && open->builder.size_bytes() + rec > opt_.batch_bytes) {
    open->sealed = true;
    open.reset();
  }
  if (!open) {
    open = std::make_shared<ProducerBatch>();
    open->tp = tp;
    open->id = next_id_++;
    open->created = now;
    open->deadline = now + std::chrono::milliseconds(opt_.delivery_timeout_ms);
    ps.queue.push_back(open);
  }
  open->builder.add(key, value, timestamp_ms, headers);
  open->callbacks.push_back(std::move(cb));
  open->timestamps.push_back(timestamp_ms);
  open->size_bytes += rec;
  if (open->builder.size_bytes() >= opt_.batch_bytes) open->sealed = true;
  return open;
}

std::uint64_t Accumulator::open_batch_id(const TopicPartition& tp) const {
  auto it = parts_.find(tp);
  if (it == parts_.end() || it->second.queue.empty()) return 0;
  const auto& b = it->second.queue.back();
  return (!b->sealed && b->order < 0) ? b->id : 0;
}

bool Accumulator::ready_to_send(const PartitionState&, const BatchPtr& b, AccClock::time_point now,
                                bool flush) const {
  if (b->order >= 0) return b->retry_at <= now;
  return b->sealed || flush || now >= b->created + std::chrono::milliseconds(opt_.linger_ms);
}

std::map<std::int32_t, std::vector<BatchPtr>> Accumulator::drain(
    AccClock::time_point now, bool flush, const Identity& identity, std::size_t max_request_bytes,
    const std::function<std::int32_t(const TopicPartition&)>& leader,
    const std::function<bool(std::int32_t)>& node_has_room, std::vector<TopicPartition>* no_leader) {
  std::map<std::int32_t, std::vector<BatchPtr>> out;
  std::map<std::int32_t, std::size_t> bytes;
  std::map<std::int32_t, bool> room;
  for (auto& [tp, ps] : parts_) {
    if (ps.queue.empty()) continue;
    const BatchPtr& b = ps.queue.front();
    if (ps.recovering) {
      if (!ps.in_flight.empty()) continue;
      if (b->order < 0) ps.recovering = false;  // every failed batch was resent: pipeline again
    }
    if (!ps.recovering && ps.in_flight.size() >= opt_.max_in_flight_per_partition) continue;
    if (!ready_to_send(ps, b, now, flush)) continue;
    const std::int32_t node = leader(tp);
    if (node < 0) {
      if (no_leader) no_leader->push_back(tp);
      continue;
    }
    auto r = room.find(node);
    if (r == room.end()) r = room.emplace(node, node_has_room(node)).first;
    if (!r->second) continue;
    const std::size_t size = b->order >= 0 ? b->bytes.size() : b->builder.size_bytes();
    std::size_t& used = bytes[node];
    if (used > 0 && used + size > max_request_bytes) continue;
    used += size;

    BatchPtr batch = b;
    ps.queue.pop_front();
    if (batch->order < 0) {
      batch->sealed = true;
      batch->order = ps.next_order++;
      ProducerInfo info;
      if (opt_.idempotent && identity.producer_id >= 0) {
        batch->base_sequence = ps.next_sequence;
        ps.next_sequence += static_cast<std::int32_t>(batch->record_count());
        batch->producer_id = identity.producer_id;
        batch->producer_epoch = identity.producer_epoch;
        info = ProducerInfo{identity.producer_id, identity.producer_epoch, batch->base_sequence};
      }
      batch->bytes = batch->builder.finish(info);
    }
    ++batch->attempts;
    ps.in_flight.push_back(batch);
    out[node].push_back(std::move(batch));
  }
  return out;
}

AccClock::time_point Accumulator::next_ready_time(AccClock::time_point now) const {
  auto best = AccClock::time_point::max();
  for (const auto& [tp, ps] : parts_) {
    if (ps.queue.empty()) continue;
    if (ps.recovering && !ps.in_flight.empty()) continue;
    if (!ps.recovering && ps.in_flight.size() >= opt_.max_in_flight_per_partition) continue;
    const BatchPtr& b = ps.queue.front();
    const auto t = b->order >= 0 ? b->retry_at : b->created + std::chrono::milliseconds(opt_.linger_ms);
    if (t > now && t < best) best = t;
  }
  return best;
}

void Accumulator::remove_in_flight(PartitionState& ps, const BatchPtr& b) {
  auto it = std::find(ps.in_flight.begin(), ps.in_flight.end(), b);
  if (it != ps.in_flight.end()) ps.in_flight.erase(it);
}

void Accumulator::on_success(const BatchPtr& b) {
  auto it = parts_.find(b->tp);
  if (it == parts_.end()) return;
  remove_in_flight(it->second, b);
}

bool Accumulator::on_error(const BatchPtr& b, std::error_code ec, AccClock::time_point now) {
  auto it = parts_.find(b->tp);
  if (it == parts_.end()) return false;
  PartitionState& ps = it->second;
  remove_in_flight(ps, b);
  bool earlier_pending = false;
  bool later_numbered = false;
  for (const auto& o : ps.in_flight) {
    earlier_pending |= o->order < b->order;
    later_numbered |= o->order > b->order;
  }
  for (const auto& o : ps.queue) {
    if (o->order < 0) break;
    earlier_pending |= o->order < b->order;
    later_numbered |= o->order > b->order;
  }
  const bool out_of_order = ec == make_error_code(BrokerError::out_of_order_sequence);
  const bool retry = (is_retriable(ec) || (out_of_order && earlier_pending)) && now < b->deadline;
  if (!retry) {
    // Not written: if nothing after it was numbered yet, its sequence numbers are reused so
    // the partition's sequence has no gap.
    if (opt_.idempotent && b->base_sequence >= 0 && !later_numbered) ps.next_sequence = b->base_sequence;
    return false;
  }
  b->retry_at = out_of_order ? now : now + std::chrono::milliseconds(opt_.retry_backoff_ms);
  auto pos = ps.queue.begin();
  while (pos != ps.queue.end() && (*pos)->order >= 0 && (*pos)->order < b->order) ++pos;
  ps.queue.insert(pos, b);
  ps.recovering = true;
  return true;
}

std::vector<BatchPtr> Accumulator::expire(AccClock::time_point now) {
  std::vector<BatchPtr> out;
  for (auto& [tp, ps] : parts_) {
    for (auto it = ps.queue.begin(); it != ps.queue.end();) {
      if ((*it)->deadline <= now) {
        out.push_back(*it);
        it = ps.queue.erase(it);
      } else {
        ++it;
      }
    }
  }
  return out;
}

std::vector<BatchPtr> Accumulator::take_all_queued() {
  std::vector<BatchPtr> out;
  for (auto& [tp, ps] : parts_) {
    for (auto& b : ps.queue) out.push_back(b);
    ps.queue.clear();
  }
  return out;
}

std::size_t Accumulator::queued_batches() const {
  std::size_t n = 0;
  for (const auto& [tp, ps] : parts_) n += ps.queue.size();
  return n;
}

std::size_t Accumulator::in_flight_batches() const {
  std::size_t n = 0;
  for (const auto& [tp, ps] : parts_) n += ps.in_flight.size();
  return n;
}

bool Accumulator::in_recovery(const TopicPartition& tp) const {
  auto it = parts_.find(tp);
  return it != parts_.end() && it->second.recovering;
}

}  // namespace quorumq::client
