// libFuzzer target: the Kafka listener's request decoders (broker/src/kafka/kafka_requests.h and
// kafka_group_requests.h) on arbitrary bytes, the way a broker meets a Kafka client's request: the header, then every body
// decoder at every version the listener accepts (and one past each end). A decoder that accepts
// must have read the whole body and stayed within the partition limit.
#include <cstdint>
#include <cstdlib>

#include "kafka_group_requests.h"
#include "kafka_requests.h"

using namespace quorumq::broker::kafka;

namespace {
constexpr std::uint32_t kMax = 64;  // partitions (topics for Metadata) one request may name

template <typename Req, typename F>
void each_version(std::span<const std::uint8_t> body, int lo, int hi, F&& parse) {
  for (int v = lo - 1; v <= hi + 1; ++v) {
    Reader r(body);
    Req req;
    if (parse(r, static_cast<std::int16_t>(v), req) && !r.done()) std::abort();
  }
}
template <typename T>
std::size_t partitions(const T& req) {
  std::size_t n = 0;
  for (const auto& t : req.topics) n += t.partitions.size();
  return n;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> in(data, size);
  Reader hr(in);
  RequestHeader h;
  const std::span<const std::uint8_t> body = parse_header(hr, h) ? in.subspan(hr.position()) : in;
  each_version<ApiVersionsRequest>(body, 0, 3, [](Reader& r, std::int16_t v, ApiVersionsRequest& q) {
    return parse_api_versions(r, v, q);
  });
  each_version<MetadataRequest>(body, 0, 8, [](Reader& r, std::int16_t v, MetadataRequest& q) {
    const bool ok = parse_metadata(r, v, kMax, q);
    if (ok && q.topics && q.topics->size() > kMax) std::abort();
    return ok;
  });
  each_version<ProduceRequest>(body, 0, 8, [](Reader& r, std::int16_t v, ProduceRequest& q) {
    const bool ok = parse_produce(r, v, kMax, q);
    if (ok && partitions(q) > kMax) std::abort();
    return ok;
  });
  each_version<FetchRequest>(body, 4, 11, [](Reader& r, std::int16_t v, FetchRequest& q) {
    const bool ok = parse_fetch(r, v, kMax, q);
    if (ok && partitions(q) > kMax) std::abort();
    return ok;
  });
  each_version<ListOffsetsRequest>(body, 1, 5, [](Reader& r, std::int16_t v, ListOffsetsRequest& q) {
    const bool ok = parse_list_offsets(r, v, kMax, q);
    if (ok && partitions(q) > kMax) std::abort();
    return ok;
  });
  each_version<InitProducerIdRequest>(body, 0, 1, [](Reader& r, std::int16_t v, InitProducerIdRequest& q) {
    return parse_init_producer_id(r, v, q);
  });
  // Groups, offsets, admin (kafka_group_requests.h): bounded by kMax items each.
  each_version<FindCoordinatorRequest>(body, 0, 2, [](Reader& r, std::int16_t v, FindCoordinatorRequest& q) {
    return parse_find_coordinator(r, v, q);
  });
  each_version<JoinGroupRequest>(body, 0, 5, [](Reader& r, std::int16_t v, JoinGroupRequest& q) {
    const bool ok = parse_join_group(r, v, kMax, q);
    if (ok && q.protocols.size() > kMax) std::abort();
    std::vector<std::string_view> topics;
    if (ok && !q.protocols.empty() && parse_subscription(q.protocols[0].metadata, kMax, topics) && topics.size() > kMax)
      std::abort();
    return ok;
  });
  each_version<SyncGroupRequest>(body, 0, 3, [](Reader& r, std::int16_t v, SyncGroupRequest& q) {
    const bool ok = parse_sync_group(r, v, kMax, q);
    if (ok && q.assignments.size() > kMax) std::abort();
    for (const auto& a : q.assignments) {
      std::vector<TopicPartitions> parts;
      std::size_t n = 0;
      if (ok && parse_assignment(a.assignment, kMax, parts))
        for (const auto& tp : parts) n += tp.partitions.size();
      if (n > kMax) std::abort();
    }
    return ok;
  });
  each_version<HeartbeatRequest>(body, 0, 3, [](Reader& r, std::int16_t v, HeartbeatRequest& q) {
    return parse_heartbeat(r, v, q);
  });
  each_version<LeaveGroupRequest>(body, 0, 3, [](Reader& r, std::int16_t v, LeaveGroupRequest& q) {
    const bool ok = parse_leave_group(r, v, kMax, q);
    if (ok && q.member_ids.size() > kMax) std::abort();
    return ok;
  });
  each_version<OffsetCommitRequest>(body, 2, 7, [](Reader& r, std::int16_t v, OffsetCommitRequest& q) {
    const bool ok = parse_offset_commit(r, v, kMax, q);
    if (ok && partitions(q) > kMax) std::abort();
    return ok;
  });
  each_version<OffsetFetchRequest>(body, 1, 5, [](Reader& r, std::int16_t v, OffsetFetchRequest& q) {
    const bool ok = parse_offset_fetch(r, v, kMax, q);
    std::size_t n = 0;
    if (ok && q.topics)
      for (const auto& t : *q.topics) n += t.partitions.size();
    if (n > kMax) std::abort();
    return ok;
  });
  {
    Reader r(body);
    (void)parse_list_groups(r, 0);
  }
  each_version<DescribeGroupsRequest>(body, 0, 3, [](Reader& r, std::int16_t v, DescribeGroupsRequest& q) {
    const bool ok = parse_describe_groups(r, v, kMax, q);
    if (ok && q.groups.size() > kMax) std::abort();
    return ok;
  });
  each_version<CreateTopicsRequest>(body, 0, 4, [](Reader& r, std::int16_t v, CreateTopicsRequest& q) {
    const bool ok = parse_create_topics(r, v, kMax, q);
    if (ok && q.topics.size() > kMax) std::abort();
    return ok;
  });
  each_version<DeleteTopicsRequest>(body, 0, 3, [](Reader& r, std::int16_t v, DeleteTopicsRequest& q) {
    const bool ok = parse_delete_topics(r, v, kMax, q);
    if (ok && q.topics.size() > kMax) std::abort();
    return ok;
  });
  each_version<DescribeConfigsRequest>(body, 0, 2, [](Reader& r, std::int16_t v, DescribeConfigsRequest& q) {
    const bool ok = parse_describe_configs(r, v, kMax, q);
    if (ok && q.resources.size() > kMax) std::abort();
    return ok;
  });
  return 0;
}
