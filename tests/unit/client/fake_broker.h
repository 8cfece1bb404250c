// A scriptable in-process broker for SDK tests: one node, answers ApiVersions, Metadata,
// InitProducerId, Produce (with idempotent sequence checks), ListTopics. Each connection is
// served by its own thread with blocking I/O — simple, and good enough for tests.
// Fault hooks: answer a partition's produce with not_leader (plus a leader hint) N times;
// drop the connection after appending a produce (the client never hears the answer).
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <asio.hpp>

#include "quorumq/protocol/messages.h"
#include "quorumq/protocol/record_batch.h"
#include "quorumq/protocol/verify.h"

namespace quorumq::testing {

class FakeBroker {
 public:
  explicit FakeBroker(int partitions = 2) : partitions_(partitions), acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~FakeBroker() {
    stopping_ = true;
    std::error_code ec;
    {
      // A blocking accept() is not woken by close(): connect once so it returns.
      asio::ip::tcp::socket wake(io_);
      wake.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
    }
    {
      // shutdown() (unlike close()) wakes the connection threads' blocking reads.
      std::lock_guard lk(mu_);
      for (auto& s : sockets_) s->shutdown(asio::socket_base::shutdown_both, ec);
    }
    if (thread_.joinable()) thread_.join();
    acceptor_.close(ec);
    for (auto& t : conn_threads_) t.join();
  }
  std::uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Faults.
  std::atomic<int> not_leader_answers{0};       // per produce partition answer, counts down
  std::atomic<int> drop_after_append{0};        // drop the connection after the N-th append
  std::atomic<int> forget_after_append{0};      // lose all producer state after the N-th append

  struct Stored {
    std::vector<std::string> values;
  };
  std::map<int, Stored> partitions() {
    std::lock_guard lk(mu_);
    return log_;
  }
  int produce_requests() const { return produce_requests_; }

 private:
  void accept_loop() {
    while (!stopping_) {
      auto sock = std::make_shared<asio::ip::tcp::socket>(io_);
      std::error_code ec;
      acceptor_.accept(*sock, ec);
      if (ec || stopping_) return;
      std::lock_guard lk(mu_);
      sockets_.push_back(sock);
      conn_threads_.emplace_back([this, sock] { serve(sock); });
    }
  }

  void send(asio::ip::tcp::socket& s, const protocol::OutgoingFrame& f) {
    std::error_code ec;
    std::array<asio::const_buffer, 2> b{asio::buffer(f.header.data(), f.header.size()),
                                        asio::buffer(f.body.data(), f.body.size())};
    asio::write(s, b, ec);
  }

  void serve(std::shared_ptr<asio::ip::tcp::socket> sock) {
    protocol::FrameDecoder dec;
    std::vector<std::uint8_t> buf(65536);
    for (;;) {
      std::error_code ec;
      const std::size_t n = sock->read_some(asio::buffer(buf), ec);
      if (ec) return;
      dec.feed({buf.data(), n});
      for (;;) {
        auto r = dec.next();
        if (r.status != protocol::FrameError::ok) break;
        if (protocol::verify_frame(r.frame) != wire::ErrorCode::none) return;
        if (!handle(*sock, r.frame)) {
          // shutdown, not close: the destructor may shut the same socket down concurrently.
          std::lock_guard lk(mu_);
          sock->shutdown(asio::socket_base::shutdown_both, ec);
          return;
        }
      }
    }
  }

  bool handle(asio::ip::tcp::socket& s, const protocol::Frame& f) {
    flatbuffers::FlatBufferBuilder fbb(1024);
    const auto& h = f.header;
    switch (h.api_id) {
      case protocol::ApiId::api_versions:
        send(s, protocol::make_api_versions_response(h, 1, "fake"));
        return true;
      case protocol::ApiId::metadata: {
        auto host = fbb.CreateString("127.0.0.1");
        std::vector<flatbuffers::Offset<wire::BrokerMetadata>> brokers{wire::CreateBrokerMetadata(fbb, 1, host, port_)};
        const auto* req = protocol::payload_as<wire::MetadataRequest>(f.payload);
        std::vector<flatbuffers::Offset<wire::TopicMetadata>> topics;
        auto add_topic = [&](const std::string& name) {
          const auto n = fbb.CreateString(name);
          if (name != "t") {
            topics.push_back(wire::CreateTopicMetadata(fbb, n, wire::ErrorCode::unknown_topic_or_partition));
            return;
          }
          std::vector<flatbuffers::Offset<wire::PartitionMetadata>> parts;
          for (int p = 0; p < partitions_; ++p) {
            std::vector<std::int32_t> reps{1};
            const auto rv = fbb.CreateVector(reps);
            parts.push_back(wire::CreatePartitionMetadata(fbb, p, wire::ErrorCode::none, 1, 1, rv, rv, rv, 0, 0));
          }
          const auto pv = fbb.CreateVector(parts);
          topics.push_back(wire::CreateTopicMetadata(fbb, n, wire::ErrorCode::none, false, pv));
        };
        if (req->topics() && req->topics()->size() > 0)
          for (const auto* t : *req->topics()) add_topic(t->str());
        else
          add_topic("t");
        const auto bv = fbb.CreateVector(brokers);
        const auto tv = fbb.CreateVector(topics);
        send(s, protocol::finish_response(fbb, wire::CreateMetadataResponse(fbb, wire::ErrorCode::none, bv, 1, 0, tv), h));
        return true;
      }
      case protocol::ApiId::init_producer_id:
        send(s, protocol::finish_response(
                    fbb, wire::CreateInitProducerIdResponse(fbb, wire::ErrorCode::none, next_pid_++, 0), h));
        return true;
      case protocol::ApiId::list_topics: {
        const auto n = fbb.CreateString("t");
        std::vector<flatbuffers::Offset<wire::TopicListing>> l{wire::CreateTopicListing(fbb, n, partitions_, 1)};
        const auto lv = fbb.CreateVector(l);
        send(s, protocol::finish_response(fbb, wire::CreateListTopicsResponse(fbb, wire::ErrorCode::none, lv), h));
        return true;
      }
      case protocol::ApiId::produce: {
        ++produce_requests_;
        const auto* req = protocol::payload_as<wire::ProduceRequest>(f.payload);
        std::vector<flatbuffers::Offset<wire::ProduceTopicResponse>> topics;
        bool drop = false;
        for (const auto* t : *req->topics()) {
          std::vector<flatbuffers::Offset<wire::ProducePartitionResponse>> parts;
          for (const auto* p : *t->partitions()) {
            wire::ErrorCode code = wire::ErrorCode::none;
            std::int64_t base = -1;
            flatbuffers::Offset<wire::LeaderHint> hint;
            if (not_leader_answers.fetch_sub(1) > 0) {
              code = wire::ErrorCode::not_leader;
              const auto hh = fbb.CreateString("127.0.0.1");
              hint = wire::CreateLeaderHint(fbb, 1, 2, hh, port_);
            } else {
              const BatchView v({p->records()->data(), p->records()->size()});
              std::lock_guard lk(mu_);
              auto& next = next_seq_[{v.producer_id(), p->partition()}];
              auto& log = log_[p->partition()];
              if (v.base_sequence() < next) {
                code = wire::ErrorCode::duplicate_sequence;
              } else if (v.base_sequence() > next) {
                code = wire::ErrorCode::out_of_order_sequence;
              } else {
                base = static_cast<std::int64_t>(log.values.size());
                v.for_each_record([&](const RecordView& r) { log.values.emplace_back(r.value.value_or("")); });
                next += static_cast<std::int32_t>(v.record_count());
                if (drop_after_append.fetch_sub(1) == 1) drop = true;
                if (forget_after_append.fetch_sub(1) == 1) next_seq_.clear();
              }
            }
            parts.push_back(wire::CreateProducePartitionResponse(fbb, p->partition(), code, base, 0, hint));
          }
          const auto pv = fbb.CreateVector(parts);
          const auto n = fbb.CreateString(t->name()->str());
          topics.push_back(wire::CreateProduceTopicResponse(fbb, n, pv));
        }
        if (drop) return false;  // written, but the answer is lost with the connection
        if (req->acks() == wire::Acks::none) return true;
        const auto tv = fbb.CreateVector(topics);
        send(s, protocol::finish_response(fbb, wire::CreateProduceResponse(fbb, wire::ErrorCode::none, 0, tv), h));
        return true;
      }
      default:
        send(s, protocol::make_error_response(h, wire::ErrorCode::unknown_api));
        return true;
    }
  }

  int partitions_;
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::vector<std::shared_ptr<asio::ip::tcp::socket>> sockets_;
  std::vector<std::thread> conn_threads_;
  std::map<int, Stored> log_;
  std::map<std::pair<std::int64_t, int>, std::int32_t> next_seq_;  // (producer id, partition)
  std::atomic<std::int64_t> next_pid_{42};
  std::atomic<int> produce_requests_{0};
};

}  // namespace quorumq::testing
