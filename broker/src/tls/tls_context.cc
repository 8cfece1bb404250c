// TLS contexts and certificate names (tls_context.h). Moved here from server/tls.cc so the peer
// links build their contexts with the very same policy as the client listeners.
#include "tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <ctime>

namespace quorumq::broker {

std::string tls_failure_reason(const std::error_code& ec) {
  std::string r = ec.message();
  if (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    r = buf;
  }
  ERR_clear_error();
  return r;
}

bool looks_like_plain_text(std::string_view why) {
  return why.find("wrong version number") != std::string_view::npos ||
         why.find("http request") != std::string_view::npos ||
         why.find("packet length too long") != std::string_view::npos;
}

namespace {
// The protocol and cipher policy every quorumq TLS context has.
void apply_policy(asio::ssl::context& c) {
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
}

// Certificate chain and matching key from `f`, and the certificate's expiry into `not_after`.
std::optional<std::string> use_certificate(asio::ssl::context& c, const TlsFiles& f, std::int64_t& not_after) {
  std::error_code ec;
  if (c.use_certificate_chain_file(f.cert_file, ec); ec)
    return f.cert_flag + " " + f.cert_file + ": " + tls_failure_reason(ec) + " (a PEM certificate chain, the broker's first)";
  if (c.use_private_key_file(f.key_file, asio::ssl::context::pem, ec); ec)
    return f.key_flag + " " + f.key_file + ": " + tls_failure_reason(ec) + " (the PEM private key of " + f.cert_flag + ")";
  SSL_CTX* native = c.native_handle();
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return f.key_flag + " " + f.key_file + " does not belong to the certificate in " + f.cert_flag + " " + f.cert_file;
  }
  not_after = 0;
  if (X509* cert = SSL_CTX_get0_certificate(native)) {
    std::tm tm{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1) not_after = static_cast<std::int64_t>(timegm(&tm));
  }
  return std::nullopt;
}

std::optional<std::string> load_ca(asio::ssl::context& c, const TlsFiles& f, const std::string& whose) {
  std::error_code ec;
  if (c.load_verify_file(f.ca_file, ec); ec)
    return f.ca_flag + " " + f.ca_file + ": " + tls_failure_reason(ec) + " (PEM certificates of the CAs " + whose +
           " certificates chain to)";
  return std::nullopt;
}
}  // namespace

std::expected<TlsContext, std::string> make_server_context(const TlsFiles& files, PeerCertificates peers) {
  TlsContext out{std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server), 0};
  auto& c = *out.ctx;
  apply_policy(c);
  if (auto e = use_certificate(c, files, out.not_after)) return std::unexpected(*e);
  if (peers != PeerCertificates::none) {
    if (auto e = load_ca(c, files, "the other ends'")) return std::unexpected(*e);
    std::error_code ec;
    c.set_verify_mode(peers == PeerCertificates::required
                          ? asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert
                          : asio::ssl::verify_peer,
                      ec);
  }
  return out;
}

std::expected<TlsContext, std::string> make_client_context(const TlsFiles& files) {
  TlsContext out{std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client), 0};
  auto& c = *out.ctx;
  apply_policy(c);
  if (auto e = use_certificate(c, files, out.not_after)) return std::unexpected(*e);
  if (auto e = load_ca(c, files, "the servers'")) return std::unexpected(*e);
  std::error_code ec;
  c.set_verify_mode(asio::ssl::verify_peer, ec);
  return out;
}

namespace {
// An ASN.1 string as text, or nullopt when it holds a NUL (a name forged to fool C strings).
std::optional<std::string> text_of(const ASN1_STRING* s) {
  if (!s) return std::nullopt;
  const auto* d = ASN1_STRING_get0_data(s);
  const int n = ASN1_STRING_length(s);
  if (!d || n < 0) return std::nullopt;
  std::string out(reinterpret_cast<const char*>(d), static_cast<std::size_t>(n));
  if (out.find('\0') != std::string::npos) return std::nullopt;
  return out;
}

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto low = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
           return low(x) == low(y);
         });
}
}  // namespace

CertificateNames certificate_names(X509* cert) {
  CertificateNames out;
  if (!cert) return out;
  // The last CN is the most specific one (as OpenSSL's own host checks take it).
  if (const X509_NAME* subject = X509_get_subject_name(cert)) {
    int i = -1, last = -1;
    while ((i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0) last = i;
    if (last >= 0)
      if (auto t = text_of(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, last)))) out.common_name = *t;
  }
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans) && out.dns.size() < 64; ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type != GEN_DNS) continue;
      if (auto t = text_of(g->d.dNSName)) out.dns.push_back(*t);
    }
    GENERAL_NAMES_free(sans);
  }
  return out;
}

bool CertificateNames::matches(std::string_view name) const {
  if (name.empty()) return false;
  if (!common_name.empty() && iequal(common_name, name)) return true;
  return std::any_of(dns.begin(), dns.end(), [&](const std::string& d) { return iequal(d, name); });
}

std::string CertificateNames::str() const {
  std::string s = common_name.empty() ? std::string("no CN") : "CN=" + common_name;
  for (const auto& d : dns) s += ", DNS:" + d;
  return s;
}

}  // namespace quorumq::broker
