// Crash test with a real process: a child appends in a loop and reports each completed append
// on a pipe; we SIGKILL it at random moments, reopen, and check that every reported append is
// there and intact, offsets are contiguous, and nothing after them is half-written.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <thread>

#include "crash_report.h"
#include "quorumq/testsupport/process.h"
#include "test_util.h"

namespace quorumq::storage::test {
namespace {

struct Child {
  testsupport::Process process;
  int rfd = -1;
};

// The child writes its reports to fd 3: our pipe's write end, which we close once it has it.
Child spawn(const fs::path& dir, std::uint64_t seed) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) std::abort();
  testsupport::SpawnOptions o;
  o.argv = {QQ_CRASH_CHILD, dir.string(), std::to_string(seed)};
  o.pass_fds = {{fds[1], 3}};
  Child c{testsupport::Process(o), fds[0]};
  ::close(fds[1]);
  return c;
}

// Reads whole reports until `want` have arrived in total (or EOF); returns false on EOF.
bool read_reports(int fd, std::vector<CrashReport>& out, std::size_t want, std::string& partial) {
  char buf[4096];
  while (out.size() < want) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    partial.append(buf, static_cast<std::size_t>(n));
    while (partial.size() >= sizeof(CrashReport)) {
      CrashReport r;
      std::memcpy(&r, partial.data(), sizeof r);
      partial.erase(0, sizeof r);
      out.push_back(r);
    }
  }
  return true;
}

TEST(CrashTest, killNine_losesNoCompletedAppend) {
  std::uint64_t s0 = std::random_device{}();
  if (const char* e = std::getenv("QQ_CRASH_SEED")) s0 = std::strtoull(e, nullptr, 10);
  std::printf("crash test seed %llu (rerun with QQ_CRASH_SEED=%llu)\n", static_cast<unsigned long long>(s0),
              static_cast<unsigned long long>(s0));
  SCOPED_TRACE("seed " + std::to_string(s0));
  std::mt19937_64 rng(s0);
  TempDir dir;
  std::map<std::uint64_t, CrashReport> acked;  // by index, across all the child's lives
  constexpr int kKills = 30;
  const auto t0 = std::chrono::steady_clock::now();
  for (int round = 0; round < kKills; ++round) {
    Child c = spawn(dir.path, rng());
    // Kill after a random number of completed appends (0 = during open or the first commit),
    // then after a random extra delay so the kill lands at any point of a commit.
    const std::size_t want = rng() % 4 == 0 ? 0 : rng() % 200;
    std::vector<CrashReport> got;
    std::string partial;
    const bool alive = read_reports(c.rfd, got, want, partial);
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    c.process.kill9();
    const int status = c.process.wait_status().value_or(0);
    read_reports(c.rfd, got, SIZE_MAX, partial);  // whatever it reported before dying
    ::close(c.rfd);
    ASSERT_TRUE(alive || (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
        << "child died by itself, status " << status;
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
    for (const auto& r : got) acked[r.index] = r;  // a later life may reuse nothing: indexes only grow

    // Reopen and check.
    auto s = open_storage(dir.path);
    ASSERT_TRUE(s);
    auto log = s->open_log("crash");
    ASSERT_TRUE(log) << log.error().message;
    const LogState st = (*log)->state();
    if (!acked.empty()) {
      ASSERT_GE(st.last_index.value, acked.rbegin()->first) << "round " << round;
    }
    // Every entry in the log (acked or committed-but-unreported) is whole, CRC-clean, contiguous.
    std::int64_t next = st.start_offset.value;
    std::uint64_t idx = st.first_index.value;
    while (idx <= st.last_index.value) {
      auto es = (*log)->entries(log_index{idx}, st.last_index, 4u << 20);
      ASSERT_TRUE(es) << "round " << round << ": " << es.error().message;
      for (const auto& e : *es) {
        ASSERT_EQ(e.index.value, idx);
        const BatchView v(e.batch);
        ASSERT_EQ(v.validate(), BatchError::ok) << "index " << idx;
        ASSERT_EQ(v.base_offset(), next) << "offsets not contiguous at index " << idx;
        if (auto it = acked.find(idx); it != acked.end()) {
          ASSERT_EQ(it->second.base_offset, v.base_offset()) << "index " << idx;
          ASSERT_EQ(it->second.next_offset, v.base_offset() + v.offset_count()) << "index " << idx;
          ASSERT_EQ(it->second.hash, fnv1a(std::span(e.batch).subspan(kCrcStart))) << "index " << idx;
        }
        next += v.offset_count();
        ++idx;
      }
    }
    ASSERT_EQ(next, st.next_offset.value);
    // Consumers' view agrees: read() over the whole log CRC-checks every batch.
    auto all = (*log)->read(st.start_offset, 1u << 30, st.next_offset);
    ASSERT_TRUE(all) << all.error().message;
    ASSERT_EQ(all->next_offset, st.next_offset);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("crash test: %d kills, %zu acknowledged appends checked, %.1f s\n", kKills, acked.size(), secs);
  EXPECT_GT(acked.size(), 100u);
}

}  // namespace
}  // namespace quorumq::storage::test
