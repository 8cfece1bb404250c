// Kafka-protocol group, offset and admin apis (issue 17): FindCoordinator 0-2, JoinGroup 0-5,
// SyncGroup 0-3, Heartbeat 0-3, LeaveGroup 0-3 (KafkaGroupCoordinator), OffsetCommit 2-7 and
// OffsetFetch 1-5 (at each partition's leader, where quorumq keeps a group's offsets),
// ListGroups 0-2, DescribeGroups 0-3, CreateTopics 0-4, DeleteTopics 0-3, DescribeConfigs 0-2.
//
// The coordinator of every group is the controller's leader (as for native groups). Kafka
// clients send a group's commits and offset fetches to it; it checks the member and generation
// (Kafka's rules) and then runs the native OffsetCommit / OffsetFetch at each partition's
// leader: its own through the native handlers, another broker's over that broker's client
// listener (PeerRequests). So offsets committed by a Kafka consumer are the same records a
// native consumer and `quorumq group offsets` read, written to a quorum of the partition's
// replicas, and the partition leader's ownership check fences a member the group dropped.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <limits>
#include <set>

#include "handler_util.h"
#include "kafka_group_requests.h"
#include "kafka_internal.h"
#include "quorumq/protocol/verify.h"
#include "security_handlers.h"

namespace quorumq::broker::kafka {

namespace {

namespace KE = kafka_error;
constexpr std::int16_t kUnknownTopicOrPartition = 3;
constexpr std::int16_t kInvalidRequest = 42;
constexpr std::int16_t kNotController = 41;
constexpr std::int16_t kInvalidTopic = 17;
constexpr auto kForwardTimeout = std::chrono::milliseconds(5000);
// What one member may make the coordinator hold in memory: its protocols' metadata (a consumer's
// subscription) and, in the leader's SyncGroup, all members' assignments together.
constexpr std::size_t kMaxJoinMetadataBytes = 256u << 10;
constexpr std::size_t kMaxSyncAssignmentBytes = 4u << 20;

constexpr std::array<ApiRange, 12> kGroupApis{{{api::offset_commit, 2, 7},
                                               {api::offset_fetch, 1, 5},
                                               {api::find_coordinator, 0, 2},
                                               {api::join_group, 0, 5},
                                               {api::heartbeat, 0, 3},
                                               {api::leave_group, 0, 3},
                                               {api::sync_group, 0, 3},
                                               {api::describe_groups, 0, 3},
                                               {api::list_groups, 0, 2},
                                               {api::create_topics, 0, 4},
                                               {api::delete_topics, 0, 3},
                                               {api::describe_configs, 0, 2}}};

std::uint32_t max_items(BrokerContext& ctx) { return ctx.config.max_partitions_per_request; }

// Authorization (Kafka's rules, KafkaApis): the group apis need read on the group (describe for
// FindCoordinator, OffsetFetch, DescribeGroups, ListGroups), checked before anything else, and
// are refused with GROUP_AUTHORIZATION_FAILED; topics in offset requests need read (commit) or
// describe (fetch), refused per partition with TOPIC_AUTHORIZATION_FAILED; CreateTopics,
// DeleteTopics and DescribeConfigs need create, delete and describe on each topic. Offsets are
// then forwarded to the partitions' leaders as the broker itself (an internal principal): the
// client's permissions were checked here, on the coordinator.
bool may(BrokerContext& ctx, const Header& h, AclOperation op, std::string_view group) {
  return allowed(ctx, h, op, ResourceType::group, group);
}

// ---- FindCoordinator 0-2 ------------------------------------------------------------------
// Every group's coordinator is the controller's leader, at its Kafka address.
Answer find_coordinator(BrokerContext& ctx, const Header& h, Reader& r) {
  FindCoordinatorRequest req;
  if (!parse_find_coordinator(r, h.version, req)) return close_with("malformed FindCoordinator request");
  std::int16_t error = KE::none;
  std::string message;
  std::optional<std::pair<node_id, HostPort>> at;
  if (req.key_type == 0 && !may(ctx, h, AclOperation::describe, req.key)) {
    error = kGroupAuthorizationFailed, message = "not authorized to describe group " + std::string(req.key);
  } else if (req.key_type != 0) {
    error = KE::coordinator_not_available, message = "quorumq has no transactions (no transaction coordinator)";
  } else if (auto leader = ctx.controller.leader(); !leader) {
    error = KE::coordinator_not_available, message = "controller election in progress; retry";
  } else if (auto a = ctx.replication.kafka_address_of(*leader); !a) {
    error = KE::coordinator_not_available,
    message = "the coordinator (broker " + std::to_string(leader->value) + ") has no Kafka listener known here";
  } else {
    at.emplace(*leader, std::move(*a));
  }
  Writer w = start(h);
  if (h.version >= 1) w.i32(0);  // ThrottleTimeMs
  w.i16(error);
  if (h.version >= 1) w.nullable_string(message.empty() ? std::nullopt : std::optional<std::string_view>(message));
  w.i32(at ? at->first.value : -1);
  w.string(at ? at->second.host : "");
  w.i32(at ? at->second.port : -1);
  return finish(w);
}

// ---- JoinGroup 0-5, SyncGroup 0-3, Heartbeat 0-3, LeaveGroup 0-3 ----------------------------
void join_group(BrokerContext& ctx, const Header& h, Reader& r, std::function<void(Answer)> done) {
  JoinGroupRequest req;
  if (!parse_join_group(r, h.version, max_items(ctx), req)) return done(close_with("malformed JoinGroup request"));
  if (!may(ctx, h, AclOperation::read, req.group_id)) {
    Writer w = start(h);
    if (h.version >= 2) w.i32(0);
    w.i16(kGroupAuthorizationFailed);
    w.i32(-1);
    w.string("");
    w.string("");
    w.string(req.member_id);
    w.array_length(0);
    return done(finish(w));
  }
  KafkaGroupCoordinator::Join j;
  j.group = std::string(req.group_id);
  j.member_id = std::string(req.member_id);
  j.client_id = std::string(h.client_id.value_or(""));
  j.client_host = "/";  // the listener does not pass peer addresses down (yet)
  j.protocol_type = std::string(req.protocol_type);
  j.session_timeout_ms = req.session_timeout_ms;
  j.rebalance_timeout_ms = req.rebalance_timeout_ms;
  j.require_known_member_id = h.version >= 4;
  std::size_t metadata_bytes = 0;
  for (const auto& p : req.protocols) {
    metadata_bytes += p.name.size() + p.metadata.size();
    j.protocols.push_back({std::string(p.name), {p.metadata.begin(), p.metadata.end()}});
  }
  if (req.protocol_type == "consumer" && !req.protocols.empty()) {
    std::vector<std::string_view> topics;
    if (parse_subscription(req.protocols.front().metadata, max_items(ctx), topics))
      for (const auto t : topics) j.topics.emplace_back(t);
  }
  if (metadata_bytes > kMaxJoinMetadataBytes || j.topics.size() > ctx.config.max_subscription_topics) {
    spdlog::warn("Kafka group {}: JoinGroup refused: {} bytes of protocol metadata (at most {}), {} topics (at most "
                 "{}, --max-subscription-topics)",
                 j.group.substr(0, 64), metadata_bytes, kMaxJoinMetadataBytes, j.topics.size(),
                 ctx.config.max_subscription_topics);
    Writer w = start(h);
    if (h.version >= 2) w.i32(0);
    w.i16(KE::group_max_size_reached);
    w.i32(-1);
    w.string("");
    w.string("");
    w.string(j.member_id);
    w.array_length(0);
    return done(finish(w));
  }
  ctx.kafka_groups.join(std::move(j), [h, done = std::move(done)](KafkaGroupCoordinator::JoinAnswer a) {
    Writer w = start(h);
    if (h.version >= 2) w.i32(0);  // ThrottleTimeMs
    w.i16(a.error);
    w.i32(a.generation);
    w.string(a.protocol);
    w.string(a.leader);
    w.string(a.member_id);
    w.array_length(static_cast<std::int32_t>(a.members.size()));
    for (const auto& m : a.members) {
      w.string(m.id);
      if (h.version >= 5) w.nullable_string(std::nullopt);  // GroupInstanceId (static membership: not kept)
      w.bytes(m.metadata);
    }
    done(finish(w));
  });
}

void sync_group(BrokerContext& ctx, const Header& h, Reader& r, std::function<void(Answer)> done) {
  SyncGroupRequest req;
  if (!parse_sync_group(r, h.version, max_items(ctx), req)) return done(close_with("malformed SyncGroup request"));
  if (!may(ctx, h, AclOperation::read, req.group_id)) {
    Writer w = start(h);
    if (h.version >= 1) w.i32(0);
    w.i16(kGroupAuthorizationFailed);
    w.bytes({});
    return done(finish(w));
  }
  KafkaGroupCoordinator::Sync s;
  s.group = std::string(req.group_id);
  s.member_id = std::string(req.member_id);
  s.generation = req.generation_id;
  std::size_t assignment_bytes = 0;
  for (const auto& a : req.assignments) assignment_bytes += a.member_id.size() + a.assignment.size();
  if (assignment_bytes > kMaxSyncAssignmentBytes) {
    spdlog::warn("Kafka group {}: SyncGroup refused: {} bytes of assignments, at most {}", s.group.substr(0, 64),
                 assignment_bytes, kMaxSyncAssignmentBytes);
    Writer w = start(h);
    if (h.version >= 1) w.i32(0);
    w.i16(KE::group_max_size_reached);
    w.bytes({});
    return done(finish(w));
  }
  for (const auto& a : req.assignments) {
    const std::string id(a.member_id);
    s.assignments[id] = {a.assignment.begin(), a.assignment.end()};
    std::vector<TopicPartitions> parts;
    if (parse_assignment(a.assignment, max_items(ctx), parts)) {
      auto& owned = s.assigned[id];
      for (const auto& tp : parts)
        for (const auto p : tp.partitions) owned.emplace(std::string(tp.topic), p);
    }
  }
  ctx.kafka_groups.sync(std::move(s), [h, done = std::move(done)](KafkaGroupCoordinator::SyncAnswer a) {
    Writer w = start(h);
    if (h.version >= 1) w.i32(0);
    w.i16(a.error);
    w.bytes(a.assignment);
    done(finish(w));
  });
}

Answer heartbeat(BrokerContext& ctx, const Header& h, Reader& r) {
  HeartbeatRequest req;
  if (!parse_heartbeat(r, h.version, req)) return close_with("malformed Heartbeat request");
  const auto e = !may(ctx, h, AclOperation::read, req.group_id)
                     ? kGroupAuthorizationFailed
                     : ctx.kafka_groups.heartbeat(std::string(req.group_id), std::string(req.member_id), req.generation_id);
  Writer w = start(h);
  if (h.version >= 1) w.i32(0);
  w.i16(e);
  return finish(w);
}

Answer leave_group(BrokerContext& ctx, const Header& h, Reader& r) {
  LeaveGroupRequest req;
  if (!parse_leave_group(r, h.version, max_items(ctx), req)) return close_with("malformed LeaveGroup request");
  if (!may(ctx, h, AclOperation::read, req.group_id)) {
    Writer w = start(h);
    if (h.version >= 1) w.i32(0);
    w.i16(kGroupAuthorizationFailed);
    if (h.version >= 3) w.array_length(0);
    return finish(w);
  }
  std::vector<std::string> members(req.member_ids.begin(), req.member_ids.end());
  std::vector<std::int16_t> per;
  const auto e = ctx.kafka_groups.leave(std::string(req.group_id), members, per);
  Writer w = start(h);
  if (h.version >= 1) w.i32(0);
  w.i16(h.version >= 3 && (e == KE::unknown_member_id) ? KE::none : e);
  if (h.version >= 3) {
    w.array_length(static_cast<std::int32_t>(members.size()));
    for (std::size_t i = 0; i < members.size(); ++i) {
      w.string(members[i]);
      w.nullable_string(std::nullopt);
      w.i16(per[i]);
    }
  }
  return finish(w);
}

// ---- Offsets at each partition's leader -----------------------------------------------------
using TP = std::pair<std::string, std::int32_t>;

// The leader of topic/partition as this broker knows it; nullopt (with the Kafka code) if the
// partition does not exist or has no leader right now.
std::optional<node_id> leader_of(BrokerContext& ctx, const std::string& topic, std::int32_t p, std::int16_t& error) {
  auto t = ctx.topics.find(topic);
  if (!t || !t->has_partition(p)) {
    error = kUnknownTopicOrPartition;
    return std::nullopt;
  }
  auto l = ctx.replication.leader_of(detail::group_name(topic, p));
  if (!l) error = KE::coordinator_load_in_progress;
  return l;
}

// Runs a native request (finished in `fbb`) at broker `at`: this one's handlers, or another's
// over its client listener. `then` gets the verified response, or nullptr if none came.
template <typename Response>
void run_at(BrokerContext& ctx, node_id at, protocol::ApiId api, flatbuffers::FlatBufferBuilder& fbb,
            std::function<void(const Response*)> then) {
  if (at == ctx.replication.self())
    return call_native<Response>(ctx, Principal{.name = {}, .internal = true}, api, fbb, [then = std::move(then)](const Response* r, wire::ErrorCode) { then(r); });
  auto buf = fbb.Release();
  const auto* info = protocol::find_api(api);
  const std::uint16_t version = info ? info->max_version : 0;
  ctx.peers.send(at, api, {buf.data(), buf.data() + buf.size()}, kForwardTimeout,
                 [api, version, at, then = std::move(then)](PeerRequests::Reply r) {
                   if (!r.ok || r.error_payload ||
                       protocol::verify_response(api, version, r.payload) != wire::ErrorCode::none) {
                     spdlog::debug("Kafka offsets: broker {}: {}", at.value, r.ok ? "an error answer" : r.why);
                     return then(nullptr);
                   }
                   then(protocol::payload_as<Response>(r.payload));
                 });
}

// Per-partition results from several leaders.
template <typename Result>
struct FanOut : detail::Gather<std::map<TP, Result>> {
  void set(const TP& tp, Result r) {
    this->update([&](auto& m) { m[tp] = std::move(r); });
  }
};

void offset_commit(BrokerContext& ctx, const Header& h, Reader& r, std::function<void(Answer)> done) {
  OffsetCommitRequest req;
  if (!parse_offset_commit(r, h.version, max_items(ctx), req)) return done(close_with("malformed OffsetCommit request"));
  struct Topic {
    std::string name;
    std::vector<OffsetCommitRequest::Partition> partitions;
    std::vector<std::string> metadata;
  };
  auto topics = std::make_shared<std::vector<Topic>>();
  for (const auto& t : req.topics) {
    Topic o{std::string(t.name), t.partitions, {}};
    for (const auto& p : t.partitions) o.metadata.emplace_back(p.metadata.value_or(""));
    topics->push_back(std::move(o));
  }
  const std::string group(req.group_id), member(req.member_id);
  std::int16_t whole = !may(ctx, h, AclOperation::read, group) ? kGroupAuthorizationFailed
                       : valid_group_id(group) ? ctx.kafka_groups.check_commit(group, member, req.generation_id)
                                               : KE::invalid_group_id;
  // Topics the principal may not read: TOPIC_AUTHORIZATION_FAILED, before existence is looked at.
  std::set<std::string> denied;
  if (whole == KE::none)
    for (const auto& t : *topics)
      if (!allowed(ctx, h, AclOperation::read, ResourceType::topic, t.name)) denied.insert(t.name);
  auto fan = std::make_shared<FanOut<std::int16_t>>();
  fan->finish = [h, topics, done = std::move(done)](std::map<TP, std::int16_t>& results) {
    Writer w = start(h);
    if (h.version >= 3) w.i32(0);
    w.array_length(static_cast<std::int32_t>(topics->size()));
    for (const auto& t : *topics) {
      w.string(t.name);
      w.array_length(static_cast<std::int32_t>(t.partitions.size()));
      for (const auto& p : t.partitions) {
        w.i32(p.index);
        auto it = results.find({t.name, p.index});
        w.i16(it == results.end() ? KE::coordinator_not_available : it->second);
      }
    }
    done(finish(w));
  };
  // Partitions by leader.
  std::map<node_id, std::vector<std::pair<std::size_t, std::size_t>>> by_leader;
  for (std::size_t ti = 0; ti < topics->size(); ++ti)
    for (std::size_t pi = 0; pi < (*topics)[ti].partitions.size(); ++pi) {
      const auto& t = (*topics)[ti];
      const TP tp{t.name, t.partitions[pi].index};
      if (whole != KE::none || denied.contains(t.name)) {
        fan->set(tp, whole != KE::none ? whole : kTopicAuthorizationFailed);
        continue;
      }
      std::int16_t e = KE::none;
      if (auto l = leader_of(ctx, t.name, tp.second, e)) by_leader[*l].emplace_back(ti, pi);
      else fan->set(tp, e);
    }
  fan->pending += by_leader.size();
  using Items = std::vector<std::pair<std::size_t, std::size_t>>;
  // The native commit of `items` at `leader` (their offsets final by now).
  auto commit_at = [&ctx, topics, fan, group, member, generation = req.generation_id](node_id leader, const Items& items) {
    flatbuffers::FlatBufferBuilder fbb(256);
    std::map<std::string, std::vector<flatbuffers::Offset<wire::OffsetCommitPartition>>> parts;
    std::vector<TP> sent;
    for (const auto& [ti, pi] : items) {
      const auto& t = (*topics)[ti];
      const auto& p = t.partitions[pi];
      parts[t.name].push_back(wire::CreateOffsetCommitPartition(fbb, p.index, p.offset, fbb.CreateString(t.metadata[pi])));
      sent.emplace_back(t.name, p.index);
    }
    std::vector<flatbuffers::Offset<wire::OffsetCommitTopic>> tops;
    for (auto& [name, ps] : parts) tops.push_back(wire::CreateOffsetCommitTopic(fbb, fbb.CreateString(name), fbb.CreateVector(ps)));
    fbb.Finish(wire::CreateOffsetCommitRequest(fbb, fbb.CreateString(group), generation,
                                               member.empty() ? 0 : fbb.CreateString(member), fbb.CreateVector(tops)));
    run_at<wire::OffsetCommitResponse>(ctx, leader, protocol::ApiId::offset_commit, fbb,
                                       [fan, sent = std::move(sent)](const wire::OffsetCommitResponse* resp) {
                                         const auto got = by_partition<std::int16_t>(
                                             resp, [](const wire::OffsetCommitPartitionResponse* p) {
                                               return kafka_code(p->error());
                                             });
                                         for (const auto& tp : sent) {
                                           auto it = got.find(tp);
                                           fan->set(tp, it != got.end() ? it->second : KE::coordinator_not_available);
                                         }
                                         fan->done();
                                       });
  };
  for (auto& [leader, items] : by_leader) {
    // -1 (latest) and -2 (earliest), which KafkaJS's resetOffsets commits, are resolved at the
    // leader first, as `kafka-consumer-groups --reset-offsets` and `quorumq group reset` do: the
    // log then holds a real offset every client (and the native CLI) reads the same way.
    std::map<std::string, std::vector<flatbuffers::Offset<wire::ListOffsetsPartition>>> specs;
    flatbuffers::FlatBufferBuilder fbb(256);
    for (const auto& [ti, pi] : items) {
      const auto& p = (*topics)[ti].partitions[pi];
      if (p.offset == -1 || p.offset == -2)
        specs[(*topics)[ti].name].push_back(wire::CreateListOffsetsPartition(
            fbb, p.index, p.offset == -2 ? wire::OffsetSpec::earliest : wire::OffsetSpec::latest));
    }
    if (specs.empty()) {
      commit_at(leader, items);
      continue;
    }
    std::vector<flatbuffers::Offset<wire::ListOffsetsTopic>> tops;
    for (auto& [name, ps] : specs) tops.push_back(wire::CreateListOffsetsTopic(fbb, fbb.CreateString(name), fbb.CreateVector(ps)));
    fbb.Finish(wire::CreateListOffsetsRequest(fbb, fbb.CreateVector(tops)));
    run_at<wire::ListOffsetsResponse>(
        ctx, leader, protocol::ApiId::list_offsets, fbb,
        [commit_at, topics, fan, leader = leader, items = items](const wire::ListOffsetsResponse* resp) {
          const auto got = by_partition<std::optional<std::int64_t>>(
              resp, [](const wire::ListOffsetsPartitionResponse* p) {
                return p->error() == wire::ErrorCode::none ? std::optional<std::int64_t>(p->offset()) : std::nullopt;
              });
          Items ready;
          for (const auto& [ti, pi] : items) {
            auto& t = (*topics)[ti];
            auto& p = t.partitions[pi];
            if (p.offset == -1 || p.offset == -2) {
              auto it = got.find({t.name, p.index});
              if (it == got.end() || !it->second) {
                fan->set({t.name, p.index}, KE::coordinator_load_in_progress);  // the leader moved: retry
                continue;
              }
              p.offset = *it->second;
            }
            ready.emplace_back(ti, pi);
          }
          if (ready.empty()) return fan->done();
          commit_at(leader, ready);
        });
  }
  fan->done();
}

void offset_fetch(BrokerContext& ctx, const Header& h, Reader& r, std::function<void(Answer)> done) {
  OffsetFetchRequest req;
  if (!parse_offset_fetch(r, h.version, max_items(ctx), req)) return done(close_with("malformed OffsetFetch request"));
  const std::string group(req.group_id);
  struct Topic {
    std::string name;
    std::vector<std::int32_t> partitions;
  };
  auto topics = std::make_shared<std::vector<Topic>>();
  const bool all = !req.topics;
  const bool group_allowed = may(ctx, h, AclOperation::describe, group);
  if (all) {
    for (const auto& t : ctx.topics.list()) {
      if (!visible(ctx, h.who, ResourceType::topic, t->name)) continue;  // as Kafka: left out
      Topic o{t->name, {}};
      for (std::int32_t p = 0; p < t->config.partitions; ++p) o.partitions.push_back(p);
      topics->push_back(std::move(o));
    }
  } else {
    for (const auto& t : *req.topics) topics->push_back({std::string(t.name), t.partitions});
  }
  struct Result {
    std::int64_t offset = -1;
    std::string metadata;
    std::int16_t error = KE::none;
  };
  std::int16_t whole = !group_allowed          ? kGroupAuthorizationFailed
                       : valid_group_id(group) ? ctx.kafka_groups.coordinating()
                                               : KE::invalid_group_id;
  std::set<std::string> denied;  // named topics the principal may not describe
  if (whole == KE::none && !all)
    for (const auto& t : *topics)
      if (!allowed(ctx, h, AclOperation::describe, ResourceType::topic, t.name)) denied.insert(t.name);
  auto fan = std::make_shared<FanOut<Result>>();
  fan->finish = [h, topics, all, whole, done = std::move(done)](std::map<TP, Result>& results) {
    // A partition whose leader could not be asked makes the whole answer "retry" (v2+), so a
    // consumer never starts from a default position while its committed offset is unreadable.
    std::int16_t top = whole;
    for (const auto& [tp, res] : results)
      if (top == KE::none && res.error == KE::coordinator_load_in_progress) top = res.error;
    Writer w = start(h);
    if (h.version >= 3) w.i32(0);
    std::vector<const Topic*> shown;
    for (const auto& t : *topics) {
      const bool any = std::any_of(t.partitions.begin(), t.partitions.end(), [&](std::int32_t p) {
        auto it = results.find({t.name, p});
        return it != results.end() && it->second.offset >= 0;
      });
      if (!all || any) shown.push_back(&t);
    }
    w.array_length(static_cast<std::int32_t>(shown.size()));
    for (const Topic* t : shown) {
      w.string(t->name);
      std::vector<std::pair<std::int32_t, Result>> ps;
      for (const auto p : t->partitions) {
        auto it = results.find({t->name, p});
        Result res = it == results.end() ? Result{-1, {}, KE::coordinator_load_in_progress} : it->second;
        if (all && res.offset < 0) continue;
        if (h.version >= 2 && top != KE::none) res.error = KE::none;  // said once, at the top
        ps.emplace_back(p, std::move(res));
      }
      w.array_length(static_cast<std::int32_t>(ps.size()));
      for (const auto& [p, res] : ps) {
        w.i32(p);
        w.i64(res.offset);
        if (h.version >= 5) w.i32(-1);  // CommittedLeaderEpoch
        w.nullable_string(res.metadata);
        w.i16(res.error);
      }
    }
    if (h.version >= 2) w.i16(top);
    done(finish(w));
  };
  std::map<node_id, std::map<std::string, std::vector<std::int32_t>>> by_leader;
  for (const auto& t : *topics)
    for (const auto p : t.partitions) {
      if (whole != KE::none || denied.contains(t.name)) {
        fan->set({t.name, p}, Result{-1, {}, whole != KE::none ? whole : kTopicAuthorizationFailed});
        continue;
      }
      std::int16_t e = KE::none;
      if (auto l = leader_of(ctx, t.name, p, e)) by_leader[*l][t.name].push_back(p);
      else fan->set({t.name, p}, Result{-1, {}, e == kUnknownTopicOrPartition ? KE::none : e});  // unknown: nothing committed
    }
  fan->pending += by_leader.size();
  for (auto& [leader, parts] : by_leader) {
    flatbuffers::FlatBufferBuilder fbb(256);
    std::vector<flatbuffers::Offset<wire::OffsetFetchTopic>> tops;
    std::vector<TP> sent;
    for (const auto& [name, ps] : parts) {
      tops.push_back(wire::CreateOffsetFetchTopicDirect(fbb, name.c_str(), &ps));
      for (const auto p : ps) sent.emplace_back(name, p);
    }
    fbb.Finish(wire::CreateOffsetFetchRequest(fbb, fbb.CreateString(group), -1, 0, fbb.CreateVector(tops)));
    run_at<wire::OffsetFetchResponse>(
        ctx, leader, protocol::ApiId::offset_fetch, fbb, [fan, sent = std::move(sent)](const wire::OffsetFetchResponse* resp) {
          const auto got = by_partition<Result>(resp, [](const wire::OffsetFetchPartitionResponse* p) {
            const auto code = p->error();
            // A leader that moved meanwhile: retry (the client asks again).
            const std::int16_t e = code == wire::ErrorCode::none ? KE::none : KE::coordinator_load_in_progress;
            return Result{p->offset(), p->metadata() ? p->metadata()->str() : std::string(), e};
          });
          for (const auto& tp : sent) {
            auto it = got.find(tp);
            fan->set(tp, it != got.end() ? it->second : Result{-1, {}, KE::coordinator_load_in_progress});
          }
          fan->done();
        });
  }
  fan->done();
}

// ---- ListGroups 0-2, DescribeGroups 0-3 --------------------------------------------------------
Answer list_groups(BrokerContext& ctx, const Header& h, Reader& r) {
  if (!parse_list_groups(r, h.version)) return close_with("malformed ListGroups request");
  // Only the coordinator lists groups (admin tools ask every broker and merge).
  auto groups = ctx.kafka_groups.list();
  std::erase_if(groups, [&](const auto& g) { return !visible(ctx, h.who, ResourceType::group, g.first); });
  Writer w = start(h);
  if (h.version >= 1) w.i32(0);
  w.i16(KE::none);
  w.array_length(static_cast<std::int32_t>(groups.size()));
  for (const auto& [name, type] : groups) {
    w.string(name);
    w.string(type);
  }
  return finish(w);
}

Answer describe_groups(BrokerContext& ctx, const Header& h, Reader& r) {
  DescribeGroupsRequest req;
  if (!parse_describe_groups(r, h.version, max_items(ctx), req)) return close_with("malformed DescribeGroups request");
  Writer w = start(h);
  if (h.version >= 1) w.i32(0);
  w.array_length(static_cast<std::int32_t>(req.groups.size()));
  for (const auto g : req.groups) {
    if (!may(ctx, h, AclOperation::describe, g)) {
      w.i16(kGroupAuthorizationFailed);
      w.string(g);
      w.string("");
      w.string("");
      w.string("");
      w.array_length(0);
      if (h.version >= 3) w.i32(std::numeric_limits<std::int32_t>::min());
      continue;
    }
    const auto info = ctx.kafka_groups.describe(std::string(g));
    w.i16(info.error);
    w.string(g);
    w.string(info.state);
    w.string(info.protocol_type);
    w.string(info.protocol);
    w.array_length(static_cast<std::int32_t>(info.members.size()));
    for (const auto& m : info.members) {
      w.string(m.id);
      w.string(m.client_id);
      w.string(m.client_host);
      w.bytes(m.metadata);
      w.bytes(m.assignment);
    }
    if (h.version >= 3) w.i32(std::numeric_limits<std::int32_t>::min());  // AuthorizedOperations: not asked
  }
  return finish(w);
}

// ---- CreateTopics 0-4, DeleteTopics 0-3 (the controller's leader) ---------------------------------
struct TopicOutcome {
  std::string name;
  std::int16_t error = KE::none;
  std::string message;
};

std::int16_t admin_code(const Status& s) {
  if (s.code == wire::ErrorCode::not_leader || s.code == wire::ErrorCode::leader_not_available) return kNotController;
  if (s.code == wire::ErrorCode::invalid_request) return kInvalidRequest;
  const auto k = kafka_code(s.code);
  return k;
}

// Every topic's outcome of a CreateTopics / DeleteTopics.
struct TopicFan : detail::Gather<std::vector<TopicOutcome>> {
  void set(std::size_t i, std::optional<Status> err) {
    if (err) update([&](auto& out) { out[i].error = admin_code(*err), out[i].message = err->message; });
  }
};

void create_topics(BrokerContext& ctx, const Header& h, Reader& r, std::function<void(Answer)> done) {
  CreateTopicsRequest req;
  if (!parse_create_topics(r, h.version, max_items(ctx), req)) return done(close_with("malformed CreateTopics request"));
  auto fan = std::make_shared<TopicFan>();
  fan->finish = [h, done = std::move(done)](const std::vector<TopicOutcome>& out) {
    Writer w = start(h);
    if (h.version >= 2) w.i32(0);
    w.array_length(static_cast<std::int32_t>(out.size()));
    for (const auto& t : out) {
      w.string(t.name);
      w.i16(t.error);
      if (h.version >= 1)
        w.nullable_string(t.message.empty() ? std::nullopt : std::optional<std::string_view>(t.message));
    }
    done(finish(w));
  };
  const bool controller = ctx.controller.leader() == ctx.replication.self();
  std::vector<std::pair<std::size_t, TopicConfig>> work;
  for (const auto& t : req.topics) {
    fan->results.push_back({std::string(t.name), KE::none, {}});
    const std::size_t i = fan->results.size() - 1;
    auto& o = fan->results[i];
    TopicConfig tc;
    tc.partitions = t.partitions < 0 ? static_cast<std::int32_t>(ctx.config.default_partitions) : t.partitions;
    tc.replication_factor = t.replication_factor < 0 ? static_cast<std::int16_t>(std::min(3, ctx.cluster_size()))
                                                     : t.replication_factor;
    for (const auto& c : t.configs) tc.configs[std::string(c.name)] = std::string(c.value.value_or(""));
    if (!allowed(ctx, h, AclOperation::create, ResourceType::topic, o.name)) {
      o.error = kTopicAuthorizationFailed, o.message = "not authorized to create topic " + o.name;
    } else if (!controller) {
      o.error = kNotController, o.message = "send CreateTopics to the controller (Metadata's ControllerId)";
    } else if (t.manual_assignment) {
      o.error = kInvalidRequest, o.message = "replica assignments are chosen by quorumq; give a replication factor";
    } else if (auto e = validate_topic_configs(tc.configs)) {
      o.error = admin_code(*e), o.message = e->message;
    } else if (auto v = ctx.topics.validate_create(o.name, tc, ctx.cluster_size())) {
      o.error = v->code == wire::ErrorCode::invalid_request ? kInvalidTopic : admin_code(*v), o.message = v->message;
    } else if (!req.validate_only) {
      work.emplace_back(i, std::move(tc));
    }
  }
  fan->pending += work.size();
  for (auto& [i, tc] : work)
    ctx.controller.create_topic(fan->results[i].name, tc, [fan, i = i](std::optional<Status> err) {
      fan->set(i, std::move(err));
      fan->done();
    });
  fan->done();
}

void delete_topics(BrokerContext& ctx, const Header& h, Reader& r, std::function<void(Answer)> done) {
  DeleteTopicsRequest req;
  if (!parse_delete_topics(r, h.version, max_items(ctx), req)) return done(close_with("malformed DeleteTopics request"));
  auto fan = std::make_shared<TopicFan>();
  fan->finish = [h, done = std::move(done)](const std::vector<TopicOutcome>& out) {
    Writer w = start(h);
    if (h.version >= 1) w.i32(0);
    w.array_length(static_cast<std::int32_t>(out.size()));
    for (const auto& t : out) {
      w.string(t.name);
      w.i16(t.error);
    }
    done(finish(w));
  };
  const bool controller = ctx.controller.leader() == ctx.replication.self();
  for (const auto t : req.topics)
    fan->results.push_back({std::string(t),
                            !allowed(ctx, h, AclOperation::del, ResourceType::topic, t) ? kTopicAuthorizationFailed
                            : controller                                              ? KE::none
                                                                                      : kNotController,
                            {}});
  if (controller) {
    // Every step counted before the first starts: a callback may run (and count down) at once.
    for (const auto& o : fan->results) fan->pending += o.error == KE::none ? 1 : 0;
    for (std::size_t i = 0; i < fan->results.size(); ++i) {
      if (fan->results[i].error != KE::none) continue;
      ctx.controller.delete_topic(fan->results[i].name, [fan, i](std::optional<Status> err) {
        fan->set(i, std::move(err));
        fan->done();
      });
    }
  }
  fan->done();
}

// ---- DescribeConfigs 0-2 -------------------------------------------------------------------
// Topics: the settings quorumq has (retention.ms, retention.bytes, max.message.bytes), each the
// topic's own value or the broker's default; brokers: none listed.
Answer describe_configs(BrokerContext& ctx, const Header& h, Reader& r) {
  DescribeConfigsRequest req;
  if (!parse_describe_configs(r, h.version, max_items(ctx), req)) return close_with("malformed DescribeConfigs request");
  Writer w = start(h);
  w.i32(0);
  w.array_length(static_cast<std::int32_t>(req.resources.size()));
  for (const auto& res : req.resources) {
    struct Entry {
      std::string name, value;
      bool is_default;
    };
    std::vector<Entry> entries;
    std::int16_t error = KE::none;
    std::string message;
    if (res.type == 2) {
      const bool may_describe = allowed(ctx, h, AclOperation::describe, ResourceType::topic, res.name);
      auto t = may_describe ? ctx.topics.find(std::string(res.name)) : nullptr;
      if (!may_describe) {
        error = kTopicAuthorizationFailed, message = "not authorized to describe topic " + std::string(res.name);
      } else if (!t) {
        error = kUnknownTopicOrPartition, message = "topic " + std::string(res.name) + " does not exist";
      } else {
        const auto& c = ctx.config;
        const auto& own = t->config.configs;
        auto add = [&](const std::string& key, const std::string& broker_default) {
          auto it = own.find(key);
          entries.push_back({key, it != own.end() ? it->second : broker_default, it == own.end()});
        };
        add("retention.ms", std::to_string(c.retention_ms.value_or(-1)));
        add("retention.bytes", c.retention_bytes ? std::to_string(*c.retention_bytes) : "-1");
        add("max.message.bytes", std::to_string(c.max_message_bytes));
        add("cleanup.policy", "delete");
      }
    } else if (res.type != 4) {
      error = kInvalidRequest, message = "only topic (2) and broker (4) resources are described";
    }
    if (res.keys)
      std::erase_if(entries, [&](const Entry& e) {
        return std::find(res.keys->begin(), res.keys->end(), e.name) == res.keys->end();
      });
    w.i16(error);
    w.nullable_string(message.empty() ? std::nullopt : std::optional<std::string_view>(message));
    w.i8(res.type);
    w.string(res.name);
    w.array_length(static_cast<std::int32_t>(entries.size()));
    for (const auto& e : entries) {
      w.string(e.name);
      w.nullable_string(e.value);
      w.boolean(e.name == "cleanup.policy");  // ReadOnly: quorumq does not compact
      if (h.version == 0) w.boolean(e.is_default);
      else w.i8(e.is_default ? 5 : 1);  // ConfigSource: DEFAULT_CONFIG / DYNAMIC_TOPIC_CONFIG
      w.boolean(false);                  // IsSensitive
      if (h.version >= 1) w.array_length(0);  // Synonyms
    }
  }
  return finish(w);
}

}  // namespace

std::span<const ApiRange> group_apis() { return kGroupApis; }

bool handle_group_api(BrokerContext& ctx, const Header& h, Reader& r, std::function<void(Answer)>& done) {
  switch (h.key) {
    case api::find_coordinator: done(find_coordinator(ctx, h, r)); return true;
    case api::join_group: join_group(ctx, h, r, std::move(done)); return true;
    case api::sync_group: sync_group(ctx, h, r, std::move(done)); return true;
    case api::heartbeat: done(heartbeat(ctx, h, r)); return true;
    case api::leave_group: done(leave_group(ctx, h, r)); return true;
    case api::offset_commit: offset_commit(ctx, h, r, std::move(done)); return true;
    case api::offset_fetch: offset_fetch(ctx, h, r, std::move(done)); return true;
    case api::list_groups: done(list_groups(ctx, h, r)); return true;
    case api::describe_groups: done(describe_groups(ctx, h, r)); return true;
    case api::create_topics: create_topics(ctx, h, r, std::move(done)); return true;
    case api::delete_topics: delete_topics(ctx, h, r, std::move(done)); return true;
    case api::describe_configs: done(describe_configs(ctx, h, r)); return true;
    default: return false;
  }
}

}  // namespace quorumq::broker::kafka
