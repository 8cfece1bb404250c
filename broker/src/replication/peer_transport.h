// PeerTransport: the broker-to-broker side of the network. It owns
//  - outbound replication links, one TCP connection per peer broker, carrying Raft messages of
//    every group batched into raft_envelope frames (internal api 100, one-way), and
//  - the peer listener (--peer-listen), which accepts those links from the other brokers.
// With --peer-tls-* every link is mutual TLS first (the listener requires a certificate from the
// peer CA, the dialer verifies the listener's), and each side checks that the other's
// certificate names the node it claims or was meant to be (CN or DNS SAN quorumq-node-<id>).
// Then every link runs the peer handshake (api 101, peer_auth.h): cluster id, node ids and
// data-directory ids are checked and both sides prove they know the cluster secret before a
// single envelope is accepted. TLS and the handshake share one deadline (kHandshakeTimeout). The client listener never accepts internal apis, so a client
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
    std::uint64_t tls_handshake_failures = 0;  // peer TLS handshakes that failed (either side)
    std::uint64_t tls_identity_failures = 0;   // peer certificates not naming the node (either side)
    std::int64_t tls_not_after = 0;            // the peer certificate's expiry (Unix s); 0: no peer TLS
  };

  // `incarnation` heads every envelope (what we are, what we remember of the peer); `dir_id`
  // is this broker's data-directory id (sent in the handshake).
  PeerTransport(asio::io_context& io, const BrokerConfig& config, const Incarnation& incarnation, std::string dir_id);
  ~PeerTransport() override;
  // Loads the peer TLS files (if any), then binds --peer-listen (a cluster of more than one
  // broker). Errors are values.
  std::expected<void, std::string> listen();
  // Rereads the peer TLS files (SIGHUP): links made from now on use them, open ones carry on.
  // On failure (returned) the previous certificates stay. Thread-safe.
  std::optional<std::string> reload_tls();
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
