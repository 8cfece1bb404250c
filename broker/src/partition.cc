#include "partition.h"

#include <spdlog/spdlog.h>

#include "quorumq/protocol/record_batch.h"

namespace quorumq::broker {

using wire::ErrorCode;

SplitResult split_and_validate(std::span<const std::uint8_t> records, std::uint32_t max_batch_bytes) {
  SplitResult r;
  std::size_t at = 0;
  while (at < records.size()) {
    const auto rest = records.subspan(at);
    if (rest.size() < kBatchHeaderSize) {
      r.error = ErrorCode::corrupt_message;
      r.message = "truncated record batch header at byte " + std::to_string(at);
      return r;
    }
    const std::uint32_t len = BatchView(rest).batch_length();
    if (len > max_batch_bytes) {
      r.error = ErrorCode::message_too_large;
      r.message = "record batch of " + std::to_string(len) + " bytes exceeds the broker's limit of " +
                  std::to_string(max_batch_bytes) + " (--max-message-bytes): send smaller batches";
      return r;
    }
    if (len < kBatchHeaderSize || len > rest.size()) {
      r.error = ErrorCode::corrupt_message;
      r.message = "record batch length " + std::to_string(len) + " does not fit the request";
      return r;
    }
    const BatchView v(rest.first(len));
    if (const BatchError e = v.validate(); e != BatchError::ok) {
      r.error = ErrorCode::corrupt_message;
      r.message = std::string("record batch ") + std::to_string(r.batches.size()) + ": " + to_string(e);
      return r;
    }
    if (v.type() != BatchType::data || v.record_count() == 0) {
      r.error = ErrorCode::invalid_request;
      r.message = "producers may only send data batches with at least one record";
      return r;
    }
    r.batches.push_back(rest.first(len));
    at += len;
  }
  if (r.batches.empty()) {
    r.error = ErrorCode::invalid_request;
    r.message = "produce request for a partition carries no record batch";
  }
  return r;
}

Partition::Partition(std::string topic, std::int32_t id, storage::Storage& storage, storage::PartitionLog* log,
                     Metrics& metrics)
    : topic_(std::move(topic)), id_(id), storage_(storage), log_(log), metrics_(metrics) {
  // One node: everything durable in the log is committed.
  hw_.store(log_->state().next_offset);
  rebuild_producer_state();
}

Partition::~Partition() { close(); }

void Partition::rebuild_producer_state() {
  // The producer table is derived from the batch headers of the log's tail: a producer silent
  // for longer than this window is forgotten (as Kafka expires producer ids).
  constexpr std::uint64_t kTailEntries = 20000;
  const auto st = log_->state();
  if (st.empty()) return;
  std::uint64_t lo = st.last_index.value >= kTailEntries ? st.last_index.value - kTailEntries + 1 : 1;
  lo = std::max(lo, st.first_index.value);
  while (lo <= st.last_index.value) {
    auto chunk = log_->entries(log_index{lo}, st.last_index, 8u << 20);
    if (!chunk || chunk->empty()) {
      spdlog::warn("partition {}/{}: could not read the log tail to rebuild producer state: {}", topic_, id_,
                   chunk ? "empty read" : chunk.error().message);
      return;
    }
    for (const auto& e : *chunk) {
      const BatchView v(e.batch);
      if (v.type() == BatchType::data && v.producer_id() >= 0)
        producers_.replay(v.producer_id(), v.producer_epoch(), v.base_sequence(),
                          static_cast<std::int32_t>(v.record_count()), v.base_offset());
    }
    lo = chunk->back().index.value + 1;
  }
}

void Partition::produce(std::vector<std::vector<std::uint8_t>> batches, ProduceCallback done) {
  if (closed_.load()) {
    done({ErrorCode::unknown_topic_or_partition, -1, "partition " + topic_ + "/" + std::to_string(id_) + " was deleted"});
    return;
  }
  struct Idem {
    std::int64_t pid;
    std::int16_t epoch;
    std::int32_t seq;
    std::int32_t count;
  };
  std::vector<Idem> idem;
  {
    std::lock_guard lk(mu_);
    for (const auto& b : batches) {
      const BatchView v(b);
      const Idem i{v.producer_id(), v.producer_epoch(), v.base_sequence(), static_cast<std::int32_t>(v.record_count())};
      if (i.pid < 0) {
        idem.push_back(i);  // not idempotent: kept only to compute offsets below
        continue;
      }
      const auto r = producers_.check_and_reserve(i.pid, i.epoch, i.seq, i.count);
      switch (r.check) {
        case SeqCheck::accept: idem.push_back(i); continue;
        case SeqCheck::duplicate:
          // Requests carry one batch per partition from our SDK; a duplicate is answered whole.
          for (const auto& d : idem) if (d.pid >= 0) producers_.on_failed(d.pid);
          metrics_.produce_duplicates.fetch_add(1, std::memory_order_relaxed);
          done({ErrorCode::duplicate_sequence, r.duplicate_offset, "batch already written"});
          return;
        case SeqCheck::in_flight:
          for (const auto& d : idem) if (d.pid >= 0) producers_.on_failed(d.pid);
          done({ErrorCode::request_timed_out, -1, "an earlier copy of this batch is still being written; retry"});
          return;
        case SeqCheck::out_of_order:
          for (const auto& d : idem) if (d.pid >= 0) producers_.on_failed(d.pid);
          done({ErrorCode::out_of_order_sequence, -1,
                "producer " + std::to_string(i.pid) + " sent sequence " + std::to_string(i.seq) +
                    " out of order; the producer must reset (new producer id)"});
          return;
        case SeqCheck::fenced:
          for (const auto& d : idem) if (d.pid >= 0) producers_.on_failed(d.pid);
          done({ErrorCode::invalid_producer_epoch, -1, "a newer instance of this producer exists (epoch fenced)"});
          return;
      }
    }
  }
  storage::AppendOp op{log_, std::move(batches), term_t{0}};
  std::vector<storage::WriteOp> ops;
  ops.emplace_back(std::move(op));
  storage_.submit(std::move(ops), [this, self = shared_from_this(), idem = std::move(idem), done = std::move(done)](
                                      std::expected<storage::WriteResult, storage::Error> r) mutable {
    if (!r) {
      {
        std::lock_guard lk(mu_);
        for (const auto& d : idem) if (d.pid >= 0) producers_.on_failed(d.pid);
      }
      const ErrorCode code = r.error().code == storage::errc::disk_full ? ErrorCode::disk_full : ErrorCode::storage_error;
      spdlog::error("partition {}/{}: append failed: {}", topic_, id_, r.error().message);
      done({code, -1, r.error().message});
      return;
    }
    const auto& a = r->appends.front();
    {
      std::lock_guard lk(mu_);
      // Offsets of each idempotent batch, in order: batch k starts where k-1 ended.
      std::int64_t off = a.base_offset;
      for (const auto& d : idem) {
        if (d.pid >= 0) producers_.on_durable(d.pid, d.epoch, d.seq, d.count, off);
        off += d.count;
      }
      std::int64_t cur = hw_.load();
      while (cur < a.next_offset && !hw_.compare_exchange_weak(cur, a.next_offset)) {
      }
    }
    wake_all();
    done({ErrorCode::none, a.base_offset, {}});
  });
}

std::uint64_t Partition::add_waiter(std::function<void()> wake) {
  std::lock_guard lk(mu_);
  const auto id = next_waiter_++;
  waiters_.emplace(id, std::move(wake));
  return id;
}

void Partition::remove_waiter(std::uint64_t id) {
  std::lock_guard lk(mu_);
  waiters_.erase(id);
}

void Partition::wake_all() {
  std::map<std::uint64_t, std::function<void()>> w;
  {
    std::lock_guard lk(mu_);
    w.swap(waiters_);
  }
  for (auto& [_, f] : w) f();
}

void Partition::close() {
  closed_.store(true);
  wake_all();
}

}  // namespace quorumq::broker
