// quorumq::Producer: batching, retrying, idempotent producer.
//
// Threading: every public member is thread-safe. One background I/O thread per Producer runs
// the network, linger timers and completion callbacks. Callbacks run on that thread: keep them
// short and never call flush()/close() from one (it would wait for itself).
//
// Delivery: a future/callback completes exactly once, with the record's partition and offset
// once the broker acknowledged it at the configured acks level, or with the error that ended
// its delivery (non-retriable broker error, or delivery_timeout_ms). With idempotence (default)
// retries never duplicate a record and records of one partition are written in send() order.
// See client/README.md for the design.
#pragma once

#include "quorumq/export.h"

#include <chrono>
#include <expected>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string_view>

#include "quorumq/config.h"
#include "quorumq/error.h"
#include "quorumq/types.h"

namespace quorumq {

using SendResult = std::expected<RecordMetadata, Error>;
using SendCallback = std::function<void(const SendResult&)>;

class QUORUMQ_API Producer {
 public:
  // Fails on an invalid config. Connects lazily (first send or flush).
  [[nodiscard]] static std::expected<std::unique_ptr<Producer>, Error> create(const ProducerConfig& config);
  ~Producer();  // close()
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // Queues one record. A key picks the partition (partition_for_key, see partitioner.h); without
  // a key records are spread over the partitions (sticky: one batch at a time per partition).
  // `partition` >= 0 forces a partition. Blocks up to max_block_ms while the topic's metadata
  // is unknown or buffer_memory is full; the error then arrives through the future/callback.
  // The future is the only way to learn the outcome: use the callback overload to fire and forget.
  [[nodiscard]] std::future<SendResult> send(std::string_view topic, std::optional<std::string_view> key,
                                             std::string_view value, const Headers& headers = {},
                                             std::int32_t partition = -1);
  void send(std::string_view topic, std::optional<std::string_view> key, std::string_view value,
            const Headers& headers, SendCallback callback, std::int32_t partition = -1);

  // Sends everything queued now (ignoring linger) and waits until all records sent before this
  // call are complete (acknowledged or failed). Returns false on timeout.
  [[nodiscard]] bool flush(std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // flush(), then stops the I/O thread. Records still incomplete after `timeout` fail with
  // ClientError::closed. Idempotent.
  void close(std::optional<std::chrono::milliseconds> timeout = std::nullopt);

  struct Stats {
    std::uint64_t records_sent = 0;       // acknowledged
    std::uint64_t records_failed = 0;
    std::uint64_t batches_retried = 0;
    std::uint64_t requests_sent = 0;
  };
  Stats stats() const;

  class Impl;

 private:
  explicit Producer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace quorumq
