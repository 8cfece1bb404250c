// Loopback networking for tests and the bench: a free TCP port, and a blocking HTTP/1.1 GET
// against a broker's admin port (/readyz, /healthz, /metrics). A raw socket, not a general
// client: one request per connection (Connection: close), body read to EOF, chunked transfer
// coding decoded.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace quorumq::testsupport {

// A TCP port on 127.0.0.1 that was free a moment ago. Throws std::runtime_error if none is.
std::uint16_t free_port();

struct HttpReply {
  int status = 0;
  std::string body;
};

// GET http://127.0.0.1:port/path. nullopt when nothing answered HTTP within `timeout` (applied
// to connect, send and each read: a SIGSTOPped broker's kernel still accepts the connection).
// `headers`: extra header lines, each ending in \r\n (e.g. an Authorization header).
std::optional<HttpReply> http_get(std::uint16_t port, const std::string& path,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(2),
                                  const std::string& headers = {});

}  // namespace quorumq::testsupport
