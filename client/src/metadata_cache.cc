// The Core's metadata cache: brokers, controller and per-topic partition leaders, filled by
// Metadata requests (concurrent refreshes share one request) and patched by leader hints from
// not_leader answers.
#include <algorithm>

#include "core_impl.h"
#include "quorumq/protocol/messages.h"

namespace quorumq::client {

std::int32_t MetadataCache::leader(std::string_view t, std::int32_t partition) const {
  const TopicMeta* m = topic(t);
  if (!m || partition < 0 || static_cast<std::size_t>(partition) >= m->partitions.size()) return -1;
  return m->partitions[static_cast<std::size_t>(partition)].leader;
}

const MetadataCache& Core::metadata() const noexcept { return impl_->metadata; }

void Core::refresh_metadata(const std::vector<std::string>& topics, Clock::time_point deadline,
                            std::function<void(const Error*)> done, bool all_topics) {
  auto* impl = impl_.get();
  for (const auto& t : topics) impl->interest.insert(t);
  if (all_topics) impl->interest_all = true;
  if (done) impl->next_waiters.push_back(std::move(done));
  if (impl->next_deadline < deadline) impl->next_deadline = deadline;
  if (impl->refresh_in_flight) return;
  impl->refresh_in_flight = true;
  impl->refresh_waiters = std::move(impl->next_waiters);
  impl->next_waiters.clear();
  const bool all = impl->interest_all;
  impl->interest_all = false;
  std::vector<std::string> names(impl->interest.begin(), impl->interest.end());
  auto self = shared_from_this();
  call(kAnyBroker, protocol::ApiId::metadata,
       [names, all] {
         flatbuffers::FlatBufferBuilder fbb(256);
         flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>> t;
         if (!all) t = fbb.CreateVectorOfStrings(names);
         fbb.Finish(wire::CreateMetadataRequest(fbb, t, false));
         return fbb.Release();
       },
       impl->next_deadline,
       [self, all](const Error* err, std::span<const std::uint8_t> payload) -> std::optional<Error> {
         auto* impl = self->impl_.get();
         if (!err) {
           const auto* r = protocol::payload_as<wire::MetadataResponse>(payload);
           if (r->error() != wire::ErrorCode::none) {
             Error e = broker_error(static_cast<std::int16_t>(r->error()), "metadata request failed");
             if (is_retriable(e.code)) return e;
             auto w = std::move(impl->refresh_waiters);
             impl->refresh_in_flight = false;
             for (auto& f : w) f(&e);
             return std::nullopt;
           }
           auto& md = impl->metadata;
           if (r->brokers()) {
             md.brokers.clear();
             for (const auto* b : *r->brokers())
               md.brokers[b->node_id()] =
                   BrokerInfo{b->node_id(), b->host() ? b->host()->str() : std::string(), b->port()};
           }
           md.controller_id = r->controller_id();
           if (r->cluster_id()) md.cluster_id = r->cluster_id()->str();
           if (all) {
             std::erase_if(md.topics, [](const auto&) { return true; });
           }
           if (r->topics())
             for (const auto* t : *r->topics()) {
               if (!t->name()) continue;
               TopicMeta tm;
               tm.error = static_cast<BrokerError>(t->error());
               tm.internal = t->internal();
               tm.topic_id = t->topic_id();
               if (t->configs())
                 for (const auto* c : *t->configs())
                   if (c->key()) tm.configs[c->key()->str()] = c->value() ? c->value()->str() : std::string();
               if (t->partitions()) {
                 std::int32_t max_id = -1;
                 for (const auto* p : *t->partitions()) max_id = std::max(max_id, p->partition());
                 tm.partitions.resize(static_cast<std::size_t>(max_id + 1));
                 for (std::size_t i = 0; i < tm.partitions.size(); ++i)
                   tm.partitions[i].partition = static_cast<std::int32_t>(i);
                 for (const auto* p : *t->partitions()) {
                   if (p->partition() < 0) continue;
                   auto& pi = tm.partitions[static_cast<std::size_t>(p->partition())];
                   pi.leader = p->error() == wire::ErrorCode::none ? p->leader_id() : -1;
                   if (p->leader_id() >= 0) pi.leader = p->leader_id();
                   pi.leader_epoch = p->leader_epoch();
                   if (p->replicas()) pi.replicas.assign(p->replicas()->begin(), p->replicas()->end());
                   if (p->isr()) pi.isr.assign(p->isr()->begin(), p->isr()->end());
                   pi.high_watermark = p->high_watermark();
                   pi.log_start_offset = p->log_start_offset();
                 }
               }
               md.topics[t->name()->str()] = std::move(tm);
             }
           md.updated = Clock::now();
         }
         impl->refresh_in_flight = false;
         auto w = std::move(impl->refresh_waiters);
         impl->refresh_waiters.clear();
         for (auto& f : w) f(err);
         if (!impl->next_waiters.empty()) self->refresh_metadata({}, impl->next_deadline, nullptr);
         return std::nullopt;
       });
}

void Core::apply_leader_hint(std::string_view topic, std::int32_t partition, std::int32_t node,
                             std::uint64_t epoch, std::string_view host, std::uint16_t port) {
  auto& md = impl_->metadata;
  if (node < 0) return;
  if (!host.empty() && port != 0 && !md.brokers.contains(node))
    md.brokers[node] = BrokerInfo{node, std::string(host), port};
  auto it = md.topics.find(topic);
  if (it == md.topics.end() || partition < 0 || static_cast<std::size_t>(partition) >= it->second.partitions.size())
    return;
  auto& p = it->second.partitions[static_cast<std::size_t>(partition)];
  if (epoch >= p.leader_epoch) {
    p.leader = node;
    p.leader_epoch = epoch;
  }
}

}  // namespace quorumq::client
