#include "topics.h"

#include <charconv>
#include <limits>

#include <spdlog/spdlog.h>

#include <cctype>

namespace quorumq::broker {

using wire::ErrorCode;

TopicManager::TopicManager(storage::Storage& storage, Metrics& metrics, node_id self, std::uint32_t max_partitions)
    : storage_(storage), metrics_(metrics), self_(self), max_partitions_(max_partitions) {}

TopicManager::~TopicManager() {
  for (const auto& t : list())
    for (const auto& p : t->partitions)
      if (p) p->stop();
}

std::string TopicManager::log_name(const std::string& topic, std::int32_t partition) {
  return topic + "/" + std::to_string(partition);
}

bool TopicManager::valid_name(const std::string& name, std::string* why) {
  auto fail = [&](const char* w) {
    if (why) *why = w;
    return false;
  };
  if (name.empty() || name.size() > 200) return fail("topic names are 1 to 200 characters");
  if (name.starts_with("__")) return fail("topic names starting with '__' are reserved for internal use");
  if (name == "." || name == "..") return fail("'.' and '..' are not topic names");
  for (const char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return fail("topic names may hold only letters, digits, '.', '_' and '-'");
  return true;
}

namespace {
bool parse_i64(const std::string& s, std::int64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}
}  // namespace

std::optional<Status> validate_topic_configs(const std::map<std::string, std::string>& configs) {
  for (const auto& [k, v] : configs) {
    std::int64_t n = 0;
    if (!parse_i64(v, n))
      return Status{ErrorCode::invalid_config, "config " + k + "=" + v + ": the value must be an integer"};
    if (k == "retention.ms" || k == "retention.bytes") {
      if (n == 0 || n < -1)
        return Status{ErrorCode::invalid_config, "config " + k + "=" + v + ": use a positive number, or -1 for no limit"};
    } else if (k == "max.message.bytes") {
      if (n < 128 || n > (1 << 30))
        return Status{ErrorCode::invalid_config, "config " + k + "=" + v + ": use 128 .. 1073741824"};
    } else {
      return Status{ErrorCode::invalid_config,
                        "unknown topic config '" + k + "': the topic configs are retention.ms, retention.bytes and "
                        "max.message.bytes"};
    }
  }
  return std::nullopt;
}

TopicSettings topic_settings(const TopicConfig& cfg) {
  TopicSettings s;
  std::int64_t n = 0;
  if (auto it = cfg.configs.find("retention.ms"); it != cfg.configs.end() && parse_i64(it->second, n)) s.retention_ms = n;
  if (auto it = cfg.configs.find("retention.bytes"); it != cfg.configs.end() && parse_i64(it->second, n))
    s.retention_bytes = n;
  if (auto it = cfg.configs.find("max.message.bytes"); it != cfg.configs.end() && parse_i64(it->second, n) && n > 0)
    s.max_message_bytes = static_cast<std::uint32_t>(std::min<std::int64_t>(n, std::numeric_limits<std::uint32_t>::max()));
  return s;
}

void TopicManager::apply_alter(const std::string& name, std::map<std::string, std::string> configs) {
  std::unique_lock lk(mu_);
  auto it = topics_.find(name);
  if (it == topics_.end()) return;
  auto t = std::make_shared<Topic>(*it->second);  // lookups hold snapshots: replace, never mutate
  t->config.configs = std::move(configs);
  it->second = std::move(t);
  spdlog::info("topic {}: configs changed", name);
}

std::shared_ptr<const Topic> TopicManager::find(const std::string& name) const {
  std::shared_lock lk(mu_);
  auto it = topics_.find(name);
  return it == topics_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const Topic>> TopicManager::list() const {
  std::shared_lock lk(mu_);
  std::vector<std::shared_ptr<const Topic>> out;
  for (const auto& [_, t] : topics_) out.push_back(t);
  return out;
}

std::size_t TopicManager::hosted_partitions() const {
  std::shared_lock lk(mu_);
  std::size_t n = 0;
  for (const auto& [_, t] : topics_)
    for (const auto& p : t->partitions) n += p != nullptr;
  return n;
}

std::optional<Status> TopicManager::validate_create(const std::string& name, const TopicConfig& cfg,
                                                        std::int32_t cluster_size) const {
  std::string why;
  if (!valid_name(name, &why)) return Status{ErrorCode::invalid_request, why};
  if (cfg.partitions < 1 || cfg.partitions > 10000)
    return Status{ErrorCode::invalid_partitions, "partitions must be between 1 and 10000"};
  if (cfg.replication_factor < 1 || cfg.replication_factor > cluster_size)
    return Status{ErrorCode::invalid_replication_factor,
                      "replication factor " + std::to_string(cfg.replication_factor) + " needs that many brokers; the cluster has " +
                          std::to_string(cluster_size)};
  if (auto e = validate_topic_configs(cfg.configs)) return e;
  std::shared_lock lk(mu_);
  if (topics_.contains(name)) return Status{ErrorCode::topic_already_exists, "topic " + name + " already exists"};
  std::size_t hosted = 0;
  for (const auto& [_, t] : topics_)
    for (const auto& p : t->partitions) hosted += p != nullptr;
  if (hosted + static_cast<std::size_t>(cfg.partitions) > max_partitions_)
    return Status{ErrorCode::invalid_partitions,
                      "the cluster would exceed a broker's partition limit (--max-partitions " + std::to_string(max_partitions_) + ")"};
  return std::nullopt;
}

void TopicManager::apply_create(const std::string& name, const TopicConfig& cfg,
                                std::vector<std::vector<node_id>> assignment, bool fresh, std::uint64_t id) {
  auto t = std::make_shared<Topic>();
  t->name = name;
  t->id = id;
  t->config = cfg;
  t->assignment = std::move(assignment);
  t->partitions.resize(t->assignment.size());
  {
    std::shared_lock lk(mu_);
    if (topics_.contains(name)) return;  // a duplicate create that lost the race: first one wins
  }
  for (std::size_t p = 0; p < t->assignment.size(); ++p) {
    const auto& reps = t->assignment[p];
    if (std::find(reps.begin(), reps.end(), self_) == reps.end()) continue;
    const auto pid = static_cast<std::int32_t>(p);
    auto log = storage_.open_log(log_name(name, pid));
    if (!log) {
      spdlog::critical("topic {}: cannot open the log of partition {}: {}", name, p, log.error().message);
      continue;
    }
    t->partitions[p] = std::make_shared<Partition>(name, pid, reps, storage_, *log, metrics_);
  }
  {
    std::unique_lock lk(mu_);
    topics_[name] = t;
  }
  for (auto& p : t->partitions)
    if (p && start_) start_(*p, fresh);
  spdlog::info("topic {}: {} partition(s), replication factor {}, {} hosted here", name, cfg.partitions,
               cfg.replication_factor, std::count_if(t->partitions.begin(), t->partitions.end(), [](const auto& p) { return p != nullptr; }));
}

void TopicManager::apply_delete(const std::string& name) {
  std::shared_ptr<Topic> t;
  {
    std::unique_lock lk(mu_);
    auto it = topics_.find(name);
    if (it == topics_.end()) return;
    t = it->second;
    topics_.erase(it);
  }
  for (auto& p : t->partitions) {
    if (!p) continue;
    if (stop_) stop_(*p);
    p->stop();
    if (auto d = storage_.drop_log(log_name(name, p->id())); !d)
      spdlog::warn("topic {}: partition {} log not dropped: {}", name, p->id(), d.error().message);
  }
  // Its consumer-group offsets go with it: a topic created again with this name starts with
  // none (they would point into a log that no longer exists).
  std::vector<storage::WriteOp> ops;
  ops.emplace_back(storage::DeleteTopicOffsetsOp{name});
  storage_.submit(std::move(ops), [name](const std::expected<storage::WriteResult, storage::Error>& r) {
    if (!r.has_value()) spdlog::warn("topic {}: deleting its committed offsets failed: {}", name, r.error().message);
  });
  spdlog::info("topic {} deleted (with its committed offsets)", name);
}

}  // namespace quorumq::broker
