#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace quorumq::test {

namespace fs = std::filesystem;

namespace {
// A test writing to a closed pipe or socket gets EPIPE, not a dead process.
const bool kIgnoreSigpipe = [] {
  ::signal(SIGPIPE, SIG_IGN);
  return true;
}();
}  // namespace

TempDir::TempDir(const std::string& prefix) {
  std::string tmpl = (fs::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed: " + std::string(strerror(errno)));
  path_ = tmpl;
}

TempDir::~TempDir() {
  // QUORUMQ_TEST_KEEP=1 keeps every test's directory (broker logs, data) for a post-mortem.
  if (const char* keep = std::getenv("QUORUMQ_TEST_KEEP"); keep && *keep == '1') {
    std::fprintf(stderr, "kept %s\n", path_.c_str());
    return;
  }
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    throw std::runtime_error("bind for a free port failed");
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);  // polling interval of a condition, not a guess at timing
  }
}

std::optional<HttpReply> http_get(std::uint16_t port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return std::nullopt;
  }
  std::string resp;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (resp.size() < 12 || !resp.starts_with("HTTP/1.1 ")) return std::nullopt;
  HttpReply r;
  r.status = std::atoi(resp.c_str() + 9);
  const auto body = resp.find("\r\n\r\n");
  if (body != std::string::npos) r.body = resp.substr(body + 4);
  return r;
}

std::string broker_binary() {
  if (const char* e = std::getenv("QUORUMQ_BROKER_BIN")) return e;
  return QUORUMQ_BROKER_BIN;
}

BrokerProcess::BrokerProcess(int node_id, fs::path data_dir, std::vector<std::string> extra, std::uint16_t port)
    : node_id_(node_id), data_dir_(std::move(data_dir)), extra_(std::move(extra)), port_(port) {
  log_path_ = data_dir_.string() + ".log";
}

BrokerProcess::~BrokerProcess() {
  if (pid_ > 0) kill9();
}

void BrokerProcess::start(std::chrono::milliseconds ready_timeout) {
  spawn();
  wait_ready(ready_timeout);
}

void BrokerProcess::spawn() {
  if (pid_ > 0) throw std::runtime_error("broker already running");
  if (port_ == 0) port_ = free_port();
  if (admin_port_ == 0) admin_port_ = free_port();
  std::vector<std::string> args = {broker_binary(),
                                   "--node-id=" + std::to_string(node_id_),
                                   "--listen=127.0.0.1:" + std::to_string(port_),
                                   "--admin-listen=127.0.0.1:" + std::to_string(admin_port_),
                                   "--data-dir=" + data_dir_.string()};
  args.insert(args.end(), extra_.begin(), extra_.end());
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    const int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  pid_ = pid;
}

void BrokerProcess::wait_ready(std::chrono::milliseconds ready_timeout) {
  const bool ready = wait_until(
      [&] {
        int st;
        if (::waitpid(pid_, &st, WNOHANG) == pid_) {
          pid_ = -1;
          return true;
        }
        auto r = http_get(admin_port_, "/readyz");
        return r && r->status == 200;
      },
      ready_timeout);
  if (pid_ < 0) throw std::runtime_error("broker exited during start; see " + log_path_.string());
  if (!ready) throw std::runtime_error("broker not ready in time; see " + log_path_.string());
}

void BrokerProcess::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int st;
  ::waitpid(pid_, &st, 0);
  pid_ = -1;
}

int BrokerProcess::terminate(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int st = 0;
  const bool done = wait_until([&] { return ::waitpid(pid_, &st, WNOHANG) == pid_; }, timeout);
  if (!done) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
    return -2;
  }
  pid_ = -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void BrokerProcess::pause() {
  if (pid_ > 0) ::kill(pid_, SIGSTOP);
}
void BrokerProcess::resume() {
  if (pid_ > 0) ::kill(pid_, SIGCONT);
}

std::string BrokerProcess::log_contains(const std::string& needle) const {
  std::ifstream in(log_path_);
  std::string line;
  while (std::getline(in, line))
    if (line.find(needle) != std::string::npos) return line;
  return {};
}

std::uint64_t BrokerProcess::rss_bytes() const {
  if (pid_ <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

double BrokerProcess::cpu_seconds() const {
  if (pid_ <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid_) + "/stat");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto rp = all.rfind(')');  // the command name may hold spaces
  if (rp == std::string::npos) return 0;
  std::istringstream rest(all.substr(rp + 2));
  std::string field;
  std::uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

RunResult run_program(const std::vector<std::string>& argv_in, const std::string& stdin_data,
                      std::chrono::milliseconds timeout) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (::pipe(in_pipe) || ::pipe(out_pipe) || ::pipe(err_pipe)) throw std::runtime_error("pipe failed");
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
    std::vector<std::string> args = argv_in;
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    _exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  RunResult r;
  std::size_t written = 0;
  if (stdin_data.empty()) ::close(in_pipe[1]), in_pipe[1] = -1;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool out_open = true, err_open = true;
  ::fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
  while (out_open || err_open) {
    pollfd fds[3];
    int n = 0;
    if (out_open) fds[n++] = {out_pipe[0], POLLIN, 0};
    if (err_open) fds[n++] = {err_pipe[0], POLLIN, 0};
    if (in_pipe[1] >= 0) fds[n++] = {in_pipe[1], POLLOUT, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      break;
    }
    ::poll(fds, static_cast<nfds_t>(n), static_cast<int>(std::min<long>(left.count(), 1000)));
    for (int i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      if (fds[i].fd == in_pipe[1]) {
        const ssize_t w = ::write(in_pipe[1], stdin_data.data() + written, stdin_data.size() - written);
        if (w > 0) written += static_cast<std::size_t>(w);
        if (w < 0 && errno != EAGAIN) written = stdin_data.size();
        if (written == stdin_data.size()) ::close(in_pipe[1]), in_pipe[1] = -1;
        continue;
      }
      char buf[65536];
      const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got <= 0) {
        if (fds[i].fd == out_pipe[0]) out_open = false;
        else err_open = false;
      } else {
        (fds[i].fd == out_pipe[0] ? r.out : r.err).append(buf, static_cast<std::size_t>(got));
      }
    }
  }
  if (in_pipe[1] >= 0) ::close(in_pipe[1]);
  ::close(out_pipe[0]);
  ::close(err_pipe[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

}  // namespace quorumq::test
