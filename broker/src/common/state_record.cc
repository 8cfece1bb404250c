#include "state_record.h"

namespace quorumq::broker {

bool is_state_record(std::span<const std::uint8_t> bytes) {
  return bytes.size() >= 8 && flatbuffers::BufferHasIdentifier(bytes.data(), state::RecordIdentifier());
}

std::optional<StateRecord> read_state_record(std::span<const std::uint8_t> bytes) {
  if (!is_state_record(bytes)) return std::nullopt;
  StateRecord r;
  r.bytes_.assign(bytes.begin(), bytes.end());  // aligned (the verifier and the reads need it)
  // Depth: Record → checkpoint → topic → create → assignment → nodes is 6; tables: one per
  // group member or owner of a checkpoint at most, bounded by the bytes themselves.
  flatbuffers::Verifier v(r.bytes_.data(), r.bytes_.size(), 16,
                          static_cast<flatbuffers::uoffset_t>(std::min<std::size_t>(r.bytes_.size(), 1u << 30)));
  if (!state::VerifyRecordBuffer(v)) return std::nullopt;
  r.record_ = state::GetRecord(r.bytes_.data());
  if (r.record_->version() == 0 || r.record_->version() > kStateRecordVersion) return std::nullopt;
  return r;
}

std::vector<std::uint8_t> finish_state_record(flatbuffers::FlatBufferBuilder& fbb, state::Body type,
                                              flatbuffers::Offset<void> body) {
  state::RecordBuilder rb(fbb);
  rb.add_body(body);
  rb.add_version(kStateRecordVersion);
  rb.add_body_type(type);
  state::FinishRecordBuffer(fbb, rb.Finish());
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

}  // namespace quorumq::broker
