// One Produce request: the batches drained for one broker, grouped by topic, and what its
// answer does to each batch: complete it, retry it (not_leader and other retriable errors;
// leader hints are applied at once), split it (message_too_large) or fail it.
#include <algorithm>

#include "producer_impl.h"
#include "quorumq/protocol/messages.h"

namespace quorumq {

namespace {
// The broker names its limit in a message_too_large answer ("... exceeds the broker's limit of
// N ..."); nullopt if it does not.
std::optional<std::size_t> limit_from_message(const std::string& m) {
  static constexpr std::string_view kNeedle = "limit of ";
  const auto at = m.find(kNeedle);
  if (at == std::string::npos) return std::nullopt;
  std::size_t v = 0, i = at + kNeedle.size();
  const std::size_t start = i;
  for (; i < m.size() && m[i] >= '0' && m[i] <= '9' && v < (std::size_t{1} << 40); ++i)
    v = v * 10 + static_cast<std::size_t>(m[i] - '0');
  if (i == start || v == 0) return std::nullopt;
  return v;
}
}  // namespace

void Producer::Impl::send_request(std::int32_t node, std::vector<client::BatchPtr> batches) {
  std::size_t total = 0;
  for (auto& b : batches) total += b->bytes.size() + 64;
  flatbuffers::FlatBufferBuilder fbb(total + 512);
  std::map<std::string, std::vector<flatbuffers::Offset<wire::ProducePartitionData>>> by_topic;
  for (auto& b : batches) {
    const auto rec = fbb.CreateVector(b->bytes.data(), b->bytes.size());
    by_topic[b->tp.topic].push_back(wire::CreateProducePartitionData(fbb, b->tp.partition, rec));
  }
  std::vector<flatbuffers::Offset<wire::ProduceTopicData>> topics;
  for (auto& [name, parts] : by_topic) {
    const auto n = fbb.CreateString(name);
    const auto p = fbb.CreateVector(parts);
    topics.push_back(wire::CreateProduceTopicData(fbb, n, p));
  }
  const auto tv = fbb.CreateVector(topics);
  fbb.Finish(wire::CreateProduceRequest(fbb, static_cast<wire::Acks>(cfg_.acks),
                                        static_cast<std::int32_t>(cfg_.request_timeout_ms), tv));
  {
    std::lock_guard lk(mu_);
    ++stats_.requests_sent;
  }
  const bool expect = cfg_.acks != Acks::none;
  core_->send(node, protocol::ApiId::produce, fbb.Release(),
              Clock::now() + std::chrono::milliseconds(cfg_.request_timeout_ms), expect,
              [self = shared_from_this(), node, batches = std::move(batches)](const Error* err,
                                                                                std::span<const std::uint8_t> payload) {
                self->on_produce_response(node, batches, err, payload);
              });
}

void Producer::Impl::on_produce_response(std::int32_t node, const std::vector<client::BatchPtr>& batches,
                                         const Error* err, std::span<const std::uint8_t> payload) {
  if (outstanding_[node] > 0) --outstanding_[node];
  const auto now = Clock::now();
  std::vector<std::pair<client::BatchPtr, std::optional<Error>>> results;  // error or success
  std::vector<std::int64_t> offsets;
  bool refresh = false;
  if (err || cfg_.acks == Acks::none) {
    for (auto& b : batches) {
      results.emplace_back(b, err ? std::optional<Error>(*err) : std::nullopt);
      offsets.push_back(-1);
    }
    refresh = err != nullptr;
  } else {
    const auto* r = protocol::payload_as<wire::ProduceResponse>(payload);
    for (auto& b : batches) {
      std::optional<Error> e;
      std::int64_t off = -1;
      bool found = false;
      if (r->error() != wire::ErrorCode::none) {
        e = client::broker_error(static_cast<std::int16_t>(r->error()), "produce request failed");
        found = true;
      } else if (r->topics()) {
        for (const auto* t : *r->topics()) {
          if (!t->name() || t->name()->string_view() != b->tp.topic || !t->partitions()) continue;
          for (const auto* p : *t->partitions()) {
            if (p->partition() != b->tp.partition) continue;
            found = true;
            const auto code = p->error();
            if (code == wire::ErrorCode::none) {
              off = p->base_offset();
            } else if (code == wire::ErrorCode::duplicate_sequence) {
              // Written before: an idempotent retry whose first answer was lost. The broker
              // answers with the batch's original offset (-1 if it no longer knows it).
              off = p->base_offset();
            } else {
              e = client::broker_error(static_cast<std::int16_t>(code),
                                       p->message() ? p->message()->string_view() : std::string_view{});
              if (code == wire::ErrorCode::not_leader || code == wire::ErrorCode::leader_not_available) {
                refresh = true;
                if (const auto* h = p->leader_hint(); h && h->node_id() >= 0)
                  core_->apply_leader_hint(b->tp.topic, b->tp.partition, h->node_id(), h->leader_epoch(),
                                           h->host() ? h->host()->string_view() : std::string_view{}, h->port());
              }
            }
            break;
          }
          if (found) break;
        }
      }
      if (!found)
        e = Error{make_error_code(ClientError::protocol_error),
                  "the broker's produce response has no entry for " + b->tp.topic + "/" +
                      std::to_string(b->tp.partition)};
      if (e && e->code == make_error_code(BrokerError::unknown_topic_or_partition)) refresh = true;
      results.emplace_back(b, std::move(e));
      offsets.push_back(off);
    }
  }
  std::vector<Completion> done;
  std::vector<std::string> refresh_topics;
  {
    std::lock_guard lk(mu_);
    for (std::size_t i = 0; i < results.size(); ++i) {
      auto& [b, e] = results[i];
      if (!e) {
        acc_.on_success(b);
        done.push_back({b, std::nullopt, offsets[i]});
      } else if (e->code == make_error_code(BrokerError::message_too_large)) {
        // How it was batched is the producer's business: split until it fits; only a record
        // too large on its own fails.
        const std::size_t size = b->bytes.size();
        const std::uint32_t records = b->record_count();
        const auto limit = limit_from_message(e->message);
        acc_.limit_batch_bytes(b->tp.topic, limit ? *limit : std::max<std::size_t>(size / 2, 1024));
        if (acc_.on_too_large(b, now)) {
          ++stats_.batches_retried;
        } else {
          std::string why = (records == 1 ? "a message of " : "a batch of ") + std::to_string(size) +
                            " bytes (as sent) is larger than the limit" +
                            (limit ? " of " + std::to_string(*limit) + " bytes" : std::string()) + " of topic '" +
                            b->tp.topic + "' (its max.message.bytes, else the broker's --max-message-bytes)";
          if (!limit) why += " [" + e->message + "]";
          done.push_back({b,
                          Error{e->code, why + "; send a smaller message, or raise the limit: quorumq topic "
                                               "alter-config " + b->tp.topic + " --set max.message.bytes=BYTES"},
                          -1});
        }
      } else if (acc_.on_error(b, e->code, now)) {
        ++stats_.batches_retried;
        refresh_topics.push_back(b->tp.topic);
      } else {
        // The broker lost (or never had) this producer's sequence state for the partition:
        // continuing would fail every later batch of it. Take a new producer id; sequence
        // numbers restart at 0 for batches numbered from then on.
        if (idempotent_ && b->producer_id == identity_.producer_id &&
            (e->code == make_error_code(BrokerError::out_of_order_sequence) ||
             e->code == make_error_code(BrokerError::unknown_producer_id)))
          identity_ready_ = false;
        done.push_back({b, std::move(e), -1});
      }
    }
  }
  complete(std::move(done));
  if (refresh) refresh_metadata(std::move(refresh_topics));
  schedule_drain();
}

}  // namespace quorumq
