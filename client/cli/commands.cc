#include "commands.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <deque>
#include <future>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

namespace quorumq::cli {
namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

void fail(const std::string& what, const Error& e) { std::cerr << "error: " << what << ": " << e.to_string() << "\n"; }

template <typename C>
void apply_global(C& c, const Global& g) {
  c.bootstrap = g.bootstrap;
  c.client_id = "quorumq-cli";
  c.connect_timeout_ms = g.connect_timeout_ms;
}

std::unique_ptr<Admin> make_admin(const Global& g) {
  AdminConfig c;
  apply_global(c, g);
  auto a = Admin::create(c);
  if (!a) {
    fail("bad configuration", a.error());
    return nullptr;
  }
  return std::move(*a);
}

std::string join(const std::vector<std::int32_t>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s.empty() ? "-" : s;
}

}  // namespace

int topic_create(const Global& g, const std::string& name, std::int32_t partitions, std::int16_t replicas,
                 const std::vector<std::string>& configs) {
  std::map<std::string, std::string> cfg;
  for (const auto& kv : configs) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "error: --config '" << kv << "' must be key=value\n";
      return 2;
    }
    cfg[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  auto admin = make_admin(g);
  if (!admin) return 2;
  if (auto e = admin->create_topic(name, partitions, replicas, cfg)) {
    fail("cannot create topic", *e);
    return 1;
  }
  std::cout << "created topic " << name << " with " << partitions << " partitions and " << replicas
            << " replicas\n";
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
  for (const auto& t : *r) std::cout << t.name << "\tpartitions=" << t.partitions << "\treplicas=" << t.replication_factor << "\n";
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
  std::cout << "topic " << r->name << "\tpartitions=" << r->partitions.size() << "\n";
  std::cout << "partition\tleader\treplicas\tisr\thigh_watermark\tlog_start_offset\n";
  for (const auto& p : r->partitions)
    std::cout << p.partition << "\t" << p.leader << "\t" << join(p.replicas) << "\t" << join(p.isr) << "\t"
              << p.high_watermark << "\t" << p.log_start_offset << "\n";
  return 0;
}

int topic_delete(const Global& g, const std::string& name) {
  auto admin = make_admin(g);
  if (!admin) return 2;
  if (auto e = admin->delete_topic(name)) {
    fail("cannot delete topic", *e);
    return 1;
  }
  std::cout << "deleted topic " << name << "\n";
  return 0;
}

int produce(const Global& g, const ProduceOptions& o) {
  ProducerConfig c;
  apply_global(c, g);
  c.acks = o.acks == "none" ? Acks::none : o.acks == "leader" ? Acks::leader : Acks::quorum;
  c.max_block_ms = 30000;
  auto p = Producer::create(c);
  if (!p) {
    fail("bad configuration", p.error());
    return 2;
  }
  auto& producer = **p;
  std::ios::sync_with_stdio(false);
  std::deque<std::future<SendResult>> pending;  // input order
  std::uint64_t line_no = 0, failed = 0, acked = 0;
  std::string out;
  auto report = [&](std::future<SendResult>& f, std::uint64_t n) {
    SendResult r = f.get();
    if (r) {
      ++acked;
      if (o.print_offsets) {
        out += std::to_string(r->partition);
        out += '\t';
        out += std::to_string(r->offset);
        out += '\n';
      }
    } else {
      if (failed < 10) std::cerr << "error: message on input line " << n << " was not acknowledged: " << r.error().to_string() << "\n";
      ++failed;
    }
  };
  std::uint64_t first_pending = 1;
  std::string line;
  while (std::getline(std::cin, line)) {
    ++line_no;
    std::optional<std::string_view> key;
    if (o.key) key = *o.key;
    pending.push_back(producer.send(o.topic, key, line, {}, o.partition));
    // Report completed messages in input order, without waiting.
    while (!pending.empty() && pending.front().wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
      report(pending.front(), first_pending++);
      pending.pop_front();
    }
    if (out.size() > (1 << 16)) {
      std::cout << out;
      out.clear();
    }
  }
  producer.flush();
  while (!pending.empty()) {
    report(pending.front(), first_pending++);
    pending.pop_front();
  }
  std::cout << out << std::flush;
  producer.close();
  if (failed > 0) {
    std::cerr << "error: " << failed << " of " << line_no << " messages were not acknowledged"
              << (failed > 10 ? " (first 10 shown)" : "") << "\n";
    return 1;
  }
  return 0;
}

int consume(const Global& g, const ConsumeOptions& o) {
  ConsumerConfig c;
  apply_global(c, g);
  c.group_id = o.group;
  c.auto_offset_reset = o.from_beginning ? OffsetReset::earliest : OffsetReset::latest;
  c.enable_auto_commit = false;
  c.max_poll_records = 5000;
  if (o.max_messages > 0 && o.max_messages < c.max_poll_records) c.max_poll_records = o.max_messages;
  auto created = Consumer::create(c);
  if (!created) {
    fail("bad configuration", created.error());
    return 2;
  }
  auto& consumer = **created;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::ios::sync_with_stdio(false);
  const auto start = std::chrono::steady_clock::now();
  constexpr int kCommitIntervalMs = 100;
  auto next_commit = start;
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> next;  // printed, not yet committed
  auto commit_printed = [&]() -> bool {
    if (next.empty()) return true;
    std::vector<TopicPartitionOffset> offs;
    for (auto& [tp, off] : next) offs.push_back({tp.first, tp.second, off});
    if (auto e = consumer.commit(offs)) {
      fail("cannot commit offsets of group '" + o.group + "'", *e);
      return false;
    }
    next.clear();
    return true;
  };
  // Partitions moving to another member of the group: commit what was printed first.
  struct OnRebalance final : RebalanceListener {
    std::function<void()> commit;
    std::function<void(const std::vector<TopicPartition>&)> forget;
    void on_assigned(const std::vector<TopicPartition>&) override {}
    void on_revoked(const std::vector<TopicPartition>&) override { commit(); }
    // Already owned by others: what was printed and not committed is printed again there.
    void on_lost(const std::vector<TopicPartition>& tps) override { forget(tps); }
  };
  auto listener = std::make_shared<OnRebalance>();
  listener->commit = [&] { (void)commit_printed(); };
  listener->forget = [&](const std::vector<TopicPartition>& tps) {
    for (const auto& tp : tps) next.erase({tp.topic, tp.partition});
  };
  consumer.subscribe({o.topic}, listener);
  std::uint64_t printed = 0;
  std::string out;
  int rc = 0;
  while (!g_stop) {
    if (o.max_messages > 0 && printed >= o.max_messages) break;
    auto wait = std::chrono::milliseconds(200);
    if (o.timeout_ms) {
      const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
      const auto limit = std::chrono::milliseconds(*o.timeout_ms);
      if (elapsed >= limit) break;
      wait = std::min(wait, limit - elapsed);
    }
    auto r = consumer.poll(wait);
    if (!r) {
      fail("cannot consume from '" + o.topic + "'", r.error());
      rc = 1;
      break;
    }
    if (r->empty()) continue;
    for (const auto& m : *r) {
      if (o.max_messages > 0 && printed >= o.max_messages) break;
      if (o.print_offsets) {
        out += std::to_string(m.partition);
        out += '\t';
        out += std::to_string(m.offset);
        out += '\t';
      }
      out += m.value;
      out += '\n';
      next[{m.topic, m.partition}] = m.offset + 1;
      ++printed;
    }
    // Printed (and flushed) first, committed second: a crash in between repeats, never skips.
    std::cout << out << std::flush;
    out.clear();
    // Commit at most every kCommitIntervalMs while messages stream (each commit is a durable
    // write on the broker), and always before exiting.
    if (std::chrono::steady_clock::now() >= next_commit) {
      if (!commit_printed()) {
        rc = 1;
        break;
      }
      next_commit = std::chrono::steady_clock::now() + std::chrono::milliseconds(kCommitIntervalMs);
    }
  }
  if (rc == 0 && !commit_printed()) rc = 1;
  consumer.close();
  return rc;
}

int group_offsets(const Global& g, const std::string& group) {
  auto admin = make_admin(g);
  if (!admin) return 2;
  auto offs = admin->group_offsets(group);
  if (!offs) {
    fail("cannot read offsets of group '" + group + "'", offs.error());
    return 1;
  }
  if (offs->empty()) {
    std::cerr << "group '" << group << "' has no committed offsets\n";
    return 0;
  }
  std::vector<TopicPartition> tps;
  for (auto& o : *offs) tps.push_back({o.topic, o.partition});
  auto latest = admin->list_offsets(tps, OffsetSpec::latest);
  std::map<TopicPartition, std::int64_t> end;
  if (latest)
    for (auto& l : *latest) end[{l.topic, l.partition}] = l.offset;
  else
    std::cerr << "warning: cannot read the latest offsets, lag unknown: " << latest.error().to_string() << "\n";
  std::cout << "topic\tpartition\tcommitted\tlatest\tlag\n";
  for (auto& o : *offs) {
    auto it = end.find({o.topic, o.partition});
    std::cout << o.topic << "\t" << o.partition << "\t" << o.committed << "\t";
    if (it == end.end()) {
      std::cout << "-\t-\n";
    } else {
      const std::int64_t lag = o.committed >= 0 ? std::max<std::int64_t>(0, it->second - o.committed) : it->second;
      std::cout << it->second << "\t" << lag << "\n";
    }
  }
  return 0;
}

int group_describe(const Global& g, const std::string& group) {
  auto admin = make_admin(g);
  if (!admin) return 2;
  auto d = admin->describe_group(group);
  if (!d) {
    fail("cannot describe group '" + group + "'", d.error());
    return 1;
  }
  std::cout << "group " << d->group_id << "  state " << d->state << "  generation " << d->generation << "  assignor "
            << (d->assignor.empty() ? "-" : d->assignor) << "  coordinator " << d->coordinator << "  members "
            << d->members.size() << "\n";
  // Every partition of the subscribed topics, with its owner (or the target it is moving to),
  // the committed offset and the lag behind the latest offset.
  std::set<std::string> topics;
  std::map<TopicPartition, std::string> owner, moving_to;
  for (const auto& m : d->members) {
    topics.insert(m.topics.begin(), m.topics.end());
    for (const auto& tp : m.assignment) owner[tp] = m.member_id;
    for (const auto& tp : m.target) moving_to[tp] = m.member_id;
  }
  std::vector<TopicPartition> tps;
  for (const auto& t : topics)
    if (auto td = admin->describe_topic(t))
      for (const auto& p : td->partitions) tps.push_back({t, p.partition});
  std::map<TopicPartition, std::int64_t> committed, latest;
  if (auto offs = admin->group_offsets(group))
    for (const auto& o : *offs) committed[{o.topic, o.partition}] = o.committed;
  else
    std::cerr << "warning: cannot read committed offsets: " << offs.error().to_string() << "\n";
  if (!tps.empty()) {
    if (auto l = admin->list_offsets(tps, OffsetSpec::latest))
      for (const auto& o : *l) latest[{o.topic, o.partition}] = o.offset;
    else
      std::cerr << "warning: cannot read the latest offsets, lag unknown: " << l.error().to_string() << "\n";
  }
  std::cout << "topic\tpartition\tmember\tcommitted\tlatest\tlag\n";
  for (const auto& tp : tps) {
    auto o = owner.find(tp);
    std::string who = o == owner.end() ? "-" : o->second;
    if (auto t = moving_to.find(tp); t != moving_to.end() && t->second != who) who += " -> " + t->second;
    auto c = committed.find(tp);
    auto l = latest.find(tp);
    std::cout << tp.topic << "\t" << tp.partition << "\t" << who << "\t" << (c == committed.end() ? -1 : c->second)
              << "\t";
    if (l == latest.end()) {
      std::cout << "-\t-\n";
    } else {
      const std::int64_t base = c == committed.end() ? 0 : c->second;
      std::cout << l->second << "\t" << std::max<std::int64_t>(0, l->second - base) << "\n";
    }
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
  std::cout << "group\tstate\tgeneration\tassignor\tmembers\n";
  for (const auto& d : *groups)
    std::cout << d.group_id << "\t" << d.state << "\t" << d.generation << "\t" << (d.assignor.empty() ? "-" : d.assignor)
              << "\t" << d.members.size() << "\n";
  return 0;
}

}  // namespace quorumq::cli
