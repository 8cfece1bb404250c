#include "kafka_api.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <limits>
#include <optional>

#include "kafka_wire.h"

namespace quorumq::broker::kafka {

namespace {

constexpr std::int16_t kApiVersions = 18;
constexpr std::int16_t kMetadata = 3;

constexpr std::int16_t kNone = 0;
constexpr std::int16_t kUnknownTopicOrPartition = 3;
constexpr std::int16_t kLeaderNotAvailable = 5;
constexpr std::int16_t kUnsupportedVersion = 35;

constexpr std::array<ApiRange, 2> kApis{{{kMetadata, 0, 8}, {kApiVersions, 0, 3}}};

struct Header {
  std::int16_t key = 0;
  std::int16_t version = 0;
  std::int32_t correlation = 0;
};

// The response: size prefix (patched by finish), correlation id (response header v0).
Writer start(const Header& h) {
  Writer w;
  w.i32(0);
  w.i32(h.correlation);
  return w;
}
Answer finish(Writer& w) {
  w.patch_i32(0, static_cast<std::int32_t>(w.size() - 4));
  return Answer{std::move(w.bytes()), false, {}};
}
Answer close_with(std::string why) { return Answer{{}, true, std::move(why)}; }

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
  if (h.version >= 3) {
    (void)r.compact_string();  // ClientSoftwareName
    (void)r.compact_string();  // ClientSoftwareVersion
    r.skip_tagged_fields();
  }
  if (r.fail() || !r.done()) return close_with("malformed ApiVersions request");
  Writer w = start(h);
  w.i16(kNone);
  if (h.version >= 3) {
    w.compact_array_length(static_cast<std::int32_t>(kApis.size()));
  } else {
    w.array_length(static_cast<std::int32_t>(kApis.size()));
  }
  for (const auto& a : kApis) {
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
  // Topics: v0 an array (empty: all); v1+ nullable (null: all, empty: none).
  std::optional<std::vector<std::string>> wanted;
  const auto n = r.array_length();
  if (n) {
    if (static_cast<std::uint32_t>(*n) > ctx.config.max_partitions_per_request)
      return close_with("Metadata request names " + std::to_string(*n) + " topics, more than " +
                        std::to_string(ctx.config.max_partitions_per_request) + " (--max-partitions-per-request)");
    wanted.emplace();
    for (std::int32_t i = 0; i < *n && !r.fail(); ++i) wanted->emplace_back(r.string());
    if (h.version == 0 && wanted->empty()) wanted.reset();
  } else if (h.version == 0 && !r.fail()) {
    return close_with("Metadata v0 with a null topic array");
  }
  if (h.version >= 4) (void)r.boolean();  // AllowAutoTopicCreation: topics are created explicitly
  if (h.version >= 8) {
    (void)r.boolean();  // IncludeClusterAuthorizedOperations
    (void)r.boolean();  // IncludeTopicAuthorizedOperations
  }
  if (r.fail() || !r.done()) return close_with("malformed Metadata request");

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
  std::vector<std::shared_ptr<const Topic>> topics;
  std::vector<std::string> missing;
  if (!wanted) {
    topics = ctx.topics.list();
  } else {
    for (const auto& name : *wanted) {
      if (auto t = ctx.topics.find(name)) topics.push_back(std::move(t));
      else missing.push_back(name);
    }
  }
  w.array_length(static_cast<std::int32_t>(topics.size() + missing.size()));
  for (const auto& t : topics) {
    w.i16(kNone);
    w.string(t->name);
    if (h.version >= 1) w.boolean(false);  // IsInternal
    w.array_length(t->config.partitions);
    for (std::int32_t pid = 0; pid < t->config.partitions; ++pid) {
      const std::string gname = TopicManager::log_name(t->name, pid);
      const auto leader = ctx.replication.leader_of(gname);
      const Partition* p = t->local(pid);
      std::uint64_t epoch = 0;
      std::vector<std::int32_t> isr;
      if (p && p->group() && p->serving()) {
        epoch = p->group()->term();
        for (const auto m : p->group()->isr()) isr.push_back(m.value);
      } else if (auto a = ctx.replication.announced(gname); a && leader && a->leader == leader->value) {
        epoch = a->term;
        isr = a->isr;
      }
      const bool usable = leader && has_kafka(*leader);
      w.i16(usable ? kNone : kLeaderNotAvailable);
      w.i32(pid);
      w.i32(usable ? leader->value : -1);
      if (h.version >= 7)
        w.i32(static_cast<std::int32_t>(std::min<std::uint64_t>(epoch, std::numeric_limits<std::int32_t>::max())));
      const auto& reps = t->assignment[static_cast<std::size_t>(pid)];
      w.array_length(static_cast<std::int32_t>(reps.size()));
      for (const auto rep : reps) w.i32(rep.value);
      w.array_length(static_cast<std::int32_t>(isr.size()));
      for (const auto m : isr) w.i32(m);
      if (h.version >= 5) w.array_length(0);  // OfflineReplicas
    }
    if (h.version >= 8) w.i32(std::numeric_limits<std::int32_t>::min());  // TopicAuthorizedOperations: not asked
  }
  for (const auto& m : missing) {
    w.i16(kUnknownTopicOrPartition);
    w.string(m);
    if (h.version >= 1) w.boolean(false);
    w.array_length(0);
    if (h.version >= 8) w.i32(std::numeric_limits<std::int32_t>::min());
  }
  if (h.version >= 8) w.i32(std::numeric_limits<std::int32_t>::min());  // ClusterAuthorizedOperations
  return finish(w);
}

}  // namespace

std::span<const ApiRange> supported_apis() { return kApis; }

void handle(BrokerContext& ctx, std::span<const std::uint8_t> request, std::function<void(Answer)> done) {
  Reader r(request);
  Header h;
  h.key = r.i16();
  h.version = r.i16();
  h.correlation = r.i32();
  (void)r.nullable_string();  // ClientId (a classic string in header v1 and v2 alike)
  if (r.fail()) return done(close_with("request shorter than a Kafka request header"));
  if (h.key == kApiVersions) {
    if (h.version >= 3 && h.version <= 3) r.skip_tagged_fields();  // header v2
    if (r.fail()) return done(close_with("malformed request header"));
    return done(api_versions(h, r));
  }
  const auto it = std::find_if(kApis.begin(), kApis.end(), [&h](const ApiRange& a) { return a.key == h.key; });
  if (it == kApis.end())
    return done(close_with("api key " + std::to_string(h.key) + " is not served on the Kafka listener"));
  if (h.version < it->min || h.version > it->max)
    return done(close_with("api key " + std::to_string(h.key) + " version " + std::to_string(h.version) +
                           " is not supported (ApiVersions lists what is)"));
  switch (h.key) {
    case kMetadata: return done(metadata(ctx, h, r));
    default: return done(close_with("unreachable"));
  }
}

}  // namespace quorumq::broker::kafka
