// TLS on the client and Kafka listeners (issue 18, first part): the server context from
// --tls-cert-file / --tls-key-file (and --tls-ca-file with --tls-client-auth=required for mutual
// TLS), TLS 1.2 or newer only, and the handshake of each accepted connection.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <ctime>
#include <expected>

#include "server_impl.h"

namespace quorumq::broker {

namespace {
// OpenSSL's reason for the last failure ("no certificate or crl found", ...), or the Asio one.
std::string reason(const std::error_code& ec) {
  std::string r = ec.message();
  if (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    r = buf;
  }
  ERR_clear_error();
  return r;
}
}  // namespace

// A server context from the TLS files, or why it cannot be made.
static std::expected<std::shared_ptr<asio::ssl::context>, std::string> make_server_context(const BrokerConfig& config,
                                                                                     std::int64_t& not_after) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  auto& c = *ctx;
  std::error_code ec;
  c.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                    asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                    asio::ssl::context::no_compression | asio::ssl::context::single_dh_use,
                ec);
  SSL_CTX* native = c.native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // TLS 1.2: forward-secret AEAD suites only (TLS 1.3's are all of that kind).
  SSL_CTX_set_cipher_list(native, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!RC4:!3DES");
  if (c.use_certificate_chain_file(config.tls_cert_file, ec); ec)
    return std::unexpected("--tls-cert-file " + config.tls_cert_file + ": " + reason(ec) +
                           " (a PEM certificate chain, the broker's first)");
  if (c.use_private_key_file(config.tls_key_file, asio::ssl::context::pem, ec); ec)
    return std::unexpected("--tls-key-file " + config.tls_key_file + ": " + reason(ec) +
                           " (the PEM private key of --tls-cert-file)");
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return std::unexpected("--tls-key-file " + config.tls_key_file + " does not belong to the certificate in --tls-cert-file " +
                           config.tls_cert_file);
  }
  if (!config.tls_ca_file.empty()) {
    if (c.load_verify_file(config.tls_ca_file, ec); ec)
      return std::unexpected("--tls-ca-file " + config.tls_ca_file + ": " + reason(ec) +
                             " (PEM certificates of the CAs clients' certificates chain to)");
    c.set_verify_mode(config.tls_client_auth_required
                          ? asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert
                          : asio::ssl::verify_peer,
                      ec);
  }
  not_after = 0;
  if (X509* cert = SSL_CTX_get0_certificate(native)) {
    std::tm tm{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1) not_after = static_cast<std::int64_t>(timegm(&tm));
  }
  return ctx;
}

std::optional<std::string> Server::Impl::load_tls() {
  if (config.tls_cert_file.empty()) return std::nullopt;
  std::int64_t not_after = 0;
  auto ctx = make_server_context(config, not_after);
  if (!ctx) return ctx.error();
  {
    std::lock_guard lk(tls_mu);
    tls = std::move(*ctx);
  }
  metrics.tls_certificate_not_after.store(not_after, std::memory_order_relaxed);
  spdlog::info("TLS on the client{} listener(s): certificate {}, TLS 1.2+{}", config.kafka_listen ? " and Kafka" : "",
               config.tls_cert_file,
               config.tls_client_auth_required ? ", client certificates required (mutual TLS)"
               : config.tls_ca_file.empty()    ? ""
                                               : ", client certificates checked when sent");
  return std::nullopt;
}

// SIGHUP: the TLS files are read again; new connections use them, established ones keep going
// with what they began with. A reload that fails keeps the previous certificates.
awaitable<void> Server::Impl::reload_tls_on_sighup() {
  for (;;) {
    auto [ec, sig] = co_await hup.async_wait(kTuple);
    if (ec || stopping) co_return;
    if (config.tls_cert_file.empty()) {
      spdlog::info("SIGHUP: no --tls-cert-file, nothing to reload");
      continue;
    }
    std::int64_t not_after = 0;
    auto ctx = make_server_context(config, not_after);
    if (!ctx) {
      metrics.tls_reload_failures.fetch_add(1, std::memory_order_relaxed);
      spdlog::error("SIGHUP: TLS certificates NOT reloaded, the previous ones stay in use: {}", ctx.error());
      continue;
    }
    {
      std::lock_guard lk(tls_mu);
      tls = std::move(*ctx);
    }
    metrics.tls_certificate_not_after.store(not_after, std::memory_order_relaxed);
    metrics.tls_reloads.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("SIGHUP: TLS certificates reloaded from {} (new connections use them; open ones continue)",
                 config.tls_cert_file);
  }
}

awaitable<bool> Server::Impl::tls_handshake(ClientStream& s, std::string_view kind) {
  if (!s.is_tls()) co_return true;
  // The deadline's state lives apart from this frame: a deadline that fired in the same turn as
  // the handshake finished may run after this coroutine returned, and must then touch nothing.
  struct Deadline {
    bool done = false, timed_out = false;
  };
  auto state = std::make_shared<Deadline>();
  Timer deadline(s.get_executor());
  deadline.expires_after(std::chrono::milliseconds(std::min<std::uint32_t>(config.partial_frame_timeout_ms, 10000)));
  deadline.async_wait([&s, state](std::error_code ec) {
    if (ec || state->done) return;  // `s` is alive while the handshake is still awaited
    state->timed_out = true;
    std::error_code ignored;
    s.close(ignored);
  });
  auto [ec] = co_await s.async_handshake(asio::ssl::stream_base::server, kTuple);
  state->done = true;
  deadline.cancel();
  const bool timed_out = state->timed_out;
  if (!ec && !timed_out) co_return true;
  metrics.tls_handshake_failures.fetch_add(1, std::memory_order_relaxed);
  std::error_code pec;
  const auto ep = s.remote_endpoint(pec);
  std::string why = timed_out ? std::string("no handshake within the time limit") : reason(ec);
  if (why.find("wrong version number") != std::string::npos || why.find("http request") != std::string::npos ||
      why.find("packet length too long") != std::string::npos)
    why += " (a client speaking plain text to this TLS port? give it the CA and TLS settings)";
  log_limited(spdlog::level::warn, std::string("tls:") + std::string(kind), "{} connection from {}: TLS handshake failed: {}",
              kind, pec ? std::string("?") : ep.address().to_string(), why);
  std::error_code ignored;
  s.close(ignored);
  co_return false;
}

std::string Server::Impl::certificate_principal(ClientStream& s) {
  if (!config.tls_client_auth_required || !s.ssl()) return {};
  X509* cert = SSL_get1_peer_certificate(s.ssl());
  if (!cert) return {};
  char cn[256];
  const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  X509_free(cert);
  if (n <= 0 || static_cast<std::size_t>(n) >= sizeof cn) return {};
  return "User:" + std::string(cn, static_cast<std::size_t>(n));
}

}  // namespace quorumq::broker
