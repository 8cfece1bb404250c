// PeerTransport: the broker-to-broker side of the network. It owns
//  - outbound replication links, one TCP connection per peer broker, carrying Raft messages of
//    every group batched into raft_envelope frames (internal api 100, one-way), and
//  - the peer listener (--peer-listen), which accepts those links from the other brokers.
// Every link starts with the peer handshake (api 101, peer_auth.h): cluster id, node ids and
// data-directory ids are checked and both sides prove they know the cluster secret before a
// single envelope is accepted. The client listener never accepts internal apis, so a client
// cannot pose as a peer.
//
// send() never blocks: it queues and wakes the link's writer coroutine. A link that cannot
// connect or write drops what it holds and reconnects with backoff; Raft retransmits, so loss
// costs latency, never safety. Queues are bounded (memory stays bounded if a peer is down).
// Inbound peer connections have their own budget (a few per peer), untouched by clients; one
// authenticated session per peer node (a newer one replaces an older one); an unfinished
// handshake is dropped after kHandshakeTimeout.
// Threads: Asio strands; send()/announce()/stats() are thread-safe.
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>

#include "config.h"
#include "incarnation.h"
#include "replicated_log.h"

namespace asio {
class io_context;
}

namespace quorumq::broker {

class PeerTransport final : public Transport {
 public:
  struct Hooks {
    // An envelope from an authenticated peer (env.from is that peer; messages not yet checked).
    std::function<void(const DecodedEnvelope&)> deliver;
    // A peer told us its advertised client address (in its handshake).
    std::function<void(node_id, HostPort)> client_address;
    // A peer's link to this broker (its authenticated inbound session) came up.
    std::function<void(node_id)> peer_connected;
    // A peer whose link was up now refuses connections on its peer port (its process is gone).
    std::function<void(node_id)> peer_unreachable;
    // A peer's advertised Kafka listener address (from its handshake), if it has one.
    std::function<void(node_id, HostPort)> kafka_address;
  };
  struct Stats {
    std::uint64_t dropped_messages = 0;     // queue full or link broken
    std::uint64_t inbound_open = 0;         // authenticated inbound sessions
    std::uint64_t handshakes_accepted = 0;  // inbound and outbound
    std::uint64_t handshakes_refused = 0;   // either side refused (wrong cluster, secret, node id...)
    std::uint64_t connections_refused = 0;  // unfinished handshakes evicted to make room
    std::uint64_t frames_rejected = 0;      // malformed or unexpected frames on a peer session
  };

  // `incarnation` heads every envelope (what we are, what we remember of the peer); `dir_id`
  // is this broker's data-directory id (sent in the handshake).
  PeerTransport(asio::io_context& io, const BrokerConfig& config, const Incarnation& incarnation, std::string dir_id);
  ~PeerTransport() override;
  // Binds --peer-listen (a cluster of more than one broker). Errors are values.
  std::expected<void, std::string> listen();
  void start(Hooks hooks);
  void stop();
  void send(node_id to, GroupMessage m) override;
  // Sends the "I lead these groups" announcement to every peer.
  void announce(const std::vector<LeaderAnnouncement>& led);
  Stats stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace quorumq::broker
