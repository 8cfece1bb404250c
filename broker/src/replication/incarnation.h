// Incarnation: has this broker lost the data it had? Its data directory has an id (storage
// dir_id), every replication envelope carries the sender's id and the id the sender remembers
// for the receiver, and each broker stores the ids its peers had ("peer_dir:<n>" in its meta).
// A broker that a peer remembers under another id started with a new, empty directory (a
// replaced disk): it forgot entries committed with its help and the votes it cast, so its
// Raft groups keep raft::Config::lost_state until each has caught up with a leader. A peer
// that never heard of it (a new cluster) says so, and the broker votes as usual at once.
// Peers adopt the new id only once the broker reports itself settled (every group caught up
// and applied), so a restart half-way through recovery is still recognised. (KIP-853 keys
// voters by id and directory id for the same reason.)
//
// Threads: every method is thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <vector>

#include "quorumq/protocol/types.h"
#include "quorumq/storage/storage.h"

namespace quorumq::broker {

class Incarnation {
 public:
  enum class Verdict { unknown, whole, lost };
  struct Header {
    std::string sender_dir;     // our directory id
    std::string receiver_dir;   // what we remember of the receiver's ("" = never heard of it)
    bool sender_settled = false;
  };

  // Loads what it remembers of `peers`. The verdict is unknown until a peer speaks (also for an
  // existing directory: it may be a new one that crashed half-way through recovering).
  Incarnation(storage::Storage& storage, const std::vector<node_id>& peers);

  Verdict verdict() const;
  bool lost() const { return verdict() != Verdict::whole; }
  Header header_for(node_id peer) const;
  // A peer's envelope header. Returns the verdict if this changed it.
  std::optional<Verdict> on_header(node_id from, const Header& h);
  // Every group caught up (and applied) after a lost verdict: peers may adopt our new id.
  // Sticky: once said, it is never taken back.
  void set_settled(bool settled);
  bool settled() const;

 private:
  void remember(node_id peer, const std::string& dir);  // with mu_ held

  storage::Storage& storage_;
  const std::string own_;
  mutable std::mutex mu_;
  Verdict verdict_;
  bool settled_ = false;
  std::map<node_id, std::string> peers_;
};

const char* to_string(Incarnation::Verdict v);

}  // namespace quorumq::broker
