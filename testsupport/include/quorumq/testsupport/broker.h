// BrokerProcess: one real quorumq-broker process on loopback — started with the standard
// --node-id/--listen/--admin-listen/--data-dir flags (plus any extra), its stdout and stderr
// appended to a log file next to its data directory, ready once its admin port answers /readyz
// 200 (polled with a deadline, never a fixed sleep), then killed (SIGKILL), stopped (SIGTERM),
// paused (SIGSTOP), resumed (SIGCONT) and started again on the same ports and data.
//
// Not thread-safe: callers sharing one across threads lock around it (bench/'s LocalCluster).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <string>
#include <vector>

#include "quorumq/testsupport/process.h"

namespace quorumq::testsupport {

// Where the broker binary is: `flag` if set, else $QUORUMQ_BROKER_BIN, else `fallback` if set
// and present, else quorumq-broker in <this executable's dir>/../broker/ or next to it.
std::expected<std::string, std::string> find_broker_bin(const std::string& flag, const std::string& fallback = {});

// The last `lines` lines of a file, indented, for an error message ("(empty log)" if none).
std::string log_tail(const std::filesystem::path& file, int lines = 5);

class BrokerProcess {
 public:
  // `port` / `admin_port` 0: a free port, chosen at the first spawn and kept for restarts.
  BrokerProcess(std::string binary, int node_id, std::filesystem::path data_dir, std::vector<std::string> extra = {},
                std::uint16_t port = 0, std::uint16_t admin_port = 0);
  ~BrokerProcess();  // SIGKILLs a process still running
  BrokerProcess(const BrokerProcess&) = delete;
  BrokerProcess& operator=(const BrokerProcess&) = delete;

  // Spawns and waits for /readyz; throws std::runtime_error (naming the log) if the broker
  // exits first or is not ready in time.
  void start(std::chrono::milliseconds ready_timeout = std::chrono::seconds(20));
  void spawn();  // starts the process without waiting; throws if it is already running
  void wait_ready(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // The same without exceptions: the error says what happened, with the log's last lines.
  std::expected<void, std::string> try_spawn();
  std::expected<void, std::string> try_wait_ready(std::chrono::milliseconds timeout);
  bool ready();  // /readyz answers 200 now

  void kill9();                                              // SIGKILL and reap
  int terminate(std::chrono::milliseconds timeout = std::chrono::seconds(20));  // SIGTERM; exit status, -2 if it had to be SIGKILLed
  void pause();                                              // SIGSTOP
  void resume();                                             // SIGCONT
  bool running() const { return process_.pid() > 0; }        // spawned and not reaped (paused counts)
  bool paused() const { return running() && paused_; }
  pid_t pid() const { return process_.pid(); }

  int node_id() const { return node_id_; }
  std::uint16_t port() const { return port_; }
  std::uint16_t admin_port() const { return admin_port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::filesystem::path& data_dir() const { return data_dir_; }
  const std::filesystem::path& log_file() const { return log_path_; }
  const std::string& binary() const { return binary_; }
  // The first line of the broker's log containing `needle`, or empty.
  std::string log_contains(const std::string& needle) const;
  std::uint64_t rss_bytes() const;  // resident memory, from /proc
  double cpu_seconds() const;       // user + system CPU time so far, from /proc

  void set_extra(std::vector<std::string> extra) { extra_ = std::move(extra); }
  // Children die with this process and leave the terminal's process group (the bench's brokers).
  void set_die_with_parent(bool on) { die_with_parent_ = on; }

 private:
  std::string binary_;
  int node_id_;
  std::filesystem::path data_dir_;
  std::filesystem::path log_path_;
  std::vector<std::string> extra_;
  std::uint16_t port_ = 0, admin_port_ = 0;
  bool die_with_parent_ = false;
  bool paused_ = false;
  Process process_;
};

}  // namespace quorumq::testsupport
