#include "raw_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "quorumq/protocol/quorumq_generated.h"

namespace quorumq::test {

RawClient::RawClient(std::uint16_t port) : decoder_(256u << 20) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd_);
    fd_ = -1;
    return;
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

RawClient::~RawClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawClient::send_bytes(std::span<const std::uint8_t> bytes) {
  std::size_t at = 0;
  while (at < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
    if (n <= 0) return false;
    at += static_cast<std::size_t>(n);
  }
  return true;
}

bool RawClient::try_send_bytes(std::span<const std::uint8_t> bytes, std::chrono::milliseconds timeout) {
  std::size_t at = 0;
  while (at < bytes.size()) {
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    const ssize_t n = ::send(fd_, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n <= 0) return false;
    at += static_cast<std::size_t>(n);
  }
  return true;
}

void RawClient::set_recv_buffer(int bytes) { ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes); }

std::optional<ReceivedFrame> RawClient::read_frame(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto r = decoder_.next();
    if (r.status == protocol::FrameError::ok)
      return ReceivedFrame{r.frame.header, {r.frame.payload.begin(), r.frame.payload.end()}};
    if (r.status != protocol::FrameError::need_more) return std::nullopt;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    auto buf = decoder_.prepare(65536);
    const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n <= 0) {
      decoder_.commit(0);
      return std::nullopt;
    }
    decoder_.commit(static_cast<std::size_t>(n));
  }
}

std::optional<std::vector<std::uint8_t>> RawClient::read_exact(std::size_t n, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::uint8_t> out(n);
  std::size_t at = 0;
  while (at < n) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    const ssize_t got = ::recv(fd_, out.data() + at, n - at, 0);
    if (got <= 0) return std::nullopt;
    at += static_cast<std::size_t>(got);
  }
  return out;
}

bool RawClient::wait_closed(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return true;  // anything else the broker sent first is discarded
  }
}

protocol::OutgoingFrame api_versions_request(std::uint32_t correlation_id) {
  flatbuffers::FlatBufferBuilder fbb;
  auto root = wire::CreateApiVersionsRequest(fbb, fbb.CreateString("raw-test"), fbb.CreateString("0"));
  return protocol::finish_request(fbb, root, protocol::ApiId::api_versions, 0, correlation_id);
}

int error_code_of(const ReceivedFrame& f) {
  const auto* e = flatbuffers::GetRoot<wire::ErrorResponse>(f.payload.data());
  return static_cast<int>(e->error());
}

}  // namespace quorumq::test
