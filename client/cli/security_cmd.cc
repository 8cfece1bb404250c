// `quorumq user ...` and `quorumq acl ...`: SCRAM users and ACLs (issue 18, docs/security.md).
// Both need a login with the cluster alter permission (a super user, e.g. the bootstrap user).
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "output.h"

namespace quorumq::cli {

namespace {

// The new password: the first line of --user-password-file, else of stdin.
std::optional<std::string> new_password(const std::string& file) {
  std::string pw;
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in || !std::getline(in, pw)) {
      std::cerr << "error: --user-password-file " << file << ": cannot read it\n";
      return std::nullopt;
    }
  } else if (!std::getline(std::cin, pw)) {
    std::cerr << "error: give the new password on stdin (one line) or with --user-password-file FILE\n";
    return std::nullopt;
  }
  if (!pw.empty() && pw.back() == '\r') pw.pop_back();
  if (pw.size() < 8) {
    std::cerr << "error: the password must be at least 8 characters\n";
    return std::nullopt;
  }
  return pw;
}

int user_set(const Global& g, const std::string& name, const std::string& file, int iterations, bool create) {
  auto pw = new_password(file);
  if (!pw) return 2;
  auto admin = make_admin(g);
  if (!admin) return 2;
  if (auto r = admin->upsert_user(name, *pw, create, !create, iterations); !r) {
    fail(create ? "cannot create user" : "cannot change the password", r.error());
    return 1;
  }
  std::cout << (create ? "created user " : "changed the password of user ") << name
            << " (SCRAM-SHA-256 and SCRAM-SHA-512, " << iterations << " iterations)\n";
  return 0;
}

int user_delete(const Global& g, const std::string& name) {
  auto admin = make_admin(g);
  if (!admin) return 2;
  if (auto r = admin->delete_user(name); !r) {
    fail("cannot delete user", r.error());
    return 1;
  }
  std::cout << "deleted user " << name << "\n";
  return 0;
}

int user_list(const Global& g) {
  auto admin = make_admin(g);
  if (!admin) return 2;
  auto r = admin->list_users();
  if (!r) {
    fail("cannot list users", r.error());
    return 1;
  }
  for (const auto& u : *r) {
    std::string mechs;
    for (std::size_t i = 0; i < u.mechanisms.size(); ++i)
      mechs += (i ? "," : "") + u.mechanisms[i] +
               (i < u.iterations.size() ? "(" + std::to_string(u.iterations[i]) + ")" : std::string());
    if (g.json) std::cout << dump({{"user", json_string(u.name)}, {"mechanisms", json_string(mechs)}}) << "\n";
    else std::cout << u.name << "\t" << mechs << "\n";
  }
  return 0;
}

struct AclOptions {
  AclBinding b;
  std::string topic, group;
  bool cluster = false, deny = false, prefixed = false;
  // Fills `b` from the options; false (with a message) when the resource is not exactly one.
  bool resolve(bool filter) {
    const int n = (topic.empty() ? 0 : 1) + (group.empty() ? 0 : 1) + (cluster ? 1 : 0);
    if (n > 1 || (n == 0 && !filter)) {
      std::cerr << "error: name exactly one resource: --topic NAME, --group NAME or --cluster\n";
      return false;
    }
    if (!topic.empty()) b.resource_type = "topic", b.name = topic;
    if (!group.empty()) b.resource_type = "group", b.name = group;
    if (cluster) b.resource_type = "cluster", b.name = "kafka-cluster";
    b.allow = !deny;
    b.pattern = prefixed ? "prefixed" : (filter && n == 0 ? "" : "literal");
    if (!filter && (b.principal.empty() || b.operation.empty())) {
      std::cerr << "error: give --principal User:NAME and --operation\n";
      return false;
    }
    return true;
  }
};

void print_acl(const Global& g, const AclBinding& a) {
  if (g.json)
    std::cout << dump({{"principal", json_string(a.principal)},
                       {"permission", json_string(a.allow ? "allow" : "deny")},
                       {"operation", json_string(a.operation)},
                       {"resource_type", json_string(a.resource_type)},
                       {"pattern", json_string(a.pattern)},
                       {"name", json_string(a.name)}})
              << "\n";
  else
    std::cout << a.principal << "\t" << (a.allow ? "allow" : "deny") << "\t" << a.operation << "\t"
              << a.resource_type << ":" << a.name << (a.pattern == "prefixed" ? "*" : "") << "\t" << a.pattern
              << "\n";
}

void add_acl_options(CLI::App* c, AclOptions& o, bool filter) {
  auto* p = c->add_option("--principal", o.b.principal, "User:NAME, or User:* for every authenticated user");
  auto* op = c->add_option("--operation", o.b.operation, "read | write | create | delete | describe | alter | all")
                 ->check(CLI::IsMember({"read", "write", "create", "delete", "describe", "alter", "all"}));
  if (!filter) p->required(), op->required();
  c->add_option("--topic", o.topic, "A topic (\"*\": every topic)");
  c->add_option("--group", o.group, "A consumer group (\"*\": every group)");
  c->add_flag("--cluster", o.cluster, "The cluster (users, ACLs, and Kafka's cluster operations)");
  c->add_flag("--prefixed", o.prefixed, "The name is a prefix: every topic or group starting with it");
  c->add_flag("--deny", o.deny, "A deny (wins over any allow)");
}

}  // namespace

void add_security_commands(CLI::App& app, const Global& g, int& rc) {
  static std::string name, file;
  static int iterations = 8192;
  auto* user = app.add_subcommand("user", "SCRAM users (brokers with --sasl); needs the cluster alter permission");
  user->require_subcommand(1);
  auto* create = user->add_subcommand("create", "Create a user (the password from stdin or --user-password-file)");
  create->add_option("name", name, "User name")->required();
  create->add_option("--user-password-file", file, "File whose first line is the new user's password (else stdin)");
  create->add_option("--iterations", iterations, "PBKDF2 iterations (>= 4096)")
      ->check(CLI::Range(4096, 1000000))
      ->capture_default_str();
  create->callback([&rc, &g] { rc = user_set(g, name, file, iterations, true); });
  auto* passwd = user->add_subcommand("passwd", "Change a user's password (stdin or --user-password-file)");
  passwd->add_option("name", name, "User name")->required();
  passwd->add_option("--user-password-file", file, "File whose first line is the new password (else stdin)");
  passwd->add_option("--iterations", iterations, "PBKDF2 iterations (>= 4096)")
      ->check(CLI::Range(4096, 1000000))
      ->capture_default_str();
  passwd->callback([&rc, &g] { rc = user_set(g, name, file, iterations, false); });
  auto* del = user->add_subcommand("delete", "Delete a user (its open connections stay until they close)");
  del->add_option("name", name, "User name")->required();
  del->callback([&rc, &g] { rc = user_delete(g, name); });
  user->add_subcommand("list", "Users and their mechanisms")->callback([&rc, &g] { rc = user_list(g); });

  static AclOptions add_o, remove_o, list_o;
  auto* acl = app.add_subcommand("acl", "Access control lists: who may do what to which topic, group or the cluster");
  acl->require_subcommand(1);
  auto* add = acl->add_subcommand("add", "Allow (or with --deny, deny) an operation");
  add_acl_options(add, add_o, false);
  add->callback([&rc, &g] {
    if (!add_o.resolve(false)) return void(rc = 2);
    auto admin = make_admin(g);
    if (!admin) return void(rc = 2);
    if (auto r = admin->create_acls({add_o.b}); !r) {
      fail("cannot add the ACL", r.error());
      return void(rc = 1);
    }
    std::cout << "added: ";
    print_acl(Global{}, add_o.b);
    rc = 0;
  });
  auto* remove = acl->add_subcommand("remove", "Remove every ACL matching the options given (unset: any)");
  add_acl_options(remove, remove_o, true);
  remove->callback([&rc, &g] {
    if (!remove_o.resolve(true)) return void(rc = 2);
    auto admin = make_admin(g);
    if (!admin) return void(rc = 2);
    auto r = admin->delete_acls(remove_o.b, !remove_o.deny);
    if (!r) {
      fail("cannot remove ACLs", r.error());
      return void(rc = 1);
    }
    std::cout << "removed " << r->size() << " ACL(s)\n";
    for (const auto& a : *r) print_acl(g, a);
    rc = 0;
  });
  auto* list = acl->add_subcommand("list", "ACLs matching the options given (none: all)");
  add_acl_options(list, list_o, true);
  list->callback([&rc, &g] {
    if (!list_o.resolve(true)) return void(rc = 2);
    auto admin = make_admin(g);
    if (!admin) return void(rc = 2);
    auto r = admin->list_acls(list_o.b, !list_o.deny);
    if (!r) {
      fail("cannot list ACLs", r.error());
      return void(rc = 1);
    }
    for (const auto& a : *r) print_acl(g, a);
    rc = 0;
  });
}

}  // namespace quorumq::cli
