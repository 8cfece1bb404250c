// Routing of OffsetFetch/OffsetCommit to each partition's leader (the coordinator of that
// partition's committed offsets), with re-routing after leadership changes.
#include <map>
#include <memory>
#include <set>

#include "requests.h"

namespace quorumq::client {
namespace {

// One attempt per leader lasts at most this long, so a dead leader costs a short wait and a
// metadata refresh instead of the caller's whole deadline.
constexpr auto kAttempt = std::chrono::milliseconds(2000);

template <typename Item>
struct Routed : std::enable_shared_from_this<Routed<Item>> {
  using SendFn = std::function<void(std::int32_t node, std::vector<Item>, Clock::time_point,
                                    std::function<void(std::optional<Error>)>)>;
  Core& core;
  std::vector<Item> pending;
  Clock::time_point deadline;
  SendFn send;
  std::function<void(std::optional<Error>)> done;
  std::optional<Error> last;

  Routed(Core& c, std::vector<Item> items, Clock::time_point d, SendFn s, std::function<void(std::optional<Error>)> f)
      : core(c), pending(std::move(items)), deadline(d), send(std::move(s)), done(std::move(f)) {}

  static const TopicPartition tp_of(const TopicPartition& tp) { return tp; }
  static const TopicPartition tp_of(const TopicPartitionOffset& o) { return {o.topic, o.partition}; }

  void finish(std::optional<Error> e) {
    auto f = std::move(done);
    done = nullptr;
    if (f) f(std::move(e));
  }

  void refresh_then_step() {
    std::set<std::string> topics;
    for (const auto& it : pending) topics.insert(tp_of(it).topic);
    auto self = this->shared_from_this();
    core.refresh_metadata({topics.begin(), topics.end()}, deadline, [self](const Error* err) {
      if (err && !is_retriable(err->code)) return self->finish(*err);
      if (err) self->last = *err;
      self->core.run_after(std::chrono::milliseconds(self->core.config().retry_backoff_ms),
                           [self] { self->core.post([self] { self->step(); }); });
    });
  }

  void step() {
    if (Clock::now() >= deadline)
      return finish(Error{make_error_code(ClientError::timed_out),
                          "offsets request did not complete in time" + (last ? "; last error: " + last->message : std::string())});
    const auto& md = core.metadata();
    std::map<std::int32_t, std::vector<Item>> by_leader;
    for (const auto& it : pending) {
      const auto tp = tp_of(it);
      const TopicMeta* tm = md.topic(tp.topic);
      if (tm && tm->error == BrokerError::unknown_topic_or_partition)
        return finish(Error{make_error_code(BrokerError::unknown_topic_or_partition), topic_missing_message(tp.topic)});
      const std::int32_t l = md.leader(tp.topic, tp.partition);
      if (l < 0) {
        last = Error{make_error_code(BrokerError::leader_not_available), "no leader known for " + tp.topic + "/" +
                                                                             std::to_string(tp.partition)};
        return refresh_then_step();
      }
      by_leader[l].push_back(it);
    }
    pending.clear();
    auto self = this->shared_from_this();
    auto remaining = std::make_shared<std::size_t>(by_leader.size());
    auto fatal = std::make_shared<std::optional<Error>>();
    auto retry = std::make_shared<std::vector<Item>>();
    for (auto& [node, items] : by_leader) {
      send(node, items, std::min(deadline, Clock::now() + kAttempt),
           [self, items, remaining, fatal, retry](std::optional<Error> e) {
             if (e && is_retriable(e->code)) {
               retry->insert(retry->end(), items.begin(), items.end());
               self->last = e;
             } else if (e && !*fatal) {
               *fatal = e;
             }
             if (--*remaining != 0) return;
             if (*fatal) return self->finish(*fatal);
             if (retry->empty()) return self->finish(std::nullopt);
             self->pending = std::move(*retry);
             self->refresh_then_step();
           });
    }
  }
};

}  // namespace

void offset_fetch_async(Core& core, const std::string& group, const std::vector<TopicPartition>& partitions,
                        Clock::time_point deadline,
                        std::function<void(std::optional<Error>, std::vector<GroupPartitionOffset>)> done) {
  auto results = std::make_shared<std::map<TopicPartition, GroupPartitionOffset>>();
  if (partitions.empty()) {
    // "Every partition the group committed": each broker answers for the partitions it leads.
    auto self_done = std::make_shared<decltype(done)>(std::move(done));
    core.refresh_metadata({}, deadline, [&core, group, deadline, results, self_done](const Error* err) {
      if (err) return (*self_done)(*err, {});
      const auto brokers = core.metadata().brokers;
      if (brokers.empty()) return (*self_done)(Error{make_error_code(ClientError::broker_unreachable), "no broker known"}, {});
      auto remaining = std::make_shared<std::size_t>(brokers.size());
      auto first = std::make_shared<std::optional<Error>>();
      for (const auto& [node, _] : brokers)
        offset_fetch_on(core, node, group, {}, std::min(deadline, Clock::now() + kAttempt),
                        [results, remaining, first, self_done](std::optional<Error> e, std::vector<GroupPartitionOffset> offs) {
                          if (e && !*first && !is_retriable(e->code)) *first = e;
                          for (auto& o : offs) results->emplace(TopicPartition{o.topic, o.partition}, std::move(o));
                          if (--*remaining != 0) return;
                          std::vector<GroupPartitionOffset> out;
                          for (auto& [_, o] : *results) out.push_back(std::move(o));
                          (*self_done)(*first, std::move(out));
                        });
    }, true);
    return;
  }
  auto op = std::make_shared<Routed<TopicPartition>>(
      core, partitions, deadline,
      [&core, group, results](std::int32_t node, std::vector<TopicPartition> tps, Clock::time_point dl,
                              std::function<void(std::optional<Error>)> cb) {
        offset_fetch_on(core, node, group, tps, dl,
                        [results, cb](std::optional<Error> e, std::vector<GroupPartitionOffset> offs) {
                          if (!e || !is_retriable(e->code))
                            for (auto& o : offs) (*results)[{o.topic, o.partition}] = std::move(o);
                          cb(std::move(e));
                        });
      },
      [results, done = std::move(done)](std::optional<Error> e) {
        std::vector<GroupPartitionOffset> out;
        for (auto& [_, o] : *results) out.push_back(o);
        done(std::move(e), std::move(out));
      });
  op->step();
}

void offset_commit_async(Core& core, const std::string& group, const std::vector<TopicPartitionOffset>& offsets,
                         Clock::time_point deadline, std::function<void(std::optional<Error>)> done,
                         CommitIdentity who) {
  if (offsets.empty()) return done(std::nullopt);
  auto op = std::make_shared<Routed<TopicPartitionOffset>>(
      core, offsets, deadline,
      [&core, group, who](std::int32_t node, std::vector<TopicPartitionOffset> offs, Clock::time_point dl,
                          std::function<void(std::optional<Error>)> cb) {
        offset_commit_on(core, node, group, offs, dl, cb, who);
      },
      std::move(done));
  op->step();
}

void offset_delete_async(Core& core, const std::string& group, const std::vector<TopicPartition>& partitions,
                         Clock::time_point deadline, std::function<void(std::optional<Error>)> done) {
  if (partitions.empty()) return done(std::nullopt);
  auto op = std::make_shared<Routed<TopicPartition>>(
      core, partitions, deadline,
      [&core, group](std::int32_t node, std::vector<TopicPartition> tps, Clock::time_point dl,
                     std::function<void(std::optional<Error>)> cb) { offset_delete_on(core, node, group, tps, dl, cb); },
      std::move(done));
  op->step();
}

}  // namespace quorumq::client
