#include "quorumq/testsupport/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "quorumq/testsupport/wait.h"

extern char** environ;

namespace quorumq::testsupport {

namespace {

using namespace std::chrono_literals;

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Runs jobs on one thread that lives as long as the process (see the header: PR_SET_PDEATHSIG
// belongs to the forking thread). Never destroyed: a static destructor would run while the
// thread still waits on the condition variable.
class Spawner {
 public:
  static Spawner& instance() {
    static Spawner* s = new Spawner;
    return *s;
  }
  pid_t run(const std::function<pid_t()>& fork_fn) {
    std::packaged_task<pid_t()> task(fork_fn);
    auto result = task.get_future();
    {
      std::lock_guard lock(mu_);
      jobs_.emplace_back([&task] { task(); });
    }
    cv_.notify_one();
    return result.get();
  }

 private:
  Spawner() {
    std::thread([this] {
      for (;;) {
        std::function<void()> job;
        {
          std::unique_lock lock(mu_);
          cv_.wait(lock, [this] { return !jobs_.empty(); });
          job = std::move(jobs_.front());
          jobs_.pop_front();
        }
        job();
      }
    }).detach();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
};

// What the child needs, built before the fork: the child only copies descriptors and execs.
struct ChildPlan {
  std::vector<std::string> args;
  std::vector<char*> argv;
  std::vector<std::string> env_storage;
  std::vector<char*> envp;  // empty: inherit environ
  bool search_path = false;
  int in = -1, out = -1, err = -1;  // become 0, 1, 2 when >= 0
  std::vector<std::pair<int, int>> pass_fds;
  bool die_with_parent = false, own_process_group = false;
};

// The child between fork and exec: async-signal-safe calls only.
[[noreturn]] void exec_child(const ChildPlan& p, pid_t parent) {
  if (p.die_with_parent) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);  // the parent died before prctl
  }
  if (p.own_process_group) ::setpgid(0, 0);
  const int std_fds[3] = {p.in, p.out, p.err};
  for (int target = 0; target < 3; ++target) {
    const int src = std_fds[target];
    if (src < 0) continue;
    if (::dup2(src, target) < 0) ::_exit(127);  // the copy does not have FD_CLOEXEC
  }
  for (const auto& [src, target] : p.pass_fds) {
    if (src == target) {
      if (::fcntl(target, F_SETFD, 0) < 0) ::_exit(127);  // dup2 onto itself would keep FD_CLOEXEC
    } else if (::dup2(src, target) < 0) {
      ::_exit(127);
    }
  }
  char* const* argv = p.argv.data();
  if (p.envp.empty()) {
    if (p.search_path) ::execvp(argv[0], argv);
    else ::execv(argv[0], argv);
  } else {
    char* const* envp = p.envp.data();
    if (p.search_path) ::execvpe(argv[0], argv, envp);
    else ::execve(argv[0], argv, envp);
  }
  ::_exit(127);
}

}  // namespace

Process::Process(const SpawnOptions& o) {
  if (o.argv.empty()) throw std::invalid_argument("spawn: empty argv");
  ChildPlan p;
  p.args = o.argv;
  for (auto& a : p.args) p.argv.push_back(a.data());
  p.argv.push_back(nullptr);
  if (!o.env.empty()) {
    auto name_of = [](const std::string& kv) { return kv.substr(0, kv.find('=')); };
    for (char** e = environ; e && *e; ++e) {
      const std::string kv = *e;
      const bool replaced =
          std::any_of(o.env.begin(), o.env.end(), [&](const std::string& x) { return name_of(x) == name_of(kv); });
      if (!replaced) p.env_storage.push_back(kv);
    }
    p.env_storage.insert(p.env_storage.end(), o.env.begin(), o.env.end());
    for (auto& kv : p.env_storage) p.envp.push_back(kv.data());
    p.envp.push_back(nullptr);
  }
  p.search_path = o.search_path;
  p.pass_fds = o.pass_fds;
  p.die_with_parent = o.die_with_parent;
  p.own_process_group = o.own_process_group;

  // Child ends of the pipes and the output file, closed in the parent after the fork.
  int child_in = -1, child_out = -1, child_err = -1, file = -1;
  auto cleanup_child_ends = [&] {
    close_fd(child_in);
    close_fd(child_out);
    close_fd(child_err);
    close_fd(file);
  };
  try {
    int fds[2];
    if (o.pipe_stdin) {
      if (::pipe2(fds, O_CLOEXEC) != 0) fail("pipe");
      child_in = fds[0], stdin_ = fds[1];
    }
    if (o.pipe_stdout) {
      if (::pipe2(fds, O_CLOEXEC) != 0) fail("pipe");
      stdout_ = fds[0], child_out = fds[1];
    }
    if (o.pipe_stderr) {
      if (::pipe2(fds, O_CLOEXEC) != 0) fail("pipe");
      stderr_ = fds[0], child_err = fds[1];
    }
    if (!o.output.empty() && (!o.pipe_stdout || !o.pipe_stderr)) {
      file = ::open(o.output.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (file < 0) fail("open " + o.output.string());
    }
  } catch (...) {
    cleanup_child_ends();
    close_fd(stdin_);
    close_fd(stdout_);
    close_fd(stderr_);
    throw;
  }
  p.in = child_in;
  p.out = child_out >= 0 ? child_out : file;
  p.err = child_err >= 0 ? child_err : file;

  const pid_t parent = ::getpid();
  int fork_errno = 0;  // errno is per thread, and the fork may happen on the spawner's
  auto do_fork = [&]() -> pid_t {
    const pid_t pid = ::fork();
    if (pid == 0) exec_child(p, parent);
    if (pid < 0) fork_errno = errno;
    return pid;
  };
  pid_ = o.die_with_parent ? Spawner::instance().run(do_fork) : do_fork();
  cleanup_child_ends();
  if (pid_ < 0) {
    close_fd(stdin_);
    close_fd(stdout_);
    close_fd(stderr_);
    errno = fork_errno;
    fail("fork " + o.argv[0]);
  }
}

Process::~Process() {
  kill9();
  close_fd(stdin_);
  close_fd(stdout_);
  close_fd(stderr_);
}

Process::Process(Process&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      status_(std::exchange(o.status_, std::nullopt)),
      stdin_(std::exchange(o.stdin_, -1)),
      stdout_(std::exchange(o.stdout_, -1)),
      stderr_(std::exchange(o.stderr_, -1)) {}

Process& Process::operator=(Process&& o) noexcept {
  if (this != &o) {
    kill9();
    close_fd(stdin_);
    close_fd(stdout_);
    close_fd(stderr_);
    pid_ = std::exchange(o.pid_, -1);
    status_ = std::exchange(o.status_, std::nullopt);
    stdin_ = std::exchange(o.stdin_, -1);
    stdout_ = std::exchange(o.stdout_, -1);
    stderr_ = std::exchange(o.stderr_, -1);
  }
  return *this;
}

void Process::reaped(int status) {
  status_ = status;
  pid_ = -1;
}

bool Process::running() {
  if (pid_ <= 0) return false;
  int st = 0;
  if (::waitpid(pid_, &st, WNOHANG) == pid_) {
    reaped(st);
    return false;
  }
  return true;
}

bool Process::signal(int sig) const { return pid_ > 0 && ::kill(pid_, sig) == 0; }

void Process::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int st = 0;
  ::waitpid(pid_, &st, 0);
  reaped(st);
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  if (pid_ > 0) wait_until([&] { return !running(); }, timeout);
  if (pid_ > 0) return std::nullopt;
  return exit_code();
}

int Process::wait() {
  if (pid_ > 0) {
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    reaped(st);
  }
  return exit_code().value_or(-1);
}

std::optional<int> Process::exit_code() const {
  if (!status_) return std::nullopt;
  return exit_code_of(*status_);
}

int Process::exit_code_of(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st); }

void Process::close_stdin() { close_fd(stdin_); }

RunResult run_program(const std::vector<std::string>& argv, const std::string& stdin_data,
                      std::chrono::milliseconds timeout) {
  SpawnOptions o;
  o.argv = argv;
  o.search_path = true;
  o.pipe_stdin = o.pipe_stdout = o.pipe_stderr = true;
  Process child(o);
  RunResult r;
  std::size_t written = 0;
  if (stdin_data.empty()) child.close_stdin();
  else ::fcntl(child.stdin_fd(), F_SETFL, O_NONBLOCK);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool out_open = true, err_open = true;
  while (out_open || err_open) {
    pollfd fds[3];
    int n = 0;
    if (out_open) fds[n++] = {child.stdout_fd(), POLLIN, 0};
    if (err_open) fds[n++] = {child.stderr_fd(), POLLIN, 0};
    if (child.stdin_fd() >= 0) fds[n++] = {child.stdin_fd(), POLLOUT, 0};
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      child.signal(SIGKILL);
      break;
    }
    ::poll(fds, static_cast<nfds_t>(n), static_cast<int>(std::min<long>(left.count(), 1000)));
    for (int i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      if (fds[i].fd == child.stdin_fd()) {
        const ssize_t w = ::write(fds[i].fd, stdin_data.data() + written, stdin_data.size() - written);
        if (w > 0) written += static_cast<std::size_t>(w);
        if (w < 0 && errno != EAGAIN) written = stdin_data.size();
        if (written == stdin_data.size()) child.close_stdin();
        continue;
      }
      char buf[65536];
      const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      const bool is_out = fds[i].fd == child.stdout_fd();
      if (got <= 0) {
        (is_out ? out_open : err_open) = false;
      } else {
        (is_out ? r.out : r.err).append(buf, static_cast<std::size_t>(got));
      }
    }
  }
  child.close_stdin();
  r.status = child.wait();
  return r;
}

}  // namespace quorumq::testsupport
