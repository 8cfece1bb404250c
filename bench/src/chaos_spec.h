// ChaosSpec: the parsed --chaos argument.
//   kill-leader:EVERY_S            SIGKILL a partition leader every EVERY_S, restart it after EVERY_S/2
//   pause-leader:EVERY_S:FOR_S     SIGSTOP a partition leader every EVERY_S, SIGCONT after FOR_S
//   restart-follower:EVERY_S       SIGKILL a follower of a partition every EVERY_S and restart it at once
#pragma once

#include <expected>
#include <string>

namespace quorumq::bench {

struct ChaosSpec {
  enum class Kind { none, kill_leader, pause_leader, restart_follower };
  Kind kind = Kind::none;
  double every_s = 0;  // the configured MTBF
  double for_s = 0;    // pause length (pause-leader only)

  static std::expected<ChaosSpec, std::string> parse(const std::string& text);
  std::string name() const;
};

}  // namespace quorumq::bench
