// Expected failures of the Raft core's API, as values (std::error_code with its own category).
#pragma once

#include <optional>
#include <system_error>

#include "quorumq/protocol/types.h"

namespace quorumq::raft {

enum class errc {
  not_leader = 1,              // propose/transfer on a non-leader: see ProposeError::leader_hint
  leadership_transfer_pending, // a transfer is in progress: proposals wait (thesis §3.10)
  invalid_transfer_target,     // transfer to self, a learner or a non-member
};

const std::error_category& raft_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), raft_category()};
}

struct ProposeError {
  std::error_code code;
  std::optional<node_id> leader_hint;  // the known leader, for redirecting the client
};

}  // namespace quorumq::raft

template <>
struct std::is_error_code_enum<quorumq::raft::errc> : std::true_type {};
