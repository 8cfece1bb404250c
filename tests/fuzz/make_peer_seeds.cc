// Writes the seed corpus of fuzz_peer (tests/fuzz/seeds/fuzz_peer/): envelopes carrying every
// Raft message type (with and without entries, leader announcements, incarnation header) and
// every handshake step. Run by hand after a schema change:  scripts/fuzz.sh --seeds
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "peer_auth.h"
#include "raft_codec.h"

using namespace quorumq;

namespace {
void write(const std::string& path, std::uint8_t mode, const protocol::OutgoingFrame& f) {
  FILE* out = std::fopen(path.c_str(), "wb");
  if (out == nullptr) {
    std::perror(path.c_str());
    std::exit(1);
  }
  std::fputc(mode, out);
  std::fwrite(f.body.data(), 1, f.body.size(), out);
  std::fclose(out);
}
}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "tests/fuzz/seeds/fuzz_peer";
  for (int t = 0; t <= static_cast<int>(raft::MessageType::timeout_now); ++t) {
    raft::Message m;
    m.type = static_cast<raft::MessageType>(t);
    m.from = node_id(2);
    m.to = node_id(1);
    m.term = term_t(5);
    m.index = log_index(10);
    m.log_term = term_t(4);
    m.commit = log_index(9);
    m.leader_last = log_index(12);
    if (m.type == raft::MessageType::append) {
      for (std::uint64_t i = 11; i <= 12; ++i)
        m.entries.push_back(raft::Entry{log_index(i), term_t(5), raft::EntryType::normal,
                                        raft::make_payload(std::vector<std::uint8_t>(16, 0x42))});
    }
    std::vector<broker::GroupMessage> msgs{{"topic/0", m}, {"__controller", m}};
    std::vector<broker::LeaderAnnouncement> leaders{{"topic/0", 2, 5}};
    write(dir + "/envelope_" + std::to_string(t), 0,
          broker::encode_envelope(2, "quorumq", msgs, leaders, {"dir-a", "dir-b", true}));
  }
  for (int s = 0; s <= static_cast<int>(broker::HandshakeStep::welcome); ++s) {
    broker::HandshakeMsg h;
    h.step = static_cast<broker::HandshakeStep>(s);
    h.cluster_id = "quorumq";
    h.node_id = 2;
    h.target_id = 1;
    h.dir_id = "0123456789abcdef";
    h.client_host = "127.0.0.1";
    h.client_port = 9092;
    h.nonce = broker::make_nonce();
    h.mac = broker::make_nonce();
    h.reason = s == 0 ? "refused: wrong secret" : "";
    write(dir + "/handshake_" + std::to_string(s), 1, broker::encode_handshake(h));
  }
  return 0;
}
