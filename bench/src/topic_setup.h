// Creating the bench topic and waiting until every partition has a leader.
#pragma once

#include <cstdint>
#include <expected>
#include <map>
#include <string>
#include <vector>

namespace quorumq::bench {

struct TopicLayout {
  int brokers = 0;
  int replicas = 0;
  std::map<std::int32_t, std::vector<int>> replicas_of;  // partition -> replica node ids
};

// replicas 0: min(3, brokers). Fails after ~60 s.
std::expected<TopicLayout, std::string> setup_topic(const std::string& bootstrap, const std::string& topic, int partitions,
                                                    int replicas, const std::string& tls_ca_file = {});

}  // namespace quorumq::bench
