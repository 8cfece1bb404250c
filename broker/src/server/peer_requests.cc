// AsioPeerRequests (server_impl.h): one native request to another broker's client listener.
//
// A connection per request: the only users are Kafka consumer groups' offset commits and
// fetches (seconds apart per consumer), so pooling would buy little and cost a cache of
// connections to invalidate when a broker moves. A deadline covers resolve, connect, write and
// read; the answer is read with the same frame decoder and size limit as any client frame.
#include "server_impl.h"

namespace quorumq::broker {

namespace {
struct Call {
  Call(asio::io_context& io, std::uint32_t max_frame) : sock(asio::make_strand(io)), timer(sock.get_executor()),
                                                        decoder(max_frame) {}
  Socket sock;
  Timer timer;
  protocol::FrameDecoder decoder;
  bool timed_out = false;
};

awaitable<PeerRequests::Reply> exchange(std::shared_ptr<Call> c, HostPort addr, protocol::ApiId api,
                                        std::vector<std::uint8_t> payload) {
  using Reply = PeerRequests::Reply;
  auto fail = [&](std::string what, std::error_code ec) {
    return Reply{false, what + " " + addr.str() + ": " + (c->timed_out ? "timed out" : ec.message()), false, {}};
  };
  tcp::resolver resolver(c->sock.get_executor());
  auto [rec, eps] = co_await resolver.async_resolve(addr.host, std::to_string(addr.port), kTuple);
  if (rec) co_return fail("resolving", rec);
  auto [cec, ep] = co_await asio::async_connect(c->sock, eps, kTuple);
  if (cec) co_return fail("connecting to", cec);
  const auto* info = protocol::find_api(api);
  const protocol::FrameHeader h{api, static_cast<std::uint16_t>(info ? info->max_version : 0), 1, 0};
  const auto head = protocol::encode_frame_header(h, payload);
  std::array<asio::const_buffer, 2> out{asio::buffer(head), asio::buffer(payload)};
  auto [wec, wn] = co_await asio::async_write(c->sock, out, kTuple);
  if (wec) co_return fail("writing to", wec);
  for (;;) {
    auto r = c->decoder.next();
    if (r.status == protocol::FrameError::ok) {
      if (!r.frame.header.is_response() || r.frame.header.correlation_id != 1) continue;
      co_return Reply{true, {}, r.frame.header.is_error_payload(), {r.frame.payload.begin(), r.frame.payload.end()}};
    }
    if (r.status != protocol::FrameError::need_more)
      co_return Reply{false, std::string("bad answer from ") + addr.str() + ": " + protocol::to_string(r.status), false,
                      {}};
    auto buf = c->decoder.prepare(64 * 1024);
    auto [rec2, n] = co_await c->sock.async_read_some(asio::buffer(buf.data(), buf.size()), kTuple);
    c->decoder.commit(rec2 ? 0 : n);
    if (rec2) co_return fail("reading from", rec2);
  }
}
}  // namespace

void AsioPeerRequests::send(node_id to, protocol::ApiId api, std::vector<std::uint8_t> payload,
                            std::chrono::milliseconds timeout, std::function<void(Reply)> done) {
  auto addr = replication_.address_of(to);
  if (!addr) return done(Reply{false, "no client address known for broker " + std::to_string(to.value), false, {}});
  auto c = std::make_shared<Call>(io_, max_frame_bytes_);
  c->timer.expires_after(timeout);
  c->timer.async_wait([c](std::error_code ec) {
    if (ec) return;
    c->timed_out = true;
    std::error_code ignored;
    c->sock.close(ignored);
  });
  asio::co_spawn(c->sock.get_executor(), exchange(c, std::move(*addr), api, std::move(payload)),
                 [c, done = std::move(done)](std::exception_ptr e, Reply r) {
                   c->timer.cancel();
                   std::error_code ignored;
                   c->sock.close(ignored);
                   if (e) r = Reply{false, "forwarding failed", false, {}};
                   done(std::move(r));
                 });
}

}  // namespace quorumq::broker
