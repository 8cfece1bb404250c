#include "kafka_group_requests.h"

namespace quorumq::broker::kafka {

namespace {
// Reads an array's length, counting it against `budget` (what one request may name in all).
std::optional<std::int32_t> bounded_array(Reader& r, std::uint32_t& budget) {
  const auto n = r.array_length();
  if (!n) return std::nullopt;
  if (static_cast<std::uint32_t>(*n) > budget) {
    r.set_fail();
    return std::nullopt;
  }
  budget -= static_cast<std::uint32_t>(*n);
  return n;
}
std::optional<std::vector<std::string_view>> strings(Reader& r, std::uint32_t& budget) {
  const auto n = bounded_array(r, budget);
  if (!n) return std::nullopt;
  std::vector<std::string_view> out;
  out.reserve(static_cast<std::size_t>(*n));
  for (std::int32_t i = 0; i < *n && !r.fail(); ++i) out.push_back(r.string());
  if (r.fail()) return std::nullopt;
  return out;
}
}  // namespace

bool parse_find_coordinator(Reader& r, std::int16_t version, FindCoordinatorRequest& out) {
  out.key = r.string();
  if (version >= 1) out.key_type = r.i8();
  return !r.fail() && r.done();
}

bool parse_join_group(Reader& r, std::int16_t version, std::uint32_t max_items, JoinGroupRequest& out) {
  out.group_id = r.string();
  out.session_timeout_ms = r.i32();
  out.rebalance_timeout_ms = version >= 1 ? r.i32() : out.session_timeout_ms;
  out.member_id = r.string();
  if (version >= 5) out.group_instance_id = r.nullable_string();
  out.protocol_type = r.string();
  const auto n = bounded_array(r, max_items);
  if (!n) return false;
  for (std::int32_t i = 0; i < *n && !r.fail(); ++i) {
    JoinGroupRequest::Protocol p;
    p.name = r.string();
    auto md = r.nullable_bytes();
    if (!md) return false;
    p.metadata = *md;
    out.protocols.push_back(p);
  }
  return !r.fail() && r.done();
}

bool parse_sync_group(Reader& r, std::int16_t version, std::uint32_t max_items, SyncGroupRequest& out) {
  out.group_id = r.string();
  out.generation_id = r.i32();
  out.member_id = r.string();
  if (version >= 3) out.group_instance_id = r.nullable_string();
  const auto n = bounded_array(r, max_items);
  if (!n) return false;
  for (std::int32_t i = 0; i < *n && !r.fail(); ++i) {
    SyncGroupRequest::Assignment a;
    a.member_id = r.string();
    auto b = r.nullable_bytes();
    if (!b) return false;
    a.assignment = *b;
    out.assignments.push_back(a);
  }
  return !r.fail() && r.done();
}

bool parse_heartbeat(Reader& r, std::int16_t version, HeartbeatRequest& out) {
  out.group_id = r.string();
  out.generation_id = r.i32();
  out.member_id = r.string();
  if (version >= 3) out.group_instance_id = r.nullable_string();
  return !r.fail() && r.done();
}

bool parse_leave_group(Reader& r, std::int16_t version, std::uint32_t max_items, LeaveGroupRequest& out) {
  out.group_id = r.string();
  if (version < 3) {
    out.member_ids.push_back(r.string());
  } else {
    const auto n = bounded_array(r, max_items);
    if (!n) return false;
    for (std::int32_t i = 0; i < *n && !r.fail(); ++i) {
      out.member_ids.push_back(r.string());
      (void)r.nullable_string();  // GroupInstanceId
    }
  }
  return !r.fail() && r.done();
}

bool parse_offset_commit(Reader& r, std::int16_t version, std::uint32_t max_items, OffsetCommitRequest& out) {
  out.group_id = r.string();
  out.generation_id = r.i32();
  out.member_id = r.string();
  if (version >= 7) (void)r.nullable_string();  // GroupInstanceId
  if (version >= 2 && version <= 4) (void)r.i64();  // RetentionTimeMs: offsets are kept with the log
  const auto nt = r.array_length();
  if (!nt) return false;
  for (std::int32_t t = 0; t < *nt && !r.fail(); ++t) {
    OffsetCommitRequest::Topic topic;
    topic.name = r.string();
    const auto np = bounded_array(r, max_items);
    if (!np) return false;
    for (std::int32_t p = 0; p < *np && !r.fail(); ++p) {
      OffsetCommitRequest::Partition part;
      part.index = r.i32();
      part.offset = r.i64();
      if (version >= 6) (void)r.i32();  // CommittedLeaderEpoch
      part.metadata = r.nullable_string();
      topic.partitions.push_back(part);
    }
    out.topics.push_back(std::move(topic));
  }
  return !r.fail() && r.done();
}

bool parse_offset_fetch(Reader& r, std::int16_t version, std::uint32_t max_items, OffsetFetchRequest& out) {
  out.group_id = r.string();
  const auto nt = r.array_length();
  if (r.fail() || (!nt && version < 2)) return false;
  if (nt) {
    out.topics.emplace();
    for (std::int32_t t = 0; t < *nt && !r.fail(); ++t) {
      OffsetFetchRequest::Topic topic;
      topic.name = r.string();
      const auto np = bounded_array(r, max_items);
      if (!np) return false;
      for (std::int32_t p = 0; p < *np && !r.fail(); ++p) topic.partitions.push_back(r.i32());
      out.topics->push_back(std::move(topic));
    }
  }
  return !r.fail() && r.done();
}

bool parse_list_groups(Reader& r, std::int16_t /*version*/) { return r.done(); }

bool parse_describe_groups(Reader& r, std::int16_t version, std::uint32_t max_items, DescribeGroupsRequest& out) {
  auto g = strings(r, max_items);
  if (!g) return false;
  out.groups = std::move(*g);
  if (version >= 3) (void)r.boolean();  // IncludeAuthorizedOperations
  return !r.fail() && r.done();
}

bool parse_create_topics(Reader& r, std::int16_t version, std::uint32_t max_items, CreateTopicsRequest& out) {
  const auto nt = bounded_array(r, max_items);
  if (!nt) return false;
  for (std::int32_t t = 0; t < *nt && !r.fail(); ++t) {
    CreateTopicsRequest::Topic topic;
    topic.name = r.string();
    topic.partitions = r.i32();
    topic.replication_factor = r.i16();
    const auto na = bounded_array(r, max_items);
    if (!na) return false;
    topic.manual_assignment = *na > 0;
    for (std::int32_t a = 0; a < *na && !r.fail(); ++a) {
      (void)r.i32();  // PartitionIndex
      const auto nb = bounded_array(r, max_items);
      if (!nb) return false;
      for (std::int32_t b = 0; b < *nb && !r.fail(); ++b) (void)r.i32();
    }
    const auto nc = bounded_array(r, max_items);
    if (!nc) return false;
    for (std::int32_t c = 0; c < *nc && !r.fail(); ++c) {
      CreateTopicsRequest::Config cfg;
      cfg.name = r.string();
      cfg.value = r.nullable_string();
      topic.configs.push_back(cfg);
    }
    out.topics.push_back(std::move(topic));
  }
  out.timeout_ms = r.i32();
  if (version >= 1) out.validate_only = r.boolean();
  return !r.fail() && r.done();
}

bool parse_delete_topics(Reader& r, std::int16_t /*version*/, std::uint32_t max_items, DeleteTopicsRequest& out) {
  auto t = strings(r, max_items);
  if (!t) return false;
  out.topics = std::move(*t);
  out.timeout_ms = r.i32();
  return !r.fail() && r.done();
}

bool parse_describe_configs(Reader& r, std::int16_t version, std::uint32_t max_items, DescribeConfigsRequest& out) {
  const auto n = bounded_array(r, max_items);
  if (!n) return false;
  for (std::int32_t i = 0; i < *n && !r.fail(); ++i) {
    DescribeConfigsRequest::Resource res;
    res.type = r.i8();
    res.name = r.string();
    const auto nk = r.array_length();
    if (r.fail()) return false;
    if (nk) {
      if (static_cast<std::uint32_t>(*nk) > max_items) return false;
      max_items -= static_cast<std::uint32_t>(*nk);
      res.keys.emplace();
      for (std::int32_t k = 0; k < *nk && !r.fail(); ++k) res.keys->push_back(r.string());
    }
    out.resources.push_back(std::move(res));
  }
  if (version >= 1) out.include_synonyms = r.boolean();
  return !r.fail() && r.done();
}

bool parse_subscription(Bytes b, std::uint32_t max_items, std::vector<std::string_view>& topics) {
  Reader r(b);
  if (r.i16() < 0) return false;  // Version
  auto t = strings(r, max_items);
  if (!t) return false;
  topics = std::move(*t);
  return !r.fail();  // user data and owned partitions (v1+) follow; not needed here
}

bool parse_assignment(Bytes b, std::uint32_t max_items, std::vector<TopicPartitions>& out) {
  if (b.empty()) return true;  // a member given nothing may get empty bytes
  Reader r(b);
  if (r.i16() < 0) return false;  // Version
  const auto nt = r.array_length();
  if (!nt) return false;
  for (std::int32_t t = 0; t < *nt && !r.fail(); ++t) {
    TopicPartitions tp;
    tp.topic = r.string();
    const auto np = bounded_array(r, max_items);
    if (!np) return false;
    for (std::int32_t p = 0; p < *np && !r.fail(); ++p) tp.partitions.push_back(r.i32());
    out.push_back(std::move(tp));
  }
  return !r.fail();  // user data follows
}

void write_assignment(Writer& w, const std::vector<TopicPartitions>& parts) {
  w.i16(0);
  w.array_length(static_cast<std::int32_t>(parts.size()));
  for (const auto& tp : parts) {
    w.string(tp.topic);
    w.array_length(static_cast<std::int32_t>(tp.partitions.size()));
    for (const auto p : tp.partitions) w.i32(p);
  }
  w.nullable_bytes(std::nullopt);
}

}  // namespace quorumq::broker::kafka
