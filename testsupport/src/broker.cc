#include "quorumq/testsupport/broker.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <deque>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "quorumq/testsupport/http.h"
#include "quorumq/testsupport/wait.h"

namespace quorumq::testsupport {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::expected<std::string, std::string> find_broker_bin(const std::string& flag, const std::string& fallback) {
  if (!flag.empty()) return flag;
  if (const char* e = std::getenv("QUORUMQ_BROKER_BIN"); e && *e) return std::string(e);
  std::error_code ec;
  if (!fallback.empty() && fs::exists(fallback, ec)) return fallback;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const fs::path& cand : {self.parent_path().parent_path() / "broker" / "quorumq-broker",
                                self.parent_path() / "quorumq-broker"}) {
      if (fs::exists(cand, ec)) return cand.string();
    }
  }
  return std::unexpected(
      "cannot find quorumq-broker next to this binary's build tree: pass --broker-bin or set QUORUMQ_BROKER_BIN");
}

std::string log_tail(const fs::path& file, int lines) {
  std::ifstream f(file);
  std::deque<std::string> last;
  for (std::string l; std::getline(f, l);) {
    last.push_back(l);
    if (last.size() > static_cast<std::size_t>(lines)) last.pop_front();
  }
  std::string out;
  for (const auto& l : last) out += "\n    " + l;
  return out.empty() ? "(empty log)" : out;
}

BrokerProcess::BrokerProcess(std::string binary, int node_id, fs::path data_dir, std::vector<std::string> extra,
                             std::uint16_t port, std::uint16_t admin_port)
    : binary_(std::move(binary)),
      node_id_(node_id),
      data_dir_(std::move(data_dir)),
      extra_(std::move(extra)),
      port_(port),
      admin_port_(admin_port) {
  log_path_ = data_dir_.string() + ".log";
}

BrokerProcess::~BrokerProcess() { kill9(); }

std::expected<void, std::string> BrokerProcess::try_spawn() {
  if (running()) return std::unexpected("broker " + std::to_string(node_id_) + " already running");
  try {
    if (port_ == 0) port_ = free_port();
    if (admin_port_ == 0) admin_port_ = free_port();
    SpawnOptions o;
    o.argv = {binary_,
              "--node-id=" + std::to_string(node_id_),
              "--listen=127.0.0.1:" + std::to_string(port_),
              "--admin-listen=127.0.0.1:" + std::to_string(admin_port_),
              "--data-dir=" + data_dir_.string()};
    o.argv.insert(o.argv.end(), extra_.begin(), extra_.end());
    o.output = log_path_;
    // A terminal's Ctrl-C reaches the whole process group: the owner decides when brokers stop.
    o.die_with_parent = o.own_process_group = die_with_parent_;
    process_ = Process(o);
  } catch (const std::exception& e) {
    return std::unexpected("broker " + std::to_string(node_id_) + ": " + e.what());
  }
  paused_ = false;
  return {};
}

void BrokerProcess::spawn() {
  if (auto r = try_spawn(); !r) throw std::runtime_error(r.error());
}

bool BrokerProcess::ready() {
  auto r = http_get(admin_port_, "/readyz");
  return r && r->status == 200;
}

std::expected<void, std::string> BrokerProcess::try_wait_ready(std::chrono::milliseconds timeout) {
  bool exited = false;
  const bool ok = wait_until(
      [&] {
        if (!process_.running()) {
          exited = true;
          return true;
        }
        return ready();
      },
      timeout);
  const std::string who = "broker " + std::to_string(node_id_);
  if (exited) return std::unexpected(who + " exited during start; see " + log_path_.string() + ":" + log_tail(log_path_));
  if (!ok) return std::unexpected(who + " not ready in time; see " + log_path_.string() + ":" + log_tail(log_path_));
  return {};
}

void BrokerProcess::wait_ready(std::chrono::milliseconds timeout) {
  if (auto r = try_wait_ready(timeout); !r) throw std::runtime_error(r.error());
}

void BrokerProcess::start(std::chrono::milliseconds ready_timeout) {
  spawn();
  wait_ready(ready_timeout);
}

void BrokerProcess::kill9() {
  process_.kill9();
  paused_ = false;
}

int BrokerProcess::terminate(std::chrono::milliseconds timeout) {
  if (!running()) return -1;
  process_.signal(SIGTERM);
  const auto code = process_.wait(timeout);
  paused_ = false;
  if (!code) {
    process_.kill9();
    return -2;
  }
  return *code;
}

void BrokerProcess::pause() {
  if (process_.signal(SIGSTOP)) paused_ = true;
}

void BrokerProcess::resume() {
  if (process_.signal(SIGCONT)) paused_ = false;
}

std::string BrokerProcess::log_contains(const std::string& needle) const {
  std::ifstream in(log_path_);
  std::string line;
  while (std::getline(in, line))
    if (line.find(needle) != std::string::npos) return line;
  return {};
}

std::uint64_t BrokerProcess::rss_bytes() const {
  if (!running()) return 0;
  std::ifstream in("/proc/" + std::to_string(pid()) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

double BrokerProcess::cpu_seconds() const {
  if (!running()) return 0;
  std::ifstream in("/proc/" + std::to_string(pid()) + "/stat");
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

}  // namespace quorumq::testsupport
