#include "requests.h"

#include <map>
#include <set>

#include "quorumq/protocol/messages.h"

namespace quorumq::client {

std::string topic_missing_message(const std::string& topic) {
  return "topic '" + topic + "' does not exist; create it first (quorumq topic create " + topic +
         " --partitions P --replicas R) or check the name with `quorumq topic list`";
}

std::optional<Error> topic_unusable(const TopicMeta* tm, const std::string& topic) {
  if (!tm || tm->error == BrokerError::unknown_topic_or_partition)
    return Error{make_error_code(BrokerError::unknown_topic_or_partition), topic_missing_message(topic)};
  if (tm->error == BrokerError::topic_authorization_failed)
    return Error{make_error_code(BrokerError::topic_authorization_failed),
                 "not authorized to describe topic '" + topic +
                     "': ask an administrator for an ACL (quorumq acl add --principal User:NAME --operation read "
                     "--topic " + topic + ")"};
  return std::nullopt;
}

namespace {

struct ListOffsetsOp : std::enable_shared_from_this<ListOffsetsOp> {
  Core& core;
  std::vector<TopicPartition> pending;
  OffsetSpec spec;
  std::int64_t ts;
  Clock::time_point deadline;
  OffsetsFn done;
  std::map<TopicPartition, std::int64_t> results;
  std::optional<Error> last_retry;

  ListOffsetsOp(Core& c, std::vector<TopicPartition> p, OffsetSpec s, std::int64_t t, Clock::time_point d, OffsetsFn f)
      : core(c), pending(std::move(p)), spec(s), ts(t), deadline(d), done(std::move(f)) {}

  void finish(std::optional<Error> e) {
    std::vector<TopicPartitionOffset> out;
    for (auto& [tp, off] : results) out.push_back({tp.topic, tp.partition, off});
    auto f = std::move(done);
    done = nullptr;
    if (f) f(std::move(e), std::move(out));
  }

  void refresh_then_step() {
    std::vector<std::string> topics;
    for (auto& tp : pending) topics.push_back(tp.topic);
    auto self = shared_from_this();
    core.refresh_metadata(topics, deadline, [self](const Error* err) {
      if (err && !is_retriable(err->code)) return self->finish(*err);
      if (err) self->last_retry = *err;
      self->core.run_after(std::chrono::milliseconds(err ? self->core.config().retry_backoff_ms : 0),
                           [self] { self->core.post([self] { self->step(false); }); });
    });
  }

  void step(bool allow_refresh = true) {
    if (Clock::now() >= deadline)
      return finish(Error{make_error_code(ClientError::timed_out),
                          "ListOffsets did not complete in time" +
                              (last_retry ? "; last error: " + last_retry->message : std::string())});
    const auto& md = core.metadata();
    std::map<std::int32_t, std::vector<TopicPartition>> by_leader;
    bool unknown = false;
    for (auto& tp : pending) {
      const TopicMeta* tm = md.topic(tp.topic);
      if (tm && tm->error == BrokerError::unknown_topic_or_partition)
        return finish(Error{make_error_code(BrokerError::unknown_topic_or_partition), topic_missing_message(tp.topic)});
      const std::int32_t l = md.leader(tp.topic, tp.partition);
      if (l < 0) unknown = true;
      by_leader[l].push_back(tp);
    }
    if (unknown) {
      if (!allow_refresh) last_retry = Error{make_error_code(BrokerError::leader_not_available), "no leader known yet"};
      return refresh_then_step();
    }
    auto self = shared_from_this();
    auto remaining = std::make_shared<std::size_t>(by_leader.size());
    auto retry = std::make_shared<std::vector<TopicPartition>>();
    auto fatal = std::make_shared<std::optional<Error>>();
    pending.clear();
    for (auto& [node, tps] : by_leader) {
      core.call(node, protocol::ApiId::list_offsets,
                [tps, spec = spec, ts = ts] {
                  flatbuffers::FlatBufferBuilder fbb(256);
                  std::map<std::string, std::vector<flatbuffers::Offset<wire::ListOffsetsPartition>>> m;
                  for (auto& tp : tps)
                    m[tp.topic].push_back(wire::CreateListOffsetsPartition(fbb, tp.partition,
                                                                           static_cast<wire::OffsetSpec>(spec), ts));
                  std::vector<flatbuffers::Offset<wire::ListOffsetsTopic>> topics;
                  for (auto& [name, parts] : m) {
                    const auto n = fbb.CreateString(name);
                    topics.push_back(wire::CreateListOffsetsTopic(fbb, n, fbb.CreateVector(parts)));
                  }
                  fbb.Finish(wire::CreateListOffsetsRequest(fbb, fbb.CreateVector(topics)));
                  return fbb.Release();
                },
                deadline,
                [self, tps, remaining, retry, fatal](const Error* err,
                                                     std::span<const std::uint8_t> payload) -> std::optional<Error> {
                  if (err) {
                    if (!*fatal) *fatal = *err;
                  } else {
                    const auto* r = protocol::payload_as<wire::ListOffsetsResponse>(payload);
                    std::set<TopicPartition> seen;
                    if (r->error() != wire::ErrorCode::none) {
                      Error e = broker_error(static_cast<std::int16_t>(r->error()), "ListOffsets failed");
                      if (is_retriable(e.code)) return e;
                      if (!*fatal) *fatal = e;
                    } else if (r->topics()) {
                      for (const auto* t : *r->topics()) {
                        if (!t->name() || !t->partitions()) continue;
                        for (const auto* p : *t->partitions()) {
                          TopicPartition tp{t->name()->str(), p->partition()};
                          seen.insert(tp);
                          if (p->error() == wire::ErrorCode::none) {
                            self->results[tp] = p->offset();
                          } else {
                            Error e = broker_error(static_cast<std::int16_t>(p->error()), {});
                            if (p->error() == wire::ErrorCode::unknown_topic_or_partition)
                              e.message = topic_missing_message(tp.topic);
                            if (is_retriable(e.code)) {
                              retry->push_back(tp);
                              self->last_retry = e;
                              if (const auto* h = p->leader_hint(); h && h->node_id() >= 0)
                                self->core.apply_leader_hint(tp.topic, tp.partition, h->node_id(), h->leader_epoch(),
                                                             h->host() ? h->host()->string_view() : std::string_view{},
                                                             h->port());
                            } else if (!*fatal) {
                              *fatal = e;
                            }
                          }
                        }
                      }
                    }
                    for (auto& tp : tps)
                      if (!seen.contains(tp) && !*fatal && r->error() == wire::ErrorCode::none) retry->push_back(tp);
                  }
                  if (--*remaining == 0) {
                    if (*fatal) {
                      self->finish(**fatal);
                    } else if (!retry->empty()) {
                      self->pending = *retry;
                      self->refresh_then_step();
                    } else {
                      self->finish(std::nullopt);
                    }
                  }
                  return std::nullopt;
                });
    }
  }
};

}  // namespace

void list_offsets_async(Core& core, std::vector<TopicPartition> partitions, OffsetSpec spec, std::int64_t timestamp_ms,
                        Clock::time_point deadline, OffsetsFn done) {
  if (partitions.empty()) return done(std::nullopt, {});
  auto op = std::make_shared<ListOffsetsOp>(core, std::move(partitions), spec, timestamp_ms, deadline, std::move(done));
  op->step();
}

void offset_fetch_on(Core& core, std::int32_t node, const std::string& group, const std::vector<TopicPartition>& partitions,
                     Clock::time_point deadline,
                     std::function<void(std::optional<Error>, std::vector<GroupPartitionOffset>)> done) {
  core.call(node, protocol::ApiId::offset_fetch,
            [group, partitions] {
              flatbuffers::FlatBufferBuilder fbb(256);
              std::map<std::string, std::vector<std::int32_t>> m;
              for (auto& tp : partitions) m[tp.topic].push_back(tp.partition);
              flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<wire::OffsetFetchTopic>>> tv;
              if (!m.empty()) {
                std::vector<flatbuffers::Offset<wire::OffsetFetchTopic>> topics;
                for (auto& [name, parts] : m) {
                  const auto n = fbb.CreateString(name);
                  topics.push_back(wire::CreateOffsetFetchTopic(fbb, n, fbb.CreateVector(parts)));
                }
                tv = fbb.CreateVector(topics);
              }
              const auto g = fbb.CreateString(group);
              fbb.Finish(wire::CreateOffsetFetchRequest(fbb, g, -1, 0, tv));
              return fbb.Release();
            },
            deadline,
            [done](const Error* err, std::span<const std::uint8_t> payload) -> std::optional<Error> {
              if (err) {
                done(*err, {});
                return std::nullopt;
              }
              const auto* r = protocol::payload_as<wire::OffsetFetchResponse>(payload);
              if (r->error() != wire::ErrorCode::none) {
                Error e = broker_error(static_cast<std::int16_t>(r->error()), "OffsetFetch failed");
                if (is_retriable(e.code)) return e;
                done(e, {});
                return std::nullopt;
              }
              std::vector<GroupPartitionOffset> out;
              std::optional<Error> first;
              if (r->topics())
                for (const auto* t : *r->topics()) {
                  if (!t->name() || !t->partitions()) continue;
                  for (const auto* p : *t->partitions()) {
                    if (p->error() != wire::ErrorCode::none) {
                      Error e = broker_error(static_cast<std::int16_t>(p->error()), {});
                      // Leadership moved: the router refreshes metadata and asks the new leader.
                      if (is_retriable(e.code)) {
                        done(e, {});
                        return std::nullopt;
                      }
                      if (p->error() != wire::ErrorCode::unknown_topic_or_partition && !first) first = e;
                    }
                    out.push_back({t->name()->str(), p->partition(), p->offset(),
                                   p->metadata() ? p->metadata()->str() : std::string()});
                  }
                }
              done(first, std::move(out));
              return std::nullopt;
            });
}

void offset_commit_on(Core& core, std::int32_t node, const std::string& group,
                      const std::vector<TopicPartitionOffset>& offsets, Clock::time_point deadline,
                      std::function<void(std::optional<Error>)> done, CommitIdentity who) {
  if (offsets.empty()) return done(std::nullopt);
  core.call(node, protocol::ApiId::offset_commit,
            [group, offsets, who] {
              flatbuffers::FlatBufferBuilder fbb(256);
              std::map<std::string, std::vector<flatbuffers::Offset<wire::OffsetCommitPartition>>> m;
              for (auto& o : offsets)
                m[o.topic].push_back(wire::CreateOffsetCommitPartition(fbb, o.partition, o.offset, 0));
              std::vector<flatbuffers::Offset<wire::OffsetCommitTopic>> topics;
              for (auto& [name, parts] : m) {
                const auto n = fbb.CreateString(name);
                topics.push_back(wire::CreateOffsetCommitTopic(fbb, n, fbb.CreateVector(parts)));
              }
              const auto tv = fbb.CreateVector(topics);
              const auto g = fbb.CreateString(group);
              const auto mid = who.member_id.empty() ? flatbuffers::Offset<flatbuffers::String>() : fbb.CreateString(who.member_id);
              fbb.Finish(wire::CreateOffsetCommitRequest(fbb, g, who.generation, mid, tv));
              return fbb.Release();
            },
            deadline,
            [done](const Error* err, std::span<const std::uint8_t> payload) -> std::optional<Error> {
              if (err) {
                done(Error{err->code, "offset commit failed: " + err->message});
                return std::nullopt;
              }
              const auto* r = protocol::payload_as<wire::OffsetCommitResponse>(payload);
              if (r->error() != wire::ErrorCode::none) {
                Error e = broker_error(static_cast<std::int16_t>(r->error()), "OffsetCommit failed");
                if (is_retriable(e.code)) return e;
                done(e);
                return std::nullopt;
              }
              std::optional<Error> first;
              if (r->topics())
                for (const auto* t : *r->topics()) {
                  if (!t->partitions()) continue;
                  for (const auto* p : *t->partitions())
                    if (p->error() != wire::ErrorCode::none) {
                      Error e = broker_error(static_cast<std::int16_t>(p->error()),
                                             p->message() ? p->message()->string_view() : std::string_view{});
                      // The whole request is idempotent (absolute offsets): the router retries it
                      // at the partitions' current leaders.
                      if (is_retriable(e.code)) {
                        done(e);
                        return std::nullopt;
                      }
                      if (!first)
                        first = Error{e.code, "offset commit for " + (t->name() ? t->name()->str() : std::string()) +
                                                  "/" + std::to_string(p->partition()) + " failed: " + e.message};
                    }
                }
              done(first);
              return std::nullopt;
            });
}

void offset_delete_on(Core& core, std::int32_t node, const std::string& group,
                      const std::vector<TopicPartition>& partitions, Clock::time_point deadline,
                      std::function<void(std::optional<Error>)> done) {
  if (partitions.empty()) return done(std::nullopt);
  core.call(node, protocol::ApiId::offset_delete,
            [group, partitions] {
              flatbuffers::FlatBufferBuilder fbb(256);
              std::map<std::string, std::vector<std::int32_t>> m;
              for (auto& tp : partitions) m[tp.topic].push_back(tp.partition);
              std::vector<flatbuffers::Offset<wire::OffsetFetchTopic>> topics;
              for (auto& [name, parts] : m) {
                const auto n = fbb.CreateString(name);
                topics.push_back(wire::CreateOffsetFetchTopic(fbb, n, fbb.CreateVector(parts)));
              }
              const auto tv = fbb.CreateVector(topics);
              const auto g = fbb.CreateString(group);
              fbb.Finish(wire::CreateOffsetDeleteRequest(fbb, g, tv));
              return fbb.Release();
            },
            deadline,
            [done](const Error* err, std::span<const std::uint8_t> payload) -> std::optional<Error> {
              if (err) {
                Error e{err->code, "deleting committed offsets failed: " + err->message};
                if (err->code == make_error_code(BrokerError::unknown_api))
                  e.message = "the broker does not know OffsetDelete (it is older than this client); upgrade the "
                              "brokers first";
                done(e);
                return std::nullopt;
              }
              const auto* r = protocol::payload_as<wire::OffsetDeleteResponse>(payload);
              if (r->error() != wire::ErrorCode::none) {
                Error e = broker_error(static_cast<std::int16_t>(r->error()), "OffsetDelete failed");
                if (is_retriable(e.code)) return e;
                done(e);
                return std::nullopt;
              }
              std::optional<Error> first;
              if (r->topics())
                for (const auto* t : *r->topics()) {
                  if (!t->partitions()) continue;
                  for (const auto* p : *t->partitions())
                    if (p->error() != wire::ErrorCode::none) {
                      Error e = broker_error(static_cast<std::int16_t>(p->error()),
                                             p->message() ? p->message()->string_view() : std::string_view{});
                      if (is_retriable(e.code)) {  // leadership moved: the router asks the new leader
                        done(e);
                        return std::nullopt;
                      }
                      if (!first)
                        first = Error{e.code, "deleting the offset of " + (t->name() ? t->name()->str() : std::string()) +
                                                  "/" + std::to_string(p->partition()) + " failed: " + e.message};
                    }
                }
              done(first);
              return std::nullopt;
            });
}

}  // namespace quorumq::client
