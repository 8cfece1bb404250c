#include "quorumq/producer.h"

#include "producer_impl.h"
#include "quorumq/partitioner.h"

// Producer's application side (send, completions, flush, close) and the public Producer. The
// I/O thread's loop is in producer_sender.cc, one Produce request in produce_request.cc.

namespace quorumq {

namespace {
std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

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
      partition = sticky_.partition(acc_, topic, count, now_ms());
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
  if (!key && partition_arg < 0) sticky_.appended(tp.topic, partition, count, *batch);
  const bool wake = batch->sealed || batch->record_count() == 1;
  lk.unlock();
  if (wake) schedule_drain();
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
  if (auto valid = config.validate(); !valid) return std::unexpected(valid.error());
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
