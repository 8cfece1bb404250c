// quorumq topic create|list|describe|delete|alter-config
#include <iostream>
#include <map>

#include "commands.h"
#include "output.h"

namespace quorumq::cli {
namespace {

std::string join(const std::vector<std::int32_t>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s.empty() ? "-" : s;
}

std::string configs_text(const std::map<std::string, std::string>& c) {
  std::string s;
  for (const auto& [k, v] : c) s += (s.empty() ? "" : ",") + k + "=" + v;
  return s.empty() ? "-" : s;
}

Json configs_json(const std::map<std::string, std::string>& c) {
  Json o = Json::object();
  for (const auto& [k, v] : c) o[valid_utf8(k)] = json_string(v);
  return o;
}

// --config / --set values: key=value, each checked. Exit code 2 with the reason on stderr.
std::optional<std::map<std::string, std::string>> parse_configs(const std::vector<std::string>& kvs, const char* flag) {
  std::map<std::string, std::string> cfg;
  for (const auto& kv : kvs) {
    auto p = split_kv(kv);
    if (!p) {
      std::cerr << "error: " << flag << " '" << kv << "' must be key=value (e.g. " << flag << " retention.ms=86400000)\n";
      return std::nullopt;
    }
    if (auto why = check_topic_config(p->first, p->second)) {
      std::cerr << "error: " << flag << " " << *why << "\n";
      return std::nullopt;
    }
    cfg[p->first] = p->second;
  }
  return cfg;
}

}  // namespace

int topic_create(const Global& g, const std::string& name, std::int32_t partitions, std::int16_t replicas,
                 const std::vector<std::string>& configs) {
  auto cfg = parse_configs(configs, "--config");
  if (!cfg) return 2;
  auto admin = make_admin(g);
  if (!admin) return 2;
  if (auto r = admin->create_topic(name, partitions, replicas, *cfg); !r) {
    fail("cannot create topic", r.error());
    return 1;
  }
  if (g.json)
    std::cout << dump({{"created", json_string(name)},
                       {"partitions", partitions},
                       {"replicas", replicas},
                       {"configs", configs_json(*cfg)}})
              << "\n";
  else
    std::cout << "created topic " << name << " with " << partitions << " partitions and " << replicas
              << " replicas" << (cfg->empty() ? "" : " (" + configs_text(*cfg) + ")") << "\n";
  return 0;
}

int topic_list(const Global& g) {
  auto admin = make_admin(g);
  if (!admin) return 2;
  auto r = admin->list_topics();
  if (!r) {
    fail("cannot list topics", r.error());
    return 1;
  }
  for (const auto& t : *r) {
    if (g.json)
      std::cout << dump({{"topic", json_string(t.name)},
                         {"partitions", t.partitions},
                         {"replicas", t.replication_factor}})
                << "\n";
    else
      std::cout << t.name << "\tpartitions=" << t.partitions << "\treplicas=" << t.replication_factor << "\n";
  }
  return 0;
}

int topic_describe(const Global& g, const std::string& name) {
  auto admin = make_admin(g);
  if (!admin) return 2;
  auto r = admin->describe_topic(name);
  if (!r) {
    fail("cannot describe topic", r.error());
    return 1;
  }
  if (g.json) {
    Json parts = Json::array();
    for (const auto& p : r->partitions)
      parts.push_back({{"partition", p.partition},
                       {"leader", p.leader},
                       {"replicas", p.replicas},
                       {"isr", p.isr},
                       {"high_watermark", p.high_watermark},
                       {"log_start_offset", p.log_start_offset}});
    std::cout << dump({{"topic", json_string(r->name)},
                       {"topic_id", static_cast<std::int64_t>(r->topic_id)},
                       {"configs", configs_json(r->configs)},
                       {"partitions", std::move(parts)}})
              << "\n";
    return 0;
  }
  std::cout << "topic " << r->name << "\tpartitions=" << r->partitions.size() << "\tid=" << r->topic_id
            << "\tconfigs=" << configs_text(r->configs) << "\n";
  std::cout << "partition\tleader\treplicas\tisr\thigh_watermark\tlog_start_offset\n";
  for (const auto& p : r->partitions)
    std::cout << p.partition << "\t" << p.leader << "\t" << join(p.replicas) << "\t" << join(p.isr) << "\t"
              << p.high_watermark << "\t" << p.log_start_offset << "\n";
  return 0;
}

int topic_delete(const Global& g, const std::string& name) {
  auto admin = make_admin(g);
  if (!admin) return 2;
  if (auto r = admin->delete_topic(name); !r) {
    fail("cannot delete topic", r.error());
    return 1;
  }
  if (g.json)
    std::cout << dump({{"deleted", json_string(name)}}) << "\n";
  else
    std::cout << "deleted topic " << name << "\n";
  return 0;
}

int topic_alter_config(const Global& g, const std::string& name, const std::vector<std::string>& set,
                       const std::vector<std::string>& remove) {
  if (set.empty() && remove.empty()) {
    std::cerr << "error: give --set key=value and/or --delete key (keys: retention.ms, retention.bytes, "
                 "max.message.bytes)\n";
    return 2;
  }
  auto cfg = parse_configs(set, "--set");
  if (!cfg) return 2;
  for (const auto& k : remove)
    if (k != "retention.ms" && k != "retention.bytes" && k != "max.message.bytes") {
      std::cerr << "error: --delete " << k
                << ": unknown topic config; the allowed keys are retention.ms, retention.bytes and max.message.bytes\n";
      return 2;
    }
  auto admin = make_admin(g);
  if (!admin) return 2;
  if (auto r = admin->alter_topic_config(name, *cfg, remove); !r) {
    fail("cannot change the configs of topic '" + name + "'", r.error());
    return 1;
  }
  // Show the result as the cluster now has it.
  auto d = admin->describe_topic(name);
  const auto now = d ? d->configs : *cfg;
  if (g.json)
    std::cout << dump({{"topic", json_string(name)}, {"configs", configs_json(now)}}) << "\n";
  else
    std::cout << "topic " << name << ": configs " << configs_text(now) << "\n";
  return 0;
}

}  // namespace quorumq::cli
