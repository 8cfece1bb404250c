#include "verifier.h"

namespace quorumq::bench {

Verifier::Verifier(std::uint32_t producers) : slots_(producers) {}

Verifier::Slot& Verifier::slot(std::uint32_t producer, std::uint64_t seq) {
  if (producer >= slots_.size()) slots_.resize(producer + 1);
  auto& v = slots_[producer];
  if (seq >= v.size()) v.resize(static_cast<std::size_t>(seq) + 1);
  return v[static_cast<std::size_t>(seq)];
}

void Verifier::on_acked(std::uint32_t producer, std::uint64_t seq, std::int32_t partition) {
  std::lock_guard lock(mu_);
  Slot& s = slot(producer, seq);
  if (s.acked_partition >= 0) return;  // a second completion would be an SDK bug, not ours to count
  s.acked_partition = partition;
  ++acked_;
  ++per_partition_[partition].first;
  if (s.times_consumed > 0) {
    // Consumed before the producer heard the acknowledgement: fine, the log had it.
    ++satisfied_;
    if (unacked_consumed_ > 0) --unacked_consumed_;
    if (s.consumed_partition != partition) ++reordered_;
  }
}

void Verifier::on_consumed(std::int32_t partition, std::uint32_t producer, std::uint64_t seq) {
  std::lock_guard lock(mu_);
  ++consumed_;
  Slot& s = slot(producer, seq);
  if (++s.times_consumed > 1) {
    ++duplicated_;
    return;  // a duplicate says nothing new about order
  }
  s.consumed_partition = partition;
  ++per_partition_[partition].second;
  if (s.acked_partition >= 0) {
    ++satisfied_;
    if (s.acked_partition != partition) ++reordered_;
  } else {
    ++unacked_consumed_;
  }
  std::uint64_t& next = next_seq_[{partition, producer}];
  if (seq < next) {
    ++reordered_;
  } else {
    next = seq + 1;
  }
}

std::uint64_t Verifier::outstanding() const {
  std::lock_guard lock(mu_);
  return acked_ - satisfied_;
}

std::uint64_t Verifier::consumed() const {
  std::lock_guard lock(mu_);
  return consumed_;
}

bool Verifier::behind(std::int32_t partition) const {
  std::lock_guard lock(mu_);
  auto it = per_partition_.find(partition);
  return it != per_partition_.end() && it->second.first > it->second.second;
}

VerifyResult Verifier::result() const {
  std::lock_guard lock(mu_);
  VerifyResult r;
  r.acked = acked_;
  r.consumed = consumed_;
  r.lost = acked_ - satisfied_;
  r.duplicated = duplicated_;
  r.reordered = reordered_;
  r.unacked_consumed = unacked_consumed_;
  r.per_partition = per_partition_;
  return r;
}

}  // namespace quorumq::bench
