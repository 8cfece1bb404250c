// Integration-test harness: real quorumq-broker processes on loopback with temporary data
// directories, started, killed (SIGKILL), paused and restarted; readiness is a condition polled
// with a deadline (/readyz), never a fixed sleep.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace quorumq::test {

using namespace std::chrono_literals;

// A fresh directory under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "quorumq-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
std::uint16_t free_port();

// Polls `cond` every few milliseconds until it holds or `timeout` passes.
bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout);

// GET http://127.0.0.1:port/path; the status code and body, or nullopt if nothing answered.
struct HttpReply {
  int status = 0;
  std::string body;
};
std::optional<HttpReply> http_get(std::uint16_t port, const std::string& path);

std::string broker_binary();

class BrokerProcess {
 public:
  // `extra` flags are appended to the standard --node-id/--listen/--admin-listen/--data-dir.
  BrokerProcess(int node_id, std::filesystem::path data_dir, std::vector<std::string> extra = {},
                std::uint16_t port = 0);
  ~BrokerProcess();  // SIGKILLs a process still running

  // Starts the process (new ports only on the first start) and waits for /readyz.
  void start(std::chrono::milliseconds ready_timeout = 20s);
  void spawn();  // starts the process without waiting
  void wait_ready(std::chrono::milliseconds timeout = 20s);
  void kill9();                 // SIGKILL and reap
  int terminate(std::chrono::milliseconds timeout = 20s);  // SIGTERM; returns the exit status
  void pause();                 // SIGSTOP
  void resume();                // SIGCONT
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  std::uint16_t port() const { return port_; }
  std::uint16_t admin_port() const { return admin_port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::filesystem::path& data_dir() const { return data_dir_; }
  std::filesystem::path log_file() const { return log_path_; }
  // The first line of the broker's log matching `needle`, or empty.
  std::string log_contains(const std::string& needle) const;
  // Resident memory of the process, from /proc.
  std::uint64_t rss_bytes() const;
  // CPU time (user + system) the process has used so far, from /proc.
  double cpu_seconds() const;

  void set_extra(std::vector<std::string> extra) { extra_ = std::move(extra); }

 private:
  int node_id_;
  std::filesystem::path data_dir_;
  std::filesystem::path log_path_;
  std::vector<std::string> extra_;
  std::uint16_t port_ = 0, admin_port_ = 0;
  pid_t pid_ = -1;
};

// Runs a program, waits for it, returns exit status and captured stdout/stderr.
struct RunResult {
  int status = -1;
  std::string out;
  std::string err;
};
RunResult run_program(const std::vector<std::string>& argv, const std::string& stdin_data = {},
                      std::chrono::milliseconds timeout = 120s);

}  // namespace quorumq::test
