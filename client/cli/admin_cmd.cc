#include "admin_cmd.h"

#include <fstream>
#include <sstream>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

namespace quorumq::cli {
namespace fs = std::filesystem;

namespace {

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
    else out += '%', out += hex[c >> 4], out += hex[c & 15];
  }
  return out;
}

struct HttpAnswer {
  int status = 0;
  std::string body;
};

// One HTTP/1.0 request over a blocking socket with a deadline; the error says what to check.
std::optional<HttpAnswer> http_request(const std::string& addr, const std::string& method, const std::string& target,
                                       const std::string& bearer, std::uint32_t timeout_ms, std::string& error) {
  const auto colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    error = "'" + addr + "' is not HOST:PORT (the broker's --admin-listen address, e.g. 127.0.0.1:9644)";
    return std::nullopt;
  }
  std::string host = addr.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (const int rc = getaddrinfo(host.c_str(), addr.substr(colon + 1).c_str(), &hints, &res); rc != 0) {
    error = "cannot resolve " + addr + ": " + gai_strerror(rc);
    return std::nullopt;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto left_ms = [&] {
    return static_cast<int>(std::max<std::int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count()));
  };
  int fd = -1;
  for (auto* ai = res; ai && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) { close(fd), fd = -1; continue; }
    pollfd p{fd, POLLOUT, 0};
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (poll(&p, 1, left_ms()) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
      error = "cannot connect to " + addr + ": " + (soerr ? std::strerror(soerr) : "timed out") +
              " (is the broker running, and is this its --admin-listen address?)";
      close(fd), fd = -1;
    }
  }
  freeaddrinfo(res);
  if (fd < 0) {
    if (error.empty()) error = "cannot connect to " + addr;
    return std::nullopt;
  }
  const std::string req = method + " " + target + " HTTP/1.0\r\nHost: " + addr + "\r\n" +
                          (bearer.empty() ? std::string() : "Authorization: Bearer " + bearer + "\r\n") +
                          "Content-Length: 0\r\n\r\n";
  std::size_t sent = 0;
  std::string resp;
  bool ok = true;
  while (ok && sent < req.size()) {
    pollfd p{fd, POLLOUT, 0};
    ok = poll(&p, 1, left_ms()) == 1;
    const auto n = ok ? send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL) : -1;
    ok = n > 0;
    if (ok) sent += static_cast<std::size_t>(n);
  }
  char buf[4096];
  while (ok) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, left_ms()) != 1) { ok = false; break; }
    const auto n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) ok = false;
    if (n <= 0) break;
    resp.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  const auto sp = resp.find(' ');
  const auto hdr_end = resp.find("\r\n\r\n");
  if (!ok || sp == std::string::npos || hdr_end == std::string::npos) {
    error = "no complete answer from " + addr + " within " + std::to_string(timeout_ms) + " ms (raise --timeout-ms)";
    return std::nullopt;
  }
  return HttpAnswer{std::atoi(resp.c_str() + sp + 1), resp.substr(hdr_end + 4)};
}

bool fsync_path(const fs::path& p, int flags) {
  const int fd = open(p.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = fsync(fd) == 0;
  close(fd);
  return ok;
}

// LMDB's meta page (page 0) holds MDB_META with mm_magic 0xBEEFC0DE right after the 16-byte page header.
bool looks_like_lmdb(const fs::path& file) {
  const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  unsigned char b[20] = {};
  const bool ok = pread(fd, b, sizeof b, 0) == static_cast<ssize_t>(sizeof b);
  close(fd);
  std::uint32_t magic = 0;
  std::memcpy(&magic, b + 16, 4);
  return ok && magic == 0xBEEFC0DEu;
}

}  // namespace

int admin_backup(const std::string& broker_admin_addr, const std::string& to_dir, std::uint32_t timeout_ms,
                 const std::string& token_file) {
  if (to_dir.empty()) {
    std::cerr << "quorumq admin backup: --to must name a directory below the broker's --backup-dir\n";
    return 2;
  }
  std::string token;
  if (!token_file.empty()) {
    std::ifstream in(token_file, std::ios::binary);
    if (!in) {
      std::cerr << "quorumq admin backup: cannot read --admin-token-file " << token_file << "\n";
      return 2;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    token = ss.str();
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) token.pop_back();
  }
  std::string error;
  const auto t0 = std::chrono::steady_clock::now();
  auto a = http_request(broker_admin_addr, "POST", "/v1/backup?to=" + url_encode(to_dir), token, timeout_ms, error);
  if (!a) {
    std::cerr << "quorumq admin backup: " << error << "\n";
    return 1;
  }
  if (a->status != 200) {
    std::cerr << "quorumq admin backup: broker answered HTTP " << a->status << ": " << a->body;
    if (a->status == 404) std::cerr << "(is this broker older than the backup endpoint?)\n";
    if (a->status == 403) std::cerr << "(start the broker with --backup-dir DIR and back up below DIR)\n";
    if (a->status == 401) std::cerr << "(pass the broker's token with --admin-token-file or QUORUMQ_ADMIN_TOKEN_FILE)\n";
    return 1;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << a->body;
  std::cerr << "backup of " << broker_admin_addr << " written to " << to_dir << " in " << secs
            << " s; restore with: quorumq admin restore --from " << to_dir << " --data-dir NEW_DIR\n";
  return 0;
}

int admin_restore(const std::string& from_dir, const std::string& data_dir) {
  const fs::path from(from_dir), to(data_dir), src = from / "data.mdb";
  std::error_code ec;
  if (!fs::is_regular_file(src, ec) || !looks_like_lmdb(src)) {
    std::cerr << "quorumq admin restore: " << src.string()
              << " is not an LMDB data file: --from must be a directory made by `quorumq admin backup` (or a copy of "
                 "a stopped broker's data directory)\n";
    return 1;
  }
  if (fs::exists(to, ec) && !fs::is_empty(to, ec)) {
    std::cerr << "quorumq admin restore: " << to.string()
              << " is not empty; restore into a new or empty directory (never over a live broker's data)\n";
    return 1;
  }
  fs::create_directories(to, ec);
  if (ec) {
    std::cerr << "quorumq admin restore: cannot create " << to.string() << ": " << ec.message() << "\n";
    return 1;
  }
  const fs::path tmp = to / "data.mdb.restoring";
  fs::copy_file(src, tmp, fs::copy_options::overwrite_existing, ec);
  if (ec) {
    std::cerr << "quorumq admin restore: copying " << src.string() << ": " << ec.message() << "\n";
    fs::remove(tmp, ec);
    return 1;
  }
  // Durable before it is visible: sync the file, rename it into place, sync the directory.
  if (!fsync_path(tmp, O_RDONLY)) {
    std::cerr << "quorumq admin restore: cannot sync " << tmp.string() << ": " << std::strerror(errno) << "\n";
    return 1;
  }
  fs::rename(tmp, to / "data.mdb", ec);
  if (ec || !fsync_path(to, O_RDONLY | O_DIRECTORY)) {
    std::cerr << "quorumq admin restore: finishing " << (to / "data.mdb").string() << ": "
              << (ec ? ec.message() : std::strerror(errno)) << "\n";
    return 1;
  }
  std::cout << "restored " << fs::file_size(to / "data.mdb", ec) << " bytes into " << to.string()
            << "; start the broker with --data-dir " << to.string()
            << " and the same --node-id (see docs/operations.md, Backups)\n";
  return 0;
}

void add_admin_commands(CLI::App& app, int& rc) {
  auto* admin = app.add_subcommand("admin", "Operator tasks: hot backup of a broker, restore into a new data dir");
  admin->require_subcommand(1);

  struct BackupArgs {
    std::string broker, to;
    std::uint32_t timeout_ms = 600000;
    std::string token_file;
  };
  auto b = std::make_shared<BackupArgs>();
  auto* backup = admin->add_subcommand(
      "backup", "Hot backup: the broker copies its data directory (consistent, compacted) into --to while serving");
  backup->add_option("--broker", b->broker, "The broker's admin address HOST:PORT (its --admin-listen)")->required();
  backup->add_option("--to", b->to,
                     "Empty or new directory on the broker's machine, below its --backup-dir (a relative name is "
                     "taken below it)")
      ->required();
  backup->add_option("--timeout-ms", b->timeout_ms, "Give up waiting for the copy after this long")->capture_default_str();
  backup->add_option("--admin-token-file", b->token_file,
                     "File holding the broker's admin token (its --admin-token-file), if it has one")
      ->envname("QUORUMQ_ADMIN_TOKEN_FILE");
  backup->callback([b, &rc] { rc = admin_backup(b->broker, b->to, b->timeout_ms, b->token_file); });

  struct RestoreArgs {
    std::string from, data_dir;
  };
  auto r = std::make_shared<RestoreArgs>();
  auto* restore = admin->add_subcommand(
      "restore", "Copy a backup into a new, empty data directory (then start a broker on it); no broker needed");
  restore->add_option("--from", r->from, "A backup directory (holds data.mdb)")->required();
  restore->add_option("--data-dir", r->data_dir, "New or empty data directory to create")->required();
  restore->callback([r, &rc] { rc = admin_restore(r->from, r->data_dir); });
}

}  // namespace quorumq::cli
