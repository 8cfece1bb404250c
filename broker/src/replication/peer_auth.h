// Peer authentication: the handshake messages (internal api 101) and the HMAC that proves a
// broker knows the cluster secret without sending it. Pure functions, no sockets: the peer
// transport drives the steps, tests and fuzzers call these directly.
//
// The steps (schema/raft.fbs, PeerHandshake): hello (dialer) -> challenge (listener, with its
// MAC) -> proof (dialer's MAC) -> welcome. Each side checks the other's MAC over both nonces, so
// a replayed handshake fails and a listener cannot be impersonated either. With no secret
// configured the MAC still binds cluster id and node ids (an empty-key HMAC), which catches a
// misconfigured peer but authenticates nothing: the broker warns at start.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quorumq/protocol/messages.h"

namespace quorumq::broker {

inline constexpr protocol::ApiId kPeerHandshakeApi = static_cast<protocol::ApiId>(101);
inline constexpr std::uint16_t kHandshakeVersion = 1;
inline constexpr std::size_t kNonceBytes = 32;
inline constexpr std::size_t kMacBytes = 32;

enum class HandshakeStep : std::uint8_t { refused = 0, hello = 1, challenge = 2, proof = 3, welcome = 4 };

struct HandshakeMsg {
  HandshakeStep step = HandshakeStep::refused;
  std::uint16_t version = kHandshakeVersion;
  std::string cluster_id;
  std::int32_t node_id = -1;
  std::int32_t target_id = -1;
  std::string dir_id;
  std::string client_host;
  std::uint16_t client_port = 0;
  std::vector<std::uint8_t> nonce;
  std::vector<std::uint8_t> mac;
  std::string reason;
  std::string kafka_host;  // empty: the sender has no Kafka listener
  std::uint16_t kafka_port = 0;
};

// Registers api 101 (verifier) with the protocol table. Idempotent; call at start-up.
void register_handshake_api();

protocol::OutgoingFrame encode_handshake(const HandshakeMsg& m);
// nullopt unless the payload is a well-formed handshake (flatbuffers-verified here, strings and
// vectors bounded): the bytes come from an unauthenticated socket.
std::optional<HandshakeMsg> decode_handshake(std::span<const std::uint8_t> payload);

std::vector<std::uint8_t> make_nonce();

enum class MacRole { listener, dialer };
// HMAC-SHA256(secret, role | cluster | dialer | listener | dialer nonce | listener nonce).
std::vector<std::uint8_t> handshake_mac(std::string_view secret, MacRole role, std::string_view cluster_id,
                                        std::int32_t dialer, std::int32_t listener,
                                        std::span<const std::uint8_t> dialer_nonce,
                                        std::span<const std::uint8_t> listener_nonce);
// Constant-time comparison (CRYPTO_memcmp); false for different lengths.
bool mac_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b);

}  // namespace quorumq::broker
