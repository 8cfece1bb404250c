#include "report.h"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace quorumq::bench {

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string us(std::uint64_t ns) {
  const double u = static_cast<double>(ns) / 1000.0;
  if (u >= 10000) return fmt("%.0f ms", u / 1000);
  if (u >= 1000) return fmt("%.2f ms", u / 1000);
  return fmt("%.0f us", u);
}

void latency_row(std::ostream& out, const char* name, const Histogram& h) {
  out << "  " << name;
  if (h.count() == 0) {
    out << "  (none)\n";
    return;
  }
  out << "  p50 " << us(h.percentile(50)) << "  p90 " << us(h.percentile(90)) << "  p99 " << us(h.percentile(99))
      << "  p99.9 " << us(h.percentile(99.9)) << "  max " << us(h.max()) << "  (n=" << h.count() << ")\n";
}

// Minimal JSON writing: keys are ours (no escaping needed), strings from errors are escaped.
std::string esc(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += c;
    else if (static_cast<unsigned char>(c) < 0x20) {
      char u[8];
      std::snprintf(u, sizeof u, "\\u%04x", static_cast<unsigned>(c));
      o += u;
    }
    else o += c;
  }
  return o + "\"";
}

std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  return fmt("%.6g", v);
}

std::string hist_json(const Histogram& h) {
  std::ostringstream o;
  auto u = [](std::uint64_t ns) { return num(static_cast<double>(ns) / 1000.0); };
  o << "{\"count\":" << h.count() << ",\"mean_us\":" << num(h.mean() / 1000.0) << ",\"p50_us\":" << u(h.percentile(50))
    << ",\"p90_us\":" << u(h.percentile(90)) << ",\"p99_us\":" << u(h.percentile(99))
    << ",\"p99_9_us\":" << u(h.percentile(99.9)) << ",\"max_us\":" << u(h.max()) << "}";
  return o.str();
}

}  // namespace

void print_live(std::ostream& out, const Sample& s) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "[%6.1fs] %9.0f msg/s %8.2f MB/s  ack p50 %8.0f us p99 %8.0f us  consumed %9.0f/s  errors %llu  in-flight %llu\n",
                s.elapsed_s, s.msgs_per_s, s.mb_per_s, s.ack_p50_us, s.ack_p99_us, s.consumed_per_s,
                static_cast<unsigned long long>(s.errors), static_cast<unsigned long long>(s.in_flight));
  out << buf << std::flush;
}

void print_summary(std::ostream& out, const Report& r) {
  const BenchConfig& c = r.cfg;
  out << "\n== quorumq-bench summary ==\n";
  out << "  cluster     " << (c.spawn ? "spawned " + std::to_string(c.spawn) + " broker(s)" : "bootstrap " + r.bootstrap)
      << ", topic " << r.topic << " (" << c.partitions << " partitions x " << r.replicas << " replicas), " << r.cores
      << " cores, loadavg before " << r.loadavg_before << " after " << r.loadavg_after << "\n";
  out << "  workload    " << c.producers << " producer(s), " << c.consumers << " consumer(s), " << c.size_bytes
      << " B, acks=" << c.acks << ", keys=" << (c.keys ? std::to_string(c.keys) : "none") << ", linger " << c.linger_ms
      << " ms, batch " << c.batch_bytes << " B, in-flight " << c.max_in_flight << ", "
      << (c.open_loop() ? "open loop at " + fmt("%.0f", c.rate) + " msg/s" : "closed loop, window " + std::to_string(c.window)) << "\n";
  if (r.fsync)
    out << "  disk        fsync ceiling " << fmt("%.0f", r.fsync->fsyncs_per_s) << " fsyncs/s (" << fmt("%.0f", r.fsync->mean_us)
        << " us each)\n";
  else
    out << "  disk        fsync ceiling unknown: " << r.fsync_error << "\n";
  out << "  produced    " << r.acked << " acked, " << r.failed << " failed of " << r.sent << " sent in " << fmt("%.2f", r.produce_s)
      << " s: " << fmt("%.0f", r.msgs_per_s()) << " msg/s, " << fmt("%.2f", r.mb_per_s()) << " MB/s\n";
  latency_row(out, "ack latency", r.ack_latency);
  latency_row(out, "end-to-end ", r.e2e_latency);
  out << "  consumed    " << r.consumed << "\n";
  if (r.availability) {
    const auto& a = *r.availability;
    out << "  chaos       " << c.chaos_text << ": " << a.faults << " fault(s), " << a.windows << " partition outage(s)"
        << (a.unrecovered ? " (" + std::to_string(a.unrecovered) + " not recovered by the end)" : "") << "\n";
    out << "  MTTR        mean " << fmt("%.3f", a.mttr_mean_s) << " s  p99 " << fmt("%.3f", a.mttr_p99_s) << " s  max "
        << fmt("%.3f", a.mttr_max_s) << " s;  MTBF " << fmt("%.1f", a.mtbf_s) << " s\n";
    out << "  availability " << fmt("%.5f", a.availability) << " overall;";
    for (const auto& [p, pp] : a.partitions)
      out << " p" << p << "=" << fmt("%.5f", pp.availability) << " (" << pp.faults << " faults)";
    out << "\n";
    for (const auto& f : r.faults) {
      out << "    at " << fmt("%7.2f", static_cast<double>(f.at_ns) / 1e9) << " s " << f.kind << " broker " << f.victim << ":";
      for (const auto& [p, w] : f.window_ns) out << " p" << p << " " << fmt("%.3f", static_cast<double>(w) / 1e9) << " s";
      out << "\n";
    }
    for (const auto& n : r.chaos_notes) out << "    note: " << n << "\n";
  }
  if (!r.errors.empty()) {
    out << "  errors\n";
    int shown = 0;
    for (const auto& [what, n] : r.errors) {
      if (++shown > 8) break;
      out << "    " << n << " x " << what << "\n";
    }
  }
  if (r.verified) {
    out << "  verify      lost=" << r.verify.lost << " duplicated=" << r.verify.duplicated << " reordered=" << r.verify.reordered
        << "  (acked " << r.verify.acked << ", consumed " << r.verify.consumed << ", written but unacked "
        << r.verify.unacked_consumed << (r.drain_complete ? "" : ", drain timed out") << ")\n";
    if (!r.verify.ok()) {
      out << "  per partition (acked / consumed):";
      for (const auto& [p, ac] : r.verify.per_partition) out << " p" << p << " " << ac.first << "/" << ac.second;
      out << "\n";
    }
  } else {
    out << "  verify      skipped (no consumers)\n";
  }
}

std::string to_json(const Report& r) {
  const BenchConfig& c = r.cfg;
  std::ostringstream o;
  o << "{\n\"settings\":{\"spawn\":" << c.spawn << ",\"bootstrap\":" << esc(r.bootstrap) << ",\"duration_s\":" << num(c.duration_s)
    << ",\"messages\":" << c.messages << ",\"producers\":" << c.producers << ",\"consumers\":" << c.consumers
    << ",\"size_bytes\":" << c.size_bytes << ",\"partitions\":" << c.partitions << ",\"replicas\":" << r.replicas
    << ",\"acks\":" << esc(c.acks) << ",\"rate\":" << num(c.rate) << ",\"mode\":" << esc(c.open_loop() ? "open" : "closed")
    << ",\"window\":" << c.window << ",\"keys\":" << c.keys << ",\"linger_ms\":" << c.linger_ms
    << ",\"batch_bytes\":" << c.batch_bytes << ",\"max_in_flight\":" << c.max_in_flight << ",\"chaos\":" << esc(c.chaos_text)
    << ",\"topic\":" << esc(r.topic) << "},\n";
  o << "\"machine\":{\"cores\":" << r.cores << ",\"brokers\":" << r.brokers << ",\"loadavg_before\":" << esc(r.loadavg_before)
    << ",\"loadavg_after\":" << esc(r.loadavg_after) << ",\"fsync_per_s\":" << (r.fsync ? num(r.fsync->fsyncs_per_s) : "null")
    << ",\"fsync_mean_us\":" << (r.fsync ? num(r.fsync->mean_us) : "null") << "},\n";
  o << "\"produce\":{\"sent\":" << r.sent << ",\"acked\":" << r.acked << ",\"failed\":" << r.failed
    << ",\"seconds\":" << num(r.produce_s) << ",\"msgs_per_s\":" << num(r.msgs_per_s()) << ",\"mb_per_s\":" << num(r.mb_per_s())
    << ",\"ack_latency\":" << hist_json(r.ack_latency) << "},\n";
  o << "\"consume\":{\"consumed\":" << r.consumed << ",\"e2e_latency\":" << hist_json(r.e2e_latency) << "},\n";
  o << "\"verify\":{\"ran\":" << (r.verified ? "true" : "false") << ",\"drain_complete\":" << (r.drain_complete ? "true" : "false")
    << ",\"acked\":" << r.verify.acked << ",\"consumed\":" << r.verify.consumed << ",\"lost\":" << r.verify.lost
    << ",\"duplicated\":" << r.verify.duplicated << ",\"reordered\":" << r.verify.reordered
    << ",\"unacked_consumed\":" << r.verify.unacked_consumed << ",\"partitions\":[";
  {
    bool first = true;
    for (const auto& [p, ac] : r.verify.per_partition) {
      o << (first ? "" : ",") << "{\"partition\":" << p << ",\"acked\":" << ac.first << ",\"consumed\":" << ac.second << "}";
      first = false;
    }
  }
  o << "]},\n";
  o << "\"chaos\":";
  if (r.availability) {
    const auto& a = *r.availability;
    o << "{\"spec\":" << esc(c.chaos_text) << ",\"mtbf_s\":" << num(a.mtbf_s) << ",\"faults\":" << a.faults
      << ",\"windows\":" << a.windows << ",\"unrecovered\":" << a.unrecovered << ",\"mttr_mean_s\":" << num(a.mttr_mean_s)
      << ",\"mttr_p99_s\":" << num(a.mttr_p99_s) << ",\"mttr_max_s\":" << num(a.mttr_max_s)
      << ",\"availability\":" << num(a.availability) << ",\"partitions\":[";
    bool first = true;
    for (const auto& [p, pp] : a.partitions) {
      o << (first ? "" : ",") << "{\"partition\":" << p << ",\"faults\":" << pp.faults << ",\"mttr_mean_s\":" << num(pp.mttr_mean_s)
        << ",\"mttr_max_s\":" << num(pp.mttr_max_s) << ",\"availability\":" << num(pp.availability) << "}";
      first = false;
    }
    o << "],\"events\":[";
    first = true;
    for (const auto& f : r.faults) {
      o << (first ? "" : ",") << "{\"kind\":" << esc(f.kind) << ",\"broker\":" << f.victim
        << ",\"at_s\":" << num(static_cast<double>(f.at_ns) / 1e9) << ",\"windows_s\":{";
      bool f2 = true;
      for (const auto& [p, w] : f.window_ns) {
        o << (f2 ? "" : ",") << "\"" << p << "\":" << num(static_cast<double>(w) / 1e9);
        f2 = false;
      }
      o << "}}";
      first = false;
    }
    o << "],\"notes\":[";
    first = true;
    for (const auto& n : r.chaos_notes) o << (first ? "" : ",") << esc(n), first = false;
    o << "]}";
  } else {
    o << "null";
  }
  o << ",\n\"errors\":{";
  bool first = true;
  for (const auto& [what, n] : r.errors) o << (first ? "" : ",") << esc(what) << ":" << n, first = false;
  o << "},\n\"timeline\":[";
  first = true;
  for (const auto& s : r.timeline) {
    o << (first ? "\n" : ",\n") << "{\"t\":" << num(s.elapsed_s) << ",\"msgs_per_s\":" << num(s.msgs_per_s)
      << ",\"mb_per_s\":" << num(s.mb_per_s) << ",\"consumed_per_s\":" << num(s.consumed_per_s)
      << ",\"ack_p50_us\":" << num(s.ack_p50_us) << ",\"ack_p99_us\":" << num(s.ack_p99_us) << ",\"errors\":" << s.errors
      << ",\"in_flight\":" << s.in_flight << "}";
    first = false;
  }
  o << "]\n}\n";
  return o.str();
}

}  // namespace quorumq::bench
