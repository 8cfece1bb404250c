// Crash-test child: opens the data dir (never inherited across fork: opened here, after exec),
// appends batches of random size with several writes in flight, and for each write that
// completed writes one CrashReport to fd 3. The parent kills it with SIGKILL at random moments.
// Usage: quorumq_storage_crash_child DIR SEED
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>

#include "crash_report.h"
#include "quorumq/protocol/record_batch.h"
#include "quorumq/storage/partition_log.h"
#include "quorumq/storage/storage.h"

using namespace quorumq;
using namespace quorumq::storage;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DIR SEED\n", argv[0]);
    return 2;
  }
  StorageOptions o;
  o.dir = argv[1];
  o.map_size_bytes = 256u << 20;
  auto s = Storage::open(o);
  if (!s) {
    std::fprintf(stderr, "crash child: open failed: %s\n", s.error().message.c_str());
    return 1;
  }
  auto log = (*s)->open_log("crash");
  if (!log) {
    std::fprintf(stderr, "crash child: open_log failed: %s\n", log.error().message.c_str());
    return 1;
  }
  std::mt19937_64 rng(std::strtoull(argv[2], nullptr, 10));
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  constexpr int kMaxInFlight = 8;
  for (std::uint64_t n = 0;; ++n) {
    BatchBuilder b;
    const int records = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < records; ++i) {
      // Mostly small values, sometimes big ones that land on LMDB overflow pages.
      const std::size_t len = rng() % 10 == 0 ? 4096 + rng() % 20000 : 16 + rng() % 600;
      std::string v(len, '\0');
      for (auto& c : v) c = static_cast<char>('a' + rng() % 26);
      b.add(std::nullopt, v, static_cast<std::int64_t>(n));
    }
    auto batch = b.finish();
    const std::uint64_t hash = test::fnv1a(std::span(batch).subspan(kCrcStart));
    {
      std::unique_lock lk(mu);
      cv.wait(lk, [&] { return in_flight < kMaxInFlight; });
      ++in_flight;
    }
    std::vector<WriteOp> ops;
    ops.push_back(AppendOp{*log, {std::move(batch)}, term_t{1}});
    (*s)->submit(std::move(ops), [&, hash](std::expected<WriteResult, Error> r) {
      if (!r) {
        std::fprintf(stderr, "crash child: append failed: %s\n", r.error().message.c_str());
        std::_Exit(1);
      }
      const AppendResult& a = r->appends[0];
      const test::CrashReport rep{a.first_index.value, a.base_offset.value, a.next_offset.value, hash};
      if (::write(3, &rep, sizeof rep) != sizeof rep) std::_Exit(1);
      std::lock_guard lk(mu);
      --in_flight;
      cv.notify_all();
    });
  }
}
