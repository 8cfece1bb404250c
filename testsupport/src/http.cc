#include "quorumq/testsupport/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <stdexcept>

namespace quorumq::testsupport {

namespace {

// The body of a "Transfer-Encoding: chunked" reply; nullopt if it is cut short or malformed.
std::optional<std::string> dechunk(const std::string& in) {
  std::string out;
  std::size_t at = 0;
  for (;;) {
    const auto eol = in.find("\r\n", at);
    if (eol == std::string::npos) return std::nullopt;
    char* end = nullptr;
    const unsigned long n = std::strtoul(in.c_str() + at, &end, 16);
    if (end == in.c_str() + at) return std::nullopt;
    at = eol + 2;
    if (n == 0) return out;
    if (in.size() < at + n + 2) return std::nullopt;
    out.append(in, at, n);
    at += n + 2;
  }
}

bool chunked(const std::string& headers) {
  std::size_t at = 0;
  while ((at = headers.find("\r\n", at)) != std::string::npos) {
    at += 2;
    static constexpr char kName[] = "transfer-encoding:";
    if (::strncasecmp(headers.c_str() + at, kName, sizeof kName - 1) != 0) continue;
    const auto eol = headers.find("\r\n", at);
    std::string value = headers.substr(at + sizeof kName - 1, eol == std::string::npos ? std::string::npos : eol - at - (sizeof kName - 1));
    for (auto& c : value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return value.find("chunked") != std::string::npos;
  }
  return false;
}

}  // namespace

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

std::optional<HttpReply> http_get(std::uint16_t port, const std::string& path, std::chrono::milliseconds timeout,
                                  const std::string& headers) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);  // also bounds connect()
  std::string resp;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + headers + "\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[8192];
      for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        resp.append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  ::close(fd);
  if (resp.size() < 12 || !resp.starts_with("HTTP/1.")) return std::nullopt;
  HttpReply r;
  r.status = std::atoi(resp.c_str() + 9);
  const auto body = resp.find("\r\n\r\n");
  if (body == std::string::npos) return r;
  r.body = resp.substr(body + 4);
  if (chunked(resp.substr(0, body + 2))) {
    auto plain = dechunk(r.body);
    if (!plain) return std::nullopt;
    r.body = std::move(*plain);
  }
  return r;
}

}  // namespace quorumq::testsupport
