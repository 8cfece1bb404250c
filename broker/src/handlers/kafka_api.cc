#include "kafka_api.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <map>
#include <limits>
#include <optional>
#include <set>

#include "kafka_internal.h"
#include "kafka_batch.h"
#include "kafka_requests.h"
#include "kafka_wire.h"
#include "quorumq/protocol/messages.h"
#include "security_handlers.h"

namespace quorumq::broker::kafka {

namespace {

constexpr std::int16_t kProduce = api::produce;
constexpr std::int16_t kFetch = api::fetch;
constexpr std::int16_t kListOffsets = api::list_offsets;
constexpr std::int16_t kApiVersions = api::api_versions;
constexpr std::int16_t kMetadata = api::metadata;
constexpr std::int16_t kSaslHandshake = 17;
constexpr std::int16_t kSaslAuthenticate = 36;
constexpr std::int16_t kInitProducerId = api::init_producer_id;

constexpr std::int16_t kNone = 0;
constexpr std::int16_t kUnknownTopicOrPartition = 3;
constexpr std::int16_t kLeaderNotAvailable = 5;
constexpr std::int16_t kUnsupportedVersion = 35;

// Produce from v0: librdkafka before 2.11.1 sends gzip, snappy and lz4 only to a broker listing
// Produce v0 (its check asks for a version in [0, 0]; kafka.md); v0-2 requests carry old message
// formats, which are refused per partition (UNSUPPORTED_FOR_MESSAGE_FORMAT).
constexpr std::array<ApiRange, 6> kDataApis{{{kProduce, 0, 8},
                                             {kFetch, 4, 11},
                                             {kListOffsets, 1, 5},
                                             {kMetadata, 0, 8},
                                             {kApiVersions, 0, 3},
                                             {kInitProducerId, 0, 1}}};

// Every api served, by key (what ApiVersions lists).
const std::vector<ApiRange>& all_apis() {
  static const std::vector<ApiRange> all = [] {
    std::vector<ApiRange> v(kDataApis.begin(), kDataApis.end());
    const auto g = group_apis();
    v.insert(v.end(), g.begin(), g.end());
    const auto sa = sasl_apis();
    v.insert(v.end(), sa.begin(), sa.end());
    std::sort(v.begin(), v.end(), [](const ApiRange& a, const ApiRange& b) { return a.key < b.key; });
    return v;
  }();
  return all;
}



Answer api_versions(const Header& h, Reader& r) {
  if (h.version > 3) {
    // A newer client: Kafka answers with a v0 body, UNSUPPORTED_VERSION and its own ApiVersions
    // range, without reading the request; clients retry with a version from that range.
    Writer w = start(h);
    w.i16(kUnsupportedVersion);
    w.array_length(1);
    w.i16(kApiVersions);
    w.i16(0);
    w.i16(3);
    return finish(w);
  }
  ApiVersionsRequest req;
  if (!parse_api_versions(r, h.version, req)) return close_with("malformed ApiVersions request");
  Writer w = start(h);
  w.i16(kNone);
  if (h.version >= 3) {
    w.compact_array_length(static_cast<std::int32_t>(all_apis().size()));
  } else {
    w.array_length(static_cast<std::int32_t>(all_apis().size()));
  }
  for (const auto& a : all_apis()) {
    w.i16(a.key);
    w.i16(a.min);
    w.i16(a.max);
    if (h.version >= 3) w.empty_tagged_fields();
  }
  if (h.version >= 1) w.i32(0);  // ThrottleTimeMs
  if (h.version >= 3) w.empty_tagged_fields();
  return finish(w);
}

Answer metadata(BrokerContext& ctx, const Header& h, Reader& r) {
  MetadataRequest req;
  if (!parse_metadata(r, h.version, ctx.config.max_partitions_per_request, req))
    return close_with("malformed Metadata request, or more than " + std::to_string(ctx.config.max_partitions_per_request) +
                      " topics (--max-partitions-per-request)");
  Writer w = start(h);
  if (h.version >= 3) w.i32(0);  // ThrottleTimeMs
  // Brokers: those whose Kafka address is known (this one's from its flags, the others' from
  // their peer handshakes).
  std::vector<std::pair<node_id, HostPort>> brokers;
  for (const auto b : ctx.replication.brokers())
    if (auto a = ctx.replication.kafka_address_of(b)) brokers.emplace_back(b, std::move(*a));
  w.array_length(static_cast<std::int32_t>(brokers.size()));
  for (const auto& [id, a] : brokers) {
    w.i32(id.value);
    w.string(a.host);
    w.i32(a.port);
    if (h.version >= 1) w.nullable_string(std::nullopt);  // Rack
  }
  auto has_kafka = [&brokers](node_id n) {
    return std::any_of(brokers.begin(), brokers.end(), [n](const auto& b) { return b.first == n; });
  };
  if (h.version >= 2) w.nullable_string(ctx.config.cluster_id);
  if (h.version >= 1) {
    const auto c = ctx.controller.leader();
    w.i32(c && has_kafka(*c) ? c->value : -1);
  }
  // Authorization (Kafka's rules): the full listing shows only the topics the principal may
  // describe; a topic named but not describable is TOPIC_AUTHORIZATION_FAILED whether or not it
  // exists, so existence is not disclosed (and it is never created).
  std::vector<std::shared_ptr<const Topic>> topics;
  std::vector<std::pair<std::string, std::int16_t>> missing;  // name, error
  if (!req.topics) {
    for (auto& t : ctx.topics.list())
      if (visible(ctx, h.who, ResourceType::topic, t->name)) topics.push_back(std::move(t));
  } else {
    for (const auto name : *req.topics) {
      if (!allowed(ctx, h, AclOperation::describe, ResourceType::topic, name))
        missing.emplace_back(name, kTopicAuthorizationFailed);
      else if (auto t = ctx.topics.find(std::string(name))) topics.push_back(std::move(t));
      else missing.emplace_back(name, kUnknownTopicOrPartition);
    }
  }
  w.array_length(static_cast<std::int32_t>(topics.size() + missing.size()));
  for (const auto& t : topics) {
    w.i16(kNone);
    w.string(t->name);
    if (h.version >= 1) w.boolean(false);  // IsInternal
    w.array_length(t->config.partitions);
    for (std::int32_t pid = 0; pid < t->config.partitions; ++pid) {
      const auto v = detail::partition_view(ctx, *t, pid);
      const bool usable = v.leader && has_kafka(*v.leader);
      w.i16(usable ? kNone : kLeaderNotAvailable);
      w.i32(pid);
      w.i32(usable ? v.leader->value : -1);
      if (h.version >= 7)
        w.i32(static_cast<std::int32_t>(std::min<std::uint64_t>(v.epoch, std::numeric_limits<std::int32_t>::max())));
      const auto& reps = t->assignment[static_cast<std::size_t>(pid)];
      w.array_length(static_cast<std::int32_t>(reps.size()));
      for (const auto rep : reps) w.i32(rep.value);
      w.array_length(static_cast<std::int32_t>(v.isr.size()));
      for (const auto m : v.isr) w.i32(m);
      if (h.version >= 5) w.array_length(0);  // OfflineReplicas
    }
    if (h.version >= 8) w.i32(std::numeric_limits<std::int32_t>::min());  // TopicAuthorizedOperations: not asked
  }
  for (const auto& [m, error] : missing) {
    w.i16(error);
    w.string(m);
    if (h.version >= 1) w.boolean(false);
    w.array_length(0);
    if (h.version >= 8) w.i32(std::numeric_limits<std::int32_t>::min());
  }
  if (h.version >= 8) w.i32(std::numeric_limits<std::int32_t>::min());  // ClusterAuthorizedOperations
  return finish(w);
}

// ---- Produce 0-8 (RecordBatch v2 only) ---------------------------------------------------
// Each partition's RecordBatch is checked and converted here; the appends run through the
// native produce handler (leadership, limits, idempotence, acks, timeout), whose answer is
// turned back into Kafka's.
void produce(BrokerContext& ctx, const Header& h, Reader& r, std::function<void(Answer)> done) {
  ProduceRequest req;
  if (!parse_produce(r, h.version, ctx.config.max_partitions_per_request, req))
    return done(malformed_or_too_many(ctx, "Produce"));
  const std::int16_t acks = req.acks;
  const std::int32_t timeout_ms = req.timeout_ms;
  struct Part {
    std::int32_t index;
    std::int16_t error = 0;      // set when the batch was refused here
    std::string message;
    std::vector<std::uint8_t> batch;  // converted
  };
  auto topics = std::make_shared<std::vector<OwnedTopic<Part>>>();
  // Compressed records may decompress to no more than a stored batch may hold, and the converted
  // batches of one request, all held until the native append, to no more than --max-frame-bytes
  // (what an uncompressed request can carry): many small bombs in one request cost no more memory
  // than a plain request.
  std::size_t request_budget = ctx.config.max_frame_bytes;
  for (const auto& t : req.topics) {
    OwnedTopic<Part> tp{std::string(t.name), {}};
    const std::size_t max_records = detail::max_batch_bytes(ctx, ctx.topics.find(tp.name).get());
    // Each topic needs write (Kafka: refused per partition, the other topics still written).
    const bool may_write = allowed(ctx, h, AclOperation::write, ResourceType::topic, tp.name);
    for (const auto& rp : t.partitions) {
      Part part{rp.index};
      std::vector<std::span<const std::uint8_t>> batches;
      ConvertError err;
      if (!may_write) {
        part.error = kTopicAuthorizationFailed;
        part.message = "not authorized to write to topic " + tp.name;
      } else if (req.transactional_id) {
        part.error = 87;
        part.message = "transactional produce is not supported (quorumq has no transactions)";
      } else if (!rp.records || rp.records->empty()) {
        part.error = 87;
        part.message = "no records";
      } else if (!split_batches(*rp.records, batches, err) || batches.size() != 1) {
        part.error = err.code != BatchCheck::ok ? static_cast<std::int16_t>(err.code) : std::int16_t{87};
        part.message = err.message.empty() ? "a produce request carries exactly one record batch per partition" : err.message;
      } else if (!to_quorumq(batches.front(), part.batch, err, std::min(max_records, request_budget))) {
        part.error = static_cast<std::int16_t>(err.code);
        part.message = err.code == BatchCheck::message_too_large && request_budget < max_records
                           ? "the batches of this request decompress to more than --max-frame-bytes (" +
                                 std::to_string(ctx.config.max_frame_bytes) +
                                 " bytes) together: send fewer partitions per request"
                           : err.message;
      }
      request_budget -= std::min(request_budget, part.batch.size());
      tp.partitions.push_back(std::move(part));
    }
    topics->push_back(std::move(tp));
  }
  if (acks != 0 && acks != 1 && acks != -1) {
    for (auto& tp : *topics)
      for (auto& p : tp.partitions) p.error = 21, p.message = "acks must be -1 (all), 1 or 0";  // INVALID_REQUIRED_ACKS
  }
  // Sized for every batch at once: a large request is not copied as the builder grows.
  std::size_t total = 1024;
  for (const auto& tp : *topics)
    for (const auto& p : tp.partitions) total += p.batch.size() + tp.name.size() + 64;
  flatbuffers::FlatBufferBuilder fbb(total);
  std::vector<flatbuffers::Offset<wire::ProduceTopicData>> tds;
  for (auto& tp : *topics) {
    std::vector<flatbuffers::Offset<wire::ProducePartitionData>> pds;
    for (auto& p : tp.partitions)
      if (p.error == 0) {
        pds.push_back(wire::CreateProducePartitionData(fbb, p.index, fbb.CreateVector(p.batch)));
        std::vector<std::uint8_t>().swap(p.batch);  // copied into the request
      }
    if (!pds.empty()) tds.push_back(wire::CreateProduceTopicData(fbb, fbb.CreateString(tp.name), fbb.CreateVector(pds)));
  }
  const wire::Acks native_acks = acks == 0 ? wire::Acks::none : acks == 1 ? wire::Acks::leader : wire::Acks::quorum;
  fbb.Finish(wire::CreateProduceRequest(fbb, native_acks, timeout_ms > 0 ? timeout_ms : 30000, fbb.CreateVector(tds)));
  call_native<wire::ProduceResponse>(
      ctx, h.who, protocol::ApiId::produce, fbb,
      [h, acks, topics, done = std::move(done)](const wire::ProduceResponse* resp, wire::ErrorCode whole) {
        if (acks == 0) return done(Answer{});  // fire and forget: Kafka sends nothing back
        struct Result {
          std::int16_t error;
          std::int64_t base_offset, log_start;
          std::string message;
        };
        const auto native = by_partition<Result>(resp, [](const wire::ProducePartitionResponse* p) {
          return Result{kafka_code(p->error()), p->base_offset(), p->log_start_offset(),
                        p->message() ? p->message()->str() : std::string()};
        });
        Writer w = start(h);
        w.array_length(static_cast<std::int32_t>(topics->size()));
        for (const auto& tp : *topics) {
          w.string(tp.name);
          w.array_length(static_cast<std::int32_t>(tp.partitions.size()));
          for (const auto& p : tp.partitions) {
            Result res{p.error, -1, -1, p.message};
            if (p.error == 0) {
              auto it = native.find({tp.name, p.index});
              res = it != native.end() ? it->second : Result{missing_code(whole), -1, -1, "no answer for this partition"};
            }
            w.i32(p.index);
            w.i16(res.error);
            w.i64(res.error == 0 ? res.base_offset : -1);
            if (h.version >= 2) w.i64(-1);                      // LogAppendTimeMs: CreateTime topics
            if (h.version >= 5) w.i64(res.log_start);           // LogStartOffset
            if (h.version >= 8) {
              w.array_length(0);                                // RecordErrors
              w.nullable_string(res.error == 0 || res.message.empty() ? std::nullopt
                                                                      : std::optional<std::string_view>(res.message));
            }
          }
        }
        if (h.version >= 1) w.i32(0);  // ThrottleTimeMs
        done(finish(w));
      });
}

// ---- Fetch 4-11 ---------------------------------------------------------------------------
// A full fetch each time (no fetch sessions: SessionId 0). Reads run through the native fetch
// handler (long poll, limits, high watermark); each stored batch goes out as a RecordBatch v2.
void fetch(BrokerContext& ctx, const Header& h, Reader& r, std::function<void(Answer)> done) {
  FetchRequest req;
  if (!parse_fetch(r, h.version, ctx.config.max_partitions_per_request, req))
    return done(malformed_or_too_many(ctx, "Fetch"));
  // IsolationLevel: no transactions, so read_committed reads what read_uncommitted does.
  const std::int32_t max_wait = req.max_wait_ms, min_bytes = req.min_bytes, max_bytes = req.max_bytes;
  auto topics = std::make_shared<std::vector<OwnedTopic<FetchRequest::Partition>>>(owned(req.topics));
  // Topics the principal may not read are answered TOPIC_AUTHORIZATION_FAILED per partition (as
  // Kafka does); the others are fetched.
  auto denied = std::make_shared<std::set<std::string>>();
  for (const auto& t : *topics)
    if (!allowed(ctx, h, AclOperation::read, ResourceType::topic, t.name)) denied->insert(t.name);
  flatbuffers::FlatBufferBuilder fbb(1024);
  std::vector<flatbuffers::Offset<wire::FetchTopic>> fts;
  for (const auto& t : *topics) {
    if (denied->contains(t.name)) continue;
    std::vector<flatbuffers::Offset<wire::FetchPartition>> fps;
    for (const auto& p : t.partitions)
      fps.push_back(wire::CreateFetchPartition(fbb, p.index, p.offset, std::max(p.max_bytes, 1)));
    fts.push_back(wire::CreateFetchTopic(fbb, fbb.CreateString(t.name), fbb.CreateVector(fps)));
  }
  // Nothing left to read: no long poll.
  fbb.Finish(wire::CreateFetchRequest(fbb, fts.empty() ? 0 : max_wait, min_bytes, max_bytes, fbb.CreateVector(fts)));
  call_native<wire::FetchResponse>(
      ctx, h.who, protocol::ApiId::fetch, fbb,
      [h, topics, denied, done = std::move(done)](const wire::FetchResponse* resp, wire::ErrorCode whole) {
        struct Result {
          std::int16_t error;
          std::int64_t hw, log_start;
          std::span<const std::uint8_t> records;
        };
        const auto native = by_partition<Result>(resp, [](const wire::FetchPartitionResponse* p) {
          return Result{kafka_code(p->error()), p->high_watermark(), p->log_start_offset(),
                        p->records() ? std::span<const std::uint8_t>(p->records()->data(), p->records()->size())
                                     : std::span<const std::uint8_t>()};
        });
        Writer w = start(h);
        // One allocation: the stored batches plus at most 8 bytes more per 61-byte header, the
        // rest per partition.
        std::size_t total = 256;
        for (const auto& [tp, res] : native) total += res.records.size() * 9 / 8 + tp.first.size() + 64;
        w.reserve(total);
        w.i32(0);  // ThrottleTimeMs
        if (h.version >= 7) {
          w.i16(0);  // ErrorCode
          w.i32(0);  // SessionId: no session
        }
        w.array_length(static_cast<std::int32_t>(topics->size()));
        for (const auto& t : *topics) {
          w.string(t.name);
          w.array_length(static_cast<std::int32_t>(t.partitions.size()));
          for (const auto& p : t.partitions) {
            auto it = native.find({t.name, p.index});
            const Result res = denied->contains(t.name) ? Result{kTopicAuthorizationFailed, -1, -1, {}}
                               : it != native.end()     ? it->second
                                                        : Result{missing_code(whole), -1, -1, {}};
            w.i32(p.index);
            w.i16(res.error);
            w.i64(res.hw);
            w.i64(res.hw);         // LastStableOffset = high watermark (no transactions)
            if (h.version >= 5) w.i64(res.log_start);
            w.array_length(0);     // AbortedTransactions
            if (h.version >= 11) w.i32(-1);  // PreferredReadReplica
            // Records: the stored batches, one after another (batch_length at byte 16), written
            // in place behind their size; only data batches hold offsets a consumer can see.
            const std::size_t size_at = w.size();
            w.i32(0);
            std::size_t at = 0;
            while (res.error == 0 && res.records.size() - at >= kBatchHeaderSize) {
              const BatchView v(res.records.subspan(at));
              const std::size_t len = v.batch_length();
              if (len < kBatchHeaderSize || len > res.records.size() - at) break;
              const BatchView one(res.records.subspan(at, len));
              if (one.type() == BatchType::data && one.record_count() > 0) (void)append_as_kafka(one, w);
              at += len;
            }
            w.patch_i32(size_at, static_cast<std::int32_t>(w.size() - size_at - 4));
          }
        }
        done(finish(w));
      });
}

// ---- ListOffsets 1-5 ----------------------------------------------------------------------
void list_offsets(BrokerContext& ctx, const Header& h, Reader& r, std::function<void(Answer)> done) {
  ListOffsetsRequest req;
  if (!parse_list_offsets(r, h.version, ctx.config.max_partitions_per_request, req))
    return done(malformed_or_too_many(ctx, "ListOffsets"));
  auto topics = std::make_shared<std::vector<OwnedTopic<ListOffsetsRequest::Partition>>>(owned(req.topics));
  auto denied = std::make_shared<std::set<std::string>>();  // no describe: TOPIC_AUTHORIZATION_FAILED
  for (const auto& t : *topics)
    if (!allowed(ctx, h, AclOperation::describe, ResourceType::topic, t.name)) denied->insert(t.name);
  flatbuffers::FlatBufferBuilder fbb(1024);
  std::vector<flatbuffers::Offset<wire::ListOffsetsTopic>> lts;
  for (const auto& t : *topics) {
    if (denied->contains(t.name)) continue;
    std::vector<flatbuffers::Offset<wire::ListOffsetsPartition>> lps;
    for (const auto& p : t.partitions) {
      const auto spec = p.timestamp == -1   ? wire::OffsetSpec::latest
                        : p.timestamp == -2 ? wire::OffsetSpec::earliest
                                            : wire::OffsetSpec::timestamp;
      lps.push_back(wire::CreateListOffsetsPartition(fbb, p.index, spec, p.timestamp));
    }
    lts.push_back(wire::CreateListOffsetsTopic(fbb, fbb.CreateString(t.name), fbb.CreateVector(lps)));
  }
  fbb.Finish(wire::CreateListOffsetsRequest(fbb, fbb.CreateVector(lts)));
  call_native<wire::ListOffsetsResponse>(
      ctx, h.who, protocol::ApiId::list_offsets, fbb,
      [h, topics, denied, done = std::move(done)](const wire::ListOffsetsResponse* resp, wire::ErrorCode whole) {
        struct Result {
          std::int16_t error;
          std::int64_t offset, timestamp;
        };
        const auto native = by_partition<Result>(resp, [](const wire::ListOffsetsPartitionResponse* p) {
          return Result{kafka_code(p->error()), p->offset(), p->timestamp_ms()};
        });
        Writer w = start(h);
        if (h.version >= 2) w.i32(0);  // ThrottleTimeMs
        w.array_length(static_cast<std::int32_t>(topics->size()));
        for (const auto& t : *topics) {
          w.string(t.name);
          w.array_length(static_cast<std::int32_t>(t.partitions.size()));
          for (const auto& p : t.partitions) {
            auto it = native.find({t.name, p.index});
            const Result res = denied->contains(t.name) ? Result{kTopicAuthorizationFailed, -1, -1}
                               : it != native.end()     ? it->second
                                                        : Result{missing_code(whole), -1, -1};
            w.i32(p.index);
            w.i16(res.error);
            w.i64(res.timestamp);
            w.i64(res.error == 0 ? res.offset : -1);
            if (h.version >= 4) w.i32(-1);  // LeaderEpoch
          }
        }
        done(finish(w));
      });
}

// ---- InitProducerId 0-1 -------------------------------------------------------------------
// An idempotent producer's id and epoch, from the same allocator native producers use, so its
// batches keep Kafka's sequence rules (duplicates answered with their offset, gaps refused)
// through the partition's producer table, across failovers.
void init_producer_id(BrokerContext& ctx, const Header& h, Reader& r, std::function<void(Answer)> done) {
  InitProducerIdRequest req;
  if (!parse_init_producer_id(r, h.version, req)) return done(close_with("malformed InitProducerId request"));
  const std::int32_t timeout_ms = req.timeout_ms;
  if (req.transactional_id && !req.transactional_id->empty()) {
    Writer w = start(h);
    w.i32(0);
    w.i16(42);  // INVALID_REQUEST: quorumq has no transactions
    w.i64(-1);
    w.i16(-1);
    return done(finish(w));
  }
  flatbuffers::FlatBufferBuilder fbb(128);
  fbb.Finish(wire::CreateInitProducerIdRequest(fbb, 0, -1, -1, timeout_ms > 0 ? timeout_ms : 30000));
  call_native<wire::InitProducerIdResponse>(
      ctx, h.who, protocol::ApiId::init_producer_id, fbb,
      [h, done = std::move(done)](const wire::InitProducerIdResponse* resp, wire::ErrorCode whole) {
        Writer w = start(h);
        w.i32(0);  // ThrottleTimeMs
        if (resp) {
          w.i16(kafka_code(resp->error()));
          w.i64(resp->producer_id());
          w.i16(resp->producer_epoch());
        } else {
          w.i16(kafka_code(whole == wire::ErrorCode::none ? wire::ErrorCode::unknown : whole));
          w.i64(-1);
          w.i16(-1);
        }
        done(finish(w));
      });
}

}  // namespace

std::span<const ApiRange> supported_apis() { return all_apis(); }

void handle(BrokerContext& ctx, Session& session, std::span<const std::uint8_t> request,
            std::function<void(Answer)> done) {
  if (session.raw_tokens) return sasl_raw_token(ctx, session, request, std::move(done));
  Reader r(request);
  Header h;
  if (!parse_header(r, h)) return done(close_with("malformed Kafka request header"));
  if (h.key == kApiVersions) return done(api_versions(h, r));
  h.who = session.sasl.principal();
  if (h.key == kSaslHandshake) return sasl_handshake(ctx, session, h, r, std::move(done));
  if (h.key == kSaslAuthenticate) return sasl_authenticate(ctx, session, h, r, std::move(done));
  if (ctx.security.authentication_required() && !session.sasl.authenticated())
    return done(close_with("api key " + std::to_string(h.key) +
                           " before SASL authentication: this listener requires SASL (client settings "
                           "security.protocol=SASL_SSL or SASL_PLAINTEXT, sasl.mechanism=SCRAM-SHA-256)"));
  const auto& apis = all_apis();
  const auto it = std::find_if(apis.begin(), apis.end(), [&h](const ApiRange& a) { return a.key == h.key; });
  if (it == apis.end())
    return done(close_with("api key " + std::to_string(h.key) + " is not served on the Kafka listener"));
  if (h.version < it->min || h.version > it->max)
    return done(close_with("api key " + std::to_string(h.key) + " version " + std::to_string(h.version) +
                           " is not supported (ApiVersions lists what is)"));
  switch (h.key) {
    case kMetadata: return done(metadata(ctx, h, r));
    case kProduce: return produce(ctx, h, r, std::move(done));
    case kFetch: return fetch(ctx, h, r, std::move(done));
    case kListOffsets: return list_offsets(ctx, h, r, std::move(done));
    case kInitProducerId: return init_producer_id(ctx, h, r, std::move(done));
    default:
      if (!handle_group_api(ctx, h, r, done)) done(close_with("unreachable"));
      return;
  }
}

}  // namespace quorumq::broker::kafka
