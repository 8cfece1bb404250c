// Request handlers: one function per api, each reading a verified request payload and answering
// through `Respond`. Handlers never block on the network; produce and long-poll fetch answer
// later, from whichever thread completes them.
#pragma once

#include <functional>
#include <optional>
#include <span>

#include "context.h"
#include "security.h"
#include "quorumq/protocol/frame.h"
#include "quorumq/protocol/messages.h"

namespace quorumq::broker {

// Thread-safe, called exactly once per request: with a frame to send, or nullopt when the
// request gets no response (produce with acks=none) but its in-flight bytes may be released.
using Respond = std::function<void(std::optional<protocol::OutgoingFrame>)>;

// `payload` passed verify_request for header.api_id/version; it is valid only during the call.
// `who` made the request (authorized here, before any handler runs; see security_handlers.h).
void handle_request(BrokerContext& ctx, const protocol::FrameHeader& header, std::span<const std::uint8_t> payload,
                    Respond respond, const Principal& who);

}  // namespace quorumq::broker
