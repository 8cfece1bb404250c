// A connection's byte stream to one broker: plain TCP, or TLS over it (ClientConfig::tls). It
// meets Asio's AsyncReadStream/AsyncWriteStream, so the connection reads and writes either the
// same way. One per connect attempt, held by shared_ptr by everything that has an operation on
// it (a TLS stream must outlive its pending operations).
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>

#include <memory>
#include <optional>
#include <string>

#include "quorumq/config.h"

namespace quorumq::client {

class BrokerStream {
 public:
  using executor_type = asio::ip::tcp::socket::executor_type;
  BrokerStream(asio::io_context& io, asio::ssl::context* tls) {
    if (tls) tls_.emplace(io, *tls);
    else plain_.emplace(io);
  }
  executor_type get_executor() { return socket().get_executor(); }
  asio::ip::tcp::socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }
  bool is_tls() const { return tls_.has_value(); }
  // After a failed handshake: why the broker's certificate was refused ("certificate has expired",
  // ...), or "" when that was not the reason.
  std::string verify_error() {
    if (!tls_) return {};
    const long v = SSL_get_verify_result(tls_->native_handle());
    return v == X509_V_OK ? std::string() : std::string(X509_verify_cert_error_string(v));
  }
  // Before the handshake: the name the broker's certificate must carry (SNI and verification).
  void expect_host(const std::string& host, bool verify) {
    SSL_set_tlsext_host_name(tls_->native_handle(), host.c_str());
    if (verify) tls_->set_verify_callback(asio::ssl::host_name_verification(host));
  }
  template <typename Token>
  auto async_handshake(Token&& token) {
    return tls_->async_handshake(asio::ssl::stream_base::client, std::forward<Token>(token));
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
  void close() {
    std::error_code ignored;
    socket().close(ignored);
  }

 private:
  std::optional<asio::ip::tcp::socket> plain_;
  std::optional<asio::ssl::stream<asio::ip::tcp::socket>> tls_;
};

// The client's TLS context from its config (nullptr without TLS), or why it cannot be made.
struct TlsSetup {
  std::shared_ptr<asio::ssl::context> context;
  std::string error;
};
TlsSetup make_tls_context(const ClientConfig& c);

}  // namespace quorumq::client
