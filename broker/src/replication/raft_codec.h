// Encoding of Raft messages into the raft_envelope internal api (schema/raft.fbs) and back.
// Decoding never trusts the bytes: the payload was verified by the flatbuffers verifier
// registered for api 100, and out-of-range enum values are rejected here.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "quorumq/protocol/messages.h"
#include "quorumq/raft/messages.h"

namespace quorumq::broker {

inline constexpr protocol::ApiId kRaftEnvelopeApi = static_cast<protocol::ApiId>(100);

struct GroupMessage {
  std::string group;
  raft::Message msg;
};
struct LeaderAnnouncement {
  std::string group;
  std::int32_t leader = -1;
  std::uint64_t term = 0;
  std::int64_t high_watermark = -1;    // partitions: the leader's committed end offset
  std::int64_t log_start_offset = -1;  // partitions: the first offset still stored
  std::vector<std::int32_t> isr;       // in-sync replicas as the leader sees them
};

// Registers api 100 with the protocol's version table and verifier. Call once at start-up.
void register_raft_api();

// Incarnation::Header's fields (kept here so the codec needs no broker state).
struct DirHeader {
  std::string sender_dir;
  std::string receiver_dir;
  bool sender_settled = false;
};

protocol::OutgoingFrame encode_envelope(std::int32_t from, const std::string& cluster_id,
                                        const std::vector<GroupMessage>& msgs,
                                        const std::vector<LeaderAnnouncement>& leaders, const DirHeader& dirs = {});

struct DecodedEnvelope {
  std::int32_t from = -1;
  std::string cluster_id;
  std::vector<GroupMessage> messages;
  std::vector<LeaderAnnouncement> leaders;
  DirHeader dirs;
};
// nullopt if a field is out of range (the frame already passed the verifier).
std::optional<DecodedEnvelope> decode_envelope(std::span<const std::uint8_t> payload);

}  // namespace quorumq::broker
