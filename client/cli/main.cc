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
  Global g;
  app.add_option("--bootstrap,-b", g.bootstrap, "Brokers to start from: host:port[,host:port...]")
      ->envname("QUORUMQ_BOOTSTRAP")
      ->capture_default_str();
  app.add_option("--connect-timeout-ms", g.connect_timeout_ms, "Give up on an unreachable broker after this long")
      ->capture_default_str();
  int rc = 0;

  // topic ...
  auto* topic = app.add_subcommand("topic", "Create, list, describe and delete topics");
  topic->require_subcommand(1);
  std::string name;
  std::int32_t partitions = 1;
  std::int16_t replicas = 1;
  std::vector<std::string> configs;
  auto* create = topic->add_subcommand("create", "Create a topic");
  create->add_option("name", name, "Topic name")->required();
  create->add_option("--partitions,-p", partitions, "Number of partitions")->required()->check(CLI::Range(1, 100000));
  create->add_option("--replicas,-r", replicas, "Replicas per partition (1, 3 or 5)")->required()->check(CLI::Range(1, 32));
  create->add_option("--config,-c", configs, "Topic config key=value (repeatable)");
  create->callback([&] { rc = topic_create(g, name, partitions, replicas, configs); });
  auto* list = topic->add_subcommand("list", "List topics");
  list->callback([&] { rc = topic_list(g); });
  auto* describe = topic->add_subcommand("describe", "Per partition: leader, replicas, in-sync replicas, high watermark");
  describe->add_option("name", name, "Topic name")->required();
  describe->callback([&] { rc = topic_describe(g, name); });
  auto* del = topic->add_subcommand("delete", "Delete a topic and its data");
  del->add_option("name", name, "Topic name")->required();
  del->callback([&] { rc = topic_delete(g, name); });

  // produce TOPIC
  ProduceOptions po;
  std::string key;
  auto* produce_cmd = app.add_subcommand("produce", "Send each stdin line as one message");
  produce_cmd->add_option("topic", po.topic, "Topic")->required();
  auto* key_opt = produce_cmd->add_option("--key,-k", key, "Key for every message (picks the partition)");
  produce_cmd->add_option("--acks", po.acks, "none | leader | quorum")
      ->check(CLI::IsMember({"none", "leader", "quorum"}))
      ->capture_default_str();
  produce_cmd->add_option("--partition", po.partition, "Force this partition");
  produce_cmd->add_flag("--print-offsets", po.print_offsets,
                        "Print partition<TAB>offset per acknowledged message, in input order");
  produce_cmd->callback([&] {
    if (*key_opt) po.key = key;
    rc = produce(g, po);
  });

  // consume TOPIC
  ConsumeOptions co;
  std::uint64_t timeout_ms = 0;
  auto* consume_cmd = app.add_subcommand("consume", "Print messages, one value per line; commits what it printed");
  consume_cmd->add_option("topic", co.topic, "Topic")->required();
  consume_cmd->add_option("--group,-g", co.group, "Consumer group (its committed offsets are where we resume)")
      ->required();
  consume_cmd->add_flag("--from-beginning", co.from_beginning,
                        "Without a committed offset, start at the earliest message (default: only new ones)");
  consume_cmd->add_option("--max-messages,-n", co.max_messages, "Exit after this many messages");
  auto* to_opt = consume_cmd->add_option("--timeout-ms", timeout_ms, "Exit after this long in total (exit code 0)");
  consume_cmd->add_flag("--print-offsets", co.print_offsets, "Print partition<TAB>offset<TAB>value");
  consume_cmd->callback([&] {
    if (*to_opt) co.timeout_ms = timeout_ms;
    rc = consume(g, co);
  });

  // group offsets|describe|list
  auto* group = app.add_subcommand("group", "Consumer groups");
  group->require_subcommand(1);
  std::string group_id;
  auto* offsets = group->add_subcommand("offsets", "Committed offset and lag per partition of a group");
  offsets->add_option("group", group_id, "Group id")->required();
  offsets->callback([&] { rc = group_offsets(g, group_id); });
  auto* describe_group = group->add_subcommand(
      "describe", "Members, generation, assignment and lag per partition of a consumer group");
  describe_group->add_option("group", group_id, "Group id")->required();
  describe_group->callback([&] { rc = group_describe(g, group_id); });
  group->add_subcommand("list", "Every consumer group with its state and member count")->callback([&] {
    rc = group_list(g);
  });
  // admin backup|restore: operator tasks (admin_cmd.cc)
  add_admin_commands(app, rc);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return rc;
}
