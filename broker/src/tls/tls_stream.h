// A connection's byte stream: the TCP socket, or TLS over it. The client and Kafka listeners use
// it (TLS with --tls-cert-file), and so do the peer links (TLS with --peer-tls-cert-file). It
// meets Asio's AsyncReadStream and AsyncWriteStream, so asio::async_read / async_write and the
// connections' coroutines work on either unchanged. One stream is one connection: a TLS session
// cannot be reused, so a dialer that reconnects makes a new stream.
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>

#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace quorumq::broker {

template <typename Socket>
class BasicStream {
 public:
  using executor_type = typename Socket::executor_type;
  // `tls` null: plain TCP. The stream keeps its context alive (a reload on SIGHUP makes a new
  // one for new connections; established ones go on with theirs).
  BasicStream(Socket s, std::shared_ptr<asio::ssl::context> tls) : ctx_(std::move(tls)) {
    if (ctx_) tls_.emplace(std::move(s), *ctx_);
    else plain_.emplace(std::move(s));
  }
  executor_type get_executor() { return socket().get_executor(); }
  Socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }
  const Socket& socket() const { return tls_ ? tls_->next_layer() : *plain_; }
  bool is_tls() const { return tls_.has_value(); }
  SSL* ssl() { return tls_ ? tls_->native_handle() : nullptr; }

  // The certificate the other end presented and OpenSSL verified (null without TLS or when it
  // sent none); owned by the stream.
  X509* peer_certificate() { return tls_ ? SSL_get0_peer_certificate(tls_->native_handle()) : nullptr; }
  bool is_open() const { return socket().is_open(); }

  template <typename Token>
  auto async_handshake(asio::ssl::stream_base::handshake_type type, Token&& token) {
    return tls_->async_handshake(type, std::forward<Token>(token));
  }
  template <typename Buffers, typename Token>
  auto async_read_some(const Buffers& b, Token&& token) {
    if (tls_) return tls_->async_read_some(b, std::forward<Token>(token));
    return plain_->async_read_some(b, std::forward<Token>(token));
  }
  template <typename Buffers, typename Token>
  auto async_write_some(const Buffers& b, Token&& token) {
    if (tls_) return tls_->async_write_some(b, std::forward<Token>(token));
    return plain_->async_write_some(b, std::forward<Token>(token));
  }
  void close(std::error_code& ec) { socket().close(ec); }
  void shutdown(asio::ip::tcp::socket::shutdown_type what, std::error_code& ec) { socket().shutdown(what, ec); }
  asio::ip::tcp::endpoint remote_endpoint(std::error_code& ec) const { return socket().remote_endpoint(ec); }
  // "address:port" of the other end, "?" once the socket is closed (for log lines).
  std::string peer() const {
    std::error_code ec;
    const auto ep = socket().remote_endpoint(ec);
    return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  std::size_t available(std::error_code& ec) const { return socket().available(ec); }

 private:
  std::shared_ptr<asio::ssl::context> ctx_;
  std::optional<Socket> plain_;
  std::optional<asio::ssl::stream<Socket>> tls_;
};

}  // namespace quorumq::broker
