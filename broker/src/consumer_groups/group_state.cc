#include "group_state.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "state_record.h"

namespace quorumq::broker {

namespace {

// ---- encoding: version byte, then little-endian u32 counts/lengths and i32 numbers ----------
constexpr std::uint8_t kVersion = 1;

class Writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void i32(std::int32_t v) { u32(static_cast<std::uint32_t>(v)); }
  void str(const std::string& s) {
    u32(static_cast<std::uint32_t>(s.size()));
    out_.insert(out_.end(), s.begin(), s.end());
  }
  std::vector<std::uint8_t> take() { return std::move(out_); }

 private:
  std::vector<std::uint8_t> out_;
};

class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> b) : b_(b) {}
  bool u8(std::uint8_t& v) {
    if (pos_ + 1 > b_.size()) return false;
    v = b_[pos_++];
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (pos_ + 4 > b_.size()) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(b_[pos_ + static_cast<std::size_t>(i)]) << (8 * i);
    pos_ += 4;
    return true;
  }
  bool i32(std::int32_t& v) {
    std::uint32_t u;
    if (!u32(u)) return false;
    v = static_cast<std::int32_t>(u);
    return true;
  }
  bool str(std::string& s) {
    std::uint32_t n;
    if (!u32(n) || n > b_.size() - pos_) return false;
    s.assign(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return true;
  }
  // A count of items each at least `min_item` bytes long: bounded by what is left.
  bool count(std::uint32_t& n, std::size_t min_item) {
    return u32(n) && static_cast<std::size_t>(n) * min_item <= b_.size() - pos_;
  }
  bool done() const { return pos_ == b_.size(); }

 private:
  std::span<const std::uint8_t> b_;
  std::size_t pos_ = 0;
};

bool subscribed(const GroupMember& m, const std::string& topic) {
  return std::binary_search(m.topics.begin(), m.topics.end(), topic);
}

// Members subscribed to `topic`, in id order.
std::vector<const GroupMember*> subscribers(const GroupState& s, const std::string& topic) {
  std::vector<const GroupMember*> out;
  for (const auto& [id, m] : s.members)
    if (subscribed(m, topic)) out.push_back(&m);
  return out;
}

// Every partition some member subscribes to, sorted.
std::vector<TopicPartitionKey> wanted_partitions(const GroupState& s, const PartitionCounts& counts) {
  std::set<std::string> topics;
  for (const auto& [id, m] : s.members) topics.insert(m.topics.begin(), m.topics.end());
  std::vector<TopicPartitionKey> out;
  for (const auto& t : topics) {
    auto c = counts.find(t);
    if (c == counts.end()) continue;
    for (std::int32_t p = 0; p < c->second; ++p) out.emplace_back(t, p);
  }
  return out;
}

Assignment assign_range(const GroupState& s, const PartitionCounts& counts) {
  Assignment a;
  std::set<std::string> topics;
  for (const auto& [id, m] : s.members) topics.insert(m.topics.begin(), m.topics.end());
  for (const auto& t : topics) {
    auto c = counts.find(t);
    if (c == counts.end() || c->second <= 0) continue;
    const auto subs = subscribers(s, t);
    const std::int32_t n = c->second, m = static_cast<std::int32_t>(subs.size());
    std::int32_t p = 0;
    for (std::int32_t i = 0; i < m; ++i) {
      const std::int32_t share = n / m + (i < n % m ? 1 : 0);
      for (std::int32_t k = 0; k < share; ++k) a[{t, p++}] = subs[static_cast<std::size_t>(i)]->id;
    }
  }
  return a;
}

Assignment assign_roundrobin(const GroupState& s, const PartitionCounts& counts) {
  Assignment a;
  if (s.members.empty()) return a;
  std::vector<const GroupMember*> ms;
  for (const auto& [id, m] : s.members) ms.push_back(&m);
  std::size_t next = 0;
  for (const auto& tp : wanted_partitions(s, counts)) {
    for (std::size_t tries = 0; tries < ms.size(); ++tries) {
      const GroupMember* m = ms[next];
      next = (next + 1) % ms.size();
      if (subscribed(*m, tp.first)) {
        a[tp] = m->id;
        break;
      }
    }
  }
  return a;
}

Assignment assign_sticky(const GroupState& s, const PartitionCounts& counts) {
  Assignment a;
  std::map<std::string, std::vector<TopicPartitionKey>> owned;  // member → partitions (sorted)
  for (const auto& [id, m] : s.members) owned[id];
  const auto wanted = wanted_partitions(s, counts);
  std::vector<TopicPartitionKey> free;
  for (const auto& tp : wanted) {
    auto o = s.owners.find(tp);
    const GroupMember* m = nullptr;
    if (o != s.owners.end())
      if (auto it = s.members.find(o->second.member); it != s.members.end() && subscribed(it->second, tp.first))
        m = &it->second;
    if (m) owned[m->id].push_back(tp);
    else free.push_back(tp);
  }
  // The least loaded member subscribed to `topic` (ties: smallest id); nullptr if none.
  auto least = [&](const std::string& topic, const std::string* except, std::size_t below) -> const GroupMember* {
    const GroupMember* best = nullptr;
    std::size_t best_n = below;
    for (const auto& [id, m] : s.members) {
      if ((except && id == *except) || !subscribed(m, topic)) continue;
      const std::size_t n = owned[id].size();
      if (n < best_n) best = &m, best_n = n;
    }
    return best;
  };
  for (const auto& tp : free)
    if (const GroupMember* m = least(tp.first, nullptr, SIZE_MAX)) owned[m->id].push_back(tp);
  // Balance: move a partition from a member to an eligible one holding at least two fewer,
  // most loaded first, until no such move exists. Each move lowers the sum of squares.
  for (bool moved = true; moved;) {
    moved = false;
    std::vector<std::pair<std::size_t, std::string>> order;
    for (const auto& [id, ps] : owned) order.emplace_back(ps.size(), id);
    std::sort(order.begin(), order.end(), [](const auto& x, const auto& y) {
      return x.first != y.first ? x.first > y.first : x.second < y.second;
    });
    for (const auto& [n, id] : order) {
      auto& ps = owned[id];
      for (std::size_t i = ps.size(); i-- > 0;) {
        if (ps.size() < 2) break;
        const GroupMember* to = least(ps[i].first, &id, ps.size() - 1);
        if (!to) continue;
        owned[to->id].push_back(ps[i]);
        ps.erase(ps.begin() + static_cast<std::ptrdiff_t>(i));
        moved = true;
        break;
      }
      if (moved) break;
    }
  }
  for (const auto& [id, ps] : owned)
    for (const auto& tp : ps) a[tp] = id;
  return a;
}

}  // namespace

std::vector<std::uint8_t> encode_group_state(const GroupState& s) {
  flatbuffers::FlatBufferBuilder fbb(512);
  std::vector<flatbuffers::Offset<state::GroupMember>> members;
  for (const auto& [id, m] : s.members) {
    std::vector<flatbuffers::Offset<flatbuffers::String>> topics;
    for (const auto& t : m.topics) topics.push_back(fbb.CreateString(t));
    const auto member_id = fbb.CreateString(m.id);
    const auto client_id = fbb.CreateString(m.client_id);  // by length: whatever a client sent
    members.push_back(state::CreateGroupMember(fbb, member_id, client_id, fbb.CreateVector(topics), m.session_timeout_ms,
                                               m.rebalance_timeout_ms));
  }
  std::vector<flatbuffers::Offset<state::PartitionOwner>> owners;
  for (const auto& [tp, o] : s.owners)
    owners.push_back(state::CreatePartitionOwnerDirect(fbb, tp.first.c_str(), tp.second, o.member.c_str(), o.since));
  const auto b = state::CreateGroupStateDirect(fbb, s.name.c_str(), s.generation, s.assignor.c_str(), &members, &owners,
                                               s.protocol_type.empty() ? nullptr : s.protocol_type.c_str());
  return finish_state_record(fbb, state::Body::GroupState, b.Union());
}

namespace {
// The same checks the old decoder made: sorted topics, unique members, owners that are members.
std::optional<GroupState> read_group_state(const state::GroupState* g) {
  if (!g) return std::nullopt;
  GroupState s;
  s.name = state_str(g->name());
  s.generation = g->generation();
  s.assignor = state_str(g->assignor());
  s.protocol_type = state_str(g->protocol_type());
  if (g->members())
    for (const auto* fm : *g->members()) {
      GroupMember m;
      m.id = state_str(fm->id());
      m.client_id = state_str(fm->client_id());
      m.session_timeout_ms = fm->session_timeout_ms();
      m.rebalance_timeout_ms = fm->rebalance_timeout_ms();
      if (fm->topics())
        for (const auto* t : *fm->topics()) m.topics.push_back(state_str(t));
      if (!std::is_sorted(m.topics.begin(), m.topics.end())) return std::nullopt;
      const std::string id = m.id;
      if (!s.members.emplace(id, std::move(m)).second) return std::nullopt;
    }
  if (g->owners())
    for (const auto* fo : *g->owners()) {
      PartitionOwner o{state_str(fo->member()), fo->since()};
      if (!s.members.contains(o.member)) return std::nullopt;
      s.owners[{state_str(fo->topic()), fo->partition()}] = std::move(o);
    }
  return s;
}

// Earlier builds' encoding (version byte 1, little-endian length-prefixed fields).
std::optional<GroupState> decode_legacy_group_state(std::span<const std::uint8_t> bytes);
}  // namespace

std::optional<GroupState> decode_group_state(std::span<const std::uint8_t> bytes) {
  if (!is_state_record(bytes)) return decode_legacy_group_state(bytes);
  const auto rec = read_state_record(bytes);
  if (!rec) return std::nullopt;
  return read_group_state(rec->as<state::GroupState>());
}

namespace {
std::optional<GroupState> decode_legacy_group_state(std::span<const std::uint8_t> bytes) {
  Reader r(bytes);
  GroupState s;
  std::uint8_t v;
  std::uint32_t n;
  if (!r.u8(v) || v != kVersion || !r.str(s.name) || !r.i32(s.generation) || !r.str(s.assignor) || !r.count(n, 20))
    return std::nullopt;
  for (std::uint32_t i = 0; i < n; ++i) {
    GroupMember m;
    std::uint32_t nt;
    if (!r.str(m.id) || !r.str(m.client_id) || !r.i32(m.session_timeout_ms) || !r.i32(m.rebalance_timeout_ms) ||
        !r.count(nt, 4))
      return std::nullopt;
    for (std::uint32_t k = 0; k < nt; ++k) {
      std::string t;
      if (!r.str(t)) return std::nullopt;
      m.topics.push_back(std::move(t));
    }
    if (!std::is_sorted(m.topics.begin(), m.topics.end())) return std::nullopt;
    const std::string id = m.id;
    if (!s.members.emplace(id, std::move(m)).second) return std::nullopt;
  }
  if (!r.count(n, 16)) return std::nullopt;
  for (std::uint32_t i = 0; i < n; ++i) {
    TopicPartitionKey tp;
    PartitionOwner o;
    if (!r.str(tp.first) || !r.i32(tp.second) || !r.str(o.member) || !r.i32(o.since)) return std::nullopt;
    if (!s.members.contains(o.member)) return std::nullopt;
    s.owners[tp] = std::move(o);
  }
  if (!r.done()) return std::nullopt;
  return s;
}
}  // namespace

bool valid_assignor(std::string_view name) {
  return std::find(std::begin(kAssignors), std::end(kAssignors), name) != std::end(kAssignors);
}

bool valid_group_id(std::string_view id) {
  if (id.empty() || id.size() > 255) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return c > ' ' && c < 127; });
}

Assignment compute_target(const GroupState& s, const PartitionCounts& counts) {
  if (s.assignor == "range") return assign_range(s, counts);
  if (s.assignor == "roundrobin") return assign_roundrobin(s, counts);
  return assign_sticky(s, counts);
}

bool grant_free_partitions(GroupState& s, const Assignment& target, const PartitionCounts& counts) {
  bool changed = false;
  for (auto it = s.owners.begin(); it != s.owners.end();) {
    auto c = counts.find(it->first.first);
    if (c == counts.end() || it->first.second >= c->second) {
      it = s.owners.erase(it);
      changed = true;
    } else {
      ++it;
    }
  }
  for (const auto& [tp, member] : target)
    if (!s.owners.contains(tp)) {
      s.owners[tp] = PartitionOwner{member, 0};
      changed = true;
    }
  return changed;
}

bool remove_member(GroupState& s, const std::string& member) {
  if (s.members.erase(member) == 0) return false;
  std::erase_if(s.owners, [&](const auto& kv) { return kv.second.member == member; });
  if (s.members.empty()) s.assignor.clear();
  return true;
}

std::set<TopicPartitionKey> member_view(const GroupState& applied, const GroupState& working, const Assignment& target,
                                        const std::string& id) {
  std::set<TopicPartitionKey> out;
  for (const auto& [tp, o] : applied.owners) {
    if (o.member != id) continue;
    auto w = working.owners.find(tp);
    if (w == working.owners.end() || w->second.member != id) continue;
    auto t = target.find(tp);
    if (t == target.end() || t->second != id) continue;
    out.insert(tp);
  }
  return out;
}

std::set<TopicPartitionKey> revoking(const GroupState& s, const Assignment& target, const std::string& id) {
  std::set<TopicPartitionKey> out;
  for (const auto& [tp, o] : s.owners) {
    if (o.member != id) continue;
    auto t = target.find(tp);
    if (t == target.end() || t->second != id) out.insert(tp);
  }
  return out;
}

void GroupRegistry::apply(GroupState s) {
  std::function<void(const std::string&)> l;
  const std::string name = s.name;
  {
    std::lock_guard lk(mu_);
    // A group with no members and no owners holds nothing (committed offsets live in the
    // partition logs): forget it, so groups that come and go leave no state behind.
    if (s.members.empty() && s.owners.empty()) groups_.erase(name);
    else groups_[name] = std::move(s);
    l = listener_;
  }
  if (l) l(name);
}

void GroupRegistry::apply_command(std::span<const std::uint8_t> body, log_index index) {
  if (is_state_record(body)) {  // a GroupState record: the whole state of one group
    auto st = decode_group_state(body);
    if (!st) {
      spdlog::error("controller entry {}: unreadable or unknown group record, skipped", index.value);
      return;
    }
    apply(std::move(*st));
    return;
  }
  // Earlier builds: "name \n state" after the controller's "group \n".
  const auto nl = std::find(body.begin(), body.end(), std::uint8_t{'\n'});
  auto st = nl == body.end() ? std::nullopt : decode_group_state(body.subspan(static_cast<std::size_t>(nl - body.begin()) + 1));
  if (!st || st->name != std::string(body.begin(), nl)) {
    spdlog::error("controller entry {}: unreadable group state, skipped", index.value);
    return;
  }
  apply(std::move(*st));
}

std::vector<std::vector<std::uint8_t>> GroupRegistry::checkpoint_items() const {
  std::vector<std::vector<std::uint8_t>> out;
  for (const auto& g : all()) out.push_back(encode_group_state(g));
  return out;
}

bool GroupRegistry::restore_checkpoint(const std::vector<std::span<const std::uint8_t>>& items) {
  bool ok = true;
  std::vector<GroupState> groups;
  for (const auto& item : items) {
    auto g = decode_group_state(item);
    if (g) groups.push_back(std::move(*g));
    else ok = false;
  }
  // Exactly the checkpoint's groups (an empty state removes a group).
  std::set<std::string> keep;
  for (const auto& g : groups) keep.insert(g.name);
  for (const auto& g : all())
    if (!keep.contains(g.name)) apply(GroupState{.name = g.name});
  for (auto& g : groups) {
    auto cur = get(g.name);
    if (!cur || !(*cur == g)) apply(std::move(g));
  }
  return ok;
}

std::size_t GroupRegistry::size() const {
  std::lock_guard lk(mu_);
  return groups_.size();
}

std::optional<GroupState> GroupRegistry::get(const std::string& name) const {
  std::lock_guard lk(mu_);
  auto it = groups_.find(name);
  if (it == groups_.end()) return std::nullopt;
  return it->second;
}

std::vector<GroupState> GroupRegistry::all() const {
  std::lock_guard lk(mu_);
  std::vector<GroupState> out;
  for (const auto& [n, s] : groups_) out.push_back(s);
  return out;
}

void GroupRegistry::set_listener(std::function<void(const std::string&)> fn) {
  std::lock_guard lk(mu_);
  listener_ = std::move(fn);
}

std::optional<Status> GroupRegistry::check_commit(const std::string& group, const std::string& member,
                                                                  std::int32_t generation, const std::string& topic,
                                                                  std::int32_t partition) const {
  std::lock_guard lk(mu_);
  auto it = groups_.find(group);
  const GroupState* s = it == groups_.end() ? nullptr : &it->second;
  const std::string tp = topic + "/" + std::to_string(partition);
  if (generation < 0) {
    if (s && !s->members.empty())
      return Status{wire::ErrorCode::unknown_member_id,
                     "group " + group + " has " + std::to_string(s->members.size()) +
                         " active member(s) (consumers that subscribe()): a commit without a member id would race "
                         "them; commit from a member, or stop the members first"};
    return std::nullopt;
  }
  if (!s || generation > s->generation)
    return Status{wire::ErrorCode::coordinator_not_available,
                   "this broker has not yet applied generation " + std::to_string(generation) + " of group " + group +
                       "; retry"};
  auto o = s->owners.find({topic, partition});
  if (o == s->owners.end() || o->second.member != member) {
    const bool known = s->members.contains(member);
    return Status{known ? wire::ErrorCode::illegal_generation : wire::ErrorCode::unknown_member_id,
                   known ? "member " + member + " no longer owns " + tp + " in generation " +
                               std::to_string(s->generation) + " of group " + group +
                               " (it was moved to another member); do not commit it"
                         : "member " + member + " is not in group " + group + " (generation " +
                               std::to_string(s->generation) +
                               "): it left or missed its session timeout; its partitions went to other members, "
                               "which resume from the last committed offsets"};
  }
  return std::nullopt;
}

}  // namespace quorumq::broker
