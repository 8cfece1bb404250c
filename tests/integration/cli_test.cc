// The `quorumq` CLI against a real broker process (issue 14: what a first outside user hit).
// Every command here passes -b AFTER its subcommand, so each test also checks that global
// options are accepted there. Points covered:
//  §1 a group that comes back reads what was produced meanwhile on every partition; a member
//     killed (kill -9) before it printed anything leaves committed positions, so the survivors
//     skip nothing; `group offsets` lists every partition (also without a commit) of a group
//     the cluster forgot ("no members").
//  §4 20,000 small lines against --max-message-bytes 102400 are all acknowledged; one line over
//     the limit fails alone, naming the limit.
//  §5 acknowledgements printed as they arrive on a pipe (and after SIGINT); consume without a
//     group (--partition/--offset/-e/--format/--json); produce -K/-H/--acks all; group
//     reset/delete (refused while the group has members); --version; refused, non-quorumq and
//     admin-port addresses named at once; topic configs validated, shown, altered.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "harness.h"

namespace quorumq::test {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::vector<std::string> split_tabs(const std::string& l) {
  std::vector<std::string> f;
  std::istringstream in(l);
  for (std::string x; std::getline(in, x, '\t');) f.push_back(x);
  return f;
}

// A client error shown as a bare number, e.g. "(quorumq.client:8)": never.
bool has_bare_code(const std::string& s) { return std::regex_search(s, std::regex(R"(\(quorumq\.[a-z]+:[0-9]+\))")); }

// A long-running CLI process: stdin kept open, stdout/stderr collected by reader threads.
class Proc {
 public:
  explicit Proc(const std::vector<std::string>& argv) : process_(spawn_options(argv)) {
    readers_.emplace_back([this, fd = process_.stdout_fd()] { read_loop(fd, out_); });
    readers_.emplace_back([this, fd = process_.stderr_fd()] { read_loop(fd, err_); });
  }
  ~Proc() {
    kill9();
    close_stdin();
    for (auto& t : readers_) t.join();
  }
  void write_stdin(const std::string& s) {
    ASSERT_EQ(::write(process_.stdin_fd(), s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }
  void close_stdin() { process_.close_stdin(); }
  std::string out() const {
    std::lock_guard lk(mu_);
    return out_;
  }
  std::string err() const {
    std::lock_guard lk(mu_);
    return err_;
  }
  void signal(int sig) { process_.signal(sig); }
  void kill9() { process_.kill9(); }
  // Exit status once it exited (-1 if still running after `timeout`).
  int wait(std::chrono::milliseconds timeout) { return process_.wait(timeout).value_or(-1); }

 private:
  void read_loop(int fd, std::string& into) {
    char buf[8192];
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      std::lock_guard lk(mu_);
      into.append(buf, static_cast<std::size_t>(n));
    }
  }
  static testsupport::SpawnOptions spawn_options(const std::vector<std::string>& argv) {
    testsupport::SpawnOptions o;
    o.argv = argv;
    o.pipe_stdin = o.pipe_stdout = o.pipe_stderr = true;  // the Process owns and closes all three
    return o;
  }
  testsupport::Process process_;
  mutable std::mutex mu_;
  std::string out_, err_;
  std::vector<std::thread> readers_;
};

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = std::make_unique<BrokerProcess>(
        1, dir_.path() / "b1", std::vector<std::string>{"--log-level=warn", "--max-message-bytes=102400"});
    broker_->start();
  }
  // quorumq ARGS... -b ADDR (the global option after the subcommand).
  std::vector<std::string> argv(std::vector<std::string> args) const {
    args.insert(args.begin(), QUORUMQ_CLI_BIN);
    args.push_back("-b");
    args.push_back(broker_->address());
    return args;
  }
  RunResult q(std::vector<std::string> args, const std::string& in = {}, std::chrono::milliseconds timeout = 60s) {
    return run_program(argv(std::move(args)), in, timeout);
  }
  void create(const std::string& topic, int partitions) {
    auto r = q({"topic", "create", topic, "--partitions", std::to_string(partitions), "--replicas", "1"});
    ASSERT_EQ(r.status, 0) << r.err;
  }
  // `group describe` rows: partition -> {member, committed}.
  std::map<int, std::pair<std::string, std::string>> owners(const std::string& group) {
    std::map<int, std::pair<std::string, std::string>> out;
    auto r = q({"group", "describe", group});
    for (const auto& l : lines_of(r.out)) {
      auto f = split_tabs(l);
      if (f.size() == 6 && f[0] != "topic") out[std::stoi(f[1])] = {f[2], f[3]};
    }
    return out;
  }

  TempDir dir_{"quorumq-cli-test"};
  std::unique_ptr<BrokerProcess> broker_;
};

// §1: stop a group (nothing printed: nothing was there), produce to every partition, start it
// again: it reads everything produced meanwhile. Before: only partitions it had printed from
// resumed; the others started at "latest" and the messages were skipped for good.
TEST_F(Cli, group_that_comes_back_reads_what_was_produced_meanwhile) {
  create("back", 3);
  {
    // Runs until the group has a committed position on every partition (the SDK commits the
    // position it resolves before it consumes), then stops (SIGTERM: exit 0).
    Proc first(argv({"consume", "back", "--group", "g"}));
    ASSERT_TRUE(wait_until(
        [&] {
          auto o = owners("g");
          return o.size() == 3 && std::all_of(o.begin(), o.end(), [](auto& kv) { return kv.second.second == "0"; });
        },
        30s))
        << q({"group", "describe", "g"}).out;
    first.signal(SIGTERM);
    EXPECT_EQ(first.wait(20s), 0) << first.err();
    EXPECT_EQ(first.out(), "");
  }
  for (int p = 0; p < 3; ++p) {
    auto r = q({"produce", "back", "--partition", std::to_string(p)}, "a\nb\nc\nd\ne\n");
    ASSERT_EQ(r.status, 0) << r.err;
  }
  // The cluster forgot the group (no members), its offsets stay: every partition, with lag.
  auto offs = q({"group", "offsets", "g"});
  ASSERT_EQ(offs.status, 0) << offs.err;
  EXPECT_NE(offs.out.find("no members"), std::string::npos) << offs.out;
  for (int p = 0; p < 3; ++p)
    EXPECT_NE(offs.out.find("back\t" + std::to_string(p) + "\t0\t5\t5\n"), std::string::npos) << offs.out;
  auto desc = q({"group", "describe", "g"});
  ASSERT_EQ(desc.status, 0) << desc.err;
  EXPECT_NE(desc.out.find("no members"), std::string::npos) << desc.out;

  auto again = q({"consume", "back", "--group", "g", "--print-offsets", "--max-messages", "15", "--timeout-ms", "30000"});
  ASSERT_EQ(again.status, 0) << again.err;
  std::set<std::string> got;
  for (const auto& l : lines_of(again.out)) got.insert(l);
  for (int p = 0; p < 3; ++p)
    for (int o = 0; o < 5; ++o)
      EXPECT_TRUE(got.contains(std::to_string(p) + "\t" + std::to_string(o) + "\t" + std::string(1, "abcde"[o])))
          << p << "/" << o << "\n" << again.out;
  auto json = q({"group", "offsets", "g", "--json"});
  EXPECT_NE(json.out.find(R"({"group":"g","topic":"back","partition":2,"committed":5,"latest":5,"lag":0})"),
            std::string::npos)
      << json.out;
}

// §1: three members share 6 partitions; one is killed (kill -9) before it printed anything;
// 600 messages are produced at once. The survivors take its partitions after its session
// timeout and read all 600. Before: they started its partitions at "latest" and skipped what
// was produced meanwhile.
TEST_F(Cli, member_killed_before_printing_leaves_the_group_nothing_to_skip) {
  create("kill", 6);
  std::vector<std::unique_ptr<Proc>> members;
  for (int i = 0; i < 3; ++i)
    members.push_back(std::make_unique<Proc>(
        argv({"consume", "kill", "--group", "kg", "--session-timeout-ms", "3000", "--format", "%v\\n"})));
  // Stable: three members, two partitions each, every partition with a committed position.
  ASSERT_TRUE(wait_until(
      [&] {
        auto o = owners("kg");
        std::map<std::string, int> per;
        for (const auto& [p, mc] : o) {
          if (mc.first == "-" || mc.first.find("->") != std::string::npos || mc.second == "-") return false;
          ++per[mc.first];
        }
        return o.size() == 6 && per.size() == 3;
      },
      30s))
      << q({"group", "describe", "kg"}).out;
  members[0]->kill9();
  std::string in;
  for (int i = 0; i < 600; ++i) in += "k" + std::to_string(i) + ":m" + std::to_string(i) + "\n";
  auto r = q({"produce", "kill", "-K", ":"}, in);
  ASSERT_EQ(r.status, 0) << r.err;
  std::set<std::string> read;
  ASSERT_TRUE(wait_until(
      [&] {
        read.clear();
        for (int i = 1; i < 3; ++i)
          for (const auto& l : lines_of(members[static_cast<std::size_t>(i)]->out())) read.insert(l);
        return read.size() >= 600;
      },
      40s))
      << "the survivors read " << read.size() << " of 600";
  for (int i = 0; i < 600; ++i) EXPECT_TRUE(read.contains("m" + std::to_string(i))) << i;
  EXPECT_EQ(members[0]->out(), "") << "the killed member had nothing to print";
  for (int i = 1; i < 3; ++i) {
    members[static_cast<std::size_t>(i)]->signal(SIGTERM);
    EXPECT_EQ(members[static_cast<std::size_t>(i)]->wait(20s), 0) << members[static_cast<std::size_t>(i)]->err();
  }
}

// §1: `group offsets` lists every partition of a topic the group has committed on, also those
// without a commit (committed "-", with a note).
TEST_F(Cli, group_offsets_shows_partitions_without_a_commit) {
  create("part", 3);
  ASSERT_EQ(q({"produce", "part", "--partition", "0"}, "x\ny\n").status, 0);
  auto reset = q({"group", "reset", "pg", "--topic", "part", "--partition", "0", "--to", "1"});
  ASSERT_EQ(reset.status, 0) << reset.err;
  auto r = q({"group", "offsets", "pg"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("part\t0\t1\t2\t1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("part\t1\t-\t0\t-\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("part\t2\t-\t0\t-\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("no committed offset"), std::string::npos) << r.out;
  auto j = q({"--json", "group", "offsets", "pg"});
  EXPECT_NE(j.out.find(R"("partition":1,"committed":null,"latest":0,"lag":null)"), std::string::npos) << j.out;
}

// §4: how the producer batched is its own business: 20,000 small lines against a 100 KiB
// broker limit are all acknowledged; a line over the limit fails alone, naming the limit.
TEST_F(Cli, produce_splits_batches_and_fails_only_an_oversized_line) {
  create("big", 1);
  std::string in;
  for (int i = 0; i < 20000; ++i) in += "line-" + std::to_string(i) + "\n";
  auto r = q({"produce", "big", "--print-offsets"}, in);
  ASSERT_EQ(r.status, 0) << r.err.substr(0, 2000);
  auto ls = lines_of(r.out);
  ASSERT_EQ(ls.size(), 20000u);
  for (std::size_t i = 0; i < ls.size(); i += 997) EXPECT_EQ(ls[i], "0\t" + std::to_string(i));
  EXPECT_EQ(ls.back(), "0\t19999");

  auto one = q({"produce", "big", "--print-offsets"}, "before\n" + std::string(200000, 'y') + "\nafter\n");
  EXPECT_EQ(one.status, 1);
  EXPECT_EQ(one.out, "0\t20000\n0\t20001\n");
  EXPECT_NE(one.err.find("input line 2"), std::string::npos) << one.err;
  EXPECT_NE(one.err.find("102400"), std::string::npos) << one.err;
  EXPECT_NE(one.err.find("1 of 3 messages"), std::string::npos) << one.err;
  EXPECT_FALSE(has_bare_code(one.err)) << one.err;
}

// §5: on a pipe, each acknowledgement is printed when it arrives, not at 64 KiB or at the end
// of the input; SIGINT stops reading, reports what was acknowledged and exits.
TEST_F(Cli, produce_prints_acknowledgements_as_they_arrive_and_on_sigint) {
  create("pipe", 1);
  Proc p(argv({"produce", "pipe", "--print-offsets"}));
  p.write_stdin("one\ntwo\n");
  ASSERT_TRUE(wait_until([&] { return p.out() == "0\t0\n0\t1\n"; }, 20s)) << "stdout: " << p.out() << p.err();
  p.write_stdin("three\n");
  ASSERT_TRUE(wait_until([&] { return p.out() == "0\t0\n0\t1\n0\t2\n"; }, 20s)) << p.out();
  p.signal(SIGINT);
  EXPECT_EQ(p.wait(20s), 0) << p.err();
  EXPECT_NE(p.err().find("3 of 3 messages acknowledged"), std::string::npos) << p.err();
}

// §5: consume without a group, like kcat: --partition, --offset beginning|end|N|-N,
// --exit-at-end, a format with key/value/headers/partition/offset, and JSON lines; produce
// with a key delimiter (-K), headers (-H) and --acks all.
TEST_F(Cli, consume_without_a_group_formats_and_json) {
  create("fmt", 2);
  auto r = q({"produce", "fmt", "--partition", "1", "-K", ":", "-H", "h1=x", "-H", "h2=y", "--acks", "all",
              "--print-offsets"},
             "k1:v1\nk2:v2\nnokey\nk4:v:4\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "1\t0\n1\t1\n1\t2\n1\t3\n");
  auto c = q({"consume", "fmt", "--partition", "1", "--offset", "-3", "-e", "--format", "%p|%o|%k|%v|%h|%K\\n"});
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_EQ(c.out, "1|1|k2|v2|h1=x,h2=y|2\n1|2||nokey|h1=x,h2=y|-1\n1|3|k4|v:4|h1=x,h2=y|2\n");
  auto j = q({"consume", "fmt", "-p", "1", "-o", "2", "--exit-at-end", "--json"});
  ASSERT_EQ(j.status, 0) << j.err;
  auto js = lines_of(j.out);
  ASSERT_EQ(js.size(), 2u) << j.out;
  EXPECT_NE(js[0].find(R"("topic":"fmt","partition":1,"offset":2,)"), std::string::npos) << js[0];
  EXPECT_NE(js[0].find(R"("key":null,"value":"nokey","headers":[{"key":"h1","value":"x"},{"key":"h2","value":"y"}])"),
            std::string::npos)
      << js[0];
  EXPECT_NE(js[1].find(R"("key":"k4","value":"v:4")"), std::string::npos) << js[1];
  // Whole topic from the beginning (partition 0 is empty), the end (nothing), and -e on an
  // empty partition: each exits 0 at once.
  auto all = q({"consume", "fmt", "-e"});
  EXPECT_EQ(all.status, 0) << all.err;
  EXPECT_EQ(all.out, "v1\nv2\nnokey\nv:4\n");
  auto end = q({"consume", "fmt", "--offset", "end", "-e"});
  EXPECT_EQ(end.status, 0) << end.err;
  EXPECT_EQ(end.out, "");
  auto bad = q({"consume", "fmt", "--partition", "5", "-e"});
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("has 2 partitions"), std::string::npos) << bad.err;
  auto badfmt = q({"consume", "fmt", "-e", "--format", "%z"});
  EXPECT_EQ(badfmt.status, 2);
  EXPECT_NE(badfmt.err.find("%z"), std::string::npos) << badfmt.err;
}

// §5: group reset and delete: refused while the group has members ("stop the group's consumers
// first"), then they work; the group's next consumer starts where the reset put it.
TEST_F(Cli, group_reset_and_delete) {
  create("rs", 2);
  ASSERT_EQ(q({"produce", "rs", "--partition", "0"}, "a\nb\nc\n").status, 0);
  ASSERT_EQ(q({"produce", "rs", "--partition", "1"}, "d\ne\n").status, 0);
  Proc member(argv({"consume", "rs", "--group", "rg", "--from-beginning"}));
  ASSERT_TRUE(wait_until([&] { return lines_of(member.out()).size() == 5; }, 30s)) << member.out() << member.err();
  auto refused = q({"group", "reset", "rg", "--topic", "rs", "--to", "earliest"});
  EXPECT_EQ(refused.status, 1);
  EXPECT_NE(refused.err.find("stop the group's consumers first"), std::string::npos) << refused.err;
  auto refused_del = q({"group", "delete", "rg"});
  EXPECT_EQ(refused_del.status, 1);
  EXPECT_NE(refused_del.err.find("stop the group's consumers first"), std::string::npos) << refused_del.err;
  member.signal(SIGTERM);
  ASSERT_EQ(member.wait(20s), 0) << member.err();

  auto reset = q({"group", "reset", "rg", "--topic", "rs", "--partition", "0", "--to", "1"});
  ASSERT_EQ(reset.status, 0) << reset.err;
  EXPECT_EQ(reset.out, "topic\tpartition\tnew_offset\nrs\t0\t1\n");
  auto ts = q({"group", "reset", "rg", "--topic", "rs", "--partition", "1", "--to", "timestamp:0"});
  ASSERT_EQ(ts.status, 0) << ts.err;
  EXPECT_NE(ts.out.find("rs\t1\t0\n"), std::string::npos) << ts.out;
  auto again = q({"consume", "rs", "--group", "rg", "--print-offsets", "--max-messages", "4", "--timeout-ms", "30000"});
  ASSERT_EQ(again.status, 0) << again.err;
  std::set<std::string> got;
  for (const auto& l : lines_of(again.out)) got.insert(l);
  EXPECT_EQ(got, (std::set<std::string>{"0\t1\tb", "0\t2\tc", "1\t0\td", "1\t1\te"})) << again.out;
  auto latest = q({"group", "reset", "rg", "--topic", "rs", "--to", "latest"});
  ASSERT_EQ(latest.status, 0) << latest.err;

  auto del = q({"group", "delete", "rg"});
  ASSERT_EQ(del.status, 0) << del.err;
  EXPECT_NE(del.out.find("deleted group rg"), std::string::npos) << del.out;
  auto offs = q({"group", "offsets", "rg"});
  EXPECT_EQ(offs.out.find("rs\t0\t"), std::string::npos) << "no committed offsets left: " << offs.out;
}

// §5: --version; a refused address and an address that is not a quorumq broker are named at
// once (not after retries and timeouts), in words.
TEST_F(Cli, version_and_wrong_addresses_are_reported_at_once) {
  auto v = run_program({QUORUMQ_CLI_BIN, "--version"});
  EXPECT_EQ(v.status, 0);
  EXPECT_TRUE(v.out.starts_with("quorumq ")) << v.out;
  for (const std::string& bin : {std::string(QUORUMQ_BENCH_BIN), std::string(QUORUMQ_GROUP_BENCH_BIN)}) {
    if (bin.empty()) continue;
    auto b = run_program({bin, "--version"});
    EXPECT_EQ(b.status, 0) << bin;
    EXPECT_NE(b.out.find(" 0."), std::string::npos) << bin << ": " << b.out;
  }

  const std::uint16_t closed = free_port();
  const auto t0 = Clock::now();
  auto refused = run_program({QUORUMQ_CLI_BIN, "topic", "list", "-b", "127.0.0.1:" + std::to_string(closed)});
  EXPECT_LT(Clock::now() - t0, 2s);
  EXPECT_EQ(refused.status, 1);
  EXPECT_NE(refused.err.find("127.0.0.1:" + std::to_string(closed)), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("refused"), std::string::npos) << refused.err;
  EXPECT_FALSE(has_bare_code(refused.err)) << refused.err;

  // Something that answers HTTP (as an HTTP admin port does).
  const int ls = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len);
  ASSERT_EQ(::listen(ls, 8), 0);
  const std::uint16_t http_port = ntohs(a.sin_port);
  std::atomic<bool> stop{false};
  std::thread http([&] {
    while (!stop) {
      pollfd p{ls, POLLIN, 0};
      if (::poll(&p, 1, 100) != 1) continue;
      const int c = ::accept(ls, nullptr, nullptr);
      if (c < 0) continue;
      char buf[256];
      (void)::read(c, buf, sizeof buf);
      const std::string ans = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
      (void)::write(c, ans.data(), ans.size());
      ::close(c);
    }
  });
  const auto t1 = Clock::now();
  auto http_ans = run_program({QUORUMQ_CLI_BIN, "topic", "list", "-b", "127.0.0.1:" + std::to_string(http_port)});
  EXPECT_LT(Clock::now() - t1, 2s);
  stop = true;
  http.join();
  ::close(ls);
  EXPECT_EQ(http_ans.status, 1);
  EXPECT_NE(http_ans.err.find("127.0.0.1:" + std::to_string(http_port) + " is not a quorumq broker"), std::string::npos)
      << http_ans.err;
  EXPECT_NE(http_ans.err.find("HTTP"), std::string::npos) << http_ans.err;

  // The broker's own admin port (it reads an HTTP request and closes after 5 s without one):
  // named as possibly the wrong port once the handshake fails (connect timeout 2 s here), not
  // after the request timeout (30 s).
  const auto t2 = Clock::now();
  auto admin = run_program({QUORUMQ_CLI_BIN, "topic", "list", "--connect-timeout-ms", "2000", "-b",
                            "127.0.0.1:" + std::to_string(broker_->admin_port())});
  EXPECT_LT(Clock::now() - t2, 8s);
  EXPECT_EQ(admin.status, 1);
  EXPECT_NE(admin.err.find("127.0.0.1:" + std::to_string(broker_->admin_port())), std::string::npos) << admin.err;
  EXPECT_NE(admin.err.find("admin"), std::string::npos) << admin.err;
  EXPECT_FALSE(has_bare_code(admin.err)) << admin.err;
}

// §5: topic configs: checked before anything is sent (unknown keys and bad values refused,
// naming what is allowed), shown by describe, changed by alter-config, and applied per topic
// (the producer fits its batches to the topic's max.message.bytes).
TEST_F(Cli, topic_configs_are_validated_shown_and_altered) {
  auto unknown = q({"topic", "create", "cfg", "-p", "1", "-r", "1", "--config", "cleanup.policy=compact"});
  EXPECT_EQ(unknown.status, 2);
  EXPECT_NE(unknown.err.find("retention.ms, retention.bytes and max.message.bytes"), std::string::npos) << unknown.err;
  for (const std::string bad : {"retention.ms=0", "retention.bytes=-2", "max.message.bytes=100", "retention.ms=abc"}) {
    auto r = q({"topic", "create", "cfg", "-p", "1", "-r", "1", "--config", bad});
    EXPECT_EQ(r.status, 2) << bad;
    EXPECT_FALSE(r.err.empty()) << bad;
  }
  auto ok = q({"topic", "create", "cfg", "-p", "1", "-r", "1", "--config", "retention.ms=-1", "--config",
               "max.message.bytes=4096"});
  ASSERT_EQ(ok.status, 0) << ok.err;
  auto d = q({"topic", "describe", "cfg", "--json"});
  ASSERT_EQ(d.status, 0) << d.err;
  EXPECT_NE(d.out.find(R"("configs":{"max.message.bytes":"4096","retention.ms":"-1"})"), std::string::npos) << d.out;
  EXPECT_TRUE(std::regex_search(d.out, std::regex(R"("topic_id":[1-9])"))) << d.out;

  // 500 lines of 100 bytes under a 4 KiB per-topic limit: batches fitted, all acknowledged.
  std::string in;
  for (int i = 0; i < 500; ++i) in += std::string(100, static_cast<char>('a' + i % 26)) + "\n";
  auto p = q({"produce", "cfg"}, in);
  EXPECT_EQ(p.status, 0) << p.err.substr(0, 2000);

  auto alter = q({"topic", "alter-config", "cfg", "--set", "retention.bytes=1048576", "--delete", "retention.ms"});
  ASSERT_EQ(alter.status, 0) << alter.err;
  auto text = q({"topic", "describe", "cfg"});
  EXPECT_NE(text.out.find("configs=max.message.bytes=4096,retention.bytes=1048576"), std::string::npos) << text.out;
  auto bad_alter = q({"topic", "alter-config", "cfg", "--set", "segment.ms=1"});
  EXPECT_EQ(bad_alter.status, 2);
  EXPECT_NE(bad_alter.err.find("segment.ms"), std::string::npos) << bad_alter.err;
  auto list = q({"topic", "list", "--json"});
  EXPECT_NE(list.out.find(R"({"topic":"cfg","partitions":1,"replicas":1})"), std::string::npos) << list.out;
}

}  // namespace
}  // namespace quorumq::test
