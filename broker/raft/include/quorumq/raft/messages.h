// Messages between Raft peers. One flat struct (as etcd's raftpb.Message) so the driver can
// encode it with one schema; fields a type does not use stay default.
#pragma once

#include <string>
#include <vector>

#include "quorumq/raft/entry.h"

namespace quorumq::raft {

enum class MessageType : std::uint8_t {
  pre_vote,         // thesis §9.6: "would you vote for me at term+1?" (no term change)
  pre_vote_resp,
  vote,             // RequestVote (paper §5.2)
  vote_resp,
  append,           // AppendEntries (paper §5.3)
  append_resp,
  heartbeat,        // leader liveness + commit index (verified by index/log_term, no entries)
  heartbeat_resp,
  install_snapshot, // "your log starts at index+1, entry `index` has term log_term" (§7-like)
  timeout_now,      // leadership transfer: start an election now (thesis §3.10)
};

const char* to_string(MessageType t);

struct Message {
  MessageType type = MessageType::append;
  node_id from;
  node_id to;
  term_t term;  // sender's term; for pre_vote the term the sender would campaign at

  // vote/pre_vote: the candidate's last log index.  append: index of the entry preceding
  // `entries` (prevLogIndex).  heartbeat: the index `commit` refers to, with its term in
  // log_term, so the follower can verify it holds that entry before committing.  append_resp: on success the highest index known to match the
  // leader (and durable on the sender); on reject the rejected prevLogIndex.
  // install_snapshot: the new log starts at index + 1.
  log_index index;
  // vote/pre_vote: term of the candidate's last entry.  append: prevLogTerm.  append_resp
  // reject: term of the follower's entry at reject_hint (0 if unknown).
  // install_snapshot: term of entry `index`.
  term_t log_term;
  std::vector<Entry> entries;  // append
  log_index commit;            // append: leader's commit; heartbeat: min(match, commit)
  bool reject = false;         // *_resp
  // append_resp reject: the follower's guess of the last index that may match (fast
  // backtracking, paper §5.3 end / thesis §5.3). heartbeat_resp reject: the follower's last
  // index, lower than what the leader thought it acknowledged (the follower lost its disk).
  log_index reject_hint;
  bool transfer = false;  // vote: campaign caused by timeout_now, ignores the leader lease
  // append, heartbeat, install_snapshot: the leader's last log index when it sent this. A
  // member that lost its durable state catches up to it before it votes again (Config::lost_state).
  log_index leader_last;
};

std::string to_string(const Message& m);

}  // namespace quorumq::raft
