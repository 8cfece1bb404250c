#include "controller.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <map>
#include <set>
#include <sstream>

#include "quorumq/protocol/record_batch.h"
#include "state_record.h"

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

// The text commands of earlier builds (read when their logs replay).
using ParsedCreate = ParsedTopic;
std::optional<ParsedCreate> parse_create(const std::string& text) {
  const auto f = split(text, '\n');
  if (f.size() < 5 || f[0] != "create") return std::nullopt;
  ParsedCreate c;
  c.name = f[1];
  std::int32_t rf = 0;
  if (!to_int(f[2], c.cfg.partitions) || !to_int(f[3], rf)) return std::nullopt;
  c.cfg.replication_factor = static_cast<std::int16_t>(rf);
  for (const auto& part : split(f[4], ';')) {
    std::vector<node_id> reps;
    for (const auto& r : split(part, ',')) {
      std::int32_t id;
      if (to_int(r, id)) reps.push_back(node_id{id});
    }
    c.assignment.push_back(std::move(reps));
  }
  if (f.size() >= 6 && !f[5].empty())
    for (const auto& kv : split(f[5], ';')) {
      const auto eq = kv.find('=');
      if (eq != std::string::npos) c.cfg.configs[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  if (static_cast<std::int32_t>(c.assignment.size()) != c.cfg.partitions) return std::nullopt;
  return c;
}

// State records (broker/schema/state.fbs): what this build writes.
flatbuffers::Offset<state::CreateTopic> build_create(flatbuffers::FlatBufferBuilder& fbb, const std::string& name,
                                                      const TopicConfig& cfg, const std::vector<std::vector<node_id>>& a) {
  std::vector<flatbuffers::Offset<state::ReplicaSet>> sets;
  for (const auto& reps : a) {
    std::vector<std::int32_t> ids;
    for (const auto& r : reps) ids.push_back(r.value);
    sets.push_back(state::CreateReplicaSetDirect(fbb, &ids));
  }
  std::vector<flatbuffers::Offset<state::KeyValue>> kvs;
  for (const auto& [k, v] : cfg.configs) kvs.push_back(state::CreateKeyValue(fbb, fbb.CreateString(k), fbb.CreateString(v)));
  return state::CreateCreateTopicDirect(fbb, name.c_str(), cfg.partitions, cfg.replication_factor, &sets, &kvs);
}
std::vector<std::uint8_t> create_record(const std::string& name, const TopicConfig& cfg,
                                        const std::vector<std::vector<node_id>>& a) {
  flatbuffers::FlatBufferBuilder fbb(256);
  const auto b = build_create(fbb, name, cfg, a);
  return finish_state_record(fbb, state::Body::CreateTopic, b.Union());
}
std::map<std::string, std::string> configs_of(const flatbuffers::Vector<flatbuffers::Offset<state::KeyValue>>* kvs) {
  std::map<std::string, std::string> out;
  if (kvs)
    for (const auto* kv : *kvs) out[state_str(kv->key())] = state_str(kv->value());
  return out;
}
std::optional<ParsedCreate> read_create(const state::CreateTopic* c) {
  if (!c || !c->name()) return std::nullopt;
  ParsedCreate out;
  out.name = c->name()->str();
  out.cfg.partitions = c->partitions();
  out.cfg.replication_factor = c->replication_factor();
  out.cfg.configs = configs_of(c->configs());
  if (c->assignment())
    for (const auto* set : *c->assignment()) {
      std::vector<node_id> reps;
      if (set->nodes())
        for (const auto id : *set->nodes()) reps.push_back(node_id{id});
      out.assignment.push_back(std::move(reps));
    }
  if (static_cast<std::int32_t>(out.assignment.size()) != out.cfg.partitions) return std::nullopt;
  return out;
}

// Earlier builds' checkpoints: little-endian length-prefixed fields; reads never trust a length.
struct Reader {
  std::span<const std::uint8_t> b;
  std::size_t at = 0;
  bool ok = true;
  std::uint64_t u(int n) {
    if (!ok || b.size() - at < static_cast<std::size_t>(n)) return ok = false, 0;
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(b[at + static_cast<std::size_t>(i)]) << (8 * i);
    at += static_cast<std::size_t>(n);
    return v;
  }
  std::span<const std::uint8_t> bytes() {
    const auto n = u(4);
    if (!ok || b.size() - at < n) return ok = false, std::span<const std::uint8_t>{};
    auto out = b.subspan(at, n);
    at += n;
    return out;
  }
};
constexpr std::string_view kCheckpointCmd = "checkpoint\n";
constexpr std::uint32_t kCheckpointVersion = 1;
}  // namespace

Controller::Controller(storage::Storage& storage, TopicManager& topics, std::vector<node_id> brokers, node_id self)
    : storage_(storage), topics_(topics), brokers_(std::move(brokers)), self_(self) {}

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

void Controller::propose(std::vector<std::uint8_t> command, Done done) {
  group_->locked([&] {
    if (auto err = group_->check_can_propose_locked()) {
      std::string where = err->leader_hint ? "; the controller is broker " + std::to_string(err->leader_hint->value) : "";
      done(Status{err->code, "this broker is not the cluster controller" + where + ": send admin requests there (retry)",
                  err->leader_hint});
      return;
    }
    auto batch = make_payload_batch(BatchType::control, command);
    group_->propose_locked(std::move(batch), AckLevel::quorum, [done = std::move(done)](ProposeResult r) mutable {
      if (!r.status.ok()) {
        if (r.status.message.empty()) r.status.message = "controller proposal failed; retry";
        done(std::move(r.status));
      } else {
        done(std::nullopt);
      }
    });
  });
}

void Controller::create_topic(const std::string& name, const TopicConfig& cfg, Done done) {
  if (auto e = topics_.validate_create(name, cfg, static_cast<std::int32_t>(brokers_.size()))) return done(*e);
  const auto a = assign(name, cfg.partitions, cfg.replication_factor, brokers_);
  propose(create_record(name, cfg, a), std::move(done));
}

void Controller::alter_topic(const std::string& name, const std::map<std::string, std::string>& configs, Done done) {
  if (!topics_.find(name))
    return done(Status{ErrorCode::unknown_topic_or_partition, "topic " + name + " does not exist"});
  flatbuffers::FlatBufferBuilder fbb(256);
  std::vector<flatbuffers::Offset<state::KeyValue>> kvs;
  for (const auto& [k, v] : configs) kvs.push_back(state::CreateKeyValue(fbb, fbb.CreateString(k), fbb.CreateString(v)));
  const auto b = state::CreateAlterTopicDirect(fbb, name.c_str(), &kvs);
  propose(finish_state_record(fbb, state::Body::AlterTopic, b.Union()), std::move(done));
}

void Controller::delete_topic(const std::string& name, Done done) {
  if (!topics_.find(name))
    return done(Status{ErrorCode::unknown_topic_or_partition, "topic " + name + " does not exist"});
  flatbuffers::FlatBufferBuilder fbb(64);
  const auto b = state::CreateDeleteTopicDirect(fbb, name.c_str());
  propose(finish_state_record(fbb, state::Body::DeleteTopic, b.Union()), std::move(done));
}

void Controller::apply(const raft::Entry& e, std::span<const std::uint8_t> batch) {
  if (batch.size() < kBatchHeaderSize) return;
  const BatchView v(batch);
  if (v.type() != BatchType::control) return;
  const auto p = batch_payload(v);
  if (is_state_record(p)) {
    apply_record(e, p);
    return;
  }
  // Below: the text commands of earlier builds (their logs still replay).
  if (p.size() >= kCheckpointCmd.size() && std::equal(kCheckpointCmd.begin(), kCheckpointCmd.end(), p.begin())) {
    apply_legacy_checkpoint(e, p.subspan(kCheckpointCmd.size()));
    return;
  }
  ++entries_since_checkpoint_;
  bytes_since_checkpoint_ += batch.size();
  for (auto* ext : extensions_) {
    const auto cmd = ext->command();
    if (p.size() > cmd.size() && std::equal(cmd.begin(), cmd.end(), p.begin()) && p[cmd.size()] == '\n') {
      ext->apply_command(p.subspan(cmd.size() + 1), e.index);
      return;
    }
  }
  const std::string text(p.begin(), p.end());
  const auto f = split(text, '\n');
  if (f.size() >= 2 && f[0] == "delete") {
    topics_.apply_delete(f[1]);
    return;
  }
  if (f.size() >= 2 && f[0] == "alter") {
    std::map<std::string, std::string> configs;
    if (f.size() >= 3 && !f[2].empty())
      for (const auto& kv : split(f[2], ';')) {
        const auto eq = kv.find('=');
        if (eq != std::string::npos) configs[kv.substr(0, eq)] = kv.substr(eq + 1);
      }
    topics_.apply_alter(f[1], std::move(configs));
    return;
  }
  apply_create(e, text);
}

void Controller::apply_create(const raft::Entry& e, const std::string& text) {
  auto c = parse_create(text);
  if (!c) {
    spdlog::error("controller entry {}: unknown or unreadable command, skipped", e.index.value);
    return;
  }
  topics_.apply_create(c->name, c->cfg, std::move(c->assignment), started_, e.index.value);
}

std::vector<std::uint8_t> Controller::encode_checkpoint(log_index covers) const {
  flatbuffers::FlatBufferBuilder fbb(4096);
  std::vector<flatbuffers::Offset<state::CheckpointTopic>> topics;
  for (const auto& t : topics_.list()) {
    const auto c = build_create(fbb, t->name, t->config, t->assignment);
    topics.push_back(state::CreateCheckpointTopic(fbb, t->id, c));
  }
  std::vector<flatbuffers::Offset<state::Blob>> blobs;
  for (const auto* ext : extensions_)
    for (const auto& item : ext->checkpoint_items()) blobs.push_back(state::CreateBlobDirect(fbb, &item));
  const auto b = state::CreateControllerCheckpointDirect(fbb, covers.value, &topics, &blobs);
  return finish_state_record(fbb, state::Body::ControllerCheckpoint, b.Union());
}

// A state record: this build's commands.
void Controller::apply_record(const raft::Entry& e, std::span<const std::uint8_t> p) {
  const auto rec = read_state_record(p);
  if (!rec) {
    spdlog::error("controller entry {}: a damaged or newer-version record, skipped (upgrade this broker if the cluster "
                  "runs a newer quorumq)",
                  e.index.value);
    return;
  }
  if (rec->type() == state::Body::ControllerCheckpoint) {
    const auto* c = rec->as<state::ControllerCheckpoint>();
    CheckpointContents cp;
    cp.covers = log_index{c->covers()};
    if (c->topics())
      for (const auto* t : *c->topics()) {
        auto pc = read_create(t->topic());
        if (!pc) {
          cp.ok = false;
          break;
        }
        std::string name = pc->name;
        cp.topics.emplace(std::move(name), std::pair{t->id(), std::move(*pc)});
      }
    if (c->extension_items())
      for (const auto* item : *c->extension_items())
        cp.items.push_back(item->bytes() ? std::span<const std::uint8_t>(item->bytes()->data(), item->bytes()->size())
                                         : std::span<const std::uint8_t>());
    install_checkpoint(e, std::move(cp));
    return;
  }
  ++entries_since_checkpoint_;
  bytes_since_checkpoint_ += p.size();
  switch (rec->type()) {
    case state::Body::CreateTopic: {
      auto c = read_create(rec->as<state::CreateTopic>());
      if (!c) {
        spdlog::error("controller entry {}: unreadable create command, skipped", e.index.value);
        return;
      }
      topics_.apply_create(c->name, c->cfg, std::move(c->assignment), started_, e.index.value);
      return;
    }
    case state::Body::DeleteTopic:
      topics_.apply_delete(state_str(rec->as<state::DeleteTopic>()->name()));
      return;
    case state::Body::AlterTopic: {
      const auto* a = rec->as<state::AlterTopic>();
      topics_.apply_alter(state_str(a->name()), configs_of(a->configs()));
      return;
    }
    default:  // the extensions' records (consumer-group state, users, ACLs)
      if (auto* ext = owner_of(rec->type())) ext->apply_command(p, e.index);
      else spdlog::error("controller entry {}: a record nobody here applies, skipped", e.index.value);
      return;
  }
}

// Replaces the applied state with the checkpoint's: the state of every replica that applied the
// log up to `covers` already IS this state; a replica whose log was reset (it was far behind)
// or that restarts from the checkpoint gets there by it. Then the log before it is trimmed.
void Controller::apply_legacy_checkpoint(const raft::Entry& e, std::span<const std::uint8_t> body) {
  Reader r{body};
  const auto version = r.u(4);
  CheckpointContents cp;
  cp.covers = log_index{r.u(8)};
  auto& topics = cp.topics;
  const auto ntopics = r.u(4);
  for (std::uint64_t i = 0; r.ok && i < ntopics; ++i) {
    const auto id = r.u(8);
    const auto bytes = r.bytes();
    auto c = parse_create(std::string(bytes.begin(), bytes.end()));
    if (!c) {
      r.ok = false;
    } else {
      std::string name = c->name;  // before *c is moved from
      topics.emplace(std::move(name), std::pair{id, std::move(*c)});
    }
  }
  const auto nitems = r.u(4);
  for (std::uint64_t i = 0; r.ok && i < nitems; ++i) cp.items.push_back(r.bytes());
  cp.ok = r.ok && version == kCheckpointVersion;
  install_checkpoint(e, std::move(cp));
}

void Controller::install_checkpoint(const raft::Entry& e, CheckpointContents cp) {
  auto& topics = cp.topics;
  const auto& items = cp.items;
  if (!cp.ok || cp.covers.value + 1 != e.index.value) {
    // Nothing is replaced and nothing trimmed: the log before it still holds the state.
    spdlog::error("controller entry {}: unreadable checkpoint (covers {}), skipped", e.index.value, cp.covers.value);
    return;
  }
  // Topics: gone, or created again since (another id), go; missing ones come.
  for (const auto& t : topics_.list()) {
    auto it = topics.find(t->name);
    if (it == topics.end() || it->second.first != t->id) topics_.apply_delete(t->name);
  }
  for (auto& [name, entry] : topics) {
    auto& [id, c] = entry;
    if (auto cur = topics_.find(name); cur && cur->id == id) {
      // The same topic: its configs may have changed while this replica was behind.
      if (cur->config.configs != c.cfg.configs) topics_.apply_alter(name, c.cfg.configs);
      continue;
    }
    topics_.apply_create(name, c.cfg, std::move(c.assignment), started_, id);
  }
  // The extensions' state (consumer groups, users, ACLs): exactly the checkpoint's. Each gets the
  // items of its types; items of earlier builds (not state records) were the groups'.
  std::map<ControllerExtension*, std::vector<std::span<const std::uint8_t>>> per_ext;
  for (auto* ext : extensions_) per_ext[ext];
  for (const auto& item : items) {
    ControllerExtension* ext = extensions_.empty() ? nullptr : extensions_.front();
    if (is_state_record(item))
      if (const auto rec = read_state_record(item)) ext = owner_of(rec->type());
    if (ext) per_ext[ext].push_back(item);
  }
  for (auto& [ext, its] : per_ext)
    if (!ext->restore_checkpoint(its))
      spdlog::error("controller entry {}: a checkpoint item of '{}' was unreadable and skipped", e.index.value,
                    ext->command());
  entries_since_checkpoint_ = 0;
  bytes_since_checkpoint_ = 0;
  checkpoints_applied_.fetch_add(1, std::memory_order_relaxed);
  // Everything before the checkpoint is summed up by it: trim it (it is committed and applied).
  if (e.index.value > 1 && group_) {
    std::vector<storage::WriteOp> ops;
    ops.emplace_back(storage::TrimPrefixOp{group_->log(), e.index});
    storage_.submit(std::move(ops), [index = e.index.value](const std::expected<storage::WriteResult, storage::Error>& res) {
      if (!res.has_value())
        spdlog::warn("controller: trimming the log before checkpoint {} failed: {}", index, res.error().message);
    });
  }
  spdlog::info("controller: checkpoint at entry {} ({} topics, {} extension items); the log before it is trimmed",
               e.index.value, topics.size(), items.size());
}

ControllerExtension* Controller::owner_of(state::Body type) const {
  for (auto* ext : extensions_)
    if (ext->owns(type)) return ext;
  return nullptr;
}

void Controller::maybe_checkpoint() {
  if (!group_) return;
  group_->locked([&] {
    if (checkpoint_in_flight_ || group_->check_can_propose_locked()) return;
    if (entries_since_checkpoint_ < kCheckpointEveryEntries && bytes_since_checkpoint_ < kCheckpointEveryBytes) return;
    if (!group_->caught_up_locked()) return;  // try again at the next call
    const log_index covers = group_->last_index_locked();
    auto body = encode_checkpoint(covers);
    if (body.size() > kCheckpointBytesMax) {
      spdlog::error("controller: a checkpoint would take {} MiB, over {} MiB; the log is not compacted (fewer groups or "
                    "topics would fit)",
                    body.size() >> 20, kCheckpointBytesMax >> 20);
      entries_since_checkpoint_ = 0;  // retried after as many entries again
      bytes_since_checkpoint_ = 0;
      return;
    }
    checkpoint_in_flight_ = true;
    auto batch = make_payload_batch(BatchType::control, body);
    // The callback runs under the group lock (ReplicatedLog answers proposals under it).
    group_->propose_locked(std::move(batch), AckLevel::quorum, [this](ProposeResult r) {
      if (!r.status.ok()) spdlog::info("controller: checkpoint not committed ({}); retried later", r.status.message);
      checkpoint_in_flight_ = false;
    });
  });
}

}  // namespace quorumq::broker
