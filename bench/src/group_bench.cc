// quorumq-group-bench: how long a consumer-group rebalance takes (issue 6's goal: < 1 s for 10
// members and 100 partitions, < 3 s for 100 members and 1,000 partitions).
//
// M-1 members (real Consumers, each with its own poll thread) form a group on a P-partition
// topic; then, per round, one member joins (or one leaves cleanly with close()) and the clock
// runs until the group has SETTLED as the members themselves see it: every partition owned by
// exactly one member (their assignment()), shares within one of each other, every member
// owning something if it can. That is the end-to-end time from the join/leave call to the last
// member holding its new partitions — heartbeats, assignor, replicated state, revocations
// (with their commits) and grants included.
//
//   quorumq-group-bench --spawn 1 --members 10 --partitions 100 --rounds 5 [--json FILE]
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "json_number.h"
#include "local_cluster.h"
#include "quorumq/quorumq.h"
#include "topic_setup.h"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// One member: a Consumer and the thread that polls it (rebalances are applied inside poll).
class Member {
 public:
  Member(const std::string& bootstrap, const std::string& topic, const std::string& group, const std::string& assignor,
         std::uint32_t session_ms) {
    quorumq::ConsumerConfig c;
    c.bootstrap = bootstrap;
    c.group_id = group;
    c.client_id = "group-bench";
    c.assignor = assignor;
    c.session_timeout_ms = session_ms;
    c.heartbeat_interval_ms = session_ms / 3;
    c.auto_offset_reset = quorumq::OffsetReset::latest;
    auto r = quorumq::Consumer::create(c);
    if (!r) throw std::runtime_error(r.error().message);
    consumer_ = std::move(*r);
    consumer_->subscribe({topic});
    thread_ = std::thread([this] {
      while (!stop_) {
        auto b = consumer_->poll(50ms);
        if (!b && !stop_ && error_count_.fetch_add(1) == 0) {
          std::lock_guard lk(mu_);
          first_error_ = b.error().message;
        }
      }
    });
  }
  ~Member() { close(); }
  void close() {
    if (stop_.exchange(true)) return;
    thread_.join();
    consumer_->close();
  }
  std::vector<quorumq::TopicPartition> assignment() const { return consumer_->assignment(); }
  int errors() const { return error_count_.load(); }
  std::string first_error() const {
    std::lock_guard lk(mu_);
    return first_error_;
  }

 private:
  std::unique_ptr<quorumq::Consumer> consumer_;
  std::atomic<bool> stop_{false};
  std::atomic<int> error_count_{0};
  mutable std::mutex mu_;
  std::string first_error_;
  std::thread thread_;
};

// Settled, as the members see it. `why` says what is missing.
bool settled(const std::vector<std::unique_ptr<Member>>& members, int partitions, std::string& why) {
  std::set<std::int32_t> owned;
  std::size_t lo = SIZE_MAX, hi = 0, total = 0;
  for (const auto& m : members) {
    const auto a = m->assignment();
    total += a.size();
    lo = std::min(lo, a.size());
    hi = std::max(hi, a.size());
    for (const auto& tp : a) owned.insert(tp.partition);
  }
  if (total != owned.size()) return why = "a partition is owned twice", false;
  if (static_cast<int>(owned.size()) != partitions)
    return why = std::to_string(partitions - static_cast<int>(owned.size())) + " partitions unowned", false;
  if (hi - lo > 1) return why = "shares " + std::to_string(lo) + ".." + std::to_string(hi), false;
  return true;
}

struct Stats {
  std::vector<double> ms;
  double min() const { return ms.empty() ? 0 : *std::min_element(ms.begin(), ms.end()); }
  double max() const { return ms.empty() ? 0 : *std::max_element(ms.begin(), ms.end()); }
  double median() const {
    if (ms.empty()) return 0;
    auto v = ms;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"quorumq-group-bench: consumer-group rebalance time (join and leave), measured from the members"};
  app.set_version_flag("--version", "quorumq-group-bench " QUORUMQ_VERSION);
  int spawn = 0, members_n = 10, partitions = 100, rounds = 5, replicas = 0;
  std::string bootstrap, assignor = "sticky", json, broker_bin;
  std::uint32_t session_ms = 10000;
  double timeout_s = 60;
  app.add_option("--spawn", spawn, "Start this many local brokers (else --bootstrap)");
  app.add_option("--bootstrap", bootstrap, "A running cluster");
  app.add_option("--broker-bin", broker_bin, "quorumq-broker to spawn (default: next to this build)");
  app.add_option("--members", members_n, "Group size after a join (>= 2)")->check(CLI::Range(2, 1000));
  app.add_option("--partitions", partitions, "Partitions of the topic")->check(CLI::Range(1, 100000));
  app.add_option("--replicas", replicas, "Replication factor (0: min(3, brokers))");
  app.add_option("--rounds", rounds, "Join + leave rounds")->check(CLI::Range(1, 1000));
  app.add_option("--assignor", assignor, "sticky, range or roundrobin")->check(CLI::IsMember({"sticky", "range", "roundrobin"}));
  app.add_option("--session-timeout-ms", session_ms, "Members' session timeout");
  app.add_option("--timeout-s", timeout_s, "Give up on one rebalance after this long");
  app.add_option("--json", json, "Write the results here");
  CLI11_PARSE(app, argc, argv);
  if (spawn == 0 && bootstrap.empty()) {
    std::cerr << "quorumq-group-bench: give --spawn N or --bootstrap HOST:PORT\n";
    return 2;
  }

  std::unique_ptr<quorumq::bench::LocalCluster> cluster;
  if (spawn) {
    quorumq::bench::ClusterOptions co;
    co.brokers = spawn;
    co.broker_bin = broker_bin;
    cluster = std::make_unique<quorumq::bench::LocalCluster>(co);
    std::printf("spawning %d broker(s) in %s\n", spawn, cluster->dir().c_str());
    if (auto r = cluster->start(60s); !r) {
      std::cerr << "quorumq-group-bench: " << r.error() << "\n";
      return 1;
    }
    bootstrap = cluster->bootstrap();
  }
  const std::string topic = "group-bench-" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000);
  const std::string group = topic + "-g";
  std::printf("creating %s with %d partitions...\n", topic.c_str(), partitions);
  std::fflush(stdout);
  if (auto l = quorumq::bench::setup_topic(bootstrap, topic, partitions, replicas); !l) {
    std::cerr << "quorumq-group-bench: " << l.error() << "\n";
    return 1;
  }

  std::vector<std::unique_ptr<Member>> members;
  auto wait_settled = [&](const char* what) -> std::optional<double> {
    const auto t0 = Clock::now();
    auto next_print = t0 + 1s;
    std::string why;
    while (!settled(members, partitions, why)) {
      const auto now = Clock::now();
      if (now - t0 > std::chrono::duration<double>(timeout_s)) {
        std::printf("  %s: not settled after %.0f s (%s)\n", what, timeout_s, why.c_str());
        return std::nullopt;
      }
      if (now >= next_print) {
        std::printf("  %s: %.1f s, %s\n", what, std::chrono::duration<double>(now - t0).count(), why.c_str());
        std::fflush(stdout);
        next_print = now + 1s;
      }
      std::this_thread::sleep_for(2ms);
    }
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  };

  std::printf("forming the group: %d members, assignor %s\n", members_n - 1, assignor.c_str());
  std::fflush(stdout);
  const auto form_t0 = Clock::now();
  for (int i = 0; i < members_n - 1; ++i)
    members.push_back(std::make_unique<Member>(bootstrap, topic, group, assignor, session_ms));
  auto formed = wait_settled("forming");
  if (!formed) return 1;
  const double form_ms = std::chrono::duration<double, std::milli>(Clock::now() - form_t0).count();
  std::printf("formed in %.0f ms\n", form_ms);

  Stats joins, leaves;
  for (int r = 0; r < rounds; ++r) {
    members.push_back(std::make_unique<Member>(bootstrap, topic, group, assignor, session_ms));
    auto j = wait_settled("join");
    if (!j) return 1;
    joins.ms.push_back(*j);
    // The oldest member leaves cleanly (close(): revoke, commit, leave).
    auto leaving = std::move(members.front());
    members.erase(members.begin());
    const auto t0 = Clock::now();
    leaving->close();
    const double close_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    auto l = wait_settled("leave");
    if (!l) return 1;
    leaves.ms.push_back(*l + close_ms);
    std::printf("round %d/%d: join %.0f ms, leave %.0f ms (close() %.0f ms of it)\n", r + 1, rounds, *j, *l + close_ms,
                close_ms);
    std::fflush(stdout);
  }
  int errors = 0;
  for (auto& m : members) {
    if (m->errors() > 0 && errors == 0) std::printf("first poll error: %s\n", m->first_error().c_str());
    errors += m->errors();
  }
  std::printf("\n%d members, %d partitions, %s: join median %.0f ms (min %.0f, max %.0f); leave median %.0f ms "
              "(min %.0f, max %.0f); poll errors %d\n",
              members_n, partitions, assignor.c_str(), joins.median(), joins.min(), joins.max(), leaves.median(),
              leaves.min(), leaves.max(), errors);
  if (!json.empty()) {
    using quorumq::bench::json_number;
    auto stats = [](const Stats& s) {
      return nlohmann::ordered_json{
          {"median", json_number(s.median())}, {"min", json_number(s.min())}, {"max", json_number(s.max())}};
    };
    const nlohmann::ordered_json doc = {{"members", members_n},
                                        {"partitions", partitions},
                                        {"assignor", assignor},
                                        {"brokers", spawn ? spawn : 0},
                                        {"form_ms", json_number(form_ms)},
                                        {"join_ms", stats(joins)},
                                        {"leave_ms", stats(leaves)},
                                        {"poll_errors", errors}};
    std::ofstream f(json);
    f << doc.dump() << "\n";
  }
  for (auto& m : members) m->close();
  return 0;
}
