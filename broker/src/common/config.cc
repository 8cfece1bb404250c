#include "config.h"

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace quorumq::broker {

std::expected<HostPort, std::string> parse_host_port(const std::string& s) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
    return std::unexpected("'" + s + "' is not HOST:PORT (e.g. 127.0.0.1:9092)");
  HostPort hp;
  hp.host = s.substr(0, colon);
  if (hp.host.size() > 2 && hp.host.front() == '[' && hp.host.back() == ']') hp.host = hp.host.substr(1, hp.host.size() - 2);
  unsigned port = 0;
  const char* b = s.data() + colon + 1;
  const char* e = s.data() + s.size();
  auto [p, ec] = std::from_chars(b, e, port);
  if (ec != std::errc{} || p != e || port > 65535)
    return std::unexpected("'" + s + "' has a bad port: use a number 0..65535");
  hp.port = static_cast<std::uint16_t>(port);
  return hp;
}

std::expected<std::vector<Peer>, std::string> parse_peers(const std::string& s) {
  std::vector<Peer> out;
  if (s.empty()) return out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const auto comma = s.find(',', start);
    const std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const auto at = item.find('@');
    if (at == std::string::npos)
      return std::unexpected("peer '" + item + "' is not ID@HOST:PORT (e.g. 1@10.0.0.1:9092)");
    Peer p;
    const std::string id = item.substr(0, at);
    auto [ptr, ec] = std::from_chars(id.data(), id.data() + id.size(), p.id);
    if (ec != std::errc{} || ptr != id.data() + id.size() || p.id < 0)
      return std::unexpected("peer '" + item + "' has a bad id: use a non-negative integer");
    auto hp = parse_host_port(item.substr(at + 1));
    if (!hp) return std::unexpected("peer '" + item + "': " + hp.error());
    p.addr = *hp;
    for (const auto& q : out)
      if (q.id == p.id) return std::unexpected("peer id " + std::to_string(p.id) + " appears twice in --peers");
    out.push_back(p);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::expected<BrokerConfig, std::string> parse_config(int argc, char** argv, std::string* help_text) {
  BrokerConfig c;
  CLI::App app{"quorumq-broker: a replicated, durable message-queue broker"};
  app.set_help_flag("-h,--help", "Print this help and exit");
  app.set_version_flag("--version", std::string("quorumq-broker ") + QUORUMQ_VERSION);
  app.option_defaults()->always_capture_default();
  std::string listen = c.listen.str(), admin = c.admin_listen.str(), advertised, peers, peer_listen;
  std::string kafka_listen, kafka_advertised;
  std::uint64_t retention_bytes = 0;
  std::int64_t retention_ms = 0;
  app.add_option("--node-id", c.node_id, "This broker's id (unique in the cluster)")->envname("QUORUMQ_NODE_ID");
  app.add_option("--listen", listen, "Client address HOST:PORT")->envname("QUORUMQ_LISTEN");
  app.add_option("--admin-listen", admin, "Admin HTTP address HOST:PORT (/healthz /readyz /metrics)")
      ->envname("QUORUMQ_ADMIN_LISTEN");
  app.add_option("--advertised", advertised, "Address given to clients, if not --listen")
      ->envname("QUORUMQ_ADVERTISED");
  app.add_option("--kafka-listen", kafka_listen,
                 "Kafka-protocol listener HOST:PORT for Kafka clients (kcat, librdkafka, ...); off if unset")
      ->envname("QUORUMQ_KAFKA_LISTEN");
  app.add_option("--kafka-advertised", kafka_advertised, "Address given to Kafka clients, if not --kafka-listen")
      ->envname("QUORUMQ_KAFKA_ADVERTISED");
  app.add_option("--data-dir", c.data_dir, "Data directory (created if missing)")->envname("QUORUMQ_DATA_DIR");
  app.add_option("--peers", peers,
                 "All brokers, this one included, at their PEER addresses (--peer-listen): ID@HOST:PORT,...")
      ->envname("QUORUMQ_PEERS");
  app.add_option("--peer-listen", peer_listen,
                 "Address other brokers connect to (replication); default: this broker's entry in --peers")
      ->envname("QUORUMQ_PEER_LISTEN");
  app.add_flag("--allow-unauthenticated-peers", c.allow_unauthenticated_peers,
               "Start a multi-broker cluster without --cluster-secret-file (anyone who reaches --peer-listen "
               "can then pose as a broker: local experiments only)")
      ->envname("QUORUMQ_ALLOW_UNAUTHENTICATED_PEERS");
  app.add_option("--cluster-secret-file", c.cluster_secret_file,
                 "File holding the secret every broker of the cluster shares; peers prove they know it "
                 "(HMAC challenge) before their replication traffic is accepted")
      ->envname("QUORUMQ_CLUSTER_SECRET_FILE");
  app.add_option("--tls-cert-file", c.tls_cert_file,
                 "PEM certificate chain: the client listener (--listen) and the Kafka listener speak TLS 1.2+ "
                 "with it (needs --tls-key-file)")
      ->envname("QUORUMQ_TLS_CERT_FILE");
  app.add_option("--tls-key-file", c.tls_key_file, "PEM private key of --tls-cert-file")->envname("QUORUMQ_TLS_KEY_FILE");
  app.add_option("--tls-ca-file", c.tls_ca_file,
                 "PEM CA certificates client certificates are checked against (mutual TLS)")
      ->envname("QUORUMQ_TLS_CA_FILE");
  std::string client_auth = "none";
  app.add_option("--tls-client-auth", client_auth,
                 "none | required: with required, a client without a certificate from --tls-ca-file is refused")
      ->envname("QUORUMQ_TLS_CLIENT_AUTH")
      ->check(CLI::IsMember({"none", "required"}));
  app.add_option("--peer-tls-cert-file", c.peer_tls_cert_file,
                 "PEM certificate chain this broker presents on peer links (TLS 1.2+ both ways); it must name "
                 "the broker: CN or a DNS subjectAltName quorumq-node-<node id> (needs --peer-tls-key-file and "
                 "--peer-tls-ca-file)")
      ->envname("QUORUMQ_PEER_TLS_CERT_FILE");
  app.add_option("--peer-tls-key-file", c.peer_tls_key_file, "PEM private key of --peer-tls-cert-file")
      ->envname("QUORUMQ_PEER_TLS_KEY_FILE");
  app.add_option("--peer-tls-ca-file", c.peer_tls_ca_file,
                 "PEM CA certificates the other brokers' peer certificates must chain to (both directions)")
      ->envname("QUORUMQ_PEER_TLS_CA_FILE");
  app.add_flag("--admin-tls", c.admin_tls,
               "Serve the admin endpoint over HTTPS with --tls-cert-file (probes then use scheme HTTPS)")
      ->envname("QUORUMQ_ADMIN_TLS");
  app.add_option("--admin-token-file", c.admin_token_file,
                 "File holding the admin endpoint's bearer token: /metrics and POST /v1/backup then need "
                 "`Authorization: Bearer <token>` (/healthz and /readyz stay open for probes)")
      ->envname("QUORUMQ_ADMIN_TOKEN_FILE");
  app.add_flag("--sasl", c.sasl,
               "Require SASL SCRAM-SHA-256/512 authentication on the client and Kafka listeners; ACLs are then "
               "enforced (docs/security.md)")
      ->envname("QUORUMQ_SASL");
  app.add_option("--tls-principal-rule", c.tls_principal_rules,
                 "How a client certificate names its user (repeatable, first match wins): "
                 "RULE:<regex>/<replacement>/[L|U] on the subject in RFC 2253 form, e.g. "
                 "'RULE:^CN=([^,]+),OU=apps,.*$/$1/'; DEFAULT or no match: the CN")
      ->allow_extra_args(false);
  app.add_option("--super-users", c.super_users,
                 "Comma-separated user names that may do everything (ACLs are not checked for them)")
      ->envname("QUORUMQ_SUPER_USERS")
      ->delimiter(',');
  app.add_option("--sasl-bootstrap-user-file", c.bootstrap_user_file,
                 "File holding `name:password` of a super user valid on this broker from the first start, to "
                 "create the first users and ACLs (remove it once real administrators exist)")
      ->envname("QUORUMQ_SASL_BOOTSTRAP_USER_FILE");
  app.add_option("--log-level", c.log_level, "trace|debug|info|warn|error|critical|off")
      ->envname("QUORUMQ_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--cluster-id", c.cluster_id, "Cluster name reported to clients")->envname("QUORUMQ_CLUSTER_ID");
  app.add_option("--io-threads", c.io_threads, "Network threads (0: one per core)")->envname("QUORUMQ_IO_THREADS");
  app.add_option("--max-frame-bytes", c.max_frame_bytes, "Largest request frame accepted")
      ->envname("QUORUMQ_MAX_FRAME_BYTES")->check(CLI::Range(1024u, 1u << 30));
  app.add_option("--max-message-bytes", c.max_message_bytes, "Largest record batch accepted")
      ->envname("QUORUMQ_MAX_MESSAGE_BYTES")->check(CLI::Range(128u, 1u << 30));
  app.add_option("--max-connections", c.max_connections, "Client connections accepted at once")
      ->envname("QUORUMQ_MAX_CONNECTIONS")->check(CLI::Range(1u, 1000000u));
  app.add_option("--max-inflight-bytes", c.max_inflight_bytes_per_connection,
                 "Bytes one connection may make the broker hold (requests in flight, answers not yet read) "
                 "before reading from it pauses (backpressure)")
      ->envname("QUORUMQ_MAX_INFLIGHT_BYTES");
  app.add_option("--max-buffered-bytes", c.max_buffered_bytes,
                 "Bytes all client connections together may make the broker hold before every connection "
                 "stops reading (backpressure)")
      ->envname("QUORUMQ_MAX_BUFFERED_BYTES")->check(CLI::Range(std::uint64_t{1} << 20, std::uint64_t{1} << 40));
  app.add_option("--write-timeout-ms", c.write_timeout_ms,
                 "Close a connection whose client reads none of its answers for this long")
      ->envname("QUORUMQ_WRITE_TIMEOUT_MS")->check(CLI::Range(100u, 3600000u));
  app.add_option("--max-fetch-bytes", c.max_fetch_bytes, "Largest fetch answer (a client's max_bytes is clamped)")
      ->envname("QUORUMQ_MAX_FETCH_BYTES")->check(CLI::Range(1024, 1 << 30));
  app.add_option("--max-partitions-per-request", c.max_partitions_per_request,
                 "Partitions one request may name (produce, fetch, offsets)")
      ->envname("QUORUMQ_MAX_PARTITIONS_PER_REQUEST")->check(CLI::Range(1u, 1000000u));
  app.add_option("--max-offset-metadata-bytes", c.max_offset_metadata_bytes,
                 "Largest metadata string an offset commit may carry")
      ->envname("QUORUMQ_MAX_OFFSET_METADATA_BYTES")->check(CLI::Range(0u, 1u << 20));
  app.add_option("--max-subscription-topics", c.max_subscription_topics,
                 "Topics one consumer-group member may subscribe to")
      ->envname("QUORUMQ_MAX_SUBSCRIPTION_TOPICS")->check(CLI::Range(1u, 100000u));
  app.add_option("--max-groups", c.max_groups, "Consumer groups with members the cluster keeps")
      ->envname("QUORUMQ_MAX_GROUPS")->check(CLI::Range(1u, 10000000u));
  app.add_option("--max-group-members", c.max_group_members, "Members one consumer group may have")
      ->envname("QUORUMQ_MAX_GROUP_MEMBERS")->check(CLI::Range(1u, 1000000u));
  app.add_option("--idle-timeout-ms", c.idle_timeout_ms, "Close connections silent this long")
      ->envname("QUORUMQ_IDLE_TIMEOUT_MS");
  app.add_option("--partial-frame-timeout-ms", c.partial_frame_timeout_ms,
                 "Close a connection whose started frame does not complete in this time")
      ->envname("QUORUMQ_PARTIAL_FRAME_TIMEOUT_MS");
  app.add_option("--default-partitions", c.default_partitions, "Partitions of a topic created without a count")
      ->envname("QUORUMQ_DEFAULT_PARTITIONS");
  app.add_option("--retention-bytes", retention_bytes, "Per-partition size kept (0: unlimited)")
      ->envname("QUORUMQ_RETENTION_BYTES");
  app.add_option("--retention-ms", retention_ms, "Age of records kept (0: forever)")->envname("QUORUMQ_RETENTION_MS");
  app.add_option("--retention-check-ms", c.retention_check_ms, "How often retention runs")
      ->envname("QUORUMQ_RETENTION_CHECK_MS");
  app.add_option("--map-size-bytes", c.map_size_bytes, "Initial LMDB map size (grows by itself)")
      ->envname("QUORUMQ_MAP_SIZE_BYTES");
  app.add_option("--max-partitions", c.max_partitions, "Partition logs this broker may hold")
      ->envname("QUORUMQ_MAX_PARTITIONS");
  app.add_option("--election-timeout-ms", c.election_timeout_ms, "Raft election timeout")
      ->envname("QUORUMQ_ELECTION_TIMEOUT_MS")->check(CLI::Range(20u, 600000u));
  app.add_option("--heartbeat-interval-ms", c.heartbeat_interval_ms, "Raft heartbeat interval")
      ->envname("QUORUMQ_HEARTBEAT_INTERVAL_MS")->check(CLI::Range(5u, 60000u));
  app.add_option("--replica-lag-max-ms", c.replica_lag_max_ms,
                 "A follower not caught up with its leader for this long leaves the in-sync replicas")
      ->envname("QUORUMQ_REPLICA_LAG_MAX_MS")->check(CLI::Range(100u, 3600000u));
  app.add_option("--shutdown-timeout-ms", c.shutdown_timeout_ms, "Graceful shutdown deadline")
      ->envname("QUORUMQ_SHUTDOWN_TIMEOUT_MS");
  app.add_option("--backup-dir", c.backup_dir,
                 "Directory hot backups (POST /v1/backup) are written below; unset: backups are off")
      ->envname("QUORUMQ_BACKUP_DIR");
  app.add_option("--backup-min-free-percent", c.backup_min_free_percent,
                 "A backup onto the data directory's filesystem must leave this much of it free")
      ->envname("QUORUMQ_BACKUP_MIN_FREE_PERCENT")->check(CLI::Range(0u, 90u));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    if (help_text) *help_text = app.help();
    return std::unexpected(std::string());
  } catch (const CLI::CallForVersion&) {
    if (help_text) *help_text = std::string("quorumq-broker ") + QUORUMQ_VERSION + "\n";
    return std::unexpected(std::string());
  } catch (const CLI::ParseError& e) {
    return std::unexpected(std::string(e.what()) + " (see --help)");
  }
  c.max_connections_explicit = app.count("--max-connections") > 0 || std::getenv("QUORUMQ_MAX_CONNECTIONS") != nullptr;
  auto l = parse_host_port(listen);
  if (!l) return std::unexpected("--listen: " + l.error());
  c.listen = *l;
  auto a = parse_host_port(admin);
  if (!a) return std::unexpected("--admin-listen: " + a.error());
  c.admin_listen = *a;
  if (!advertised.empty()) {
    auto ad = parse_host_port(advertised);
    if (!ad) return std::unexpected("--advertised: " + ad.error());
    c.advertised = *ad;
  }
  if (!kafka_listen.empty()) {
    auto k = parse_host_port(kafka_listen);
    if (!k) return std::unexpected("--kafka-listen: " + k.error());
    c.kafka_listen = *k;
    if (k->port != 0 && k->port == c.listen.port && (k->host == c.listen.host || k->host == "0.0.0.0" || c.listen.host == "0.0.0.0"))
      return std::unexpected("--kafka-listen " + k->str() + " is also --listen: the Kafka listener needs a port of its own");
    if (k->port != 0 && k->port == c.admin_listen.port && k->host == c.admin_listen.host)
      return std::unexpected("--kafka-listen " + k->str() + " is also --admin-listen: use another port");
  }
  if (!kafka_advertised.empty()) {
    if (kafka_listen.empty()) return std::unexpected("--kafka-advertised needs --kafka-listen");
    auto k = parse_host_port(kafka_advertised);
    if (!k) return std::unexpected("--kafka-advertised: " + k.error());
    c.kafka_advertised = *k;
  }
  auto p = parse_peers(peers);
  if (!p) return std::unexpected("--peers: " + p.error());
  c.peers = std::move(*p);
  if (c.node_id < 0) return std::unexpected("--node-id must be >= 0");
  if (c.data_dir.empty()) return std::unexpected("--data-dir is required (or set QUORUMQ_DATA_DIR)");
  if (!c.peers.empty()) {
    bool self = false;
    for (const auto& q : c.peers) self |= q.id == c.node_id;
    if (!self)
      return std::unexpected("--peers must include this broker (id " + std::to_string(c.node_id) + ")");
    if (c.peers.size() != 1 && c.peers.size() != 3 && c.peers.size() != 5)
      return std::unexpected("--peers lists " + std::to_string(c.peers.size()) +
                             " brokers; use 1, 3 or 5 so a majority is well defined");
  }
  if (c.peers.size() > 1) {
    const Peer* self = nullptr;
    for (const auto& q : c.peers)
      if (q.id == c.node_id) self = &q;
    if (!peer_listen.empty()) {
      auto pl = parse_host_port(peer_listen);
      if (!pl) return std::unexpected("--peer-listen: " + pl.error());
      c.peer_listen = *pl;
    } else {
      c.peer_listen = self->addr;
    }
    if (c.peer_listen->port == c.listen.port && c.peer_listen->port != 0 &&
        (c.peer_listen->host == c.listen.host || c.peer_listen->host == "0.0.0.0" || c.listen.host == "0.0.0.0"))
      return std::unexpected("the peer address " + c.peer_listen->str() + " is the client address (--listen " +
                             c.listen.str() + "): brokers reach each other on their own listener; give each "
                             "broker a --peer-listen port and list those ports in --peers");
    if (c.peer_listen->port == c.admin_listen.port && c.peer_listen->host == c.admin_listen.host)
      return std::unexpected("--peer-listen " + c.peer_listen->str() + " is also --admin-listen: use another port");
  }
  // A secret from a file: trailing newline and spaces dropped, 16..4096 bytes.
  auto read_secret = [](const std::string& flag, const std::string& path, std::string& out,
                        bool& world_readable) -> std::optional<std::string> {
    std::ifstream in(path, std::ios::binary);
    if (!in)
      return flag + " " + path + ": cannot read it (create it with e.g. `head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE`)";
    std::ostringstream ss;
    ss << in.rdbuf();
    std::string secret = ss.str();
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r' || secret.back() == ' ')) secret.pop_back();
    if (secret.size() < 16)
      return flag + " " + path + ": the secret must be at least 16 bytes (e.g. `head -c 32 /dev/urandom | base64`)";
    if (secret.size() > 4096) return flag + " " + path + ": the secret is longer than 4096 bytes";
    out = std::move(secret);
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) world_readable = (st.st_mode & S_IROTH) != 0;
    return std::nullopt;
  };
  if (!c.cluster_secret_file.empty())
    if (auto e = read_secret("--cluster-secret-file", c.cluster_secret_file, c.cluster_secret,
                             c.cluster_secret_world_readable))
      return std::unexpected(*e);
  c.tls_client_auth_required = client_auth == "required";
  if (c.tls_cert_file.empty() != c.tls_key_file.empty())
    return std::unexpected("--tls-cert-file and --tls-key-file go together (the certificate and its private key)");
  if (c.tls_cert_file.empty() && (!c.tls_ca_file.empty() || c.tls_client_auth_required))
    return std::unexpected("--tls-ca-file and --tls-client-auth need --tls-cert-file (TLS on the listeners first)");
  if (c.admin_tls && c.tls_cert_file.empty())
    return std::unexpected("--admin-tls needs --tls-cert-file (the certificate the admin endpoint serves)");
  if (c.tls_client_auth_required && c.tls_ca_file.empty())
    return std::unexpected("--tls-client-auth=required needs --tls-ca-file (the CA clients' certificates chain to)");
  {
    const bool cert = !c.peer_tls_cert_file.empty(), key = !c.peer_tls_key_file.empty(), ca = !c.peer_tls_ca_file.empty();
    if ((cert || key || ca) && !(cert && key && ca)) {
      std::string missing;
      for (const auto& [set, flag] : {std::pair{cert, "--peer-tls-cert-file"}, std::pair{key, "--peer-tls-key-file"},
                                      std::pair{ca, "--peer-tls-ca-file"}})
        if (!set) missing += (missing.empty() ? "" : " and ") + std::string(flag);
      return std::unexpected("peer TLS needs all three of --peer-tls-cert-file (this broker's certificate, naming "
                             "quorumq-node-" + std::to_string(c.node_id) + "), --peer-tls-key-file (its key) and "
                             "--peer-tls-ca-file (the CA of every broker's certificate): " + missing + " missing");
    }
  }
  if (!c.admin_token_file.empty())
    if (auto e = read_secret("--admin-token-file", c.admin_token_file, c.admin_token, c.admin_token_world_readable))
      return std::unexpected(*e);
  if (!c.bootstrap_user_file.empty()) {
    std::string text;
    bool world_readable = false;
    if (auto e = read_secret("--sasl-bootstrap-user-file", c.bootstrap_user_file, text, world_readable))
      return std::unexpected(*e);
    const auto colon = text.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == text.size() || text.find('\n') != std::string::npos)
      return std::unexpected("--sasl-bootstrap-user-file " + c.bootstrap_user_file +
                             ": expected one line `name:password` (e.g. `echo \"admin:$(head -c 24 /dev/urandom | "
                             "base64)\" > FILE; chmod 600 FILE`)");
    c.bootstrap_user = text.substr(0, colon);
    c.bootstrap_password = text.substr(colon + 1);
    if (world_readable)
      return std::unexpected("--sasl-bootstrap-user-file " + c.bootstrap_user_file +
                             " is readable by every user: chmod 600 it");
    if (!c.sasl) return std::unexpected("--sasl-bootstrap-user-file needs --sasl (the user logs in with SASL)");
  }
  for (const auto& u : c.super_users)
    if (u.empty() || u.starts_with("User:"))
      return std::unexpected("--super-users takes user names (alice,bob), not principals or empty names");
  if (!c.backup_dir.empty()) {
    namespace fs = std::filesystem;
    const fs::path b(c.backup_dir);
    if (!b.is_absolute()) return std::unexpected("--backup-dir must be an absolute path (got " + c.backup_dir + ")");
    std::error_code ec;
    const auto bc = fs::weakly_canonical(b, ec);
    const auto dc = fs::weakly_canonical(fs::absolute(c.data_dir, ec), ec);
    auto inside = [](const fs::path& child, const fs::path& parent) {
      const auto rel = child.lexically_relative(parent);
      return !rel.empty() && *rel.begin() != "..";
    };
    if (inside(bc, dc) || inside(dc, bc))
      return std::unexpected("--backup-dir " + c.backup_dir + " and --data-dir " + c.data_dir +
                             " must not contain each other: keep backups apart from the live data");
  }
  if (c.peers.size() > 1 && c.cluster_secret.empty() && !c.peer_tls() && !c.allow_unauthenticated_peers)
    return std::unexpected("a cluster of " + std::to_string(c.peers.size()) +
                           " brokers needs its peers authenticated: --cluster-secret-file (the same secret on every "
                           "broker, e.g. `head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE`) and/or peer TLS "
                           "(--peer-tls-cert-file, --peer-tls-key-file, --peer-tls-ca-file; docs/security.md): "
                           "without either anyone who reaches --peer-listen can pose as a broker "
                           "(--allow-unauthenticated-peers to accept that)");
  if (c.sasl && c.peers.size() > 1 && c.cluster_secret.empty())
    return std::unexpected("--sasl on a cluster of " + std::to_string(c.peers.size()) +
                           " brokers needs --cluster-secret-file: brokers authenticate to each other's client "
                           "listeners with a credential derived from it (forwarded offset commits)");
  if (c.heartbeat_interval_ms * 2 > c.election_timeout_ms)
    return std::unexpected("--heartbeat-interval-ms must be at most half of --election-timeout-ms");
  if (c.max_message_bytes + 1024 > c.max_frame_bytes)
    return std::unexpected("--max-message-bytes must be smaller than --max-frame-bytes");
  if (retention_bytes > 0) c.retention_bytes = retention_bytes;
  if (retention_ms > 0) c.retention_ms = retention_ms;
  return c;
}

}  // namespace quorumq::broker
