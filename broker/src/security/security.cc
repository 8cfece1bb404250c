#include "security.h"

#include <spdlog/spdlog.h>

#include <cctype>
#include <chrono>

#include "state_record.h"

namespace quorumq::broker {

namespace scram = protocol::scram;

const char* operation_name(AclOperation op) noexcept {
  switch (op) {
    case AclOperation::all: return "all";
    case AclOperation::read: return "read";
    case AclOperation::write: return "write";
    case AclOperation::create: return "create";
    case AclOperation::del: return "delete";
    case AclOperation::describe: return "describe";
    case AclOperation::alter: return "alter";
  }
  return "unknown";
}

std::optional<AclOperation> parse_operation(std::string_view s) noexcept {
  for (auto op : {AclOperation::all, AclOperation::read, AclOperation::write, AclOperation::create, AclOperation::del,
                  AclOperation::describe, AclOperation::alter})
    if (s == operation_name(op)) return op;
  return std::nullopt;
}

const char* resource_type_name(ResourceType t) noexcept {
  switch (t) {
    case ResourceType::topic: return "topic";
    case ResourceType::group: return "group";
    case ResourceType::cluster: return "cluster";
  }
  return "unknown";
}

std::optional<ResourceType> parse_resource_type(std::string_view s) noexcept {
  for (auto t : {ResourceType::topic, ResourceType::group, ResourceType::cluster})
    if (s == resource_type_name(t)) return t;
  return std::nullopt;
}

std::string validate(const AclEntry& a) {
  if (!a.principal.starts_with("User:") || a.principal.size() == 5 || a.principal.size() > 300)
    return "principal must be User:<name> or User:* (got '" + a.principal + "')";
  if (a.host != "*") return "host must be * (per-host ACLs are not supported)";
  if (static_cast<int>(a.operation) > static_cast<int>(AclOperation::alter)) return "unknown operation";
  if (!(a.resource_type == ResourceType::topic || a.resource_type == ResourceType::group ||
        a.resource_type == ResourceType::cluster))
    return "unknown resource type";
  if (a.name.empty() || a.name.size() > 300) return "resource name must be 1..300 bytes (\"*\" for every name)";
  if (a.prefixed && a.name == "*") return "a prefixed pattern cannot be *; use a literal *";
  return "";
}

void Security::configure(SecurityOptions o) { opts_ = std::move(o); }

std::optional<scram::Credential> Security::credential(const std::string& user, scram::Mechanism m) const {
  for (const auto& u : opts_.local_users)
    if (u.name == user)
      for (const auto& c : u.credentials)
        if (c.mechanism == m) return c;
  std::shared_lock lk(mu_);
  auto it = users_.find(user);
  if (it == users_.end()) return std::nullopt;
  for (const auto& c : it->second.credentials)
    if (c.mechanism == m) return c;
  return std::nullopt;
}

std::vector<UserInfo> Security::users() const {
  std::shared_lock lk(mu_);
  std::vector<UserInfo> out;
  for (const auto& [_, u] : users_) out.push_back(u);
  return out;
}

bool Security::user_exists(const std::string& name) const {
  std::shared_lock lk(mu_);
  return users_.contains(name);
}

std::vector<AclEntry> Security::acls() const {
  std::shared_lock lk(mu_);
  return {acls_.begin(), acls_.end()};
}

std::size_t Security::acl_count() const {
  std::shared_lock lk(mu_);
  return acls_.size();
}

bool Security::is_super(const Principal& who) const {
  return who.internal || (!who.name.empty() && opts_.super_users.contains(who.name));
}

std::expected<PrincipalRule, std::string> parse_principal_rule(const std::string& text) {
  PrincipalRule r;
  if (text == "DEFAULT") {
    r.is_default = true;
    return r;
  }
  // RULE:<regex>/<replacement>/[L|U]; the regex may not contain '/' (as in Kafka).
  const auto bad = [&text](const std::string& why) {
    return std::unexpected("--tls-principal-rule '" + text + "': " + why +
                           " (expected RULE:<regex>/<replacement>/[L|U], e.g. RULE:^CN=([^,]+),OU=apps.*$/$1/, or DEFAULT)");
  };
  if (!text.starts_with("RULE:")) return bad("does not start with RULE: or equal DEFAULT");
  const auto body = text.substr(5);
  const auto s1 = body.find('/');
  const auto s2 = s1 == std::string::npos ? s1 : body.find('/', s1 + 1);
  if (s2 == std::string::npos) return bad("needs /<replacement>/");
  const auto tail = body.substr(s2 + 1);
  if (!(tail.empty() || tail == "L" || tail == "U")) return bad("only L or U may follow the last /");
  try {
    r.pattern = std::regex(body.substr(0, s1), std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    return bad(std::string("the regex does not compile: ") + e.what());
  }
  r.replacement = body.substr(s1 + 1, s2 - s1 - 1);
  r.change_case = tail.empty() ? 0 : tail[0];
  return r;
}

std::string Security::certificate_principal(const std::string& subject, const std::string& cn) const {
  for (const auto& r : opts_.principal_rules) {
    if (r.is_default) break;
    std::smatch m;
    if (!std::regex_match(subject, m, r.pattern)) continue;
    std::string name = m.format(r.replacement);
    for (auto& c : name)
      c = r.change_case == 'L' ? static_cast<char>(std::tolower(static_cast<unsigned char>(c)))
          : r.change_case == 'U' ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
                                 : c;
    if (!name.empty()) return "User:" + name;
  }
  return cn.empty() ? std::string() : "User:" + cn;
}

bool Security::may_log_refusal() const {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::steady_clock::now().time_since_epoch()).count();
  if (log_second_.exchange(now, std::memory_order_relaxed) != now) log_lines_.store(0, std::memory_order_relaxed);
  return log_lines_.fetch_add(1, std::memory_order_relaxed) < 20;
}

bool Security::may_log_login_failure(const std::string& host) const {
  std::lock_guard lk(login_log_mu_);
  if (login_logged_.size() >= 1024) login_logged_.clear();
  const auto now = std::chrono::steady_clock::now();
  auto [it, fresh] = login_logged_.try_emplace(host, now);
  if (!fresh && now - it->second < std::chrono::minutes(1)) return false;
  it->second = now;
  return true;
}

bool Security::matches(const AclEntry& a, const Principal& who, AclOperation op, ResourceType type,
                       std::string_view name) {
  if (a.resource_type != type) return false;
  if (a.principal != "User:*" && a.principal != who.name) return false;
  if (a.prefixed ? !name.starts_with(a.name) : (a.name != "*" && a.name != name)) return false;
  if (a.operation == AclOperation::all || a.operation == op) return true;
  // Read, write, delete and alter imply describe (for allows; a deny of read does not deny describe).
  return a.allow && op == AclOperation::describe &&
         (a.operation == AclOperation::read || a.operation == AclOperation::write ||
          a.operation == AclOperation::del || a.operation == AclOperation::alter);
}

bool Security::allowed(const Principal& who, AclOperation op, ResourceType type, std::string_view name) const {
  if (!opts_.authorization) return true;
  if (who.name.empty() && !who.internal) return false;
  if (is_super(who)) return true;
  std::shared_lock lk(mu_);
  bool allow = false;
  for (const auto& a : acls_) {
    if (!matches(a, who, op, type, name)) continue;
    if (!a.allow) return false;  // deny wins
    allow = true;
  }
  return allow;
}

namespace {
flatbuffers::Offset<state::ScramUser> build_user(flatbuffers::FlatBufferBuilder& fbb, const UserInfo& u) {
  std::vector<flatbuffers::Offset<state::StoredCredential>> creds;
  for (const auto& c : u.credentials) {
    auto bytes = [&](const std::string& s) {
      return fbb.CreateVector(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
    };
    const auto salt = bytes(c.salt);
    const auto sk = bytes(c.stored_key);
    const auto svk = bytes(c.server_key);
    creds.push_back(state::CreateStoredCredential(fbb, static_cast<std::uint8_t>(c.mechanism), c.iterations, salt, sk, svk));
  }
  return state::CreateScramUserDirect(fbb, u.name.c_str(), &creds);
}
std::string str_of(const flatbuffers::Vector<std::uint8_t>* v) {
  return v ? std::string(reinterpret_cast<const char*>(v->data()), v->size()) : std::string();
}
std::optional<UserInfo> read_user(const state::ScramUser* u) {
  if (!u || !u->name()) return std::nullopt;
  UserInfo out{u->name()->str(), {}};
  if (u->credentials())
    for (const auto* c : *u->credentials()) {
      scram::Credential cr;
      cr.mechanism = static_cast<scram::Mechanism>(c->mechanism());
      cr.iterations = c->iterations();
      cr.salt = str_of(c->salt());
      cr.stored_key = str_of(c->stored_key());
      cr.server_key = str_of(c->server_key());
      if (!scram::valid(cr)) return std::nullopt;
      out.credentials.push_back(std::move(cr));
    }
  return out;
}
std::vector<AclEntry> read_acls(const flatbuffers::Vector<flatbuffers::Offset<state::Acl>>* v) {
  std::vector<AclEntry> out;
  if (v)
    for (const auto* a : *v) {
      AclEntry e{state_str(a->principal()), state_str(a->host()), a->allow(),
                 static_cast<AclOperation>(a->operation()), static_cast<ResourceType>(a->resource_type()),
                 a->prefixed(), state_str(a->name())};
      if (validate(e).empty()) out.push_back(std::move(e));
    }
  return out;
}
}  // namespace

std::vector<std::uint8_t> Security::encode_user(const UserInfo& u) {
  flatbuffers::FlatBufferBuilder fbb(512);
  const auto b = build_user(fbb, u);
  return finish_state_record(fbb, state::Body::ScramUser, b.Union());
}

std::vector<std::uint8_t> Security::encode_user_delete(const std::string& name) {
  flatbuffers::FlatBufferBuilder fbb(64);
  const auto b = state::CreateScramUserDeleteDirect(fbb, name.c_str());
  return finish_state_record(fbb, state::Body::ScramUserDelete, b.Union());
}

std::vector<std::uint8_t> Security::encode_acls(const std::vector<AclEntry>& acls, bool add) {
  flatbuffers::FlatBufferBuilder fbb(256);
  std::vector<flatbuffers::Offset<state::Acl>> v;
  for (const auto& a : acls)
    v.push_back(state::CreateAclDirect(fbb, a.principal.c_str(), a.host.c_str(), a.allow,
                                       static_cast<std::uint8_t>(a.operation), static_cast<std::uint8_t>(a.resource_type),
                                       a.prefixed, a.name.c_str()));
  if (add) {
    const auto b = state::CreateAclAddDirect(fbb, &v);
    return finish_state_record(fbb, state::Body::AclAdd, b.Union());
  }
  const auto b = state::CreateAclRemoveDirect(fbb, &v);
  return finish_state_record(fbb, state::Body::AclRemove, b.Union());
}

bool Security::owns(state::Body type) const {
  return type == state::Body::ScramUser || type == state::Body::ScramUserDelete || type == state::Body::AclAdd ||
         type == state::Body::AclRemove;
}

bool Security::apply_locked(std::span<const std::uint8_t> body) {
  const auto rec = read_state_record(body);
  if (!rec) return false;
  switch (rec->type()) {
    case state::Body::ScramUser: {
      auto u = read_user(rec->as<state::ScramUser>());
      if (!u) return false;
      std::string name = u->name;
      users_[name] = std::move(*u);
      return true;
    }
    case state::Body::ScramUserDelete:
      users_.erase(state_str(rec->as<state::ScramUserDelete>()->name()));
      return true;
    case state::Body::AclAdd:
      for (auto& a : read_acls(rec->as<state::AclAdd>()->acls())) acls_.insert(std::move(a));
      return true;
    case state::Body::AclRemove:
      for (const auto& a : read_acls(rec->as<state::AclRemove>()->acls())) acls_.erase(a);
      return true;
    default: return false;
  }
}

void Security::apply_command(std::span<const std::uint8_t> body, log_index index) {
  std::unique_lock lk(mu_);
  if (!apply_locked(body)) spdlog::error("controller entry {}: unreadable user or ACL record, skipped", index.value);
}

std::vector<std::vector<std::uint8_t>> Security::checkpoint_items() const {
  std::shared_lock lk(mu_);
  std::vector<std::vector<std::uint8_t>> out;
  for (const auto& [_, u] : users_) out.push_back(encode_user(u));
  // ACLs in chunks, so no one item grows without bound.
  std::vector<AclEntry> chunk;
  for (const auto& a : acls_) {
    chunk.push_back(a);
    if (chunk.size() == 500) out.push_back(encode_acls(chunk, true)), chunk.clear();
  }
  if (!chunk.empty()) out.push_back(encode_acls(chunk, true));
  return out;
}

bool Security::restore_checkpoint(const std::vector<std::span<const std::uint8_t>>& items) {
  std::unique_lock lk(mu_);
  users_.clear();
  acls_.clear();
  bool ok = true;
  for (const auto& item : items) ok = apply_locked(item) && ok;
  return ok;
}

}  // namespace quorumq::broker

namespace quorumq::broker {

const std::string& SaslSession::user() const {
  static const std::string none;
  return exchange_ ? exchange_->user() : none;
}

SaslSession::Step SaslSession::step(const Security& security, std::string_view mechanism, std::string_view token) {
  Step out;
  if (authenticated()) {
    out.why = "already authenticated on this connection";
    out.code = wire::ErrorCode::invalid_request;
    return out;
  }
  if (!exchange_) {
    const auto mech = scram::mechanism_from_name(mechanism);
    if (!mech) {
      out.why = "unsupported mechanism '" + std::string(mechanism.substr(0, 64)) + "'";
      out.code = wire::ErrorCode::unsupported_sasl_mechanism;
      return out;
    }
    exchange_.emplace(*mech);
    auto first = exchange_->first(
        token, [&](const std::string& user) { return security.credential(user, *mech); }, security.fake_salt_key(),
        &out.why);
    if (!first) return out;
    out.outcome = Step::continue_;
    out.bytes = std::move(*first);
    return out;
  }
  if (!mechanism.empty() && scram::mechanism_from_name(mechanism) == std::nullopt) {
    out.why = "mechanism changed during the exchange";
    return out;
  }
  auto final = exchange_->final(token, &out.why);
  if (!final) return out;
  out.outcome = Step::done;
  out.bytes = std::move(*final);
  principal_ = Principal{"User:" + exchange_->user()};
  return out;
}

}  // namespace quorumq::broker

#include "config.h"

namespace quorumq::broker {

std::string broker_password(const std::string& cluster_secret) {
  // PBKDF2 over the secret with a fixed salt: the same on every broker, useless without the secret.
  return scram::base64_encode(
      scram::make_credential(scram::Mechanism::sha256, cluster_secret, scram::kMinIterations, "quorumq-broker-sasl")
          .server_key);
}

std::expected<SecurityOptions, std::string> security_options(const BrokerConfig& c) {
  SecurityOptions o;
  for (const auto& text : c.tls_principal_rules) {
    auto r = parse_principal_rule(text);
    if (!r) return std::unexpected(r.error());
    o.principal_rules.push_back(std::move(*r));
  }
  o.authentication = c.sasl;
  o.authorization = c.authorization();
  for (const auto& u : c.super_users) o.super_users.insert("User:" + u);
  auto local = [&o](const std::string& name, const std::string& password) {
    o.local_users.push_back(UserInfo{name,
                                     {scram::make_credential(scram::Mechanism::sha256, password, scram::kMinIterations),
                                      scram::make_credential(scram::Mechanism::sha512, password, scram::kMinIterations)}});
    o.super_users.insert("User:" + name);
  };
  if (!c.bootstrap_user.empty()) local(c.bootstrap_user, c.bootstrap_password);
  if (c.sasl && !c.cluster_secret.empty()) local(std::string(Security::kBrokerUser), broker_password(c.cluster_secret));
  // Made-up salts for unknown users: the same on every broker (when they share a secret), so
  // asking several brokers tells nothing either.
  o.fake_salt_key = c.cluster_secret.empty() ? scram::random_nonce() : broker_password(c.cluster_secret) + "/fake";
  return o;
}

}  // namespace quorumq::broker
