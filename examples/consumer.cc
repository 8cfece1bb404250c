// Reads a topic as member of a group, printing each message, committing after each poll.
//   example_consumer [bootstrap] [topic] [group] [max_messages]
#include <cstdio>
#include <cstdlib>
#include <string>

#include <quorumq/quorumq.h>

int main(int argc, char** argv) {
  quorumq::ConsumerConfig config;
  config.bootstrap = argc > 1 ? argv[1] : "127.0.0.1:9092";
  const std::string topic = argc > 2 ? argv[2] : "example";
  config.group_id = argc > 3 ? argv[3] : "example-group";
  const long max = argc > 4 ? std::atol(argv[4]) : 10;
  config.auto_offset_reset = quorumq::OffsetReset::earliest;

  auto consumer = quorumq::Consumer::create(config);
  if (!consumer) {
    std::fprintf(stderr, "bad config: %s\n", consumer.error().to_string().c_str());
    return 2;
  }
  auto& c = **consumer;
  c.subscribe({topic});
  long seen = 0;
  int idle_polls = 0;
  while (seen < max && idle_polls < 50) {
    auto messages = c.poll(std::chrono::milliseconds(200));
    if (!messages) {
      std::fprintf(stderr, "poll failed: %s\n", messages.error().to_string().c_str());
      return 1;
    }
    idle_polls = messages->empty() ? idle_polls + 1 : 0;
    for (const auto& m : *messages) {
      std::printf("%s/%d@%lld key=%s value=%s\n", m.topic.c_str(), m.partition, static_cast<long long>(m.offset),
                  m.key ? m.key->c_str() : "(none)", m.value.c_str());
      ++seen;
    }
    if (!messages->empty())
      if (auto r = c.commit(); !r) std::fprintf(stderr, "commit failed: %s\n", r.error().to_string().c_str());
  }
  c.close();
  std::printf("%ld messages\n", seen);
  return 0;
}
