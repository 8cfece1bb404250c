// Integration-test harness: real quorumq-broker processes on loopback with temporary data
// directories, started, killed (SIGKILL), paused and restarted; readiness is a condition polled
// with a deadline (/readyz), never a fixed sleep. The machinery (processes, HTTP GET, temporary
// directories, local clusters) is testsupport/'s, shared with bench/; this header names it for
// the tests and adds what is theirs: the broker binary of this build tree.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "quorumq/testsupport/broker.h"
#include "quorumq/testsupport/http.h"
#include "quorumq/testsupport/process.h"
#include "quorumq/testsupport/temp_dir.h"
#include "quorumq/testsupport/wait.h"

namespace quorumq::test {

using namespace std::chrono_literals;

using testsupport::free_port;
using testsupport::http_get;  // GET http://127.0.0.1:port/path: status and body, or nullopt
using testsupport::HttpReply;
using testsupport::run_program;  // runs a program to completion: exit status, stdout, stderr
using testsupport::RunResult;
using testsupport::TempDir;
using testsupport::wait_until;

// The broker this build produced, or $QUORUMQ_BROKER_BIN.
std::string broker_binary();

// A testsupport::BrokerProcess running broker_binary(). `extra` flags are appended to the
// standard --node-id/--listen/--admin-listen/--data-dir.
class BrokerProcess : public testsupport::BrokerProcess {
 public:
  BrokerProcess(int node_id, std::filesystem::path data_dir, std::vector<std::string> extra = {},
                std::uint16_t port = 0)
      : testsupport::BrokerProcess(broker_binary(), node_id, std::move(data_dir), std::move(extra), port) {}
};

}  // namespace quorumq::test
