// PeerTransport: outbound replication links, one TCP connection per peer broker, carrying Raft
// messages of every group batched into raft_envelope frames (internal api 100, one-way).
//
// send() never blocks: it queues and wakes the link's writer coroutine. A link that cannot
// connect or write drops what it holds and reconnects with backoff; Raft retransmits, so loss
// costs latency, never safety. Queues are bounded (memory stays bounded if a peer is down).
#pragma once

#include <memory>

#include "config.h"
#include "incarnation.h"
#include "replicated_log.h"

namespace asio {
class io_context;
}

namespace quorumq::broker {

class PeerTransport final : public Transport {
 public:
  // `incarnation` heads every envelope (what we are, what we remember of the peer).
  PeerTransport(asio::io_context& io, const BrokerConfig& config, const Incarnation& incarnation);
  ~PeerTransport() override;
  void start();
  void stop();
  void send(node_id to, GroupMessage m) override;
  // Sends the "I lead these groups" announcement to every peer.
  void announce(const std::vector<LeaderAnnouncement>& led);
  std::uint64_t dropped_messages() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace quorumq::broker
