#include "quorumq/consumer.h"

#include <algorithm>

#include "consumer_impl.h"
#include "fetch_buffer.h"
#include "requests.h"

// Consumer's lifecycle, assignment and poll(); the public Consumer forwards to Consumer::Impl.
// Offsets and commits: consumer_offsets.cc. Prefetching: consumer_fetcher.cc.

namespace quorumq {

void Consumer::Impl::start() {
  core_ = Core::start(cfg_);
  std::weak_ptr<Impl> weak = weak_from_this();
  membership_ = std::make_shared<client::Membership>(core_, cfg_, [weak] {
    if (auto self = weak.lock()) {
      {
        std::lock_guard lk(self->mu_);
        self->dirty_ = true;
      }
      self->cv_.notify_all();
    }
  });
  next_auto_commit_ = Clock::now() + std::chrono::milliseconds(cfg_.auto_commit_interval_ms);
}

void Consumer::Impl::subscribe(const std::vector<std::string>& topics, std::shared_ptr<RebalanceListener> listener) {
  if (auto e = no_group_error("subscribe()")) {
    std::lock_guard lk(mu_);
    set_fatal_locked(std::move(*e));  // poll() reports it
    return;
  }
  {
    std::lock_guard lk(mu_);
    topics_ = topics;
    listener_ = std::move(listener);
    manual_ = false;
    dirty_ = true;
    check_topics_ = true;
  }
  membership_->set_subscription(topics);
}

// Manual assignment takes effect at once (no metadata needed), so seek() may follow.
void Consumer::Impl::assign(const std::vector<TopicPartition>& parts) {
  {
    std::lock_guard lk(mu_);
    topics_.clear();
    manual_ = true;
    manual_parts_ = parts;
    dirty_ = true;
  }
  update_assignment();
  if (membership_->active()) membership_->set_subscription({});
}

void Consumer::Impl::unsubscribe() {
  {
    std::lock_guard lk(mu_);
    topics_.clear();
    manual_ = true;
    manual_parts_.clear();
    dirty_ = true;
  }
  // Revoke (and commit) while still a member, then leave.
  update_assignment();
  membership_->set_subscription({});
}

void Consumer::Impl::kick() {
  core_->post([self = shared_from_this()] {
    self->ensure_positions();
    self->maybe_fetch();
  });
}

// Applies what changed: a manual assign(), or the group coordinator's answer (membership.h).
// Runs on the application's thread (poll, assign, unsubscribe), so the listener does too.
std::optional<Error> Consumer::Impl::update_assignment() {
  std::vector<std::string> topics;
  bool manual, check;
  std::vector<TopicPartition> wanted;
  {
    std::lock_guard lk(mu_);
    if (!dirty_) return std::nullopt;
    dirty_ = false;
    topics = topics_;
    manual = manual_;
    check = check_topics_;
    wanted = manual_parts_;
  }
  if (auto e = membership_->take_error()) return e;
  std::optional<client::Membership::Change> change;
  if (!manual) {
    if (check) {
      // Subscribing to a topic that does not exist is a mistake worth an error (the group
      // would simply never get its partitions).
      const auto deadline = Clock::now() + std::chrono::milliseconds(cfg_.api_timeout_ms);
      auto self = shared_from_this();
      auto err = client::run_sync<std::optional<Error>>(*core_, [self, topics, deadline](auto done) {
        self->core_->refresh_metadata(topics, deadline, [self, topics, done](const Error* err) {
          if (err) return done(*err);
          for (const auto& t : topics) {
            const client::TopicMeta* tm = self->core_->metadata().topic(t);
            if (auto e = client::topic_unusable(tm, t)) return done(*e);
          }
          done(std::nullopt);
        });
      });
      std::lock_guard lk(mu_);
      if (err) {
        dirty_ = true;  // ask again next poll
        return err;
      }
      check_topics_ = false;
    }
    change = membership_->take_change();
    if (!change) return std::nullopt;
    wanted.assign(change->assignment.begin(), change->assignment.end());
  }
  std::vector<TopicPartition> revoked, added;
  std::shared_ptr<RebalanceListener> listener;
  std::vector<TopicPartitionOffset> to_commit;
  {
    std::lock_guard lk(mu_);
    const std::set<TopicPartition> want(wanted.begin(), wanted.end());
    for (auto& [tp, ps] : parts_)
      if (!want.contains(tp)) {
        revoked.push_back(tp);
        if (ps.position >= 0 && ps.position != ps.committed) to_commit.push_back({tp.topic, tp.partition, ps.position});
      }
    for (auto& tp : want)
      if (!parts_.contains(tp)) added.push_back(tp);
    listener = listener_;
  }
  const bool lost = change && change->lost;
  if (!revoked.empty()) {
    // Give them up cleanly: commit what was consumed while we still own them.
    if (!lost && cfg_.enable_auto_commit && !to_commit.empty()) (void)commit(to_commit);
    if (listener) lost ? listener->on_lost(revoked) : listener->on_revoked(revoked);
  }
  std::set<TopicPartition> owned;
  {
    std::lock_guard lk(mu_);
    for (auto& tp : revoked) parts_.erase(tp);
    for (auto& tp : added) parts_[tp].epoch = ++next_epoch_;
    for (auto& [tp, ps] : parts_) owned.insert(tp);
  }
  if (change) membership_->applied(std::move(owned), change->generation);
  if (listener && !added.empty()) listener->on_assigned(added);
  if (!added.empty()) kick();
  return std::nullopt;
}

void Consumer::Impl::collect_locked(std::vector<Message>& out) {
  if (parts_.empty()) return;
  const std::size_t n = parts_.size();
  std::size_t start = rr_++ % n;
  auto it = parts_.begin();
  std::advance(it, static_cast<long>(start));
  for (std::size_t i = 0; i < n && out.size() < cfg_.max_poll_records; ++i) {
    auto& [tp, ps] = *it;
    while (!ps.chunks.empty() && out.size() < cfg_.max_poll_records) {
      Chunk& c = ps.chunks.front();
      if (c.epoch == ps.epoch)
        c.pos = client::decode_records(c.bytes, c.pos, ps.position, cfg_.max_poll_records, tp.topic, tp.partition, out);
      if (c.epoch != ps.epoch || c.pos >= c.bytes.size()) {
        ps.buffered_bytes -= std::min(ps.buffered_bytes, c.bytes.size());
        ps.chunks.pop_front();
      } else {
        break;
      }
    }
    if (++it == parts_.end()) it = parts_.begin();
  }
}

std::expected<std::vector<Message>, Error> Consumer::Impl::poll(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  {
    std::lock_guard lk(mu_);
    if (closed_) return std::unexpected(closed_error());
  }
  if (auto e = update_assignment()) return std::unexpected(*e);
  if (cfg_.enable_auto_commit && Clock::now() >= next_auto_commit_) {
    next_auto_commit_ = Clock::now() + std::chrono::milliseconds(cfg_.auto_commit_interval_ms);
    auto_commit_async();
  }
  std::vector<Message> out;
  std::unique_lock lk(mu_);
  for (;;) {
    if (fatal_) {
      Error e = std::move(*fatal_);
      fatal_.reset();
      return std::unexpected(std::move(e));
    }
    collect_locked(out);
    if (!out.empty()) break;
    if (dirty_) {  // the group's assignment changed: apply it now, not after the timeout
      lk.unlock();
      if (auto e = update_assignment()) return std::unexpected(*e);
      lk.lock();
      continue;
    }
    if (cv_.wait_until(lk, deadline) == std::cv_status::timeout) {
      collect_locked(out);
      break;
    }
  }
  lk.unlock();
  kick();  // buffers drained: fetch more
  return out;
}

void Consumer::Impl::close() {
  std::shared_ptr<RebalanceListener> listener;
  std::vector<TopicPartition> owned;
  {
    std::lock_guard lk(mu_);
    if (closed_) return;
    listener = listener_;
    for (auto& [tp, ps] : parts_) owned.push_back(tp);
  }
  if (cfg_.enable_auto_commit && !cfg_.group_id.empty()) {
    std::vector<TopicPartitionOffset> changed;
    {
      std::lock_guard lk(mu_);
      changed = changed_positions_locked();
    }
    if (!changed.empty()) (void)commit(changed);
  }
  if (listener && !owned.empty()) listener->on_revoked(owned);
  // Leave the group so the others take over at once (not after our session timeout).
  membership_->leave_sync(std::chrono::milliseconds(std::min<std::uint32_t>(cfg_.request_timeout_ms, 3000)));
  {
    std::lock_guard lk(mu_);
    closed_ = true;
  }
  cv_.notify_all();
  core_->stop();
}

// ---- Consumer ----

Consumer::Consumer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Consumer::~Consumer() {
  if (impl_) impl_->close();
}
std::expected<std::unique_ptr<Consumer>, Error> Consumer::create(const ConsumerConfig& config) {
  if (auto valid = config.validate(); !valid) return std::unexpected(valid.error());
  auto impl = std::make_shared<Impl>(config);
  impl->start();
  return std::unique_ptr<Consumer>(new Consumer(std::move(impl)));
}
void Consumer::subscribe(const std::vector<std::string>& topics, std::shared_ptr<RebalanceListener> listener) {
  impl_->subscribe(topics, std::move(listener));
}
void Consumer::assign(const std::vector<TopicPartition>& partitions) { impl_->assign(partitions); }
void Consumer::unsubscribe() { impl_->unsubscribe(); }
std::vector<TopicPartition> Consumer::assignment() const { return impl_->assignment(); }
std::string Consumer::member_id() const { return impl_->member_id(); }
std::int32_t Consumer::generation() const { return impl_->generation(); }
std::expected<std::vector<Message>, Error> Consumer::poll(std::chrono::milliseconds timeout) {
  return impl_->poll(timeout);
}
std::expected<void, Error> Consumer::commit() { return client::as_expected(impl_->commit(std::nullopt)); }
std::expected<void, Error> Consumer::commit(const std::vector<TopicPartitionOffset>& offsets) {
  return client::as_expected(impl_->commit(offsets));
}
void Consumer::commit_async(CommitCallback callback) { impl_->commit_async(std::move(callback)); }
std::expected<void, Error> Consumer::seek(const TopicPartition& tp, std::int64_t offset) {
  return client::as_expected(impl_->seek(tp, offset));
}
std::expected<void, Error> Consumer::seek_to_beginning(const std::vector<TopicPartition>& partitions) {
  return client::as_expected(impl_->seek_spec(partitions, OffsetSpec::earliest));
}
std::expected<void, Error> Consumer::seek_to_end(const std::vector<TopicPartition>& partitions) {
  return client::as_expected(impl_->seek_spec(partitions, OffsetSpec::latest));
}
std::expected<std::int64_t, Error> Consumer::position(const TopicPartition& tp) { return impl_->position(tp); }
std::expected<std::int64_t, Error> Consumer::committed(const TopicPartition& tp) { return impl_->committed(tp); }
void Consumer::close() { impl_->close(); }

}  // namespace quorumq
