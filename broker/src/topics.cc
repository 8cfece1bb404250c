#include "topics.h"

#include <spdlog/spdlog.h>

#include <cctype>
#include <sstream>

namespace quorumq::broker {

using wire::ErrorCode;

namespace {
constexpr const char* kTopicsKey = "topics";

// Text encoding of the topic list, one topic per line:
//   name<TAB>partitions<TAB>replication_factor[<TAB>key=value]...
// Names and config keys/values are validated to hold no tab, newline or '='.
std::map<std::string, TopicConfig> decode_topics(const std::vector<std::uint8_t>& raw) {
  std::map<std::string, TopicConfig> out;
  std::string text(raw.begin(), raw.end());
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::size_t s = 0;
    for (;;) {
      const auto t = line.find('\t', s);
      f.push_back(line.substr(s, t == std::string::npos ? std::string::npos : t - s));
      if (t == std::string::npos) break;
      s = t + 1;
    }
    if (f.size() < 3) continue;
    TopicConfig c;
    try {
      c.partitions = std::stoi(f[1]);
      c.replication_factor = static_cast<std::int16_t>(std::stoi(f[2]));
    } catch (const std::exception&) {
      spdlog::error("topic list: unreadable line '{}' skipped", line);
      continue;
    }
    for (std::size_t i = 3; i < f.size(); ++i) {
      const auto eq = f[i].find('=');
      if (eq != std::string::npos) c.configs[f[i].substr(0, eq)] = f[i].substr(eq + 1);
    }
    out[f[0]] = c;
  }
  return out;
}

bool clean(const std::string& s) { return s.find_first_of("\t\n=") == std::string::npos; }
}  // namespace

TopicManager::TopicManager(storage::Storage& storage, Metrics& metrics, std::uint32_t max_partitions)
    : storage_(storage), metrics_(metrics), max_partitions_(max_partitions) {}

std::string TopicManager::log_name(const std::string& topic, std::int32_t partition) {
  return topic + "/" + std::to_string(partition);
}

bool TopicManager::valid_name(const std::string& name, std::string* why) {
  auto fail = [&](const char* w) {
    if (why) *why = w;
    return false;
  };
  if (name.empty() || name.size() > 200) return fail("topic names are 1 to 200 characters");
  if (name.starts_with("__")) return fail("topic names starting with '__' are reserved for internal topics");
  if (name == "." || name == "..") return fail("'.' and '..' are not topic names");
  for (const char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return fail("topic names may hold only letters, digits, '.', '_' and '-'");
  return true;
}

std::expected<std::shared_ptr<Topic>, std::string> TopicManager::open_topic(const std::string& name,
                                                                             const TopicConfig& cfg) {
  auto t = std::make_shared<Topic>();
  t->name = name;
  t->config = cfg;
  for (std::int32_t p = 0; p < cfg.partitions; ++p) {
    auto log = storage_.open_log(log_name(name, p));
    if (!log) return std::unexpected(log.error().message);
    t->partitions.push_back(std::make_shared<Partition>(name, p, storage_, *log, metrics_));
  }
  return t;
}

std::expected<void, std::string> TopicManager::load() {
  const auto raw = storage_.meta(kTopicsKey);
  if (!raw) return {};
  std::unique_lock lk(mu_);
  for (const auto& [name, cfg] : decode_topics(*raw)) {
    auto t = open_topic(name, cfg);
    if (!t) return std::unexpected("opening topic " + name + ": " + t.error());
    topics_[name] = *t;
    spdlog::info("topic {}: {} partition(s) loaded", name, cfg.partitions);
  }
  return {};
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

std::size_t TopicManager::partition_count() const {
  std::shared_lock lk(mu_);
  return partition_count_locked();
}

std::size_t TopicManager::partition_count_locked() const {
  std::size_t n = 0;
  for (const auto& [_, t] : topics_) n += t->partitions.size();
  return n;
}

std::vector<std::uint8_t> TopicManager::encode_locked() const {
  std::string text;
  for (const auto& [name, t] : topics_) {
    text += name + "\t" + std::to_string(t->config.partitions) + "\t" + std::to_string(t->config.replication_factor);
    for (const auto& [k, v] : t->config.configs) text += "\t" + k + "=" + v;
    text += "\n";
  }
  return {text.begin(), text.end()};
}

std::expected<std::shared_ptr<const Topic>, AdminError> TopicManager::create(const std::string& name,
                                                                             const TopicConfig& cfg,
                                                                             std::int32_t cluster_size,
                                                                             bool validate_only) {
  std::string why;
  if (!valid_name(name, &why)) return std::unexpected(AdminError{ErrorCode::invalid_request, why});
  if (cfg.partitions < 1 || cfg.partitions > 10000)
    return std::unexpected(AdminError{ErrorCode::invalid_partitions, "partitions must be between 1 and 10000"});
  if (cfg.replication_factor < 1 || cfg.replication_factor > cluster_size)
    return std::unexpected(AdminError{ErrorCode::invalid_replication_factor,
                                      "replication factor " + std::to_string(cfg.replication_factor) +
                                          " needs that many brokers; the cluster has " + std::to_string(cluster_size)});
  for (const auto& [k, v] : cfg.configs)
    if (!clean(k) || !clean(v) || k.empty())
      return std::unexpected(AdminError{ErrorCode::invalid_config, "config '" + k + "' has a tab, newline or '='"});
  std::unique_lock lk(mu_);
  if (topics_.contains(name))
    return std::unexpected(AdminError{ErrorCode::topic_already_exists, "topic " + name + " already exists"});
  if (partition_count_locked() + static_cast<std::size_t>(cfg.partitions) > max_partitions_)
    return std::unexpected(AdminError{ErrorCode::invalid_partitions,
                                      "this broker would exceed its partition limit (--max-partitions " +
                                          std::to_string(max_partitions_) + ")"});
  if (validate_only) return std::shared_ptr<const Topic>{};
  auto t = open_topic(name, cfg);
  if (!t) return std::unexpected(AdminError{ErrorCode::storage_error, t.error()});
  topics_[name] = *t;
  std::vector<storage::WriteOp> ops;
  ops.emplace_back(storage::PutMetaOp{kTopicsKey, encode_locked()});
  if (auto w = storage_.write_sync(std::move(ops)); !w) {
    topics_.erase(name);
    for (std::int32_t p = 0; p < cfg.partitions; ++p) (void)storage_.drop_log(log_name(name, p));
    return std::unexpected(AdminError{w.error().code == storage::errc::disk_full
                                          ? ErrorCode::disk_full
                                          : ErrorCode::storage_error,
                                      w.error().message});
  }
  spdlog::info("topic {} created: {} partition(s), replication factor {}", name, cfg.partitions, cfg.replication_factor);
  return *t;
}

std::expected<void, AdminError> TopicManager::remove(const std::string& name) {
  std::unique_lock lk(mu_);
  auto it = topics_.find(name);
  if (it == topics_.end())
    return std::unexpected(AdminError{ErrorCode::unknown_topic_or_partition, "topic " + name + " does not exist"});
  auto t = it->second;
  topics_.erase(it);
  std::vector<storage::WriteOp> ops;
  ops.emplace_back(storage::PutMetaOp{kTopicsKey, encode_locked()});
  if (auto w = storage_.write_sync(std::move(ops)); !w) {
    topics_[name] = t;
    return std::unexpected(AdminError{ErrorCode::storage_error, w.error().message});
  }
  for (const auto& p : t->partitions) {
    p->close();
    if (auto d = storage_.drop_log(log_name(name, p->id())); !d)
      spdlog::warn("topic {}: partition {} log not dropped: {}", name, p->id(), d.error().message);
  }
  spdlog::info("topic {} deleted", name);
  return {};
}

}  // namespace quorumq::broker
