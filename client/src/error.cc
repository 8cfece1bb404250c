#include "quorumq/error.h"

#include <string>

#include "core.h"
#include "quorumq/protocol/errors.h"
#include "quorumq/version.h"

namespace quorumq {

// BrokerError mirrors the generated enum: a renumbered schema would break this build, not users.
static_assert(static_cast<int>(BrokerError::group_id_not_found) ==
              static_cast<int>(wire::ErrorCode::group_id_not_found));
static_assert(static_cast<int>(BrokerError::not_leader) == static_cast<int>(wire::ErrorCode::not_leader));
static_assert(static_cast<int>(BrokerError::duplicate_sequence) ==
              static_cast<int>(wire::ErrorCode::duplicate_sequence));
static_assert(static_cast<int>(BrokerError::group_not_empty) == static_cast<int>(wire::ErrorCode::group_not_empty));
static_assert(static_cast<int>(wire::ErrorCode::MAX) == static_cast<int>(BrokerError::cluster_authorization_failed));

namespace {
const char* client_error_name(ClientError e) {
  switch (e) {
    case ClientError::ok: return "ok";
    case ClientError::broker_unreachable: return "broker_unreachable";
    case ClientError::connection_lost: return "connection_lost";
    case ClientError::timed_out: return "timed_out";
    case ClientError::closed: return "closed";
    case ClientError::invalid_config: return "invalid_config";
    case ClientError::buffer_exhausted: return "buffer_exhausted";
    case ClientError::protocol_error: return "protocol_error";
    case ClientError::invalid_argument: return "invalid_argument";
    case ClientError::record_too_large: return "record_too_large";
    case ClientError::not_a_broker: return "not_a_broker";
  }
  return nullptr;
}

class ClientCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "quorumq.client"; }
  std::string message(int v) const override {
    switch (static_cast<ClientError>(v)) {
      case ClientError::ok: return "ok";
      case ClientError::broker_unreachable: return "no broker reachable";
      case ClientError::connection_lost: return "connection to the broker lost";
      case ClientError::timed_out: return "timed out";
      case ClientError::closed: return "the client is closed";
      case ClientError::invalid_config: return "invalid configuration";
      case ClientError::buffer_exhausted: return "producer buffer full";
      case ClientError::protocol_error: return "protocol error";
      case ClientError::invalid_argument: return "invalid argument";
      case ClientError::record_too_large: return "record too large";
      case ClientError::not_a_broker: return "the address is not a quorumq broker";
    }
    return "unknown client error " + std::to_string(v);
  }
};
}  // namespace

const std::error_category& broker_category() noexcept { return wire::wire_category(); }
const std::error_category& client_category() noexcept {
  static const ClientCategory c;
  return c;
}

bool is_retriable(std::error_code ec) noexcept {
  if (ec.category() == broker_category())
    return wire::is_retriable(static_cast<wire::ErrorCode>(ec.value()));
  if (ec.category() == client_category()) {
    const auto e = static_cast<ClientError>(ec.value());
    return e == ClientError::broker_unreachable || e == ClientError::connection_lost ||
           e == ClientError::timed_out;
  }
  return false;
}

std::string Error::to_string() const {
  std::string s = message.empty() ? code.message() : message;
  s += " (";
  s += code.category().name();
  s += ":";
  if (code.category() == broker_category()) {
    s += wire::error_name(static_cast<wire::ErrorCode>(code.value()));
  } else if (code.category() == client_category() && client_error_name(static_cast<ClientError>(code.value()))) {
    s += client_error_name(static_cast<ClientError>(code.value()));
  } else {
    s += code.message();  // another category: its words, not its number
  }
  s += ")";
  return s;
}

const char* client_version() noexcept { return QUORUMQ_VERSION; }  // the project version (CMake)

namespace client {
Error make_error(std::error_code ec, std::string message) { return Error{ec, std::move(message)}; }
Error broker_error(std::int16_t code, std::string_view message) {
  const auto e = static_cast<wire::ErrorCode>(code);
  std::string m(message.empty() ? std::string_view(wire::error_message(e)) : message);
  return Error{wire::make_error_code(e), std::move(m)};
}
}  // namespace client

}  // namespace quorumq
