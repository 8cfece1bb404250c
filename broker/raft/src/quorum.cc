#include "quorumq/raft/quorum.h"

#include <algorithm>

#include "quorumq/protocol/assert.h"

namespace quorumq::raft {

log_index majority_index(std::vector<log_index> matches) {
  QQ_ASSERT(!matches.empty());
  std::sort(matches.begin(), matches.end(), std::greater<>());
  // After sorting descending, the element at position n/2 is <= the values of n/2 + 1 voters.
  return matches[matches.size() / 2];
}

VoteResult tally_votes(const std::vector<node_id>& voters,
                       const std::unordered_map<node_id, bool>& votes) {
  std::size_t granted = 0, rejected = 0;
  for (node_id v : voters) {
    auto it = votes.find(v);
    if (it == votes.end()) continue;
    (it->second ? granted : rejected)++;
  }
  const std::size_t q = quorum_size(voters.size());
  if (granted >= q) return VoteResult::won;
  if (voters.size() - rejected < q) return VoteResult::lost;
  return VoteResult::pending;
}

}  // namespace quorumq::raft
