// LocalCluster: the --spawn N brokers. Each runs quorumq-broker in its own subdirectory of one
// temporary directory, on free loopback ports, with --peers naming all of them. Starts them
// together (a broker is ready only once the controller group has a leader, which needs a
// majority), waits for /readyz, and at the end SIGKILLs whatever still runs and removes the
// directory. Children get PR_SET_PDEATHSIG so a crashed or killed bench leaves no brokers behind;
// since that signal fires when the forking *thread* ends (not the process), every fork happens
// on one spawner thread that lives as long as the LocalCluster (a restart from the chaos thread
// would otherwise die with it).
//
// Chaos hooks: kill (SIGKILL + reap), start again on the same ports and data, pause (SIGSTOP),
// resume (SIGCONT), and which broker leads which partition according to its own /metrics.
//
// Thread-safety: the chaos thread and the main thread both call in; one mutex guards the
// process table. /metrics polling happens outside the lock.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <expected>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace quorumq::bench {

struct ClusterOptions {
  int brokers = 1;
  std::string broker_bin;          // empty: next to the bench build tree or $QUORUMQ_BROKER_BIN
  std::string log_level = "warn";
  std::filesystem::path base_dir;  // temp dirs go under this (empty: the system temp dir)
  bool keep_data = false;          // leave the directory for inspection
  std::vector<std::string> extra_args;
};

class LocalCluster {
 public:
  explicit LocalCluster(ClusterOptions options);
  ~LocalCluster();  // stop_all() + remove the directory unless keep_data
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  // Spawns all brokers and waits until every one answers /readyz 200.
  std::expected<void, std::string> start(std::chrono::milliseconds timeout);
  void stop_all();

  std::string bootstrap() const;
  const std::filesystem::path& dir() const { return dir_; }
  const std::string& broker_bin() const { return bin_; }
  int size() const { return static_cast<int>(nodes_.size()); }

  // By node id (1..N).
  void kill(int node);
  std::expected<void, std::string> restart(int node, std::chrono::milliseconds ready_timeout);
  void pause(int node);
  void resume(int node);
  bool running(int node) const;

  // node id -> partitions it leads (by its /metrics), over running, unpaused brokers.
  std::map<int, std::set<std::int32_t>> leaders(const std::string& topic) const;
  std::vector<int> nodes() const;

  // Where the broker binary is: --broker-bin, $QUORUMQ_BROKER_BIN, or <bench dir>/../broker/.
  static std::expected<std::string, std::string> find_broker_bin(const std::string& flag);

 private:
  struct Node {
    int id = 0;
    std::uint16_t port = 0, admin_port = 0, peer_port = 0;
    std::filesystem::path data_dir, log_file;
    pid_t pid = -1;
    bool paused = false;
  };
  void spawn_locked(Node& n);
  pid_t fork_broker(const std::vector<std::string>& args, const std::filesystem::path& log);  // spawner thread only
  void spawner_loop();
  bool ready(const Node& n) const;

  ClusterOptions options_;
  std::string bin_;
  std::filesystem::path dir_;
  mutable std::mutex mu_;
  std::vector<Node> nodes_;
  std::string peers_;               // the brokers' peer-listener addresses (--peers)
  std::filesystem::path secret_file_;  // the cluster secret every broker proves it knows

  std::mutex spawn_mu_;
  std::condition_variable spawn_cv_;
  std::deque<std::function<void()>> spawn_jobs_;
  bool spawn_stop_ = false;
  std::thread spawner_;  // last member: started after everything it uses exists
};

}  // namespace quorumq::bench
