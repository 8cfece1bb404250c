#include "controller.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <sstream>

#include "quorumq/protocol/record_batch.h"

namespace quorumq::broker {

using wire::ErrorCode;

namespace {
std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const auto p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) break;
    start = p + 1;
  }
  return out;
}
bool to_int(const std::string& s, std::int32_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}
}  // namespace

Controller::Controller(storage::Storage& storage, TopicManager& topics, GroupRegistry& groups,
                       std::vector<node_id> brokers, node_id self)
    : storage_(storage), topics_(topics), groups_(groups), brokers_(std::move(brokers)), self_(self) {}

std::expected<void, std::string> Controller::start(GroupOptions opts, Transport& transport, Executor& exec) {
  auto log = storage_.open_log(kGroup);
  if (!log) return std::unexpected("opening the controller log: " + log.error().message);
  opts.name = kGroup;
  opts.voters = brokers_;
  opts.persist_applied = false;
  opts.campaign_at_start = brokers_.size() == 1;
  group_ = std::make_shared<ReplicatedLog>(opts, storage_, *log, transport, exec, this);
  group_->start();  // replays committed commands (topics come back before we serve)
  started_ = true;
  return {};
}

void Controller::stop() {
  if (group_) group_->stop();
}

std::vector<std::vector<node_id>> Controller::assign(const std::string& name, std::int32_t partitions,
                                                     std::int32_t replication_factor,
                                                     const std::vector<node_id>& brokers) {
  std::vector<std::vector<node_id>> out;
  const std::size_t n = brokers.size();
  const std::size_t start = std::hash<std::string>{}(name) % n;
  for (std::int32_t p = 0; p < partitions; ++p) {
    std::vector<node_id> reps;
    for (std::int32_t r = 0; r < replication_factor; ++r)
      reps.push_back(brokers[(start + static_cast<std::size_t>(p) + static_cast<std::size_t>(r)) % n]);
    out.push_back(std::move(reps));
  }
  return out;
}

void Controller::propose(std::string command, Done done) {
  group_->locked([&] {
    if (auto err = group_->check_can_propose_locked()) {
      std::string where = err->leader_hint ? "; the controller is broker " + std::to_string(err->leader_hint->value) : "";
      done(AdminError{err->error, "this broker is not the cluster controller" + where + ": send admin requests there (retry)"});
      return;
    }
    auto batch = make_payload_batch(BatchType::control,
                                    {reinterpret_cast<const std::uint8_t*>(command.data()), command.size()});
    group_->propose_locked(std::move(batch), AckLevel::quorum, [done = std::move(done)](ProposeResult r) mutable {
      if (r.error != ErrorCode::none) done(AdminError{r.error, r.message.empty() ? "controller proposal failed; retry" : r.message});
      else done(std::nullopt);
    });
  });
}

void Controller::create_topic(const std::string& name, const TopicConfig& cfg, Done done) {
  if (auto e = topics_.validate_create(name, cfg, static_cast<std::int32_t>(brokers_.size()))) return done(*e);
  const auto a = assign(name, cfg.partitions, cfg.replication_factor, brokers_);
  std::string cmd = "create\n" + name + "\n" + std::to_string(cfg.partitions) + "\n" +
                    std::to_string(cfg.replication_factor) + "\n";
  for (std::size_t p = 0; p < a.size(); ++p) {
    if (p) cmd += ';';
    for (std::size_t r = 0; r < a[p].size(); ++r) cmd += (r ? "," : "") + std::to_string(a[p][r].value);
  }
  cmd += "\n";
  bool first = true;
  for (const auto& [k, v] : cfg.configs) cmd += (first ? "" : ";") + k + "=" + v, first = false;
  propose(std::move(cmd), std::move(done));
}

void Controller::delete_topic(const std::string& name, Done done) {
  if (!topics_.find(name))
    return done(AdminError{ErrorCode::unknown_topic_or_partition, "topic " + name + " does not exist"});
  propose("delete\n" + name, std::move(done));
}

void Controller::apply(const raft::Entry& e, std::span<const std::uint8_t> batch) {
  if (batch.size() < kBatchHeaderSize) return;
  const BatchView v(batch);
  if (v.type() != BatchType::control) return;
  const auto p = batch_payload(v);
  static constexpr std::string_view kGroupCmd = "group\n";
  if (p.size() > kGroupCmd.size() && std::equal(kGroupCmd.begin(), kGroupCmd.end(), p.begin())) {
    const auto rest = p.subspan(kGroupCmd.size());
    const auto nl = std::find(rest.begin(), rest.end(), std::uint8_t{'\n'});
    auto st = nl == rest.end() ? std::nullopt : decode_group_state(rest.subspan(static_cast<std::size_t>(nl - rest.begin()) + 1));
    if (!st || st->name != std::string(rest.begin(), nl)) {
      spdlog::error("controller entry {}: unreadable group state, skipped", e.index.value);
      return;
    }
    groups_.apply(std::move(*st));
    return;
  }
  const std::string text(p.begin(), p.end());
  const auto f = split(text, '\n');
  if (f.size() >= 2 && f[0] == "delete") {
    topics_.apply_delete(f[1]);
    return;
  }
  if (f.size() < 5 || f[0] != "create") {
    spdlog::error("controller entry {}: unknown command, skipped", e.index.value);
    return;
  }
  TopicConfig cfg;
  std::int32_t rf = 0;
  if (!to_int(f[2], cfg.partitions) || !to_int(f[3], rf)) {
    spdlog::error("controller entry {}: unreadable create command, skipped", e.index.value);
    return;
  }
  cfg.replication_factor = static_cast<std::int16_t>(rf);
  std::vector<std::vector<node_id>> assignment;
  for (const auto& part : split(f[4], ';')) {
    std::vector<node_id> reps;
    for (const auto& r : split(part, ',')) {
      std::int32_t id;
      if (to_int(r, id)) reps.push_back(node_id{id});
    }
    assignment.push_back(std::move(reps));
  }
  if (f.size() >= 6 && !f[5].empty())
    for (const auto& kv : split(f[5], ';')) {
      const auto eq = kv.find('=');
      if (eq != std::string::npos) cfg.configs[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  if (static_cast<std::int32_t>(assignment.size()) != cfg.partitions) {
    spdlog::error("controller entry {}: assignment does not match partitions, skipped", e.index.value);
    return;
  }
  topics_.apply_create(f[1], cfg, std::move(assignment), started_);
}

}  // namespace quorumq::broker
