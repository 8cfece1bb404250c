// The /metrics page (Prometheus text format 0.0.4): the broker's counters and gauges, per
// partition and per group figures, and the standard process metrics.
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "server_impl.h"

namespace quorumq::broker {

namespace {
// A Prometheus label value (text format 0.0.4): backslash, double quote and newline escaped, so
// no name a client chose (a group id, say) can break the page.
std::string label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (const char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}
}  // namespace

// The standard process metrics (Prometheus client conventions), from /proc/self.
static void render_process_metrics(std::string& out) {
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  std::ifstream stat("/proc/self/stat");
  std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto rp = all.rfind(')');
  std::vector<std::string> f;
  if (rp != std::string::npos) {
    std::istringstream rest(all.substr(rp + 2));
    for (std::string x; rest >> x;) f.push_back(x);
  }
  // Fields after the command name, numbered from 3 (state) as in proc(5).
  auto field = [&](std::size_t n) { return n - 3 < f.size() ? std::stod(f[n - 3]) : 0.0; };
  std::size_t fds = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec))
    ++fds;
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  const double boot = [] {
    std::ifstream s("/proc/stat");
    for (std::string line; std::getline(s, line);)
      if (line.starts_with("btime ")) return std::stod(line.substr(6));
    return 0.0;
  }();
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "# HELP process_cpu_seconds_total User and system CPU time\n# TYPE process_cpu_seconds_total counter\n"
                "process_cpu_seconds_total %.2f\n"
                "# HELP process_resident_memory_bytes Resident memory\n# TYPE process_resident_memory_bytes gauge\n"
                "process_resident_memory_bytes %.0f\n"
                "# HELP process_virtual_memory_bytes Virtual memory (the LMDB map counts in full)\n"
                "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %.0f\n"
                "# HELP process_open_fds Open file descriptors\n# TYPE process_open_fds gauge\nprocess_open_fds %zu\n"
                "# HELP process_max_fds File descriptor limit\n# TYPE process_max_fds gauge\nprocess_max_fds %llu\n"
                "# HELP process_start_time_seconds Start time since the epoch\n# TYPE process_start_time_seconds gauge\n"
                "process_start_time_seconds %.2f\n",
                (field(14) + field(15)) / tick, field(24) * page, field(23), fds,
                static_cast<unsigned long long>(rl.rlim_cur), boot + field(22) / tick);
  out += buf;
  // Resident memory minus mapped files: the LMDB map's pages count in RSS as the log is read and
  // written (gigabytes, reclaimable page cache), so RSS alone hides what the broker itself holds.
  double anon = 0;
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.starts_with("RssAnon:")) {
      anon = std::stod(line.substr(8)) * 1024;  // "RssAnon:   1234 kB"
      break;
    }
  std::snprintf(buf, sizeof buf,
                "# HELP quorumq_process_anon_memory_bytes Resident memory that is not a mapped file (heap, stacks): RSS without the LMDB map\n"
                "# TYPE quorumq_process_anon_memory_bytes gauge\nquorumq_process_anon_memory_bytes %.0f\n",
                anon);
  out += buf;
}

std::string Server::Impl::render_metrics() const {
  std::string out;
  out.reserve(8192);
  auto counter = [&](const char* name, const char* help, std::uint64_t v, const char* type = "counter") {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
           std::to_string(v) + "\n";
  };
  const auto& m = metrics;
  counter("quorumq_connections_accepted_total", "Client connections accepted", m.connections_accepted);
  counter("quorumq_connections_open", "Client connections open", static_cast<std::uint64_t>(std::max<std::int64_t>(0, m.connections_open)), "gauge");
  counter("quorumq_connections_refused_total", "Connections refused by --max-connections", m.connections_refused);
  counter("quorumq_bad_frames_total", "Malformed, oversized or unverifiable frames (connection closed)", m.bad_frames);
  counter("quorumq_tls_handshake_failures_total",
          "Client and Kafka connections closed because their TLS handshake failed (plain text, untrusted or no "
          "certificate, timeout)",
          m.tls_handshake_failures);
  counter("quorumq_tls_reloads_total", "Successful reloads of the TLS certificates (SIGHUP)", m.tls_reloads);
  counter("quorumq_tls_reload_failures_total", "SIGHUP reloads that failed (the previous certificates stay in use)",
          m.tls_reload_failures);
  counter("quorumq_tls_certificate_not_after_seconds",
          "When the client listeners' TLS certificate expires (Unix time; 0 without TLS): alert well before",
          static_cast<std::uint64_t>(std::max<std::int64_t>(0, m.tls_certificate_not_after.load())), "gauge");
  counter("quorumq_sasl_authentications_total", "SASL SCRAM logins that succeeded (client and Kafka listeners)",
          m.sasl_authentications);
  counter("quorumq_sasl_authentication_failures_total",
          "SASL logins refused (wrong password, unknown user, malformed or replayed exchange)",
          m.sasl_authentication_failures);
  counter("quorumq_authorization_failures_total", "Requests refused by the ACLs", m.authorization_failures);
  counter("quorumq_admin_auth_failures_total",
          "Admin HTTP requests refused for a missing or wrong bearer token (--admin-token-file)", m.admin_auth_failures);
  counter("quorumq_connection_buffered_bytes",
          "Bytes client connections make the broker hold (requests in flight, unread answers, frame buffers); "
          "capped by --max-buffered-bytes",
          static_cast<std::uint64_t>(std::max<std::int64_t>(0, buffered_bytes.load())), "gauge");
  counter("quorumq_connections_backpressured_total",
          "Times a connection stopped being read because it (or the broker) held its budget of bytes",
          m.connections_backpressured);
  counter("quorumq_connections_write_timeouts_total",
          "Connections closed because the client read none of its answers for --write-timeout-ms",
          m.connections_write_timeouts);
  counter("quorumq_accept_errors_total", "Failed accepts (e.g. out of file descriptors), retried with backoff",
          m.accept_errors);
  counter("quorumq_produce_requests_total", "Produce requests", m.produce_requests);
  counter("quorumq_produce_records_total", "Records received in produce requests", m.produce_records);
  counter("quorumq_produce_bytes_total", "Record batch bytes received", m.produce_bytes);
  counter("quorumq_produce_errors_total", "Partition produce results with an error", m.produce_errors);
  counter("quorumq_produce_duplicates_total", "Retried idempotent batches recognised and not written again", m.produce_duplicates);
  counter("quorumq_fetch_requests_total", "Fetch requests", m.fetch_requests);
  counter("quorumq_produce_timeouts_total",
          "Partitions of produce requests answered when timeout_ms ran out (request_timed_out or disk_full)",
          m.produce_timeouts);
  counter("quorumq_storage_disk_full", "1 while the data directory's disk is full (writes fail; reads go on)",
          ctx.storage.disk_full() ? 1 : 0, "gauge");
  counter("quorumq_log_verifying_partitions",
          "Raft groups whose stored log is still being CRC-checked in the background after a restart (they do not "
          "stand for leader until done)",
          ctx.replication.verifying_count(), "gauge");
  counter("quorumq_fetch_wakeups_total", "Long-poll fetches woken by a high-watermark move (never by a timer loop)",
          m.fetch_wakeups);
  counter("quorumq_fetch_bytes_total", "Record batch bytes served", m.fetch_bytes);
  counter("quorumq_fetch_errors_total", "Partition fetch results with an error", m.fetch_errors);
  counter("quorumq_offset_commits_total", "Offset commit requests", m.offset_commits);
  counter("quorumq_offset_commits_fenced_total",
          "Partition commits refused because the group member does not own the partition (stale or removed member)",
          m.offset_commits_fenced);
  {
    // Consumer groups, as applied from the controller log (the same on every broker).
    const auto groups_now = groups.all();
    out += "# HELP quorumq_group_members Members of each consumer group\n# TYPE quorumq_group_members gauge\n";
    for (const auto& g : groups_now)
      out += "quorumq_group_members{group=\"" + label(g.name) + "\"} " + std::to_string(g.members.size()) + "\n";
    out += "# HELP quorumq_group_generation Generation of each consumer group (+1 per replicated change)\n"
           "# TYPE quorumq_group_generation gauge\n";
    for (const auto& g : groups_now)
      out += "quorumq_group_generation{group=\"" + label(g.name) + "\"} " + std::to_string(g.generation) + "\n";
  }
  counter("quorumq_other_requests_total", "Other requests (metadata, admin, offsets)", m.other_requests);
  m.produce_latency.render(out, "quorumq_produce_latency_seconds", "Produce request latency until the answer");
  m.fetch_latency.render(out, "quorumq_fetch_latency_seconds", "Fetch request latency including long-poll waits");
  const auto st = ctx.storage.stats();
  counter("quorumq_storage_commits_total", "Group commits (durable LMDB transactions)", st.commits);
  counter("quorumq_storage_writes_total", "Writes (appends, offset commits, ...) carried by commits", st.writes);
  counter("quorumq_storage_failed_writes_total", "Writes that failed", st.failed_writes);
  counter("quorumq_storage_appended_batches_total", "Record batches appended", st.appended_batches);
  counter("quorumq_storage_appended_bytes_total", "Record batch bytes appended", st.appended_bytes);
  counter("quorumq_storage_map_resizes_total", "LMDB map size doublings", st.map_resizes);
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "# HELP quorumq_storage_appends_per_commit Mean writes carried by one group commit\n"
                "# TYPE quorumq_storage_appends_per_commit gauge\nquorumq_storage_appends_per_commit %.3f\n",
                st.commits ? static_cast<double>(st.writes) / static_cast<double>(st.commits) : 0.0);
  out += buf;
  std::snprintf(buf, sizeof buf,
                "# HELP quorumq_storage_commit_seconds_total Time spent committing (syncing)\n"
                "# TYPE quorumq_storage_commit_seconds_total counter\nquorumq_storage_commit_seconds_total %.6f\n",
                static_cast<double>(st.commit_ns_total) / 1e9);
  out += buf;
  counter("quorumq_storage_used_bytes", "Bytes of the LMDB data file in use", ctx.storage.used_bytes(), "gauge");
  std::error_code ec;
  const auto space = std::filesystem::space(ctx.storage.dir(), ec);
  if (!ec) counter("quorumq_storage_free_bytes", "Free bytes on the data directory's filesystem", space.available, "gauge");
  const auto topics = ctx.topics.list();
  std::size_t parts = 0;
  for (const auto& t : topics)
    for (const auto& p : t->partitions) parts += p != nullptr;
  counter("quorumq_partitions", "Partitions hosted on this broker", parts, "gauge");
  std::size_t led = 0, ready_led = 0;
  for (const auto& t : topics)
    for (const auto& p : t->partitions)
      if (p && p->group() && p->group()->is_leader()) ++led, ready_led += p->serving();
  counter("quorumq_partitions_led", "Partitions this broker leads", led, "gauge");
  std::uint64_t elections_started = 0, elections_won = 0;  // controller + hosted partitions
  std::uint64_t votes_withheld = 0, lost_state = 0, recovering = 0;
  auto add_group_counts = [&](const ReplicatedLog* g) {
    if (!g) return;
    elections_started += g->elections_started(), elections_won += g->elections_won();
    votes_withheld += g->votes_withheld(), lost_state += g->lost_state(), recovering += g->recovering();
  };
  add_group_counts(controller.group());
  for (const auto& t : topics)
    for (const auto& p : t->partitions)
      if (p) add_group_counts(p->group());
  counter("quorumq_raft_elections_started_total", "Raft elections this broker started (turned candidate), all groups",
          elections_started);
  counter("quorumq_raft_elections_won_total", "Raft elections this broker won (turned leader), all groups", elections_won);
  counter("quorumq_raft_votes_withheld_total",
          "Votes refused because this broker started with an empty data directory and had not caught up yet",
          votes_withheld);
  counter("quorumq_raft_groups_lost_state",
          "Groups (controller + partitions) that do not vote yet: this broker lost its data directory (or does "
          "not know yet whether it did) and they have not caught up with a leader",
          lost_state, "gauge");
  counter("quorumq_raft_groups_recovering",
          "Groups re-fetching a log cut at a damaged entry (non-voting until they hold what they held before)",
          recovering, "gauge");
  const auto ps = transport.stats();
  counter("quorumq_replication_dropped_messages_total", "Raft messages dropped by full or broken peer links",
          ps.dropped_messages);
  counter("quorumq_peer_links_inbound", "Authenticated inbound peer links (one per peer broker)", ps.inbound_open,
          "gauge");
  counter("quorumq_peer_handshakes_accepted_total", "Peer handshakes completed (inbound and outbound)",
          ps.handshakes_accepted);
  counter("quorumq_peer_handshakes_refused_total",
          "Peer handshakes refused (other cluster, wrong secret, unknown or duplicate node id, timeout)",
          ps.handshakes_refused);
  counter("quorumq_peer_connections_refused_total", "Peer-listener connections refused (over its budget)",
          ps.connections_refused);
  counter("quorumq_peer_frames_rejected_total", "Malformed or unexpected frames on peer links (link closed)",
          ps.frames_rejected);
  counter("quorumq_peer_tls_handshake_failures_total",
          "Peer-link TLS handshakes that failed, inbound and outbound (plain text, untrusted or no certificate)",
          ps.tls_handshake_failures);
  counter("quorumq_peer_tls_identity_failures_total",
          "Peer links refused because the certificate does not name the node (quorumq-node-<id>) the other end "
          "claims or was meant to be",
          ps.tls_identity_failures);
  counter("quorumq_peer_tls_certificate_not_after_seconds",
          "Expiry of this broker's peer certificate (Unix time; 0 without peer TLS)",
          static_cast<std::uint64_t>(std::max<std::int64_t>(0, ps.tls_not_after)), "gauge");
  std::uint64_t raft_rejected = replication.rejected_messages();
  raft_rejected += controller.group() ? controller.group()->messages_rejected() : 0;
  for (const auto& t : topics)
    for (const auto& p : t->partitions)
      if (p && p->group()) raft_rejected += p->group()->messages_rejected();
  counter("quorumq_raft_messages_rejected_total",
          "Raft messages dropped as impossible (misaddressed, not from the authenticated peer, malformed, a log "
          "reset not from the current leader)",
          raft_rejected);
  out += "# HELP quorumq_partition_leader 1 if this broker leads the partition\n# TYPE quorumq_partition_leader gauge\n";
  for (const auto& t : topics)
    for (const auto& p : t->partitions)
      if (p && p->group())
        out += "quorumq_partition_leader{topic=\"" + label(t->name) + "\",partition=\"" + std::to_string(p->id()) + "\"} " +
               (p->group()->is_leader() ? "1\n" : "0\n");
  out += "# HELP quorumq_partition_follower_lag_entries Leader's view of how many entries each follower lacks\n"
         "# TYPE quorumq_partition_follower_lag_entries gauge\n";
  std::size_t under = 0;
  std::string isr_lines;
  for (const auto& t : topics)
    for (const auto& p : t->partitions) {
      if (!p || !p->group() || !p->group()->is_leader()) continue;
      const auto last = p->log()->state().last_index.value;
      for (const auto& [n, match] : p->group()->follower_match()) {
        if (n.value == config.node_id) continue;
        const auto lag = last > match ? last - match : 0;
        out += "quorumq_partition_follower_lag_entries{topic=\"" + label(t->name) + "\",partition=\"" + std::to_string(p->id()) +
               "\",follower=\"" + std::to_string(n.value) + "\"} " + std::to_string(lag) + "\n";
      }
      const auto isr = p->group()->isr().size();
      under += isr < p->replicas().size();
      isr_lines += "quorumq_partition_isr_size{topic=\"" + label(t->name) + "\",partition=\"" + std::to_string(p->id()) +
                   "\"} " + std::to_string(isr) + "\n";
    }
  out += "# HELP quorumq_partition_isr_size In-sync replicas of each led partition (leader included)\n"
         "# TYPE quorumq_partition_isr_size gauge\n" + isr_lines;
  counter("quorumq_under_replicated_partitions",
          "Led partitions with a replica out of the in-sync replicas (not caught up within --replica-lag-max-ms)",
          under, "gauge");
  out += "# HELP quorumq_partition_high_watermark Committed end offset per partition\n"
         "# TYPE quorumq_partition_high_watermark gauge\n";
  for (const auto& t : topics)
    for (const auto& p : t->partitions)
      if (p) out += "quorumq_partition_high_watermark{topic=\"" + label(t->name) + "\",partition=\"" + std::to_string(p->id()) +
             "\"} " + std::to_string(p->high_watermark()) + "\n";
  out += "# HELP quorumq_partition_log_start_offset First offset still stored per partition\n"
         "# TYPE quorumq_partition_log_start_offset gauge\n";
  for (const auto& t : topics)
    for (const auto& p : t->partitions)
      if (p) out += "quorumq_partition_log_start_offset{topic=\"" + label(t->name) + "\",partition=\"" + std::to_string(p->id()) +
             "\"} " + std::to_string(p->log_start_offset()) + "\n";
  if (const auto* cg = controller.group()) {
    const auto cs = cg->log()->state();
    counter("quorumq_controller_log_entries",
            "Entries in this broker's copy of the controller log (compacted by checkpoints: follows the "
            "cluster's state, not its history)",
            cs.empty() ? 0 : cs.last_index.value - cs.first_index.value + 1, "gauge");
  }
  counter("quorumq_controller_checkpoints_total", "Controller checkpoints applied (each lets the log before it go)",
          controller.checkpoints_applied());
  std::size_t behind = 0;
  {
    std::lock_guard lk(sync_mu);
    behind = sync_checked ? out_of_sync.size() : 1;
  }
  // Consumer lag per group on the partitions this broker leads (their offsets' coordinator).
  out += "# HELP quorumq_group_lag Messages a consumer group has not committed yet (high watermark - committed offset)\n"
         "# TYPE quorumq_group_lag gauge\n";
  for (const auto& t : topics)
    for (const auto& p : t->partitions) {
      if (!p || !p->serving()) continue;
      const auto hw = p->high_watermark();
      for (const auto& [g, c] : p->committed_offsets())
        out += "quorumq_group_lag{group=\"" + label(g) + "\",topic=\"" + label(t->name) + "\",partition=\"" +
               std::to_string(p->id()) + "\"} " + std::to_string(std::max<std::int64_t>(0, hw - c.offset)) + "\n";
    }
  out += "# HELP quorumq_build_info The running build (always 1)\n# TYPE quorumq_build_info gauge\n"
         "quorumq_build_info{version=\"" QUORUMQ_VERSION "\"} 1\n";
  render_process_metrics(out);
  counter("quorumq_replicas_out_of_sync",
          "Hosted replicas their leader does not count as in sync (catching up, or cut off)", behind, "gauge");
  counter("quorumq_ready", "1 when the broker is ready (/readyz 200): controller known, every hosted replica in sync",
          ctx.ready.load() && behind == 0 ? 1 : 0, "gauge");
  return out;
}

}  // namespace quorumq::broker
