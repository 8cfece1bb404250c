#include "local_cluster.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <deque>
#include <fstream>
#include <future>
#include <stdexcept>
#include <thread>

#include "http_get.h"
#include "metrics_parse.h"

namespace quorumq::bench {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

fs::path make_temp_dir(const fs::path& base) {
  const fs::path root = base.empty() ? fs::temp_directory_path() : base;
  std::string tmpl = (root / "quorumq-bench-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed under " + root.string());
  return tmpl;
}

// The last lines of a broker's log, for an error message (the directory is removed afterwards).
std::string log_tail(const fs::path& file) {
  std::ifstream f(file);
  std::deque<std::string> lines;
  for (std::string l; std::getline(f, l);) {
    lines.push_back(l);
    if (lines.size() > 5) lines.pop_front();
  }
  std::string out;
  for (const auto& l : lines) out += "\n    " + l;
  return out.empty() ? "(empty log)" : out;
}

}  // namespace

std::expected<std::string, std::string> LocalCluster::find_broker_bin(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* e = std::getenv("QUORUMQ_BROKER_BIN"); e && *e) return std::string(e);
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const fs::path& cand : {self.parent_path().parent_path() / "broker" / "quorumq-broker",
                                self.parent_path() / "quorumq-broker"}) {
      if (fs::exists(cand)) return cand.string();
    }
  }
  return std::unexpected(
      "cannot find quorumq-broker next to this binary's build tree: pass --broker-bin or set QUORUMQ_BROKER_BIN");
}

LocalCluster::LocalCluster(ClusterOptions options) : options_(std::move(options)) {
  auto bin = find_broker_bin(options_.broker_bin);
  if (!bin) throw std::runtime_error(bin.error());
  bin_ = *bin;
  dir_ = make_temp_dir(options_.base_dir);
  for (int i = 1; i <= options_.brokers; ++i) {
    Node n;
    n.id = i;
    n.port = free_port();
    n.admin_port = free_port();
    n.peer_port = free_port();
    n.data_dir = dir_ / ("b" + std::to_string(i));
    n.log_file = dir_ / ("b" + std::to_string(i) + ".log");
    peers_ += (peers_.empty() ? "" : ",") + std::to_string(i) + "@127.0.0.1:" + std::to_string(n.peer_port);
    nodes_.push_back(n);
  }
  secret_file_ = dir_ / "cluster.secret";
  {
    std::ofstream f(secret_file_);
    f << "local-cluster-secret-" << nodes_.front().port << "-" << ::getpid() << "\n";
  }
  fs::permissions(secret_file_, fs::perms::owner_read | fs::perms::owner_write);
  spawner_ = std::thread([this] { spawner_loop(); });
}

LocalCluster::~LocalCluster() {
  stop_all();
  {
    std::lock_guard lock(spawn_mu_);
    spawn_stop_ = true;
  }
  spawn_cv_.notify_all();
  spawner_.join();
  if (!options_.keep_data) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

void LocalCluster::spawner_loop() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(spawn_mu_);
      spawn_cv_.wait(lock, [this] { return spawn_stop_ || !spawn_jobs_.empty(); });
      if (spawn_jobs_.empty()) return;
      job = std::move(spawn_jobs_.front());
      spawn_jobs_.pop_front();
    }
    job();
  }
}

void LocalCluster::spawn_locked(Node& n) {
  std::vector<std::string> args = {bin_,
                                   "--node-id=" + std::to_string(n.id),
                                   "--listen=127.0.0.1:" + std::to_string(n.port),
                                   "--admin-listen=127.0.0.1:" + std::to_string(n.admin_port),
                                   "--data-dir=" + n.data_dir.string(),
                                   "--peers=" + peers_,
                                   "--cluster-secret-file=" + secret_file_.string(),
                                   "--log-level=" + options_.log_level};
  for (const auto& a : options_.extra_args) args.push_back(a);
  // Fork on the spawner thread (see the header) and wait for the pid.
  std::packaged_task<pid_t()> task([&] { return fork_broker(args, n.log_file); });
  auto pid_future = task.get_future();
  {
    std::lock_guard lock(spawn_mu_);
    spawn_jobs_.emplace_back([&task] { task(); });
  }
  spawn_cv_.notify_one();
  const pid_t pid = pid_future.get();
  n.pid = pid;
  n.paused = false;
}

pid_t LocalCluster::fork_broker(const std::vector<std::string>& args_in, const std::filesystem::path& log) {
  std::vector<std::string> args = args_in;
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Die with the bench, whatever kills it (the SIGINT handler cleans up; SIGKILL cannot).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(1);
    // A terminal Ctrl-C reaches the whole process group: the bench decides when brokers stop.
    ::setpgid(0, 0);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
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
  return pid;
}

bool LocalCluster::ready(const Node& n) const {
  auto r = http_get("127.0.0.1", n.admin_port, "/readyz", 500ms);
  return r && r->status == 200;
}

std::expected<void, std::string> LocalCluster::start(std::chrono::milliseconds timeout) {
  {
    std::lock_guard lock(mu_);
    for (auto& n : nodes_) spawn_locked(n);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (const auto& n : nodes_) {
    while (!ready(n)) {
      int status = 0;
      if (::waitpid(n.pid, &status, WNOHANG) == n.pid)
        return std::unexpected("broker " + std::to_string(n.id) + " exited at start: " + log_tail(n.log_file));
      if (std::chrono::steady_clock::now() > deadline)
        return std::unexpected("broker " + std::to_string(n.id) + " not ready in time: " + log_tail(n.log_file));
      std::this_thread::sleep_for(20ms);
    }
  }
  return {};
}

void LocalCluster::stop_all() {
  std::lock_guard lock(mu_);
  for (auto& n : nodes_) {
    if (n.pid <= 0) continue;
    ::kill(n.pid, SIGKILL);
    ::waitpid(n.pid, nullptr, 0);
    n.pid = -1;
  }
}

std::string LocalCluster::bootstrap() const {
  std::string s;
  for (const auto& n : nodes_) s += (s.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(n.port);
  return s;
}

void LocalCluster::kill(int node) {
  std::lock_guard lock(mu_);
  Node& n = nodes_.at(static_cast<std::size_t>(node - 1));
  if (n.pid <= 0) return;
  ::kill(n.pid, SIGKILL);
  ::waitpid(n.pid, nullptr, 0);
  n.pid = -1;
  n.paused = false;
}

std::expected<void, std::string> LocalCluster::restart(int node, std::chrono::milliseconds ready_timeout) {
  Node copy;
  {
    std::lock_guard lock(mu_);
    Node& n = nodes_.at(static_cast<std::size_t>(node - 1));
    if (n.pid > 0) {
      ::kill(n.pid, SIGKILL);
      ::waitpid(n.pid, nullptr, 0);
    }
    spawn_locked(n);
    copy = n;
  }
  const auto deadline = std::chrono::steady_clock::now() + ready_timeout;
  while (!ready(copy)) {
    if (std::chrono::steady_clock::now() > deadline)
      return std::unexpected("restarted broker " + std::to_string(node) + " not ready in time");
    std::this_thread::sleep_for(20ms);
  }
  return {};
}

void LocalCluster::pause(int node) {
  std::lock_guard lock(mu_);
  Node& n = nodes_.at(static_cast<std::size_t>(node - 1));
  if (n.pid > 0 && ::kill(n.pid, SIGSTOP) == 0) n.paused = true;
}

void LocalCluster::resume(int node) {
  std::lock_guard lock(mu_);
  Node& n = nodes_.at(static_cast<std::size_t>(node - 1));
  if (n.pid > 0 && ::kill(n.pid, SIGCONT) == 0) n.paused = false;
}

bool LocalCluster::running(int node) const {
  std::lock_guard lock(mu_);
  const Node& n = nodes_.at(static_cast<std::size_t>(node - 1));
  return n.pid > 0 && !n.paused;
}

std::vector<int> LocalCluster::nodes() const {
  std::vector<int> ids;
  for (const auto& n : nodes_) ids.push_back(n.id);
  return ids;
}

std::map<int, std::set<std::int32_t>> LocalCluster::leaders(const std::string& topic) const {
  std::vector<std::pair<int, std::uint16_t>> live;
  {
    std::lock_guard lock(mu_);
    for (const auto& n : nodes_)
      if (n.pid > 0 && !n.paused) live.emplace_back(n.id, n.admin_port);
  }
  std::map<int, std::set<std::int32_t>> out;
  for (const auto& [id, port] : live) {
    auto m = http_get("127.0.0.1", port, "/metrics", 1000ms);
    if (!m || m->status != 200) continue;
    if (auto led = led_partitions(m->body, topic); !led.empty()) out[id] = std::move(led);
  }
  return out;
}

}  // namespace quorumq::bench
