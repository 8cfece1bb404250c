// libFuzzer target: what arrives on the peer listener (issue 13). The first byte picks the
// decoder, the rest is a frame payload:
//   0 — a raft_envelope (api 100): verified and decoded exactly as the peer transport does, and
//       every decoded field read (an out-of-bounds read is an ASan report);
//   1 — a peer handshake (api 101): decoded (it verifies itself: the bytes come from an
//       unauthenticated socket), then the MAC computed and compared as the listener does.
// What the decoded messages can do to the Raft core (which needs C++23 and so g++, not clang
// 14) is covered by the hostile-peer simulation (tests/sim, SimHostile) and
// tests/unit/raft/hostile_messages_test.cc.
#include <cstdint>
#include <cstring>
#include <vector>

#include "peer_auth.h"
#include "quorumq/protocol/verify.h"
#include "raft_codec.h"

using namespace quorumq;

namespace {
volatile std::size_t g_sink;

void touch(const broker::DecodedEnvelope& env) {
  std::size_t n = env.cluster_id.size() + env.dirs.sender_dir.size() + env.dirs.receiver_dir.size();
  for (const auto& gm : env.messages) {
    n += gm.group.size() + static_cast<std::size_t>(gm.msg.type) + gm.msg.index.value + gm.msg.term.value;
    for (const auto& e : gm.msg.entries)
      if (e.payload && !e.payload->empty()) n += e.payload->back() + e.payload->size();
  }
  for (const auto& l : env.leaders) n += l.group.size() + l.term;
  g_sink = g_sink + n;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool registered = [] {
    broker::register_raft_api();
    broker::register_handshake_api();
    return true;
  }();
  (void)registered;
  if (size < 1) return 0;
  const std::uint8_t mode = data[0] % 2;
  // The frame decoder hands payloads over 8-byte aligned; so do we.
  std::vector<std::uint64_t> aligned((size - 1 + 7) / 8 + 1);
  std::memcpy(aligned.data(), data + 1, size - 1);
  const std::span<const std::uint8_t> payload(reinterpret_cast<const std::uint8_t*>(aligned.data()), size - 1);
  if (mode == 0) {
    if (protocol::verify_request(broker::kRaftEnvelopeApi, 0, payload) != wire::ErrorCode::none) return 0;
    if (auto env = broker::decode_envelope(payload)) touch(*env);
  } else if (auto h = broker::decode_handshake(payload)) {
    const auto mac = broker::handshake_mac("secret-secret-secret", broker::MacRole::dialer, h->cluster_id, h->node_id,
                                           h->target_id, h->nonce, h->nonce);
    g_sink = g_sink + broker::mac_equal(mac, h->mac) + h->reason.size() + h->client_host.size();
  }
  return 0;
}
