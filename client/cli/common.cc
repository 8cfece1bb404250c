#include <signal.h>

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "commands.h"

namespace quorumq::cli {

namespace {
std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

bool parse_i64(const std::string& s, std::int64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc{} && p == s.data() + s.size();
}
}  // namespace

std::string login_password(const Global& g) {
  std::string pw;
  if (!g.sasl_password_file.empty()) {
    std::ifstream in(g.sasl_password_file);
    if (!in || !std::getline(in, pw) || pw.empty()) {
      std::cerr << "error: --password-file " << g.sasl_password_file
                << ": cannot read a password from it (one line; chmod 600 it)\n";
      std::exit(2);
    }
  } else if (const char* env = std::getenv("QUORUMQ_CLIENT_SASL_PASSWORD"); env && *env) {
    pw = env;
  } else {
    std::cerr << "error: --user " << g.sasl_user
              << " needs a password: --password-file FILE (or QUORUMQ_CLIENT_SASL_PASSWORD)\n";
    std::exit(2);
  }
  if (!pw.empty() && pw.back() == '\r') pw.pop_back();
  return pw;
}

void fail(const std::string& what, const Error& e) { std::cerr << "error: " << what << ": " << e.to_string() << "\n"; }

std::unique_ptr<Admin> make_admin(const Global& g) {
  AdminConfig c;
  apply_global(c, g);
  auto a = Admin::create(c);
  if (!a) {
    fail("bad configuration", a.error());
    return nullptr;
  }
  return std::move(*a);
}

std::optional<std::pair<std::string, std::string>> split_kv(const std::string& kv) {
  const auto eq = kv.find('=');
  if (eq == std::string::npos || eq == 0) return std::nullopt;
  return std::pair{kv.substr(0, eq), kv.substr(eq + 1)};
}

void install_stop_handlers() {
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a read of stdin blocked in the kernel returns (EINTR)
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool stop_requested() { return g_stop; }

StopSignalsBlocked::StopSignalsBlocked() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &s, &old_);
}
StopSignalsBlocked::~StopSignalsBlocked() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }

std::optional<std::string> check_topic_config(const std::string& key, const std::string& value) {
  std::int64_t n = 0;
  const bool num = parse_i64(value, n);
  if (key == "retention.ms" || key == "retention.bytes") {
    if (!num || n == 0 || n < -1)
      return key + "=" + value + ": the value must be a whole number >= 1, or -1 for no limit (" +
             (key == "retention.ms" ? "milliseconds" : "bytes per partition") + ")";
    return std::nullopt;
  }
  if (key == "max.message.bytes") {
    if (!num || n < 128 || n > (std::int64_t{1} << 30))
      return key + "=" + value + ": the value must be a whole number of bytes from 128 to 1073741824";
    return std::nullopt;
  }
  return "unknown topic config '" + key + "': the allowed keys are retention.ms, retention.bytes and max.message.bytes";
}

}  // namespace quorumq::cli
