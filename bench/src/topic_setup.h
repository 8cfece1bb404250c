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

// How the bench's clients reach secured brokers (--tls-ca-file, --user, --password-file).
struct ClientSecurity {
  std::string tls_ca_file;
  std::string sasl_user, sasl_password;
  template <class Config>
  void apply(Config& c) const {
    c.tls_ca_file = tls_ca_file;
    c.sasl_user = sasl_user;
    c.sasl_password = sasl_password;
  }
};

// replicas 0: min(3, brokers). Fails after ~60 s.
std::expected<TopicLayout, std::string> setup_topic(const std::string& bootstrap, const std::string& topic, int partitions,
                                                    int replicas, const ClientSecurity& security = {});

}  // namespace quorumq::bench
