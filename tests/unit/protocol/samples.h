// Valid request and response payloads for every public api, shared by the unit tests and the
// fuzz seed generator (tests/fuzz/make_seeds.cc), so both exercise realistic messages.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <flatbuffers/flatbuffers.h>

#include "quorumq/protocol/frame.h"
#include "quorumq/protocol/quorumq_generated.h"
#include "quorumq/protocol/record_batch.h"

namespace quorumq::testing {

inline std::vector<std::uint8_t> sample_batch() {
  BatchBuilder b;
  const std::vector<std::pair<std::string, std::string>> headers = {{"h", "v"}};
  b.add(std::string_view("key"), std::string_view("value"), 1000, headers);
  b.add(std::nullopt, std::string_view("v2"), 1001);
  b.add(std::string_view("k3"), std::nullopt, 1002);
  return b.finish(ProducerInfo{7, 1, 0});
}

inline std::vector<std::uint8_t> finished(flatbuffers::FlatBufferBuilder& fbb) {
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

inline std::vector<std::uint8_t> sample_request(protocol::ApiId api) {
  using namespace quorumq::wire;
  using protocol::ApiId;
  flatbuffers::FlatBufferBuilder fbb;
  switch (api) {
    case ApiId::api_versions: {
      std::vector<flatbuffers::Offset<wire::ApiVersionRange>> v = {CreateApiVersionRange(fbb, 5, 0, 0)};
      fbb.Finish(CreateApiVersionsRequestDirect(fbb, "test-client", "0.1", &v));
      break;
    }
    case ApiId::metadata: {
      std::vector<flatbuffers::Offset<flatbuffers::String>> t = {fbb.CreateString("orders")};
      fbb.Finish(CreateMetadataRequestDirect(fbb, &t, false));
      break;
    }
    case ApiId::create_topic: {
      std::vector<flatbuffers::Offset<ConfigEntry>> c = {CreateConfigEntryDirect(fbb, "retention.ms", "1000")};
      fbb.Finish(CreateCreateTopicRequestDirect(fbb, "orders", 3, 3, &c));
      break;
    }
    case ApiId::delete_topic: fbb.Finish(CreateDeleteTopicRequestDirect(fbb, "orders")); break;
    case ApiId::list_topics: fbb.Finish(CreateListTopicsRequest(fbb, true)); break;
    case ApiId::produce: {
      const auto batch = sample_batch();
      std::vector<flatbuffers::Offset<ProducePartitionData>> p = {
          CreateProducePartitionDataDirect(fbb, 0, &batch)};
      std::vector<flatbuffers::Offset<ProduceTopicData>> t = {CreateProduceTopicDataDirect(fbb, "orders", &p)};
      fbb.Finish(CreateProduceRequestDirect(fbb, Acks::quorum, 5000, &t));
      break;
    }
    case ApiId::fetch: {
      std::vector<flatbuffers::Offset<FetchPartition>> p = {CreateFetchPartition(fbb, 0, 42, 1 << 20)};
      std::vector<flatbuffers::Offset<FetchTopic>> t = {CreateFetchTopicDirect(fbb, "orders", &p)};
      fbb.Finish(CreateFetchRequestDirect(fbb, 500, 1, 1 << 24, &t));
      break;
    }
    case ApiId::list_offsets: {
      std::vector<flatbuffers::Offset<ListOffsetsPartition>> p = {
          CreateListOffsetsPartition(fbb, 0, OffsetSpec::timestamp, 1000)};
      std::vector<flatbuffers::Offset<ListOffsetsTopic>> t = {CreateListOffsetsTopicDirect(fbb, "orders", &p)};
      fbb.Finish(CreateListOffsetsRequestDirect(fbb, &t));
      break;
    }
    case ApiId::offset_commit: {
      std::vector<flatbuffers::Offset<OffsetCommitPartition>> p = {
          CreateOffsetCommitPartitionDirect(fbb, 0, 43, "meta")};
      std::vector<flatbuffers::Offset<OffsetCommitTopic>> t = {CreateOffsetCommitTopicDirect(fbb, "orders", &p)};
      fbb.Finish(CreateOffsetCommitRequestDirect(fbb, "group", -1, "", &t));
      break;
    }
    case ApiId::offset_fetch: {
      std::vector<std::int32_t> parts = {0, 1};
      std::vector<flatbuffers::Offset<OffsetFetchTopic>> t = {CreateOffsetFetchTopicDirect(fbb, "orders", &parts)};
      fbb.Finish(CreateOffsetFetchRequestDirect(fbb, "group", -1, "", &t));
      break;
    }
    case ApiId::init_producer_id: fbb.Finish(CreateInitProducerIdRequestDirect(fbb, nullptr, -1, -1, 30000)); break;
    case ApiId::group_heartbeat: {
      std::vector<std::int32_t> parts = {0, 3};
      std::vector<flatbuffers::Offset<GroupTopicPartitions>> owned = {CreateGroupTopicPartitionsDirect(fbb, "orders", &parts)};
      std::vector<flatbuffers::Offset<flatbuffers::String>> topics = {fbb.CreateString("orders")};
      fbb.Finish(CreateGroupHeartbeatRequestDirect(fbb, "group", "c-1", 4, "cli", &topics, "sticky", 10000, 30000,
                                                   &owned, false, 1000));
      break;
    }
    case ApiId::describe_groups: {
      std::vector<flatbuffers::Offset<flatbuffers::String>> ids = {fbb.CreateString("group")};
      fbb.Finish(CreateDescribeGroupsRequestDirect(fbb, &ids));
      break;
    }
    case ApiId::alter_topic_config: {
      std::vector<flatbuffers::Offset<ConfigEntry>> set = {CreateConfigEntryDirect(fbb, "retention.ms", "60000")};
      std::vector<flatbuffers::Offset<flatbuffers::String>> del = {fbb.CreateString("max.message.bytes")};
      fbb.Finish(CreateAlterTopicConfigRequestDirect(fbb, "orders", &set, &del, false));
      break;
    }
    case ApiId::offset_delete: {
      std::vector<std::int32_t> parts = {0, 1};
      std::vector<flatbuffers::Offset<OffsetFetchTopic>> t = {CreateOffsetFetchTopicDirect(fbb, "orders", &parts)};
      fbb.Finish(CreateOffsetDeleteRequestDirect(fbb, "group", &t));
      break;
    }
    case ApiId::sasl_authenticate: {
      std::vector<std::uint8_t> token = {'n', ',', ',', 'n', '=', 'u', ',', 'r', '=', 'x'};
      fbb.Finish(CreateSaslAuthenticateRequestDirect(fbb, "SCRAM-SHA-256", &token));
      break;
    }
    case ApiId::alter_users: {
      std::vector<std::uint8_t> key(32, 1);
      std::vector<flatbuffers::Offset<ScramCredentialInfo>> c = {
          CreateScramCredentialInfoDirect(fbb, "SCRAM-SHA-256", 4096, &key, &key, &key)};
      std::vector<flatbuffers::Offset<UserUpsert>> u = {CreateUserUpsertDirect(fbb, "alice", &c)};
      std::vector<flatbuffers::Offset<flatbuffers::String>> d = {fbb.CreateString("bob")};
      fbb.Finish(CreateAlterUsersRequestDirect(fbb, &u, &d));
      break;
    }
    case ApiId::describe_users: fbb.Finish(CreateDescribeUsersRequest(fbb)); break;
    case ApiId::create_acls: {
      std::vector<flatbuffers::Offset<AclBinding>> a = {
          CreateAclBindingDirect(fbb, "User:alice", "*", true, "read", "topic", "literal", "orders")};
      fbb.Finish(CreateCreateAclsRequestDirect(fbb, &a));
      break;
    }
    case ApiId::delete_acls: {
      std::vector<flatbuffers::Offset<AclBinding>> a = {CreateAclBindingDirect(fbb, "User:alice")};
      fbb.Finish(CreateDeleteAclsRequestDirect(fbb, &a, true));
      break;
    }
    case ApiId::describe_acls: fbb.Finish(CreateDescribeAclsRequest(fbb, CreateAclBindingDirect(fbb, "User:alice"))); break;
    default: return {};
  }
  return finished(fbb);
}

inline std::vector<std::uint8_t> sample_response(protocol::ApiId api) {
  using namespace quorumq::wire;
  using protocol::ApiId;
  flatbuffers::FlatBufferBuilder fbb;
  const auto hint = [&] { return CreateLeaderHintDirect(fbb, 2, 7, "broker-2", 9092); };
  switch (api) {
    case ApiId::api_versions: {
      std::vector<flatbuffers::Offset<wire::ApiVersionRange>> v = {CreateApiVersionRange(fbb, 0, 0, 0)};
      fbb.Finish(CreateApiVersionsResponseDirect(fbb, ErrorCode::none, &v, 1, "cluster"));
      break;
    }
    case ApiId::metadata: {
      std::vector<flatbuffers::Offset<BrokerMetadata>> b = {CreateBrokerMetadataDirect(fbb, 1, "h1", 9092)};
      std::vector<std::int32_t> reps = {1, 2, 3};
      std::vector<flatbuffers::Offset<PartitionMetadata>> p = {
          CreatePartitionMetadataDirect(fbb, 0, ErrorCode::none, 1, 4, &reps, &reps, &reps, 100, 0)};
      std::vector<flatbuffers::Offset<TopicMetadata>> t = {
          CreateTopicMetadataDirect(fbb, "orders", ErrorCode::none, false, &p)};
      fbb.Finish(CreateMetadataResponseDirect(fbb, ErrorCode::none, &b, 1, "cluster", &t));
      break;
    }
    case ApiId::create_topic:
      fbb.Finish(CreateCreateTopicResponseDirect(fbb, ErrorCode::topic_already_exists, "exists", "orders"));
      break;
    case ApiId::delete_topic: fbb.Finish(CreateDeleteTopicResponseDirect(fbb, ErrorCode::none, "", "orders")); break;
    case ApiId::list_topics: {
      std::vector<flatbuffers::Offset<TopicListing>> t = {CreateTopicListingDirect(fbb, "orders", 3, 3)};
      fbb.Finish(CreateListTopicsResponseDirect(fbb, ErrorCode::none, &t));
      break;
    }
    case ApiId::produce: {
      const auto h = hint();
      std::vector<flatbuffers::Offset<ProducePartitionResponse>> p = {
          CreateProducePartitionResponseDirect(fbb, 0, ErrorCode::not_leader, -1, -1, h, "moved")};
      std::vector<flatbuffers::Offset<ProduceTopicResponse>> t = {CreateProduceTopicResponseDirect(fbb, "orders", &p)};
      fbb.Finish(CreateProduceResponseDirect(fbb, ErrorCode::none, 0, &t));
      break;
    }
    case ApiId::fetch: {
      const auto batch = sample_batch();
      const auto h = hint();
      std::vector<flatbuffers::Offset<FetchPartitionResponse>> p = {
          CreateFetchPartitionResponseDirect(fbb, 0, ErrorCode::none, 3, 0, &batch, h)};
      std::vector<flatbuffers::Offset<FetchTopicResponse>> t = {CreateFetchTopicResponseDirect(fbb, "orders", &p)};
      fbb.Finish(CreateFetchResponseDirect(fbb, ErrorCode::none, 0, &t));
      break;
    }
    case ApiId::list_offsets: {
      std::vector<flatbuffers::Offset<ListOffsetsPartitionResponse>> p = {
          CreateListOffsetsPartitionResponse(fbb, 0, ErrorCode::none, 10, 1000)};
      std::vector<flatbuffers::Offset<ListOffsetsTopicResponse>> t = {
          CreateListOffsetsTopicResponseDirect(fbb, "orders", &p)};
      fbb.Finish(CreateListOffsetsResponseDirect(fbb, ErrorCode::none, &t));
      break;
    }
    case ApiId::offset_commit: {
      std::vector<flatbuffers::Offset<OffsetCommitPartitionResponse>> p = {
          CreateOffsetCommitPartitionResponse(fbb, 0, ErrorCode::none)};
      std::vector<flatbuffers::Offset<OffsetCommitTopicResponse>> t = {
          CreateOffsetCommitTopicResponseDirect(fbb, "orders", &p)};
      fbb.Finish(CreateOffsetCommitResponseDirect(fbb, ErrorCode::none, &t));
      break;
    }
    case ApiId::offset_fetch: {
      std::vector<flatbuffers::Offset<OffsetFetchPartitionResponse>> p = {
          CreateOffsetFetchPartitionResponseDirect(fbb, 0, ErrorCode::none, 43, "meta")};
      std::vector<flatbuffers::Offset<OffsetFetchTopicResponse>> t = {
          CreateOffsetFetchTopicResponseDirect(fbb, "orders", &p)};
      fbb.Finish(CreateOffsetFetchResponseDirect(fbb, ErrorCode::none, &t));
      break;
    }
    case ApiId::init_producer_id:
      fbb.Finish(CreateInitProducerIdResponse(fbb, ErrorCode::none, 7, 1));
      break;
    case ApiId::group_heartbeat: {
      std::vector<std::int32_t> parts = {0, 3};
      std::vector<flatbuffers::Offset<GroupTopicPartitions>> a = {CreateGroupTopicPartitionsDirect(fbb, "orders", &parts)};
      fbb.Finish(CreateGroupHeartbeatResponseDirect(fbb, ErrorCode::none, nullptr, "c-1", 5, &a, hint(), 1000));
      break;
    }
    case ApiId::describe_groups: {
      std::vector<std::int32_t> parts = {1};
      std::vector<flatbuffers::Offset<GroupTopicPartitions>> a = {CreateGroupTopicPartitionsDirect(fbb, "orders", &parts)};
      std::vector<flatbuffers::Offset<flatbuffers::String>> topics = {fbb.CreateString("orders")};
      std::vector<flatbuffers::Offset<GroupMemberDescription>> m = {
          CreateGroupMemberDescriptionDirect(fbb, "c-1", "cli", "10.0.0.1", &topics, &a, nullptr, &a)};
      std::vector<flatbuffers::Offset<GroupDescription>> g = {
          CreateGroupDescriptionDirect(fbb, "group", ErrorCode::none, "stable", 5, "sticky", 1, &m)};
      fbb.Finish(CreateDescribeGroupsResponseDirect(fbb, ErrorCode::none, &g));
      break;
    }
    case ApiId::alter_topic_config:
      fbb.Finish(CreateAlterTopicConfigResponseDirect(fbb, ErrorCode::none, nullptr, "orders"));
      break;
    case ApiId::offset_delete: {
      std::vector<flatbuffers::Offset<OffsetCommitPartitionResponse>> p = {
          CreateOffsetCommitPartitionResponseDirect(fbb, 0, ErrorCode::group_not_empty, "group has members")};
      std::vector<flatbuffers::Offset<OffsetCommitTopicResponse>> t = {CreateOffsetCommitTopicResponseDirect(fbb, "orders", &p)};
      fbb.Finish(CreateOffsetDeleteResponseDirect(fbb, ErrorCode::none, &t));
      break;
    }
    case ApiId::sasl_authenticate: {
      std::vector<std::uint8_t> token = {'v', '=', 'x'};
      fbb.Finish(CreateSaslAuthenticateResponseDirect(fbb, ErrorCode::none, nullptr, &token, "User:alice"));
      break;
    }
    case ApiId::alter_users:
      fbb.Finish(CreateAlterUsersResponseDirect(fbb, ErrorCode::cluster_authorization_failed, "no"));
      break;
    case ApiId::describe_users: {
      std::vector<flatbuffers::Offset<flatbuffers::String>> m = {fbb.CreateString("SCRAM-SHA-256")};
      std::vector<std::int32_t> it = {4096};
      std::vector<flatbuffers::Offset<UserDescription>> u = {CreateUserDescriptionDirect(fbb, "alice", &m, &it)};
      fbb.Finish(CreateDescribeUsersResponseDirect(fbb, ErrorCode::none, nullptr, &u));
      break;
    }
    case ApiId::create_acls: fbb.Finish(CreateCreateAclsResponseDirect(fbb, ErrorCode::none)); break;
    case ApiId::delete_acls:
    case ApiId::describe_acls: {
      std::vector<flatbuffers::Offset<AclBinding>> a = {
          CreateAclBindingDirect(fbb, "User:alice", "*", false, "write", "group", "prefixed", "g")};
      if (api == ApiId::delete_acls) fbb.Finish(CreateDeleteAclsResponseDirect(fbb, ErrorCode::none, nullptr, &a));
      else fbb.Finish(CreateDescribeAclsResponseDirect(fbb, ErrorCode::none, nullptr, &a));
      break;
    }
    default: return {};
  }
  return finished(fbb);
}

}  // namespace quorumq::testing
