// Fetch: read whole batches below each partition's high watermark; long-poll with one-shot
// waiters and a timer when nothing is there yet.
#include <spdlog/spdlog.h>

#include <mutex>

#include "handler_util.h"
#include "quorumq/protocol/record_batch.h"

namespace quorumq::broker::detail {
namespace {
// ------------------------------------------------------------------------------------ fetch
struct FetchItem {
  std::string topic_name;
  std::shared_ptr<const Topic> topic;
  std::int32_t partition;
  std::int64_t offset;
  std::int32_t max_bytes;
};

// A long poll waits for data ARRIVING, never spins: each arm() records the high watermark of
// every partition and registers one-shot waiters, which fire only when a high watermark moves
// (or the partition closes). A wake with too little new data re-arms at the new watermarks, so
// the cost is one check per commit, however long the poll.
class FetchOp : public std::enable_shared_from_this<FetchOp> {
 public:
  FetchOp(BrokerContext& ctx, FrameHeader h, Respond r, std::vector<FetchItem> items, std::int32_t min_bytes,
          std::int32_t max_bytes, std::int32_t max_wait_ms)
      : ctx_(ctx), header_(h), respond_(std::move(r)), items_(std::move(items)), min_bytes_(min_bytes),
        max_bytes_(max_bytes), max_wait_ms_(max_wait_ms), seen_hw_(items_.size(), -1) {}

  void start() {
    if (max_wait_ms_ <= 0 || ready_to_answer()) return finish();
    auto self = shared_from_this();
    {
      std::lock_guard lk(mu_);
      timer_ = ctx_.exec.run_after(std::chrono::milliseconds(max_wait_ms_), [self](bool) { self->finish(); });
    }
    arm();
  }

 private:
  // Something to answer now rather than wait for: an error to report (unknown, moved or
  // closed partition, offset out of range) ...
  bool has_error() const {
    for (const auto& it : items_) {
      Partition* p = find_partition(it.topic, it.partition);
      if (!p || p->closed() || !p->serving() || it.offset > p->log_end_offset() || it.offset < p->log_start_offset())
        return true;
    }
    return false;
  }
  // ... or enough committed data (min_bytes <= 1: any).
  bool ready_to_answer() const { return has_error() || pending_bytes() >= std::max(min_bytes_, 1); }

  // Registers one-shot waiters after recording each high watermark, then checks whether one
  // moved in between, so a commit between the check and the registration is not lost.
  void arm() {
    auto self = shared_from_this();
    bool moved = false;
    {
      std::lock_guard lk(mu_);
      if (done_) return;
      for (std::size_t i = 0; i < items_.size(); ++i) {
        Partition* p = find_partition(items_[i].topic, items_[i].partition);
        seen_hw_[i] = p ? p->high_watermark() : -1;
      }
      for (const auto& it : items_) {
        Partition* p = find_partition(it.topic, it.partition);
        if (!p) continue;
        const auto id = p->add_waiter([self] { self->ctx_.exec.post([self] { self->on_wake(); }); });
        waiters_.emplace_back(p, id);
      }
      for (std::size_t i = 0; i < items_.size() && !moved; ++i) {
        Partition* p = find_partition(items_[i].topic, items_[i].partition);
        moved = p && (p->closed() || p->high_watermark() != seen_hw_[i]);
      }
    }
    if (moved) ctx_.exec.post([self] { self->on_wake(); });
  }

  void on_wake() {
    {
      std::lock_guard lk(mu_);
      if (done_) return;
      for (auto& [p, id] : waiters_) p->remove_waiter(id);
      waiters_.clear();
    }
    ctx_.metrics.fetch_wakeups.fetch_add(1, std::memory_order_relaxed);
    if (ready_to_answer()) return finish();
    arm();
  }

  std::int64_t pending_bytes() const {
    // Approximation for min_bytes: offsets available, weighted by a nominal record size.
    std::int64_t n = 0;
    for (const auto& it : items_)
      if (Partition* p = find_partition(it.topic, it.partition)) n += std::max<std::int64_t>(0, p->high_watermark() - it.offset) * 64;
    return n;
  }

  void finish() {
    std::shared_ptr<TimerHandle> timer;
    {
      std::lock_guard lk(mu_);
      if (done_) return;
      done_ = true;
      for (auto& [p, id] : waiters_) p->remove_waiter(id);
      waiters_.clear();
      timer = std::move(timer_);
    }
    if (timer) timer->cancel();
    respond_(build());
    ctx_.metrics.fetch_latency.record_us(since_us(start_));
  }

  protocol::OutgoingFrame build() {
    flatbuffers::FlatBufferBuilder fbb(1024);
    std::vector<flatbuffers::Offset<FetchTopicResponse>> topics;
    std::int64_t budget = max_bytes_;
    std::size_t i = 0;
    while (i < items_.size()) {
      const std::string& name = items_[i].topic_name;
      std::vector<flatbuffers::Offset<FetchPartitionResponse>> parts;
      for (; i < items_.size() && items_[i].topic_name == name; ++i) {
        const auto& it = items_[i];
        if (auto ns = not_served(ctx_, it.topic, name, it.partition)) {
          ctx_.metrics.fetch_errors.fetch_add(1, std::memory_order_relaxed);
          parts.push_back(CreateFetchPartitionResponse(fbb, it.partition, ns->code, -1, -1, 0,
                                                       make_hint(fbb, ctx_, ns->leader_hint)));
          continue;
        }
        Partition* p = find_partition(it.topic, it.partition);
        const std::int64_t hw = p->high_watermark();
        const std::int64_t lso = p->log_start_offset();
        // Between the high watermark and the log end: not committed yet (e.g. a new leader
        // still committing its predecessor's tail): nothing to serve, not an error.
        if (it.offset < lso || it.offset > std::max(hw, p->log_end_offset())) {
          ctx_.metrics.fetch_errors.fetch_add(1, std::memory_order_relaxed);
          parts.push_back(CreateFetchPartitionResponse(fbb, it.partition, ErrorCode::offset_out_of_range, hw, lso));
          continue;
        }
        flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> records = 0;
        if (budget > 0 && it.offset < hw) {
          const std::size_t limit = static_cast<std::size_t>(std::min<std::int64_t>(budget, std::max(it.max_bytes, 1)));
          auto r = p->log()->read(offset_t{it.offset}, limit, offset_t{hw});
          if (!r) {
            ctx_.metrics.fetch_errors.fetch_add(1, std::memory_order_relaxed);
            spdlog::error("fetch {}/{} at {}: {}", name, it.partition, it.offset, r.error().message);
            const ErrorCode code = r.error().code == storage::errc::out_of_range ? ErrorCode::offset_out_of_range
                                                                                 : ErrorCode::corrupt_message;
            parts.push_back(CreateFetchPartitionResponse(fbb, it.partition, code, hw, lso));
            continue;
          }
          budget -= static_cast<std::int64_t>(r->bytes.size());
          ctx_.metrics.fetch_bytes.fetch_add(r->bytes.size(), std::memory_order_relaxed);
          records = fbb.CreateVector(r->bytes);
        }
        parts.push_back(CreateFetchPartitionResponse(fbb, it.partition, ErrorCode::none, hw, lso, records));
      }
      topics.push_back(CreateFetchTopicResponse(fbb, fbb.CreateString(name), fbb.CreateVector(parts)));
    }
    auto root = CreateFetchResponse(fbb, ErrorCode::none, 0, fbb.CreateVector(topics));
    return finish_response(fbb, root, header_);
  }

  BrokerContext& ctx_;
  const FrameHeader header_;
  Respond respond_;
  const std::vector<FetchItem> items_;
  const std::int32_t min_bytes_, max_bytes_, max_wait_ms_;
  const Clock::time_point start_ = Clock::now();
  std::mutex mu_;
  bool done_ = false;
  std::shared_ptr<TimerHandle> timer_;
  std::vector<std::pair<Partition*, std::uint64_t>> waiters_;
  std::vector<std::int64_t> seen_hw_;  // per item: the high watermark when last armed (under mu_)
};

}  // namespace

void handle_fetch(BrokerContext& ctx, const FrameHeader& h, const FetchRequest* req, Respond respond) {
  ctx.metrics.fetch_requests.fetch_add(1, std::memory_order_relaxed);
  if (auto why = check_partitions(ctx, req->topics(), /*unique=*/true, [](const FetchTopic* t, auto&& f) {
        if (t->partitions())
          for (const auto* p : *t->partitions()) f(p->partition());
      })) {
    ctx.metrics.fetch_errors.fetch_add(1, std::memory_order_relaxed);
    return respond(protocol::make_error_response(h, ErrorCode::invalid_request, *why));
  }
  std::vector<FetchItem> items;
  if (req->topics())
    for (const auto* t : *req->topics()) {
      const std::string name = str(t->name());
      auto topic = ctx.topics.find(name);
      if (t->partitions())
        for (const auto* p : *t->partitions())
          items.push_back({name, topic, p->partition(), p->fetch_offset(), std::max(p->partition_max_bytes(), 1)});
    }
  const std::int32_t max_wait = std::clamp(req->max_wait_ms(), 0, 60000);
  const std::int32_t max_bytes = std::clamp(req->max_bytes(), 1, cfg(ctx).max_fetch_bytes);
  auto op = std::make_shared<FetchOp>(ctx, h, std::move(respond), std::move(items), req->min_bytes(), max_bytes,
                                      max_wait);
  op->start();
}

}  // namespace quorumq::broker::detail
