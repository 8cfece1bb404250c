// A consumer process for crash tests: prints "M <partition> <offset>" per message. Every N
// messages it commits synchronously: first "P <partition> <next offset>" per partition (the
// commit it is about to make, flushed before the call), then, once commit() returned, "C ..."
// lines and "S" (flushed). A parent that saw "S" knows that commit is durable; one that saw only
// the P lines knows the consumer may or may not have committed it before it died.
// Usage: consumer_child BOOTSTRAP TOPIC GROUP COMMIT_EVERY
#include <cstdio>
#include <cstdlib>
#include <map>

#include "quorumq/consumer.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s BOOTSTRAP TOPIC GROUP COMMIT_EVERY\n", argv[0]);
    return 2;
  }
  quorumq::ConsumerConfig c;
  c.bootstrap = argv[1];
  c.group_id = argv[3];
  c.auto_offset_reset = quorumq::OffsetReset::earliest;
  // A killed child's group membership holds its partitions until the coordinator expires it;
  // keep that short so the next child (same group) takes over well within the parent's idle wait.
  c.session_timeout_ms = 1500;
  c.heartbeat_interval_ms = 500;
  const long every = std::atol(argv[4]);
  auto consumer = quorumq::Consumer::create(c);
  if (!consumer) {
    std::fprintf(stderr, "consumer: %s\n", consumer.error().message.c_str());
    return 1;
  }
  (*consumer)->subscribe({argv[2]});
  std::map<std::int32_t, std::int64_t> next;
  long since_commit = 0;
  for (;;) {
    auto batch = (*consumer)->poll(std::chrono::milliseconds(500));
    if (!batch) continue;
    for (const auto& m : *batch) {
      std::printf("M %d %lld\n", m.partition, static_cast<long long>(m.offset));
      next[m.partition] = m.offset + 1;
      if (++since_commit == every) {
        since_commit = 0;
        for (const auto& [p, o] : next) std::printf("P %d %lld\n", p, static_cast<long long>(o));
        std::fflush(stdout);
        if (auto r = (*consumer)->commit(); !r) {
          std::fprintf(stderr, "commit failed: %s\n", r.error().message.c_str());
          continue;
        }
        for (const auto& [p, o] : next) std::printf("C %d %lld\n", p, static_cast<long long>(o));
        std::printf("S\n");
        std::fflush(stdout);
      }
    }
    std::fflush(stdout);
  }
}
