// quorumq produce TOPIC: one message per stdin line.
//
// A printer thread reports each message's acknowledgement (partition<TAB>offset with
// --print-offsets, or the error on stderr) in input order as soon as it arrives, and flushes
// stdout before it waits for the next one: a pipe reader sees every acknowledged message at
// once, and SIGINT/SIGTERM stop the input, wait for what was sent, report it, and exit.
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>

#include "commands.h"
#include "output.h"

namespace quorumq::cli {
namespace {

// Lines of stdin, read with read(2) so that SIGINT/SIGTERM interrupt a blocked read (the C++
// streams retry on EINTR). The last line may lack its newline.
class LineReader {
 public:
  // False at the end of the input, on a read error, or once a stop was requested.
  bool next(std::string& line) {
    for (;;) {
      if (const auto nl = buf_.find('\n', scanned_); nl != std::string::npos) {
        line.assign(buf_, 0, nl);
        buf_.erase(0, nl + 1);
        scanned_ = 0;
        return true;
      }
      scanned_ = buf_.size();
      if (eof_ || stop_requested()) break;
      char chunk[65536];
      const ssize_t n = ::read(0, chunk, sizeof chunk);
      if (n > 0) {
        buf_.append(chunk, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        eof_ = true;
      }
    }
    if (buf_.empty() || stop_requested()) return false;
    line = std::move(buf_);
    buf_.clear();
    scanned_ = 0;
    return true;
  }

 private:
  std::string buf_;
  std::size_t scanned_ = 0;
  bool eof_ = false;
};

}  // namespace

int produce(const Global& g, const ProduceOptions& o) {
  Headers headers;
  for (const auto& h : o.headers) {
    auto kv = split_kv(h);
    if (!kv) {
      std::cerr << "error: -H '" << h << "' must be key=value\n";
      return 2;
    }
    headers.push_back(*kv);
  }
  if (o.key && o.key_delimiter) {
    std::cerr << "error: --key and -K/--key-delimiter exclude each other: one key for every message, or a key per "
                 "line\n";
    return 2;
  }
  if (o.key_delimiter && o.key_delimiter->empty()) {
    std::cerr << "error: -K/--key-delimiter must not be empty\n";
    return 2;
  }
  install_stop_handlers();
  // The producer's I/O thread and the printer never take SIGINT/SIGTERM: the main thread,
  // blocked reading stdin, gets them and stops reading.
  std::optional<StopSignalsBlocked> blocked(std::in_place);
  ProducerConfig c;
  apply_global(c, g);
  c.acks = o.acks == "none" ? Acks::none : o.acks == "leader" ? Acks::leader : Acks::quorum;  // "all" = quorum
  c.max_block_ms = 30000;
  auto p = Producer::create(c);
  if (!p) {
    fail("bad configuration", p.error());
    return 2;
  }
  auto& producer = **p;
  std::ios::sync_with_stdio(false);

  struct Pending {
    std::future<SendResult> result;
    std::uint64_t line = 0;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Pending> queue;  // input order
  bool input_done = false;
  std::uint64_t failed = 0, acked = 0;
  std::thread printer([&] {
    for (;;) {
      Pending next;
      {
        std::unique_lock lk(mu);
        if (queue.empty()) std::cout.flush();  // about to wait: nothing stays buffered
        cv.wait(lk, [&] { return !queue.empty() || input_done; });
        if (queue.empty()) break;
        next = std::move(queue.front());
        queue.pop_front();
      }
      if (next.result.wait_for(std::chrono::seconds(0)) != std::future_status::ready) std::cout.flush();
      const SendResult r = next.result.get();
      if (r) {
        ++acked;
        if (g.json && o.print_offsets)
          std::cout << dump({{"line", static_cast<std::int64_t>(next.line)},
                             {"partition", r->partition},
                             {"offset", r->offset}})
                    << '\n';
        else if (o.print_offsets)
          std::cout << r->partition << '\t' << r->offset << '\n';
      } else {
        if (failed < 10)
          std::cerr << "error: message on input line " << next.line
                    << " was not acknowledged: " << r.error().to_string() << "\n";
        ++failed;
      }
    }
    std::cout.flush();
  });
  blocked.reset();

  std::uint64_t line_no = 0;
  std::string line;
  LineReader input;
  while (!stop_requested() && input.next(line)) {
    ++line_no;
    std::optional<std::string_view> key;
    std::string_view value = line;
    if (o.key_delimiter) {
      if (const auto at = line.find(*o.key_delimiter); at != std::string::npos) {
        key = std::string_view(line).substr(0, at);
        value = std::string_view(line).substr(at + o.key_delimiter->size());
      }
    } else if (o.key) {
      key = *o.key;
    }
    auto f = producer.send(o.topic, key, value, headers, o.partition);
    {
      std::lock_guard lk(mu);
      queue.push_back({std::move(f), line_no});
    }
    cv.notify_one();
  }
  const bool interrupted = stop_requested();
  // What was read is sent and its acknowledgements reported, also after SIGINT/SIGTERM (a
  // bounded wait then).
  if (interrupted) {
    if (!producer.flush(std::chrono::seconds(10)))
      std::cerr << "warning: interrupted; messages not acknowledged within 10 s are reported as failed\n";
  } else {
    (void)producer.flush();  // without a timeout it returns once every record is complete
  }
  producer.close(std::chrono::seconds(1));
  {
    std::lock_guard lk(mu);
    input_done = true;
  }
  cv.notify_one();
  printer.join();
  if (interrupted) std::cerr << "interrupted: " << acked << " of " << line_no << " messages acknowledged\n";
  if (failed > 0) {
    std::cerr << "error: " << failed << " of " << line_no << " messages were not acknowledged"
              << (failed > 10 ? " (first 10 shown)" : "") << "\n";
    return 1;
  }
  return 0;
}

}  // namespace quorumq::cli
