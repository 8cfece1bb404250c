#include "load.h"

#include <quorumq/quorumq.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "payload.h"

namespace quorumq::bench {

using namespace std::chrono_literals;

namespace {

Acks parse_acks(const std::string& s) {
  if (s == "none") return Acks::none;
  if (s == "leader") return Acks::leader;
  return Acks::quorum;
}

std::uint64_t share(std::uint64_t total, int parts, int index) {
  return total / static_cast<std::uint64_t>(parts) + (static_cast<std::uint64_t>(index) < total % static_cast<std::uint64_t>(parts) ? 1 : 0);
}

// Closed loop's window of unacknowledged messages. Not std::counting_semaphore: libstdc++'s
// timed acquire spins on sched_yield and then sleeps in growing steps instead of blocking, which
// took CPU from the brokers on this 2-core machine and delayed the next send after an ack (seen
// in scripts/latency_budget.sh traces). A mutex and a condition variable block in the kernel.
class Window {
 public:
  explicit Window(std::uint64_t slots) : free_(slots) {}
  bool acquire_for(std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    if (!cv_.wait_for(lk, timeout, [&] { return free_ > 0; })) return false;
    --free_;
    return true;
  }
  void release() {
    {
      std::lock_guard lk(mu_);
      ++free_;
    }
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::uint64_t free_;
};

}  // namespace

void run_producer(LoadContext& ctx, int index) {
  const BenchConfig& cfg = ctx.cfg;
  ProducerConfig pc;
  pc.bootstrap = ctx.bootstrap;
  cfg.security().apply(pc);
  pc.client_id = "quorumq-bench-p" + std::to_string(index);
  pc.acks = parse_acks(cfg.acks);
  pc.linger_ms = cfg.linger_ms;
  pc.batch_bytes = cfg.batch_bytes;
  pc.max_in_flight = cfg.max_in_flight;
  pc.max_request_bytes = std::max(pc.max_request_bytes, cfg.batch_bytes + 4096);
  // A leader failover must be survived, not reported: retries go on for as long as a run lasts.
  pc.delivery_timeout_ms = 120000;
  auto created = Producer::create(pc);
  if (!created) {
    ctx.errors.add("producer create: " + created.error().to_string());
    return;
  }
  std::unique_ptr<Producer> producer = std::move(*created);

  const std::uint64_t limit = cfg.messages ? share(cfg.messages, cfg.producers, index) : 0;
  const double rate = cfg.open_loop() ? cfg.rate / cfg.producers : 0;
  // Closed loop only: the window of unacknowledged messages. Open loop has none on purpose.
  Window window(std::min<std::uint64_t>(cfg.window, 1u << 30));
  std::string value(cfg.size_bytes, '\0');
  for (std::size_t i = kPayloadHeaderBytes; i < value.size(); ++i) value[i] = static_cast<char>('a' + i % 26);
  std::string key;
  const auto uindex = static_cast<std::uint32_t>(index);

  for (std::uint64_t seq = 0; limit == 0 || seq < limit; ++seq) {
    if (ctx.stop_producing.load(std::memory_order_relaxed)) break;
    std::int64_t due = 0;
    if (rate > 0) {
      due = ctx.start_ns + static_cast<std::int64_t>(static_cast<double>(seq) * 1e9 / rate);
      if (ctx.end_ns && due >= ctx.end_ns) break;
      const std::int64_t wait = due - now_ns();
      if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
    } else {
      // Re-check the stop flags now and then while the window is full (a stalled cluster).
      bool got = false;
      while (!(got = window.acquire_for(100ms)))
        if (ctx.stop_producing.load(std::memory_order_relaxed) || (ctx.end_ns && now_ns() >= ctx.end_ns)) break;
      if (!got) break;
      due = now_ns();
      if (ctx.stop_producing.load(std::memory_order_relaxed) || (ctx.end_ns && due >= ctx.end_ns)) {
        window.release();
        break;
      }
    }
    write_payload_header(value, {ctx.run_id, uindex, seq, due});
    std::optional<std::string_view> k;
    if (cfg.keys) {
      // A fixed spread of keys over the sequence (no RNG on the hot path): seq mod N, mixed.
      key = "k" + std::to_string((seq * 0x9E3779B97F4A7C15ull) % cfg.keys);
      k = key;
    }
    const std::int64_t send_ns = now_ns();
    const bool closed = rate == 0;
    producer->send(ctx.topic, k, value, {}, [&ctx, &window, uindex, seq, due, send_ns, closed](const SendResult& r) {
      const std::int64_t ack_ns = now_ns();
      if (r) {
        ctx.ack_latency.record(ack_ns - due);
        ctx.verifier.on_acked(uindex, seq, r->partition);
        if (ctx.tracker) ctx.tracker->on_ack(r->partition, send_ns, ack_ns);
        ctx.counters.acked.fetch_add(1, std::memory_order_relaxed);
        ctx.counters.acked_bytes.fetch_add(ctx.cfg.size_bytes, std::memory_order_relaxed);
      } else {
        ctx.counters.failed.fetch_add(1, std::memory_order_relaxed);
        ctx.errors.add("produce: " + r.error().to_string());
      }
      if (closed) window.release();
    });
    ctx.counters.sent.fetch_add(1, std::memory_order_relaxed);
  }
  // Every callback refers to `window` on this stack frame: wait for all of them.
  if (!producer->flush(std::chrono::milliseconds(pc.delivery_timeout_ms + 5000)))
    ctx.errors.add("produce: flush timed out");
  producer->close();
}

namespace {

std::unique_ptr<Consumer> make_consumer(LoadContext& ctx, int index, const std::vector<TopicPartition>& mine) {
  ConsumerConfig cc;
  cc.bootstrap = ctx.bootstrap;
  ctx.cfg.security().apply(cc);
  cc.client_id = "quorumq-bench-c" + std::to_string(index);
  cc.group_id = "quorumq-bench-" + std::to_string(ctx.run_id);
  cc.auto_offset_reset = OffsetReset::earliest;
  cc.fetch_max_wait_ms = 100;
  cc.max_poll_records = 2000;
  auto created = Consumer::create(cc);
  if (!created) {
    ctx.errors.add("consumer create: " + created.error().to_string());
    return nullptr;
  }
  // assign(), not subscribe(): a fixed split keeps the measurement free of rebalances (consumer
  // start-up order would otherwise move partitions while the clock runs); quorumq-group-bench
  // measures rebalancing.
  (*created)->assign(mine);
  return std::move(*created);
}

}  // namespace

void run_consumer(LoadContext& ctx, int index) {
  const BenchConfig& cfg = ctx.cfg;
  std::vector<TopicPartition> mine;
  for (int p = index; p < cfg.partitions; p += cfg.consumers) mine.push_back({ctx.topic, p});
  if (mine.empty()) return;
  std::map<std::int32_t, std::int64_t> next_offset;  // where this thread got to, per partition
  // After a watchdog restart the new consumer starts from the beginning (the SDK refuses seek()
  // before the first poll); records below where the old one got to are skipped, not counted.
  std::map<std::int32_t, std::int64_t> resume_at;
  std::unique_ptr<Consumer> consumer = make_consumer(ctx, index, mine);
  if (!consumer) return;
  auto last_progress = std::chrono::steady_clock::now();

  while (!ctx.stop_consuming.load(std::memory_order_relaxed)) {
    auto msgs = consumer->poll(100ms);
    if (!msgs) {
      ctx.counters.consumer_errors.fetch_add(1, std::memory_order_relaxed);
      ctx.errors.add("consume: " + msgs.error().to_string());
      std::this_thread::sleep_for(100ms);
      continue;
    }
    const std::int64_t t = now_ns();
    bool progressed = false;
    for (const Message& m : *msgs) {
      if (auto r = resume_at.find(m.partition); r != resume_at.end() && m.offset < r->second) continue;
      progressed = true;
      next_offset[m.partition] = m.offset + 1;
      auto h = read_payload_header(m.value, ctx.run_id);
      if (!h) continue;  // not this run's message (an existing topic)
      ctx.e2e_latency.record(t - h->intended_ns);
      ctx.verifier.on_consumed(m.partition, h->producer, h->seq);
      ctx.counters.consumed.fetch_add(1, std::memory_order_relaxed);
      ctx.counters.consumed_bytes.fetch_add(m.value.size(), std::memory_order_relaxed);
    }
    const auto now = std::chrono::steady_clock::now();
    if (progressed) {
      last_progress = now;
    } else if (now - last_progress > 3s) {
      // Watchdog for a client bug: after a partition leader was paused (SIGSTOP) and replaced,
      // the SDK consumer stops fetching that partition for good although the new leader serves
      // it (a fresh consumer reads it at once). A consumer with acknowledged messages it has not
      // read, and nothing new for 3 s, is recreated at the offsets it reached, so `lost=` keeps
      // meaning lost. Each restart is counted and reported; the stall stays in the e2e latency.
      bool behind = false;
      for (const auto& tp : mine) behind = behind || ctx.verifier.behind(tp.partition);
      if (behind) {
        ctx.counters.consumer_restarts.fetch_add(1, std::memory_order_relaxed);
        ctx.errors.add("consume: no progress for 3 s with acknowledged messages unread; consumer recreated (SDK stall)");
        consumer->close();
        resume_at = next_offset;
        consumer = make_consumer(ctx, index, mine);
        if (!consumer) return;
      }
      last_progress = now;
    }
  }
  consumer->close();
}

}  // namespace quorumq::bench
