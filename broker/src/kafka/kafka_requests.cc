#include "kafka_requests.h"

namespace quorumq::broker::kafka {

bool parse_header(Reader& r, RequestHeader& h) {
  h.key = r.i16();
  h.version = r.i16();
  h.correlation = r.i32();
  h.client_id = r.nullable_string();  // a classic string in header v1 and v2 alike
  if (h.key == api::api_versions && h.version == 3) r.skip_tagged_fields();
  return !r.fail();
}

bool parse_api_versions(Reader& r, std::int16_t version, ApiVersionsRequest& out) {
  if (version >= 3) {
    out.client_software_name = r.compact_string();
    out.client_software_version = r.compact_string();
    r.skip_tagged_fields();
  }
  return !r.fail() && r.done();
}

bool parse_metadata(Reader& r, std::int16_t version, std::uint32_t max_topics, MetadataRequest& out) {
  // v0: an array, empty meaning all topics; v1+: nullable, null meaning all, empty none.
  const auto n = r.array_length();
  if (r.fail() || (!n && version == 0)) return false;
  if (n) {
    if (static_cast<std::uint32_t>(*n) > max_topics) return false;
    out.topics.emplace();
    out.topics->reserve(static_cast<std::size_t>(*n));
    for (std::int32_t i = 0; i < *n && !r.fail(); ++i) out.topics->push_back(r.string());
    if (version == 0 && out.topics->empty()) out.topics.reset();
  }
  if (version >= 4) (void)r.boolean();  // AllowAutoTopicCreation: topics are created explicitly
  if (version >= 8) {
    (void)r.boolean();  // IncludeClusterAuthorizedOperations
    (void)r.boolean();  // IncludeTopicAuthorizedOperations
  }
  return !r.fail() && r.done();
}

namespace {
// Reads a topic array whose partitions `each` decodes; counts partitions against `max`.
template <typename Topic, typename F>
bool read_topics(Reader& r, std::uint32_t max, std::vector<Topic>& out, F&& each) {
  const auto nt = r.array_length();
  if (!nt) return false;
  std::uint32_t count = 0;
  for (std::int32_t t = 0; t < *nt && !r.fail(); ++t) {
    Topic topic;
    topic.name = r.string();
    const auto np = r.array_length();
    if (!np) return false;
    for (std::int32_t p = 0; p < *np && !r.fail(); ++p) {
      if (++count > max) return false;
      topic.partitions.push_back(each(r));
    }
    out.push_back(std::move(topic));
  }
  return !r.fail();
}
}  // namespace

bool parse_produce(Reader& r, std::int16_t version, std::uint32_t max_partitions, ProduceRequest& out) {
  if (version >= 3) out.transactional_id = r.nullable_string();
  out.acks = r.i16();
  out.timeout_ms = r.i32();
  if (!read_topics(r, max_partitions, out.topics, [](Reader& rr) {
        ProduceRequest::Partition p;
        p.index = rr.i32();
        p.records = rr.nullable_bytes();
        return p;
      }))
    return false;
  return r.done();
}

bool parse_fetch(Reader& r, std::int16_t version, std::uint32_t max_partitions, FetchRequest& out) {
  (void)r.i32();  // ReplicaId: consumers send -1
  out.max_wait_ms = r.i32();
  out.min_bytes = r.i32();
  if (version >= 3) out.max_bytes = r.i32();
  if (version >= 4) out.isolation_level = r.i8();
  if (version >= 7) {
    (void)r.i32();  // SessionId
    (void)r.i32();  // SessionEpoch
  }
  if (!read_topics(r, max_partitions, out.topics, [version](Reader& rr) {
        FetchRequest::Partition p;
        p.index = rr.i32();
        if (version >= 9) (void)rr.i32();  // CurrentLeaderEpoch
        p.offset = rr.i64();
        if (version >= 5) (void)rr.i64();  // LogStartOffset (followers only)
        p.max_bytes = rr.i32();
        return p;
      }))
    return false;
  if (version >= 7) {
    // ForgottenTopicsData: only meaningful with fetch sessions, which are not kept.
    const auto nf = r.array_length();
    if (!nf) return false;
    std::uint32_t count = 0;
    for (std::int32_t t = 0; t < *nf && !r.fail(); ++t) {
      (void)r.string();
      const auto np = r.array_length();
      if (!np) return false;
      for (std::int32_t p = 0; p < *np && !r.fail(); ++p) {
        if (++count > max_partitions) return false;
        (void)r.i32();
      }
    }
  }
  if (version >= 11) (void)r.string();  // RackId
  return !r.fail() && r.done();
}

bool parse_list_offsets(Reader& r, std::int16_t version, std::uint32_t max_partitions, ListOffsetsRequest& out) {
  (void)r.i32();                     // ReplicaId
  if (version >= 2) (void)r.i8();    // IsolationLevel
  if (!read_topics(r, max_partitions, out.topics, [version](Reader& rr) {
        ListOffsetsRequest::Partition p;
        p.index = rr.i32();
        if (version >= 4) (void)rr.i32();  // CurrentLeaderEpoch
        p.timestamp = rr.i64();
        return p;
      }))
    return false;
  return r.done();
}

bool parse_init_producer_id(Reader& r, std::int16_t /*version*/, InitProducerIdRequest& out) {
  out.transactional_id = r.nullable_string();
  out.timeout_ms = r.i32();
  return !r.fail() && r.done();
}

}  // namespace quorumq::broker::kafka
