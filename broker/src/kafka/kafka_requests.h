// Kafka request decoders (issue 17): the request header and the bodies of the apis the Kafka
// listener serves, as plain structs. Pure functions over bytes, so fuzz_kafka_request runs them
// on anything; the handlers (broker/src/handlers/kafka_api.cc) act on what they return.
//
// Every decoder reads the whole body and returns false if anything is short, malformed or left
// over, or if the request names more than `max_partitions` partitions (topics for Metadata):
// bounded work per request, as on the native listener. Views (string_view, span) point into the
// request bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "kafka_wire.h"

namespace quorumq::broker::kafka {

namespace api {
inline constexpr std::int16_t produce = 0;
inline constexpr std::int16_t fetch = 1;
inline constexpr std::int16_t list_offsets = 2;
inline constexpr std::int16_t metadata = 3;
inline constexpr std::int16_t api_versions = 18;
inline constexpr std::int16_t init_producer_id = 22;
}  // namespace api

struct RequestHeader {
  std::int16_t key = 0;
  std::int16_t version = 0;
  std::int32_t correlation = 0;
  std::optional<std::string_view> client_id;
};
// Header v1, or v2 (tagged fields after the client id) for the flexible ApiVersions v3.
bool parse_header(Reader& r, RequestHeader& h);

struct ApiVersionsRequest {
  std::string_view client_software_name, client_software_version;  // v3+
};
bool parse_api_versions(Reader& r, std::int16_t version, ApiVersionsRequest& out);

struct MetadataRequest {
  std::optional<std::vector<std::string_view>> topics;  // nullopt: all topics
};
bool parse_metadata(Reader& r, std::int16_t version, std::uint32_t max_topics, MetadataRequest& out);

struct ProduceRequest {
  struct Partition {
    std::int32_t index = 0;
    std::optional<std::span<const std::uint8_t>> records;
  };
  struct Topic {
    std::string_view name;
    std::vector<Partition> partitions;
  };
  std::optional<std::string_view> transactional_id;
  std::int16_t acks = -1;
  std::int32_t timeout_ms = 0;
  std::vector<Topic> topics;
};
bool parse_produce(Reader& r, std::int16_t version, std::uint32_t max_partitions, ProduceRequest& out);

struct FetchRequest {
  struct Partition {
    std::int32_t index = 0;
    std::int64_t offset = 0;
    std::int32_t max_bytes = 0;
  };
  struct Topic {
    std::string_view name;
    std::vector<Partition> partitions;
  };
  std::int32_t max_wait_ms = 0, min_bytes = 0, max_bytes = 0;
  std::int8_t isolation_level = 0;
  std::vector<Topic> topics;
};
bool parse_fetch(Reader& r, std::int16_t version, std::uint32_t max_partitions, FetchRequest& out);

struct ListOffsetsRequest {
  struct Partition {
    std::int32_t index = 0;
    std::int64_t timestamp = 0;  // -1 latest, -2 earliest, else a time in ms
  };
  struct Topic {
    std::string_view name;
    std::vector<Partition> partitions;
  };
  std::vector<Topic> topics;
};
bool parse_list_offsets(Reader& r, std::int16_t version, std::uint32_t max_partitions, ListOffsetsRequest& out);

struct InitProducerIdRequest {
  std::optional<std::string_view> transactional_id;
  std::int32_t timeout_ms = 0;
};
bool parse_init_producer_id(Reader& r, std::int16_t version, InitProducerIdRequest& out);

}  // namespace quorumq::broker::kafka
