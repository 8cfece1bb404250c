// The small records a Raft group keeps in storage beside its log and hard state (the "meta
// store"), typed, and written as state records (broker/schema/state.fbs):
//   recovering:<group>  a damaged log was cut; rebuild it from the leader up to this entry
//   lost:<group>        this broker lost its data directory; vote only after catching up
//   applied:<group>     the applied index (partitions; the controller re-applies from a checkpoint)
// Records of earlier builds (raw little-endian integers) are still read.
#pragma once

#include <optional>
#include <string>

#include "quorumq/protocol/types.h"
#include "quorumq/storage/storage.h"

namespace quorumq::broker {

struct RecoveringMark {
  log_index until;
  std::optional<term_t> term;  // absent in records of builds that did not store it
};

class ReplicaMeta {
 public:
  ReplicaMeta(storage::Storage& storage, const std::string& group);

  std::optional<RecoveringMark> recovering() const;
  storage::WriteOp put_recovering(const RecoveringMark& m) const;
  storage::WriteOp delete_recovering() const;

  bool lost() const;
  storage::WriteOp put_lost() const;
  storage::WriteOp delete_lost() const;

  std::optional<log_index> applied() const;
  storage::WriteOp put_applied(log_index i) const;

 private:
  storage::Storage& storage_;
  std::string recovering_key_, lost_key_, applied_key_;
};

}  // namespace quorumq::broker
