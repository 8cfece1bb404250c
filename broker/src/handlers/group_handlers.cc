// GroupHeartbeat (api 11) and DescribeGroups (api 12): the wire side of consumer groups
// (group_coordinator.h has the logic, groups.h the replicated state).
#include <map>

#include "handler_util.h"
#include "security_handlers.h"

namespace quorumq::broker::detail {

namespace {

using Parts = std::set<TopicPartitionKey>;

Parts read_parts(const flatbuffers::Vector<flatbuffers::Offset<GroupTopicPartitions>>* v) {
  Parts out;
  if (!v) return out;
  for (const auto* t : *v) {
    if (!t->topic() || !t->partitions()) continue;
    for (const std::int32_t p : *t->partitions()) out.emplace(t->topic()->str(), p);
  }
  return out;
}

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<GroupTopicPartitions>>> write_parts(
    flatbuffers::FlatBufferBuilder& fbb, const Parts& parts) {
  std::map<std::string, std::vector<std::int32_t>> by_topic;
  for (const auto& [t, p] : parts) by_topic[t].push_back(p);
  std::vector<flatbuffers::Offset<GroupTopicPartitions>> v;
  for (const auto& [t, ps] : by_topic) v.push_back(CreateGroupTopicPartitionsDirect(fbb, t.c_str(), &ps));
  return fbb.CreateVector(v);
}

}  // namespace

// What one member may make the coordinator (and the replicated group state) hold.
std::optional<std::string> heartbeat_over_limits(BrokerContext& ctx, const GroupHeartbeatRequest* req) {
  const auto& c = cfg(ctx);
  if (req->member_id() && req->member_id()->size() > 255) return "member id longer than 255 bytes";
  if (req->client_id() && req->client_id()->size() > 255) return "client id longer than 255 bytes";
  if (req->assignor() && req->assignor()->size() > 64) return "assignor name longer than 64 bytes";
  if (req->topics()) {
    if (req->topics()->size() > c.max_subscription_topics)
      return "a member may subscribe to at most " + std::to_string(c.max_subscription_topics) +
             " topics (--max-subscription-topics); this one named " + std::to_string(req->topics()->size());
    for (const auto* t : *req->topics()) {
      std::string why;
      if (!TopicManager::valid_name(t->str(), &why)) return "subscribed topic '" + t->str().substr(0, 64) + "': " + why;
    }
  }
  std::size_t owned = 0;
  if (req->owned())
    for (const auto* t : *req->owned())
      if (t->partitions()) owned += t->partitions()->size();
  if (owned > c.max_partitions_per_request)
    return "the heartbeat reports " + std::to_string(owned) + " owned partitions, more than " +
           std::to_string(c.max_partitions_per_request) + " (--max-partitions-per-request)";
  return std::nullopt;
}

void handle_group_heartbeat(BrokerContext& ctx, const FrameHeader& h, const GroupHeartbeatRequest* req, Respond respond) {
  if (auto why = heartbeat_over_limits(ctx, req))
    return respond(protocol::make_error_response(h, ErrorCode::invalid_request, *why));
  GroupCoordinator::Heartbeat hb;
  hb.group = str(req->group_id());
  hb.member_id = str(req->member_id());
  hb.generation = req->generation_id();
  hb.client_id = str(req->client_id());
  if (req->topics())
    for (const auto* t : *req->topics()) hb.topics.push_back(t->str());
  hb.assignor = str(req->assignor());
  hb.session_timeout_ms = req->session_timeout_ms();
  hb.rebalance_timeout_ms = req->rebalance_timeout_ms();
  hb.owned = read_parts(req->owned());
  hb.leave = req->leave();
  hb.max_wait_ms = std::clamp(req->max_wait_ms(), 0, 30000);
  ctx.coordinator.heartbeat(std::move(hb), [&ctx, h, respond = std::move(respond)](GroupCoordinator::Answer a) {
    flatbuffers::FlatBufferBuilder fbb(256);
    const auto msg = a.message.empty() ? 0 : fbb.CreateString(a.message);
    const auto id = fbb.CreateString(a.member_id);
    const auto parts = write_parts(fbb, a.assignment);
    const auto hint = make_hint(fbb, ctx, a.coordinator);
    auto root = CreateGroupHeartbeatResponse(fbb, a.error, msg, id, a.generation, parts, hint, a.heartbeat_interval_ms);
    respond(finish_response(fbb, root, h));
  });
}

void handle_describe_groups(BrokerContext& ctx, const FrameHeader& h, const DescribeGroupsRequest* req, Respond respond,
                            const Principal& who) {
  std::vector<GroupState> states;
  std::vector<std::string> missing;
  if (req->group_ids() && req->group_ids()->size() > cfg(ctx).max_partitions_per_request)
    return respond(protocol::make_error_response(h, ErrorCode::invalid_request,
                                                 "the request names more than " +
                                                     std::to_string(cfg(ctx).max_partitions_per_request) +
                                                     " groups (--max-partitions-per-request)"));
  std::vector<std::string> refused;
  if (req->group_ids() && req->group_ids()->size() > 0) {
    for (const auto* g : *req->group_ids()) {
      if (!visible(ctx, who, ResourceType::group, g->str())) refused.push_back(g->str());
      else if (auto s = ctx.groups.get(g->str())) states.push_back(std::move(*s));
      else missing.push_back(g->str());
    }
  } else {
    for (auto& s : ctx.groups.all())
      if (visible(ctx, who, ResourceType::group, s.name)) states.push_back(std::move(s));
  }
  const auto coordinator = ctx.controller.leader();
  flatbuffers::FlatBufferBuilder fbb(1024);
  std::vector<flatbuffers::Offset<GroupDescription>> out;
  for (const auto& s : states) {
    // A Kafka group's target is what its leader assigned (its owners); a native group's, the assignor's.
    Assignment target;
    if (s.is_kafka()) {
      for (const auto& [tp, o] : s.owners) target[tp] = o.member;
    } else {
      target = GroupCoordinator::target_of(s, ctx.topics);
    }
    bool stable = true;
    std::vector<flatbuffers::Offset<GroupMemberDescription>> members;
    for (const auto& [id, m] : s.members) {
      Parts owned, goal;
      for (const auto& [tp, o] : s.owners)
        if (o.member == id) owned.insert(tp);
      for (const auto& [tp, who] : target)
        if (who == id) goal.insert(tp);
      const Parts rev = revoking(s, target, id);
      if (owned != goal) stable = false;
      std::vector<flatbuffers::Offset<flatbuffers::String>> topics;
      for (const auto& t : m.topics) topics.push_back(fbb.CreateString(t));
      members.push_back(CreateGroupMemberDescription(fbb, fbb.CreateString(id), fbb.CreateString(m.client_id), 0,
                                                     fbb.CreateVector(topics), write_parts(fbb, owned),
                                                     write_parts(fbb, rev), write_parts(fbb, goal)));
    }
    const char* state = s.members.empty() ? "empty" : stable ? "stable" : "rebalancing";
    out.push_back(CreateGroupDescription(fbb, fbb.CreateString(s.name), ErrorCode::none, fbb.CreateString(state),
                                         s.generation, fbb.CreateString(s.assignor),
                                         coordinator ? coordinator->value : -1, fbb.CreateVector(members)));
  }
  for (const auto& m : refused)
    out.push_back(CreateGroupDescription(fbb, fbb.CreateString(m), ErrorCode::group_authorization_failed,
                                         fbb.CreateString("unknown"), -1, 0, coordinator ? coordinator->value : -1));
  for (const auto& m : missing)
    out.push_back(CreateGroupDescription(fbb, fbb.CreateString(m), ErrorCode::group_id_not_found,
                                         fbb.CreateString("unknown"), -1, 0, coordinator ? coordinator->value : -1));
  auto root = CreateDescribeGroupsResponse(fbb, ErrorCode::none, fbb.CreateVector(out));
  respond(finish_response(fbb, root, h));
}

}  // namespace quorumq::broker::detail
