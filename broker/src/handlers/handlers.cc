#include "handlers.h"

#include <spdlog/spdlog.h>

#include <limits>
#include <mutex>

#include "handler_util.h"
#include "security_handlers.h"
#include "quorumq/protocol/record_batch.h"
#include "state_record.h"

namespace quorumq::broker {

using namespace detail;

namespace {

// ----------------------------------------------------------------------------- the others
void handle_metadata(BrokerContext& ctx, const FrameHeader& h, const MetadataRequest* req, Respond respond,
                     const Principal& who) {
  if (req->topics() && req->topics()->size() > cfg(ctx).max_partitions_per_request)
    return respond(protocol::make_error_response(
        h, ErrorCode::invalid_request,
        "the request names more than " + std::to_string(cfg(ctx).max_partitions_per_request) +
            " topics (--max-partitions-per-request); ask for all topics (none named) or split it"));
  flatbuffers::FlatBufferBuilder fbb(1024);
  std::vector<flatbuffers::Offset<BrokerMetadata>> brokers;
  for (const auto b : ctx.replication.brokers())
    if (auto a = ctx.replication.address_of(b))
      brokers.push_back(CreateBrokerMetadata(fbb, b.value, fbb.CreateString(a->host), a->port));
  std::vector<std::shared_ptr<const Topic>> topics;
  std::vector<std::string> missing, refused;
  if (req->topics() && req->topics()->size() > 0) {
    for (const auto* n : *req->topics()) {
      if (!visible(ctx, who, ResourceType::topic, n->str())) refused.push_back(n->str());
      else if (auto t = ctx.topics.find(n->str())) topics.push_back(t);
      else missing.push_back(n->str());
    }
  } else {
    for (auto& t : ctx.topics.list())
      if (visible(ctx, who, ResourceType::topic, t->name)) topics.push_back(std::move(t));
  }
  std::vector<flatbuffers::Offset<TopicMetadata>> tms;
  for (const auto& t : topics) {
    std::vector<flatbuffers::Offset<PartitionMetadata>> pms;
    for (std::int32_t pid = 0; pid < t->config.partitions; ++pid) {
      std::vector<std::int32_t> reps;
      for (const auto r : t->assignment[static_cast<std::size_t>(pid)]) reps.push_back(r.value);
      const auto v = partition_view(ctx, *t, pid);
      pms.push_back(CreatePartitionMetadata(fbb, pid, v.leader ? ErrorCode::none : ErrorCode::leader_not_available,
                                            v.leader ? v.leader->value : -1, v.epoch, fbb.CreateVector(reps),
                                            fbb.CreateVector(reps), fbb.CreateVector(v.isr), v.high_watermark, v.log_start));
    }
    std::vector<flatbuffers::Offset<ConfigEntry>> cfgs;
    for (const auto& [k, v] : t->config.configs) cfgs.push_back(CreateConfigEntry(fbb, fbb.CreateString(k), fbb.CreateString(v)));
    tms.push_back(CreateTopicMetadata(fbb, fbb.CreateString(t->name), ErrorCode::none, false, fbb.CreateVector(pms),
                                      fbb.CreateVector(cfgs), t->id));
  }
  for (const auto& m : missing)
    tms.push_back(CreateTopicMetadata(fbb, fbb.CreateString(m), ErrorCode::unknown_topic_or_partition));
  for (const auto& m : refused)
    tms.push_back(CreateTopicMetadata(fbb, fbb.CreateString(m), ErrorCode::topic_authorization_failed));
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
  auto reply = [h, name, respond = std::move(respond)](std::optional<Status> err) {
    flatbuffers::FlatBufferBuilder fbb(256);
    auto root = !err ? CreateCreateTopicResponse(fbb, ErrorCode::none, 0, fbb.CreateString(name))
                     : CreateCreateTopicResponse(fbb, err->code, fbb.CreateString(err->message), fbb.CreateString(name));
    respond(finish_response(fbb, root, h));
  };
  if (req->validate_only()) return reply(ctx.topics.validate_create(name, tc, ctx.cluster_size()));
  ctx.controller.create_topic(name, tc, std::move(reply));
}

void handle_alter_topic_config(BrokerContext& ctx, const FrameHeader& h, const AlterTopicConfigRequest* req,
                               Respond respond) {
  const std::string name = str(req->name());
  auto reply = [h, name, respond = std::move(respond)](std::optional<Status> err) {
    flatbuffers::FlatBufferBuilder fbb(256);
    auto root = !err ? CreateAlterTopicConfigResponse(fbb, ErrorCode::none, 0, fbb.CreateString(name))
                     : CreateAlterTopicConfigResponse(fbb, err->code, fbb.CreateString(err->message),
                                                      fbb.CreateString(name));
    respond(finish_response(fbb, root, h));
  };
  auto topic = ctx.topics.find(name);
  if (!topic) return reply(Status{ErrorCode::unknown_topic_or_partition, "topic " + name + " does not exist"});
  auto configs = topic->config.configs;
  if (req->set())
    for (const auto* e : *req->set()) configs[str(e->key())] = str(e->value());
  if (req->delete_())
    for (const auto* k : *req->delete_()) configs.erase(k->str());
  if (auto e = validate_topic_configs(configs)) return reply(*e);
  if (req->validate_only()) return reply(std::nullopt);
  ctx.controller.alter_topic(name, configs, std::move(reply));
}

// OffsetDelete: like an offset commit, through each partition's log (its leader coordinates its
// offsets); refused while the group has members (their positions would be committed again).
void handle_offset_delete(BrokerContext& ctx, const FrameHeader& h, const OffsetDeleteRequest* req, Respond respond) {
  const std::string group = str(req->group_id());
  if (!valid_group_id(group))
    return respond(protocol::make_error_response(h, ErrorCode::invalid_request,
                                                 "group id must be 1-255 printable characters without spaces"));
  if (auto why = check_partitions(ctx, req->topics(), /*unique=*/false, [](const OffsetFetchTopic* t, auto&& f) {
        if (t->partitions())
          for (const std::int32_t p : *t->partitions()) f(p);
      }))
    return respond(protocol::make_error_response(h, ErrorCode::invalid_request, *why));
  struct State {
    struct Item {
      std::string topic;
      std::int32_t partition;
      ErrorCode error;
      std::string message;
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
          parts.push_back(CreateOffsetCommitPartitionResponse(
              fbb, items[i].partition, items[i].error, items[i].message.empty() ? 0 : fbb.CreateString(items[i].message)));
        tops.push_back(CreateOffsetCommitTopicResponse(fbb, fbb.CreateString(name), fbb.CreateVector(parts)));
      }
      auto root = CreateOffsetDeleteResponse(fbb, ErrorCode::none, fbb.CreateVector(tops));
      respond(finish_response(fbb, root, h));
    }
  };
  auto st = std::make_shared<State>();
  st->respond = std::move(respond);
  st->h = h;
  const auto state = ctx.groups.get(group);
  const bool has_members = state && !state->members.empty();
  std::vector<std::pair<std::size_t, Partition*>> work;
  std::vector<std::shared_ptr<const Topic>> keep;
  if (req->topics())
    for (const auto* t : *req->topics()) {
      const std::string name = str(t->name());
      auto topic = ctx.topics.find(name);
      keep.push_back(topic);
      if (t->partitions())
        for (const std::int32_t p : *t->partitions()) {
          ErrorCode e = ErrorCode::none;
          std::string why;
          if (has_members)
            e = ErrorCode::group_not_empty,
            why = "group " + group + " has " + std::to_string(state->members.size()) +
                  " member(s): stop its consumers (or wait out their session timeout) first";
          else if (auto ns = not_served(ctx, topic, name, p))
            e = ns->code == ErrorCode::unknown_topic_or_partition ? ns->code : ErrorCode::not_coordinator;
          st->items.push_back({name, p, e, std::move(why)});
          if (e == ErrorCode::none) work.emplace_back(st->items.size() - 1, find_partition(topic, p));
        }
    }
  st->pending += work.size();
  for (auto& [slot, p] : work)
    p->delete_offset(group, [st, slot = slot, keep](ProduceResult r) {
      {
        std::lock_guard lk(st->mu);
        const auto code = r.status.code;
        st->items[slot].error =
            code == ErrorCode::not_leader || code == ErrorCode::leader_not_available ? ErrorCode::not_coordinator : code;
      }
      st->done();
    });
  st->done();
}

void handle_delete_topic(BrokerContext& ctx, const FrameHeader& h, const DeleteTopicRequest* req, Respond respond) {
  const std::string name = str(req->name());
  ctx.controller.delete_topic(name, [h, name, respond = std::move(respond)](std::optional<Status> err) {
    flatbuffers::FlatBufferBuilder fbb(256);
    auto root = !err ? CreateDeleteTopicResponse(fbb, ErrorCode::none, 0, fbb.CreateString(name))
                     : CreateDeleteTopicResponse(fbb, err->code, fbb.CreateString(err->message), fbb.CreateString(name));
    respond(finish_response(fbb, root, h));
  });
}

void handle_list_topics(BrokerContext& ctx, const FrameHeader& h, const ListTopicsRequest*, Respond respond,
                        const Principal& who) {
  flatbuffers::FlatBufferBuilder fbb(512);
  std::vector<flatbuffers::Offset<TopicListing>> ls;
  for (const auto& t : ctx.topics.list())
    if (visible(ctx, who, ResourceType::topic, t->name)) ls.push_back(CreateTopicListing(fbb, fbb.CreateString(t->name), t->config.partitions, t->config.replication_factor));
  auto root = CreateListTopicsResponse(fbb, ErrorCode::none, fbb.CreateVector(ls));
  respond(finish_response(fbb, root, h));
}

void handle_list_offsets(BrokerContext& ctx, const FrameHeader& h, const ListOffsetsRequest* req, Respond respond) {
  if (auto why = check_partitions(ctx, req->topics(), /*unique=*/false, [](const ListOffsetsTopic* t, auto&& f) {
        if (t->partitions())
          for (const auto* p : *t->partitions()) f(p->partition());
      }))
    return respond(protocol::make_error_response(h, ErrorCode::invalid_request, *why));
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
                                                               make_hint(fbb, ctx, ns->leader_hint)));
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
            off = std::min(r->value, p->high_watermark());
          }
          parts.push_back(CreateListOffsetsPartitionResponse(fbb, lp->partition(), ErrorCode::none, off));
        }
      tops.push_back(CreateListOffsetsTopicResponse(fbb, fbb.CreateString(name), fbb.CreateVector(parts)));
    }
  auto root = CreateListOffsetsResponse(fbb, ErrorCode::none, fbb.CreateVector(tops));
  respond(finish_response(fbb, root, h));
}

// Offset commits go through each partition's own log (control batches): the partition's
// leader is the coordinator of its offsets, and a commit is acknowledged on a quorum. A commit
// of a consumer-group member is checked against the group state this broker applied (the
// member must own the partition), see GroupRegistry::check_commit.
void handle_offset_commit(BrokerContext& ctx, const FrameHeader& h, const OffsetCommitRequest* req, Respond respond) {
  ctx.metrics.offset_commits.fetch_add(1, std::memory_order_relaxed);
  if (auto why = check_partitions(ctx, req->topics(), /*unique=*/false, [](const OffsetCommitTopic* t, auto&& f) {
        if (t->partitions())
          for (const auto* p : *t->partitions()) f(p->partition());
      }))
    return respond(protocol::make_error_response(h, ErrorCode::invalid_request, *why));
  const std::string group = str(req->group_id());
  const std::string member = str(req->member_id());
  struct State {
    struct Item {
      std::string topic;
      std::int32_t partition;
      ErrorCode error;
      std::string message;
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
          parts.push_back(CreateOffsetCommitPartitionResponse(
              fbb, items[i].partition, items[i].error,
              items[i].message.empty() ? 0 : fbb.CreateString(items[i].message)));
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
          std::string why;
          const auto* md = p->metadata();
          // The same group-id rule as every other group api (GroupHeartbeat, DescribeGroups).
          if (!valid_group_id(group))
            e = ErrorCode::invalid_request, why = "group id must be 1-255 printable characters without spaces";
          else if (member.size() > 255)
            e = ErrorCode::invalid_request, why = "member id longer than 255 bytes";
          else if (md && md->size() > cfg(ctx).max_offset_metadata_bytes)
            e = ErrorCode::invalid_request,
            why = "offset metadata of " + std::to_string(md->size()) + " bytes is over the limit of " +
                  std::to_string(cfg(ctx).max_offset_metadata_bytes) + " (--max-offset-metadata-bytes)";
          else if (p->offset() < 0) e = ErrorCode::offset_out_of_range;
          else if (auto ns = not_served(ctx, topic, name, p->partition()))
            e = ns->code == ErrorCode::unknown_topic_or_partition ? ns->code : ErrorCode::not_coordinator;
          else if (auto r = ctx.groups.check_commit(group, member, req->generation_id(), name, p->partition())) {
            e = r->code, why = std::move(r->message);
            if (e != ErrorCode::coordinator_not_available)
              ctx.metrics.offset_commits_fenced.fetch_add(1, std::memory_order_relaxed);
          }
          st->items.push_back({name, p->partition(), e, std::move(why)});
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
        const auto code = r.status.code;
        st->items[slot].error =
            code == ErrorCode::not_leader || code == ErrorCode::leader_not_available ? ErrorCode::not_coordinator : code;
      }
      st->done();
    });
  st->done();
}

void handle_offset_fetch(BrokerContext& ctx, const FrameHeader& h, const OffsetFetchRequest* req, Respond respond) {
  const std::string group = str(req->group_id());
  if (!valid_group_id(group))
    return respond(protocol::make_error_response(h, ErrorCode::invalid_request,
                                                 "group id must be 1-255 printable characters without spaces"));
  if (auto why = check_partitions(ctx, req->topics(), /*unique=*/false, [](const OffsetFetchTopic* t, auto&& f) {
        if (t->partitions())
          for (const std::int32_t p : *t->partitions()) f(p);
      }))
    return respond(protocol::make_error_response(h, ErrorCode::invalid_request, *why));
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
  if (req->producer_id() >= 0 && req->producer_epoch() < std::numeric_limits<std::int16_t>::max()) {
    // Bump the epoch of a known id: the previous instance is fenced.
    const std::int16_t epoch = static_cast<std::int16_t>(std::max<int>(req->producer_epoch(), -1) + 1);
    root = CreateInitProducerIdResponse(fbb, ErrorCode::none, req->producer_id(), epoch);
  } else if (auto id = ctx.producer_ids.next()) {
    // A new id, or (as Kafka does) a new id once the epoch of the old one is used up: an epoch
    // never wraps to a negative value, which would un-fence every older instance.
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
    if (raw && is_state_record(*raw)) {
      const auto rec = read_state_record(*raw);
      const auto* c = rec ? rec->as<state::ProducerIdCounter>() : nullptr;
      // Unreadable: handing out ids again from 0 could reuse a live producer's id.
      if (!c) return std::unexpected(storage::Error{storage::errc::corrupt, "the stored producer-id counter (meta record next_producer_id) is unreadable; restore the data directory from a backup"});
      next_ = limit_ = c->next();
    } else if (raw && raw->size() == 8) {
      std::memcpy(&next_, raw->data(), 8), limit_ = next_;  // earlier builds: a raw little-endian integer
    }
  }
  if (next_ >= limit_) {
    // Reserve a block durably before handing out any id of it.
    const std::int64_t new_limit = next_ + kBlock;
    flatbuffers::FlatBufferBuilder fbb(48);
    const auto b = state::CreateProducerIdCounter(fbb, new_limit);
    std::vector<storage::WriteOp> ops;
    ops.emplace_back(storage::PutMetaOp{"next_producer_id", finish_state_record(fbb, state::Body::ProducerIdCounter, b.Union())});
    if (auto w = storage_.write_sync(std::move(ops)); !w) return std::unexpected(w.error());
    limit_ = new_limit;
  }
  // The node id in the low 32 bits: unique for every node id (counter * 1024 + node collided
  // for node ids >= 1024). The stored counter is already past any id the old scheme handed out.
  return (next_++ << 32) | static_cast<std::int64_t>(static_cast<std::uint32_t>(node_));
}

void handle_request(BrokerContext& ctx, const FrameHeader& h, std::span<const std::uint8_t> payload, Respond respond,
                    const Principal& who) {
  using protocol::payload_as;
  if (auto refused = authorize(ctx, h, payload, who)) return respond(std::move(*refused));
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
    case ApiId::metadata: return handle_metadata(ctx, h, payload_as<MetadataRequest>(payload), std::move(respond), who);
    case ApiId::create_topic:
      return handle_create_topic(ctx, h, payload_as<CreateTopicRequest>(payload), std::move(respond));
    case ApiId::delete_topic:
      return handle_delete_topic(ctx, h, payload_as<DeleteTopicRequest>(payload), std::move(respond));
    case ApiId::list_topics:
      return handle_list_topics(ctx, h, payload_as<ListTopicsRequest>(payload), std::move(respond), who);
    case ApiId::list_offsets:
      return handle_list_offsets(ctx, h, payload_as<ListOffsetsRequest>(payload), std::move(respond));
    case ApiId::offset_commit:
      return handle_offset_commit(ctx, h, payload_as<OffsetCommitRequest>(payload), std::move(respond));
    case ApiId::offset_fetch:
      return handle_offset_fetch(ctx, h, payload_as<OffsetFetchRequest>(payload), std::move(respond));
    case ApiId::init_producer_id:
      return handle_init_producer_id(ctx, h, payload_as<InitProducerIdRequest>(payload), std::move(respond));
    case ApiId::group_heartbeat:
      return handle_group_heartbeat(ctx, h, payload_as<GroupHeartbeatRequest>(payload), std::move(respond));
    case ApiId::describe_groups:
      return handle_describe_groups(ctx, h, payload_as<DescribeGroupsRequest>(payload), std::move(respond), who);
    case ApiId::alter_topic_config:
      return handle_alter_topic_config(ctx, h, payload_as<AlterTopicConfigRequest>(payload), std::move(respond));
    case ApiId::offset_delete:
      return handle_offset_delete(ctx, h, payload_as<OffsetDeleteRequest>(payload), std::move(respond));
    case ApiId::alter_users: return handle_alter_users(ctx, h, payload_as<AlterUsersRequest>(payload), std::move(respond));
    case ApiId::describe_users:
      return handle_describe_users(ctx, h, payload_as<DescribeUsersRequest>(payload), std::move(respond));
    case ApiId::create_acls: return handle_create_acls(ctx, h, payload_as<CreateAclsRequest>(payload), std::move(respond));
    case ApiId::delete_acls: return handle_delete_acls(ctx, h, payload_as<DeleteAclsRequest>(payload), std::move(respond));
    case ApiId::describe_acls:
      return handle_describe_acls(ctx, h, payload_as<DescribeAclsRequest>(payload), std::move(respond));
    // SaslAuthenticate is the connection's (it changes who the connection is); never here.
    default:
      return respond(protocol::make_error_response(h, ErrorCode::unknown_api, "this broker does not serve that api"));
  }
}

}  // namespace quorumq::broker

