// libFuzzer target: verify_request / verify_response for every api id. The first bytes pick
// the api, the version and request-or-response; the rest is the payload. When a payload
// verifies, the target reads it the way broker and client would, so a Verifier gap (a message
// that verifies but reads out of bounds) shows up as an ASan report.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "quorumq/protocol/messages.h"
#include "quorumq/protocol/record_batch.h"
#include "quorumq/protocol/verify.h"

using namespace quorumq;
using namespace quorumq::protocol;

namespace {
volatile std::size_t g_sink;

template <typename S>
void touch(const S* s) {
  if (s != nullptr) g_sink = g_sink + s->size() + (s->size() ? s->Get(s->size() - 1) : 0);
}
void touch_str(const flatbuffers::String* s) {
  if (s != nullptr && s->size() > 0) g_sink = g_sink + static_cast<unsigned char>(s->c_str()[s->size() - 1]);
}
void touch_records(const flatbuffers::Vector<std::uint8_t>* r) {
  if (r == nullptr) return;
  // What the broker does with produced records: validate each batch.
  g_sink = g_sink + static_cast<std::size_t>(BatchView({r->data(), r->size()}).validate());
}
void touch_hint(const wire::LeaderHint* h) {
  if (h != nullptr) touch_str(h->host());
}

void walk_request(ApiId api, std::span<const std::uint8_t> p) {
  switch (api) {
    case ApiId::produce: {
      const auto* m = payload_as<wire::ProduceRequest>(p);
      if (m->topics() == nullptr) return;
      for (const auto* t : *m->topics()) {
        touch_str(t->name());
        if (t->partitions() == nullptr) continue;
        for (const auto* part : *t->partitions()) touch_records(part->records());
      }
      return;
    }
    case ApiId::metadata: {
      const auto* m = payload_as<wire::MetadataRequest>(p);
      if (m->topics() != nullptr)
        for (const auto* s : *m->topics()) touch_str(s);
      return;
    }
    case ApiId::create_topic: {
      const auto* m = payload_as<wire::CreateTopicRequest>(p);
      touch_str(m->name());
      if (m->configs() != nullptr)
        for (const auto* c : *m->configs()) touch_str(c->key()), touch_str(c->value());
      return;
    }
    case ApiId::offset_fetch: {
      const auto* m = payload_as<wire::OffsetFetchRequest>(p);
      touch_str(m->group_id());
      if (m->topics() != nullptr)
        for (const auto* t : *m->topics()) touch(t->partitions());
      return;
    }
    default: return;
  }
}

void walk_response(ApiId api, std::span<const std::uint8_t> p) {
  switch (api) {
    case ApiId::fetch: {
      const auto* m = payload_as<wire::FetchResponse>(p);
      if (m->topics() == nullptr) return;
      for (const auto* t : *m->topics()) {
        if (t->partitions() == nullptr) continue;
        for (const auto* part : *t->partitions()) touch_records(part->records()), touch_hint(part->leader_hint());
      }
      return;
    }
    case ApiId::metadata: {
      const auto* m = payload_as<wire::MetadataResponse>(p);
      if (m->brokers() != nullptr)
        for (const auto* b : *m->brokers()) touch_str(b->host());
      if (m->topics() == nullptr) return;
      for (const auto* t : *m->topics()) {
        if (t->partitions() == nullptr) continue;
        for (const auto* part : *t->partitions()) touch(part->replicas()), touch(part->isr());
      }
      return;
    }
    case ApiId::api_versions: {
      const auto* m = payload_as<wire::ApiVersionsResponse>(p);
      if (m->apis() != nullptr)
        for (const auto* a : *m->apis()) g_sink = g_sink + a->max_version();
      return;
    }
    default: return;
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider fdp(data, size);
  // Mostly known apis, sometimes anything (unknown and reserved internal ids must be refused).
  const auto pick = fdp.ConsumeIntegral<std::uint8_t>();
  const auto api = static_cast<ApiId>(pick < 240 ? pick % 12 : fdp.ConsumeIntegral<std::uint16_t>());
  const auto version = static_cast<std::uint16_t>(fdp.ConsumeIntegralInRange<int>(0, 2));
  const bool response = fdp.ConsumeBool();
  const std::vector<std::uint8_t> bytes = fdp.ConsumeRemainingBytes<std::uint8_t>();
  // Flatbuffers reads want the buffer 8-aligned, as FrameDecoder delivers it.
  std::vector<std::uint64_t> aligned((bytes.size() + 7) / 8);
  if (!bytes.empty()) std::memcpy(aligned.data(), bytes.data(), bytes.size());
  const std::span<const std::uint8_t> payload(reinterpret_cast<const std::uint8_t*>(aligned.data()), bytes.size());

  const wire::ErrorCode e = response ? verify_response(api, version, payload) : verify_request(api, version, payload);
  if (e == wire::ErrorCode::none) {
    if (find_api(api) == nullptr) __builtin_trap();  // verified an api we do not know
    if (response) walk_response(api, payload);
    else walk_request(api, payload);
  }
  if (verify_error_response(payload) == wire::ErrorCode::none) touch_str(payload_as<wire::ErrorResponse>(payload)->message());
  return 0;
}
