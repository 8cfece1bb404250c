// A consumer committing every 1,000 messages is killed with kill -9 and restarted (issue 3):
// it resumes exactly after its last commit — no gap, and nothing before the committed offset
// is delivered again. 100k messages over 2 partitions, real broker and consumer processes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
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
  explicit Child(const std::vector<std::string>& argv) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      ::close(fds[1]);
      std::vector<std::string> args = argv;
      std::vector<char*> a;
      for (auto& s : args) a.push_back(s.data());
      a.push_back(nullptr);
      ::execv(a[0], a.data());
      _exit(127);
    }
    ::close(fds[1]);
    in_ = ::fdopen(fds[0], "r");
  }
  ~Child() {
    kill9();
    if (in_) std::fclose(in_);
  }
  bool next_line(std::string& line) {
    char buf[256];
    if (!std::fgets(buf, sizeof buf, in_)) return false;
    line = buf;
    return true;
  }
  void kill9() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

 private:
  pid_t pid_ = -1;
  FILE* in_ = nullptr;
};

TEST(ConsumerResume, kill9AfterCommits_resumesExactlyAfterLastCommit) {
  TempDir dir;
  BrokerProcess broker(0, dir.path() / "b0", {"--log-level=warn"});
  broker.start();
  {
    AdminConfig ac;
    ac.bootstrap = broker.address();
    auto admin = Admin::create(ac);
    ASSERT_FALSE((*admin)->create_topic("resume", 2, 1).has_value());
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
  std::map<int, std::int64_t> committed = {{0, 0}, {1, 0}};
  std::map<int, std::vector<bool>> delivered;
  delivered[0].assign(kMessages / 2, false);
  delivered[1].assign(kMessages / 2, false);
  int kills = 0;
  for (int round = 0; round < 8; ++round) {
    Child child(argv);
    std::map<int, bool> first_seen;
    std::map<int, std::int64_t> pending_commit;
    const int commits_before_kill = 2 + static_cast<int>(rng() % 6);
    const int extra_messages = static_cast<int>(rng() % 900);
    int commits = 0, after = -1;
    std::string line;
    bool finished = false;
    while (child.next_line(line)) {
      std::istringstream in(line);
      char kind;
      in >> kind;
      if (kind == 'M') {
        int p;
        std::int64_t o;
        in >> p >> o;
        if (!first_seen[p]) {
          // The first message of each partition after a (re)start is exactly the committed one.
          EXPECT_EQ(o, committed[p]) << "round " << round << " partition " << p;
          first_seen[p] = true;
        }
        ASSERT_LT(o, kMessages / 2);
        delivered[p][static_cast<std::size_t>(o)] = true;
        if (after >= 0 && ++after >= extra_messages) break;
      } else if (kind == 'C') {
        int p;
        std::int64_t o;
        in >> p >> o;
        pending_commit[p] = o;
      } else if (kind == 'S') {
        for (const auto& [p, o] : pending_commit) committed[p] = o;
        if (committed[0] == kMessages / 2 && committed[1] == kMessages / 2) {
          finished = true;
          break;
        }
        if (++commits == commits_before_kill) after = 0;
      }
    }
    child.kill9();
    ++kills;
    if (finished) break;
  }
  // Drain whatever is left in one last run, then check: every offset was delivered.
  if (committed[0] < kMessages / 2 || committed[1] < kMessages / 2) {
    Child child(argv);
    std::string line;
    std::map<int, bool> first_seen;
    while (child.next_line(line)) {
      std::istringstream in(line);
      char kind;
      in >> kind;
      if (kind == 'M') {
        int p;
        std::int64_t o;
        in >> p >> o;
        if (!first_seen[p]) {
          EXPECT_EQ(o, committed[p]);
          first_seen[p] = true;
        }
        delivered[p][static_cast<std::size_t>(o)] = true;
      } else if (kind == 'S') {
        if (std::count(delivered[0].begin(), delivered[0].end(), true) == kMessages / 2 &&
            std::count(delivered[1].begin(), delivered[1].end(), true) == kMessages / 2)
          break;
      }
    }
  }
  EXPECT_GE(kills, 3);
  for (int p = 0; p < 2; ++p)
    EXPECT_EQ(std::count(delivered[p].begin(), delivered[p].end(), false), 0) << "gap in partition " << p;
}

}  // namespace
}  // namespace quorumq::test
