#include "membership.h"

#include <future>
#include <map>

#include "quorumq/protocol/messages.h"

namespace quorumq::client {

namespace {

using PartsVec = flatbuffers::Vector<flatbuffers::Offset<wire::GroupTopicPartitions>>;

flatbuffers::Offset<PartsVec> write_parts(flatbuffers::FlatBufferBuilder& fbb, const std::set<TopicPartition>& parts) {
  std::map<std::string, std::vector<std::int32_t>> by_topic;
  for (const auto& tp : parts) by_topic[tp.topic].push_back(tp.partition);
  std::vector<flatbuffers::Offset<wire::GroupTopicPartitions>> v;
  for (const auto& [t, ps] : by_topic) v.push_back(wire::CreateGroupTopicPartitionsDirect(fbb, t.c_str(), &ps));
  return fbb.CreateVector(v);
}

flatbuffers::DetachedBuffer build(const ConsumerConfig& cfg, const std::string& member, std::int32_t generation,
                                  const std::vector<std::string>& topics, const std::set<TopicPartition>& owned,
                                  bool leave, std::uint32_t max_wait) {
  flatbuffers::FlatBufferBuilder fbb(256);
  std::vector<flatbuffers::Offset<flatbuffers::String>> ts;
  for (const auto& t : topics) ts.push_back(fbb.CreateString(t));
  const auto g = fbb.CreateString(cfg.group_id);
  const auto m = fbb.CreateString(member);
  const auto c = fbb.CreateString(cfg.client_id);
  const auto tv = fbb.CreateVector(ts);
  const auto a = fbb.CreateString(cfg.assignor);
  const auto o = write_parts(fbb, owned);
  fbb.Finish(wire::CreateGroupHeartbeatRequest(fbb, g, m, generation, c, tv, a,
                                               static_cast<std::int32_t>(cfg.session_timeout_ms),
                                               static_cast<std::int32_t>(cfg.rebalance_timeout_ms), o, leave,
                                               static_cast<std::int32_t>(max_wait)));
  return fbb.Release();
}

}  // namespace

std::set<TopicPartition> read_group_parts(const PartsVec* v) {
  std::set<TopicPartition> out;
  if (!v) return out;
  for (const auto* t : *v) {
    if (!t->topic() || !t->partitions()) continue;
    for (const std::int32_t p : *t->partitions()) out.insert({t->topic()->str(), p});
  }
  return out;
}

Membership::Membership(std::shared_ptr<Core> core, const ConsumerConfig& cfg, std::function<void()> wake)
    : core_(std::move(core)), cfg_(cfg), wake_(std::move(wake)) {}

void Membership::set_subscription(std::vector<std::string> topics) {
  std::string leaving;
  {
    std::lock_guard lk(mu_);
    topics_ = std::move(topics);
    if (topics_.empty()) {
      leaving = member_id_;
      member_id_.clear();
      generation_ = target_generation_ = -1;
      target_.clear();
      pending_ = true;
    }
  }
  if (!leaving.empty()) {
    // Best effort: if the leave is lost, the session timeout removes the member.
    core_->post([self = shared_from_this(), leaving] {
      self->core_->send(kController, protocol::ApiId::group_heartbeat,
                        build(self->cfg_, leaving, -1, {}, {}, true, 0),
                        Clock::now() + std::chrono::milliseconds(self->cfg_.request_timeout_ms), true,
                        [](const Error*, std::span<const std::uint8_t>) {});
    });
    return;
  }
  core_->post([self = shared_from_this()] { self->send(); });
}

bool Membership::active() const {
  std::lock_guard lk(mu_);
  return !topics_.empty();
}

std::optional<Membership::Change> Membership::take_change() {
  std::lock_guard lk(mu_);
  if (!pending_) return std::nullopt;
  pending_ = false;
  Change c{target_, target_generation_, lost_};
  lost_ = false;
  return c;
}

std::optional<Error> Membership::take_error() {
  std::lock_guard lk(mu_);
  auto e = std::move(error_);
  error_.reset();
  return e;
}

void Membership::applied(std::set<TopicPartition> owned, std::int32_t generation) {
  {
    std::lock_guard lk(mu_);
    owned_ = std::move(owned);
    generation_ = generation;
  }
  core_->post([self = shared_from_this()] { self->send(); });
}

CommitIdentity Membership::identity() const {
  std::lock_guard lk(mu_);
  return CommitIdentity{member_id_, member_id_.empty() ? -1 : generation_};
}

void Membership::leave_sync(std::chrono::milliseconds timeout) {
  std::string member;
  {
    std::lock_guard lk(mu_);
    member = member_id_;
    topics_.clear();
    member_id_.clear();
  }
  if (member.empty() || core_->stopped()) return;
  auto p = std::make_shared<std::promise<void>>();
  auto f = p->get_future();
  auto once = std::make_shared<std::once_flag>();
  core_->post([self = shared_from_this(), member, timeout, p, once] {
    self->core_->send(kController, protocol::ApiId::group_heartbeat, build(self->cfg_, member, -1, {}, {}, true, 0),
                      Clock::now() + timeout, true, [p, once](const Error*, std::span<const std::uint8_t>) {
                        std::call_once(*once, [&] { p->set_value(); });
                      });
  });
  f.wait_for(timeout);
}

void Membership::lose_locked(const std::string& /*why*/) {
  if (member_id_.empty() && target_.empty() && owned_.empty()) return;
  member_id_.clear();
  generation_ = target_generation_ = -1;
  target_.clear();
  pending_ = true;
  lost_ = true;
}

void Membership::retry_later(std::chrono::milliseconds delay, bool refresh) {
  {
    std::lock_guard lk(mu_);
    if (timer_armed_) return;
    timer_armed_ = true;
  }
  auto self = shared_from_this();
  auto again = [self] {
    {
      std::lock_guard lk(self->mu_);
      self->timer_armed_ = false;
    }
    self->send();
  };
  if (!refresh) return core_->run_after(delay, again);
  core_->refresh_metadata({}, Clock::now() + std::chrono::milliseconds(cfg_.session_timeout_ms),
                          [self, delay, again](const Error*) { self->core_->run_after(delay, again); });
}

void Membership::send() {
  flatbuffers::DetachedBuffer body;
  std::uint32_t wait = 0;
  {
    std::lock_guard lk(mu_);
    if (in_flight_ || topics_.empty() || core_->stopped()) return;
    // Long poll only when there is nothing to report or apply.
    wait = !member_id_.empty() && !pending_ && owned_ == target_ ? cfg_.heartbeat_interval_ms : 0;
    body = build(cfg_, member_id_, generation_, topics_, owned_, false, wait);
    in_flight_ = true;
  }
  const auto patience = std::min<std::uint32_t>(cfg_.request_timeout_ms, cfg_.session_timeout_ms / 2);
  core_->send(kController, protocol::ApiId::group_heartbeat, std::move(body),
              Clock::now() + std::chrono::milliseconds(wait + patience), true,
              [self = shared_from_this()](const Error* err, std::span<const std::uint8_t> payload) {
                self->on_answer(err, payload);
              },
              std::chrono::milliseconds(wait));
}

void Membership::on_answer(const Error* err, std::span<const std::uint8_t> payload) {
  const auto now = Clock::now();
  const auto backoff = std::chrono::milliseconds(cfg_.retry_backoff_ms);
  bool wake = false;
  enum { kNow, kLater, kRefresh, kSlow } next = kNow;
  {
    std::lock_guard lk(mu_);
    in_flight_ = false;
    if (topics_.empty()) return;  // left meanwhile
    const auto* r = err ? nullptr : protocol::payload_as<wire::GroupHeartbeatResponse>(payload);
    wire::ErrorCode code = r ? r->error() : wire::ErrorCode::none;
    // A refusal by the ACLs comes as an error answer: not a coordinator problem to retry.
    if (err && (err->code == make_error_code(BrokerError::group_authorization_failed) ||
                err->code == make_error_code(BrokerError::topic_authorization_failed))) {
      code = static_cast<wire::ErrorCode>(err->code.value());
      error_ = *err;
      error_->message = "consumer group " + cfg_.group_id + ": " + error_->message;
      wake = true;
      next = kSlow;
    } else if (err || code == wire::ErrorCode::not_coordinator || code == wire::ErrorCode::coordinator_not_available ||
        code == wire::ErrorCode::broker_shutting_down || code == wire::ErrorCode::request_timed_out) {
      // The coordinator moved or is unreachable: find it again. Past the session timeout our
      // partitions belong to others: stop consuming them.
      if (!member_id_.empty() && now - last_ok_ > std::chrono::milliseconds(cfg_.session_timeout_ms)) {
        lose_locked("no answer from the coordinator within session_timeout_ms");
        wake = true;
      }
      next = kRefresh;
    } else if (code == wire::ErrorCode::unknown_member_id || code == wire::ErrorCode::illegal_generation) {
      lose_locked(r->message() ? r->message()->str() : std::string());
      wake = true;
      next = kNow;
    } else if (code != wire::ErrorCode::none) {
      error_ = broker_error(static_cast<std::int16_t>(code), r->message() ? r->message()->string_view() : "");
      error_->message = "consumer group " + cfg_.group_id + ": " + error_->message;
      wake = true;
      next = kSlow;
    } else {
      last_ok_ = now;
      if (r->member_id()) member_id_ = r->member_id()->str();
      target_ = read_group_parts(r->assignment());
      target_generation_ = r->generation_id();
      if (target_ == owned_ && !pending_) {
        generation_ = target_generation_;
        next = kNow;
      } else {
        pending_ = true;
        wake = true;
        next = kLater;  // applied() sends sooner; this keeps the session alive if poll() is slow
      }
    }
  }
  if (wake && wake_) wake_();
  switch (next) {
    case kNow: return send();
    case kLater: return retry_later(std::chrono::milliseconds(cfg_.heartbeat_interval_ms), false);
    case kRefresh: return retry_later(backoff, true);
    case kSlow: return retry_later(std::chrono::milliseconds(1000), false);
  }
}

}  // namespace quorumq::client
