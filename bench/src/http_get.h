// A minimal blocking HTTP/1.1 GET against 127.0.0.1 (the brokers' admin port: /readyz, /metrics).
// Enough for polling spawned brokers; not a general HTTP client.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace quorumq::bench {

struct HttpReply {
  int status = 0;
  std::string body;
};

// nullopt when nothing answered within `timeout` (connect, send and each read).
std::optional<HttpReply> http_get(const std::string& host, std::uint16_t port, const std::string& path,
                                  std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));

}  // namespace quorumq::bench
