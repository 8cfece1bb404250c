#include "peer_transport.h"

#include <spdlog/spdlog.h>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <atomic>
#include <map>

namespace quorumq::broker {

using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;
using Socket = tcp::socket::rebind_executor<Strand>::other;
using Timer = asio::steady_timer::rebind_executor<Strand>::other;
constexpr auto kTuple = asio::experimental::as_tuple(use_awaitable);

namespace {
constexpr std::size_t kQueueBytesMax = 64u << 20;
constexpr std::size_t kEnvelopeBytesMax = 4u << 20;

std::size_t approx_bytes(const GroupMessage& gm) {
  std::size_t n = 96 + gm.group.size();
  for (const auto& e : gm.msg.entries) n += e.size_bytes();
  return n;
}

class Link : public std::enable_shared_from_this<Link> {
 public:
  Link(asio::io_context& io, node_id self, node_id peer, HostPort addr, std::string cluster_id,
       const Incarnation& incarnation, std::atomic<std::uint64_t>& dropped)
      : strand_(asio::make_strand(io)), sock_(strand_), wake_(strand_), self_(self), peer_(peer),
        addr_(std::move(addr)), cluster_id_(std::move(cluster_id)), incarnation_(incarnation), dropped_(dropped) {}

  void start() {
    asio::co_spawn(strand_, [self = shared_from_this()] { return self->run(); }, asio::detached);
  }
  void stop() {
    stopped_.store(true);
    asio::post(strand_, [self = shared_from_this()] {
      std::error_code ec;
      self->sock_.close(ec);
      self->wake_.cancel();
    });
  }
  void push(GroupMessage m) {
    const std::size_t b = approx_bytes(m);
    {
      std::lock_guard lk(mu_);
      if (queued_bytes_ + b > kQueueBytesMax) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      queued_bytes_ += b;
      queue_.push_back(std::move(m));
    }
    signal();
  }
  void push_announcement(std::vector<LeaderAnnouncement> a) {
    {
      std::lock_guard lk(mu_);
      announce_ = std::move(a);
      have_announce_ = true;
    }
    signal();
  }

 private:
  void signal() {
    if (!signaled_.exchange(true))
      asio::post(strand_, [self = shared_from_this()] { self->wake_.cancel(); });
  }

  awaitable<bool> connect() {
    tcp::resolver resolver(strand_);
    auto [rec, eps] = co_await resolver.async_resolve(addr_.host, std::to_string(addr_.port), kTuple);
    if (rec) co_return false;
    Timer deadline(strand_);
    deadline.expires_after(std::chrono::seconds(1));
    deadline.async_wait([this](std::error_code ec) {
      if (!ec) {
        std::error_code ignored;
        sock_.close(ignored);
      }
    });
    auto [ec, ep] = co_await asio::async_connect(sock_, eps, kTuple);
    deadline.cancel();
    if (ec) co_return false;
    std::error_code ignored;
    sock_.set_option(tcp::no_delay(true), ignored);
    // Nothing comes back on this connection; reading tells us when the peer closes it.
    asio::co_spawn(strand_, [self = shared_from_this()]() -> awaitable<void> {
      char buf[256];
      for (;;) {
        auto [rec2, n] = co_await self->sock_.async_read_some(asio::buffer(buf), kTuple);
        if (rec2) break;
      }
      std::error_code ig;
      self->sock_.close(ig);
      self->wake_.cancel();
    }, asio::detached);
    co_return true;
  }

  awaitable<void> run() {
    int backoff_ms = 20;
    bool connected = false;
    std::vector<GroupMessage> batch;
    std::vector<LeaderAnnouncement> ann;
    while (!stopped_.load()) {
      if (!connected) {
        connected = co_await connect();
        if (!connected) {
          std::error_code ig;
          sock_.close(ig);
          drop_queue();
          Timer t(strand_);
          t.expires_after(std::chrono::milliseconds(backoff_ms));
          co_await t.async_wait(kTuple);
          backoff_ms = std::min(backoff_ms * 2, 500);
          continue;
        }
        backoff_ms = 20;
        spdlog::debug("replication link to broker {} ({}) up", peer_.value, addr_.str());
      }
      batch.clear();
      ann.clear();
      bool have_ann = false;
      {
        std::lock_guard lk(mu_);
        signaled_.store(false);
        batch.swap(queue_);
        queued_bytes_ = 0;
        if (have_announce_) ann.swap(announce_), have_ann = true, have_announce_ = false;
      }
      if (batch.empty() && !have_ann) {
        if (!sock_.is_open()) {
          connected = false;
          continue;
        }
        wake_.expires_at(std::chrono::steady_clock::time_point::max());
        co_await wake_.async_wait(kTuple);
        if (!sock_.is_open()) connected = false;
        continue;
      }
      // Chunk into envelopes of bounded size; the announcement rides in the first.
      std::vector<protocol::OutgoingFrame> frames;
      const auto h = incarnation_.header_for(peer_);
      const DirHeader dirs{h.sender_dir, h.receiver_dir, h.sender_settled};
      std::vector<GroupMessage> chunk;
      std::size_t bytes = 0;
      for (auto& m : batch) {
        bytes += approx_bytes(m);
        chunk.push_back(std::move(m));
        if (bytes >= kEnvelopeBytesMax) {
          frames.push_back(encode_envelope(self_.value, cluster_id_, chunk, have_ann ? ann : std::vector<LeaderAnnouncement>{}, dirs));
          have_ann = false;
          chunk.clear();
          bytes = 0;
        }
      }
      if (!chunk.empty() || have_ann) frames.push_back(encode_envelope(self_.value, cluster_id_, chunk, ann, dirs));
      std::vector<asio::const_buffer> bufs;
      for (const auto& f : frames) {
        bufs.emplace_back(f.header.data(), f.header.size());
        bufs.emplace_back(f.body.data(), f.body.size());
      }
      auto [ec, n] = co_await asio::async_write(sock_, bufs, kTuple);
      if (ec) {
        spdlog::debug("replication link to broker {}: {}; reconnecting", peer_.value, ec.message());
        dropped_.fetch_add(batch.size(), std::memory_order_relaxed);
        std::error_code ig;
        sock_.close(ig);
        connected = false;
      }
    }
  }

  void drop_queue() {
    std::lock_guard lk(mu_);
    dropped_.fetch_add(queue_.size(), std::memory_order_relaxed);
    queue_.clear();
    queued_bytes_ = 0;
    signaled_.store(false);
  }

  Strand strand_;
  Socket sock_;
  Timer wake_;
  node_id self_, peer_;
  HostPort addr_;
  std::string cluster_id_;
  const Incarnation& incarnation_;
  std::atomic<std::uint64_t>& dropped_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> signaled_{false};
  std::mutex mu_;
  std::vector<GroupMessage> queue_;
  std::size_t queued_bytes_ = 0;
  std::vector<LeaderAnnouncement> announce_;
  bool have_announce_ = false;
};
}  // namespace

struct PeerTransport::Impl {
  std::map<node_id, std::shared_ptr<Link>> links;
  std::atomic<std::uint64_t> dropped{0};
};

PeerTransport::PeerTransport(asio::io_context& io, const BrokerConfig& config, const Incarnation& incarnation)
    : impl_(std::make_unique<Impl>()) {
  for (const auto& p : config.peers) {
    if (p.id == config.node_id) continue;
    impl_->links.emplace(node_id{p.id}, std::make_shared<Link>(io, node_id{config.node_id}, node_id{p.id}, p.addr,
                                                               config.cluster_id, incarnation, impl_->dropped));
  }
}

PeerTransport::~PeerTransport() = default;

void PeerTransport::start() {
  for (auto& [_, l] : impl_->links) l->start();
}

void PeerTransport::stop() {
  for (auto& [_, l] : impl_->links) l->stop();
}

void PeerTransport::send(node_id to, GroupMessage m) {
  auto it = impl_->links.find(to);
  if (it == impl_->links.end()) return;
  it->second->push(std::move(m));
}

void PeerTransport::announce(const std::vector<LeaderAnnouncement>& led) {
  for (auto& [_, l] : impl_->links) l->push_announcement(led);
}

std::uint64_t PeerTransport::dropped_messages() const { return impl_->dropped.load(); }

}  // namespace quorumq::broker
