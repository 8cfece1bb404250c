// TLS on the client and Kafka listeners (issue 18, first part): the server context from
// --tls-cert-file / --tls-key-file (and --tls-ca-file with --tls-client-auth=required for mutual
// TLS; the policy lives in tls/tls_context.h, shared with the peer links), its reload on SIGHUP
// (with the peer links' certificate), and the handshake of each accepted connection.
#include <expected>

#include "server_impl.h"
#include "tls_context.h"

namespace quorumq::broker {

namespace {
// The client listeners' context: the broker's certificate; client certificates checked against
// --tls-ca-file when given (required with --tls-client-auth=required).
std::expected<TlsContext, std::string> make_listener_context(const BrokerConfig& config) {
  const TlsFiles files{config.tls_cert_file, config.tls_key_file, config.tls_ca_file};
  const auto peers = config.tls_ca_file.empty()           ? PeerCertificates::none
                     : config.tls_client_auth_required ? PeerCertificates::required
                                                       : PeerCertificates::checked;
  return make_server_context(files, peers);
}
// Clients refuse an expired certificate: say so where the operator looks first.
void warn_if_expired(const std::string& file, std::int64_t not_after) {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
  if (not_after > 0 && not_after <= now.count())
    spdlog::warn("TLS certificate {} expired {} s ago: clients will refuse it; renew it and send SIGHUP", file,
                 now.count() - not_after);
}
}  // namespace

std::optional<std::string> Server::Impl::load_tls() {
  if (config.tls_cert_file.empty()) return std::nullopt;
  auto ctx = make_listener_context(config);
  if (!ctx) return ctx.error();
  {
    std::lock_guard lk(tls_mu);
    tls = std::move(ctx->ctx);
  }
  metrics.tls_certificate_not_after.store(ctx->not_after, std::memory_order_relaxed);
  warn_if_expired(config.tls_cert_file, ctx->not_after);
  spdlog::info("TLS on the client{} listener(s): certificate {}, TLS 1.2+{}", config.kafka_listen ? " and Kafka" : "",
               config.tls_cert_file,
               config.tls_client_auth_required ? ", client certificates required (mutual TLS)"
               : config.tls_ca_file.empty()    ? ""
                                               : ", client certificates checked when sent");
  return std::nullopt;
}

// SIGHUP: the TLS files (the listeners' and the peer links') are read again; new connections
// use them, established ones keep going with what they began with. A reload that fails keeps
// the previous certificates.
awaitable<void> Server::Impl::reload_tls_on_sighup() {
  for (;;) {
    auto [ec, sig] = co_await hup.async_wait(kTuple);
    if (ec || stopping) co_return;
    if (config.tls_cert_file.empty() && config.peer_tls_cert_file.empty()) {
      spdlog::info("SIGHUP: neither --tls-cert-file nor --peer-tls-cert-file, nothing to reload");
      continue;
    }
    if (!config.tls_cert_file.empty()) reload_listener_tls();
    if (!config.peer_tls_cert_file.empty()) {
      if (auto e = transport.reload_tls()) {
        metrics.tls_reload_failures.fetch_add(1, std::memory_order_relaxed);
        spdlog::error("SIGHUP: peer TLS certificates NOT reloaded, the previous ones stay in use: {}", *e);
      } else {
        metrics.tls_reloads.fetch_add(1, std::memory_order_relaxed);
        spdlog::info("SIGHUP: peer TLS certificates reloaded from {} (new peer links use them; open ones continue)",
                     config.peer_tls_cert_file);
      }
    }
  }
}

void Server::Impl::reload_listener_tls() {
  auto ctx = make_listener_context(config);
  if (!ctx) {
    metrics.tls_reload_failures.fetch_add(1, std::memory_order_relaxed);
    spdlog::error("SIGHUP: TLS certificates NOT reloaded, the previous ones stay in use: {}", ctx.error());
    return;
  }
  {
    std::lock_guard lk(tls_mu);
    tls = std::move(ctx->ctx);
  }
  metrics.tls_certificate_not_after.store(ctx->not_after, std::memory_order_relaxed);
  warn_if_expired(config.tls_cert_file, ctx->not_after);
  metrics.tls_reloads.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("SIGHUP: TLS certificates reloaded from {} (new connections use them; open ones continue)",
               config.tls_cert_file);
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
  std::string why = timed_out ? std::string("no handshake within the time limit") : tls_failure_reason(ec);
  if (auto* ssl = s.ssl(); ssl && !timed_out) {
    // Why the peer's certificate was not accepted (expired, unknown CA, ...), when that was it.
    if (const long v = SSL_get_verify_result(ssl); v != X509_V_OK)
      why += std::string(" (client certificate: ") + X509_verify_cert_error_string(v) + ")";
  }
  if (looks_like_plain_text(why))
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
  const X509_NAME* subject = X509_get_subject_name(cert);
  std::string cn;
  char buf[256];
  const int n = X509_NAME_get_text_by_NID(const_cast<X509_NAME*>(subject), NID_commonName, buf, sizeof buf);
  if (n > 0 && static_cast<std::size_t>(n) < sizeof buf) cn.assign(buf, static_cast<std::size_t>(n));
  // The whole subject in RFC 2253 form ("CN=alice,OU=apps,O=Acme"), for --tls-principal-rule.
  std::string dn;
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    if (X509_NAME_print_ex(bio, subject, 0, XN_FLAG_RFC2253) >= 0) {
      char* data = nullptr;
      const long len = BIO_get_mem_data(bio, &data);
      if (len > 0 && len < 4096) dn.assign(data, static_cast<std::size_t>(len));
    }
    BIO_free(bio);
  }
  X509_free(cert);
  return ctx.security.certificate_principal(dn, cn);
}

}  // namespace quorumq::broker
