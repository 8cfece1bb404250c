#include "quorumq/raft/messages.h"

#include <cstdio>

#include "quorumq/raft/ready.h"

namespace quorumq::raft {

const char* to_string(MessageType t) {
  switch (t) {
    case MessageType::pre_vote: return "pre_vote";
    case MessageType::pre_vote_resp: return "pre_vote_resp";
    case MessageType::vote: return "vote";
    case MessageType::vote_resp: return "vote_resp";
    case MessageType::append: return "append";
    case MessageType::append_resp: return "append_resp";
    case MessageType::heartbeat: return "heartbeat";
    case MessageType::heartbeat_resp: return "heartbeat_resp";
    case MessageType::install_snapshot: return "install_snapshot";
    case MessageType::timeout_now: return "timeout_now";
  }
  return "?";
}

const char* to_string(Role r) {
  switch (r) {
    case Role::follower: return "follower";
    case Role::pre_candidate: return "pre_candidate";
    case Role::candidate: return "candidate";
    case Role::leader: return "leader";
  }
  return "?";
}

std::string to_string(const Message& m) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "%s %d->%d t=%llu idx=%llu lt=%llu n=%zu commit=%llu%s hint=%llu%s",
                to_string(m.type), m.from.value, m.to.value,
                static_cast<unsigned long long>(m.term.value),
                static_cast<unsigned long long>(m.index.value),
                static_cast<unsigned long long>(m.log_term.value), m.entries.size(),
                static_cast<unsigned long long>(m.commit.value), m.reject ? " REJECT" : "",
                static_cast<unsigned long long>(m.reject_hint.value),
                m.transfer ? " transfer" : "");
  return buf;
}

}  // namespace quorumq::raft
