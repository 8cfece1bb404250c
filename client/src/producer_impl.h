// Producer::Impl: the state behind a Producer, shared by the files that implement it:
//   producer.cc          the application side: send() (partition choice, buffer space),
//                        completions, flush, close; the public Producer forwards here
//   producer_sender.cc   the I/O thread's loop: linger timer, drain into requests, producer id,
//                        topic metadata
//   produce_request.cc   one Produce request: building it, and applying its answer (retry,
//                        split a batch too large, complete)
// The sticky partitioner (sticky_partitioner.h) and the batching rules (accumulator.h) are
// pure helpers it owns.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "accumulator.h"
#include "core.h"
#include "quorumq/producer.h"
#include "sticky_partitioner.h"

namespace quorumq {

using client::Clock;
using client::Core;

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

  static Error closed_error() { return Error{make_error_code(ClientError::closed), "the producer is closed"}; }

 private:
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
  client::StickyPartitioner sticky_;
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

}  // namespace quorumq
