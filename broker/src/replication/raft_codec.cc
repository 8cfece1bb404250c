#include "raft_codec.h"

#include "quorumq/broker/raft_generated.h"

namespace quorumq::broker {

namespace {
bool verify(std::span<const std::uint8_t> payload, bool is_response, std::uint32_t max_depth, std::uint32_t max_tables) {
  if (is_response) return false;  // one-way api
  flatbuffers::Verifier v(payload.data(), payload.size(), max_depth, max_tables);
  return v.VerifyBuffer<raftwire::Envelope>(nullptr);
}
}  // namespace

void register_raft_api() {
  static const bool once = protocol::register_internal_api({kRaftEnvelopeApi, 0, 0}, &verify);
  (void)once;
}

protocol::OutgoingFrame encode_envelope(std::int32_t from, const std::string& cluster_id,
                                        const std::vector<GroupMessage>& msgs,
                                        const std::vector<LeaderAnnouncement>& leaders, const DirHeader& dirs) {
  std::size_t guess = 256;
  for (const auto& gm : msgs)
    for (const auto& e : gm.msg.entries) guess += e.size_bytes() + 32;
  flatbuffers::FlatBufferBuilder fbb(guess);
  std::vector<flatbuffers::Offset<raftwire::Message>> ms;
  ms.reserve(msgs.size());
  for (const auto& gm : msgs) {
    const auto& m = gm.msg;
    std::vector<flatbuffers::Offset<raftwire::Entry>> es;
    es.reserve(m.entries.size());
    for (const auto& e : m.entries) {
      flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> p = 0;
      if (e.payload && !e.payload->empty()) p = fbb.CreateVector(*e.payload);
      es.push_back(raftwire::CreateEntry(fbb, e.index.value, e.term.value, static_cast<std::uint8_t>(e.type), p));
    }
    ms.push_back(raftwire::CreateMessage(fbb, fbb.CreateString(gm.group), static_cast<std::uint8_t>(m.type),
                                         m.from.value, m.to.value, m.term.value, m.index.value, m.log_term.value,
                                         m.commit.value, m.reject, m.reject_hint.value, m.transfer,
                                         es.empty() ? 0 : fbb.CreateVector(es), m.leader_last.value));
  }
  std::vector<flatbuffers::Offset<raftwire::LeaderInfo>> ls;
  for (const auto& l : leaders)
    ls.push_back(raftwire::CreateLeaderInfo(fbb, fbb.CreateString(l.group), l.leader, l.term, l.high_watermark,
                                            l.log_start_offset, l.isr.empty() ? 0 : fbb.CreateVector(l.isr)));
  const auto sender_dir = fbb.CreateString(dirs.sender_dir);
  const auto receiver_dir = fbb.CreateString(dirs.receiver_dir);
  auto root = raftwire::CreateEnvelope(fbb, from, fbb.CreateString(cluster_id), fbb.CreateVector(ms),
                                       ls.empty() ? 0 : fbb.CreateVector(ls), sender_dir, receiver_dir,
                                       dirs.sender_settled);
  return protocol::finish_request(fbb, root, kRaftEnvelopeApi, 0, 0);
}

std::optional<DecodedEnvelope> decode_envelope(std::span<const std::uint8_t> payload) {
  const auto* env = flatbuffers::GetRoot<raftwire::Envelope>(payload.data());
  DecodedEnvelope out;
  out.from = env->from();
  if (env->cluster_id()) out.cluster_id = env->cluster_id()->str();
  if (env->sender_dir()) out.dirs.sender_dir = env->sender_dir()->str();
  if (env->receiver_dir()) out.dirs.receiver_dir = env->receiver_dir()->str();
  out.dirs.sender_settled = env->sender_settled();
  if (env->messages()) {
    out.messages.reserve(env->messages()->size());
    for (const auto* m : *env->messages()) {
      if (!m->group() || m->type() > static_cast<std::uint8_t>(raft::MessageType::timeout_now)) return std::nullopt;
      GroupMessage gm;
      gm.group = m->group()->str();
      auto& r = gm.msg;
      r.type = static_cast<raft::MessageType>(m->type());
      r.from = node_id{m->from()};
      r.to = node_id{m->to()};
      r.term = term_t{m->term()};
      r.index = log_index{m->index()};
      r.log_term = term_t{m->log_term()};
      r.commit = log_index{m->commit()};
      r.reject = m->reject();
      r.reject_hint = log_index{m->reject_hint()};
      r.leader_last = log_index{m->leader_last()};
      r.transfer = m->transfer();
      if (m->entries()) {
        r.entries.reserve(m->entries()->size());
        for (const auto* e : *m->entries()) {
          if (e->type() > static_cast<std::uint8_t>(raft::EntryType::config)) return std::nullopt;
          raft::Entry en;
          en.index = log_index{e->index()};
          en.term = term_t{e->term()};
          en.type = static_cast<raft::EntryType>(e->type());
          std::vector<std::uint8_t> bytes;
          if (e->payload()) bytes.assign(e->payload()->begin(), e->payload()->end());
          en.payload = raft::make_payload(std::move(bytes));
          r.entries.push_back(std::move(en));
        }
      }
      out.messages.push_back(std::move(gm));
    }
  }
  if (env->leaders())
    for (const auto* l : *env->leaders())
      if (l->group()) {
        LeaderAnnouncement a{l->group()->str(), l->leader(), l->term(), l->high_watermark(), l->log_start_offset(), {}};
        if (l->isr() && l->isr()->size() <= 64) a.isr.assign(l->isr()->begin(), l->isr()->end());
        out.leaders.push_back(std::move(a));
      }
  return out;
}

}  // namespace quorumq::broker
