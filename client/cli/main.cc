// quorumq: the command-line tool for topics, producing, consuming and consumer groups.
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "admin_cmd.h"
#include "commands.h"

int main(int argc, char** argv) {
  using namespace quorumq::cli;
  CLI::App app{"quorumq: command-line client for a quorumq cluster"};
  app.require_subcommand(1);
  // Global options are accepted after the subcommand too (`quorumq topic list -b HOST:PORT`):
  // an option a subcommand does not know falls through to its parents.
  app.fallthrough();
  app.set_version_flag("--version", std::string("quorumq ") + quorumq::client_version());
  Global g;
  app.add_option("--bootstrap,-b", g.bootstrap, "Brokers to start from: host:port[,host:port...]")
      ->envname("QUORUMQ_BOOTSTRAP")
      ->capture_default_str();
  app.add_option("--connect-timeout-ms", g.connect_timeout_ms, "Give up on an unreachable broker after this long")
      ->capture_default_str();
  app.add_flag("--json", g.json, "One JSON object per line (listings, consumed messages, produce --print-offsets)");
  app.add_flag("--tls", g.tls, "Connect with TLS (brokers with --tls-cert-file), trusting the system's CAs")
      ->envname("QUORUMQ_CLIENT_TLS");
  app.add_option("--tls-ca-file", g.tls_ca_file, "PEM CA certificates the brokers' certificates chain to (implies --tls)")
      ->envname("QUORUMQ_CLIENT_TLS_CA_FILE");
  app.add_option("--tls-cert-file", g.tls_cert_file, "This client's PEM certificate, for brokers that require one")
      ->envname("QUORUMQ_CLIENT_TLS_CERT_FILE");
  app.add_option("--tls-key-file", g.tls_key_file, "The PEM private key of --tls-cert-file")
      ->envname("QUORUMQ_CLIENT_TLS_KEY_FILE");
  app.add_option("--user", g.sasl_user, "Log in as this SASL SCRAM user (brokers with --sasl)")
      ->envname("QUORUMQ_CLIENT_SASL_USER");
  app.add_option("--password-file", g.sasl_password_file,
                 "File whose first line is --user's password (or set QUORUMQ_CLIENT_SASL_PASSWORD)")
      ->envname("QUORUMQ_CLIENT_SASL_PASSWORD_FILE");
  // A client config file (TOML or INI): any of the options above by their long names, e.g.
  //   bootstrap = "broker1:9092,broker2:9092"
  //   tls-ca-file = "/etc/quorumq/ca.pem"
  //   user = "alice"
  //   password-file = "/home/alice/.quorumq-password"
  // Flags and environment variables override it.
  // QUORUMQ_CLIENT_CONFIG names one by default (then it must exist). Unknown keys are errors.
  const char* config_env = std::getenv("QUORUMQ_CLIENT_CONFIG");
  app.set_config("--config", config_env ? config_env : "",
                 "Client config file (TOML/INI: bootstrap, tls-ca-file, user, password-file, ...; env "
                 "QUORUMQ_CLIENT_CONFIG)",
                 config_env != nullptr);
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.add_option("--sasl-mechanism", g.sasl_mechanism, "SCRAM-SHA-256 or SCRAM-SHA-512")
      ->envname("QUORUMQ_CLIENT_SASL_MECHANISM")
      ->check(CLI::IsMember({"SCRAM-SHA-256", "SCRAM-SHA-512"}))
      ->capture_default_str();
  int rc = 0;

  // topic ...
  auto* topic = app.add_subcommand("topic", "Create, list, describe, change and delete topics");
  topic->require_subcommand(1);
  std::string name;
  std::int32_t partitions = 1;
  std::int16_t replicas = 1;
  std::vector<std::string> configs, set_configs, delete_configs;
  auto* create = topic->add_subcommand("create", "Create a topic");
  create->add_option("name", name, "Topic name")->required();
  create->add_option("--partitions,-p", partitions, "Number of partitions")->required()->check(CLI::Range(1, 100000));
  create->add_option("--replicas,-r", replicas, "Replicas per partition (1, 3 or 5)")->required()->check(CLI::Range(1, 32));
  create->add_option("--config,-c", configs,
                     "Topic config key=value (repeatable): retention.ms, retention.bytes (>= 1, or -1: no limit), "
                     "max.message.bytes (>= 128)")
      ->allow_extra_args(false);
  create->callback([&] { rc = topic_create(g, name, partitions, replicas, configs); });
  auto* list = topic->add_subcommand("list", "List topics");
  list->callback([&] { rc = topic_list(g); });
  auto* describe = topic->add_subcommand(
      "describe", "Configs, and per partition: leader, replicas, in-sync replicas, high watermark, log start");
  describe->add_option("name", name, "Topic name")->required();
  describe->callback([&] { rc = topic_describe(g, name); });
  auto* alter = topic->add_subcommand("alter-config", "Change a topic's configs");
  alter->add_option("name", name, "Topic name")->required();
  alter->add_option("--set", set_configs,
                    "key=value to set (repeatable): retention.ms, retention.bytes, max.message.bytes")
      ->allow_extra_args(false);
  alter->add_option("--delete", delete_configs, "Key to return to the broker default (repeatable)")
      ->allow_extra_args(false);
  alter->callback([&] { rc = topic_alter_config(g, name, set_configs, delete_configs); });
  auto* del = topic->add_subcommand("delete", "Delete a topic, its data and its committed offsets");
  del->add_option("name", name, "Topic name")->required();
  del->callback([&] { rc = topic_delete(g, name); });

  // produce TOPIC
  ProduceOptions po;
  std::string key, key_delim;
  auto* produce_cmd = app.add_subcommand("produce", "Send each stdin line as one message");
  produce_cmd->add_option("topic", po.topic, "Topic")->required();
  auto* key_opt = produce_cmd->add_option("--key,-k", key, "Key for every message (picks the partition)");
  auto* delim_opt =
      produce_cmd->add_option("--key-delimiter,-K", key_delim, "Each line is KEY<delimiter>VALUE (like kcat -K)");
  produce_cmd->add_option("--header,-H", po.headers, "Header key=value on every message (repeatable)")
      ->allow_extra_args(false);
  produce_cmd->add_option("--acks", po.acks, "none | leader | quorum (all = quorum)")
      ->check(CLI::IsMember({"none", "leader", "quorum", "all"}))
      ->capture_default_str();
  produce_cmd->add_option("--partition", po.partition, "Force this partition");
  produce_cmd->add_flag("--print-offsets", po.print_offsets,
                        "Print partition<TAB>offset per acknowledged message, in input order, as soon as it is "
                        "acknowledged");
  produce_cmd->callback([&] {
    if (*key_opt) po.key = key;
    if (*delim_opt) po.key_delimiter = key_delim;
    rc = produce(g, po);
  });

  // consume TOPIC
  ConsumeOptions co;
  std::uint64_t timeout_ms = 0;
  std::uint32_t session_ms = 0;
  std::string format, offset;
  auto* consume_cmd = app.add_subcommand(
      "consume", "Print messages, one value per line: as a member of --group (commits what it printed), or from "
                 "--partition/--offset without a group");
  consume_cmd->add_option("topic", co.topic, "Topic")->required();
  consume_cmd->add_option("--group,-g", co.group,
                          "Consumer group: share the partitions with its other members and resume from its committed "
                          "offsets");
  consume_cmd->add_flag("--from-beginning", co.from_beginning,
                        "With --group: a partition without a committed offset starts at the earliest message "
                        "(default: only new ones)");
  consume_cmd->add_option("--partition,-p", co.partitions, "Without --group: read this partition (repeatable; default all)")
      ->allow_extra_args(false);
  auto* offset_opt = consume_cmd->add_option(
      "--offset,-o", offset,
      "Without --group: start at beginning | end | N | -N (N before the end); default beginning. With --group: "
      "beginning or end set where a partition without a committed offset starts");
  consume_cmd->add_flag("--exit-at-end,-e", co.exit_at_end,
                        "Exit 0 once every partition read has reached the end it had when first read (kcat -e)");
  consume_cmd->add_option("--max-messages,-n", co.max_messages, "Exit after this many messages");
  auto* to_opt = consume_cmd->add_option("--timeout-ms", timeout_ms, "Exit after this long in total (exit code 0)");
  consume_cmd->add_flag("--print-offsets", co.print_offsets, "Print partition<TAB>offset<TAB>value");
  auto* fmt_opt = consume_cmd->add_option(
      "--format,-f", format,
      "Output format per message, like kcat -f: %t topic %p partition %o offset %k key %v value %h headers "
      "%T timestamp %K key length %S value length; \\n \\t escapes (e.g. '%k\\t%v\\n')");
  auto* session_opt = consume_cmd->add_option("--session-timeout-ms", session_ms,
                                              "With --group: the group gives this member's partitions to the others "
                                              "when it has not heard from it for this long (default 10000)");
  consume_cmd->callback([&] {
    if (*to_opt) co.timeout_ms = timeout_ms;
    if (*fmt_opt) co.format = format;
    if (*offset_opt) co.offset = offset;
    if (*session_opt) co.session_timeout_ms = session_ms;
    rc = consume(g, co);
  });

  // group offsets|describe|list|reset|delete
  auto* group = app.add_subcommand("group", "Consumer groups");
  group->require_subcommand(1);
  std::string group_id;
  auto* offsets = group->add_subcommand(
      "offsets", "Committed offset and lag of every partition of the group's topics (subscribed or committed)");
  offsets->add_option("group", group_id, "Group id")->required();
  offsets->callback([&] { rc = group_offsets(g, group_id); });
  auto* describe_group = group->add_subcommand(
      "describe", "Members, generation, assignment and lag per partition of a consumer group");
  describe_group->add_option("group", group_id, "Group id")->required();
  describe_group->callback([&] { rc = group_describe(g, group_id); });
  group->add_subcommand("list", "Every consumer group with members, with its state and member count")->callback([&] {
    rc = group_list(g);
  });
  GroupResetOptions ro;
  auto* reset = group->add_subcommand(
      "reset", "Move a stopped group's committed offsets of a topic (the group must have no members)");
  reset->add_option("group", ro.group, "Group id")->required();
  reset->add_option("--topic,-t", ro.topic, "Topic")->required();
  reset->add_option("--partition,-p", ro.partitions, "Only this partition (repeatable; default all)")
      ->allow_extra_args(false);
  reset->add_option("--to", ro.to, "earliest | latest | OFFSET | timestamp:MS (first message at or after MS)")
      ->required();
  reset->callback([&] { rc = group_reset(g, ro); });
  auto* gdel = group->add_subcommand("delete", "Delete a group's committed offsets (the group must have no members)");
  gdel->add_option("group", group_id, "Group id")->required();
  gdel->callback([&] { rc = group_delete(g, group_id); });

  // admin backup|restore: operator tasks (admin_cmd.cc)
  add_admin_commands(app, rc);
  // user ..., acl ... (security_cmd.cc)
  add_security_commands(app, g, rc);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return rc;
}
