#include "accumulator.h"

#include <algorithm>

#include "quorumq/error.h"

namespace quorumq::client {

namespace {

struct OwnedRecord {
  std::optional<std::string> key, value;
  std::int64_t timestamp_ms = 0;
  Headers headers;
};

std::vector<OwnedRecord> records_of(const std::vector<std::uint8_t>& bytes) {
  std::vector<OwnedRecord> out;
  BatchView(bytes).for_each_record([&](const RecordView& r) {
    OwnedRecord o;
    if (r.key) o.key = std::string(*r.key);
    if (r.value) o.value = std::string(*r.value);
    o.timestamp_ms = r.timestamp_ms;
    r.for_each_header([&](std::string_view k, std::string_view v) { o.headers.emplace_back(k, v); });
    out.push_back(std::move(o));
  });
  return out;
}

std::size_t size_of(const OwnedRecord& r) {
  return BatchBuilder::record_size(r.key ? r.key->size() : 0, r.value ? r.value->size() : 0, r.headers);
}

}  // namespace

// Records [first, first + count) of a finished batch, as a new batch finished with `info`.
std::vector<std::uint8_t> rebuild_batch(const std::vector<std::uint8_t>& bytes, std::uint32_t first,
                                        std::uint32_t count, const ProducerInfo& info) {
  const auto recs = records_of(bytes);
  BatchBuilder b;
  for (std::uint32_t i = first; i < first + count && i < recs.size(); ++i) {
    const auto& r = recs[i];
    std::optional<std::string_view> k, v;
    if (r.key) k = *r.key;
    if (r.value) v = *r.value;
    b.add(k, v, r.timestamp_ms, r.headers);
  }
  return b.finish(info);
}

BatchPtr Accumulator::append(const TopicPartition& tp, std::optional<std::string_view> key, std::string_view value,
                             const Headers& headers, std::int64_t timestamp_ms, SendCallback cb,
                             AccClock::time_point now) {
  PartitionState& ps = parts_[tp];
  BatchPtr open;
  if (!ps.queue.empty() && !ps.queue.back()->sealed && ps.queue.back()->order < 0) open = ps.queue.back();
  const std::size_t rec = BatchBuilder::record_size(key ? key->size() : 0, value.size(), headers);
  const std::size_t limit = batch_bytes_for(tp.topic);
  if (open && open->builder.record_count() > 0 && open->builder.size_bytes() + rec > limit) {
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
  if (open->builder.size_bytes() >= limit) open->sealed = true;
  return open;
}

void Accumulator::limit_batch_bytes(const std::string& topic, std::size_t bytes) {
  auto [it, added] = topic_batch_bytes_.try_emplace(topic, bytes);
  if (!added) it->second = std::min(it->second, bytes);
}

std::size_t Accumulator::batch_bytes_for(const std::string& topic) const {
  auto it = topic_batch_bytes_.find(topic);
  return it == topic_batch_bytes_.end() ? opt_.batch_bytes : std::min(opt_.batch_bytes, it->second);
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
      batch->order = ps.next_order;
      ps.next_order += std::int64_t{1} << 32;
      ProducerInfo info;
      if (opt_.idempotent && identity.producer_id >= 0) {
        if (ps.sequence_pid != identity.producer_id) {
          ps.sequence_pid = identity.producer_id;
          ps.next_sequence = 0;
        }
        batch->base_sequence = ps.next_sequence;
        ps.next_sequence += static_cast<std::int32_t>(batch->record_count());
        batch->producer_id = identity.producer_id;
        batch->producer_epoch = identity.producer_epoch;
        info = ProducerInfo{identity.producer_id, identity.producer_epoch, batch->base_sequence};
      }
      batch->bytes = batch->builder.finish(info);
    } else if (batch->resequenced) {
      batch->bytes = rebuild_batch(batch->bytes, 0, batch->record_count(),
                                   ProducerInfo{batch->producer_id, batch->producer_epoch, batch->base_sequence});
      batch->resequenced = false;
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
  // A resequenced batch was sent with its old numbers, after the gap: the broker refuses it
  // as out of order; resent with the new numbers it fits.
  const bool retry =
      (is_retriable(ec) || (out_of_order && (earlier_pending || b->resequenced))) && now < b->deadline;
  if (!retry) {
    // Not written: if nothing after it was numbered yet, its sequence numbers are reused so
    // the partition's sequence has no gap.
    if (opt_.idempotent && b->base_sequence >= 0 && !later_numbered && b->producer_id == ps.sequence_pid)
      ps.next_sequence = b->base_sequence;
    return false;
  }
  b->retry_at = out_of_order ? now : now + std::chrono::milliseconds(opt_.retry_backoff_ms);
  requeue(ps, b);
  return true;
}

void Accumulator::requeue(PartitionState& ps, const BatchPtr& b) {
  auto pos = ps.queue.begin();
  while (pos != ps.queue.end() && (*pos)->order >= 0 && (*pos)->order < b->order) ++pos;
  ps.queue.insert(pos, b);
  ps.recovering = true;
}

void Accumulator::close_sequence_gap(PartitionState& ps, const BatchPtr& b) {
  if (!opt_.idempotent || b->base_sequence < 0) return;
  const auto n = static_cast<std::int32_t>(b->record_count());
  bool later = false;
  auto shift = [&](const BatchPtr& o) {
    if (o->order <= b->order || o->base_sequence < 0 || o->producer_id != b->producer_id) return;
    o->base_sequence -= n;
    o->resequenced = true;
    later = true;
  };
  for (const auto& o : ps.in_flight) shift(o);
  for (const auto& o : ps.queue) shift(o);
  if (b->producer_id == ps.sequence_pid) ps.next_sequence -= n;
  // Batches in flight with their old numbers come back out_of_order_sequence: wait for them,
  // then resend in order.
  if (later) ps.recovering = true;
}

bool Accumulator::on_too_large(const BatchPtr& b, AccClock::time_point now) {
  auto it = parts_.find(b->tp);
  if (it == parts_.end()) return false;
  PartitionState& ps = it->second;
  remove_in_flight(ps, b);
  const std::uint32_t n = b->record_count();
  if (n < 2 || now >= b->deadline) {
    close_sequence_gap(ps, b);
    return false;
  }
  const std::uint32_t k = n / 2;
  const auto recs = records_of(b->bytes);
  auto half = [&](std::uint32_t first, std::uint32_t count) {
    auto h = std::make_shared<ProducerBatch>();
    h->tp = b->tp;
    h->id = next_id_++;
    h->created = b->created;
    h->deadline = b->deadline;
    h->retry_at = now;
    h->order = b->order + first;
    h->producer_id = b->producer_id;
    h->producer_epoch = b->producer_epoch;
    h->base_sequence = b->base_sequence >= 0 ? b->base_sequence + static_cast<std::int32_t>(first) : -1;
    h->attempts = b->attempts;
    h->sealed = true;
    h->bytes = rebuild_batch(b->bytes, first, count,
                             h->base_sequence >= 0 ? ProducerInfo{h->producer_id, h->producer_epoch, h->base_sequence}
                                                   : ProducerInfo{});
    for (std::uint32_t i = first; i < first + count; ++i) {
      h->callbacks.push_back(std::move(b->callbacks[i]));
      h->timestamps.push_back(b->timestamps[i]);
      if (i < recs.size()) h->size_bytes += size_of(recs[i]);
    }
    return h;
  };
  auto a = half(0, k);
  auto c = half(k, n - k);
  // Buffer accounting stays exact whatever the record sizes were counted as.
  c->size_bytes = b->size_bytes >= a->size_bytes ? b->size_bytes - a->size_bytes : 0;
  b->callbacks.clear();
  b->size_bytes = 0;
  requeue(ps, c);
  requeue(ps, a);
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
