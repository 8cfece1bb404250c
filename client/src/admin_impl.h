// Admin::Impl, shared by admin.cc (topics, offsets, groups) and admin_security.cc (users, ACLs).
#pragma once

#include <thread>

#include "core.h"
#include "quorumq/admin.h"
#include "quorumq/protocol/messages.h"

namespace quorumq {

namespace client {
struct Unit {};
// Topic create/delete answer with (error, message); absent message: the code's own text.
template <typename R>
std::optional<Error> topic_op_result(const R* r, const std::string& what) {
  if (r->error() == wire::ErrorCode::none) return std::nullopt;
  Error e = client::broker_error(static_cast<std::int16_t>(r->error()),
                                 r->message() ? r->message()->string_view() : std::string_view{});
  e.message = what + ": " + e.message;
  return e;
}
}  // namespace client

using client::Clock;
using client::Core;

class Admin::Impl : public std::enable_shared_from_this<Admin::Impl> {
 public:
  explicit Impl(const AdminConfig& c) : cfg_(c) {}
  void start() { core_ = Core::start(cfg_); }

  Clock::time_point deadline() const { return Clock::now() + std::chrono::milliseconds(cfg_.api_timeout_ms); }

  // Runs fn on the I/O thread and waits; fails fast once closed.
  template <typename T>
  std::expected<T, Error> sync(std::function<void(std::function<void(std::expected<T, Error>)>)> fn) {
    if (closed_) return std::unexpected(Error{make_error_code(ClientError::closed), "the admin client is closed"});
    return client::run_sync<std::expected<T, Error>>(*core_, std::move(fn));
  }

  std::optional<Error> create_topic(const std::string& name, std::int32_t partitions, std::int16_t rf,
                                    const std::map<std::string, std::string>& configs);
  std::optional<Error> delete_topic(const std::string& name);
  std::optional<Error> alter_topic_config(const std::string& name, const std::map<std::string, std::string>& set,
                                          const std::vector<std::string>& remove);
  std::optional<Error> alter_group_offsets(const std::string& group, const std::vector<TopicPartitionOffset>& offs);
  std::optional<Error> delete_group_offsets(const std::string& group, const std::vector<TopicPartition>& tps);
  // A member that just left (close()) may still count for a moment where the offsets are kept
  // (the leave reaches each partition leader through the controller's log): a refusal because
  // of members is retried for up to kMembersGone before it is reported.
  static constexpr auto kMembersGone = std::chrono::milliseconds(3000);
  template <typename F>
  std::optional<Error> retry_while_members(F&& attempt) {
    const auto until = Clock::now() + kMembersGone;
    for (;;) {
      auto e = attempt();
      if (!e || e->code != make_error_code(BrokerError::group_not_empty) || Clock::now() >= until) return e;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  std::expected<std::vector<TopicListing>, Error> list_topics(bool internal);
  std::expected<TopicDescription, Error> describe_topic(const std::string& name);
  std::expected<ClusterInfo, Error> cluster();
  std::expected<std::vector<TopicPartitionOffset>, Error> list_offsets(const std::vector<TopicPartition>& tps,
                                                                       OffsetSpec spec, std::int64_t ts);
  std::expected<std::vector<GroupPartitionOffset>, Error> group_offsets(const std::string& group);
  std::expected<std::vector<GroupInfo>, Error> describe_groups(const std::vector<std::string>& ids);
  void close() {
    if (closed_) return;
    closed_ = true;
    core_->stop();
  }

  // One request to the controller whose response has (error, message): `read` turns an answer
  // without error into the result. Retriable errors (not the controller, no leader) retry.
  template <class Resp, class T>
  std::expected<T, Error> controller_call(protocol::ApiId api, std::string what,
                                          std::function<flatbuffers::DetachedBuffer()> build,
                                          std::function<T(const Resp*)> read) {
    auto self = shared_from_this();
    const auto dl = deadline();
    return sync<T>([self, api, what, build, read, dl](std::function<void(std::expected<T, Error>)> done) {
      self->core_->call(
          client::kController, api, build, dl,
          [done, what, read](const Error* err, std::span<const std::uint8_t> payload) -> std::optional<Error> {
            if (err) {
              done(std::unexpected(Error{err->code, what + ": " + err->message}));
              return std::nullopt;
            }
            const auto* r = protocol::payload_as<Resp>(payload);
            auto e = client::topic_op_result(r, what);
            if (e && quorumq::is_retriable(e->code)) return e;
            if (e) done(std::unexpected(*e));
            else done(read(r));
            return std::nullopt;
          });
    });
  }

  AdminConfig cfg_;
  std::shared_ptr<Core> core_;
  std::atomic<bool> closed_{false};
};


}  // namespace quorumq
