// Server: the broker process's network side — the client listener with its connections, the
// admin HTTP listener, the io threads and signal handling. All Asio lives behind this pimpl.
//
// Lifecycle: construct -> start() (binds; errors are values) -> run() blocks until SIGTERM/SIGINT
// or stop(), then shuts down gracefully: stop accepting, fail new produces with
// broker_shutting_down, wait (bounded) for in-flight requests to be answered, close.
#pragma once

#include <expected>
#include <memory>
#include <string>

#include "config.h"
#include "metrics.h"
#include "quorumq/storage/storage.h"

namespace quorumq::broker {

class Server {
 public:
  Server(const BrokerConfig& config, storage::Storage& storage, Metrics& metrics);
  ~Server();
  std::expected<void, std::string> start();
  void run();
  void stop();  // thread-safe; run() returns after the graceful shutdown

  struct Impl;  // public so the connection class in server.cc can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace quorumq::broker
