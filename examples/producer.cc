// Sends N keyed messages to a topic and prints where the last one landed.
//   example_producer [bootstrap] [topic] [count]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <quorumq/quorumq.h>

int main(int argc, char** argv) {
  quorumq::ProducerConfig config;
  config.bootstrap = argc > 1 ? argv[1] : "127.0.0.1:9092";
  const std::string topic = argc > 2 ? argv[2] : "example";
  const int count = argc > 3 ? std::atoi(argv[3]) : 10;
  config.acks = quorumq::Acks::quorum;

  auto producer = quorumq::Producer::create(config);
  if (!producer) {
    std::fprintf(stderr, "bad config: %s\n", producer.error().to_string().c_str());
    return 2;
  }
  std::vector<std::future<quorumq::SendResult>> results;
  for (int i = 0; i < count; ++i) {
    const std::string key = "user-" + std::to_string(i % 10);
    results.push_back((*producer)->send(topic, key, "message " + std::to_string(i), {{"source", "example"}}));
  }
  int failed = 0;
  for (auto& f : results) {
    auto r = f.get();
    if (!r) {
      if (++failed == 1) std::fprintf(stderr, "send failed: %s\n", r.error().to_string().c_str());
    } else if (&f == &results.back()) {
      std::printf("last message: partition %d offset %lld\n", r->partition, static_cast<long long>(r->offset));
    }
  }
  (*producer)->close();
  std::printf("%d sent, %d failed\n", count - failed, failed);
  return failed == 0 ? 0 : 1;
}
