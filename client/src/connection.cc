#include "connection.h"

#include "quorumq/protocol/scram.h"

#include <asio/experimental/as_tuple.hpp>

#include "quorumq/protocol/verify.h"
#include "quorumq/version.h"

namespace quorumq::client {
namespace {
constexpr auto kToken = asio::experimental::as_tuple(asio::use_awaitable);
constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::size_t kMaxFramesPerWrite = 64;
}  // namespace

Connection::Connection(asio::io_context& io, const ClientConfig& config, std::string host, std::uint16_t port,
                       asio::ssl::context* tls)
    : io_(io), config_(config), host_(std::move(host)), port_(port), address_(host_ + ":" + std::to_string(port_)),
      tls_(tls), stream_(std::make_shared<BrokerStream>(io, nullptr)) {}

void Connection::request(protocol::ApiId api, flatbuffers::DetachedBuffer body, Clock::time_point deadline,
                         bool expect_response, ResponseFn fn, std::chrono::milliseconds expected) {
  if (state_ == State::closed) {
    asio::post(io_, [fn = std::move(fn)] {
      Error e = make_error(ClientError::closed, "the client is closed");
      fn(&e, {});
    });
    return;
  }
  Queued q{api, std::move(body), deadline, expect_response, std::move(fn), expected};
  if (state_ == State::ready) {
    send_now(std::move(q));
    return;
  }
  queued_.push_back(std::move(q));
  if (state_ == State::idle) start_connect();
}

void Connection::start_connect() {
  const auto now = Clock::now();
  if (now < next_attempt_) {
    if (!backoff_timer_) {
      backoff_timer_ = std::make_unique<asio::steady_timer>(io_, next_attempt_);
      backoff_timer_->async_wait([self = shared_from_this()](std::error_code ec) {
        self->backoff_timer_.reset();
        if (!ec && self->state_ == State::idle && !self->queued_.empty()) self->start_connect();
      });
    }
    return;
  }
  state_ = State::connecting;
  connecting_since_ = Clock::now();
  const std::uint64_t gen = ++generation_;
  asio::co_spawn(io_, [self = shared_from_this(), gen]() { return self->connect_and_run(gen); },
                 asio::detached);
}

asio::awaitable<void> Connection::connect_and_run(std::uint64_t gen) {
  auto self = shared_from_this();
  asio::ip::tcp::resolver resolver(io_);
  auto [rec, endpoints] = co_await resolver.async_resolve(host_, std::to_string(port_), kToken);
  if (gen != generation_) co_return;
  if (rec) {
    refused_ = true;
    on_connect_failed(make_error(ClientError::broker_unreachable,
                                 "cannot resolve broker address " + address_ + ": " + rec.message() +
                                     "; check --bootstrap / QUORUMQ_BOOTSTRAP"));
    co_return;
  }
  auto stream = std::make_shared<BrokerStream>(io_, tls_);
  stream_ = stream;
  asio::steady_timer timer(io_, std::chrono::milliseconds(config_.connect_timeout_ms));
  bool timed_out = false;
  timer.async_wait([this, self, gen, stream, &timed_out](std::error_code ec) {
    if (!ec && gen == generation_ && state_ == State::connecting) {
      timed_out = true;
      stream->close();
    }
  });
  auto [cec, ep] = co_await asio::async_connect(stream->socket(), endpoints, kToken);
  if (!cec && !timed_out && gen == generation_ && stream->is_tls()) {
    // TLS within the same connect_timeout_ms: a broker without TLS (or a paused one) ends here.
    stream->expect_host(host_, config_.tls_verify_hostname);
    auto [hec] = co_await stream->async_handshake(kToken);
    if (gen != generation_) co_return;
    if (hec || timed_out) {
      timer.cancel();
      std::string why = timed_out ? "no TLS handshake within connect_timeout_ms" : hec.message();
      if (const auto v = stream->verify_error(); !timed_out && !v.empty()) why += " (" + v + ")";
      refused_ = !timed_out;
      on_connect_failed(make_error(ClientError::broker_unreachable,
                                   "TLS handshake with broker " + address_ + " failed: " + why +
                                       "; does the broker have TLS on (--tls-cert-file), and is its certificate "
                                       "signed by tls_ca_file (--tls-ca-file) for the name dialed?"));
      co_return;
    }
  }
  timer.cancel();
  if (gen != generation_) co_return;
  if (cec || timed_out) {
    const std::string why = timed_out ? "no answer within connect_timeout_ms=" +
                                            std::to_string(config_.connect_timeout_ms)
                                      : cec.message();
    refused_ = !timed_out && (cec == asio::error::connection_refused || cec == asio::error::host_unreachable ||
                              cec == asio::error::network_unreachable);
    on_connect_failed(make_error(ClientError::broker_unreachable,
                                 "cannot connect to broker " + address_ + ": " + why +
                                     "; is quorumq-broker running there? check --bootstrap / "
                                     "QUORUMQ_BOOTSTRAP"));
    co_return;
  }
  std::error_code ignored;
  stream->socket().set_option(asio::ip::tcp::no_delay(true), ignored);
  refused_ = false;
  first_bytes_.clear();

  // Handshake: ApiVersions first; nothing else is sent until it answered.
  {
    flatbuffers::FlatBufferBuilder fbb(256);
    const auto name = fbb.CreateString(config_.client_id);
    const auto ver = fbb.CreateString(client_version());
    std::vector<flatbuffers::Offset<wire::ApiVersionRange>> ranges;
    for (const auto& r : protocol::supported_apis())
      ranges.push_back(wire::CreateApiVersionRange(fbb, static_cast<std::uint16_t>(r.api), r.min_version,
                                                   r.max_version));
    fbb.Finish(wire::CreateApiVersionsRequest(fbb, name, ver, fbb.CreateVector(ranges)));
    const std::uint32_t corr = next_correlation_++;
    const auto deadline = Clock::now() + std::chrono::milliseconds(config_.connect_timeout_ms);
    in_flight_[corr] = InFlight{protocol::ApiId::api_versions, 0, deadline,
                                [this, gen](const Error* err, std::span<const std::uint8_t> payload) {
                                  if (gen != generation_) return;
                                  if (err) {
                                    on_connect_failed(make_error(err->code, "handshake with broker " + address_ +
                                                                                " failed: " + err->message));
                                    return;
                                  }
                                  const auto* r = protocol::payload_as<wire::ApiVersionsResponse>(payload);
                                  if (r->error() != wire::ErrorCode::none) {
                                    on_connect_failed(broker_error(static_cast<std::int16_t>(r->error()),
                                                                   "handshake refused by " + address_));
                                    return;
                                  }
                                  node_id_ = r->node_id();
                                  broker_versions_.clear();
                                  if (r->apis())
                                    for (const auto* a : *r->apis())
                                      broker_versions_[a->api_id()] = {a->min_version(), a->max_version()};
                                  if (config_.sasl_user.empty()) on_ready();
                                  else start_sasl(gen);
                                }};
    Outgoing out;
    out.frame = protocol::finish_frame(fbb, protocol::FrameHeader{protocol::ApiId::api_versions, 0, corr, 0});
    write_queue_.push_back(std::move(out));
    do_write();
  }

  protocol::FrameDecoder decoder(config_.max_frame_bytes);
  for (;;) {
    auto buf = decoder.prepare(kReadChunk);
    auto [ec, n] = co_await stream->async_read_some(asio::buffer(buf.data(), buf.size()), kToken);
    if (gen != generation_) co_return;
    if (ec) {
      const std::string why = ec == asio::error::eof ? "closed by the broker" : ec.message();
      Error e = make_error(ClientError::connection_lost, "connection to broker " + address_ + " lost: " + why);
      if (state_ == State::connecting) {
        if (!first_bytes_.empty()) {
          refused_ = true;
          e = not_a_broker_error();
        } else {
          // Not connected yet: this counts as unreachable, not as a lost connection.
          e = make_error(ClientError::broker_unreachable,
                         address_ + " closed the connection before answering the quorumq handshake" +
                             (ec == asio::error::eof ? std::string() : " (" + why + ")") + ": is it a quorumq broker's client address (its --listen), not its admin or peer "
                             "port? check --bootstrap / QUORUMQ_BOOTSTRAP" +
                             (stream->is_tls() ? std::string()
                                               : std::string("; if the broker has TLS on, connect with --tls-ca-file")));
        }
        on_connect_failed(e);
      } else {
        fail_connection(e);
      }
      co_return;
    }
    if (first_bytes_.size() < 16)
      first_bytes_.append(reinterpret_cast<const char*>(buf.data()), std::min<std::size_t>(n, 16 - first_bytes_.size()));
    decoder.commit(n);
    for (;;) {
      auto r = decoder.next();
      if (r.status == protocol::FrameError::need_more) break;
      if (r.status != protocol::FrameError::ok) {
        if (state_ == State::connecting) {
          // The first answer is not a quorumq frame: something else listens there.
          refused_ = true;
          on_connect_failed(not_a_broker_error());
          co_return;
        }
        fail_connection(make_error(ClientError::protocol_error,
                                   std::string("bad frame from broker ") + address_ + ": " +
                                       protocol::to_string(r.status)));
        co_return;
      }
      dispatch(r.frame);
      if (gen != generation_) co_return;
    }
  }
}

void Connection::dispatch(const protocol::Frame& frame) {
  if (!frame.header.is_response()) {
    fail_connection(make_error(ClientError::protocol_error, "broker " + address_ + " sent a request frame"));
    return;
  }
  auto it = in_flight_.find(frame.header.correlation_id);
  if (it == in_flight_.end()) return;  // an answer to nothing we wait for: ignore
  InFlight inf = std::move(it->second);
  in_flight_.erase(it);
  if (frame.header.is_error_payload()) {
    if (protocol::verify_error_response(frame.payload) != wire::ErrorCode::none) {
      Error e = make_error(ClientError::protocol_error, "unverifiable error response from " + address_);
      inf.fn(&e, {});
      fail_connection(e);
      return;
    }
    const auto* er = protocol::payload_as<wire::ErrorResponse>(frame.payload);
    Error e = broker_error(static_cast<std::int16_t>(er->error()),
                           er->message() ? er->message()->string_view() : std::string_view{});
    inf.fn(&e, {});
    return;
  }
  if (frame.header.api_id != inf.api ||
      protocol::verify_response(inf.api, inf.version, frame.payload) != wire::ErrorCode::none) {
    Error e = make_error(ClientError::protocol_error,
                         std::string("corrupt ") + protocol::api_name(inf.api) + " response from " + address_);
    inf.fn(&e, {});
    fail_connection(e);
    return;
  }
  inf.fn(nullptr, frame.payload);
}

// SASL SCRAM after the handshake: client-first, then client-final; ready once the broker proved
// it knows the credential too. Any failure fails the connect attempt (refused: retrying with the
// same password cannot help).
void Connection::start_sasl(std::uint64_t gen) {
  const auto mech = protocol::scram::mechanism_from_name(config_.sasl_mechanism);
  auto scram = std::make_shared<protocol::scram::ClientExchange>(
      mech.value_or(protocol::scram::Mechanism::sha256), config_.sasl_user, config_.sasl_password);
  auto send = [this, gen](const std::string& token, auto then) {
    flatbuffers::FlatBufferBuilder fbb(256);
    const auto m = fbb.CreateString(config_.sasl_mechanism);
    const auto b = fbb.CreateVector(reinterpret_cast<const std::uint8_t*>(token.data()), token.size());
    fbb.Finish(wire::CreateSaslAuthenticateRequest(fbb, m, b));
    const std::uint32_t corr = next_correlation_++;
    in_flight_[corr] = InFlight{
        protocol::ApiId::sasl_authenticate, 0, Clock::now() + std::chrono::milliseconds(config_.connect_timeout_ms),
        [this, gen, then](const Error* err, std::span<const std::uint8_t> payload) {
          if (gen != generation_) return;
          auto failed = [this](Error e) {
            refused_ = true;
            on_connect_failed(e);
          };
          if (err) return failed(make_error(err->code, "SASL login to broker " + address_ + " as " + config_.sasl_user +
                                                           " failed: " + err->message));
          const auto* r = protocol::payload_as<wire::SaslAuthenticateResponse>(payload);
          if (r->error() != wire::ErrorCode::none)
            return failed(broker_error(static_cast<std::int16_t>(r->error()),
                                       "SASL login to broker " + address_ + " as " + config_.sasl_user + " failed: " +
                                           (r->message() ? r->message()->str() : std::string())));
          const auto* b = r->auth_bytes();
          then(b ? std::string(reinterpret_cast<const char*>(b->data()), b->size()) : std::string());
        }};
    Outgoing out;
    out.frame = protocol::finish_frame(fbb, protocol::FrameHeader{protocol::ApiId::sasl_authenticate, 0, corr, 0});
    write_queue_.push_back(std::move(out));
    do_write();
  };
  send(scram->first(), [this, gen, scram, send](std::string server_first) {
    std::string why;
    auto final = scram->final(server_first, &why);
    if (!final) {
      refused_ = true;
      return on_connect_failed(make_error(ClientError::protocol_error, "SASL login to broker " + address_ + ": " + why));
    }
    send(*final, [this, scram](std::string server_final) {
      std::string why;
      if (!scram->verify_server(server_final, &why)) {
        refused_ = true;
        return on_connect_failed(make_error(ClientError::protocol_error, "SASL login to broker " + address_ + ": " + why));
      }
      on_ready();
    });
  });
}

void Connection::on_ready() {
  state_ = State::ready;
  failures_ = 0;
  auto q = std::move(queued_);
  queued_.clear();
  for (auto& item : q) send_now(std::move(item));
}

std::uint16_t Connection::version_for(protocol::ApiId api) const {
  const auto* ours = protocol::find_api(api);
  std::uint16_t v = ours ? ours->max_version : 0;
  auto it = broker_versions_.find(static_cast<std::uint16_t>(api));
  if (it != broker_versions_.end() && it->second.second < v) v = it->second.second;
  return v;
}

void Connection::send_now(Queued q) {
  const std::uint32_t corr = next_correlation_++;
  const std::uint16_t version = version_for(q.api);
  Outgoing out;
  out.frame.body = std::move(q.body);
  out.frame.header = protocol::encode_frame_header(protocol::FrameHeader{q.api, version, corr, 0},
                                                   out.frame.payload());
  if (q.expect_response)
    in_flight_[corr] = InFlight{q.api, version, q.deadline, std::move(q.fn),
                                Clock::now() + q.expected + std::chrono::milliseconds(config_.stall_timeout_ms)};
  else
    out.written = std::move(q.fn);
  write_queue_.push_back(std::move(out));
  do_write();
}

void Connection::do_write() {
  if (writing_ || write_queue_.empty()) return;
  writing_ = true;
  auto batch = std::make_shared<std::vector<Outgoing>>();
  std::vector<asio::const_buffer> bufs;
  while (!write_queue_.empty() && batch->size() < kMaxFramesPerWrite) {
    batch->push_back(std::move(write_queue_.front()));
    write_queue_.pop_front();
  }
  bufs.reserve(batch->size() * 2);
  for (const auto& o : *batch) {
    bufs.emplace_back(o.frame.header.data(), o.frame.header.size());
    bufs.emplace_back(o.frame.body.data(), o.frame.body.size());
  }
  const std::uint64_t gen = generation_;
  asio::async_write(*stream_, bufs, [self = shared_from_this(), stream = stream_, batch, gen](std::error_code ec, std::size_t) {
    if (gen != self->generation_) return;
    self->writing_ = false;
    if (ec) {
      self->fail_connection(make_error(ClientError::connection_lost,
                                       "write to broker " + self->address_ + " failed: " + ec.message()));
      return;
    }
    for (auto& o : *batch)
      if (o.written) o.written(nullptr, {});
    if (gen == self->generation_) self->do_write();
  });
}

Error Connection::not_a_broker_error() const {
  const bool http = first_bytes_.starts_with("HTTP/");
  return make_error(ClientError::not_a_broker,
                    address_ + " is not a quorumq broker's client address: it answered " +
                        (http ? std::string("in HTTP (is it a broker's admin port, --admin-listen?)")
                              : std::string("with bytes that are not the quorumq protocol")) +
                        "; give the address of the broker's --listen in --bootstrap / QUORUMQ_BOOTSTRAP");
}

void Connection::on_connect_failed(const Error& e) {
  last_error_ = e;
  ++failures_;
  std::uint64_t backoff = config_.reconnect_backoff_ms;
  for (std::uint32_t i = 1; i < failures_ && backoff < config_.reconnect_backoff_max_ms; ++i) backoff *= 2;
  if (backoff > config_.reconnect_backoff_max_ms) backoff = config_.reconnect_backoff_max_ms;
  next_attempt_ = Clock::now() + std::chrono::milliseconds(backoff);
  fail_connection(e);
}

void Connection::fail_connection(const Error& e) {
  if (state_ == State::closed) return;
  ++generation_;
  state_ = State::idle;
  if (failures_ == 0) next_attempt_ = Clock::now() + std::chrono::milliseconds(config_.reconnect_backoff_ms);
  stream_->close();
  writing_ = false;
  write_queue_.clear();
  auto inflight = std::move(in_flight_);
  in_flight_.clear();
  auto queued = std::move(queued_);
  queued_.clear();
  for (auto& [corr, inf] : inflight) inf.fn(&e, {});
  for (auto& q : queued) q.fn(&e, {});
}

void Connection::close(const Error& reason) {
  if (state_ == State::closed) return;
  state_ = State::closed;  // first: callbacks below must not start a new connect
  ++generation_;
  stream_->close();
  if (backoff_timer_) backoff_timer_->cancel();
  write_queue_.clear();
  auto inflight = std::move(in_flight_);
  in_flight_.clear();
  auto queued = std::move(queued_);
  queued_.clear();
  for (auto& [corr, inf] : inflight) inf.fn(&reason, {});
  for (auto& q : queued) q.fn(&reason, {});
}

bool Connection::stalled(Clock::time_point now) const noexcept {
  // A paused broker's kernel still accepts connections, so a reconnect to it hangs in the
  // handshake with requests queued behind it: that is a stall too.
  if (state_ == State::connecting)
    return !queued_.empty() && connecting_since_ + std::chrono::milliseconds(config_.stall_timeout_ms) <= now;
  if (state_ != State::ready) return false;
  for (const auto& [corr, inf] : in_flight_)
    if (inf.stall_at <= now) return true;
  return false;
}

void Connection::expire(Clock::time_point now) {
  // Not yet sent: fail just these.
  for (auto it = queued_.begin(); it != queued_.end();) {
    if (it->deadline <= now) {
      auto fn = std::move(it->fn);
      it = queued_.erase(it);
      Error e = make_error(ClientError::timed_out, "no connection to broker " + address_ + " in time");
      fn(&e, {});
    } else {
      ++it;
    }
  }
  bool expired = false;
  for (const auto& [corr, inf] : in_flight_)
    if (inf.deadline <= now) expired = true;
  if (!expired) return;
  if (state_ == State::connecting) {
    on_connect_failed(make_error(ClientError::broker_unreachable,
                                 address_ + " accepted the connection but did not answer the quorumq handshake within "
                                 "connect_timeout_ms=" + std::to_string(config_.connect_timeout_ms) +
                                 ": is it a quorumq broker's client address (its --listen), not its admin or peer "
                                 "port? (or is that broker paused or overloaded?) check --bootstrap / "
                                 "QUORUMQ_BOOTSTRAP"));
    return;
  }
  // Sent and unanswered: the connection is closed so a late answer cannot be mismatched.
  std::vector<ResponseFn> late;
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    if (it->second.deadline <= now) {
      late.push_back(std::move(it->second.fn));
      it = in_flight_.erase(it);
    } else {
      ++it;
    }
  }
  Error e = make_error(ClientError::timed_out, "broker " + address_ + " did not answer within the request timeout");
  for (auto& fn : late) fn(&e, {});
  fail_connection(make_error(ClientError::connection_lost,
                             "connection to " + address_ + " closed after a request timed out"));
}

}  // namespace quorumq::client
