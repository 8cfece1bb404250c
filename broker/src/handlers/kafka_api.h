// Kafka-protocol requests (issue 17): the handlers behind --kafka-listen. Free of Asio like the
// native handlers; the server's KafkaConnection frames requests and writes the answers in
// request order.
//
// Served so far: ApiVersions 0-3 (v3's flexible request with the v0 response header, and the
// UNSUPPORTED_VERSION answer clients fall back on) and Metadata 0-8 (every broker's Kafka
// address, leaders, replicas, ISR, the controller). A request for any other api or version
// closes the connection, as a Kafka broker does; ApiVersions lists only what is served, so
// clients do not send the rest.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "context.h"
#include "security.h"

namespace quorumq::broker::kafka {

struct Answer {
  std::vector<std::uint8_t> bytes;  // the whole response, size prefix included; empty: none
  bool close = false;               // close the connection after writing `bytes`
  std::string why;                  // for the log when closing
};

// One Kafka connection's authentication state (SaslHandshake, SaslAuthenticate; kafka_sasl.cc).
// Its connection runs SASL requests alone (never beside another request), so no lock.
struct Session {
  SaslSession sasl;
  std::string mechanism;    // from SaslHandshake
  bool raw_tokens = false;  // after SaslHandshake v0: the next frames are bare SASL tokens
  std::string peer;         // the client's address, for log lines
};

// Handles one request (the bytes after its size prefix) of `session`'s connection. Calls `done`
// exactly once, possibly on another thread.
void handle(BrokerContext& ctx, Session& session, std::span<const std::uint8_t> request,
            std::function<void(Answer)> done);

// What ApiVersions advertises: (api key, min version, max version).
struct ApiRange {
  std::int16_t key, min, max;
};
std::span<const ApiRange> supported_apis();

}  // namespace quorumq::broker::kafka
