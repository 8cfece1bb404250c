// The chaos suite's client program (driven by tests/chaos/chaos.py). Three modes:
//   produce BOOTSTRAP TOPIC ID HISTORY SECONDS RATE [STOPFILE]
//                                                      idempotent acks=quorum producer, until
//                                                      SECONDS pass or STOPFILE appears
//   consume BOOTSTRAP TOPIC GROUP HISTORY STOPFILE     group consumer committing offsets; after
//                                                      STOPFILE appears it drains until idle
//   dump TOPIC PARTITIONS DIR...                       opens stopped brokers' data dirs with
//                                                      quorumq::storage, compares the replicas
//                                                      entry by entry and prints the final log
// Security (chaos.py --secure): TLS and a SASL SCRAM login for produce and consume, from
//   QUORUMQ_CHAOS_TLS_CA_FILE (the CA the brokers' certificate chains to: turns TLS on),
//   QUORUMQ_CHAOS_SASL_USER, QUORUMQ_CHAOS_SASL_PASSWORD. Unset: plain text, no login.
// History lines (one per event, times in ms since the epoch):
//   I t id seq | A t id seq part off | F t id seq error        (producer: invoke/ack/fail)
//   R t part off value | C t part off ok|fail | Q t part off     (consumer: read/commit/query)
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "quorumq/consumer.h"
#include "quorumq/producer.h"
#include "quorumq/protocol/record_batch.h"
#include "quorumq/storage/partition_log.h"
#include "quorumq/storage/storage.h"

using namespace std::chrono_literals;
using namespace quorumq;

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// TLS and SASL settings from the environment (see the top of this file); unset leaves them off.
void apply_security_env(ClientConfig& c) {
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v ? v : "");
  };
  c.tls_ca_file = env("QUORUMQ_CHAOS_TLS_CA_FILE");
  c.tls = !c.tls_ca_file.empty();
  c.sasl_user = env("QUORUMQ_CHAOS_SASL_USER");
  c.sasl_password = env("QUORUMQ_CHAOS_SASL_PASSWORD");
}

class History {
 public:
  explicit History(const std::string& path) : f_(std::fopen(path.c_str(), "a")) {
    if (!f_) throw std::runtime_error("cannot open " + path);
  }
  ~History() { std::fclose(f_); }
  void line(const std::string& s) {
    std::lock_guard lk(mu_);
    std::fprintf(f_, "%s\n", s.c_str());
    std::fflush(f_);
  }

 private:
  std::mutex mu_;
  std::FILE* f_;
};

int produce(const std::string& bootstrap, const std::string& topic, const std::string& id, const std::string& path,
            int seconds, int rate, const std::string& stopfile) {
  History h(path);
  ProducerConfig pc;
  pc.bootstrap = bootstrap;
  pc.client_id = "chaos-" + id;
  pc.acks = Acks::quorum;
  pc.enable_idempotence = true;
  pc.request_timeout_ms = 5000;
  pc.delivery_timeout_ms = 60000;
  pc.max_block_ms = 5000;
  pc.linger_ms = 2;
  apply_security_env(pc);
  auto p = Producer::create(pc);
  if (!p) {
    std::fprintf(stderr, "producer: %s\n", p.error().message.c_str());
    return 2;
  }
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  const auto gap = std::chrono::microseconds(1'000'000 / std::max(rate, 1));
  auto next = std::chrono::steady_clock::now();
  for (std::int64_t seq = 0; std::chrono::steady_clock::now() < end; ++seq) {
    // The driver says when the run is over (its fault phase may outlast any fixed duration).
    if (!stopfile.empty() && seq % 64 == 0 && std::filesystem::exists(stopfile)) break;
    const std::string value = "chaos-" + id + "-" + std::to_string(seq);
    h.line("I " + std::to_string(now_ms()) + " " + id + " " + std::to_string(seq));
    (*p)->send(topic, std::nullopt, value, {}, [&h, id, seq](const SendResult& r) {
      if (r)
        h.line("A " + std::to_string(now_ms()) + " " + id + " " + std::to_string(seq) + " " +
               std::to_string(r->partition) + " " + std::to_string(r->offset));
      else {
        std::string m = r.error().message;
        for (auto& c : m)
          if (c == ' ' || c == '\n') c = '_';
        h.line("F " + std::to_string(now_ms()) + " " + id + " " + std::to_string(seq) + " " + m);
      }
    });
    next += gap;
    std::this_thread::sleep_until(next);
    if (std::chrono::steady_clock::now() > next + 1s) next = std::chrono::steady_clock::now();  // blocked send
  }
  // A record that is not acknowledged by then is reported by its callback (or by close()).
  (void)(*p)->flush(60s);
  (*p)->close(5s);
  return 0;
}

int consume(const std::string& bootstrap, const std::string& topic, const std::string& group, const std::string& path,
            const std::string& stopfile) {
  History h(path);
  ConsumerConfig cc;
  cc.bootstrap = bootstrap;
  cc.client_id = "chaos-consumer";
  cc.group_id = group;
  cc.auto_offset_reset = OffsetReset::earliest;
  cc.enable_auto_commit = false;
  cc.request_timeout_ms = 5000;
  cc.api_timeout_ms = 10000;
  cc.fetch_max_wait_ms = 200;
  // A killed consumer's membership holds its partitions until it expires: keep that short.
  cc.session_timeout_ms = 3000;
  cc.heartbeat_interval_ms = 1000;
  apply_security_env(cc);
  auto c = Consumer::create(cc);
  if (!c) {
    std::fprintf(stderr, "consumer: %s\n", c.error().message.c_str());
    return 2;
  }
  (*c)->subscribe({topic});
  std::map<int, std::int64_t> next;  // partition -> offset after the last read
  std::optional<std::chrono::steady_clock::time_point> draining, last_read;
  auto last_query = std::chrono::steady_clock::now();
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_query > 2s) {  // what the broker says is committed: must never go backwards
      last_query = now;
      for (auto [p, o] : next) {
        auto q = (*c)->committed(TopicPartition{topic, p});
        if (q) h.line("Q " + std::to_string(now_ms()) + " " + std::to_string(p) + " " + std::to_string(*q));
      }
    }
    if (!draining && std::filesystem::exists(stopfile)) draining = now, last_read = now;
    if (draining && (now - *last_read > 8s || now - *draining > 90s)) break;
    auto msgs = (*c)->poll(300ms);
    if (!msgs) {
      std::this_thread::sleep_for(100ms);
      continue;
    }
    if (msgs->empty()) continue;
    last_read = std::chrono::steady_clock::now();
    const auto t = std::to_string(now_ms());
    for (const auto& m : *msgs) {
      h.line("R " + t + " " + std::to_string(m.partition) + " " + std::to_string(m.offset) + " " + m.value);
      next[m.partition] = std::max(next[m.partition], m.offset + 1);
    }
    std::vector<TopicPartitionOffset> offs;
    for (auto [p, o] : next) offs.push_back({topic, p, o});
    const auto committed = (*c)->commit(offs);
    for (auto [p, o] : next)
      h.line("C " + std::to_string(now_ms()) + " " + std::to_string(p) + " " + std::to_string(o) +
             (committed ? " ok" : " fail"));
  }
  (*c)->close();
  return 0;
}

// Prints "RANGE replica part first last", "DIVERGE part index replica" and the final log
// "REC part off value" (from entries every replica holds, plus a longer replica's tail).
int dump(const std::string& topic, int partitions, const std::vector<std::string>& dirs) {
  std::vector<std::unique_ptr<storage::Storage>> stores;
  for (const auto& d : dirs) {
    storage::StorageOptions o;
    o.dir = d;
    o.create_if_missing = false;
    auto s = storage::Storage::open(o);
    if (!s) {
      std::printf("ERROR open %s: %s\n", d.c_str(), s.error().message.c_str());
      return 2;
    }
    stores.push_back(std::move(*s));
  }
  int divergent = 0;
  for (int p = 0; p < partitions; ++p) {
    const std::string name = topic + "/" + std::to_string(p);
    std::vector<storage::PartitionLog*> logs;
    for (std::size_t r = 0; r < stores.size(); ++r) {
      auto l = stores[r]->open_log(name);
      if (!l) {
        std::printf("ERROR log %s on replica %zu\n", name.c_str(), r + 1);
        return 2;
      }
      logs.push_back(*l);
      std::printf("RANGE %zu %d %llu %llu\n", r + 1, p, (unsigned long long)(*l)->state().first_index.value,
                  (unsigned long long)(*l)->state().last_index.value);
    }
    std::uint64_t lo = 0, hi_all = 0;
    for (auto* l : logs) {
      lo = std::max(lo, l->state().first_index.value);
      hi_all = std::max(hi_all, l->state().last_index.value);
    }
    for (std::uint64_t i = lo; i <= hi_all && i > 0; ++i) {
      std::optional<std::vector<std::uint8_t>> ref;
      for (std::size_t r = 0; r < logs.size(); ++r) {
        if (i > logs[r]->state().last_index.value) continue;
        auto e = logs[r]->entries(log_index{i}, log_index{i}, 1);
        if (!e || e->empty()) {
          std::printf("DIVERGE %d %llu %zu unreadable\n", p, (unsigned long long)i, r + 1);
          ++divergent;
          continue;
        }
        if (!ref) {
          ref = e->front().batch;
          BatchView v(*ref);
          if (v.type() == BatchType::data)
            v.for_each_record([&](const RecordView& rv) {
              std::printf("REC %d %lld %.*s\n", p, (long long)rv.offset, rv.value ? (int)rv.value->size() : 0,
                          rv.value ? rv.value->data() : "");
            });
        } else if (e->front().batch != *ref) {
          std::printf("DIVERGE %d %llu %zu\n", p, (unsigned long long)i, r + 1);
          ++divergent;
        }
      }
    }
  }
  std::printf("DONE divergent=%d\n", divergent);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  try {
    if ((a.size() == 7 || a.size() == 8) && a[0] == "produce")
      return produce(a[1], a[2], a[3], a[4], std::stoi(a[5]), std::stoi(a[6]), a.size() == 8 ? a[7] : std::string());
    if (a.size() == 6 && a[0] == "consume") return consume(a[1], a[2], a[3], a[4], a[5]);
    if (a.size() >= 4 && a[0] == "dump") return dump(a[1], std::stoi(a[2]), {a.begin() + 3, a.end()});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chaos_client: %s\n", e.what());
    return 2;
  }
  std::fprintf(stderr, "usage: see the comment at the top of tests/chaos/chaos_client.cc\n");
  return 2;
}
