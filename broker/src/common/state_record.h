// The one shape of every broker record that is persisted or replicated and is not client data
// (broker/schema/state.fbs): controller commands and checkpoints, consumer-group state, offset
// commits, per-broker meta records. Encoders build a flatbuffers Record; readers get it only
// after the verifier passed, from an aligned copy of the bytes.
//
// Earlier builds wrote these records in hand-made encodings without the "QQS1" identifier. Each
// reader tries a state record first and falls back to the old encoding when the bytes are not
// one (is_state_record): data directories and controller logs of earlier builds still open, and
// whatever is written again is written in the new shape.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "quorumq/broker/state_generated.h"

namespace quorumq::broker {

// The newest Record::version this build writes and reads.
inline constexpr std::uint16_t kStateRecordVersion = 1;

// Whether the bytes claim to be a state record (identifier "QQS1"). Says nothing about whether
// they are readable: read_state_record() verifies.
bool is_state_record(std::span<const std::uint8_t> bytes);

// A verified record and the aligned bytes it points into.
class StateRecord {
 public:
  const state::Record& record() const { return *record_; }
  state::Body type() const { return record_->body_type(); }
  template <class T>
  const T* as() const {
    return record_->body_as<T>();
  }

 private:
  friend std::optional<StateRecord> read_state_record(std::span<const std::uint8_t> bytes);
  std::vector<std::uint8_t> bytes_;
  const state::Record* record_ = nullptr;
};

// nullopt: not a state record, damaged (the verifier refused it), or of a version this build does
// not know. Never trusts an offset or a length inside the bytes.
std::optional<StateRecord> read_state_record(std::span<const std::uint8_t> bytes);

// Finishes `fbb` with a Record holding `body` and returns its bytes.
std::vector<std::uint8_t> finish_state_record(flatbuffers::FlatBufferBuilder& fbb, state::Body type,
                                              flatbuffers::Offset<void> body);

// A flatbuffers string as std::string ("" when absent).
inline std::string state_str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

}  // namespace quorumq::broker
