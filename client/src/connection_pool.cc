// The Core's connection pool: one Connection per broker address, which broker "any broker"
// means right now, and the stall check that drops a connection whose partitions moved away.
#include <algorithm>

#include "core_impl.h"

namespace quorumq::client {

bool parse_host_port(std::string_view s, std::string& host, std::uint16_t& port) {
  const auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= s.size()) return false;
  unsigned long p = 0;
  for (char c : s.substr(colon + 1)) {
    if (c < '0' || c > '9') return false;
    p = p * 10 + static_cast<unsigned long>(c - '0');
    if (p > 65535) return false;
  }
  if (p == 0) return false;
  host = std::string(s.substr(0, colon));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  port = static_cast<std::uint16_t>(p);
  return true;
}

std::vector<std::string> split_bootstrap(std::string_view list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    auto comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    auto item = list.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    start = comma + 1;
  }
  return out;
}

bool valid_address(std::string_view s) {
  std::string h;
  std::uint16_t p;
  return parse_host_port(s, h, p);
}

std::shared_ptr<Connection> Core::Impl::connection(const std::string& address) {
  auto it = connections.find(address);
  if (it != connections.end()) return it->second;
  std::string host;
  std::uint16_t port = 0;
  if (!parse_host_port(address, host, port)) return nullptr;
  auto c = std::make_shared<Connection>(io, config, host, port, tls.get());
  connections.emplace(address, c);
  return c;
}

std::string Core::Impl::address_of(std::int32_t node) const {
  auto it = metadata.brokers.find(node);
  if (it == metadata.brokers.end()) return {};
  return it->second.host + ":" + std::to_string(it->second.port);
}

// Candidates for "any broker": known brokers, then the bootstrap list.
std::string Core::Impl::pick_any() {
  std::vector<std::string> cands;
  for (const auto& [id, b] : metadata.brokers) cands.push_back(b.host + ":" + std::to_string(b.port));
  for (const auto& b : bootstrap)
    if (std::find(cands.begin(), cands.end(), b) == cands.end()) cands.push_back(b);
  if (cands.empty()) return {};
  const auto now = Clock::now();
  for (const auto& a : cands) {
    auto it = connections.find(a);
    if (it != connections.end() && it->second->ready() && !it->second->stalled(now)) return a;
  }
  // Never a stalled broker while another is left: when the only ready connection is to a
  // paused broker, the metadata request of the stall check itself must go elsewhere.
  for (std::size_t i = 0; i < cands.size(); ++i) {
    const auto& a = cands[(rotation + i) % cands.size()];
    auto it = connections.find(a);
    if (it == connections.end() || (!it->second->in_backoff(now) && !it->second->stalled(now))) return a;
  }
  for (std::size_t i = 0; i < cands.size(); ++i) {
    const auto& a = cands[(rotation + i) % cands.size()];
    if (!connections.at(a)->stalled(now)) return a;
  }
  return cands[rotation % cands.size()];
}

// Never connected, and every bootstrap address failed in a way waiting does not fix (refused,
// unresolvable, not a quorumq broker): the error to report now, naming each address.
std::optional<Error> Core::Impl::hopeless_bootstrap() const {
  if (ever_connected || !metadata.brokers.empty() || bootstrap.empty()) return std::nullopt;
  std::string why;
  for (const auto& a : bootstrap) {
    auto it = connections.find(a);
    if (it == connections.end() || !it->second->refused()) return std::nullopt;
    why += (why.empty() ? "" : "; ") + it->second->last_error().message;
  }
  if (bootstrap.size() == 1) return connections.find(bootstrap.front())->second->last_error();
  return make_error(ClientError::broker_unreachable, "no address of the bootstrap list is a reachable quorumq broker: " + why);
}

// node id of the broker at `address`, from metadata (-1 unknown).
std::int32_t Core::Impl::node_at(const std::string& address) const {
  for (const auto& [id, b] : metadata.brokers)
    if (b.host + ":" + std::to_string(b.port) == address) return id;
  return -1;
}
std::set<std::pair<std::string, std::int32_t>> Core::Impl::led_by(std::int32_t node) const {
  std::set<std::pair<std::string, std::int32_t>> out;
  for (const auto& [name, tm] : metadata.topics)
    for (const auto& p : tm.partitions)
      if (p.leader == node) out.insert({name, p.partition});
  return out;
}

// A stalled connection (see ClientConfig::stall_timeout_ms): ask another broker for fresh
// metadata; if partitions the stalled broker led have moved, drop its connection so what is
// in flight there is retried at the new leaders now (idempotent produce keeps that safe).
void Core::Impl::check_stalls(Clock::time_point now) {
  if (stall_check_in_flight || now < next_stall_check) return;
  std::map<std::string, std::set<std::pair<std::string, std::int32_t>>> suspects;
  for (auto& [a, c] : connections)
    if (c->stalled(now)) {
      const std::int32_t node = node_at(a);
      if (node >= 0) suspects[a] = led_by(node);
    }
  if (suspects.empty()) return;
  auto self = self_weak.lock();
  if (!self) return;
  stall_check_in_flight = true;
  next_stall_check = now + std::chrono::milliseconds(config.stall_timeout_ms);
  self->refresh_metadata({}, now + std::chrono::milliseconds(config.request_timeout_ms),
                                    [this, suspects](const Error*) {
    stall_check_in_flight = false;
    const auto t = Clock::now();
    for (const auto& [a, before] : suspects) {
      auto it = connections.find(a);
      if (it == connections.end() || !it->second->stalled(t)) continue;
      const std::int32_t node = node_at(a);
      const auto after = led_by(node);
      bool moved = false;
      for (const auto& tp : before) moved |= !after.contains(tp);
      if (moved)
        it->second->abandon(make_error(ClientError::connection_lost,
                                       "broker " + std::to_string(node) + " at " + a +
                                           " stopped answering and its partitions have new leaders"));
    }
  });
}

void Core::Impl::arm_sweep() {
  sweep.expires_after(std::chrono::milliseconds(50));
  sweep.async_wait([this](std::error_code ec) {
    if (ec || stopped) return;
    const auto now = Clock::now();
    for (auto& [a, c] : connections) {
      c->expire(now);
      if (c->ready()) ever_connected = true;
    }
    check_stalls(now);
    arm_sweep();
  });
}

std::size_t Core::in_flight(std::int32_t node) const {
  const auto a = impl_->address_of(node);
  auto it = impl_->connections.find(a);
  return it == impl_->connections.end() ? 0 : it->second->in_flight();
}

bool Core::reachable(std::int32_t node) const {
  const auto a = impl_->address_of(node);
  if (a.empty()) return false;
  auto it = impl_->connections.find(a);
  return it == impl_->connections.end() || !it->second->in_backoff(Clock::now());
}

}  // namespace quorumq::client
