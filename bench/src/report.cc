#include "report.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "json_number.h"

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

using json = nlohmann::ordered_json;  // keys in the order written: settings first, timeline last

json hist_json(const Histogram& h) {
  auto u = [](std::uint64_t ns) { return json_number(static_cast<double>(ns) / 1000.0); };
  return {{"count", h.count()},           {"mean_us", json_number(h.mean() / 1000.0)},
          {"p50_us", u(h.percentile(50))}, {"p90_us", u(h.percentile(90))},
          {"p99_us", u(h.percentile(99))}, {"p99_9_us", u(h.percentile(99.9))},
          {"max_us", u(h.max())}};
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
  out << "  consumed    " << r.consumed;
  if (c.catch_up && r.catch_up_s > 0)
    out << " after producing ended, in " << fmt("%.2f", r.catch_up_s) << " s: "
        << fmt("%.0f", static_cast<double>(r.consumed) / r.catch_up_s) << " msg/s catch-up with the group join, "
        << fmt("%.0f", r.catch_up_read_s > 0 ? static_cast<double>(r.consumed) / r.catch_up_read_s : 0.0)
        << " msg/s from the first message read" << (r.drain_complete ? "" : " (drain timed out)");
  out << "\n";
  if (!r.broker_rss_max.empty()) {
    out << "  broker mem  peak";
    for (const auto& [node, v] : r.broker_rss_max) out << " b" << node << " " << fmt("%.0f", v / 1048576.0) << " MiB";
    out << " (RSS without the LMDB map, sampled each second)\n";
  }
  if (r.elections_started)
    out << "  elections   " << *r.elections_started
        << " started during the load (all brokers and groups; a killed broker counted up to its kill)\n";
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
  json doc;
  doc["settings"] = {{"spawn", c.spawn},
                     {"bootstrap", r.bootstrap},
                     {"duration_s", json_number(c.duration_s)},
                     {"messages", c.messages},
                     {"producers", c.producers},
                     {"consumers", c.consumers},
                     {"size_bytes", c.size_bytes},
                     {"partitions", c.partitions},
                     {"replicas", r.replicas},
                     {"acks", c.acks},
                     {"rate", json_number(c.rate)},
                     {"mode", c.open_loop() ? "open" : "closed"},
                     {"window", c.window},
                     {"keys", c.keys},
                     {"linger_ms", c.linger_ms},
                     {"batch_bytes", c.batch_bytes},
                     {"max_in_flight", c.max_in_flight},
                     {"chaos", c.chaos_text},
                     {"topic", r.topic}};
  doc["machine"] = {{"cores", r.cores},
                    {"brokers", r.brokers},
                    {"loadavg_before", r.loadavg_before},
                    {"loadavg_after", r.loadavg_after},
                    {"fsync_per_s", r.fsync ? json_number(r.fsync->fsyncs_per_s) : json(nullptr)},
                    {"fsync_mean_us", r.fsync ? json_number(r.fsync->mean_us) : json(nullptr)}};
  doc["produce"] = {{"sent", r.sent},
                    {"acked", r.acked},
                    {"failed", r.failed},
                    {"seconds", json_number(r.produce_s)},
                    {"msgs_per_s", json_number(r.msgs_per_s())},
                    {"mb_per_s", json_number(r.mb_per_s())},
                    {"ack_latency", hist_json(r.ack_latency)}};
  doc["consume"] = {{"consumed", r.consumed}, {"e2e_latency", hist_json(r.e2e_latency)}};
  if (r.cfg.catch_up)
    doc["consume"]["catch_up"] = {
        {"seconds", r.catch_up_s},
        {"msgs_per_s", r.catch_up_s > 0 ? static_cast<double>(r.consumed) / r.catch_up_s : 0.0},
        {"read_seconds", r.catch_up_read_s},
        {"read_msgs_per_s", r.catch_up_read_s > 0 ? static_cast<double>(r.consumed) / r.catch_up_read_s : 0.0}};
  json verify_parts = json::array();
  for (const auto& [p, ac] : r.verify.per_partition)
    verify_parts.push_back({{"partition", p}, {"acked", ac.first}, {"consumed", ac.second}});
  doc["verify"] = {{"ran", r.verified},
                   {"drain_complete", r.drain_complete},
                   {"acked", r.verify.acked},
                   {"consumed", r.verify.consumed},
                   {"lost", r.verify.lost},
                   {"duplicated", r.verify.duplicated},
                   {"reordered", r.verify.reordered},
                   {"unacked_consumed", r.verify.unacked_consumed},
                   {"partitions", std::move(verify_parts)}};
  if (r.availability) {
    const auto& a = *r.availability;
    json parts = json::array();
    for (const auto& [p, pp] : a.partitions)
      parts.push_back({{"partition", p},
                       {"faults", pp.faults},
                       {"mttr_mean_s", json_number(pp.mttr_mean_s)},
                       {"mttr_max_s", json_number(pp.mttr_max_s)},
                       {"availability", json_number(pp.availability)}});
    json events = json::array();
    for (const auto& f : r.faults) {
      json windows = json::object();  // partition (as a string key) -> seconds
      for (const auto& [p, w] : f.window_ns) windows[std::to_string(p)] = json_number(static_cast<double>(w) / 1e9);
      events.push_back({{"kind", f.kind},
                        {"broker", f.victim},
                        {"at_s", json_number(static_cast<double>(f.at_ns) / 1e9)},
                        {"windows_s", std::move(windows)}});
    }
    doc["chaos"] = {{"spec", c.chaos_text},
                    {"mtbf_s", json_number(a.mtbf_s)},
                    {"faults", a.faults},
                    {"windows", a.windows},
                    {"unrecovered", a.unrecovered},
                    {"mttr_mean_s", json_number(a.mttr_mean_s)},
                    {"mttr_p99_s", json_number(a.mttr_p99_s)},
                    {"mttr_max_s", json_number(a.mttr_max_s)},
                    {"availability", json_number(a.availability)},
                    {"partitions", std::move(parts)},
                    {"events", std::move(events)},
                    {"notes", r.chaos_notes}};
  } else {
    doc["chaos"] = nullptr;
  }
  {
    json rss = json::object();
    for (const auto& [node, v] : r.broker_rss_max) rss[std::to_string(node)] = v;
    doc["broker_anon_rss_max_bytes"] = rss;
  }
  doc["elections_started"] = r.elections_started ? json(*r.elections_started) : json(nullptr);
  json errors = json::object();
  for (const auto& [what, n] : r.errors) errors[what] = n;
  doc["errors"] = std::move(errors);
  json timeline = json::array();
  for (const auto& s : r.timeline)
    timeline.push_back({{"t", json_number(s.elapsed_s)},
                        {"msgs_per_s", json_number(s.msgs_per_s)},
                        {"mb_per_s", json_number(s.mb_per_s)},
                        {"consumed_per_s", json_number(s.consumed_per_s)},
                        {"ack_p50_us", json_number(s.ack_p50_us)},
                        {"ack_p99_us", json_number(s.ack_p99_us)},
                        {"errors", s.errors},
                        {"in_flight", s.in_flight}});
  doc["timeline"] = std::move(timeline);
  // Error texts come from the network: bytes that are not UTF-8 become U+FFFD, not an exception.
  return doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace quorumq::bench
