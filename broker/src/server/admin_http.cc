// The admin HTTP endpoint: /healthz, /readyz, /metrics and POST /v1/backup (the last two behind
// a bearer token with --admin-token-file). Each request is
// one short coroutine with a 5 s deadline (see docs/architecture.md for why it is not on an
// HTTP library's thread pool).
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <nlohmann/json.hpp>

#include <cctype>
#include <cmath>
#include <filesystem>

#include "quorumq/protocol/scram.h"
#include "server_impl.h"

namespace quorumq::broker {

namespace {
// The value of the request's Authorization header (name in any case; "" if none).
std::string authorization_header(const std::string& req) {
  std::size_t at = req.find("\r\n");
  while (at != std::string::npos && at + 2 < req.size()) {
    const std::size_t end = req.find("\r\n", at + 2);
    if (end == std::string::npos) break;
    std::string line = req.substr(at + 2, end - at - 2);
    at = end;
    constexpr std::string_view kName = "authorization:";
    if (line.size() < kName.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < kName.size() && same; ++i)
      same = std::tolower(static_cast<unsigned char>(line[i])) == kName[i];
    if (!same) continue;
    std::string v = line.substr(kName.size());
    while (!v.empty() && v.front() == ' ') v.erase(0, 1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.pop_back();
    return v;
  }
  return {};
}

// `Authorization: Basic base64(user:password)` checked against the user's SCRAM credential
// (PBKDF2 with its salt and iterations): "User:<name>", or "" when absent or wrong.
std::string basic_principal(const std::string& req, const Security& security) {
  const auto v = authorization_header(req);
  if (v.size() < 6 || (v.compare(0, 6, "Basic ") != 0 && v.compare(0, 6, "basic ") != 0)) return {};
  const auto decoded = protocol::scram::base64_decode(std::string_view(v).substr(6));
  if (!decoded) return {};
  const auto colon = decoded->find(':');
  if (colon == std::string::npos || colon == 0 || colon > protocol::scram::kMaxUserBytes) return {};
  const std::string user = decoded->substr(0, colon);
  const auto cred = security.credential(user, protocol::scram::Mechanism::sha256);
  const auto cred512 = cred ? cred : security.credential(user, protocol::scram::Mechanism::sha512);
  if (!cred512 || !protocol::scram::verify_password(*cred512, std::string_view(*decoded).substr(colon + 1))) return {};
  return "User:" + user;
}

// Whether the request carries `Authorization: Bearer <token>` (the token compared in constant
// time, so its bytes cannot be guessed one by one by timing).
bool bearer_matches(const std::string& req, const std::string& token) {
  const std::string v = authorization_header(req);
  if (v.size() < 7 || (v.compare(0, 7, "Bearer ") != 0 && v.compare(0, 7, "bearer ") != 0)) return false;
  const std::string_view got = std::string_view(v).substr(7);
  unsigned diff = got.size() == token.size() ? 0u : 1u;
  for (std::size_t i = 0; i < token.size(); ++i)
    diff |= static_cast<unsigned>(static_cast<unsigned char>(token[i]) ^
                                  static_cast<unsigned char>(i < got.size() ? got[i] : 0));
  return diff == 0;
}
}  // namespace

awaitable<void> Server::Impl::admin_session(Socket plain) {
  // HTTPS with --admin-tls: the same certificate (and client-certificate rule) as the client
  // listeners.
  ClientStream sock = config.admin_tls ? client_stream(std::move(plain)) : ClientStream(std::move(plain), nullptr);
  if (!co_await tls_handshake(sock, "admin")) co_return;
  std::string req;
  Timer deadline(sock.get_executor());
  deadline.expires_after(std::chrono::seconds(5));
  deadline.async_wait([&sock](std::error_code ec) {
    if (!ec) {
      std::error_code ignored;
      sock.close(ignored);
    }
  });
  // Bytes that cannot start an HTTP request (a quorumq or Kafka client dialed the admin port by
  // mistake) are answered at once, so that client can say where it went instead of waiting.
  auto http_so_far = [](const std::string& r) {
    for (std::size_t i = 0; i < r.size() && i < 8; ++i) {
      if (r[i] == ' ') return i > 0;
      if (r[i] < 'A' || r[i] > 'Z') return false;
    }
    return r.size() < 8;
  };
  char chunk[4096];
  bool bad = false;
  for (;;) {
    auto [ec, n] = co_await sock.async_read_some(asio::buffer(chunk), kTuple);
    if (ec) {
      deadline.cancel();
      co_return;
    }
    req.append(chunk, n);
    if (!http_so_far(req) || req.size() > 16 * 1024) {
      bad = true;
      break;
    }
    if (req.find("\r\n\r\n") != std::string::npos) break;
  }
  deadline.cancel();
  if (bad) {
    const std::string body = "this is the quorumq admin HTTP port (/healthz, /readyz, /metrics); quorumq and Kafka "
                             "clients connect to the broker's client listener\n";
    std::string resp = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    co_await asio::async_write(sock, asio::buffer(resp), kTuple);
    std::error_code ignored;
    sock.shutdown(tcp::socket::shutdown_both, ignored);
    co_return;
  }
  std::string path, method, query;
  {
    const auto sp1 = req.find(' ');
    const auto sp2 = req.find(' ', sp1 + 1);
    if (sp1 != std::string::npos && sp2 != std::string::npos) path = req.substr(sp1 + 1, sp2 - sp1 - 1);
    if (sp1 != std::string::npos) method = req.substr(0, sp1);
    if (const auto q = path.find('?'); q != std::string::npos) query = path.substr(q + 1), path.resize(q);
  }
  int status = 200;
  std::string body, type = "text/plain; charset=utf-8", extra_headers;
  // With --admin-token-file, every route but the probes needs the token (compared in constant
  // time); a refusal is counted and logged with the peer's address, at most once a minute.
  const bool probe = path == "/healthz" || path == "/readyz";
  // With authentication on (--sasl or mutual TLS), a caller without the token may instead be a
  // user: HTTP Basic with a SCRAM user's password (over HTTPS only), or the client certificate's
  // principal; the ACLs then decide (cluster describe for /metrics, cluster alter for backups).
  std::string denied;
  bool token_ok = !config.admin_token.empty() && bearer_matches(req, config.admin_token);
  if (!probe && !token_ok && ctx.security.authorization_enabled()) {
    std::string who = config.admin_tls ? basic_principal(req, ctx.security) : std::string();
    if (who.empty()) who = certificate_principal(sock);
    const AclOperation op = path == "/v1/backup" ? AclOperation::alter : AclOperation::describe;
    if (!who.empty() && ctx.security.allowed(Principal{who}, op, ResourceType::cluster, "kafka-cluster")) token_ok = true;
    else if (!who.empty()) denied = who + " may not " + operation_name(op) + " the cluster (quorumq acl add --principal " +
                                    who + " --operation " + operation_name(op) + " --cluster)";
  } else if (config.admin_token.empty() && !ctx.security.authorization_enabled()) {
    token_ok = true;  // an open endpoint, as configured (warned at start when off loopback)
  }
  if (!probe && !denied.empty()) {
    metrics.authorization_failures.fetch_add(1, std::memory_order_relaxed);
    status = 403;
    body = denied + "\n";
  } else if (!probe && !token_ok) {
    metrics.admin_auth_failures.fetch_add(1, std::memory_order_relaxed);
    std::error_code pec;
    const auto ep = sock.remote_endpoint(pec);
    log_limited(spdlog::level::warn, "admin-auth", "admin HTTP: {} {} from {} refused: missing or wrong bearer token",
                method.substr(0, 8), path.substr(0, 64), pec ? std::string("?") : ep.address().to_string());
    status = 401;
    extra_headers = "WWW-Authenticate: Bearer realm=\"quorumq-admin\"\r\n";
    body = "this route needs the admin token: send `Authorization: Bearer <the token in the broker's "
           "--admin-token-file>`" +
           std::string(ctx.security.authorization_enabled()
                           ? ", or (over --admin-tls) a user's password as HTTP Basic, or a client certificate; the "
                             "user needs the cluster describe (metrics) or alter (backup) ACL"
                           : "") +
           " (/healthz and /readyz need none)\n";
  } else if (path == "/healthz") {
    body = "ok\n";
  } else if (path == "/readyz") {
    // Ready: the controller is known (topics applied) and every hosted replica is in its
    // leader's in-sync replicas.
    std::string behind;
    {
      std::lock_guard lk(sync_mu);
      for (std::size_t i = 0; i < out_of_sync.size() && i < 10; ++i) behind += " " + out_of_sync[i];
      if (out_of_sync.size() > 10) behind += " ... (" + std::to_string(out_of_sync.size()) + " in all)";
      if (!sync_checked) behind = " (not checked yet)";
    }
    if (ctx.ready.load() && behind.empty()) body = "ready\n";
    else if (ctx.ready.load()) status = 503, body = "catching up: not yet in the in-sync replicas of" + behind + "\n";
    else status = 503, body = stopping ? "shutting down\n" : "starting (no controller leader known yet)\n";
  } else if (path == "/metrics") {
    body = render_metrics();
    type = "text/plain; version=0.0.4; charset=utf-8";
  } else if (path == "/v1/backup") {
    type = "application/json";
    if (method != "POST")
      status = 405, body = nlohmann::ordered_json{{"ok", false}, {"error", "use POST /v1/backup?to=DIR (below --backup-dir)"}}.dump() + "\n";
    else std::tie(status, body) = co_await backup(query);
  } else {
    status = 404;
    body = "not found: try /healthz, /readyz, /metrics or POST /v1/backup?to=DIR (below --backup-dir)\n";
  }
  const char* reason = status == 200 ? "OK" : status == 503 ? "Service Unavailable" : status == 400 ? "Bad Request"
                       : status == 401 ? "Unauthorized"
                       : status == 405 ? "Method Not Allowed" : status == 409 ? "Conflict"
                       : status == 403 ? "Forbidden" : status == 507 ? "Insufficient Storage"
                       : status == 500 ? "Internal Server Error" : "Not Found";
  std::string resp = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: " + type +
                     "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra_headers +
                     "Connection: close\r\n\r\n" + body;
  co_await asio::async_write(sock, asio::buffer(resp), kTuple);
  std::error_code ignored;
  sock.shutdown(tcp::socket::shutdown_both, ignored);
}

namespace {
// The value of `key` in a query string, %XX- and '+'-decoded; nullopt if absent or malformed.
std::optional<std::string> query_param(const std::string& query, const std::string& key) {
  std::size_t at = 0;
  while (at <= query.size()) {
    const auto amp = std::min(query.find('&', at), query.size());
    const std::string item = query.substr(at, amp - at);
    if (item.rfind(key + "=", 0) == 0) {
      std::string v;
      for (std::size_t i = key.size() + 1; i < item.size(); ++i) {
        if (item[i] == '+') v += ' ';
        else if (item[i] != '%') v += item[i];
        else {
          if (i + 2 >= item.size() || !std::isxdigit(static_cast<unsigned char>(item[i + 1])) ||
              !std::isxdigit(static_cast<unsigned char>(item[i + 2])))
            return std::nullopt;
          v += static_cast<char>(std::stoi(item.substr(i + 1, 2), nullptr, 16));
          i += 2;
        }
      }
      return v;
    }
    at = amp + 1;
  }
  return std::nullopt;
}
}  // namespace

// POST /v1/backup?to=DIR: LMDB's online compacting copy of this broker's environment into DIR,
// which must lie below --backup-dir (a relative DIR is taken below it; off without it), be empty
// or new, and leave the data directory's filesystem its free-space floor. The broker keeps
// serving; the copy is one consistent read snapshot, written 0700/0600. Answers JSON: 200 done,
// 400 bad path, 403 backups off or outside --backup-dir, 409 busy or not empty, 507 no room.
awaitable<std::pair<int, std::string>> Server::Impl::backup(const std::string& query) {
  namespace fs = std::filesystem;
  auto fail = [](int status, const std::string& msg) {
    // Replace, not throw, on bytes that are not UTF-8 (a path or an error text may hold some).
    return std::pair<int, std::string>{
        status, nlohmann::ordered_json{{"ok", false}, {"error", msg}}.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n"};
  };
  if (config.backup_dir.empty())
    co_return fail(403, "backups are off on this broker: start it with --backup-dir DIR (where backups may be "
                        "written, outside the data directory)");
  const auto to = query_param(query, "to");
  if (!to || to->empty()) co_return fail(400, "missing ?to=DIR (a new or empty directory below --backup-dir)");
  if (to->find('\0') != std::string::npos) co_return fail(400, "bad backup directory name");
  const fs::path asked(*to);
  for (const auto& part : asked)
    if (part == "..") co_return fail(400, "backup directory must not contain '..': " + *to);
  const fs::path root(config.backup_dir);
  const fs::path dir = asked.is_absolute() ? asked : root / asked;
  std::error_code ec;
  fs::create_directories(root, ec);
  const auto root_c = fs::weakly_canonical(root, ec);
  const auto target = fs::weakly_canonical(dir, ec);
  const auto rel = target.lexically_relative(root_c);
  if (rel.empty() || rel == "." || *rel.begin() == "..")
    co_return fail(403, "backup directory " + *to + " is not below --backup-dir " + config.backup_dir +
                            ": backups go only there");
  // Room: a backup is about as large as the data in use. On the data directory's own
  // filesystem it must leave --backup-min-free-percent free (a backup must never be what fills
  // the disk the broker writes to); elsewhere it must simply fit.
  const std::uint64_t need = storage.used_bytes();
  struct stat data_st {}, root_st {};
  struct statvfs vfs {};
  if (::stat(storage.dir().c_str(), &data_st) == 0 && ::stat(root_c.c_str(), &root_st) == 0 &&
      ::statvfs(root_c.c_str(), &vfs) == 0) {
    const std::uint64_t free_bytes = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    const std::uint64_t total = static_cast<std::uint64_t>(vfs.f_blocks) * vfs.f_frsize;
    const bool same_fs = data_st.st_dev == root_st.st_dev;
    const std::uint64_t floor = same_fs ? total / 100 * config.backup_min_free_percent : (16u << 20);
    if (free_bytes < need + floor)
      co_return fail(507, "not enough room for a backup of ~" + std::to_string(need >> 20) + " MiB below " +
                              config.backup_dir + ": " + std::to_string(free_bytes >> 20) + " MiB free" +
                              (same_fs ? " on the data directory's filesystem, which must keep " +
                                             std::to_string(config.backup_min_free_percent) +
                                             "% free (--backup-min-free-percent)"
                                       : std::string()) +
                              "; back up to another disk or free space");
  }
  if (backup_running.exchange(true)) co_return fail(409, "another backup is running; try again when it is done");
  spdlog::info("hot backup to {} started", dir.string());
  const auto started = Clock::now();
  // A named initiation (not a temporary in the co_await expression): GCC 12 destroys such
  // temporaries twice in coroutines.
  auto start_copy = [this, dir](auto handler) {
        std::lock_guard lk(backup_mu);
        if (backup_thread.joinable()) backup_thread.join();  // the previous one has finished
        backup_thread = std::thread([this, dir, h = std::move(handler)]() mutable {
          auto r = storage.backup(dir);
          auto ex = asio::get_associated_executor(h);
          asio::post(ex, [h = std::move(h), r = std::move(r)]() mutable { std::move(h)(std::move(r)); });
        });
      };
  auto result = co_await asio::async_initiate<decltype(use_awaitable), void(std::expected<void, storage::Error>)>(
      start_copy, use_awaitable);
  backup_running = false;
  const double secs = std::chrono::duration<double>(Clock::now() - started).count();
  if (!result) {
    spdlog::error("hot backup to {} failed: {}", dir.string(), result.error().message);
    co_return fail(result.error().code == storage::errc::invalid_argument ? 409 : 500, result.error().message);
  }
  const auto bytes = std::filesystem::file_size(dir / "data.mdb", ec);
  spdlog::info("hot backup to {} done: {} bytes in {:.3f} s", dir.string(), ec ? 0 : bytes, secs);
  const nlohmann::ordered_json done{{"ok", true},
                            {"node_id", config.node_id},
                            {"dir", dir.string()},
                            {"bytes", ec ? 0 : static_cast<std::uint64_t>(bytes)},
                            {"seconds", std::round(secs * 1000) / 1000}};
  co_return std::pair<int, std::string>{200, done.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n"};
}

awaitable<void> Server::Impl::admin_loop() {
  for (;;) {
    auto [ec, sock] = co_await admin_acceptor.async_accept(asio::make_strand(io), kTuple);
    if (ec) {
      if (!admin_acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
      continue;
    }
    Socket s(std::move(sock));
    auto ex = s.get_executor();
    asio::co_spawn(ex, admin_session(std::move(s)), asio::detached);
  }
}

}  // namespace quorumq::broker
