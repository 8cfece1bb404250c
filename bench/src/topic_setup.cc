#include "topic_setup.h"

#include <quorumq/quorumq.h>

#include <chrono>
#include <thread>

namespace quorumq::bench {

using namespace std::chrono_literals;

std::expected<TopicLayout, std::string> setup_topic(const std::string& bootstrap, const std::string& topic, int partitions,
                                                    int replicas, const ClientSecurity& security) {
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  AdminConfig ac;
  ac.bootstrap = bootstrap;
  security.apply(ac);
  ac.api_timeout_ms = 10000;
  auto admin = Admin::create(ac);
  if (!admin) return std::unexpected("admin: " + admin.error().to_string());
  auto cluster = (*admin)->cluster();
  if (!cluster) return std::unexpected("cluster metadata: " + cluster.error().to_string());
  TopicLayout layout;
  layout.brokers = static_cast<int>(cluster->brokers.size());
  layout.replicas = replicas ? replicas : std::min(3, layout.brokers);

  // Workaround (client bug, being fixed in client/): on a multi-broker cluster the SDK may send
  // CreateTopic to a broker that is not the controller, which answers not_leader. Asking each
  // broker in turn reaches the controller.
  std::vector<std::string> addrs;
  for (std::size_t from = 0;;) {
    const auto at = bootstrap.find(',', from);
    addrs.push_back(bootstrap.substr(from, at - from));
    if (at == std::string::npos) break;
    from = at + 1;
  }
  std::string last_error;
  bool created = false;
  while (!created && std::chrono::steady_clock::now() < deadline) {
    for (const auto& addr : addrs) {
      AdminConfig one = ac;
      one.bootstrap = addr;
      one.api_timeout_ms = 3000;
      auto a = Admin::create(one);
      if (!a) continue;
      auto r = (*a)->create_topic(topic, partitions, static_cast<std::int16_t>(layout.replicas));
      if (r || r.error().code == BrokerError::topic_already_exists) {
        created = true;
        break;
      }
      last_error = r.error().to_string();
    }
    if (!created) std::this_thread::sleep_for(200ms);
  }
  if (!created) return std::unexpected("create topic " + topic + ": " + last_error);

  while (std::chrono::steady_clock::now() < deadline) {
    auto d = (*admin)->describe_topic(topic);
    if (d && static_cast<int>(d->partitions.size()) == partitions) {
      bool all = true;
      for (const auto& p : d->partitions) all = all && p.leader >= 0;
      if (all) {
        for (const auto& p : d->partitions) layout.replicas_of[p.partition] = p.replicas;
        return layout;
      }
    }
    std::this_thread::sleep_for(100ms);
  }
  return std::unexpected("topic " + topic + ": not every partition got a leader within 60 s");
}

}  // namespace quorumq::bench
