// Authorization of native requests and the security apis (issue 18): AlterUsers, DescribeUsers,
// CreateAcls, DeleteAcls, DescribeAcls. Every request is checked here before its handler runs
// (authorize()), so no handler can forget; the listing apis (Metadata, ListTopics,
// DescribeGroups) also filter what they show with visible().
#include <spdlog/spdlog.h>

#include "handler_util.h"
#include "handlers.h"
#include "security_handlers.h"

namespace quorumq::broker {

using namespace detail;
namespace scram = protocol::scram;

namespace {

using Check = std::tuple<AclOperation, ResourceType, std::string>;

ErrorCode refusal_code(ResourceType t) {
  switch (t) {
    case ResourceType::topic: return ErrorCode::topic_authorization_failed;
    case ResourceType::group: return ErrorCode::group_authorization_failed;
    case ResourceType::cluster: return ErrorCode::cluster_authorization_failed;
  }
  return ErrorCode::cluster_authorization_failed;
}

template <class Topics>
void add_topics(std::vector<Check>& out, AclOperation op, const Topics* topics) {
  if (topics)
    for (const auto* t : *topics) out.emplace_back(op, ResourceType::topic, t->name() ? t->name()->str() : "");
}

// What a request needs: (operation, resource) pairs, all of which must be allowed.
std::vector<Check> checks_for(const FrameHeader& h, std::span<const std::uint8_t> payload) {
  using protocol::payload_as;
  std::vector<Check> c;
  const auto cluster = std::string(kClusterResource);
  switch (h.api_id) {
    case ApiId::produce: add_topics(c, AclOperation::write, payload_as<ProduceRequest>(payload)->topics()); break;
    case ApiId::fetch: add_topics(c, AclOperation::read, payload_as<FetchRequest>(payload)->topics()); break;
    case ApiId::list_offsets:
      add_topics(c, AclOperation::describe, payload_as<ListOffsetsRequest>(payload)->topics());
      break;
    case ApiId::create_topic:
      c.emplace_back(AclOperation::create, ResourceType::topic, str(payload_as<CreateTopicRequest>(payload)->name()));
      break;
    case ApiId::delete_topic:
      c.emplace_back(AclOperation::del, ResourceType::topic, str(payload_as<DeleteTopicRequest>(payload)->name()));
      break;
    case ApiId::alter_topic_config:
      c.emplace_back(AclOperation::alter, ResourceType::topic, str(payload_as<AlterTopicConfigRequest>(payload)->name()));
      break;
    case ApiId::offset_commit: {
      const auto* r = payload_as<OffsetCommitRequest>(payload);
      c.emplace_back(AclOperation::read, ResourceType::group, str(r->group_id()));
      add_topics(c, AclOperation::read, r->topics());
      break;
    }
    case ApiId::offset_fetch: {
      const auto* r = payload_as<OffsetFetchRequest>(payload);
      c.emplace_back(AclOperation::describe, ResourceType::group, str(r->group_id()));
      add_topics(c, AclOperation::describe, r->topics());
      break;
    }
    case ApiId::offset_delete: {
      const auto* r = payload_as<OffsetDeleteRequest>(payload);
      c.emplace_back(AclOperation::del, ResourceType::group, str(r->group_id()));
      add_topics(c, AclOperation::read, r->topics());
      break;
    }
    case ApiId::group_heartbeat:
      c.emplace_back(AclOperation::read, ResourceType::group, str(payload_as<GroupHeartbeatRequest>(payload)->group_id()));
      break;
    case ApiId::alter_users:
    case ApiId::create_acls:
    case ApiId::delete_acls: c.emplace_back(AclOperation::alter, ResourceType::cluster, cluster); break;
    case ApiId::describe_users:
    case ApiId::describe_acls: c.emplace_back(AclOperation::describe, ResourceType::cluster, cluster); break;
    // Metadata, ListTopics and DescribeGroups filter what they show; ApiVersions and
    // InitProducerId (an id, no data) need only an authenticated connection.
    default: break;
  }
  return c;
}

std::string str_of(const flatbuffers::Vector<std::uint8_t>* v) {
  return v ? std::string(reinterpret_cast<const char*>(v->data()), v->size()) : std::string();
}

std::optional<AclEntry> to_entry(const AclBinding* b, std::string* why) {
  AclEntry e;
  e.principal = str(b->principal());
  e.host = b->host() ? b->host()->str() : "*";
  e.allow = b->allow();
  const auto op = parse_operation(str(b->operation()));
  const auto type = parse_resource_type(str(b->resource_type()));
  const auto pattern = b->pattern() ? b->pattern()->str() : "literal";
  if (!op) return *why = "unknown operation '" + str(b->operation()) + "' (read, write, create, delete, describe, alter, all)", std::nullopt;
  if (!type) return *why = "unknown resource type '" + str(b->resource_type()) + "' (topic, group, cluster)", std::nullopt;
  if (pattern != "literal" && pattern != "prefixed") return *why = "pattern must be literal or prefixed", std::nullopt;
  e.operation = *op;
  e.resource_type = *type;
  e.prefixed = pattern == "prefixed";
  e.name = *type == ResourceType::cluster ? std::string(kClusterResource) : str(b->name());
  if (auto v = validate(e); !v.empty()) return *why = v, std::nullopt;
  return e;
}

flatbuffers::Offset<AclBinding> write_binding(flatbuffers::FlatBufferBuilder& fbb, const AclEntry& a) {
  return CreateAclBindingDirect(fbb, a.principal.c_str(), a.host.c_str(), a.allow, operation_name(a.operation),
                                resource_type_name(a.resource_type), a.prefixed ? "prefixed" : "literal", a.name.c_str());
}

// An empty filter field matches anything.
bool filter_matches(const AclBinding* f, bool any_permission, const AclEntry& a) {
  if (!f) return true;
  auto set = [](const flatbuffers::String* s) { return s && s->size() > 0; };
  if (set(f->principal()) && f->principal()->str() != a.principal) return false;
  if (!any_permission && f->allow() != a.allow) return false;
  if (set(f->operation()) && f->operation()->str() != operation_name(a.operation)) return false;
  if (set(f->resource_type()) && f->resource_type()->str() != resource_type_name(a.resource_type)) return false;
  if (set(f->pattern()) && (f->pattern()->str() == "prefixed") != a.prefixed) return false;
  if (set(f->name()) && f->name()->str() != a.name) return false;
  return true;
}

template <class Response>
void answer(const FrameHeader& h, Respond& respond, ErrorCode code, const std::string& message) {
  flatbuffers::FlatBufferBuilder fbb(128);
  const auto m = fbb.CreateString(message);
  typename Response::Builder b(fbb);
  b.add_error(code);
  b.add_message(m);
  respond(finish_response(fbb, b.Finish(), h));
}

template <class Response>
void propose_and_answer(BrokerContext& ctx, const FrameHeader& h, std::vector<std::vector<std::uint8_t>> records,
                        Respond respond, std::string ok_message) {
  if (records.empty()) return answer<Response>(h, respond, ErrorCode::none, ok_message);
  // One command per record; answered after the last commits, with the first failure if any.
  auto g = std::make_shared<Gather<std::optional<Status>>>();
  g->finish = [h, respond = std::move(respond), ok_message](std::optional<Status>& failed) mutable {
    if (failed) answer<Response>(h, respond, failed->code, failed->message);
    else answer<Response>(h, respond, ErrorCode::none, ok_message);
  };
  g->pending += records.size();
  for (auto& rec : records)
    ctx.controller.propose_raw(std::move(rec), [g](std::optional<Status> s) {
      if (s) g->update([&](auto& failed) {
          if (!failed) failed = std::move(s);
        });
      g->done();
    });
  g->done();
}

}  // namespace

void count_refusal(BrokerContext& ctx, const Principal& who, AclOperation op, ResourceType type, std::string_view name,
                   std::string_view api) {
  ctx.metrics.authorization_failures.fetch_add(1, std::memory_order_relaxed);
  if (ctx.security.may_log_refusal())
    spdlog::info("authorization: {} may not {} {} '{}' ({} refused)", who.name.empty() ? "anonymous" : who.name,
                 operation_name(op), resource_type_name(type), name, api);
}

void count_login(BrokerContext& ctx, std::string_view listener, const std::string& peer, const SaslSession& session,
                 const SaslSession::Step& step, bool limit_failure_log) {
  if (step.outcome == SaslSession::Step::failed) {
    ctx.metrics.sasl_authentication_failures.fetch_add(1, std::memory_order_relaxed);
    if (!limit_failure_log)
      spdlog::warn("{} connection {}: SASL authentication failed (user '{}'): {}", listener, peer, session.user(),
                   step.why);
    else if (ctx.security.may_log_login_failure(peer.substr(0, peer.rfind(':'))))
      spdlog::warn("{} connection {}: SASL authentication failed (user '{}'): {} (further failures from this address "
                   "within a minute are counted in quorumq_sasl_authentication_failures_total, not logged)",
                   listener, peer, session.user(), step.why);
  } else if (step.outcome == SaslSession::Step::done) {
    ctx.metrics.sasl_authentications.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("{} connection {}: authenticated as {}", listener, peer, session.principal().name);
  }
}

std::optional<protocol::OutgoingFrame> authorize(BrokerContext& ctx, const FrameHeader& h,
                                                 std::span<const std::uint8_t> payload, const Principal& who) {
  if (!ctx.security.authorization_enabled()) return std::nullopt;
  for (const auto& [op, type, name] : checks_for(h, payload)) {
    if (ctx.security.allowed(who, op, type, name)) continue;
    count_refusal(ctx, who, op, type, name, protocol::api_name(h.api_id));
    return protocol::make_error_response(
        h, refusal_code(type),
        (who.name.empty() ? std::string("anonymous") : who.name) + " may not " + operation_name(op) + " " +
            resource_type_name(type) + " '" + name + "': ask an administrator for an ACL (quorumq acl add --principal " +
            (who.name.empty() ? std::string("User:NAME") : who.name) + " --operation " + operation_name(op) + " --" +
            resource_type_name(type) + " " + name + ")");
  }
  return std::nullopt;
}

bool visible(BrokerContext& ctx, const Principal& who, ResourceType type, const std::string& name) {
  return ctx.security.allowed(who, AclOperation::describe, type, name);
}

namespace detail {

void handle_alter_users(BrokerContext& ctx, const FrameHeader& h, const AlterUsersRequest* req, Respond respond) {
  std::vector<std::vector<std::uint8_t>> records;
  std::size_t known = ctx.security.users().size();
  if (req->upserts())
    for (const auto* u : *req->upserts()) {
      UserInfo info{str(u->name()), {}};
      if (info.name.empty() || info.name.size() > scram::kMaxUserBytes)
        return answer<AlterUsersResponse>(h, respond, ErrorCode::invalid_request, "a user name must be 1..256 bytes");
      if (info.name == Security::kBrokerUser)
        return answer<AlterUsersResponse>(h, respond, ErrorCode::invalid_request, "that user name is reserved");
      const bool exists = ctx.security.user_exists(info.name);
      if (req->create_only() && exists)
        return answer<AlterUsersResponse>(h, respond, ErrorCode::invalid_request,
                                          "user " + info.name + " exists (use `quorumq user passwd` to change it)");
      if (req->update_only() && !exists)
        return answer<AlterUsersResponse>(h, respond, ErrorCode::invalid_request,
                                          "no user " + info.name + " (use `quorumq user create`)");
      if (!exists && ++known > Security::kMaxUsers)
        return answer<AlterUsersResponse>(h, respond, ErrorCode::invalid_request,
                                          "the cluster holds the most users it takes (10,000); delete some first");
      if (!u->credentials() || u->credentials()->size() == 0 || u->credentials()->size() > 2)
        return answer<AlterUsersResponse>(h, respond, ErrorCode::invalid_request,
                                          "give one credential per mechanism (SCRAM-SHA-256, SCRAM-SHA-512)");
      for (const auto* c : *u->credentials()) {
        scram::Credential cr;
        const auto mech = scram::mechanism_from_name(str(c->mechanism()));
        if (!mech)
          return answer<AlterUsersResponse>(h, respond, ErrorCode::unsupported_sasl_mechanism,
                                            "unknown mechanism '" + str(c->mechanism()) + "'");
        cr.mechanism = *mech;
        cr.iterations = c->iterations();
        cr.salt = str_of(c->salt());
        cr.stored_key = str_of(c->stored_key());
        cr.server_key = str_of(c->server_key());
        if (!scram::valid(cr))
          return answer<AlterUsersResponse>(h, respond, ErrorCode::invalid_request,
                                            "malformed credential (iterations must be 4096..1000000, keys the "
                                            "mechanism's hash size)");
        info.credentials.push_back(std::move(cr));
      }
      records.push_back(Security::encode_user(info));
    }
  if (req->deletes())
    for (const auto* d : *req->deletes()) {
      if (!ctx.security.user_exists(d->str()))
        return answer<AlterUsersResponse>(h, respond, ErrorCode::invalid_request, "no user " + d->str());
      records.push_back(Security::encode_user_delete(d->str()));
    }
  if (records.size() > 100)
    return answer<AlterUsersResponse>(h, respond, ErrorCode::invalid_request, "at most 100 changes per request");
  propose_and_answer<AlterUsersResponse>(ctx, h, std::move(records), std::move(respond), "");
}

void handle_describe_users(BrokerContext& ctx, const FrameHeader& h, const DescribeUsersRequest*, Respond respond) {
  flatbuffers::FlatBufferBuilder fbb(512);
  std::vector<flatbuffers::Offset<UserDescription>> out;
  for (const auto& u : ctx.security.users()) {
    std::vector<flatbuffers::Offset<flatbuffers::String>> mechs;
    std::vector<std::int32_t> iters;
    for (const auto& c : u.credentials) mechs.push_back(fbb.CreateString(scram::mechanism_name(c.mechanism))), iters.push_back(c.iterations);
    out.push_back(CreateUserDescriptionDirect(fbb, u.name.c_str(), &mechs, &iters));
  }
  auto root = CreateDescribeUsersResponseDirect(fbb, ErrorCode::none, nullptr, &out);
  respond(finish_response(fbb, root, h));
}

void handle_create_acls(BrokerContext& ctx, const FrameHeader& h, const CreateAclsRequest* req, Respond respond) {
  std::vector<AclEntry> acls;
  if (!req->acls() || req->acls()->size() == 0)
    return answer<CreateAclsResponse>(h, respond, ErrorCode::invalid_request, "no ACL given");
  if (req->acls()->size() > 100)
    return answer<CreateAclsResponse>(h, respond, ErrorCode::invalid_request, "at most 100 ACLs per request");
  for (const auto* b : *req->acls()) {
    std::string why;
    auto e = to_entry(b, &why);
    if (!e) return answer<CreateAclsResponse>(h, respond, ErrorCode::invalid_request, why);
    acls.push_back(std::move(*e));
  }
  if (ctx.security.acl_count() + acls.size() > Security::kMaxAcls)
    return answer<CreateAclsResponse>(h, respond, ErrorCode::invalid_request,
                                      "the cluster holds the most ACLs it takes (10,000); remove some first");
  std::vector<std::vector<std::uint8_t>> records;
  records.push_back(Security::encode_acls(acls, true));
  propose_and_answer<CreateAclsResponse>(ctx, h, std::move(records), std::move(respond), "");
}

void handle_delete_acls(BrokerContext& ctx, const FrameHeader& h, const DeleteAclsRequest* req, Respond respond) {
  std::vector<AclEntry> gone;
  for (const auto& a : ctx.security.acls()) {
    bool hit = false;
    if (req->filters())
      for (const auto* f : *req->filters()) hit = hit || filter_matches(f, req->any_permission(), a);
    if (hit) gone.push_back(a);
  }
  flatbuffers::FlatBufferBuilder fbb(256);
  std::vector<flatbuffers::Offset<AclBinding>> out;
  for (const auto& a : gone) out.push_back(write_binding(fbb, a));
  const auto deleted = fbb.CreateVector(out);
  auto built = std::make_shared<flatbuffers::FlatBufferBuilder>(std::move(fbb));
  if (gone.empty()) {
    auto root = CreateDeleteAclsResponse(*built, ErrorCode::none, 0, deleted);
    return respond(finish_response(*built, root, h));
  }
  ctx.controller.propose_raw(Security::encode_acls(gone, false),
                             [h, built, deleted, respond = std::move(respond)](std::optional<Status> s) mutable {
                               if (s) return answer<DeleteAclsResponse>(h, respond, s->code, s->message);
                               auto root = CreateDeleteAclsResponse(*built, ErrorCode::none, 0, deleted);
                               respond(finish_response(*built, root, h));
                             });
}

void handle_describe_acls(BrokerContext& ctx, const FrameHeader& h, const DescribeAclsRequest* req, Respond respond) {
  flatbuffers::FlatBufferBuilder fbb(512);
  std::vector<flatbuffers::Offset<AclBinding>> out;
  for (const auto& a : ctx.security.acls())
    if (filter_matches(req->filter(), req->any_permission(), a)) out.push_back(write_binding(fbb, a));
  auto root = CreateDescribeAclsResponseDirect(fbb, ErrorCode::none, nullptr, &out);
  respond(finish_response(fbb, root, h));
}

}  // namespace detail

}  // namespace quorumq::broker
