#include "tls_stream.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace quorumq::client {

TlsSetup make_tls_context(const ClientConfig& c) {
  TlsSetup out;
  if (!c.tls && c.tls_ca_file.empty() && c.tls_cert_file.empty()) return out;
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  std::error_code ec;
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  auto why = [&ec] {
    std::string r = ec.message();
    if (const unsigned long e = ERR_get_error()) {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      r = buf;
    }
    ERR_clear_error();
    return r;
  };
  if (c.tls_ca_file.empty()) ctx->set_default_verify_paths(ec);
  else ctx->load_verify_file(c.tls_ca_file, ec);
  if (ec) {
    out.error = "tls_ca_file " + c.tls_ca_file + ": " + why() + " (PEM certificates of the CA that signed the brokers')";
    return out;
  }
  ctx->set_verify_mode(asio::ssl::verify_peer, ec);
  if (!c.tls_cert_file.empty()) {
    if (ctx->use_certificate_chain_file(c.tls_cert_file, ec); ec) {
      out.error = "tls_cert_file " + c.tls_cert_file + ": " + why() + " (this client's PEM certificate, for mutual TLS)";
      return out;
    }
    if (ctx->use_private_key_file(c.tls_key_file, asio::ssl::context::pem, ec); ec) {
      out.error = "tls_key_file " + c.tls_key_file + ": " + why() + " (the PEM private key of tls_cert_file)";
      return out;
    }
  }
  out.context = std::move(ctx);
  return out;
}

}  // namespace quorumq::client
