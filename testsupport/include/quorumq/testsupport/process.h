// Process: one child process started with fork + exec — argv, extra environment, output to a
// file or to pipes, extra descriptors — and signalled, waited for with a deadline, or killed.
// The one place in the tree (bench/ and tests/) that forks a program.
//
// Between fork and exec the child makes only async-signal-safe calls (the parent may have
// threads); everything it needs (argv, envp, opened files, pipes) is prepared before the fork,
// with O_CLOEXEC so that a sibling forked meanwhile by another thread does not inherit it.
//
// die_with_parent sets PR_SET_PDEATHSIG(SIGKILL). That signal fires when the forking *thread*
// ends, not the process, so such children are forked on one helper thread that lives as long
// as the process: a child spawned from a short-lived thread (a chaos thread restarting a
// broker) then still lives until the process dies.
//
// Not thread-safe: one Process is used by one thread at a time (callers lock if needed).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace quorumq::testsupport {

struct SpawnOptions {
  std::vector<std::string> argv;           // argv[0]: the program's path (or name, with search_path)
  std::vector<std::string> env;            // "NAME=value", added to (or replacing in) this environment
  bool search_path = false;                // look argv[0] up in $PATH (execvp)
  std::filesystem::path output;            // non-empty: stdout and stderr appended to this file
  bool pipe_stdin = false;                 // stdin_fd() writes to the child's stdin
  bool pipe_stdout = false;                // stdout_fd() reads the child's stdout (overrides `output`)
  bool pipe_stderr = false;                // stderr_fd() reads the child's stderr (overrides `output`)
  std::vector<std::pair<int, int>> pass_fds;  // {parent fd, child fd}: the parent's fd appears as child fd
  bool die_with_parent = false;            // SIGKILLed when this process dies (see above)
  bool own_process_group = false;          // setpgid(0, 0): a terminal's Ctrl-C does not reach it
};

class Process {
 public:
  Process() = default;
  // Starts the child; throws std::runtime_error if a pipe, the output file or fork fails. A
  // program that cannot be executed exits with status 127.
  explicit Process(const SpawnOptions& options);
  ~Process();  // SIGKILLs and reaps a child still running; closes the pipe ends
  Process(Process&& o) noexcept;
  Process& operator=(Process&& o) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // -1 before start and once the child was reaped.
  pid_t pid() const { return pid_; }
  // True until the child has exited and been reaped (reaps it if it has exited).
  bool running();
  // Sends `sig` (SIGSTOP, SIGCONT, SIGTERM, ...); false if there is no child or kill() failed.
  bool signal(int sig) const;
  // SIGKILL and reap. No-op without a running child.
  void kill9();
  // Waits up to `timeout` for the child to exit; its exit_code() then, or nullopt if it still runs.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // Waits for the child to exit, however long; its exit_code().
  int wait();

  // Once reaped: the raw waitpid() status (WIFSIGNALED etc.), and the shell's view of it: the
  // exit code, or 128 + the signal that ended it.
  std::optional<int> wait_status() const { return status_; }
  std::optional<int> exit_code() const;
  static int exit_code_of(int wait_status);

  // The parent's pipe ends (-1 unless requested). Owned by the Process: closed by its destructor.
  int stdin_fd() const { return stdin_; }
  int stdout_fd() const { return stdout_; }
  int stderr_fd() const { return stderr_; }
  void close_stdin();

 private:
  void reaped(int status);
  pid_t pid_ = -1;
  std::optional<int> status_;
  int stdin_ = -1, stdout_ = -1, stderr_ = -1;
};

// Runs a program to completion: its exit code (or 128 + signal; SIGKILLed after `timeout`) and
// everything it wrote to stdout and stderr. `stdin_data` is written to its stdin, then closed.
// argv[0] is looked up in $PATH.
struct RunResult {
  int status = -1;
  std::string out;
  std::string err;
};
RunResult run_program(const std::vector<std::string>& argv, const std::string& stdin_data = {},
                      std::chrono::milliseconds timeout = std::chrono::seconds(120));

}  // namespace quorumq::testsupport
