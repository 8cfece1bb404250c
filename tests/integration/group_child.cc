// A consumer-group member for the group tests (issue 6). It subscribes TOPIC in GROUP and prints,
// flushed, one line per event (times are CLOCK_MONOTONIC milliseconds, comparable across processes):
//   A <ms> <p,p,...>   partitions assigned      R <ms> <p,p,...>  revoked (after committing them)
//   L <ms> <p,p,...>   lost (no commit)         M <ms> <p> <off>  a message
//   C <ms> <p> <next>  a commit the broker acknowledged (next offset to read); ms: when it began
//   E <text>           an error
// After every poll it commits what it read (sync), so what it consumed but did not commit is
// at most one poll's worth, plus whatever it read after its last C line for a partition.
// Usage: group_child BOOTSTRAP TOPIC GROUP SESSION_TIMEOUT_MS
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "quorumq/consumer.h"

namespace {
long long now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}
std::string list(const std::vector<quorumq::TopicPartition>& tps) {
  std::string s;
  for (const auto& tp : tps) s += (s.empty() ? "" : ",") + std::to_string(tp.partition);
  return s.empty() ? "-" : s;
}

std::unique_ptr<quorumq::Consumer> g_consumer;
std::string g_topic;
std::map<std::int32_t, std::int64_t> g_next;  // read, not yet committed

void commit(const std::vector<quorumq::TopicPartition>* only) {
  std::vector<quorumq::TopicPartitionOffset> offs;
  for (const auto& [p, o] : g_next) {
    bool want = !only;
    if (only)
      for (const auto& tp : *only) want = want || tp.partition == p;
    if (want) offs.push_back({g_topic, p, o});
  }
  if (offs.empty()) return;
  const long long began = now_ms();
  if (auto r = g_consumer->commit(offs); !r) {
    std::printf("E commit: %s\n", r.error().message.c_str());
    return;
  }
  for (const auto& o : offs) {
    std::printf("C %lld %d %lld\n", began, o.partition, static_cast<long long>(o.offset));
    g_next.erase(o.partition);
  }
}

struct Listener final : quorumq::RebalanceListener {
  void on_assigned(const std::vector<quorumq::TopicPartition>& tps) override {
    std::printf("A %lld %s\n", now_ms(), list(tps).c_str());
    std::fflush(stdout);
  }
  void on_revoked(const std::vector<quorumq::TopicPartition>& tps) override {
    commit(&tps);
    for (const auto& tp : tps) g_next.erase(tp.partition);
    std::printf("R %lld %s\n", now_ms(), list(tps).c_str());
    std::fflush(stdout);
  }
  void on_lost(const std::vector<quorumq::TopicPartition>& tps) override {
    for (const auto& tp : tps) g_next.erase(tp.partition);
    std::printf("L %lld %s\n", now_ms(), list(tps).c_str());
    std::fflush(stdout);
  }
};
}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s BOOTSTRAP TOPIC GROUP SESSION_TIMEOUT_MS\n", argv[0]);
    return 2;
  }
  quorumq::ConsumerConfig c;
  c.bootstrap = argv[1];
  c.group_id = argv[3];
  c.client_id = "group-child";
  c.auto_offset_reset = quorumq::OffsetReset::earliest;
  c.session_timeout_ms = static_cast<std::uint32_t>(std::atoi(argv[4]));
  c.heartbeat_interval_ms = c.session_timeout_ms / 3;
  c.max_poll_records = 200;
  auto consumer = quorumq::Consumer::create(c);
  if (!consumer) {
    std::fprintf(stderr, "consumer: %s\n", consumer.error().message.c_str());
    return 1;
  }
  g_consumer = std::move(*consumer);
  g_topic = argv[2];
  g_consumer->subscribe({argv[2]}, std::make_shared<Listener>());
  for (;;) {
    auto batch = g_consumer->poll(std::chrono::milliseconds(200));
    if (!batch) {
      std::printf("E poll: %s\n", batch.error().message.c_str());
      std::fflush(stdout);
      continue;
    }
    const long long t = now_ms();
    for (const auto& m : *batch) {
      std::printf("M %lld %d %lld\n", t, m.partition, static_cast<long long>(m.offset));
      g_next[m.partition] = m.offset + 1;
    }
    // Printed before committed: a kill in between repeats messages, never hides one.
    std::fflush(stdout);
    if (!batch->empty()) commit(nullptr);
    std::fflush(stdout);
  }
}
