// Broker configuration: every option is a flag and a QUORUMQ_* environment variable (flags win).
// Parsing never exits the process itself: bad config is a value, main() prints one line and
// exits with code 2.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <vector>

namespace quorumq::broker {

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
  std::string str() const { return host + ":" + std::to_string(port); }
};

struct Peer {
  std::int32_t id = -1;
  HostPort addr;
};

struct BrokerConfig {
  std::int32_t node_id = 0;
  HostPort listen{"127.0.0.1", 9092};
  HostPort admin_listen{"127.0.0.1", 9644};
  // Address clients should use for this broker in Metadata (defaults to listen).
  std::optional<HostPort> advertised;
  // The Kafka-protocol listener (issue 17), off unless set, and the address Kafka clients are
  // given for this broker in Metadata (defaults to kafka_listen).
  std::optional<HostPort> kafka_listen;
  std::optional<HostPort> kafka_advertised;
  // What clients are told: the advertised address, else the listener's.
  HostPort client_address() const { return advertised.value_or(listen); }
  std::optional<HostPort> kafka_address() const {
    if (!kafka_listen) return std::nullopt;
    return kafka_advertised.value_or(*kafka_listen);
  }
  std::string data_dir;
  std::vector<Peer> peers;  // includes this broker, at its PEER address; empty: single node
  // Where other brokers connect (replication, the peer handshake). Defaults to this broker's
  // own entry in --peers. Never the client port: that one refuses broker-to-broker apis.
  std::optional<HostPort> peer_listen;
  // Shared secret every broker of the cluster proves it knows (HMAC challenge) before its
  // replication traffic is accepted; empty: peer links are not authenticated (warned at start).
  std::string cluster_secret;
  std::string cluster_secret_file;
  bool cluster_secret_world_readable = false;
  // TLS on the client and Kafka listeners (--tls-cert-file); empty: plain TCP.
  std::string tls_cert_file, tls_key_file, tls_ca_file;
  bool tls_client_auth_required = false;
  // Mutual TLS on the peer links (--peer-tls-*): all three or none. The peer listener requires a
  // certificate from peer_tls_ca_file, the dialer verifies the listener's against it, and each
  // side checks that the other's certificate names the node it claims to be (CN or a DNS SAN
  // "quorumq-node-<id>"). Authenticates peers on its own (an alternative to the cluster secret).
  std::string peer_tls_cert_file, peer_tls_key_file, peer_tls_ca_file;
  bool peer_tls() const { return !peer_tls_cert_file.empty(); }
  bool admin_tls = false;  // the admin endpoint over HTTPS with the same certificate (--admin-tls)
  // The admin endpoint's bearer token (--admin-token-file); empty: its routes are open.
  std::string admin_token;
  std::string admin_token_file;
  bool admin_token_world_readable = false;
  // SASL SCRAM required on the client and Kafka listeners (--sasl); ACLs are enforced whenever
  // clients are authenticated (--sasl or --tls-client-auth=required).
  bool sasl = false;
  std::vector<std::string> tls_principal_rules;  // --tls-principal-rule (security.h, PrincipalRule)
  std::vector<std::string> super_users;  // user names (principal User:<name>)
  // The bootstrap super user (--sasl-bootstrap-user-file "name:password"): valid on this broker
  // without the controller, so the first user and ACLs can be created.
  std::string bootstrap_user, bootstrap_password;
  std::string bootstrap_user_file;
  bool authorization() const { return sasl || tls_client_auth_required; }
  // Without a secret or peer TLS a multi-broker cluster refuses to start unless this is set:
  // anyone who reaches --peer-listen could then pose as a broker (local experiments only).
  bool allow_unauthenticated_peers = false;
  std::string log_level = "info";
  std::string cluster_id = "quorumq";

  unsigned io_threads = 0;                      // 0: one per core
  std::uint32_t max_frame_bytes = 64u << 20;
  std::uint32_t max_message_bytes = 4u << 20;   // one record batch
  unsigned max_connections = 10000;
  // Bytes one connection may make the broker hold (requests in flight with their answers'
  // reservations, answers not yet written) before it stops being read (backpressure).
  std::uint64_t max_inflight_bytes_per_connection = 64u << 20;
  // The same, summed over every client connection (incl. frame buffers): the broker-wide cap.
  std::uint64_t max_buffered_bytes = 1ull << 30;
  // A connection whose answers the client does not read for this long is closed.
  std::uint32_t write_timeout_ms = 30000;
  // Largest fetch answer built for one request (a client's max_bytes is clamped to it).
  std::int32_t max_fetch_bytes = 52428800;
  // Partitions one produce/fetch/list-offsets/offset-commit/offset-fetch request may name
  // (each at most once): bounds the work one request makes the broker do.
  std::uint32_t max_partitions_per_request = 5000;
  // Consumer groups: offset-commit metadata, topics one member may subscribe to.
  std::uint32_t max_offset_metadata_bytes = 4096;
  std::uint32_t max_subscription_topics = 1000;
  std::uint32_t max_groups = 10000;         // consumer groups with members, cluster-wide
  std::uint32_t max_group_members = 1000;   // members of one group
  std::uint32_t idle_timeout_ms = 600000;       // a silent connection is closed after this
  std::uint32_t partial_frame_timeout_ms = 30000;  // a frame must complete within this (slow loris)
  std::uint32_t default_partitions = 1;
  std::optional<std::uint64_t> retention_bytes;  // per partition
  std::optional<std::int64_t> retention_ms;
  std::uint32_t retention_check_ms = 30000;
  std::uint64_t map_size_bytes = 64ull << 30;
  unsigned max_partitions = 4096;
  std::uint32_t election_timeout_ms = 300;       // used by replication
  std::uint32_t heartbeat_interval_ms = 50;
  // A follower that has not caught up with its leader for this long leaves the partition's
  // in-sync replicas (Kafka's replica.lag.time.max.ms): under-replicated, and not ready.
  std::uint32_t replica_lag_max_ms = 10000;
  std::uint32_t shutdown_timeout_ms = 10000;
  // Hot backups (POST /v1/backup) are written only below this directory; empty: backups off.
  std::string backup_dir;
  // A backup onto the data directory's filesystem must leave this share of it free.
  std::uint32_t backup_min_free_percent = 10;
  // Set when --max-connections was given explicitly (flag or environment): then a file
  // descriptor limit too small for it refuses the start instead of lowering it.
  bool max_connections_explicit = false;
};

// Parses argv (and the environment). Returns the config, or the one-line reason it is bad.
// `help_text` gets --help output when --help was given (then the result is an empty error).
std::expected<BrokerConfig, std::string> parse_config(int argc, char** argv, std::string* help_text);

std::expected<HostPort, std::string> parse_host_port(const std::string& s);
std::expected<std::vector<Peer>, std::string> parse_peers(const std::string& s);

}  // namespace quorumq::broker
