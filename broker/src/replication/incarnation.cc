#include "incarnation.h"

#include <spdlog/spdlog.h>

namespace quorumq::broker {

namespace {
std::string key_of(node_id n) { return "peer_dir:" + std::to_string(n.value); }
}  // namespace

const char* to_string(Incarnation::Verdict v) {
  switch (v) {
    case Incarnation::Verdict::unknown: return "unknown";
    case Incarnation::Verdict::whole: return "whole";
    case Incarnation::Verdict::lost: return "lost";
  }
  return "?";
}

Incarnation::Incarnation(storage::Storage& storage, const std::vector<node_id>& peers)
    : storage_(storage), own_(storage.dir_id()), verdict_(Verdict::unknown) {
  for (node_id p : peers)
    if (auto v = storage_.meta(key_of(p))) peers_[p] = std::string(v->begin(), v->end());
}

Incarnation::Verdict Incarnation::verdict() const {
  std::lock_guard lk(mu_);
  return verdict_;
}

Incarnation::Header Incarnation::header_for(node_id peer) const {
  std::lock_guard lk(mu_);
  Header h;
  h.sender_dir = own_;
  if (auto it = peers_.find(peer); it != peers_.end()) h.receiver_dir = it->second;
  h.sender_settled = verdict_ == Verdict::whole || settled_;
  return h;
}

void Incarnation::remember(node_id peer, const std::string& dir) {
  peers_[peer] = dir;
  std::vector<storage::WriteOp> ops;
  ops.emplace_back(storage::PutMetaOp{key_of(peer), std::vector<std::uint8_t>(dir.begin(), dir.end())});
  // Asynchronous: losing it in a crash only means the peer is recognised one start later.
  storage_.submit(std::move(ops), [peer](std::expected<storage::WriteResult, storage::Error> r) {
    if (!r) spdlog::warn("recording broker {}'s data directory id failed: {}", peer.value, r.error().message);
  });
}

std::optional<Incarnation::Verdict> Incarnation::on_header(node_id from, const Header& h) {
  std::lock_guard lk(mu_);
  if (!h.sender_dir.empty()) {
    auto it = peers_.find(from);
    if (it == peers_.end()) {
      remember(from, h.sender_dir);
    } else if (it->second != h.sender_dir && h.sender_settled) {
      spdlog::info("broker {} runs on a new data directory ({}, was {}) and has caught up; it votes again",
                   from.value, h.sender_dir, it->second);
      remember(from, h.sender_dir);
    }
  }
  const Verdict before = verdict_;
  if (!h.receiver_dir.empty() && h.receiver_dir != own_) {
    if (verdict_ != Verdict::lost)
      spdlog::warn("broker {} knew this broker with data directory {}; this one ({}) is new, so what this broker "
                   "held is lost: its replicas vote only after catching up with a leader (it recovers from its "
                   "peers; if the disk was not meant to be replaced, stop it and point --data-dir at the old one)",
                   from.value, h.receiver_dir, own_);
    verdict_ = Verdict::lost;
  } else if (verdict_ == Verdict::unknown) {
    // Never heard of, or known under this very id: nothing was lost.
    verdict_ = Verdict::whole;
  }
  if (verdict_ == before) return std::nullopt;
  return verdict_;
}

bool Incarnation::settled() const {
  std::lock_guard lk(mu_);
  return settled_;
}

void Incarnation::set_settled(bool settled) {
  std::lock_guard lk(mu_);
  if (settled && !settled_ && verdict_ == Verdict::lost)
    spdlog::info("every replica on this broker caught up after its data directory was lost; peers may count it again");
  settled_ = settled_ || settled;  // once peers may have adopted our id, it stays so
}

}  // namespace quorumq::broker
