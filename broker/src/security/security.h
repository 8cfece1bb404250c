// Who may do what (issue 18): SCRAM users and ACLs, replicated through the controller log like
// the consumer groups (a ControllerExtension), plus this broker's own settings (whether
// authentication is required, super users, the bootstrap user, the broker's own principal for
// requests it forwards to other brokers).
//
// Authorization follows Kafka's rules: a binding names a principal ("User:alice" or "User:*"),
// allow or deny, an operation and a resource (topic, group or cluster; a literal name, "*", or a
// prefix). Deny wins; super users may do everything; with authentication on, no matching
// allow means denied. read, write, delete and alter imply describe; "all" is every operation.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <expected>
#include <optional>
#include <regex>
#include <set>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "controller.h"
#include "quorumq/protocol/messages.h"
#include "quorumq/protocol/scram.h"

namespace quorumq::broker {

enum class AclOperation : std::uint8_t { all = 0, read = 1, write = 2, create = 3, del = 4, describe = 5, alter = 6 };
enum class ResourceType : std::uint8_t { topic = 1, group = 2, cluster = 3 };

const char* operation_name(AclOperation op) noexcept;
std::optional<AclOperation> parse_operation(std::string_view s) noexcept;
const char* resource_type_name(ResourceType t) noexcept;
std::optional<ResourceType> parse_resource_type(std::string_view s) noexcept;

struct AclEntry {
  std::string principal;  // "User:alice", "User:*"
  std::string host = "*";
  bool allow = true;
  AclOperation operation = AclOperation::read;
  ResourceType resource_type = ResourceType::topic;
  bool prefixed = false;
  std::string name;  // "*" (literal): every name; the cluster resource's name is "kafka-cluster"
  auto operator<=>(const AclEntry&) const = default;
};
// "" when well-formed, else what is wrong (for the client's error message).
std::string validate(const AclEntry& a);

// Who a connection acts as. Empty principal: not authenticated (only when authentication is off).
struct Principal {
  std::string name;        // "User:alice"
  bool internal = false;   // the broker itself (requests it makes on a client's behalf)
};

struct UserInfo {
  std::string name;
  std::vector<protocol::scram::Credential> credentials;
};

// How a client certificate names its principal (--tls-principal-rule, like Kafka's
// ssl.principal.mapping.rules): "RULE:<regex>/<replacement>/[L|U]" matched against the whole
// subject in RFC 2253 form ("CN=alice,OU=apps,O=Acme"); the first rule that matches gives the
// name ($1.. from the groups; L/U: lower/upper case). "DEFAULT" (and no rule matching): the CN.
struct PrincipalRule {
  bool is_default = false;
  std::regex pattern;
  std::string replacement;
  char change_case = 0;  // 'L', 'U' or 0
};
std::expected<PrincipalRule, std::string> parse_principal_rule(const std::string& text);

struct SecurityOptions {
  bool authentication = false;        // SASL required on the client and Kafka listeners
  bool authorization = false;         // ACLs enforced
  std::set<std::string> super_users;  // principals
  // Users that exist on this broker without the controller (the bootstrap user; the broker's own
  // user for forwarded requests), with their credentials.
  std::vector<UserInfo> local_users;
  std::string fake_salt_key;          // keys the made-up salts unknown users get
  std::vector<PrincipalRule> principal_rules;
};

class Security final : public ControllerExtension {
 public:
  static constexpr std::size_t kMaxUsers = 10'000;
  static constexpr std::size_t kMaxAcls = 10'000;
  static constexpr std::string_view kBrokerUser = "__quorumq_broker";

  void configure(SecurityOptions o);
  bool authentication_required() const { return opts_.authentication; }
  bool authorization_enabled() const { return opts_.authorization; }
  const std::string& fake_salt_key() const { return opts_.fake_salt_key; }

  // The credential for a SASL exchange (local users first, then the replicated ones).
  std::optional<protocol::scram::Credential> credential(const std::string& user, protocol::scram::Mechanism m) const;
  std::vector<UserInfo> users() const;
  bool user_exists(const std::string& name) const;
  std::vector<AclEntry> acls() const;
  std::size_t acl_count() const;

  // Whether `who` may do `op` on the resource. Always true with authorization off.
  bool allowed(const Principal& who, AclOperation op, ResourceType type, std::string_view name) const;
  bool is_super(const Principal& who) const;
  // The principal ("User:<name>") of a verified client certificate with this subject and CN.
  std::string certificate_principal(const std::string& subject_rfc2253, const std::string& cn) const;
  // Whether a refusal may be logged now: at most 20 lines a second for the whole broker, so a
  // client repeating a refused request cannot flood the log (every refusal is still counted).
  bool may_log_refusal() const;
  // Whether a failed login from this client address (host, no port) may be logged now: once a
  // minute per address, so a client failing in a loop cannot flood the log (all are counted).
  bool may_log_login_failure(const std::string& host) const;

  // Records for the controller log.
  static std::vector<std::uint8_t> encode_user(const UserInfo& u);
  static std::vector<std::uint8_t> encode_user_delete(const std::string& name);
  static std::vector<std::uint8_t> encode_acls(const std::vector<AclEntry>& acls, bool add);

  // ControllerExtension
  std::string_view command() const override { return "security"; }
  bool owns(state::Body type) const override;
  void apply_command(std::span<const std::uint8_t> body, log_index index) override;
  std::vector<std::vector<std::uint8_t>> checkpoint_items() const override;
  bool restore_checkpoint(const std::vector<std::span<const std::uint8_t>>& items) override;

 private:
  bool apply_locked(std::span<const std::uint8_t> body);
  static bool matches(const AclEntry& a, const Principal& who, AclOperation op, ResourceType type, std::string_view name);

  SecurityOptions opts_;  // set before the broker serves; read-only afterwards
  mutable std::shared_mutex mu_;
  mutable std::atomic<std::int64_t> log_second_{0};
  mutable std::atomic<int> log_lines_{0};
  mutable std::mutex login_log_mu_;
  mutable std::map<std::string, std::chrono::steady_clock::time_point> login_logged_;  // at most 1024
  std::map<std::string, UserInfo> users_;
  std::set<AclEntry> acls_;
};

}  // namespace quorumq::broker

namespace quorumq::broker {

// How long a failed SASL login waits before its answer (and the connection's close), on both
// listeners: the same for every kind of failure, so neither timing nor content tells an unknown
// user from a wrong password, and guessing passwords over one connection is slow.
inline constexpr std::chrono::milliseconds kSaslFailureDelay{1000};

// One connection's SASL state (native SaslAuthenticate and Kafka SaslHandshake/SaslAuthenticate
// drive it the same way): at most one SCRAM exchange, two steps. Not thread-safe: the
// connection's strand owns it.
class SaslSession {
 public:
  struct Step {
    enum Outcome { continue_, done, failed } outcome = failed;
    std::string bytes;   // to send back (server-first, server-final)
    std::string why;     // failed: for the log (never sent: the client hears only "failed")
    wire::ErrorCode code = wire::ErrorCode::sasl_authentication_failed;
  };
  // A SASL token. `mechanism` names the mechanism with the first token (later tokens may repeat
  // it or leave it empty).
  Step step(const Security& security, std::string_view mechanism, std::string_view token);
  bool authenticated() const { return !principal_.name.empty(); }
  const Principal& principal() const { return principal_; }
  // The mTLS certificate's principal (when the listener requires client certificates and SASL
  // is off).
  void set_principal(Principal p) { principal_ = std::move(p); }
  const std::string& user() const;

 private:
  std::optional<protocol::scram::ServerExchange> exchange_;
  Principal principal_;
};

}  // namespace quorumq::broker

namespace quorumq::broker {

struct BrokerConfig;
// This broker's security settings from its configuration (--sasl, --super-users, the bootstrap
// user file, the cluster secret).
std::expected<SecurityOptions, std::string> security_options(const BrokerConfig& config);
// The password of Security::kBrokerUser, derived from the cluster secret: brokers log in with it
// when they forward a client's request to another broker's client listener.
std::string broker_password(const std::string& cluster_secret);

}  // namespace quorumq::broker
