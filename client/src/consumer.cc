#include "quorumq/consumer.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>

#include "core.h"
#include "fetch_buffer.h"
#include "membership.h"
#include "quorumq/protocol/messages.h"
#include "requests.h"

namespace quorumq {

using client::Clock;
using client::Core;


namespace {
Error closed_error() { return Error{make_error_code(ClientError::closed), "the consumer is closed"}; }
}  // namespace

// Threads: application threads call the public members; the I/O thread runs lookups and
// fetches. `mu_` guards the partition states and the fetched chunks.
class Consumer::Impl : public std::enable_shared_from_this<Consumer::Impl> {
 public:
  explicit Impl(const ConsumerConfig& c) : cfg_(c) {}
  void start() {
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

  void subscribe(const std::vector<std::string>& topics, std::shared_ptr<RebalanceListener> listener) {
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
  void assign(const std::vector<TopicPartition>& parts) {
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
  void unsubscribe() {
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
  std::string member_id() const { return membership_->identity().member_id; }
  std::int32_t generation() const { return membership_->identity().generation; }
  std::vector<TopicPartition> assignment() const {
    std::lock_guard lk(mu_);
    std::vector<TopicPartition> out;
    for (auto& [tp, ps] : parts_) out.push_back(tp);
    return out;
  }

  std::expected<std::vector<Message>, Error> poll(std::chrono::milliseconds timeout);
  std::optional<Error> commit(std::optional<std::vector<TopicPartitionOffset>> offsets);
  void commit_async(CommitCallback cb);
  // enable_auto_commit: commits the positions that changed since the last commit.
  void auto_commit_async();
  std::optional<Error> seek(const TopicPartition& tp, std::int64_t offset);
  std::optional<Error> seek_spec(const std::vector<TopicPartition>& tps, OffsetSpec spec);
  std::expected<std::int64_t, Error> position(const TopicPartition& tp);
  std::expected<std::int64_t, Error> committed(const TopicPartition& tp);
  void close();

 private:
  struct Chunk {
    std::vector<std::uint8_t> bytes;
    std::size_t pos = 0;
    std::uint64_t epoch = 0;
  };
  struct PartState {
    std::int64_t position = -1;      // next offset poll() returns; -1 until looked up
    std::int64_t fetch_offset = -1;  // next offset to fetch
    // Unique per consumer (next_epoch_): changed by seek and reset, new when a partition is
    // (re)assigned, so answers to fetches and lookups of an earlier state are dropped — also
    // those of the same partition before it was revoked and given back.
    std::uint64_t epoch = 0;
    bool reset_to_policy = false;    // skip the committed offset (it was out of range)
    bool lookup_in_flight = false;
    bool fetch_in_flight = false;
    // The epoch the fetch in flight was sent at: its answer ends it even after a seek or reset
    // changed `epoch` (else the partition would never be fetched again).
    std::uint64_t fetch_epoch = 0;
    std::deque<Chunk> chunks;
    std::size_t buffered_bytes = 0;
    std::int64_t high_watermark = -1;
    // The group's committed offset as far as this consumer knows (what it looked up or last
    // committed itself); auto-commit skips partitions whose position equals it.
    std::int64_t committed = -1;
    Clock::time_point retry_at{};
  };

  std::optional<Error> update_assignment();
  std::vector<TopicPartitionOffset> current_positions_locked() const;
  // Positions that differ from what the group has committed (auto-commit).
  std::vector<TopicPartitionOffset> changed_positions_locked() const;
  // After a commit of ours succeeded: remember it, so auto-commit does not repeat it.
  void note_committed(const std::vector<TopicPartitionOffset>& offs);
  // Whether a position taken from auto_offset_reset is committed before it is used (see
  // ensure_positions).
  bool commits_resolved_positions_locked() const;
  std::optional<Error> no_group_error(const char* what) const;
  void collect_locked(std::vector<Message>& out);
  void kick();
  // I/O thread.
  void ensure_positions();
  void maybe_fetch();
  void on_fetch(std::int32_t node, const std::map<TopicPartition, std::uint64_t>& epochs, const Error* err,
                std::span<const std::uint8_t> payload);
  void set_fatal_locked(Error e) {
    if (!fatal_) fatal_ = std::move(e);
  }

  ConsumerConfig cfg_;
  std::shared_ptr<Core> core_;
  std::shared_ptr<client::Membership> membership_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> topics_;
  bool manual_ = false;
  std::vector<TopicPartition> manual_parts_;
  std::shared_ptr<RebalanceListener> listener_;
  bool dirty_ = false;
  bool check_topics_ = false;  // subscribe(): say so in poll() while a topic does not exist
  std::map<TopicPartition, PartState> parts_;
  std::uint64_t next_epoch_ = 0;
  std::optional<Error> fatal_;
  bool closed_ = false;
  Clock::time_point next_auto_commit_{};
  std::size_t rr_ = 0;

  // I/O thread only.
  std::set<std::int32_t> fetching_nodes_;
  bool refresh_pending_ = false;
  bool kick_pending_ = false;
};

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
            if (!tm || tm->error == BrokerError::unknown_topic_or_partition)
              return done(Error{make_error_code(BrokerError::unknown_topic_or_partition), client::topic_missing_message(t)});
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

void Consumer::Impl::maybe_fetch() {
  if (core_->stopped()) return;
  const auto now = Clock::now();
  std::map<std::int32_t, std::vector<std::pair<TopicPartition, std::int64_t>>> by_node;
  std::map<std::int32_t, std::map<TopicPartition, std::uint64_t>> epochs;
  std::vector<std::string> no_leader;
  std::set<std::int32_t> held_back;
  {
    std::lock_guard lk(mu_);
    if (closed_) return;
    const auto& md = core_->metadata();
    for (auto& [tp, ps] : parts_) {
      if (ps.fetch_offset < 0 || ps.fetch_in_flight || ps.retry_at > now) continue;
      const std::int32_t node = md.leader(tp.topic, tp.partition);
      if (ps.buffered_bytes >= cfg_.buffered_bytes_per_partition) {
        // Held back by a full buffer: a fetch to its broker must not long-poll, or this
        // partition would wait fetch_max_wait_ms for the others once poll() drained it.
        if (node >= 0) held_back.insert(node);
        continue;
      }
      if (node < 0) {
        no_leader.push_back(tp.topic);
        continue;
      }
      if (fetching_nodes_.contains(node)) continue;
      by_node[node].emplace_back(tp, ps.fetch_offset);
      epochs[node][tp] = ps.epoch;
    }
    for (auto& [node, list] : by_node) {
      fetching_nodes_.insert(node);
      for (auto& [tp, off] : list) {
        auto& ps = parts_[tp];
        ps.fetch_in_flight = true;
        ps.fetch_epoch = ps.epoch;
      }
    }
  }
  for (auto& [node, list] : by_node) {
    flatbuffers::FlatBufferBuilder fbb(512);
    std::map<std::string, std::vector<flatbuffers::Offset<wire::FetchPartition>>> m;
    for (auto& [tp, off] : list)
      m[tp.topic].push_back(
          wire::CreateFetchPartition(fbb, tp.partition, off, static_cast<std::int32_t>(cfg_.partition_fetch_max_bytes)));
    std::vector<flatbuffers::Offset<wire::FetchTopic>> topics;
    for (auto& [name, parts] : m) {
      const auto n = fbb.CreateString(name);
      topics.push_back(wire::CreateFetchTopic(fbb, n, fbb.CreateVector(parts)));
    }
    const auto tv = fbb.CreateVector(topics);
    const std::uint32_t max_wait = held_back.contains(node) ? 0 : cfg_.fetch_max_wait_ms;
    fbb.Finish(wire::CreateFetchRequest(fbb, static_cast<std::int32_t>(max_wait),
                                        static_cast<std::int32_t>(cfg_.fetch_min_bytes),
                                        static_cast<std::int32_t>(cfg_.fetch_max_bytes), tv));
    const auto deadline =
        Clock::now() + std::chrono::milliseconds(cfg_.request_timeout_ms + cfg_.fetch_max_wait_ms);
    core_->send(
        node, protocol::ApiId::fetch, fbb.Release(), deadline, true,
        [self = shared_from_this(), node, ep = epochs[node]](const Error* err, std::span<const std::uint8_t> payload) {
          self->on_fetch(node, ep, err, payload);
        },
        std::chrono::milliseconds(max_wait));
  }
  if (!no_leader.empty() && !refresh_pending_) {
    refresh_pending_ = true;
    auto self = shared_from_this();
    core_->refresh_metadata(no_leader, Clock::now() + std::chrono::milliseconds(cfg_.api_timeout_ms),
                            [self](const Error*) {
                              self->core_->run_after(std::chrono::milliseconds(self->cfg_.retry_backoff_ms), [self] {
                                self->refresh_pending_ = false;
                                self->maybe_fetch();
                              });
                            });
  }
}

void Consumer::Impl::on_fetch(std::int32_t node, const std::map<TopicPartition, std::uint64_t>& epochs,
                              const Error* err, std::span<const std::uint8_t> payload) {
  fetching_nodes_.erase(node);
  bool refresh = false;
  bool backoff = false;
  bool delayed = false;
  std::vector<TopicPartition> reset;
  const auto now = Clock::now();
  {
    std::lock_guard lk(mu_);
    for (auto& [tp, e] : epochs)
      if (auto it = parts_.find(tp); it != parts_.end() && it->second.fetch_in_flight && it->second.fetch_epoch == e)
        it->second.fetch_in_flight = false;
    if (err) {
      if (!is_retriable(err->code)) set_fatal_locked(*err);
      refresh = true;
      backoff = true;
    } else {
      const auto* r = protocol::payload_as<wire::FetchResponse>(payload);
      if (r->error() != wire::ErrorCode::none) {
        Error e = client::broker_error(static_cast<std::int16_t>(r->error()), "fetch failed");
        if (!is_retriable(e.code)) set_fatal_locked(e);
        backoff = true;
      } else if (r->topics()) {
        for (const auto* t : *r->topics()) {
          if (!t->name() || !t->partitions()) continue;
          for (const auto* p : *t->partitions()) {
            TopicPartition tp{t->name()->str(), p->partition()};
            auto it = parts_.find(tp);
            auto ep = epochs.find(tp);
            if (it == parts_.end() || ep == epochs.end() || it->second.epoch != ep->second) continue;
            PartState& ps = it->second;
            const auto code = p->error();
            if (code == wire::ErrorCode::none) {
              ps.high_watermark = p->high_watermark();
              if (p->records() && p->records()->size() > 0) {
                std::span<const std::uint8_t> bytes(p->records()->data(), p->records()->size());
                const auto scan = client::scan_batches(bytes, ps.fetch_offset);
                if (scan.valid_bytes > 0) {
                  ps.chunks.push_back(Chunk{std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + scan.valid_bytes),
                                            0, ps.epoch});
                  ps.buffered_bytes += scan.valid_bytes;
                  ps.fetch_offset = scan.next_fetch_offset;
                }
                if (scan.corrupt) {
                  set_fatal_locked(Error{make_error_code(BrokerError::corrupt_message),
                                         "fetched data of " + tp.topic + "/" + std::to_string(tp.partition) +
                                             " failed its check (" + scan.error + "); will fetch it again"});
                  ps.retry_at = now + std::chrono::milliseconds(cfg_.retry_backoff_ms);
                  delayed = true;
                }
              }
            } else if (code == wire::ErrorCode::offset_out_of_range) {
              ps.position = -1;
              ps.fetch_offset = -1;
              ps.reset_to_policy = true;
              ps.epoch = ++next_epoch_;
              ps.chunks.clear();
              ps.buffered_bytes = 0;
              reset.push_back(tp);
            } else {
              Error e = client::broker_error(static_cast<std::int16_t>(code), {});
              if (const auto* h = p->leader_hint(); h && h->node_id() >= 0)
                core_->apply_leader_hint(tp.topic, tp.partition, h->node_id(), h->leader_epoch(),
                                         h->host() ? h->host()->string_view() : std::string_view{}, h->port());
              else
                refresh = true;
              if (code == wire::ErrorCode::unknown_topic_or_partition) e.message = client::topic_missing_message(tp.topic);
              if (!is_retriable(e.code)) set_fatal_locked(e);
              ps.retry_at = now + std::chrono::milliseconds(cfg_.retry_backoff_ms);
              delayed = true;
            }
          }
        }
      }
    }
  }
  cv_.notify_all();
  if (!reset.empty()) ensure_positions();
  if (refresh && !refresh_pending_) {
    std::vector<std::string> topics;
    for (auto& [tp, e] : epochs) topics.push_back(tp.topic);
    refresh_pending_ = true;
    auto self = shared_from_this();
    core_->refresh_metadata(topics, Clock::now() + std::chrono::milliseconds(cfg_.api_timeout_ms),
                            [self](const Error*) { self->refresh_pending_ = false; });
  }
  if (backoff) {
    core_->run_after(std::chrono::milliseconds(cfg_.retry_backoff_ms),
                     [self = shared_from_this()] { self->maybe_fetch(); });
  } else {
    maybe_fetch();
    if (delayed)  // partitions held back by retry_at need a timer
      core_->run_after(std::chrono::milliseconds(cfg_.retry_backoff_ms),
                       [self = shared_from_this()] { self->maybe_fetch(); });
  }
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
    if (cb) cb(e);
    return;
  }
  std::vector<TopicPartitionOffset> offs;
  {
    std::lock_guard lk(mu_);
    if (closed_) {
      if (cb) cb(closed_error());
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
          if (cb) cb(e);
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
  if (auto e = config.validate()) return std::unexpected(*e);
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
std::optional<Error> Consumer::commit() { return impl_->commit(std::nullopt); }
std::optional<Error> Consumer::commit(const std::vector<TopicPartitionOffset>& offsets) { return impl_->commit(offsets); }
void Consumer::commit_async(CommitCallback callback) { impl_->commit_async(std::move(callback)); }
std::optional<Error> Consumer::seek(const TopicPartition& tp, std::int64_t offset) { return impl_->seek(tp, offset); }
std::optional<Error> Consumer::seek_to_beginning(const std::vector<TopicPartition>& partitions) {
  return impl_->seek_spec(partitions, OffsetSpec::earliest);
}
std::optional<Error> Consumer::seek_to_end(const std::vector<TopicPartition>& partitions) {
  return impl_->seek_spec(partitions, OffsetSpec::latest);
}
std::expected<std::int64_t, Error> Consumer::position(const TopicPartition& tp) { return impl_->position(tp); }
std::expected<std::int64_t, Error> Consumer::committed(const TopicPartition& tp) { return impl_->committed(tp); }
void Consumer::close() { impl_->close(); }

}  // namespace quorumq
