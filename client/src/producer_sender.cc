// The Producer's I/O-thread loop: a 100 ms tick and the linger timer drain the accumulator
// into one Produce request per broker (at most max_in_flight outstanding each), after getting a
// producer id when idempotent; topic metadata is refreshed for send() and for partitions
// without a leader.
#include "producer_impl.h"
#include "quorumq/protocol/messages.h"

namespace quorumq {

void Producer::Impl::tick() {
  {
    std::lock_guard lk(mu_);
    if (closed_) return;
  }
  run_drain();
  core_->run_after(std::chrono::milliseconds(100), [self = shared_from_this()] { self->tick(); });
}

void Producer::Impl::schedule_drain() {
  if (drain_scheduled_.exchange(true)) return;
  core_->post([self = shared_from_this()] {
    self->drain_scheduled_ = false;
    self->run_drain();
  });
}

void Producer::Impl::ensure_identity() {
  if (identity_pending_) return;
  identity_pending_ = true;
  const auto deadline = Clock::now() + std::chrono::milliseconds(cfg_.delivery_timeout_ms);
  auto self = shared_from_this();
  core_->call(client::kAnyBroker, protocol::ApiId::init_producer_id,
              [timeout = cfg_.request_timeout_ms] {
                flatbuffers::FlatBufferBuilder fbb(128);
                fbb.Finish(wire::CreateInitProducerIdRequest(fbb, 0, -1, -1, static_cast<std::int32_t>(timeout)));
                return fbb.Release();
              },
              deadline,
              [self](const Error* err, std::span<const std::uint8_t> payload) -> std::optional<Error> {
                self->identity_pending_ = false;
                std::optional<Error> failure;
                if (err) {
                  failure = *err;
                } else {
                  const auto* r = protocol::payload_as<wire::InitProducerIdResponse>(payload);
                  if (r->error() != wire::ErrorCode::none) {
                    Error e = client::broker_error(static_cast<std::int16_t>(r->error()), "InitProducerId failed");
                    if (is_retriable(e.code)) {
                      self->identity_pending_ = true;
                      return e;
                    }
                    failure = e;
                  } else {
                    std::lock_guard lk(self->mu_);
                    if (self->identity_.producer_id >= 0) self->acc_.reset_sequences();
                    self->identity_ = {r->producer_id(), r->producer_epoch()};
                    self->identity_ready_ = true;
                  }
                }
                if (failure) {
                  // Without a producer id nothing can be sent idempotently: fail what waits.
                  std::vector<Completion> done;
                  {
                    std::lock_guard lk(self->mu_);
                    for (auto& b : self->acc_.take_all_queued())
                      done.push_back({b, Error{failure->code, "cannot get a producer id: " + failure->message}});
                  }
                  self->complete(std::move(done));
                  return std::nullopt;
                }
                self->schedule_drain();
                return std::nullopt;
              });
}

void Producer::Impl::run_drain() {
  if (core_->stopped()) return;
  const auto now = Clock::now();
  std::vector<Completion> expired;
  std::vector<std::pair<std::int32_t, std::vector<client::BatchPtr>>> requests;
  std::vector<TopicPartition> no_leader;
  Clock::time_point next = Clock::time_point::max();
  {
    std::lock_guard lk(mu_);
    for (auto& b : acc_.expire(now))
      expired.push_back({b, Error{make_error_code(ClientError::timed_out),
                                  "not acknowledged within delivery_timeout_ms=" +
                                      std::to_string(cfg_.delivery_timeout_ms)}});
    if (idempotent_ && !identity_ready_) {
      if (acc_.queued_batches() > 0) ensure_identity();
    } else {
      const auto& md = core_->metadata();
      auto leader = [&md](const TopicPartition& tp) { return md.leader(tp.topic, tp.partition); };
      auto room = [this](std::int32_t node) { return outstanding_[node] < cfg_.max_in_flight; };
      for (;;) {
        auto drained = acc_.drain(now, flushing_ > 0 || closed_, identity_, cfg_.max_request_bytes, leader, room,
                                  &no_leader);
        if (drained.empty()) break;
        for (auto& [node, batches] : drained) {
          ++outstanding_[node];
          requests.emplace_back(node, std::move(batches));
        }
      }
      next = acc_.next_ready_time(now);
    }
  }
  complete(std::move(expired));
  for (auto& [node, batches] : requests) send_request(node, std::move(batches));
  if (!no_leader.empty()) {
    std::vector<std::string> topics;
    for (auto& tp : no_leader) topics.push_back(tp.topic);
    refresh_metadata(std::move(topics));
  }
  if (next != Clock::time_point::max() && (timer_at_ <= now || next < timer_at_)) {
    timer_at_ = next;
    core_->run_after(std::chrono::duration_cast<std::chrono::milliseconds>(next - now) + std::chrono::milliseconds(1),
                     [self = shared_from_this()] {
                       self->timer_at_ = Clock::time_point::max();
                       self->run_drain();
                     });
  }
}

void Producer::Impl::refresh_metadata(std::vector<std::string> topics) {
  if (core_->stopped()) return;
  if (refresh_pending_) return;
  refresh_pending_ = true;
  auto self = shared_from_this();
  {
    std::lock_guard lk(mu_);
    for (auto& t : wanted_) topics.push_back(t);
  }
  core_->refresh_metadata(topics, Clock::now() + std::chrono::milliseconds(cfg_.max_block_ms),
                          [self, topics](const Error* err) {
                            {
                              std::lock_guard lk(self->mu_);
                              self->update_topics_locked(err, topics);
                            }
                            self->cv_.notify_all();
                            // Back off a little before the drain that may ask again.
                            self->core_->run_after(std::chrono::milliseconds(err ? self->cfg_.retry_backoff_ms : 0),
                                                   [self] {
                                                     self->refresh_pending_ = false;
                                                     bool again;
                                                     {
                                                       std::lock_guard lk(self->mu_);
                                                       again = !self->wanted_.empty();
                                                     }
                                                     if (again) self->refresh_metadata({});
                                                     self->run_drain();
                                                   });
                          });
}

void Producer::Impl::update_topics_locked(const Error* err, const std::vector<std::string>& asked) {
  const auto& md = core_->metadata();
  for (const auto& [name, tm] : md.topics) {
    if (tm.error == BrokerError::none && !tm.partitions.empty()) {
      partitions_[name] = static_cast<std::int32_t>(tm.partitions.size());
      wanted_.erase(name);
    } else if (tm.error != BrokerError::none && !is_retriable(make_error_code(tm.error)) && wanted_.contains(name)) {
      std::string msg = tm.error == BrokerError::unknown_topic_or_partition
                            ? "topic '" + name + "' does not exist; create it first (quorumq topic create " + name +
                                  " --partitions P --replicas R)"
                            : std::string(make_error_code(tm.error).message());
      topic_errors_[name] = Error{make_error_code(tm.error), msg};
      wanted_.erase(name);
    }
  }
  if (err)
    for (const auto& t : asked)
      if (wanted_.contains(t) && !partitions_.contains(t)) {
        topic_errors_[t] = *err;
        wanted_.erase(t);
      }
}

}  // namespace quorumq
