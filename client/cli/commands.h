// The CLI's subcommands, each a function from parsed options to an exit code
// (0 ok, 1 the operation failed, 2 bad usage). Errors go to stderr and say what to do.
// topic_cmd.cc: topic ...; group_cmd.cc: group ...; produce_cmd.cc; consume_cmd.cc.
#pragma once

#include <signal.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <quorumq/quorumq.h>

namespace CLI {
class App;
}

namespace quorumq::cli {

struct Global {
  std::string bootstrap = "127.0.0.1:9092";
  std::uint32_t connect_timeout_ms = 5000;
  bool json = false;  // listings and consume print one JSON object per line
  bool tls = false;
  std::string tls_ca_file, tls_cert_file, tls_key_file;
  // SASL SCRAM login (brokers with --sasl): the password from a file, or from the environment.
  std::string sasl_user, sasl_password_file, sasl_mechanism = "SCRAM-SHA-256";
};

// The login password: the first line of --password-file, else QUORUMQ_CLIENT_SASL_PASSWORD.
// Exits 2 with a message when a user is given without a readable password.
std::string login_password(const Global& g);

// Shared helpers (common.cc).
void fail(const std::string& what, const Error& e);
template <typename C>
void apply_global(C& c, const Global& g) {
  c.bootstrap = g.bootstrap;
  c.client_id = "quorumq-cli";
  c.connect_timeout_ms = g.connect_timeout_ms;
  c.tls = g.tls;
  c.tls_ca_file = g.tls_ca_file;
  c.tls_cert_file = g.tls_cert_file;
  c.tls_key_file = g.tls_key_file;
  c.sasl_user = g.sasl_user;
  c.sasl_mechanism = g.sasl_mechanism;
  if (!g.sasl_user.empty()) c.sasl_password = login_password(g);
}
std::unique_ptr<Admin> make_admin(const Global& g);
// "k=v" -> {k, v}; nullopt if there is no '=' or the key is empty.
std::optional<std::pair<std::string, std::string>> split_kv(const std::string& kv);
// Installs SIGINT/SIGTERM handlers that set stop_requested() (without SA_RESTART, so a blocked
// read of stdin returns).
void install_stop_handlers();
bool stop_requested();
// While it lives, the calling thread blocks SIGINT/SIGTERM; threads started meanwhile keep them
// blocked for good, so the signal reaches the thread that unblocks them again (the one reading
// stdin), whose read then returns.
class StopSignalsBlocked {
 public:
  StopSignalsBlocked();
  ~StopSignalsBlocked();
  StopSignalsBlocked(const StopSignalsBlocked&) = delete;
  StopSignalsBlocked& operator=(const StopSignalsBlocked&) = delete;

 private:
  sigset_t old_;
};

// Topic configs the broker knows, checked before anything is sent: retention.ms and
// retention.bytes (>= 1, or -1: no limit), max.message.bytes (128 .. 1073741824). An error text
// that names the allowed keys or values, or nullopt.
std::optional<std::string> check_topic_config(const std::string& key, const std::string& value);

int topic_create(const Global& g, const std::string& name, std::int32_t partitions, std::int16_t replicas,
                 const std::vector<std::string>& configs);
int topic_list(const Global& g);
int topic_describe(const Global& g, const std::string& name);
int topic_delete(const Global& g, const std::string& name);
int topic_alter_config(const Global& g, const std::string& name, const std::vector<std::string>& set,
                       const std::vector<std::string>& remove);

struct ProduceOptions {
  std::string topic;
  std::optional<std::string> key;            // --key: the same key for every message
  std::optional<std::string> key_delimiter;  // -K: "key<SEP>value" per line
  std::vector<std::string> headers;          // -H k=v, on every message
  std::string acks = "quorum";
  bool print_offsets = false;
  std::int32_t partition = -1;
};
int produce(const Global& g, const ProduceOptions& o);

struct ConsumeOptions {
  std::string topic;
  std::string group;                   // empty: no group (assign, --partition/--offset)
  bool from_beginning = false;         // with a group: reset policy earliest
  std::vector<std::int32_t> partitions;  // without a group: these (default all)
  std::optional<std::string> offset;   // beginning | end | N | -N
  bool exit_at_end = false;
  std::uint64_t max_messages = 0;      // 0: unlimited
  std::optional<std::uint64_t> timeout_ms;
  bool print_offsets = false;
  std::optional<std::string> format;   // kcat -f style
  std::optional<std::uint32_t> session_timeout_ms;
};
int consume(const Global& g, const ConsumeOptions& o);

int group_offsets(const Global& g, const std::string& group);
int group_describe(const Global& g, const std::string& group);
int group_list(const Global& g);
struct GroupResetOptions {
  std::string group;
  std::string topic;
  std::vector<std::int32_t> partitions;  // empty: all
  std::string to;                        // earliest | latest | OFFSET | timestamp:MS
};
int group_reset(const Global& g, const GroupResetOptions& o);
int group_delete(const Global& g, const std::string& group);

// `quorumq user create|passwd|delete|list` and `quorumq acl add|remove|list` (security_cmd.cc).
void add_security_commands(CLI::App& app, const Global& g, int& rc);

}  // namespace quorumq::cli
