#include "http_get.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

namespace quorumq::bench {

std::optional<HttpReply> http_get(const std::string& host, std::uint16_t port, const std::string& path,
                                  std::chrono::milliseconds timeout) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) return std::nullopt;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  // A paused (SIGSTOPped) broker accepts nothing: the timeouts keep the caller from hanging.
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::optional<HttpReply> out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      std::string resp;
      char buf[8192];
      for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        resp.append(buf, static_cast<std::size_t>(n));
      }
      if (resp.size() >= 12 && resp.starts_with("HTTP/1.")) {
        HttpReply r;
        r.status = std::atoi(resp.c_str() + 9);
        if (const auto body = resp.find("\r\n\r\n"); body != std::string::npos) r.body = resp.substr(body + 4);
        out = std::move(r);
      }
    }
  }
  ::close(fd);
  return out;
}

}  // namespace quorumq::bench
