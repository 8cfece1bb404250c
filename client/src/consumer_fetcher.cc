// Consumer prefetching on the I/O thread: at most one fetch in flight per broker, each asking
// for every assigned partition that broker leads, has a position and room in its buffer. An
// answer is checked batch by batch (fetch_buffer.h) and kept as a chunk for poll(); answers of
// an earlier partition state (seek, reset, reassignment: a different epoch) are dropped.
#include <algorithm>

#include "consumer_impl.h"
#include "fetch_buffer.h"
#include "quorumq/protocol/messages.h"
#include "requests.h"

namespace quorumq {

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

}  // namespace quorumq
