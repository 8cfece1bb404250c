#include "peer_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <random>

#include "quorumq/broker/raft_generated.h"

namespace quorumq::broker {

namespace {
constexpr std::size_t kStringMax = 1024;  // ids, hosts, reasons: nothing legitimate is longer

bool verify(std::span<const std::uint8_t> payload, bool is_response, std::uint32_t max_depth,
            std::uint32_t max_tables) {
  if (is_response) return false;  // handshake frames are all "requests" (one-way each)
  flatbuffers::Verifier v(payload.data(), payload.size(), max_depth, max_tables);
  return v.VerifyBuffer<raftwire::PeerHandshake>(nullptr);
}

bool bounded(const flatbuffers::String* s) { return !s || s->size() <= kStringMax; }
std::string str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }
}  // namespace

void register_handshake_api() {
  static const bool once = protocol::register_internal_api({kPeerHandshakeApi, 0, 0}, &verify);
  (void)once;
}

protocol::OutgoingFrame encode_handshake(const HandshakeMsg& m) {
  flatbuffers::FlatBufferBuilder fbb(256);
  auto cluster = fbb.CreateString(m.cluster_id);
  auto dir = fbb.CreateString(m.dir_id);
  auto host = fbb.CreateString(m.client_host);
  auto nonce = fbb.CreateVector(m.nonce);
  auto mac = fbb.CreateVector(m.mac);
  auto reason = fbb.CreateString(m.reason);
  auto kafka_host = m.kafka_host.empty() ? flatbuffers::Offset<flatbuffers::String>() : fbb.CreateString(m.kafka_host);
  auto root = raftwire::CreatePeerHandshake(fbb, static_cast<std::uint8_t>(m.step), m.version, cluster, m.node_id,
                                            m.target_id, dir, host, m.client_port, nonce, mac, reason, kafka_host,
                                            m.kafka_port);
  return protocol::finish_request(fbb, root, kPeerHandshakeApi, 0, 0);
}

std::optional<HandshakeMsg> decode_handshake(std::span<const std::uint8_t> payload) {
  if (!verify(payload, false, 16, 64)) return std::nullopt;
  const auto* h = flatbuffers::GetRoot<raftwire::PeerHandshake>(payload.data());
  if (h->step() > static_cast<std::uint8_t>(HandshakeStep::welcome)) return std::nullopt;
  if (!bounded(h->cluster_id()) || !bounded(h->dir_id()) || !bounded(h->client_host()) || !bounded(h->reason()) ||
      !bounded(h->kafka_host()))
    return std::nullopt;
  if ((h->nonce() && h->nonce()->size() > kNonceBytes) || (h->mac() && h->mac()->size() > kMacBytes))
    return std::nullopt;
  HandshakeMsg m;
  m.step = static_cast<HandshakeStep>(h->step());
  m.version = h->version();
  m.cluster_id = str(h->cluster_id());
  m.node_id = h->node_id();
  m.target_id = h->target_id();
  m.dir_id = str(h->dir_id());
  m.client_host = str(h->client_host());
  m.client_port = h->client_port();
  m.kafka_host = str(h->kafka_host());
  m.kafka_port = h->kafka_port();
  if (h->nonce()) m.nonce.assign(h->nonce()->begin(), h->nonce()->end());
  if (h->mac()) m.mac.assign(h->mac()->begin(), h->mac()->end());
  m.reason = str(h->reason());
  return m;
}

std::vector<std::uint8_t> make_nonce() {
  std::vector<std::uint8_t> n(kNonceBytes);
  if (RAND_bytes(n.data(), static_cast<int>(n.size())) != 1) {
    // OpenSSL's generator failed (no entropy source): fall back to the OS device through
    // random_device; a nonce must be unpredictable, not secret.
    std::random_device rd;
    for (auto& b : n) b = static_cast<std::uint8_t>(rd());
  }
  return n;
}

std::vector<std::uint8_t> handshake_mac(std::string_view secret, MacRole role, std::string_view cluster_id,
                                        std::int32_t dialer, std::int32_t listener,
                                        std::span<const std::uint8_t> dialer_nonce,
                                        std::span<const std::uint8_t> listener_nonce) {
  // Unambiguous message: every variable-length part is length-prefixed.
  std::vector<std::uint8_t> msg;
  auto put_u32 = [&](std::uint32_t v) {
    for (int i = 0; i < 4; ++i) msg.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  };
  auto put_bytes = [&](std::span<const std::uint8_t> b) {
    put_u32(static_cast<std::uint32_t>(b.size()));
    msg.insert(msg.end(), b.begin(), b.end());
  };
  const std::string_view label = role == MacRole::listener ? "quorumq-peer-listener-v1" : "quorumq-peer-dialer-v1";
  put_bytes({reinterpret_cast<const std::uint8_t*>(label.data()), label.size()});
  put_bytes({reinterpret_cast<const std::uint8_t*>(cluster_id.data()), cluster_id.size()});
  put_u32(static_cast<std::uint32_t>(dialer));
  put_u32(static_cast<std::uint32_t>(listener));
  put_bytes(dialer_nonce);
  put_bytes(listener_nonce);
  std::vector<std::uint8_t> out(EVP_MAX_MD_SIZE);
  unsigned len = 0;
  // An empty key is valid for HMAC; OpenSSL wants a non-null pointer.
  static const unsigned char kEmpty = 0;
  const void* key = secret.empty() ? static_cast<const void*>(&kEmpty) : static_cast<const void*>(secret.data());
  if (!HMAC(EVP_sha256(), key, static_cast<int>(secret.size()), msg.data(), msg.size(), out.data(), &len)) return {};
  out.resize(len);
  return out;
}

bool mac_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  return a.size() == b.size() && !a.empty() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace quorumq::broker
