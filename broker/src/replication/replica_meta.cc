#include "replica_meta.h"

#include <cstring>

#include "state_record.h"

namespace quorumq::broker {

namespace {
std::vector<std::uint8_t> record(flatbuffers::FlatBufferBuilder& fbb, state::Body type, flatbuffers::Offset<void> body) {
  return finish_state_record(fbb, type, body);
}
std::uint64_t raw_u64(const std::vector<std::uint8_t>& v, std::size_t at) {
  std::uint64_t x;
  std::memcpy(&x, v.data() + at, 8);  // earlier builds: host order, which is little-endian here
  return x;
}
}  // namespace

ReplicaMeta::ReplicaMeta(storage::Storage& storage, const std::string& group)
    : storage_(storage), recovering_key_("recovering:" + group), lost_key_("lost:" + group), applied_key_("applied:" + group) {}

std::optional<RecoveringMark> ReplicaMeta::recovering() const {
  const auto v = storage_.meta(recovering_key_);
  if (!v) return std::nullopt;
  if (auto r = read_state_record(*v)) {
    const auto* m = r->as<state::RecoveringMark>();
    if (!m) return std::nullopt;
    RecoveringMark out{log_index{m->until_index()}, std::nullopt};
    if (m->has_term()) out.term = term_t{m->until_term()};
    return out;
  }
  if (v->size() == 8) return RecoveringMark{log_index{raw_u64(*v, 0)}, std::nullopt};
  if (v->size() == 16) return RecoveringMark{log_index{raw_u64(*v, 0)}, term_t{raw_u64(*v, 8)}};
  return std::nullopt;
}

storage::WriteOp ReplicaMeta::put_recovering(const RecoveringMark& m) const {
  flatbuffers::FlatBufferBuilder fbb(64);
  auto b = state::CreateRecoveringMark(fbb, m.until.value, m.term ? m.term->value : 0, m.term.has_value());
  return storage::PutMetaOp{recovering_key_, record(fbb, state::Body::RecoveringMark, b.Union())};
}

storage::WriteOp ReplicaMeta::delete_recovering() const { return storage::DeleteMetaOp{recovering_key_}; }

bool ReplicaMeta::lost() const { return storage_.meta(lost_key_).has_value(); }  // any value: earlier builds wrote {1}

storage::WriteOp ReplicaMeta::put_lost() const {
  flatbuffers::FlatBufferBuilder fbb(32);
  auto b = state::CreateLostMark(fbb);
  return storage::PutMetaOp{lost_key_, record(fbb, state::Body::LostMark, b.Union())};
}

storage::WriteOp ReplicaMeta::delete_lost() const { return storage::DeleteMetaOp{lost_key_}; }

std::optional<log_index> ReplicaMeta::applied() const {
  const auto v = storage_.meta(applied_key_);
  if (!v) return std::nullopt;
  if (auto r = read_state_record(*v)) {
    if (const auto* a = r->as<state::AppliedIndex>()) return log_index{a->index()};
    return std::nullopt;
  }
  if (v->size() == 8) return log_index{raw_u64(*v, 0)};
  return std::nullopt;
}

storage::WriteOp ReplicaMeta::put_applied(log_index i) const {
  flatbuffers::FlatBufferBuilder fbb(48);
  auto b = state::CreateAppliedIndex(fbb, i.value);
  return storage::PutMetaOp{applied_key_, record(fbb, state::Body::AppliedIndex, b.Union())};
}

}  // namespace quorumq::broker
