#include "quorumq/protocol/messages.h"

namespace quorumq::protocol {

std::vector<std::uint8_t> OutgoingFrame::to_bytes() const {
  std::vector<std::uint8_t> out;
  out.reserve(size_bytes());
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), body.data(), body.data() + body.size());
  return out;
}

OutgoingFrame finish_frame(flatbuffers::FlatBufferBuilder& fbb, const FrameHeader& header) {
  OutgoingFrame f;
  f.body = fbb.Release();
  f.header = encode_frame_header(header, f.payload());
  return f;
}

OutgoingFrame make_error_response(std::uint32_t correlation_id, ApiId api, wire::ErrorCode code,
                                  std::string_view message, std::uint16_t api_version) {
  flatbuffers::FlatBufferBuilder fbb(64 + message.size());
  const auto msg = fbb.CreateString(message.empty() ? std::string_view(wire::error_message(code)) : message);
  fbb.Finish(wire::CreateErrorResponse(fbb, code, msg));
  return finish_frame(fbb, FrameHeader{api, api_version, correlation_id,
                                       static_cast<std::uint8_t>(kFlagResponse | kFlagErrorPayload)});
}

OutgoingFrame make_api_versions_response(const FrameHeader& request, std::int32_t node_id,
                                         std::string_view cluster_id) {
  flatbuffers::FlatBufferBuilder fbb(256);
  std::vector<flatbuffers::Offset<wire::ApiVersionRange>> ranges;
  for (const ApiVersionRange& r : supported_apis())
    ranges.push_back(wire::CreateApiVersionRange(fbb, static_cast<std::uint16_t>(r.api), r.min_version,
                                                 r.max_version));
  const auto apis = fbb.CreateVector(ranges);
  const auto cid = fbb.CreateString(cluster_id);
  return finish_response(fbb, wire::CreateApiVersionsResponse(fbb, wire::ErrorCode::none, apis, node_id, cid),
                         request);
}

}  // namespace quorumq::protocol
