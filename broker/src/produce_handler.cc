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
  };
  std::mutex mu;
  std::vector<Slot> slots;
  std::size_t pending = 0;
  FrameHeader header;
  Respond respond;
  bool reply = true;
  Clock::time_point start = Clock::now();
  Metrics* metrics = nullptr;
  BrokerContext* ctx = nullptr;
  wire::Acks acks = wire::Acks::quorum;

  void finish() {
    const auto us = since_us(start);
    metrics->produce_latency.record_us(us);
    if (!reply) {
      respond(std::nullopt);
      return;
    }
    flatbuffers::FlatBufferBuilder fbb(256 + slots.size() * 64);
    std::vector<flatbuffers::Offset<ProduceTopicResponse>> topics;
    std::size_t i = 0;
    while (i < slots.size()) {
      const std::string& name = slots[i].topic;
      std::vector<flatbuffers::Offset<ProducePartitionResponse>> parts;
      for (; i < slots.size() && slots[i].topic == name; ++i) {
        const auto& r = slots[i].result;
        if (r.error != ErrorCode::none && r.error != ErrorCode::duplicate_sequence)
          metrics->produce_errors.fetch_add(1, std::memory_order_relaxed);
        parts.push_back(CreateProducePartitionResponse(fbb, slots[i].partition, r.error, r.base_offset, -1,
                                                       make_hint(fbb, *ctx, r.leader_hint),
                                                       r.message.empty() ? 0 : fbb.CreateString(r.message)));
      }
      topics.push_back(CreateProduceTopicResponse(fbb, fbb.CreateString(name), fbb.CreateVector(parts)));
    }
    auto root = CreateProduceResponse(fbb, ErrorCode::none, 0, fbb.CreateVector(topics));
    respond(finish_response(fbb, root, header));
  }
  void complete(std::size_t slot, ProduceResult r) {
    bool last;
    {
      std::lock_guard lk(mu);
      slots[slot].result = std::move(r);
      last = --pending == 0;
    }
    if (last) finish();
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
          res = {ErrorCode::broker_shutting_down, -1, "broker is shutting down; retry on the new leader"};
          continue;
        }
        if (auto ns = not_served(ctx, topic, name, pd->partition())) {
          res = {ns->code, -1, ns->message, ns->leader};
          continue;
        }
        Partition* p = find_partition(topic, pd->partition());
        const auto* rec = pd->records();
        if (!rec) {
          res = {ErrorCode::invalid_request, -1, "no records"};
          continue;
        }
        auto split = split_and_validate({rec->data(), rec->size()}, cfg(ctx).max_message_bytes);
        if (split.error != ErrorCode::none) {
          res = {split.error, -1, split.message};
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
  op->pending = work.size() + 1;  // +1: this function's own hold, released below
  for (auto& w : work)
    w.partition->produce(std::move(w.batches), op->acks,
                         [op, slot = w.slot, keep](ProduceResult r) { op->complete(slot, std::move(r)); });
  {
    std::lock_guard lk(op->mu);
    if (--op->pending != 0) return;
  }
  op->finish();
}


}  // namespace quorumq::broker::detail
