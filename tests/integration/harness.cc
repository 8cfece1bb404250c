#include "harness.h"

#include <signal.h>

#include <cstdlib>

namespace quorumq::test {

namespace {
// A test writing to a closed pipe or socket gets EPIPE, not a dead process.
const bool kIgnoreSigpipe = [] {
  ::signal(SIGPIPE, SIG_IGN);
  return true;
}();
}  // namespace

std::string broker_binary() {
  if (const char* e = std::getenv("QUORUMQ_BROKER_BIN")) return e;
  return QUORUMQ_BROKER_BIN;
}

}  // namespace quorumq::test
