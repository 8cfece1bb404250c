// quorumq consume TOPIC: print messages, as a member of a group (--group) or without one.
//
// With --group: a group member (partitions shared with the group's other members). After each
// printed batch it flushes stdout, then commits exactly what it printed (a crash in between
// repeats, never skips); a partition it never printed from keeps the position the SDK
// committed when it resolved it (committed offset, or the reset policy), so the group never
// skips what is produced there later.
// Without --group: --partition P (default all) from --offset beginning|end|N|-N; nothing is
// committed (kcat without -G).
#include <algorithm>
#include <charconv>
#include <chrono>
#include <iostream>
#include <map>
#include <set>

#include "commands.h"
#include "output.h"

namespace quorumq::cli {
namespace {

struct StartOffset {
  enum Kind { beginning, end, absolute, from_end } kind = beginning;
  std::int64_t n = 0;
};

std::optional<StartOffset> parse_offset(const std::string& s) {
  if (s == "beginning" || s == "earliest") return StartOffset{StartOffset::beginning, 0};
  if (s == "end" || s == "latest") return StartOffset{StartOffset::end, 0};
  const bool neg = !s.empty() && s[0] == '-';
  std::int64_t v = 0;
  const char* b = s.data() + (neg ? 1 : 0);
  auto [p, ec] = std::from_chars(b, s.data() + s.size(), v);
  if (b == s.data() + s.size() || ec != std::errc{} || p != s.data() + s.size() || v < 0) return std::nullopt;
  return neg ? StartOffset{StartOffset::from_end, v} : StartOffset{StartOffset::absolute, v};
}

}  // namespace

int consume(const Global& g, const ConsumeOptions& o) {
  std::optional<StartOffset> start;
  if (o.offset) {
    start = parse_offset(*o.offset);
    if (!start) {
      std::cerr << "error: --offset " << *o.offset
                << ": use beginning, end, an offset N (>= 0) or -N (N messages before the end)\n";
      return 2;
    }
  }
  const bool grouped = !o.group.empty();
  if (grouped && !o.partitions.empty()) {
    std::cerr << "error: --partition reads without a group; the members of a group share its partitions (drop "
                 "--group to read chosen partitions)\n";
    return 2;
  }
  if (grouped && start && (start->kind == StartOffset::absolute || start->kind == StartOffset::from_end)) {
    std::cerr << "error: with --group, the group's committed offsets decide where to start; move them with `quorumq "
                 "group reset "
              << o.group << " --topic " << o.topic << " --to OFFSET` (group stopped), or drop --group\n";
    return 2;
  }
  std::optional<RecordFormat> format;
  {
    std::string fmt = o.format ? *o.format : o.print_offsets ? "%p\\t%o\\t%v\\n" : "%v\\n";
    std::string error;
    format = RecordFormat::parse(fmt, error);
    if (!format) {
      std::cerr << "error: " << error << "\n";
      return 2;
    }
  }

  ConsumerConfig c;
  apply_global(c, g);
  c.group_id = o.group;
  const bool earliest = o.from_beginning || (start && start->kind == StartOffset::beginning);
  c.auto_offset_reset = earliest || !grouped ? OffsetReset::earliest : OffsetReset::latest;
  c.enable_auto_commit = false;
  c.max_poll_records = 5000;
  if (o.max_messages > 0 && o.max_messages < c.max_poll_records) c.max_poll_records = o.max_messages;
  if (o.session_timeout_ms) {
    c.session_timeout_ms = *o.session_timeout_ms;
    c.heartbeat_interval_ms = std::max<std::uint32_t>(1, std::min<std::uint32_t>(1000, *o.session_timeout_ms / 3));
  }
  auto created = Consumer::create(c);
  if (!created) {
    fail("bad configuration", created.error());
    return 2;
  }
  auto& consumer = **created;
  std::unique_ptr<Admin> admin;
  if (!grouped || o.exit_at_end) {
    admin = make_admin(g);
    if (!admin) return 2;
  }
  install_stop_handlers();
  std::ios::sync_with_stdio(false);

  // --exit-at-end: the end offset of each partition read, when it was first read.
  std::map<TopicPartition, std::int64_t> ends;
  auto learn_ends = [&](const std::vector<TopicPartition>& tps) -> bool {
    std::vector<TopicPartition> unknown;
    for (const auto& tp : tps)
      if (!ends.contains(tp)) unknown.push_back(tp);
    if (unknown.empty()) return true;
    auto l = admin->list_offsets(unknown, OffsetSpec::latest);
    if (!l) {
      fail("cannot read the end offsets of '" + o.topic + "'", l.error());
      return false;
    }
    for (const auto& x : *l) ends[{x.topic, x.partition}] = x.offset;
    return true;
  };

  std::map<TopicPartition, std::int64_t> next;  // printed, not yet committed (group mode)
  auto commit_printed = [&]() -> bool {
    if (!grouped || next.empty()) return true;
    std::vector<TopicPartitionOffset> offs;
    for (auto& [tp, off] : next) offs.push_back({tp.topic, tp.partition, off});
    if (auto r = consumer.commit(offs); !r) {
      fail("cannot commit offsets of group '" + o.group + "'", r.error());
      return false;
    }
    next.clear();
    return true;
  };

  if (grouped) {
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
      for (const auto& tp : tps) next.erase(tp);
    };
    consumer.subscribe({o.topic}, listener);
  } else {
    auto td = admin->describe_topic(o.topic);
    if (!td) {
      fail("cannot consume from '" + o.topic + "'", td.error());
      return 1;
    }
    std::vector<TopicPartition> tps;
    for (const auto p : o.partitions) {
      if (p < 0 || static_cast<std::size_t>(p) >= td->partitions.size()) {
        std::cerr << "error: topic " << o.topic << " has " << td->partitions.size() << " partitions (0.."
                  << td->partitions.size() - 1 << "); --partition " << p << " does not exist\n";
        return 2;
      }
      tps.push_back({o.topic, p});
    }
    if (tps.empty())
      for (const auto& p : td->partitions) tps.push_back({o.topic, p.partition});
    auto lo = admin->list_offsets(tps, OffsetSpec::earliest);
    auto hi = admin->list_offsets(tps, OffsetSpec::latest);
    if (!lo || !hi) {
      fail("cannot read the offsets of '" + o.topic + "'", lo ? hi.error() : lo.error());
      return 1;
    }
    std::map<TopicPartition, std::int64_t> first, last;
    for (const auto& x : *lo) first[{x.topic, x.partition}] = x.offset;
    for (const auto& x : *hi) last[{x.topic, x.partition}] = x.offset;
    consumer.assign(tps);
    const StartOffset s = start ? *start : StartOffset{};
    for (const auto& tp : tps) {
      const std::int64_t a = first[tp], b = std::max(first[tp], last[tp]);
      std::int64_t at = a;
      switch (s.kind) {
        case StartOffset::beginning: at = a; break;
        case StartOffset::end: at = b; break;
        case StartOffset::absolute: at = std::clamp(s.n, a, b); break;
        case StartOffset::from_end: at = std::max(a, b - s.n); break;
      }
      if (auto r = consumer.seek(tp, at); !r) {
        fail("cannot start " + tp.topic + "/" + std::to_string(tp.partition), r.error());
        return 1;
      }
      ends[tp] = last[tp];
    }
  }

  // Whether every partition read has reached its end (--exit-at-end).
  auto at_end = [&]() -> std::optional<bool> {
    const auto assigned = consumer.assignment();
    if (assigned.empty()) return false;
    if (!learn_ends(assigned)) return std::nullopt;
    for (const auto& tp : assigned) {
      auto n = next.find(tp);
      std::int64_t pos = -1;
      if (n != next.end()) {
        pos = n->second;
      } else {
        auto p = consumer.position(tp);
        if (!p) return false;  // not yet known (rebalancing): not at its end
        pos = *p;
      }
      if (pos < ends[tp]) return false;
    }
    return true;
  };

  const auto t0 = std::chrono::steady_clock::now();
  constexpr int kCommitIntervalMs = 100;
  auto next_commit = t0;
  std::uint64_t printed = 0;
  std::string out;
  int rc = 0;
  while (!stop_requested()) {
    if (o.max_messages > 0 && printed >= o.max_messages) break;
    if (o.exit_at_end) {
      auto done = at_end();
      if (!done) {
        rc = 1;
        break;
      }
      if (*done) break;
    }
    auto wait = std::chrono::milliseconds(200);
    if (o.timeout_ms) {
      const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
      const auto limit = std::chrono::milliseconds(*o.timeout_ms);
      if (elapsed >= limit) break;
      wait = std::min(wait, limit - elapsed);
    }
    auto r = consumer.poll(wait);
    if (!r) {
      if (stop_requested()) break;
      fail("cannot consume from '" + o.topic + "'", r.error());
      rc = 1;
      break;
    }
    for (const auto& m : *r) {
      if (o.max_messages > 0 && printed >= o.max_messages) break;
      if (g.json) {
        out += message_json(m);
        out += '\n';
      } else {
        format->append(out, m);
      }
      next[{m.topic, m.partition}] = m.offset + 1;
      ++printed;
    }
    if (out.empty()) continue;
    // Printed (and flushed) first, committed second: a crash in between repeats, never skips.
    std::cout << out << std::flush;
    out.clear();
    if (!grouped) continue;
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

}  // namespace quorumq::cli
