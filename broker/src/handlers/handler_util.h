// Helpers shared by the request handlers (handlers.cc, produce_handler.cc, fetch_handler.cc):
// partition lookup, "why this broker cannot serve that partition", and leader hints.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <string>

#include "context.h"
#include "handlers.h"
#include "quorumq/protocol/errors.h"

namespace quorumq::broker::detail {

using namespace quorumq::wire;
using protocol::ApiId;
using protocol::finish_response;
using protocol::FrameHeader;
using Clock = std::chrono::steady_clock;

inline std::string str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

inline std::uint64_t since_us(Clock::time_point t0) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
}

inline Partition* find_partition(const std::shared_ptr<const Topic>& t, std::int32_t p) { return t ? t->local(p) : nullptr; }

// Where to send a client whose request reached a broker that does not lead the partition.
inline flatbuffers::Offset<LeaderHint> make_hint(flatbuffers::FlatBufferBuilder& fbb, BrokerContext& ctx,
                                          std::optional<node_id> leader) {
  if (!leader) return 0;
  const auto addr = ctx.replication.address_of(*leader);
  if (!addr) return 0;
  return CreateLeaderHint(fbb, leader->value, 0, fbb.CreateString(addr->host), addr->port);
}

inline std::string group_name(const std::string& topic, std::int32_t p) { return TopicManager::log_name(topic, p); }

// A partition as Metadata shows it (native and Kafka alike): every broker answers with the
// leader's view, its own when it leads the partition, else what the leader last announced (at
// most ~500 ms old).
struct PartitionView {
  std::optional<node_id> leader;
  std::uint64_t epoch = 0;
  std::int64_t high_watermark = -1, log_start = -1;
  std::vector<std::int32_t> isr;
};
inline PartitionView partition_view(BrokerContext& ctx, const Topic& t, std::int32_t pid) {
  const std::string gname = group_name(t.name, pid);
  PartitionView v;
  v.leader = ctx.replication.leader_of(gname);
  const Partition* p = t.local(pid);
  if (p && p->group() && p->serving()) {
    v.epoch = p->group()->term();
    v.high_watermark = p->high_watermark(), v.log_start = p->log_start_offset();
    for (const auto n : p->group()->isr()) v.isr.push_back(n.value);
  } else if (auto a = ctx.replication.announced(gname); a && v.leader && a->leader == v.leader->value) {
    v.epoch = a->term;
    v.high_watermark = a->high_watermark, v.log_start = a->log_start_offset;
    v.isr = a->isr;
  } else if (p && p->group()) {
    v.epoch = p->group()->term();
  }
  return v;
}

// Why this broker cannot serve a partition: unknown, led elsewhere (leader_hint), or no leader yet.
inline std::optional<Status> not_served(BrokerContext& ctx, const std::shared_ptr<const Topic>& t, const std::string& name,
                                        std::int32_t p) {
  if (!t || !t->has_partition(p))
    return Status{ErrorCode::unknown_topic_or_partition,
                  "topic " + name + " partition " + std::to_string(p) +
                      " does not exist: create it (quorumq topic create) or check the name",
                  std::nullopt};
  Partition* part = t->local(p);
  if (part && part->serving()) return std::nullopt;
  auto leader = ctx.replication.leader_of(group_name(name, p));
  if (leader && *leader == ctx.replication.self()) leader.reset();  // leading but not ready yet
  if (leader)
    return Status{ErrorCode::not_leader,
                  "broker " + std::to_string(ctx.config.node_id) + " does not lead " + group_name(name, p) +
                      "; its leader is broker " + std::to_string(leader->value),
                  leader};
  return Status{ErrorCode::leader_not_available,
                "no leader for " + group_name(name, p) + " right now (election in progress); retry", std::nullopt};
}

inline const BrokerConfig& cfg(BrokerContext& c) { return c.config; }

// The largest record batch a produce to `topic` may store: the topic's max.message.bytes, else
// the broker's --max-message-bytes, never past what a frame can carry. The native produce path
// checks stored batches against it; the Kafka one also bounds decompression with it.
inline std::uint32_t max_batch_bytes(BrokerContext& ctx, const Topic* topic) {
  if (topic)
    if (const auto s = topic_settings(topic->config); s.max_message_bytes)
      return std::min(*s.max_message_bytes, cfg(ctx).max_frame_bytes - 1024);
  return cfg(ctx).max_message_bytes;
}

// Bounds the work one request makes the broker do: at most --max-partitions-per-request
// (topic, partition) pairs and, where `unique`, none twice. Returns why the request is refused.
// The request is verified already; the walk stops at the limit.
template <typename TopicVec, typename CountParts>
std::optional<std::string> check_partitions(BrokerContext& ctx, const TopicVec* topics, bool unique, CountParts&& each) {
  if (!topics) return std::nullopt;
  const std::size_t limit = ctx.config.max_partitions_per_request;
  std::size_t n = 0;
  std::set<std::pair<std::string_view, std::int32_t>> seen;
  std::optional<std::string> dup;
  for (const auto* t : *topics) {
    const std::string_view name = t->name() ? t->name()->string_view() : std::string_view();
    bool over = false;
    each(t, [&](std::int32_t p) {
      if (over || dup) return;
      if (++n > limit) {
        over = true;
        return;
      }
      if (unique && !seen.emplace(name, p).second)
        dup = "partition " + std::string(name) + "/" + std::to_string(p) + " is listed twice in one request; name each partition once";
    });
    if (over)
      return "the request names more than " + std::to_string(limit) +
             " partitions (--max-partitions-per-request); split it";
    if (dup) return dup;
  }
  return std::nullopt;
}

// Results that several asynchronous steps fill in (under a mutex), answered once by `finish`:
// `pending` counts the steps plus the caller's own hold (count every step before the first
// starts: a step may finish at once, on any thread), and the last done() answers.
template <typename Results>
struct Gather {
  std::mutex mu;
  Results results;
  std::size_t pending = 1;
  std::function<void(Results&)> finish;
  template <typename F>
  void update(F&& f) {
    std::lock_guard lk(mu);
    f(results);
  }
  void done() {
    {
      std::lock_guard lk(mu);
      if (--pending != 0) return;
    }
    finish(results);
  }
};

void handle_produce(BrokerContext& ctx, const FrameHeader& h, const ProduceRequest* req, Respond respond);
void handle_fetch(BrokerContext& ctx, const FrameHeader& h, const FetchRequest* req, Respond respond);
void handle_group_heartbeat(BrokerContext& ctx, const FrameHeader& h, const GroupHeartbeatRequest* req, Respond respond);
void handle_describe_groups(BrokerContext& ctx, const FrameHeader& h, const DescribeGroupsRequest* req, Respond respond,
                            const Principal& who);
void handle_alter_users(BrokerContext& ctx, const FrameHeader& h, const AlterUsersRequest* req, Respond respond);
void handle_describe_users(BrokerContext& ctx, const FrameHeader& h, const DescribeUsersRequest* req, Respond respond);
void handle_create_acls(BrokerContext& ctx, const FrameHeader& h, const CreateAclsRequest* req, Respond respond);
void handle_delete_acls(BrokerContext& ctx, const FrameHeader& h, const DeleteAclsRequest* req, Respond respond);
void handle_describe_acls(BrokerContext& ctx, const FrameHeader& h, const DescribeAclsRequest* req, Respond respond);

}  // namespace quorumq::broker::detail
