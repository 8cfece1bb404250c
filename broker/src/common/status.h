// The broker's one error value: what every layer returns or hands to a callback when something
// did not work — the wire error code the client will see, a message that says what to do, and
// where to go instead when this broker is not the one (a partition's or the controller's leader).
// Results that carry a value besides (a proposal's index, a produce's base offset, a produce
// request's batches) hold a Status, not their own copy of these fields.
#pragma once

#include <optional>
#include <string>

#include "quorumq/protocol/errors.h"
#include "quorumq/protocol/types.h"

namespace quorumq::broker {

struct Status {
  wire::ErrorCode code = wire::ErrorCode::none;
  std::string message;                   // says what happened and what to do; empty when ok
  std::optional<node_id> leader_hint;    // with not_leader / not_coordinator: who to ask instead

  bool ok() const { return code == wire::ErrorCode::none; }
  explicit operator bool() const = delete;  // say ok() or check code: "if (status)" reads both ways
};

}  // namespace quorumq::broker
