// A consumer committing every 1,000 messages is killed with kill -9 and restarted (issue 3):
// it resumes exactly after its last commit — no gap, and nothing before the committed offset
// is delivered again. 100k messages over 2 partitions, real broker and consumer processes.
#include <gtest/gtest.h>
#include <signal.h>
#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <random>
#include <sstream>

#include "harness.h"
#include "quorumq/admin.h"
#include "quorumq/producer.h"

namespace quorumq::test {
namespace {

// The child's stdout, line by line, with a deadline.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv) : process_(spawn_options(argv)) {}
  // The next line, or false once the child has been silent for `idle` (it has nothing more to
  // consume: the topic is drained) or exited.
  bool next_line(std::string& line, std::chrono::milliseconds idle = 3s) {
    for (;;) {
      const auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return true;
      }
      pollfd p{process_.stdout_fd(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(idle.count())) <= 0) return false;
      char chunk[4096];
      const ssize_t n = ::read(process_.stdout_fd(), chunk, sizeof chunk);
      if (n <= 0) return false;
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }
  void kill9() { process_.kill9(); }

 private:
  static testsupport::SpawnOptions spawn_options(const std::vector<std::string>& argv) {
    testsupport::SpawnOptions o;
    o.argv = argv;
    o.pipe_stdout = true;
    return o;
  }
  testsupport::Process process_;  // SIGKILLed and reaped by its destructor
  std::string buf_;
};

TEST(ConsumerResume, kill9AfterCommits_resumesExactlyAfterLastCommit) {
  TempDir dir;
  BrokerProcess broker(0, dir.path() / "b0", {"--log-level=warn"});
  broker.start();
  {
    AdminConfig ac;
    ac.bootstrap = broker.address();
    auto admin = Admin::create(ac);
    ASSERT_TRUE((*admin)->create_topic("resume", 2, 1).has_value());
  }
  constexpr int kMessages = 100000;
  {
    ProducerConfig pc;
    pc.bootstrap = broker.address();
    auto p = Producer::create(pc);
    const std::string value(100, 'v');
    for (int i = 0; i < kMessages; ++i) (*p)->send("resume", std::nullopt, value, {}, [](const SendResult&) {}, i % 2);
    ASSERT_TRUE((*p)->flush(60s));
    ASSERT_EQ((*p)->stats().records_sent, static_cast<std::uint64_t>(kMessages));
  }
  const std::vector<std::string> argv = {QUORUMQ_CONSUMER_CHILD, broker.address(), "resume", "resume-group", "1000"};
  std::mt19937 rng(20261126);
  std::map<int, std::int64_t> committed = {{0, 0}, {1, 0}};  // confirmed ("S" seen)
  std::map<int, std::int64_t> attempted;                     // "P" seen, no "S" yet
  std::map<int, std::vector<bool>> delivered;
  delivered[0].assign(kMessages / 2, false);
  delivered[1].assign(kMessages / 2, false);
  auto all_delivered = [&] {
    return std::count(delivered[0].begin(), delivered[0].end(), false) == 0 &&
           std::count(delivered[1].begin(), delivered[1].end(), false) == 0;
  };
  int kills = 0;
  for (int round = 0; round < 12 && !all_delivered(); ++round) {
    Child child(argv);
    std::map<int, bool> first_seen;
    std::map<int, std::int64_t> confirming;
    // Six rounds end in kill -9 at a random point; later rounds drain the rest (until idle).
    const int commits_before_kill = round < 6 ? 1 + static_cast<int>(rng() % 5) : INT32_MAX;
    const int lines_before_kill = static_cast<int>(rng() % 2000);
    int commits = 0, after = -1;
    bool killed = false;
    std::string line;
    // Reads until the kill point, kills, then drains what the child wrote before it died.
    while (child.next_line(line)) {
      std::istringstream in(line);
      char kind;
      in >> kind;
      if (kind == 'M') {
        int p;
        std::int64_t o;
        in >> p >> o;
        if (!first_seen[p]) {
          // A restarted consumer begins exactly at its last commit: the confirmed one, or the
          // one it was making when it was killed (if that reached the broker).
          const bool at_confirmed = o == committed[p];
          const bool at_attempted = attempted.contains(p) && o == attempted[p];
          EXPECT_TRUE(at_confirmed || at_attempted)
              << "round " << round << " partition " << p << " resumed at " << o << ", last commit " << committed[p]
              << (attempted.contains(p) ? ", attempted " + std::to_string(attempted[p]) : std::string());
          if (at_attempted) committed[p] = o;
          attempted.erase(p);
          first_seen[p] = true;
        }
        ASSERT_LT(o, kMessages / 2);
        delivered[p][static_cast<std::size_t>(o)] = true;
      } else if (kind == 'P') {
        int p;
        std::int64_t o;
        in >> p >> o;
        attempted[p] = o;
      } else if (kind == 'C') {
        int p;
        std::int64_t o;
        in >> p >> o;
        confirming[p] = o;
      } else if (kind == 'S') {
        for (const auto& [p, o] : confirming) committed[p] = o, attempted.erase(p);
        confirming.clear();
        if (++commits == commits_before_kill) after = 0;
      }
      if (!killed && after >= 0 && ++after >= lines_before_kill) {
        child.kill9();
        killed = true;
        ++kills;
      }
    }
    if (!killed) child.kill9();  // drained the topic (idle): end this round
  }
  EXPECT_GE(kills, 3);
  for (int p = 0; p < 2; ++p)
    EXPECT_EQ(std::count(delivered[p].begin(), delivered[p].end(), false), 0) << "gap in partition " << p;
}

}  // namespace
}  // namespace quorumq::test
