// Majority arithmetic over the voters (paper §5.2, §5.3): pure functions, no state.
#pragma once

#include <optional>
#include <unordered_map>
#include <vector>

#include "quorumq/protocol/types.h"

namespace quorumq::raft {

// The largest index that a majority of `matches` (one per voter) is at or above.
log_index majority_index(std::vector<log_index> matches);

enum class VoteResult { pending, won, lost };

// Tally of votes received from voters (true = granted). Votes from non-voters are ignored.
VoteResult tally_votes(const std::vector<node_id>& voters,
                       const std::unordered_map<node_id, bool>& votes);

inline std::size_t quorum_size(std::size_t voters) { return voters / 2 + 1; }

}  // namespace quorumq::raft
