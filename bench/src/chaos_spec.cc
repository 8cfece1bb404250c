#include "chaos_spec.h"

#include <charconv>
#include <vector>

namespace quorumq::bench {

namespace {
std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t from = 0;
  for (;;) {
    const auto at = s.find(sep, from);
    out.push_back(s.substr(from, at - from));
    if (at == std::string::npos) return out;
    from = at + 1;
  }
}
bool positive(const std::string& s, double& out) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size() && out > 0;
}
}  // namespace

std::expected<ChaosSpec, std::string> ChaosSpec::parse(const std::string& text) {
  const auto parts = split(text, ':');
  ChaosSpec c;
  const std::string usage =
      "--chaos must be kill-leader:EVERY_S, pause-leader:EVERY_S:FOR_S or restart-follower:EVERY_S (got '" + text + "')";
  if (parts[0] == "kill-leader" && parts.size() == 2) {
    c.kind = Kind::kill_leader;
  } else if (parts[0] == "restart-follower" && parts.size() == 2) {
    c.kind = Kind::restart_follower;
  } else if (parts[0] == "pause-leader" && parts.size() == 3) {
    c.kind = Kind::pause_leader;
    if (!positive(parts[2], c.for_s)) return std::unexpected(usage);
  } else {
    return std::unexpected(usage);
  }
  if (!positive(parts[1], c.every_s)) return std::unexpected(usage);
  if (c.kind == Kind::pause_leader && c.for_s >= c.every_s)
    return std::unexpected("--chaos pause-leader: FOR_S must be shorter than EVERY_S");
  return c;
}

std::string ChaosSpec::name() const {
  switch (kind) {
    case Kind::kill_leader: return "kill-leader";
    case Kind::pause_leader: return "pause-leader";
    case Kind::restart_follower: return "restart-follower";
    case Kind::none: break;
  }
  return "none";
}

}  // namespace quorumq::bench
