// Authorization of native requests and the security apis (security_handlers.cc).
#pragma once

#include <optional>
#include <span>
#include <string>

#include "context.h"
#include "quorumq/protocol/messages.h"
#include "security.h"

namespace quorumq::broker {

// The cluster resource's name in ACLs (as Kafka names it).
inline constexpr std::string_view kClusterResource = "kafka-cluster";

// nullopt: `who` may make this (verified) request; else the refusal to send (the first
// operation it lacks, counted and logged).
std::optional<protocol::OutgoingFrame> authorize(BrokerContext& ctx, const protocol::FrameHeader& h,
                                                 std::span<const std::uint8_t> payload, const Principal& who);
// Whether a listing (Metadata, ListTopics, DescribeGroups, ...) shows this resource to `who`.
bool visible(BrokerContext& ctx, const Principal& who, ResourceType type, const std::string& name);

}  // namespace quorumq::broker
