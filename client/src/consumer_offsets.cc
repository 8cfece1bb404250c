// Consumer positions and committed offsets: where each assigned partition starts (the group's
// committed offset, else auto_offset_reset, committed before use), seek, position() and
// committed(), and commits (sync, async, auto-commit of what changed).
#include <algorithm>

#include "consumer_impl.h"
#include "requests.h"

namespace quorumq {

bool Consumer::Impl::commits_resolved_positions_locked() const {
  return !cfg_.group_id.empty() && (!manual_ || cfg_.enable_auto_commit);
}

// Start positions: the group's committed offset, else auto_offset_reset. A position taken from
// the reset policy is committed BEFORE it is used (group members always; assign() with
// enable_auto_commit): from then on the group has a position on that partition, so a member
// that dies before it consumed or committed anything leaves the others a place to resume
// instead of their own "latest", which would skip what was produced in between.
void Consumer::Impl::ensure_positions() {
  std::vector<TopicPartition> lookup, reset;
  std::map<TopicPartition, std::uint64_t> epochs;
  {
    std::lock_guard lk(mu_);
    if (closed_) return;
    for (auto& [tp, ps] : parts_) {
      if (ps.position >= 0 || ps.lookup_in_flight) continue;
      ps.lookup_in_flight = true;
      epochs[tp] = ps.epoch;
      // Without a group there is no committed offset to look up.
      (ps.reset_to_policy || cfg_.group_id.empty() ? reset : lookup).push_back(tp);
    }
  }
  if (lookup.empty() && reset.empty()) return;
  auto self = shared_from_this();
  const auto deadline = Clock::now() + std::chrono::milliseconds(cfg_.api_timeout_ms);
  // Apply a found offset unless the partition was revoked or sought meanwhile. `committed`:
  // the group has exactly this offset committed.
  auto apply = [self, epochs](const std::vector<TopicPartitionOffset>& offs, bool committed) {
    for (auto& o : offs) {
      TopicPartition tp{o.topic, o.partition};
      auto it = self->parts_.find(tp);
      auto e = epochs.find(tp);
      if (it == self->parts_.end() || e == epochs.end() || it->second.epoch != e->second) continue;
      if (o.offset < 0) continue;
      it->second.position = o.offset;
      it->second.fetch_offset = o.offset;
      it->second.reset_to_policy = false;
      it->second.lookup_in_flight = false;
      if (committed) it->second.committed = o.offset;
    }
  };
  auto release = [self](const std::vector<TopicPartition>& tps) {
    for (auto& tp : tps)
      if (auto it = self->parts_.find(tp); it != self->parts_.end()) it->second.lookup_in_flight = false;
  };
  auto still_ours = [self, epochs](const std::vector<TopicPartitionOffset>& offs) {
    std::vector<TopicPartitionOffset> out;
    for (auto& o : offs) {
      auto it = self->parts_.find({o.topic, o.partition});
      auto e = epochs.find({o.topic, o.partition});
      if (o.offset >= 0 && it != self->parts_.end() && e != epochs.end() && it->second.epoch == e->second)
        out.push_back(o);
    }
    return out;
  };
  auto by_policy = [self, deadline, apply, release, still_ours](std::vector<TopicPartition> tps) {
    if (tps.empty()) return;
    if (self->cfg_.auto_offset_reset == OffsetReset::none) {
      std::lock_guard lk(self->mu_);
      self->set_fatal_locked(Error{make_error_code(BrokerError::offset_out_of_range),
                                   "no committed offset for " + tps.front().topic + "/" +
                                       std::to_string(tps.front().partition) +
                                       " and auto_offset_reset=none; seek() or commit a start offset first"});
      release(tps);
      self->cv_.notify_all();
      return;
    }
    const OffsetSpec spec =
        self->cfg_.auto_offset_reset == OffsetReset::earliest ? OffsetSpec::earliest : OffsetSpec::latest;
    client::list_offsets_async(
        *self->core_, tps, spec, -1, deadline,
        [self, tps, apply, release, still_ours, deadline](std::optional<Error> err,
                                                          std::vector<TopicPartitionOffset> offs) {
          std::vector<TopicPartitionOffset> to_commit;
          {
            std::lock_guard lk(self->mu_);
            if (err) self->set_fatal_locked(*err);
            if (!err && self->commits_resolved_positions_locked()) to_commit = still_ours(offs);
            if (to_commit.empty()) {
              apply(offs, false);
              release(tps);
            }
          }
          if (to_commit.empty()) {
            self->cv_.notify_all();
            self->maybe_fetch();
            return;
          }
          // Committed first, used second (see above). A refused commit (the partition moved
          // meanwhile) is harmless: the epoch check drops the position too.
          client::offset_commit_async(
              *self->core_, self->cfg_.group_id, to_commit, deadline,
              [self, offs, tps, apply, release](std::optional<Error> e) {
                {
                  std::lock_guard lk(self->mu_);
                  apply(offs, !e);
                  release(tps);
                }
                self->cv_.notify_all();
                self->maybe_fetch();
              },
              self->membership_->identity());
        });
  };
  by_policy(reset);
  if (lookup.empty()) return;
  client::offset_fetch_async(
      *core_, cfg_.group_id, lookup, deadline,
      [self, lookup, apply, release, by_policy](std::optional<Error> err, std::vector<GroupPartitionOffset> got) {
        std::vector<TopicPartition> missing;
        {
          std::lock_guard lk(self->mu_);
          if (err) {
            self->set_fatal_locked(Error{err->code, "cannot read the group's committed offsets: " + err->message});
            release(lookup);
            self->cv_.notify_all();
            return;
          }
          std::vector<TopicPartitionOffset> offs;
          std::set<TopicPartition> found;
          for (auto& g : got)
            if (g.committed >= 0) {
              offs.push_back({g.topic, g.partition, g.committed});
              found.insert({g.topic, g.partition});
            }
          apply(offs, true);
          for (auto& tp : lookup)
            if (!found.contains(tp)) missing.push_back(tp);
        }
        self->cv_.notify_all();
        by_policy(std::move(missing));
        self->maybe_fetch();
      });
}

std::vector<TopicPartitionOffset> Consumer::Impl::current_positions_locked() const {
  std::vector<TopicPartitionOffset> out;
  for (auto& [tp, ps] : parts_)
    if (ps.position >= 0) out.push_back({tp.topic, tp.partition, ps.position});
  return out;
}

std::vector<TopicPartitionOffset> Consumer::Impl::changed_positions_locked() const {
  std::vector<TopicPartitionOffset> out;
  for (auto& [tp, ps] : parts_)
    if (ps.position >= 0 && ps.position != ps.committed) out.push_back({tp.topic, tp.partition, ps.position});
  return out;
}

void Consumer::Impl::note_committed(const std::vector<TopicPartitionOffset>& offs) {
  std::lock_guard lk(mu_);
  for (auto& o : offs)
    if (auto it = parts_.find({o.topic, o.partition}); it != parts_.end()) it->second.committed = o.offset;
}

std::optional<Error> Consumer::Impl::no_group_error(const char* what) const {
  if (!cfg_.group_id.empty()) return std::nullopt;
  return Error{make_error_code(ClientError::invalid_argument),
               std::string(what) + " needs a consumer group: set ConsumerConfig::group_id (committed offsets and "
                                   "group membership are kept per group)"};
}

std::optional<Error> Consumer::Impl::commit(std::optional<std::vector<TopicPartitionOffset>> offsets) {
  if (auto e = no_group_error("commit()")) return e;
  std::vector<TopicPartitionOffset> offs;
  {
    std::lock_guard lk(mu_);
    if (closed_) return closed_error();
    offs = offsets ? std::move(*offsets) : current_positions_locked();
  }
  for (auto& o : offs)
    if (o.offset < 0)
      return Error{make_error_code(ClientError::invalid_argument),
                   "cannot commit a negative offset for " + o.topic + "/" + std::to_string(o.partition)};
  const auto deadline = Clock::now() + std::chrono::milliseconds(cfg_.api_timeout_ms);
  auto self = shared_from_this();
  auto e = client::run_sync<std::optional<Error>>(
      *core_, [self, offs, deadline](std::function<void(std::optional<Error>)> done) {
        client::offset_commit_async(*self->core_, self->cfg_.group_id, offs, deadline, done,
                                    self->membership_->identity());
      });
  if (!e) note_committed(offs);
  return e;
}

void Consumer::Impl::auto_commit_async() {
  std::vector<TopicPartitionOffset> offs;
  {
    std::lock_guard lk(mu_);
    if (closed_ || cfg_.group_id.empty()) return;
    offs = changed_positions_locked();
  }
  if (offs.empty()) return;
  const auto deadline = Clock::now() + std::chrono::milliseconds(cfg_.api_timeout_ms);
  core_->post([self = shared_from_this(), offs, deadline] {
    client::offset_commit_async(
        *self->core_, self->cfg_.group_id, offs, deadline,
        [self, offs](std::optional<Error> e) {
          if (!e) self->note_committed(offs);
        },
        self->membership_->identity());
  });
}

void Consumer::Impl::commit_async(CommitCallback cb) {
  if (auto e = no_group_error("commit_async()")) {
    if (cb) cb(client::as_expected(std::move(e)));
    return;
  }
  std::vector<TopicPartitionOffset> offs;
  {
    std::lock_guard lk(mu_);
    if (closed_) {
      if (cb) cb(std::unexpected(closed_error()));
      return;
    }
    offs = current_positions_locked();
  }
  const auto deadline = Clock::now() + std::chrono::milliseconds(cfg_.api_timeout_ms);
  core_->post([self = shared_from_this(), offs, deadline, cb] {
    client::offset_commit_async(
        *self->core_, self->cfg_.group_id, offs, deadline,
        [self, offs, cb](std::optional<Error> e) {
          if (!e) self->note_committed(offs);
          if (cb) cb(client::as_expected(std::move(e)));
        },
        self->membership_->identity());
  });
}

std::optional<Error> Consumer::Impl::seek(const TopicPartition& tp, std::int64_t offset) {
  if (offset < 0) return Error{make_error_code(ClientError::invalid_argument), "seek offset must be >= 0"};
  {
    std::lock_guard lk(mu_);
    if (closed_) return closed_error();
    auto it = parts_.find(tp);
    if (it == parts_.end())
      return Error{make_error_code(ClientError::invalid_argument),
                   tp.topic + "/" + std::to_string(tp.partition) +
                       " is not assigned to this consumer (subscribe/assign, then poll once)"};
    auto& ps = it->second;
    ps.epoch = ++next_epoch_;
    ps.position = offset;
    ps.fetch_offset = offset;
    ps.reset_to_policy = false;
    ps.lookup_in_flight = false;
    ps.chunks.clear();
    ps.buffered_bytes = 0;
  }
  kick();
  return std::nullopt;
}

std::optional<Error> Consumer::Impl::seek_spec(const std::vector<TopicPartition>& tps, OffsetSpec spec) {
  {
    std::lock_guard lk(mu_);
    if (closed_) return closed_error();
  }
  using R = std::pair<std::optional<Error>, std::vector<TopicPartitionOffset>>;
  const auto deadline = Clock::now() + std::chrono::milliseconds(cfg_.api_timeout_ms);
  auto self = shared_from_this();
  R r = client::run_sync<R>(*core_, [self, tps, spec, deadline](std::function<void(R)> done) {
    client::list_offsets_async(*self->core_, tps, spec, -1, deadline,
                               [done](std::optional<Error> e, std::vector<TopicPartitionOffset> o) {
                                 done(R{std::move(e), std::move(o)});
                               });
  });
  if (r.first) return r.first;
  for (auto& o : r.second)
    if (auto e = seek({o.topic, o.partition}, o.offset)) return e;
  return std::nullopt;
}

std::expected<std::int64_t, Error> Consumer::Impl::position(const TopicPartition& tp) {
  kick();
  const auto deadline = Clock::now() + std::chrono::milliseconds(cfg_.api_timeout_ms);
  std::unique_lock lk(mu_);
  for (;;) {
    if (closed_) return std::unexpected(closed_error());
    auto it = parts_.find(tp);
    if (it == parts_.end())
      return std::unexpected(Error{make_error_code(ClientError::invalid_argument),
                                   tp.topic + "/" + std::to_string(tp.partition) + " is not assigned to this consumer"});
    if (it->second.position >= 0) return it->second.position;
    if (fatal_) return std::unexpected(*fatal_);
    if (cv_.wait_until(lk, deadline) == std::cv_status::timeout)
      return std::unexpected(Error{make_error_code(ClientError::timed_out), "start offset lookup timed out"});
  }
}

std::expected<std::int64_t, Error> Consumer::Impl::committed(const TopicPartition& tp) {
  if (auto e = no_group_error("committed()")) return std::unexpected(*e);
  {
    std::lock_guard lk(mu_);
    if (closed_) return std::unexpected(closed_error());
  }
  using R = std::pair<std::optional<Error>, std::vector<GroupPartitionOffset>>;
  const auto deadline = Clock::now() + std::chrono::milliseconds(cfg_.api_timeout_ms);
  auto self = shared_from_this();
  R r = client::run_sync<R>(*core_, [self, tp, deadline](std::function<void(R)> done) {
    client::offset_fetch_async(*self->core_, self->cfg_.group_id, {tp}, deadline,
                               [done](std::optional<Error> e, std::vector<GroupPartitionOffset> o) {
                                 done(R{std::move(e), std::move(o)});
                               });
  });
  if (r.first) return std::unexpected(*r.first);
  for (auto& o : r.second)
    if (o.topic == tp.topic && o.partition == tp.partition) return o.committed;
  return -1;
}

}  // namespace quorumq
