#include "quorumq/producer.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>

#include "accumulator.h"
#include "core.h"
#include "quorumq/partitioner.h"
#include "quorumq/protocol/messages.h"

namespace quorumq {

using client::Clock;
using client::Core;

namespace {
std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
Error closed_error() { return Error{make_error_code(ClientError::closed), "the producer is closed"}; }

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

// Threads: send()/flush()/close() run on application threads and touch only what `mu_` guards
// (accumulator, buffer accounting, topic partition counts). Everything network-related runs on
// the Core's I/O thread (run_drain, responses, metadata, producer id).
class Producer::Impl : public std::enable_shared_from_this<Producer::Impl> {
 public:
  explicit Impl(const ProducerConfig& c)
      : cfg_(c),
        idempotent_(c.enable_idempotence && c.acks != Acks::none),
        acc_(client::Accumulator::Options{c.batch_bytes, c.linger_ms, c.max_in_flight, c.delivery_timeout_ms,
                                          c.retry_backoff_ms, c.enable_idempotence && c.acks != Acks::none}) {}

  void start() {
    core_ = Core::start(cfg_);
    tick();
  }

  void send(std::string_view topic, std::optional<std::string_view> key, std::string_view value,
            const Headers& headers, SendCallback cb, std::int32_t partition);
  bool flush(std::optional<std::chrono::milliseconds> timeout);
  void close(std::optional<std::chrono::milliseconds> timeout);
  Stats stats() const {
    std::lock_guard lk(mu_);
    return stats_;
  }

 private:
  struct Sticky {
    std::int32_t partition = -1;
    std::uint64_t batch_id = 0;
  };
  struct Completion {
    client::BatchPtr batch;
    std::optional<Error> error;
    std::int64_t base_offset = -1;
  };

  // I/O thread.
  void tick();
  void schedule_drain();
  void run_drain();
  void ensure_identity();
  void send_request(std::int32_t node, std::vector<client::BatchPtr> batches);
  void on_produce_response(std::int32_t node, const std::vector<client::BatchPtr>& batches, const Error* err,
                           std::span<const std::uint8_t> payload);
  void refresh_metadata(std::vector<std::string> topics);
  void update_topics_locked(const Error* err, const std::vector<std::string>& asked);
  // Any thread, without mu_ held: completes records and releases their buffer memory.
  void complete(std::vector<Completion> done);

  ProducerConfig cfg_;
  const bool idempotent_;
  std::shared_ptr<Core> core_;

  mutable std::mutex mu_;
  std::condition_variable cv_;  // buffer space, metadata, completion (flush)
  client::Accumulator acc_;
  std::size_t buffered_bytes_ = 0;
  std::uint64_t incomplete_ = 0;
  std::map<std::string, std::int32_t, std::less<>> partitions_;  // topic -> partition count
  std::map<std::string, Error, std::less<>> topic_errors_;
  std::map<std::string, Sticky, std::less<>> sticky_;
  std::set<std::string> wanted_;  // topics send() waits for
  client::Accumulator::Identity identity_;
  bool identity_ready_ = false;
  int flushing_ = 0;
  bool closed_ = false;
  Stats stats_;

  // I/O thread only.
  std::atomic<bool> drain_scheduled_{false};
  bool identity_pending_ = false;
  bool refresh_pending_ = false;
  std::map<std::int32_t, std::uint32_t> outstanding_;  // produce requests per node
  Clock::time_point timer_at_ = Clock::time_point::max();
};

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

void Producer::Impl::send(std::string_view topic, std::optional<std::string_view> key, std::string_view value,
                          const Headers& headers, SendCallback cb, std::int32_t partition) {
  const std::size_t rec = BatchBuilder::record_size(key ? key->size() : 0, value.size(), headers);
  if (rec + kBatchHeaderSize + 1024 > cfg_.max_request_bytes) {
    cb(std::unexpected(Error{make_error_code(ClientError::record_too_large),
                             "record of " + std::to_string(rec) + " bytes exceeds max_request_bytes=" +
                                 std::to_string(cfg_.max_request_bytes) + "; raise it (and the broker's limit)"}));
    return;
  }
  const auto deadline = Clock::now() + std::chrono::milliseconds(cfg_.max_block_ms);
  std::unique_lock lk(mu_);
  if (closed_) {
    lk.unlock();
    cb(std::unexpected(closed_error()));
    return;
  }
  // 1. The topic's partition count (blocks on the first send to a topic).
  auto pit = partitions_.find(topic);
  if (pit == partitions_.end()) {
    topic_errors_.erase(std::string(topic));
    wanted_.insert(std::string(topic));
    core_->post([self = shared_from_this(), t = std::string(topic)] { self->refresh_metadata({t}); });
    while (!closed_) {
      pit = partitions_.find(topic);
      if (pit != partitions_.end()) break;
      if (auto e = topic_errors_.find(topic); e != topic_errors_.end()) {
        Error err = e->second;
        lk.unlock();
        cb(std::unexpected(std::move(err)));
        return;
      }
      if (cv_.wait_until(lk, deadline) == std::cv_status::timeout) {
        lk.unlock();
        cb(std::unexpected(Error{make_error_code(ClientError::timed_out),
                                 "no metadata for topic '" + std::string(topic) + "' within max_block_ms=" +
                                     std::to_string(cfg_.max_block_ms) + "; is the cluster reachable?"}));
        return;
      }
    }
    if (closed_) {
      lk.unlock();
      cb(std::unexpected(closed_error()));
      return;
    }
  }
  const std::int32_t count = pit->second;
  const std::int32_t partition_arg = partition;
  // 2. The partition.
  if (partition >= count) {
    lk.unlock();
    cb(std::unexpected(Error{make_error_code(BrokerError::unknown_topic_or_partition),
                             "topic '" + std::string(topic) + "' has " + std::to_string(count) +
                                 " partitions; partition " + std::to_string(partition) + " does not exist"}));
    return;
  }
  if (partition < 0) {
    if (key) {
      partition = partition_for_key(*key, count);
    } else {
      auto& s = sticky_[std::string(topic)];
      if (s.partition < 0 || s.partition >= count) {
        s.partition = static_cast<std::int32_t>(static_cast<std::uint64_t>(now_ms()) % static_cast<std::uint64_t>(count));
        s.batch_id = 0;
      } else if (s.batch_id != 0 && acc_.open_batch_id(TopicPartition{std::string(topic), s.partition}) != s.batch_id) {
        s.partition = (s.partition + 1) % count;  // that batch closed: move on
        s.batch_id = 0;
      }
      partition = s.partition;
    }
  }
  // 3. Buffer space.
  while (buffered_bytes_ + rec > cfg_.buffer_memory && !closed_) {
    schedule_drain();
    if (cv_.wait_until(lk, deadline) == std::cv_status::timeout) {
      lk.unlock();
      cb(std::unexpected(Error{make_error_code(ClientError::buffer_exhausted),
                               "buffer_memory (" + std::to_string(cfg_.buffer_memory) +
                                   " bytes) stayed full for max_block_ms; the brokers are slower than the "
                                   "producer or unreachable"}));
      return;
    }
  }
  if (closed_) {
    lk.unlock();
    cb(std::unexpected(closed_error()));
    return;
  }
  TopicPartition tp{std::string(topic), partition};
  auto batch = acc_.append(tp, key, value, headers, now_ms(), std::move(cb), Clock::now());
  buffered_bytes_ += rec;
  ++incomplete_;
  if (!key && partition_arg < 0) {
    // Sticky: stay on this partition while its batch fills; move on once it is full.
    // A new batch (the previous one filled up) or a full one also moves on: otherwise a
    // partition whose batches cannot drain (in-flight limit, slow leader) keeps all the traffic.
    auto& s = sticky_[tp.topic];
    const bool new_batch = s.batch_id != 0 && batch->id != s.batch_id;
    if (batch->sealed || new_batch) {
      s.partition = (partition + 1) % count;
      s.batch_id = 0;
    } else {
      s.batch_id = batch->id;
    }
  }
  const bool wake = batch->sealed || batch->record_count() == 1;
  lk.unlock();
  if (wake) schedule_drain();
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

void Producer::Impl::complete(std::vector<Completion> done) {
  if (done.empty()) return;
  std::uint64_t ok = 0, failed = 0;
  for (auto& c : done) {
    auto& b = *c.batch;
    for (std::size_t i = 0; i < b.callbacks.size(); ++i) {
      if (c.error) {
        ++failed;
        if (b.callbacks[i]) b.callbacks[i](std::unexpected(*c.error));
      } else {
        ++ok;
        RecordMetadata md{b.tp.topic, b.tp.partition, c.base_offset >= 0 ? c.base_offset + static_cast<std::int64_t>(i) : -1,
                          b.timestamps[i]};
        if (b.callbacks[i]) b.callbacks[i](md);
      }
    }
    b.callbacks.clear();
  }
  {
    std::lock_guard lk(mu_);
    for (auto& c : done) buffered_bytes_ -= c.batch->size_bytes;
    incomplete_ -= ok + failed;
    stats_.records_sent += ok;
    stats_.records_failed += failed;
  }
  cv_.notify_all();
}

bool Producer::Impl::flush(std::optional<std::chrono::milliseconds> timeout) {
  std::unique_lock lk(mu_);
  ++flushing_;
  lk.unlock();
  schedule_drain();
  lk.lock();
  const auto deadline = timeout ? Clock::now() + *timeout : Clock::time_point::max();
  bool ok = true;
  while (incomplete_ > 0) {
    if (timeout) {
      if (cv_.wait_until(lk, deadline) == std::cv_status::timeout && incomplete_ > 0) {
        ok = false;
        break;
      }
    } else {
      cv_.wait(lk);
    }
  }
  --flushing_;
  return ok;
}

void Producer::Impl::close(std::optional<std::chrono::milliseconds> timeout) {
  {
    std::lock_guard lk(mu_);
    if (closed_) return;
  }
  if (!core_->on_io_thread()) flush(timeout);
  std::vector<Completion> done;
  {
    std::lock_guard lk(mu_);
    closed_ = true;
    for (auto& b : acc_.take_all_queued()) done.push_back({b, closed_error()});
  }
  cv_.notify_all();
  complete(std::move(done));
  core_->stop();  // fails what is still in flight (their callbacks run before stop returns)
}

// ---- Producer ----

Producer::Producer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Producer::~Producer() {
  if (impl_) impl_->close(std::nullopt);
}

std::expected<std::unique_ptr<Producer>, Error> Producer::create(const ProducerConfig& config) {
  if (auto e = config.validate()) return std::unexpected(*e);
  auto impl = std::make_shared<Impl>(config);
  impl->start();
  return std::unique_ptr<Producer>(new Producer(std::move(impl)));
}

std::future<SendResult> Producer::send(std::string_view topic, std::optional<std::string_view> key,
                                       std::string_view value, const Headers& headers, std::int32_t partition) {
  auto p = std::make_shared<std::promise<SendResult>>();
  auto f = p->get_future();
  impl_->send(topic, key, value, headers, [p](const SendResult& r) { p->set_value(r); }, partition);
  return f;
}

void Producer::send(std::string_view topic, std::optional<std::string_view> key, std::string_view value,
                    const Headers& headers, SendCallback callback, std::int32_t partition) {
  impl_->send(topic, key, value, headers, std::move(callback), partition);
}

bool Producer::flush(std::optional<std::chrono::milliseconds> timeout) { return impl_->flush(timeout); }
void Producer::close(std::optional<std::chrono::milliseconds> timeout) { impl_->close(timeout); }
Producer::Stats Producer::stats() const { return impl_->stats(); }

}  // namespace quorumq
