// Produce: split and check batches, hand them to each partition's leader, answer when every
// partition answered (acks=none: release the request without an answer).
#include <spdlog/spdlog.h>

#include <mutex>

#include "handler_util.h"
#include "quorumq/protocol/record_batch.h"

namespace quorumq::broker::detail {
namespace {
// ---------------------------------------------------------------------------------- produce
struct ProduceOp {
  struct Slot {
    std::string topic;
    std::int32_t partition = 0;
    ProduceResult result;
    bool done = false;
  };
  std::mutex mu;
  std::vector<Slot> slots;
  std::size_t pending = 0;
  bool answered = false;
  FrameHeader header;
  Respond respond;
  bool reply = true;
  Clock::time_point start = Clock::now();
  Metrics* metrics = nullptr;
  BrokerContext* ctx = nullptr;
  wire::Acks acks = wire::Acks::quorum;
  std::shared_ptr<TimerHandle> timer;

  // Answers once: when every slot is done, or when the request's timeout_ms ran out (then the
  // slots still waiting say why; their batches may still commit, and an idempotent retry of
  // them is recognised as a duplicate).
  void finish_locked(std::unique_lock<std::mutex>& lk) {
    if (answered) return;
    answered = true;
    auto t = std::move(timer);
    auto r = std::move(respond);
    lk.unlock();
    if (t) t->cancel();
    const auto us = since_us(start);
    metrics->produce_latency.record_us(us);
    if (!reply) {
      r(std::nullopt);
      return;
    }
    flatbuffers::FlatBufferBuilder fbb(256 + slots.size() * 64);
    std::vector<flatbuffers::Offset<ProduceTopicResponse>> topics;
    std::size_t i = 0;
    while (i < slots.size()) {
      const std::string& name = slots[i].topic;
      std::vector<flatbuffers::Offset<ProducePartitionResponse>> parts;
      for (; i < slots.size() && slots[i].topic == name; ++i) {
        const auto& res = slots[i].result;
        if (!res.status.ok() && res.status.code != ErrorCode::duplicate_sequence)
          metrics->produce_errors.fetch_add(1, std::memory_order_relaxed);
        parts.push_back(CreateProducePartitionResponse(fbb, slots[i].partition, res.status.code, res.base_offset, -1,
                                                       make_hint(fbb, *ctx, res.status.leader_hint),
                                                       res.status.message.empty() ? 0 : fbb.CreateString(res.status.message)));
      }
      topics.push_back(CreateProduceTopicResponse(fbb, fbb.CreateString(name), fbb.CreateVector(parts)));
    }
    auto root = CreateProduceResponse(fbb, ErrorCode::none, 0, fbb.CreateVector(topics));
    r(finish_response(fbb, root, header));
  }
  void complete(std::size_t slot, ProduceResult r) {
    std::unique_lock lk(mu);
    if (answered) return;  // timed out already: the client was told
    slots[slot].result = std::move(r);
    slots[slot].done = true;
    if (--pending == 0) finish_locked(lk);
  }
  void expire() {
    std::unique_lock lk(mu);
    if (answered) return;
    const bool full = ctx->storage.disk_full();
    for (auto& sl : slots) {
      if (sl.done) continue;
      metrics->produce_timeouts.fetch_add(1, std::memory_order_relaxed);
      if (full)
        sl.result = {{ErrorCode::disk_full,
                     "broker " + std::to_string(ctx->config.node_id) +
                         ": the disk holding the data directory is full, so the batch could not be made durable in "
                         "time; free space (the broker resumes by itself) and retry"}, -1};
      else
        sl.result = {{ErrorCode::request_timed_out,
                     "not acknowledged by a quorum within the request's timeout_ms (a replica may be down, slow or "
                     "out of disk); the batch may still be written: retry (idempotent producers are deduplicated)"}, -1};
    }
    finish_locked(lk);
  }
};

}  // namespace

void handle_produce(BrokerContext& ctx, const FrameHeader& h, const ProduceRequest* req, Respond respond) {
  ctx.metrics.produce_requests.fetch_add(1, std::memory_order_relaxed);
  auto op = std::make_shared<ProduceOp>();
  op->header = h;
  op->respond = std::move(respond);
  op->reply = req->acks() != Acks::none;
  op->metrics = &ctx.metrics;
  op->ctx = &ctx;
  op->acks = req->acks();
  if (auto why = check_partitions(ctx, req->topics(), /*unique=*/true, [](const ProduceTopicData* t, auto&& f) {
        if (t->partitions())
          for (const auto* p : *t->partitions()) f(p->partition());
      })) {
    if (!op->reply) return op->respond(std::nullopt);
    return op->respond(protocol::make_error_response(h, ErrorCode::invalid_request, *why));
  }
  const bool disk_full = ctx.storage.disk_full();
  struct Work {
    std::size_t slot;
    Partition* partition;
    std::vector<std::vector<std::uint8_t>> batches;
  };
  std::vector<Work> work;
  std::vector<std::shared_ptr<const Topic>> keep;  // topics stay alive while their appends run
  if (req->topics()) {
    for (const auto* t : *req->topics()) {
      const std::string name = str(t->name());
      auto topic = ctx.topics.find(name);
      keep.push_back(topic);
      if (!t->partitions()) continue;
      for (const auto* pd : *t->partitions()) {
        const std::size_t slot = op->slots.size();
        op->slots.push_back({name, pd->partition(), {}});
        ProduceResult& res = op->slots.back().result;
        if (ctx.shutting_down.load()) {
          res = {{ErrorCode::broker_shutting_down, "broker is shutting down; retry on the new leader"}, -1};
          continue;
        }
        if (auto ns = not_served(ctx, topic, name, pd->partition())) {
          res = {*ns, -1};
          continue;
        }
        if (disk_full) {
          // Nothing can be made durable here; say so at once instead of waiting out the timeout.
          res = {{ErrorCode::disk_full,
                 "broker " + std::to_string(ctx.config.node_id) +
                     ": the disk holding the data directory is full; nothing was written; free space (the broker "
                     "resumes by itself) and retry"}, -1};
          continue;
        }
        Partition* p = find_partition(topic, pd->partition());
        const auto* rec = pd->records();
        if (!rec) {
          res = {{ErrorCode::invalid_request, "no records"}, -1};
          continue;
        }
        auto split = split_and_validate({rec->data(), rec->size()}, max_batch_bytes(ctx, topic.get()));
        if (!split.status.ok()) {
          res = {std::move(split.status), -1};
          continue;
        }
        Work w{slot, p, {}};
        std::size_t records = 0;
        for (const auto& b : split.batches) {
          w.batches.emplace_back(b.begin(), b.end());  // the one copy out of the socket buffer
          records += BatchView(b).record_count();
          ctx.metrics.produce_bytes.fetch_add(b.size(), std::memory_order_relaxed);
        }
        ctx.metrics.produce_records.fetch_add(records, std::memory_order_relaxed);
        work.push_back(std::move(w));
      }
    }
  }
  for (auto& sl : op->slots) sl.done = true;
  for (auto& w : work) op->slots[w.slot].done = false;
  op->pending = work.size() + 1;  // +1: this function's own hold, released below
  if (op->reply && !work.empty()) {
    // timeout_ms bounds how long the producer waits for its answer (Kafka's request timeout).
    const int timeout_ms = req->timeout_ms() > 0 ? std::min(req->timeout_ms(), 600000) : 30000;
    auto timer = ctx.exec.run_after(std::chrono::milliseconds(timeout_ms), [op](bool cancelled) {
      if (!cancelled) op->expire();
    });
    std::lock_guard lk(op->mu);
    if (!op->answered) op->timer = std::move(timer);
  }
  for (auto& w : work)
    w.partition->produce(std::move(w.batches), op->acks,
                         [op, slot = w.slot, keep](ProduceResult r) { op->complete(slot, std::move(r)); });
  std::unique_lock lk(op->mu);
  if (op->answered || --op->pending != 0) return;
  op->finish_locked(lk);
}


}  // namespace quorumq::broker::detail
