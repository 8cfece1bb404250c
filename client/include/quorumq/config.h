// Configuration of Producer, Consumer and Admin. Plain structs with defaults; validate() says
// exactly which field is wrong. Names carry their unit last (linger_ms, batch_bytes).
#pragma once

#include "quorumq/export.h"

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>

#include "quorumq/error.h"

namespace quorumq {

// Shared by every client: where the cluster is and how patient to be with it.
struct QUORUMQ_API ClientConfig {
  // "host:port[,host:port...]": any few brokers; the rest is learned from Metadata.
  std::string bootstrap = "127.0.0.1:9092";
  std::string client_id = "quorumq-cpp";
  std::uint32_t connect_timeout_ms = 5000;
  // Longest wait for one response (a long-poll fetch adds its own max wait on top).
  std::uint32_t request_timeout_ms = 30000;
  // Reconnect backoff: doubles from min to max after each failed connect to the same broker.
  std::uint32_t reconnect_backoff_ms = 50;
  std::uint32_t reconnect_backoff_max_ms = 1000;
  std::uint32_t retry_backoff_ms = 100;
  // Metadata is also refreshed on any not_leader / dead connection.
  std::uint32_t metadata_max_age_ms = 300000;
  // A broker that leaves a request unanswered this long past its expected time (a paused or
  // partitioned broker keeps its TCP connection open) makes the client refresh metadata from
  // another broker; if that broker's partitions have moved to new leaders, its connection is
  // dropped and everything in flight is retried at the new leaders at once, instead of after
  // request_timeout_ms.
  std::uint32_t stall_timeout_ms = 300;
  std::uint32_t max_frame_bytes = 64u << 20;
  // TLS to the brokers (a broker with --tls-cert-file): on when `tls` is set or a CA file is
  // given. The broker's certificate must chain to tls_ca_file (else the system's CAs) and name
  // the host dialed (unless tls_verify_hostname is false). tls_cert_file + tls_key_file: this
  // client's certificate, for brokers that require one (--tls-client-auth=required).
  bool tls = false;
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  bool tls_verify_hostname = true;
  // SASL SCRAM login (a broker with --sasl): every connection authenticates as sasl_user right
  // after the handshake. sasl_mechanism: "SCRAM-SHA-256" or "SCRAM-SHA-512". Use TLS too, or
  // the traffic (not the password: SCRAM never sends it) can be read on the way.
  std::string sasl_user;
  std::string sasl_password;
  std::string sasl_mechanism = "SCRAM-SHA-256";

  [[nodiscard]] std::expected<void, Error> validate() const;
};

enum class Acks : std::uint8_t { none = 0, leader = 1, quorum = 2 };

struct QUORUMQ_API ProducerConfig : ClientConfig {
  Acks acks = Acks::quorum;  // quorum: the only setting that survives a leader failover
  std::uint32_t linger_ms = 5;
  std::size_t batch_bytes = 256 * 1024;         // one partition's batch closes at this size
  std::size_t max_request_bytes = 4u << 20;     // one produce request (many partitions)
  std::uint32_t max_in_flight = 5;              // produce requests per broker connection
  std::uint32_t delivery_timeout_ms = 120000;   // send() to final answer, retries included
  std::size_t buffer_memory = 64u << 20;        // bytes of records not yet acknowledged
  std::uint32_t max_block_ms = 60000;           // send() waits this long for buffer/metadata
  // Producer id + per-partition sequence numbers: retries never write a record twice.
  // Ignored (off) with acks=none, which gets no answer to retry on.
  bool enable_idempotence = true;

  [[nodiscard]] std::expected<void, Error> validate() const;
};

enum class OffsetReset : std::uint8_t { earliest, latest, none };

struct QUORUMQ_API ConsumerConfig : ClientConfig {
  // Committed offsets and membership are kept per group. Required for subscribe() and
  // commits; empty: assign() only, starting at auto_offset_reset or seek() (like kcat without -G).
  std::string group_id;
  // Where to start a partition the group has no committed offset for (none: error). A group
  // member commits the position it got from this policy before it consumes from it, so the
  // group keeps its place on every partition it ever saw (see consumer.h).
  OffsetReset auto_offset_reset = OffsetReset::latest;
  bool enable_auto_commit = false;
  std::uint32_t auto_commit_interval_ms = 5000;
  std::uint32_t fetch_max_wait_ms = 500;
  std::uint32_t fetch_min_bytes = 1;
  std::uint32_t fetch_max_bytes = 50u << 20;
  std::uint32_t partition_fetch_max_bytes = 1u << 20;
  std::size_t max_poll_records = 500;
  // Prefetch stops for a partition while this many bytes of it wait for poll().
  std::size_t buffered_bytes_per_partition = 2u << 20;
  // commit(), committed() and the start-up offset lookups give up after this long.
  std::uint32_t api_timeout_ms = 60000;

  // Consumer groups (subscribe()). The members of a group share the partitions of the topics
  // they subscribe to; the coordinator (a broker) assigns them with `assignor`, the same for
  // every member: "sticky" (default: a rebalance moves only what must move), "range" or
  // "roundrobin". Every strategy hands partitions over cooperatively: members keep consuming the
  // partitions they keep.
  std::string assignor = "sticky";
  // A member the coordinator has not heard from for this long is removed and its partitions go
  // to the others (which resume from the committed offsets). The member itself stops consuming
  // them once it has not reached the coordinator for this long.
  std::uint32_t session_timeout_ms = 10000;
  // How long a member may take to release partitions it was asked to give up (its next poll()
  // runs on_revoked and commits); after that the coordinator removes it.
  std::uint32_t rebalance_timeout_ms = 30000;
  // The longest a heartbeat waits at the coordinator for news (long poll); also the heartbeat
  // period. Must be well below session_timeout_ms.
  std::uint32_t heartbeat_interval_ms = 1000;

  [[nodiscard]] std::expected<void, Error> validate() const;
};

struct QUORUMQ_API AdminConfig : ClientConfig {
  std::uint32_t api_timeout_ms = 30000;  // each Admin call, retries included

  [[nodiscard]] std::expected<void, Error> validate() const;
};

}  // namespace quorumq
