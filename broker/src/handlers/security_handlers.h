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
// A refusal by the ACLs, on either listener: counted in quorumq_authorization_failures_total and
// logged (rate-limited), naming `api`.
void count_refusal(BrokerContext& ctx, const Principal& who, AclOperation op, ResourceType type, std::string_view name,
                   std::string_view api);
// A SASL step's outcome on either listener ("client" or "Kafka"): a success or failure counted
// (quorumq_sasl_authentications_total, ..._failures_total) and logged; with limit_failure_log,
// failures at most once a minute per client address (the client listener; the Kafka listener
// logs each one: see docs/security.md, known gaps).
void count_login(BrokerContext& ctx, std::string_view listener, const std::string& peer, const SaslSession& session,
                 const SaslSession::Step& step, bool limit_failure_log);
// Whether a listing (Metadata, ListTopics, DescribeGroups, ...) shows this resource to `who`.
bool visible(BrokerContext& ctx, const Principal& who, ResourceType type, const std::string& name);

}  // namespace quorumq::broker
