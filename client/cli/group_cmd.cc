// quorumq group offsets|describe|list|reset|delete
//
// The cluster forgets a consumer group once it has no members (DescribeGroups answers
// group_id_not_found), but the group's committed offsets stay with each partition: offsets and
// describe show them for such a group too ("no members").
#include <charconv>
#include <iostream>
#include <map>
#include <set>

#include "commands.h"
#include "output.h"

namespace quorumq::cli {
namespace {

// What is known of a group: its description (if it has members) and its committed offsets.
struct GroupView {
  std::optional<GroupInfo> info;  // nullopt: no members (the cluster forgot it)
  std::map<TopicPartition, std::int64_t> committed;
  std::vector<TopicPartition> partitions;  // every partition of the subscribed + committed topics
  std::map<TopicPartition, std::int64_t> latest;
  std::vector<std::string> missing_topics;  // committed or subscribed, but no longer exist
};

std::optional<GroupView> load_group(Admin& admin, const std::string& group) {
  GroupView v;
  auto d = admin.describe_group(group);
  if (d) {
    v.info = std::move(*d);
  } else if (d.error().code != make_error_code(BrokerError::group_id_not_found)) {
    fail("cannot describe group '" + group + "'", d.error());
    return std::nullopt;
  }
  auto offs = admin.group_offsets(group);
  if (!offs) {
    fail("cannot read the committed offsets of group '" + group + "'", offs.error());
    return std::nullopt;
  }
  std::set<std::string> topics;
  for (const auto& o : *offs)
    if (o.committed >= 0) {
      v.committed[{o.topic, o.partition}] = o.committed;
      topics.insert(o.topic);
    }
  if (v.info)
    for (const auto& m : v.info->members) topics.insert(m.topics.begin(), m.topics.end());
  for (const auto& t : topics) {
    auto td = admin.describe_topic(t);
    if (!td) {
      v.missing_topics.push_back(t);
      continue;
    }
    for (const auto& p : td->partitions) v.partitions.push_back({t, p.partition});
  }
  if (!v.partitions.empty()) {
    if (auto l = admin.list_offsets(v.partitions, OffsetSpec::latest))
      for (const auto& o : *l) v.latest[{o.topic, o.partition}] = o.offset;
    else
      std::cerr << "warning: cannot read the latest offsets, lag unknown: " << l.error().to_string() << "\n";
  }
  return v;
}

std::optional<std::int64_t> find(const std::map<TopicPartition, std::int64_t>& m, const TopicPartition& tp) {
  auto it = m.find(tp);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

std::optional<std::int64_t> lag_of(std::optional<std::int64_t> committed, std::optional<std::int64_t> latest) {
  if (!committed || !latest) return std::nullopt;
  return std::max<std::int64_t>(0, *latest - *committed);
}

std::string or_dash(std::optional<std::int64_t> v) { return v ? std::to_string(*v) : "-"; }

const char* kNoCommitNote =
    "note: committed '-': the group has no committed offset for this partition yet; a consumer of the group "
    "starts it at its reset policy (latest, or earliest with --from-beginning) and commits that position at once";
const char* kNoMembers = "no members (the cluster forgets a group when its last member leaves; its committed offsets stay)";

void print_missing(const GroupView& v) {
  for (const auto& t : v.missing_topics)
    std::cerr << "warning: topic '" << t << "' of this group does not exist (any more)\n";
}

}  // namespace

int group_offsets(const Global& g, const std::string& group) {
  auto admin = make_admin(g);
  if (!admin) return 2;
  auto v = load_group(*admin, group);
  if (!v) return 1;
  print_missing(*v);
  bool uncommitted = false;
  if (!g.json) {
    std::cout << "group " << group << ": "
              << (v->info ? std::to_string(v->info->members.size()) + " member(s), state " + v->info->state
                          : std::string(kNoMembers))
              << "\n";
    std::cout << "topic\tpartition\tcommitted\tlatest\tlag\n";
  }
  for (const auto& tp : v->partitions) {
    const auto c = find(v->committed, tp);
    const auto l = find(v->latest, tp);
    uncommitted |= !c;
    if (g.json)
      std::cout << dump({{"group", json_string(group)},
                         {"topic", json_string(tp.topic)},
                         {"partition", tp.partition},
                         {"committed", json_opt(c)},
                         {"latest", json_opt(l)},
                         {"lag", json_opt(lag_of(c, l))}})
                << "\n";
    else
      std::cout << tp.topic << "\t" << tp.partition << "\t" << or_dash(c) << "\t" << or_dash(l) << "\t"
                << or_dash(lag_of(c, l)) << "\n";
  }
  if (!g.json && uncommitted) std::cout << kNoCommitNote << "\n";
  if (!g.json && v->partitions.empty())
    std::cout << "note: the group has no committed offsets and no members subscribed to a topic\n";
  return 0;
}

int group_describe(const Global& g, const std::string& group) {
  auto admin = make_admin(g);
  if (!admin) return 2;
  auto v = load_group(*admin, group);
  if (!v) return 1;
  print_missing(*v);
  // Every partition of the subscribed topics, with its owner (or the target it is moving to),
  // the committed offset and the lag behind the latest offset.
  std::map<TopicPartition, std::string> owner, moving_to;
  if (v->info)
    for (const auto& m : v->info->members) {
      for (const auto& tp : m.assignment) owner[tp] = m.member_id;
      for (const auto& tp : m.target) moving_to[tp] = m.member_id;
    }
  Json rows = Json::array();
  bool uncommitted = false;
  if (!g.json) {
    if (v->info)
      std::cout << "group " << group << "  state " << v->info->state << "  generation " << v->info->generation
                << "  assignor " << (v->info->assignor.empty() ? "-" : v->info->assignor) << "  coordinator "
                << v->info->coordinator << "  members " << v->info->members.size() << "\n";
    else
      std::cout << "group " << group << "  " << kNoMembers << "\n";
    std::cout << "topic\tpartition\tmember\tcommitted\tlatest\tlag\n";
  }
  for (const auto& tp : v->partitions) {
    auto o = owner.find(tp);
    std::string who = o == owner.end() ? "-" : o->second;
    if (auto t = moving_to.find(tp); t != moving_to.end() && t->second != who) who += " -> " + t->second;
    const auto c = find(v->committed, tp);
    const auto l = find(v->latest, tp);
    uncommitted |= !c;
    if (g.json)
      rows.push_back({{"topic", json_string(tp.topic)},
                      {"partition", tp.partition},
                      {"member", json_string(who)},
                      {"committed", json_opt(c)},
                      {"latest", json_opt(l)},
                      {"lag", json_opt(lag_of(c, l))}});
    else
      std::cout << tp.topic << "\t" << tp.partition << "\t" << who << "\t" << or_dash(c) << "\t" << or_dash(l) << "\t"
                << or_dash(lag_of(c, l)) << "\n";
  }
  if (g.json) {
    Json o;
    o["group"] = json_string(group);
    if (v->info) {
      Json members = Json::array();
      for (const auto& m : v->info->members) {
        Json topics = Json::array();
        for (const auto& t : m.topics) topics.push_back(json_string(t));
        members.push_back({{"member_id", json_string(m.member_id)},
                           {"client_id", json_string(m.client_id)},
                           {"topics", std::move(topics)}});
      }
      o["state"] = json_string(v->info->state);
      o["generation"] = v->info->generation;
      o["assignor"] = json_string(v->info->assignor);
      o["coordinator"] = v->info->coordinator;
      o["members"] = std::move(members);
    } else {
      o["state"] = "no members";
      o["members"] = Json::array();
    }
    o["partitions"] = std::move(rows);
    std::cout << dump(o) << "\n";
  } else if (uncommitted) {
    std::cout << kNoCommitNote << "\n";
  }
  return 0;
}

int group_list(const Global& g) {
  auto admin = make_admin(g);
  if (!admin) return 2;
  auto groups = admin->list_groups();
  if (!groups) {
    fail("cannot list groups", groups.error());
    return 1;
  }
  if (!g.json) std::cout << "group\tstate\tgeneration\tassignor\tmembers\n";
  for (const auto& d : *groups) {
    if (g.json)
      std::cout << dump({{"group", json_string(d.group_id)},
                         {"state", json_string(d.state)},
                         {"generation", d.generation},
                         {"assignor", json_string(d.assignor)},
                         {"members", static_cast<std::int64_t>(d.members.size())}})
                << "\n";
    else
      std::cout << d.group_id << "\t" << d.state << "\t" << d.generation << "\t"
                << (d.assignor.empty() ? "-" : d.assignor) << "\t" << d.members.size() << "\n";
  }
  if (!g.json && groups->empty())
    std::cerr << "note: no group has members now (groups without members are forgotten; `quorumq group offsets G` "
                 "still shows a group's committed offsets)\n";
  return 0;
}

int group_reset(const Global& g, const GroupResetOptions& o) {
  // --to: earliest | latest | OFFSET | timestamp:MS
  OffsetSpec spec = OffsetSpec::latest;
  std::int64_t value = -1;
  bool absolute = false;
  auto parse = [](std::string_view s, std::int64_t& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return !s.empty() && ec == std::errc{} && p == s.data() + s.size() && out >= 0;
  };
  if (o.to == "earliest") {
    spec = OffsetSpec::earliest;
  } else if (o.to == "latest") {
    spec = OffsetSpec::latest;
  } else if (o.to.starts_with("timestamp:")) {
    spec = OffsetSpec::timestamp;
    if (!parse(std::string_view(o.to).substr(10), value)) {
      std::cerr << "error: --to " << o.to << ": give timestamp:MS with MS milliseconds since the epoch\n";
      return 2;
    }
  } else if (parse(o.to, value)) {
    absolute = true;
  } else {
    std::cerr << "error: --to " << o.to << ": use earliest, latest, an offset (>= 0) or timestamp:MS\n";
    return 2;
  }
  auto admin = make_admin(g);
  if (!admin) return 2;
  auto td = admin->describe_topic(o.topic);
  if (!td) {
    fail("cannot reset group '" + o.group + "'", td.error());
    return 1;
  }
  std::vector<TopicPartition> tps;
  for (const auto& p : td->partitions)
    if (o.partitions.empty() || std::find(o.partitions.begin(), o.partitions.end(), p.partition) != o.partitions.end())
      tps.push_back({o.topic, p.partition});
  for (const auto p : o.partitions)
    if (p < 0 || static_cast<std::size_t>(p) >= td->partitions.size()) {
      std::cerr << "error: topic " << o.topic << " has " << td->partitions.size() << " partitions; --partition " << p
                << " does not exist\n";
      return 2;
    }
  auto earliest = admin->list_offsets(tps, OffsetSpec::earliest);
  auto latest = admin->list_offsets(tps, OffsetSpec::latest);
  if (!earliest || !latest) {
    fail("cannot read the partitions' offsets", earliest ? latest.error() : earliest.error());
    return 1;
  }
  std::map<TopicPartition, std::int64_t> lo, hi, target;
  for (const auto& x : *earliest) lo[{x.topic, x.partition}] = x.offset;
  for (const auto& x : *latest) hi[{x.topic, x.partition}] = x.offset;
  if (absolute) {
    for (const auto& tp : tps) target[tp] = std::clamp(value, lo[tp], std::max(lo[tp], hi[tp]));
  } else {
    auto r = admin->list_offsets(tps, spec, value);
    if (!r) {
      fail("cannot look up the offsets to reset to", r.error());
      return 1;
    }
    for (const auto& x : *r) {
      const TopicPartition tp{x.topic, x.partition};
      // No message at or after the timestamp: the end (nothing older is read again).
      target[tp] = x.offset < 0 ? hi[tp] : x.offset;
    }
  }
  std::vector<TopicPartitionOffset> offs;
  for (const auto& [tp, off] : target) offs.push_back({tp.topic, tp.partition, off});
  if (auto r = admin->alter_group_offsets(o.group, offs); !r) {
    const Error& e = r.error();
    if (e.code == make_error_code(BrokerError::group_not_empty))
      std::cerr << "error: cannot reset group '" << o.group
                << "': the group has members: stop the group's consumers first (or wait for their session timeout), "
                   "then run this again\n";
    else
      fail("cannot reset group '" + o.group + "'", e);
    return 1;
  }
  if (!g.json) std::cout << "topic\tpartition\tnew_offset\n";
  for (const auto& x : offs) {
    if (g.json)
      std::cout << dump({{"group", json_string(o.group)},
                         {"topic", json_string(x.topic)},
                         {"partition", x.partition},
                         {"new_offset", x.offset}})
                << "\n";
    else
      std::cout << x.topic << "\t" << x.partition << "\t" << x.offset << "\n";
    if (absolute && x.offset != value)
      std::cerr << "note: partition " << x.partition << " holds offsets " << lo[{x.topic, x.partition}] << ".."
                << hi[{x.topic, x.partition}] << ": reset to " << x.offset << " instead of " << value << "\n";
  }
  return 0;
}

int group_delete(const Global& g, const std::string& group) {
  auto admin = make_admin(g);
  if (!admin) return 2;
  auto offs = admin->group_offsets(group);
  if (!offs) {
    fail("cannot read the committed offsets of group '" + group + "'", offs.error());
    return 1;
  }
  std::vector<TopicPartition> tps;
  for (const auto& o : *offs)
    if (o.committed >= 0) tps.push_back({o.topic, o.partition});
  if (tps.empty()) {
    auto d = admin->describe_group(group);
    if (d && !d->members.empty()) {
      std::cerr << "error: cannot delete group '" << group << "': it has " << d->members.size()
                << " member(s): stop the group's consumers first (or wait for their session timeout)\n";
      return 1;
    }
    std::cerr << "group '" << group << "' has no members and no committed offsets: nothing to delete\n";
    if (g.json) std::cout << dump({{"deleted", json_string(group)}, {"partitions", 0}}) << "\n";
    return 0;
  }
  if (auto r = admin->delete_group_offsets(group, tps); !r) {
    const Error& e = r.error();
    if (e.code == make_error_code(BrokerError::group_not_empty))
      std::cerr << "error: cannot delete group '" << group
                << "': the group has members: stop the group's consumers first (or wait for their session timeout)\n";
    else
      fail("cannot delete group '" + group + "'", e);
    return 1;
  }
  if (g.json)
    std::cout << dump({{"deleted", json_string(group)}, {"partitions", static_cast<std::int64_t>(tps.size())}})
              << "\n";
  else
    std::cout << "deleted group " << group << " (its committed offsets of " << tps.size() << " partitions)\n";
  return 0;
}

}  // namespace quorumq::cli
