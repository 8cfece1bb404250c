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

Partition* find_partition(const std::shared_ptr<const Topic>& t, std::int32_t p) { return t ? t->local(p) : nullptr; }

// Where to send a client whose request reached a broker that does not lead the partition.
flatbuffers::Offset<LeaderHint> make_hint(flatbuffers::FlatBufferBuilder& fbb, BrokerContext& ctx,
                                          std::optional<node_id> leader) {
  if (!leader) return 0;
  const auto addr = ctx.replication.address_of(*leader);
  if (!addr) return 0;
  return CreateLeaderHint(fbb, leader->value, 0, fbb.CreateString(addr->host), addr->port);
}

std::string group_name(const std::string& topic, std::int32_t p) { return TopicManager::log_name(topic, p); }

// Error for a partition this broker cannot serve: unknown, led elsewhere, or no leader yet.
struct NotServed {
  ErrorCode code;
  std::optional<node_id> leader;
  std::string message;
};
std::optional<NotServed> not_served(BrokerContext& ctx, const std::shared_ptr<const Topic>& t, const std::string& name,
                                    std::int32_t p) {
  if (!t || !t->has_partition(p))
    return NotServed{ErrorCode::unknown_topic_or_partition, std::nullopt,
                     "topic " + name + " partition " + std::to_string(p) +
                         " does not exist: create it (quorumq topic create) or check the name"};
  Partition* part = t->local(p);
  if (part && part->serving()) return std::nullopt;
  auto leader = ctx.replication.leader_of(group_name(name, p));
  if (leader && *leader == ctx.replication.self()) leader.reset();  // leading but not ready yet
  if (leader)
    return NotServed{ErrorCode::not_leader, leader,
                     "broker " + std::to_string(ctx.config.node_id) + " does not lead " + group_name(name, p) +
                         "; its leader is broker " + std::to_string(leader->value)};
  return NotServed{ErrorCode::leader_not_available, std::nullopt,
                   "no leader for " + group_name(name, p) + " right now (election in progress); retry"};
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
      if (!p || p->closed() || !p->serving() || p->high_watermark() > it.offset || it.offset > p->log_end_offset() ||
          it.offset < p->log_start_offset())
        return true;
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
        if (auto ns = not_served(ctx_, it.topic, name, it.partition)) {
          ctx_.metrics.fetch_errors.fetch_add(1, std::memory_order_relaxed);
          parts.push_back(CreateFetchPartitionResponse(fbb, it.partition, ns->code, -1, -1, 0,
                                                       make_hint(fbb, ctx_, ns->leader)));
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
  std::vector<flatbuffers::Offset<BrokerMetadata>> brokers;
  for (const auto b : ctx.replication.brokers())
    if (auto a = ctx.replication.address_of(b))
      brokers.push_back(CreateBrokerMetadata(fbb, b.value, fbb.CreateString(a->host), a->port));
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
  for (const auto& t : topics) {
    std::vector<flatbuffers::Offset<PartitionMetadata>> pms;
    for (std::int32_t pid = 0; pid < t->config.partitions; ++pid) {
      std::vector<std::int32_t> reps;
      for (const auto r : t->assignment[static_cast<std::size_t>(pid)]) reps.push_back(r.value);
      const auto leader = ctx.replication.leader_of(group_name(t->name, pid));
      const Partition* p = t->local(pid);
      std::uint64_t epoch = 0;
      std::int64_t hw = -1, lso = -1;
      if (p && p->group()) {
        epoch = p->group()->term();
        if (p->serving()) hw = p->high_watermark(), lso = p->log_start_offset();
      }
      pms.push_back(CreatePartitionMetadata(fbb, pid, leader ? ErrorCode::none : ErrorCode::leader_not_available,
                                            leader ? leader->value : -1, epoch, fbb.CreateVector(reps),
                                            fbb.CreateVector(reps), fbb.CreateVector(reps), hw, lso));
    }
    tms.push_back(CreateTopicMetadata(fbb, fbb.CreateString(t->name), ErrorCode::none, false, fbb.CreateVector(pms)));
  }
  for (const auto& m : missing)
    tms.push_back(CreateTopicMetadata(fbb, fbb.CreateString(m), ErrorCode::unknown_topic_or_partition));
  const auto controller = ctx.controller.leader();
  auto root = CreateMetadataResponse(fbb, ErrorCode::none, fbb.CreateVector(brokers), controller ? controller->value : -1,
                                     fbb.CreateString(ctx.config.cluster_id), fbb.CreateVector(tms));
  respond(finish_response(fbb, root, h));
}

void handle_create_topic(BrokerContext& ctx, const FrameHeader& h, const CreateTopicRequest* req, Respond respond) {
  TopicConfig tc;
  tc.partitions = req->partitions();
  tc.replication_factor = req->replication_factor();
  if (req->configs())
    for (const auto* e : *req->configs()) tc.configs[str(e->key())] = str(e->value());
  const std::string name = str(req->name());
  auto reply = [h, name, respond = std::move(respond)](std::optional<AdminError> err) {
    flatbuffers::FlatBufferBuilder fbb(256);
    auto root = !err ? CreateCreateTopicResponse(fbb, ErrorCode::none, 0, fbb.CreateString(name))
                     : CreateCreateTopicResponse(fbb, err->code, fbb.CreateString(err->message), fbb.CreateString(name));
    respond(finish_response(fbb, root, h));
  };
  if (req->validate_only()) return reply(ctx.topics.validate_create(name, tc, ctx.cluster_size()));
  ctx.controller.create_topic(name, tc, std::move(reply));
}

void handle_delete_topic(BrokerContext& ctx, const FrameHeader& h, const DeleteTopicRequest* req, Respond respond) {
  const std::string name = str(req->name());
  ctx.controller.delete_topic(name, [h, name, respond = std::move(respond)](std::optional<AdminError> err) {
    flatbuffers::FlatBufferBuilder fbb(256);
    auto root = !err ? CreateDeleteTopicResponse(fbb, ErrorCode::none, 0, fbb.CreateString(name))
                     : CreateDeleteTopicResponse(fbb, err->code, fbb.CreateString(err->message), fbb.CreateString(name));
    respond(finish_response(fbb, root, h));
  });
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
          if (auto ns = not_served(ctx, topic, name, lp->partition())) {
            parts.push_back(CreateListOffsetsPartitionResponse(fbb, lp->partition(), ns->code, -1, -1,
                                                               make_hint(fbb, ctx, ns->leader)));
            continue;
          }
          Partition* p = find_partition(topic, lp->partition());
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

// Offset commits go through each partition's own log (control batches): the partition's
// leader is the coordinator of its offsets, and a commit is acknowledged on a quorum.
void handle_offset_commit(BrokerContext& ctx, const FrameHeader& h, const OffsetCommitRequest* req, Respond respond) {
  ctx.metrics.offset_commits.fetch_add(1, std::memory_order_relaxed);
  const std::string group = str(req->group_id());
  struct State {
    struct Item {
      std::string topic;
      std::int32_t partition;
      ErrorCode error;
    };
    std::mutex mu;
    std::vector<Item> items;
    std::size_t pending = 1;
    Respond respond;
    FrameHeader h;
    void done() {
      {
        std::lock_guard lk(mu);
        if (--pending != 0) return;
      }
      flatbuffers::FlatBufferBuilder fbb(256);
      std::vector<flatbuffers::Offset<OffsetCommitTopicResponse>> tops;
      std::size_t i = 0;
      while (i < items.size()) {
        const std::string& name = items[i].topic;
        std::vector<flatbuffers::Offset<OffsetCommitPartitionResponse>> parts;
        for (; i < items.size() && items[i].topic == name; ++i)
          parts.push_back(CreateOffsetCommitPartitionResponse(fbb, items[i].partition, items[i].error));
        tops.push_back(CreateOffsetCommitTopicResponse(fbb, fbb.CreateString(name), fbb.CreateVector(parts)));
      }
      auto root = CreateOffsetCommitResponse(fbb, ErrorCode::none, fbb.CreateVector(tops));
      respond(finish_response(fbb, root, h));
    }
  };
  auto st = std::make_shared<State>();
  st->respond = std::move(respond);
  st->h = h;
  struct Work {
    std::size_t slot;
    Partition* p;
    OffsetCommitItem item;
  };
  std::vector<Work> work;
  std::vector<std::shared_ptr<const Topic>> keep;
  if (req->topics())
    for (const auto* t : *req->topics()) {
      const std::string name = str(t->name());
      auto topic = ctx.topics.find(name);
      keep.push_back(topic);
      if (t->partitions())
        for (const auto* p : *t->partitions()) {
          ErrorCode e = ErrorCode::none;
          if (group.empty() || group.size() > 255) e = ErrorCode::invalid_request;
          else if (p->offset() < 0) e = ErrorCode::offset_out_of_range;
          else if (auto ns = not_served(ctx, topic, name, p->partition()))
            e = ns->code == ErrorCode::unknown_topic_or_partition ? ns->code : ErrorCode::not_coordinator;
          st->items.push_back({name, p->partition(), e});
          if (e == ErrorCode::none)
            work.push_back({st->items.size() - 1, find_partition(topic, p->partition()),
                            OffsetCommitItem{group, p->offset(), str(p->metadata())}});
        }
    }
  st->pending += work.size();
  for (auto& w : work)
    w.p->commit_offset(std::move(w.item), [st, slot = w.slot, keep](ProduceResult r) {
      {
        std::lock_guard lk(st->mu);
        st->items[slot].error = r.error == ErrorCode::not_leader || r.error == ErrorCode::leader_not_available
                                    ? ErrorCode::not_coordinator
                                    : r.error;
      }
      st->done();
    });
  st->done();
}

void handle_offset_fetch(BrokerContext& ctx, const FrameHeader& h, const OffsetFetchRequest* req, Respond respond) {
  const std::string group = str(req->group_id());
  flatbuffers::FlatBufferBuilder fbb(512);
  std::vector<flatbuffers::Offset<OffsetFetchTopicResponse>> tops;
  if (req->topics() && req->topics()->size() > 0) {
    for (const auto* t : *req->topics()) {
      const std::string name = str(t->name());
      auto topic = ctx.topics.find(name);
      std::vector<flatbuffers::Offset<OffsetFetchPartitionResponse>> parts;
      if (t->partitions())
        for (const std::int32_t p : *t->partitions()) {
          if (auto ns = not_served(ctx, topic, name, p)) {
            parts.push_back(CreateOffsetFetchPartitionResponse(
                fbb, p, ns->code == ErrorCode::unknown_topic_or_partition ? ns->code : ErrorCode::not_coordinator));
            continue;
          }
          auto c = find_partition(topic, p)->committed_offset(group);
          parts.push_back(CreateOffsetFetchPartitionResponse(fbb, p, ErrorCode::none, c ? c->offset : -1,
                                                             c ? fbb.CreateString(c->metadata) : 0));
        }
      tops.push_back(CreateOffsetFetchTopicResponse(fbb, fbb.CreateString(name), fbb.CreateVector(parts)));
    }
  } else {
    // Every partition this broker coordinates (leads) that has an offset for the group; a
    // client merges the answers of all brokers.
    for (const auto& t : ctx.topics.list()) {
      std::vector<flatbuffers::Offset<OffsetFetchPartitionResponse>> parts;
      for (const auto& p : t->partitions) {
        if (!p || !p->serving()) continue;
        if (auto c = p->committed_offset(group))
          parts.push_back(CreateOffsetFetchPartitionResponse(fbb, p->id(), ErrorCode::none, c->offset,
                                                             fbb.CreateString(c->metadata)));
      }
      if (!parts.empty())
        tops.push_back(CreateOffsetFetchTopicResponse(fbb, fbb.CreateString(t->name), fbb.CreateVector(parts)));
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
  return (next_++) * 1024 + node_;
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
