// The CLI's subcommands, each a function from parsed options to an exit code
// (0 ok, 1 the operation failed, 2 bad usage). Errors go to stderr and say what to do.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <quorumq/quorumq.h>

namespace quorumq::cli {

struct Global {
  std::string bootstrap = "127.0.0.1:9092";
  std::uint32_t connect_timeout_ms = 5000;
};

int topic_create(const Global& g, const std::string& name, std::int32_t partitions, std::int16_t replicas,
                 const std::vector<std::string>& configs);
int topic_list(const Global& g);
int topic_describe(const Global& g, const std::string& name);
int topic_delete(const Global& g, const std::string& name);

struct ProduceOptions {
  std::string topic;
  std::optional<std::string> key;
  std::string acks = "quorum";
  bool print_offsets = false;
  std::int32_t partition = -1;
};
int produce(const Global& g, const ProduceOptions& o);

struct ConsumeOptions {
  std::string topic;
  std::string group;
  bool from_beginning = false;
  std::uint64_t max_messages = 0;  // 0: unlimited
  std::optional<std::uint64_t> timeout_ms;
  bool print_offsets = false;
};
int consume(const Global& g, const ConsumeOptions& o);

int group_offsets(const Global& g, const std::string& group);
int group_describe(const Global& g, const std::string& group);
int group_list(const Global& g);

}  // namespace quorumq::cli
