#include "quorumq/admin.h"

#include <thread>

#include "admin_impl.h"
#include "membership.h"
#include "requests.h"

namespace quorumq {


std::optional<Error> Admin::Impl::create_topic(const std::string& name, std::int32_t partitions, std::int16_t rf,
                                               const std::map<std::string, std::string>& configs) {
  if (name.empty() || partitions <= 0 || rf <= 0)
    return Error{make_error_code(ClientError::invalid_argument),
                 "create_topic needs a name, partitions >= 1 and replicas >= 1"};
  auto self = shared_from_this();
  const auto dl = deadline();
  auto r = sync<client::Unit>([self, name, partitions, rf, configs, dl](std::function<void(std::expected<client::Unit, Error>)> done) {
    self->core_->call(
        client::kController, protocol::ApiId::create_topic,
        [=, timeout = self->cfg_.api_timeout_ms] {
          flatbuffers::FlatBufferBuilder fbb(256);
          std::vector<flatbuffers::Offset<wire::ConfigEntry>> ce;
          for (auto& [k, v] : configs) {
            const auto ko = fbb.CreateString(k);
            const auto vo = fbb.CreateString(v);
            ce.push_back(wire::CreateConfigEntry(fbb, ko, vo));
          }
          const auto cv = fbb.CreateVector(ce);
          const auto n = fbb.CreateString(name);
          fbb.Finish(wire::CreateCreateTopicRequest(fbb, n, partitions, rf, cv, static_cast<std::int32_t>(timeout), false));
          return fbb.Release();
        },
        dl,
        [done, name](const Error* err, std::span<const std::uint8_t> payload) -> std::optional<Error> {
          if (err) {
            done(std::unexpected(Error{err->code, "create topic '" + name + "': " + err->message}));
            return std::nullopt;
          }
          const auto* r = protocol::payload_as<wire::CreateTopicResponse>(payload);
          auto e = client::topic_op_result(r, "create topic '" + name + "'");
          if (e && is_retriable(e->code)) return e;
          if (e) done(std::unexpected(*e));
          else done(client::Unit{});
          return std::nullopt;
        });
  });
  if (!r) return r.error();
  return std::nullopt;
}

std::optional<Error> Admin::Impl::delete_topic(const std::string& name) {
  auto self = shared_from_this();
  const auto dl = deadline();
  auto r = sync<client::Unit>([self, name, dl](std::function<void(std::expected<client::Unit, Error>)> done) {
    self->core_->call(
        client::kController, protocol::ApiId::delete_topic,
        [=, timeout = self->cfg_.api_timeout_ms] {
          flatbuffers::FlatBufferBuilder fbb(128);
          const auto n = fbb.CreateString(name);
          fbb.Finish(wire::CreateDeleteTopicRequest(fbb, n, static_cast<std::int32_t>(timeout)));
          return fbb.Release();
        },
        dl,
        [done, name](const Error* err, std::span<const std::uint8_t> payload) -> std::optional<Error> {
          if (err) {
            done(std::unexpected(Error{err->code, "delete topic '" + name + "': " + err->message}));
            return std::nullopt;
          }
          const auto* r = protocol::payload_as<wire::DeleteTopicResponse>(payload);
          auto e = client::topic_op_result(r, "delete topic '" + name + "'");
          if (e && is_retriable(e->code)) return e;
          if (e && e->code == make_error_code(BrokerError::unknown_topic_or_partition))
            e->message = client::topic_missing_message(name);
          if (e) done(std::unexpected(*e));
          else done(client::Unit{});
          return std::nullopt;
        });
  });
  if (!r) return r.error();
  return std::nullopt;
}

std::optional<Error> Admin::Impl::alter_topic_config(const std::string& name,
                                                     const std::map<std::string, std::string>& set,
                                                     const std::vector<std::string>& remove) {
  auto self = shared_from_this();
  const auto dl = deadline();
  auto r = sync<client::Unit>([self, name, set, remove, dl](std::function<void(std::expected<client::Unit, Error>)> done) {
    self->core_->call(
        client::kController, protocol::ApiId::alter_topic_config,
        [name, set, remove] {
          flatbuffers::FlatBufferBuilder fbb(256);
          std::vector<flatbuffers::Offset<wire::ConfigEntry>> ce;
          for (auto& [k, v] : set) {
            const auto ko = fbb.CreateString(k);
            const auto vo = fbb.CreateString(v);
            ce.push_back(wire::CreateConfigEntry(fbb, ko, vo));
          }
          const auto sv = fbb.CreateVector(ce);
          const auto dv = fbb.CreateVectorOfStrings(remove);
          const auto n = fbb.CreateString(name);
          fbb.Finish(wire::CreateAlterTopicConfigRequest(fbb, n, sv, dv, false));
          return fbb.Release();
        },
        dl,
        [done, name](const Error* err, std::span<const std::uint8_t> payload) -> std::optional<Error> {
          if (err) {
            Error e{err->code, "change the configs of topic '" + name + "': " + err->message};
            if (err->code == make_error_code(BrokerError::unknown_api))
              e.message += " (the broker is older than this client: upgrade it to change topic configs)";
            done(std::unexpected(e));
            return std::nullopt;
          }
          const auto* r = protocol::payload_as<wire::AlterTopicConfigResponse>(payload);
          auto e = client::topic_op_result(r, "change the configs of topic '" + name + "'");
          if (e && is_retriable(e->code)) return e;
          if (e && e->code == make_error_code(BrokerError::unknown_topic_or_partition))
            e->message = client::topic_missing_message(name);
          if (e) done(std::unexpected(*e));
          else done(client::Unit{});
          return std::nullopt;
        });
  });
  if (!r) return r.error();
  return std::nullopt;
}

std::optional<Error> Admin::Impl::alter_group_offsets(const std::string& group,
                                                      const std::vector<TopicPartitionOffset>& offs) {
  for (const auto& o : offs)
    if (o.offset < 0)
      return Error{make_error_code(ClientError::invalid_argument),
                   "offset " + std::to_string(o.offset) + " for " + o.topic + "/" + std::to_string(o.partition) +
                       " is negative; give the next offset to read (>= 0)"};
  auto self = shared_from_this();
  const auto dl = deadline();
  return retry_while_members([&] {
    auto r = sync<client::Unit>([self, group, offs, dl](std::function<void(std::expected<client::Unit, Error>)> done) {
      // generation -1: a commit from outside the group; the broker refuses it while the group
      // has members (their own commits would race it).
      client::offset_commit_async(*self->core_, group, offs, dl, [done, group](std::optional<Error> e) {
        if (!e) return done(client::Unit{});
        if (e->code == make_error_code(BrokerError::unknown_member_id))
          e = Error{make_error_code(BrokerError::group_not_empty),
                    "group '" + group + "' has members: stop the group's consumers first (or wait for their "
                    "session timeout), then reset its offsets (" + e->message + ")"};
        done(std::unexpected(*e));
      });
    });
    return r ? std::nullopt : std::optional<Error>(r.error());
  });
}

std::optional<Error> Admin::Impl::delete_group_offsets(const std::string& group, const std::vector<TopicPartition>& tps) {
  std::vector<TopicPartition> parts = tps;
  if (parts.empty()) {
    auto offs = group_offsets(group);
    if (!offs) return offs.error();
    for (const auto& o : *offs)
      if (o.committed >= 0) parts.push_back({o.topic, o.partition});
    if (parts.empty()) return std::nullopt;
  }
  auto self = shared_from_this();
  const auto dl = deadline();
  return retry_while_members([&] {
    auto r = sync<client::Unit>([self, group, parts, dl](std::function<void(std::expected<client::Unit, Error>)> done) {
      client::offset_delete_async(*self->core_, group, parts, dl, [done, group](std::optional<Error> e) {
        if (!e) return done(client::Unit{});
        if (e->code == make_error_code(BrokerError::group_not_empty))
          e->message = "group '" + group + "' has members: stop the group's consumers first (or wait for their "
                       "session timeout), then delete it (" + e->message + ")";
        done(std::unexpected(*e));
      });
    });
    return r ? std::nullopt : std::optional<Error>(r.error());
  });
}

std::expected<std::vector<TopicListing>, Error> Admin::Impl::list_topics(bool internal) {
  using T = std::vector<TopicListing>;
  auto self = shared_from_this();
  const auto dl = deadline();
  return sync<T>([self, internal, dl](std::function<void(std::expected<T, Error>)> done) {
    self->core_->call(
        client::kAnyBroker, protocol::ApiId::list_topics,
        [internal] {
          flatbuffers::FlatBufferBuilder fbb(64);
          fbb.Finish(wire::CreateListTopicsRequest(fbb, internal));
          return fbb.Release();
        },
        dl,
        [done](const Error* err, std::span<const std::uint8_t> payload) -> std::optional<Error> {
          if (err) {
            done(std::unexpected(*err));
            return std::nullopt;
          }
          const auto* r = protocol::payload_as<wire::ListTopicsResponse>(payload);
          if (r->error() != wire::ErrorCode::none) {
            Error e = client::broker_error(static_cast<std::int16_t>(r->error()), "list topics failed");
            if (is_retriable(e.code)) return e;
            done(std::unexpected(e));
            return std::nullopt;
          }
          T out;
          if (r->topics())
            for (const auto* t : *r->topics())
              out.push_back({t->name() ? t->name()->str() : std::string(), t->partitions(), t->replication_factor(),
                             t->internal()});
          std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
          done(std::move(out));
          return std::nullopt;
        });
  });
}

std::expected<TopicDescription, Error> Admin::Impl::describe_topic(const std::string& name) {
  auto self = shared_from_this();
  const auto dl = deadline();
  return sync<TopicDescription>([self, name, dl](std::function<void(std::expected<TopicDescription, Error>)> done) {
    self->core_->refresh_metadata({name}, dl, [self, name, done](const Error* err) {
      if (err) return done(std::unexpected(*err));
      const auto* tm = self->core_->metadata().topic(name);
      if (auto e = client::topic_unusable(tm, name)) return done(std::unexpected(*e));
      TopicDescription d{name, tm->internal, tm->partitions, tm->configs, tm->topic_id};
      done(std::move(d));
    });
  });
}

std::expected<ClusterInfo, Error> Admin::Impl::cluster() {
  auto self = shared_from_this();
  const auto dl = deadline();
  return sync<ClusterInfo>([self, dl](std::function<void(std::expected<ClusterInfo, Error>)> done) {
    self->core_->refresh_metadata({}, dl, [self, done](const Error* err) {
      if (err) return done(std::unexpected(*err));
      const auto& md = self->core_->metadata();
      ClusterInfo c{md.cluster_id, md.controller_id, {}};
      for (auto& [id, b] : md.brokers) c.brokers.push_back(b);
      done(std::move(c));
    });
  });
}

std::expected<std::vector<TopicPartitionOffset>, Error> Admin::Impl::list_offsets(
    const std::vector<TopicPartition>& tps, OffsetSpec spec, std::int64_t ts) {
  using T = std::vector<TopicPartitionOffset>;
  auto self = shared_from_this();
  const auto dl = deadline();
  return sync<T>([self, tps, spec, ts, dl](std::function<void(std::expected<T, Error>)> done) {
    client::list_offsets_async(*self->core_, tps, spec, ts, dl, [done](std::optional<Error> e, T offs) {
      if (e) return done(std::unexpected(*e));
      done(std::move(offs));
    });
  });
}

std::expected<std::vector<GroupPartitionOffset>, Error> Admin::Impl::group_offsets(const std::string& group) {
  using T = std::vector<GroupPartitionOffset>;
  auto self = shared_from_this();
  const auto dl = deadline();
  return sync<T>([self, group, dl](std::function<void(std::expected<T, Error>)> done) {
    client::offset_fetch_async(*self->core_, group, {}, dl, [done](std::optional<Error> e, T offs) {
      if (e) return done(std::unexpected(*e));
      std::sort(offs.begin(), offs.end(), [](auto& a, auto& b) {
        return std::tie(a.topic, a.partition) < std::tie(b.topic, b.partition);
      });
      done(std::move(offs));
    });
  });
}

namespace {
std::vector<TopicPartition> read_parts(const flatbuffers::Vector<flatbuffers::Offset<wire::GroupTopicPartitions>>* v) {
  const auto s = client::read_group_parts(v);
  return {s.begin(), s.end()};
}
}  // namespace

std::expected<std::vector<GroupInfo>, Error> Admin::Impl::describe_groups(const std::vector<std::string>& ids) {
  using T = std::vector<GroupInfo>;
  auto self = shared_from_this();
  const auto dl = deadline();
  return sync<T>([self, ids, dl](std::function<void(std::expected<T, Error>)> done) {
    // The controller's leader coordinates the groups: its answer is the freshest.
    self->core_->call(
        client::kController, protocol::ApiId::describe_groups,
        [ids] {
          flatbuffers::FlatBufferBuilder fbb(128);
          std::vector<flatbuffers::Offset<flatbuffers::String>> v;
          for (const auto& id : ids) v.push_back(fbb.CreateString(id));
          const auto vv = fbb.CreateVector(v);
          fbb.Finish(wire::CreateDescribeGroupsRequest(fbb, vv));
          return fbb.Release();
        },
        dl,
        [done](const Error* err, std::span<const std::uint8_t> payload) -> std::optional<Error> {
          if (err) {
            done(std::unexpected(*err));
            return std::nullopt;
          }
          const auto* r = protocol::payload_as<wire::DescribeGroupsResponse>(payload);
          T out;
          if (r->groups())
            for (const auto* g : *r->groups()) {
              const std::string id = g->group_id() ? g->group_id()->str() : std::string();
              if (g->error() != wire::ErrorCode::none) {
                Error e = client::broker_error(static_cast<std::int16_t>(g->error()), {});
                e.message = "group '" + id + "': " + e.message;
                done(std::unexpected(e));
                return std::nullopt;
              }
              GroupInfo gi;
              gi.group_id = id;
              gi.state = g->state() ? g->state()->str() : std::string();
              gi.generation = g->generation_id();
              gi.assignor = g->assignor() ? g->assignor()->str() : std::string();
              gi.coordinator = g->coordinator_id();
              if (g->members())
                for (const auto* m : *g->members()) {
                  GroupMemberInfo mi;
                  mi.member_id = m->member_id() ? m->member_id()->str() : std::string();
                  mi.client_id = m->client_id() ? m->client_id()->str() : std::string();
                  if (m->topics())
                    for (const auto* t : *m->topics()) mi.topics.push_back(t->str());
                  mi.assignment = read_parts(m->assignment());
                  mi.revoking = read_parts(m->revoking());
                  mi.target = read_parts(m->target());
                  gi.members.push_back(std::move(mi));
                }
              out.push_back(std::move(gi));
            }
          done(std::move(out));
          return std::nullopt;
        });
  });
}

// ---- Admin ----
Admin::Admin(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Admin::~Admin() {
  if (impl_) impl_->close();
}
std::expected<std::unique_ptr<Admin>, Error> Admin::create(const AdminConfig& config) {
  if (auto valid = config.validate(); !valid) return std::unexpected(valid.error());
  auto impl = std::make_shared<Impl>(config);
  impl->start();
  return std::unique_ptr<Admin>(new Admin(std::move(impl)));
}
std::expected<void, Error> Admin::create_topic(const std::string& name, std::int32_t partitions, std::int16_t rf,
                                               const std::map<std::string, std::string>& configs) {
  return client::as_expected(impl_->create_topic(name, partitions, rf, configs));
}
std::expected<void, Error> Admin::delete_topic(const std::string& name) {
  return client::as_expected(impl_->delete_topic(name));
}
std::expected<void, Error> Admin::alter_topic_config(const std::string& name,
                                                     const std::map<std::string, std::string>& set,
                                                     const std::vector<std::string>& remove) {
  return client::as_expected(impl_->alter_topic_config(name, set, remove));
}
std::expected<void, Error> Admin::alter_group_offsets(const std::string& group_id,
                                                      const std::vector<TopicPartitionOffset>& offsets) {
  return client::as_expected(impl_->alter_group_offsets(group_id, offsets));
}
std::expected<void, Error> Admin::delete_group_offsets(const std::string& group_id,
                                                       const std::vector<TopicPartition>& partitions) {
  return client::as_expected(impl_->delete_group_offsets(group_id, partitions));
}
std::expected<std::vector<TopicListing>, Error> Admin::list_topics(bool include_internal) {
  return impl_->list_topics(include_internal);
}
std::expected<TopicDescription, Error> Admin::describe_topic(const std::string& name) {
  return impl_->describe_topic(name);
}
std::expected<ClusterInfo, Error> Admin::cluster() { return impl_->cluster(); }
std::expected<std::vector<TopicPartitionOffset>, Error> Admin::list_offsets(const std::vector<TopicPartition>& tps,
                                                                            OffsetSpec spec, std::int64_t ts) {
  return impl_->list_offsets(tps, spec, ts);
}
std::expected<std::vector<GroupPartitionOffset>, Error> Admin::group_offsets(const std::string& group_id) {
  return impl_->group_offsets(group_id);
}
std::expected<GroupInfo, Error> Admin::describe_group(const std::string& group_id) {
  auto r = impl_->describe_groups({group_id});
  if (!r) return std::unexpected(r.error());
  if (r->size() != 1)
    return std::unexpected(Error{make_error_code(BrokerError::group_id_not_found), "group '" + group_id + "' not found"});
  return std::move(r->front());
}
std::expected<std::vector<GroupInfo>, Error> Admin::list_groups() { return impl_->describe_groups({}); }
void Admin::close() { impl_->close(); }

}  // namespace quorumq
