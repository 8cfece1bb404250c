// TLS contexts and certificate identities, shared by the client listeners (server/tls.cc) and the
// peer links (replication/peer_transport.cc), so both speak the same policy: TLS 1.2 or newer,
// TLS 1.2 with forward-secret AEAD suites only (ECDHE + AES-GCM or ChaCha20), no compression, no
// renegotiation. Contexts are built from PEM files; a failure is a value naming the flag, the file
// and what it should hold. Pure functions over OpenSSL: no sockets, no threads. A context, once
// built, is read-only and shared by every connection made with it.
#pragma once

#include <asio/ssl/context.hpp>

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

typedef struct x509_st X509;

namespace quorumq::broker {

// The files of one TLS role and the flags that named them (error messages say which flag).
struct TlsFiles {
  std::string cert_file, key_file, ca_file;
  std::string cert_flag = "--tls-cert-file", key_flag = "--tls-key-file", ca_flag = "--tls-ca-file";
};

// What a server asks of the other end's certificate.
enum class PeerCertificates {
  none,       // not asked for
  checked,    // checked against ca_file when sent
  required,   // must be sent and chain to ca_file (mutual TLS)
};

struct TlsContext {
  std::shared_ptr<asio::ssl::context> ctx;
  std::int64_t not_after = 0;  // the certificate's expiry, Unix seconds (0: unknown)
};

// A server context: certificate chain and key from `files`; with PeerCertificates other than
// none, ca_file is loaded and the other end's certificate verified against it.
std::expected<TlsContext, std::string> make_server_context(const TlsFiles& files, PeerCertificates peers);
// A client context that presents `files`' certificate and verifies the server's against
// `files.ca_file` (required here: a client that trusts nobody in particular checks nothing).
// The server's host name is not checked: the caller checks whatever identity it expects.
std::expected<TlsContext, std::string> make_client_context(const TlsFiles& files);

// OpenSSL's reason for the last failure ("no certificate or crl found", ...) or else ec's;
// clears OpenSSL's error queue.
std::string tls_failure_reason(const std::error_code& ec);
// True when a failed server handshake looks like plain text on a TLS port.
bool looks_like_plain_text(std::string_view reason);

// The names a certificate is issued to: its subject CN and its DNS subject alternative names.
struct CertificateNames {
  std::string common_name;
  std::vector<std::string> dns;
  bool matches(std::string_view name) const;  // CN or any DNS SAN equals `name` exactly
  std::string str() const;                    // "CN=a, DNS:b, DNS:c" (for log lines)
};
CertificateNames certificate_names(X509* cert);

}  // namespace quorumq::broker
