// Which partitions a subscribed consumer reads: the replaceable piece of the Consumer.
// Today: every partition of every subscribed topic (no group membership on the broker yet).
// Group membership (issue 6) replaces it with an assignor fed by the coordinator's
// join/sync answers; the Consumer already diffs successive assignments and calls the
// RebalanceListener (on_revoked before partitions go, on_assigned after they come).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core.h"
#include "quorumq/types.h"

namespace quorumq::client {

class Assignor {
 public:
  virtual ~Assignor() = default;
  // I/O thread. Fills `error` when the subscription cannot be served (unknown topic).
  virtual std::vector<TopicPartition> assign(const MetadataCache& md, const std::vector<std::string>& topics,
                                             std::optional<Error>& error) = 0;
};

class AllPartitionsAssignor final : public Assignor {
 public:
  std::vector<TopicPartition> assign(const MetadataCache& md, const std::vector<std::string>& topics,
                                     std::optional<Error>& error) override;
};

}  // namespace quorumq::client
