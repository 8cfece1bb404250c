#include "handlers.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <mutex>

#include "quorumq/protocol/errors.h"
#include "quorumq/protocol/record_batch.h"

namespace quorumq::broker {

using namespace quorumq::wire;
using protocol::ApiId;
using protocol::finish_response;
using protocol::FrameHeader;
using Clock = std::chrono::steady_clock;

namespace {

std::string str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

std::uint64_t since_us(Clock::time_point t0) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
}

Partition* find_partition(const std::shared_ptr<const Topic>& t, std::int32_t p) {
  if (!t || p < 0 || p >= static_cast<std::int32_t>(t->partitions.size())) return nullptr;
  return t->partitions[static_cast<std::size_t>(p)].get();
}

const BrokerConfig& cfg(BrokerContext& c) { return c.config; }

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
        parts.push_back(CreateProducePartitionResponse(fbb, slots[i].partition, r.error, r.base_offset, -1, 0,
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

void handle_produce(BrokerContext& ctx, const FrameHeader& h, const ProduceRequest* req, Respond respond) {
  ctx.metrics.produce_requests.fetch_add(1, std::memory_order_relaxed);
  auto op = std::make_shared<ProduceOp>();
  op->header = h;
  op->respond = std::move(respond);
  op->reply = req->acks() != Acks::none;
  op->metrics = &ctx.metrics;
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
        Partition* p = find_partition(topic, pd->partition());
        if (!p) {
          res = {ErrorCode::unknown_topic_or_partition, -1,
                 "topic " + name + " partition " + std::to_string(pd->partition()) +
                     " does not exist: create it (quorumq topic create) or check the name"};
          continue;
        }
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
    w.partition->produce(std::move(w.batches), [op, slot = w.slot, keep](ProduceResult r) { op->complete(slot, std::move(r)); });
  {
    std::lock_guard lk(op->mu);
    if (--op->pending != 0) return;
  }
  op->finish();
}

// ------------------------------------------------------------------------------------ fetch
struct FetchItem {
  std::string topic_name;
  std::shared_ptr<const Topic> topic;
  std::int32_t partition;
  std::int64_t offset;
  std::int32_t max_bytes;
};

class FetchOp : public std::enable_shared_from_this<FetchOp> {
 public:
  FetchOp(BrokerContext& ctx, FrameHeader h, Respond r, std::vector<FetchItem> items, std::int32_t min_bytes,
          std::int32_t max_bytes, std::int32_t max_wait_ms)
      : ctx_(ctx), header_(h), respond_(std::move(r)), items_(std::move(items)), min_bytes_(min_bytes),
        max_bytes_(max_bytes), max_wait_ms_(max_wait_ms) {}

  void start() {
    if (max_wait_ms_ <= 0 || available()) return finish();
    auto self = shared_from_this();
    {
      std::lock_guard lk(mu_);
      timer_ = ctx_.exec.run_after(std::chrono::milliseconds(max_wait_ms_), [self](bool) { self->finish(); });
    }
    arm();
  }

 private:
  // Cheap: is there anything past some fetch offset (or an error to report)?
  bool available() const {
    for (const auto& it : items_) {
      Partition* p = find_partition(it.topic, it.partition);
      if (!p || p->closed() || p->high_watermark() > it.offset || it.offset > p->high_watermark()) return true;
    }
    return false;
  }

  // Registers one-shot waiters, then re-checks so a wake between check and registration is
  // not lost.
  void arm() {
    auto self = shared_from_this();
    {
      std::lock_guard lk(mu_);
      if (done_) return;
      for (const auto& it : items_) {
        Partition* p = find_partition(it.topic, it.partition);
        if (!p) continue;
        const auto id = p->add_waiter([self] { self->ctx_.exec.post([self] { self->on_wake(); }); });
        waiters_.emplace_back(p, id);
      }
    }
    if (available()) ctx_.exec.post([self] { self->on_wake(); });
  }

  void on_wake() {
    {
      std::lock_guard lk(mu_);
      if (done_) return;
      for (auto& [p, id] : waiters_) p->remove_waiter(id);
      waiters_.clear();
    }
    if (min_bytes_ <= 1 || pending_bytes() >= min_bytes_) return finish();
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
        Partition* p = find_partition(it.topic, it.partition);
        if (!p || p->closed()) {
          ctx_.metrics.fetch_errors.fetch_add(1, std::memory_order_relaxed);
          parts.push_back(CreateFetchPartitionResponse(fbb, it.partition, ErrorCode::unknown_topic_or_partition));
          continue;
        }
        const std::int64_t hw = p->high_watermark();
        const std::int64_t lso = p->log_start_offset();
        if (it.offset < lso || it.offset > hw) {
          ctx_.metrics.fetch_errors.fetch_add(1, std::memory_order_relaxed);
          parts.push_back(CreateFetchPartitionResponse(fbb, it.partition, ErrorCode::offset_out_of_range, hw, lso));
          continue;
        }
        flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> records = 0;
        if (budget > 0 && it.offset < hw) {
          const std::size_t limit = static_cast<std::size_t>(std::min<std::int64_t>(budget, std::max(it.max_bytes, 1)));
          auto r = p->log()->read(it.offset, limit, hw);
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
};

void handle_fetch(BrokerContext& ctx, const FrameHeader& h, const FetchRequest* req, Respond respond) {
  ctx.metrics.fetch_requests.fetch_add(1, std::memory_order_relaxed);
  std::vector<FetchItem> items;
  if (req->topics())
    for (const auto* t : *req->topics()) {
      const std::string name = str(t->name());
      auto topic = ctx.topics.find(name);
      if (t->partitions())
        for (const auto* p : *t->partitions())
          items.push_back({name, topic, p->partition(), p->fetch_offset(), p->partition_max_bytes()});
    }
  const std::int32_t max_wait = std::clamp(req->max_wait_ms(), 0, 60000);
  auto op = std::make_shared<FetchOp>(ctx, h, std::move(respond), std::move(items), req->min_bytes(),
                                      std::max(req->max_bytes(), 1), max_wait);
  op->start();
}

// ----------------------------------------------------------------------------- the others
void handle_metadata(BrokerContext& ctx, const FrameHeader& h, const MetadataRequest* req, Respond respond) {
  flatbuffers::FlatBufferBuilder fbb(1024);
  const auto& c = cfg(ctx);
  std::vector<flatbuffers::Offset<BrokerMetadata>> brokers;
  const HostPort self = c.advertised.value_or(c.listen);
  brokers.push_back(CreateBrokerMetadata(fbb, c.node_id, fbb.CreateString(self.host), self.port));
  std::vector<std::shared_ptr<const Topic>> topics;
  std::vector<std::string> missing;
  if (req->topics() && req->topics()->size() > 0) {
    for (const auto* n : *req->topics()) {
      if (auto t = ctx.topics.find(n->str())) topics.push_back(t);
      else missing.push_back(n->str());
    }
  } else {
    topics = ctx.topics.list();
  }
  std::vector<flatbuffers::Offset<TopicMetadata>> tms;
  const std::vector<std::int32_t> replicas{c.node_id};
  for (const auto& t : topics) {
    std::vector<flatbuffers::Offset<PartitionMetadata>> pms;
    for (const auto& p : t->partitions)
      pms.push_back(CreatePartitionMetadata(fbb, p->id(), ErrorCode::none, c.node_id, 1, fbb.CreateVector(replicas),
                                            fbb.CreateVector(replicas), fbb.CreateVector(replicas),
                                            p->high_watermark(), p->log_start_offset()));
    tms.push_back(CreateTopicMetadata(fbb, fbb.CreateString(t->name), ErrorCode::none, false, fbb.CreateVector(pms)));
  }
  for (const auto& m : missing)
    tms.push_back(CreateTopicMetadata(fbb, fbb.CreateString(m), ErrorCode::unknown_topic_or_partition));
  auto root = CreateMetadataResponse(fbb, ErrorCode::none, fbb.CreateVector(brokers), c.node_id,
                                     fbb.CreateString(c.cluster_id), fbb.CreateVector(tms));
  respond(finish_response(fbb, root, h));
}

void handle_create_topic(BrokerContext& ctx, const FrameHeader& h, const CreateTopicRequest* req, Respond respond) {
  TopicConfig tc;
  tc.partitions = req->partitions();
  tc.replication_factor = req->replication_factor();
  if (req->configs())
    for (const auto* e : *req->configs()) tc.configs[str(e->key())] = str(e->value());
  const std::string name = str(req->name());
  auto r = ctx.topics.create(name, tc, ctx.cluster_size(), req->validate_only());
  flatbuffers::FlatBufferBuilder fbb(256);
  auto root = r ? CreateCreateTopicResponse(fbb, ErrorCode::none, 0, fbb.CreateString(name))
                : CreateCreateTopicResponse(fbb, r.error().code, fbb.CreateString(r.error().message),
                                            fbb.CreateString(name));
  respond(finish_response(fbb, root, h));
}

void handle_delete_topic(BrokerContext& ctx, const FrameHeader& h, const DeleteTopicRequest* req, Respond respond) {
  const std::string name = str(req->name());
  auto r = ctx.topics.remove(name);
  flatbuffers::FlatBufferBuilder fbb(256);
  auto root = r ? CreateDeleteTopicResponse(fbb, ErrorCode::none, 0, fbb.CreateString(name))
                : CreateDeleteTopicResponse(fbb, r.error().code, fbb.CreateString(r.error().message),
                                            fbb.CreateString(name));
  respond(finish_response(fbb, root, h));
}

void handle_list_topics(BrokerContext& ctx, const FrameHeader& h, const ListTopicsRequest*, Respond respond) {
  flatbuffers::FlatBufferBuilder fbb(512);
  std::vector<flatbuffers::Offset<TopicListing>> ls;
  for (const auto& t : ctx.topics.list())
    ls.push_back(CreateTopicListing(fbb, fbb.CreateString(t->name), t->config.partitions, t->config.replication_factor));
  auto root = CreateListTopicsResponse(fbb, ErrorCode::none, fbb.CreateVector(ls));
  respond(finish_response(fbb, root, h));
}

void handle_list_offsets(BrokerContext& ctx, const FrameHeader& h, const ListOffsetsRequest* req, Respond respond) {
  flatbuffers::FlatBufferBuilder fbb(512);
  std::vector<flatbuffers::Offset<ListOffsetsTopicResponse>> tops;
  if (req->topics())
    for (const auto* t : *req->topics()) {
      const std::string name = str(t->name());
      auto topic = ctx.topics.find(name);
      std::vector<flatbuffers::Offset<ListOffsetsPartitionResponse>> parts;
      if (t->partitions())
        for (const auto* lp : *t->partitions()) {
          Partition* p = find_partition(topic, lp->partition());
          if (!p) {
            parts.push_back(CreateListOffsetsPartitionResponse(fbb, lp->partition(), ErrorCode::unknown_topic_or_partition));
            continue;
          }
          std::int64_t off = p->high_watermark();
          if (lp->spec() == OffsetSpec::earliest) {
            off = p->log_start_offset();
          } else if (lp->spec() == OffsetSpec::timestamp) {
            auto r = p->log()->offset_for_timestamp(lp->timestamp_ms());
            if (!r) {
              parts.push_back(CreateListOffsetsPartitionResponse(fbb, lp->partition(), ErrorCode::storage_error));
              continue;
            }
            off = std::min(*r, p->high_watermark());
          }
          parts.push_back(CreateListOffsetsPartitionResponse(fbb, lp->partition(), ErrorCode::none, off));
        }
      tops.push_back(CreateListOffsetsTopicResponse(fbb, fbb.CreateString(name), fbb.CreateVector(parts)));
    }
  auto root = CreateListOffsetsResponse(fbb, ErrorCode::none, fbb.CreateVector(tops));
  respond(finish_response(fbb, root, h));
}

void handle_offset_commit(BrokerContext& ctx, const FrameHeader& h, const OffsetCommitRequest* req, Respond respond) {
  ctx.metrics.offset_commits.fetch_add(1, std::memory_order_relaxed);
  const std::string group = str(req->group_id());
  struct Item {
    std::string topic;
    std::int32_t partition;
    ErrorCode error;
  };
  auto items = std::make_shared<std::vector<Item>>();
  std::vector<storage::WriteOp> ops;
  if (req->topics())
    for (const auto* t : *req->topics()) {
      const std::string name = str(t->name());
      auto topic = ctx.topics.find(name);
      if (t->partitions())
        for (const auto* p : *t->partitions()) {
          ErrorCode e = ErrorCode::none;
          if (group.empty() || group.size() > 255) e = ErrorCode::invalid_request;
          else if (!find_partition(topic, p->partition())) e = ErrorCode::unknown_topic_or_partition;
          else if (p->offset() < 0) e = ErrorCode::offset_out_of_range;
          items->push_back({name, p->partition(), e});
          if (e == ErrorCode::none)
            ops.emplace_back(storage::PutOffsetOp{group, name, p->partition(), {p->offset(), str(p->metadata())}});
        }
    }
  auto reply = [items, h, respond = std::move(respond)](ErrorCode write_error) {
    flatbuffers::FlatBufferBuilder fbb(256);
    std::vector<flatbuffers::Offset<OffsetCommitTopicResponse>> tops;
    std::size_t i = 0;
    while (i < items->size()) {
      const std::string& name = (*items)[i].topic;
      std::vector<flatbuffers::Offset<OffsetCommitPartitionResponse>> parts;
      for (; i < items->size() && (*items)[i].topic == name; ++i) {
        const auto& it = (*items)[i];
        parts.push_back(CreateOffsetCommitPartitionResponse(fbb, it.partition, it.error == ErrorCode::none ? write_error : it.error));
      }
      tops.push_back(CreateOffsetCommitTopicResponse(fbb, fbb.CreateString(name), fbb.CreateVector(parts)));
    }
    auto root = CreateOffsetCommitResponse(fbb, ErrorCode::none, fbb.CreateVector(tops));
    respond(finish_response(fbb, root, h));
  };
  if (ops.empty()) return reply(ErrorCode::none);
  ctx.storage.submit(std::move(ops), [reply = std::move(reply)](std::expected<storage::WriteResult, storage::Error> r) mutable {
    if (!r) spdlog::error("offset commit failed: {}", r.error().message);
    reply(r ? ErrorCode::none : r.error().code == storage::errc::disk_full ? ErrorCode::disk_full : ErrorCode::storage_error);
  });
}

void handle_offset_fetch(BrokerContext& ctx, const FrameHeader& h, const OffsetFetchRequest* req, Respond respond) {
  const std::string group = str(req->group_id());
  flatbuffers::FlatBufferBuilder fbb(512);
  std::vector<flatbuffers::Offset<OffsetFetchTopicResponse>> tops;
  if (req->topics() && req->topics()->size() > 0) {
    for (const auto* t : *req->topics()) {
      const std::string name = str(t->name());
      std::vector<flatbuffers::Offset<OffsetFetchPartitionResponse>> parts;
      if (t->partitions())
        for (const std::int32_t p : *t->partitions()) {
          auto c = ctx.storage.committed_offset(group, name, p);
          parts.push_back(CreateOffsetFetchPartitionResponse(fbb, p, ErrorCode::none, c ? c->offset : -1,
                                                             c ? fbb.CreateString(c->metadata) : 0));
        }
      tops.push_back(CreateOffsetFetchTopicResponse(fbb, fbb.CreateString(name), fbb.CreateVector(parts)));
    }
  } else {
    const auto all = ctx.storage.group_offsets(group);
    std::size_t i = 0;
    while (i < all.size()) {
      const std::string& name = all[i].topic;
      std::vector<flatbuffers::Offset<OffsetFetchPartitionResponse>> parts;
      for (; i < all.size() && all[i].topic == name; ++i)
        parts.push_back(CreateOffsetFetchPartitionResponse(fbb, all[i].partition, ErrorCode::none, all[i].value.offset,
                                                           fbb.CreateString(all[i].value.metadata)));
      tops.push_back(CreateOffsetFetchTopicResponse(fbb, fbb.CreateString(name), fbb.CreateVector(parts)));
    }
  }
  auto root = CreateOffsetFetchResponse(fbb, ErrorCode::none, fbb.CreateVector(tops));
  respond(finish_response(fbb, root, h));
}

void handle_init_producer_id(BrokerContext& ctx, const FrameHeader& h, const InitProducerIdRequest* req,
                             Respond respond) {
  flatbuffers::FlatBufferBuilder fbb(128);
  flatbuffers::Offset<InitProducerIdResponse> root;
  if (req->producer_id() >= 0) {
    // Bump the epoch of a known id: the previous instance is fenced.
    const std::int16_t epoch = static_cast<std::int16_t>(std::max<int>(req->producer_epoch(), -1) + 1);
    root = CreateInitProducerIdResponse(fbb, ErrorCode::none, req->producer_id(), epoch);
  } else if (auto id = ctx.producer_ids.next()) {
    root = CreateInitProducerIdResponse(fbb, ErrorCode::none, *id, 0);
  } else {
    spdlog::error("allocating a producer id: {}", id.error().message);
    root = CreateInitProducerIdResponse(fbb, ErrorCode::storage_error);
  }
  respond(finish_response(fbb, root, h));
}

}  // namespace

std::expected<std::int64_t, storage::Error> ProducerIdAllocator::next() {
  std::lock_guard lk(mu_);
  if (next_ < 0) {
    const auto raw = storage_.meta("next_producer_id");
    next_ = limit_ = 0;
    if (raw && raw->size() == 8) std::memcpy(&next_, raw->data(), 8), limit_ = next_;
  }
  if (next_ >= limit_) {
    // Reserve a block durably before handing out any id of it.
    const std::int64_t new_limit = next_ + kBlock;
    std::vector<std::uint8_t> v(8);
    std::memcpy(v.data(), &new_limit, 8);
    std::vector<storage::WriteOp> ops;
    ops.emplace_back(storage::PutMetaOp{"next_producer_id", std::move(v)});
    if (auto w = storage_.write_sync(std::move(ops)); !w) return std::unexpected(w.error());
    limit_ = new_limit;
  }
  return next_++;
}

void handle_request(BrokerContext& ctx, const FrameHeader& h, std::span<const std::uint8_t> payload, Respond respond) {
  using protocol::payload_as;
  switch (h.api_id) {
    case ApiId::api_versions:
      ctx.metrics.other_requests.fetch_add(1, std::memory_order_relaxed);
      return respond(protocol::make_api_versions_response(h, ctx.config.node_id, ctx.config.cluster_id));
    case ApiId::produce: return handle_produce(ctx, h, payload_as<ProduceRequest>(payload), std::move(respond));
    case ApiId::fetch: return handle_fetch(ctx, h, payload_as<FetchRequest>(payload), std::move(respond));
    default: break;
  }
  ctx.metrics.other_requests.fetch_add(1, std::memory_order_relaxed);
  switch (h.api_id) {
    case ApiId::metadata: return handle_metadata(ctx, h, payload_as<MetadataRequest>(payload), std::move(respond));
    case ApiId::create_topic:
      return handle_create_topic(ctx, h, payload_as<CreateTopicRequest>(payload), std::move(respond));
    case ApiId::delete_topic:
      return handle_delete_topic(ctx, h, payload_as<DeleteTopicRequest>(payload), std::move(respond));
    case ApiId::list_topics: return handle_list_topics(ctx, h, payload_as<ListTopicsRequest>(payload), std::move(respond));
    case ApiId::list_offsets:
      return handle_list_offsets(ctx, h, payload_as<ListOffsetsRequest>(payload), std::move(respond));
    case ApiId::offset_commit:
      return handle_offset_commit(ctx, h, payload_as<OffsetCommitRequest>(payload), std::move(respond));
    case ApiId::offset_fetch:
      return handle_offset_fetch(ctx, h, payload_as<OffsetFetchRequest>(payload), std::move(respond));
    case ApiId::init_producer_id:
      return handle_init_producer_id(ctx, h, payload_as<InitProducerIdRequest>(payload), std::move(respond));
    default:
      return respond(protocol::make_error_response(h, ErrorCode::unknown_api, "this broker does not serve that api"));
  }
}

}  // namespace quorumq::broker
