/*
 * rdkbench: a librdkafka load generator for quorumq's Kafka-protocol listener (issue 17).
 *
 * It drives the broker the way a real Kafka application does (librdkafka, many messages in
 * flight), so its figures can be set beside quorumq-bench's through the native protocol in the
 * same run (scripts/kafka_bench.sh). Plain C against Debian's librdkafka-dev:
 *
 *   gcc -O2 -Wall -o rdkbench bench/kafka/rdkbench.c -lrdkafka
 *
 *   rdkbench produce --bootstrap HOST:PORT --topic T --messages N [--size S] [--acks all] ...
 *       N messages of S bytes, each delivery report checked; msg/s and MB/s from the first
 *       send to the last delivery report, ack latency (send -> delivery report) p50/p99/p99.9.
 *   rdkbench consume --bootstrap HOST:PORT --topic T [--messages N] ...
 *       every partition of T read from the beginning by librdkafka's simple consumer (partitions
 *       started on one queue: no group.id, no coordinator, no commits, like kcat without -G),
 *       N messages (0: up to the end each partition had when reached; fewer than the partitions
 *       held at the start is an error); msg/s from the start of the partitions to the last
 *       message, and from the first message to the last (the messages that came with the first
 *       not counted). Messages are taken as soon as they are there: librdkafka's
 *       consume_batch_queue() with a timeout waits for a full batch, which would add up to its
 *       timeout to the last one.
 * Both modes first ask every partition's leader for its offsets, so every connection is up
 * before the clock starts (librdkafka connects lazily; a late connect cost ~0.5 s of a short
 * run), and report what librdkafka retried silently (its statistics: request retries, messages
 * sent again after an error answer such as not-leader).
 *
 * Closed loop, like quorumq-bench: produce keeps at most --window messages without a delivery
 * report (default max-in-flight x batch.size x partitions / size, quorumq-bench's default
 * window), so the ack latency is that of a loaded pipeline, not of a queue filled up front.
 *
 * Progress: one line per second on stderr. Result: one JSON line on stdout at the end.
 * Exit status: 0 only if every message was acknowledged / read without an error; 1 if any
 * delivery report or fetch carried an error, a fatal client error came, the count fell short
 * or the run timed out; 2 for bad arguments.
 *
 * Defaults match quorumq-bench's SDK defaults so the two clients are configured alike:
 * linger 5 ms, 256 KiB batches per partition, 5 requests in flight per connection, 4 MiB per
 * produce request, 64 MiB of unacknowledged messages, acks=all. Idempotence is off by default
 * (librdkafka's own default; quorumq's SDK has it on): librdkafka (2.0.2 and later, see its PR
 * #4989) limits an idempotent partition to 5 *messages* in flight, so with batches of more than
 * 4 messages it sends one ProduceRequest per partition at a time whatever max.in.flight says.
 * --idempotence 1 measures that too.
 * -X key=value passes any other librdkafka property (repeatable).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_X 64
#define MAX_ERRORS_KEPT 8

static volatile sig_atomic_t g_stop = 0;
static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "rdkbench: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(2);
}

/* ---- options ---------------------------------------------------------------------------- */
struct opts {
  const char *mode;
  const char *bootstrap;
  const char *topic;
  const char *label;
  uint64_t messages;
  size_t size;
  const char *acks;
  int linger_ms;
  long batch_size;
  int max_in_flight;
  long message_max_bytes;
  long queue_kbytes;
  long queue_messages;
  int idempotence;
  long window; /* 0: computed from in-flight x batch x partitions / size; -1: no limit */
  const char *compression;
  double timeout_s; /* consume: give up after this long without a message; produce: flush */
  int quiet;
  const char *x[MAX_X];
  int nx;
};

static void usage(FILE *f) {
  fprintf(f,
          "usage: rdkbench produce|consume --bootstrap HOST:PORT[,...] --topic T [options]\n"
          "  --messages N          produce: messages to send (required); consume: to read (0: to the end)\n"
          "  --size S              produce: value bytes (default 1024, at least 16)\n"
          "  --acks A              produce: all|1|0 (default all)\n"
          "  --linger-ms MS        produce: linger.ms (default 5)\n"
          "  --batch-size B        produce: batch.size, bytes per partition batch (default 262144)\n"
          "  --max-in-flight K     max.in.flight.requests.per.connection (default 5)\n"
          "  --message-max-bytes B produce: message.max.bytes, one produce request (default 4194304)\n"
          "  --queue-kbytes K      produce: queue.buffering.max.kbytes (default 65536)\n"
          "  --queue-messages M    produce: queue.buffering.max.messages (default 1000000)\n"
          "  --idempotence 0|1     produce: enable.idempotence (default 0, librdkafka's default)\n"
          "  --compression C       produce: compression.codec (default none)\n"
          "  --window W            produce: messages without a delivery report at most (default\n"
          "                        max-in-flight x batch-size x partitions / size; -1: no limit)\n"
          "  --timeout S           consume: give up after S seconds without a message (default 30);\n"
          "                        produce: seconds flush() may take after the last send (default 120)\n"
          "  --label L             copied into the JSON line\n"
          "  -X key=value          any librdkafka property (repeatable, applied last)\n"
          "  --quiet               no progress lines\n");
}

static uint64_t parse_u64(const char *name, const char *v) {
  char *end = NULL;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 10);
  if (errno || !end || *end || v[0] == '-') die("%s: not a non-negative integer: %s", name, v);
  return (uint64_t)x;
}

static void parse(int argc, char **argv, struct opts *o) {
  memset(o, 0, sizeof *o);
  o->size = 1024;
  o->acks = "all";
  o->linger_ms = 5;
  o->batch_size = 262144;
  o->max_in_flight = 5;
  o->message_max_bytes = 4194304;
  o->queue_kbytes = 65536;
  o->queue_messages = 1000000;
  o->idempotence = 0;
  o->compression = "none";
  o->timeout_s = -1;
  o->label = "";
  if (argc < 2) {
    usage(stderr);
    exit(2);
  }
  if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    usage(stdout);
    exit(0);
  }
  o->mode = argv[1];
  if (strcmp(o->mode, "produce") && strcmp(o->mode, "consume")) die("unknown mode %s (produce|consume)", o->mode);
  for (int i = 2; i < argc; ++i) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED() \
  do { \
    if (!v) die("%s needs a value", a); \
    ++i; \
  } while (0)
    if (!strcmp(a, "--bootstrap")) { NEED(); o->bootstrap = v; }
    else if (!strcmp(a, "--topic")) { NEED(); o->topic = v; }
    else if (!strcmp(a, "--label")) { NEED(); o->label = v; }
    else if (!strcmp(a, "--messages")) { NEED(); o->messages = parse_u64(a, v); }
    else if (!strcmp(a, "--size")) { NEED(); o->size = (size_t)parse_u64(a, v); }
    else if (!strcmp(a, "--acks")) { NEED(); o->acks = v; }
    else if (!strcmp(a, "--linger-ms")) { NEED(); o->linger_ms = (int)parse_u64(a, v); }
    else if (!strcmp(a, "--batch-size")) { NEED(); o->batch_size = (long)parse_u64(a, v); }
    else if (!strcmp(a, "--max-in-flight")) { NEED(); o->max_in_flight = (int)parse_u64(a, v); }
    else if (!strcmp(a, "--message-max-bytes")) { NEED(); o->message_max_bytes = (long)parse_u64(a, v); }
    else if (!strcmp(a, "--queue-kbytes")) { NEED(); o->queue_kbytes = (long)parse_u64(a, v); }
    else if (!strcmp(a, "--queue-messages")) { NEED(); o->queue_messages = (long)parse_u64(a, v); }
    else if (!strcmp(a, "--idempotence")) { NEED(); o->idempotence = parse_u64(a, v) != 0; }
    else if (!strcmp(a, "--compression")) { NEED(); o->compression = v; }
    else if (!strcmp(a, "--window")) { NEED(); o->window = !strcmp(v, "-1") ? -1 : (long)parse_u64(a, v); }
    else if (!strcmp(a, "--timeout")) { NEED(); o->timeout_s = atof(v); }
    else if (!strcmp(a, "-X")) {
      NEED();
      if (!strchr(v, '=')) die("-X needs key=value, got %s", v);
      if (o->nx == MAX_X) die("too many -X");
      o->x[o->nx++] = v;
    } else if (!strcmp(a, "--quiet")) o->quiet = 1;
    else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); exit(0); }
    else die("unknown argument %s (see --help)", a);
#undef NEED
  }
  if (!o->bootstrap) die("--bootstrap is required");
  if (!o->topic) die("--topic is required");
  if (!strcmp(o->mode, "produce")) {
    if (!o->messages) die("produce: --messages N (N > 0) is required");
    if (o->size < 16) die("--size must be at least 16 (the sequence and send-time header)");
    if (o->timeout_s < 0) o->timeout_s = 120;
  } else if (o->timeout_s < 0) {
    o->timeout_s = 30;
  }
}

static void set_conf(rd_kafka_conf_t *conf, const char *key, const char *value) {
  char err[512];
  if (rd_kafka_conf_set(conf, key, value, err, sizeof err) != RD_KAFKA_CONF_OK) die("%s=%s: %s", key, value, err);
}

static void set_conf_long(rd_kafka_conf_t *conf, const char *key, long value) {
  char buf[32];
  snprintf(buf, sizeof buf, "%ld", value);
  set_conf(conf, key, buf);
}

static void apply_x(rd_kafka_conf_t *conf, const struct opts *o) {
  for (int i = 0; i < o->nx; ++i) {
    char kv[1024];
    snprintf(kv, sizeof kv, "%s", o->x[i]);
    char *eq = strchr(kv, '=');
    *eq = '\0';
    set_conf(conf, kv, eq + 1);
  }
}

/* JSON string without quotes escaped badly: topic names, labels, librdkafka error strings. */
static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; s && *s; ++s) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

/* ---- errors kept for the report ---------------------------------------------------------- */
static char g_errors[MAX_ERRORS_KEPT][256];
static int g_nerrors = 0;
static uint64_t g_error_count = 0;

static void keep_error(const char *fmt, ...) {
  ++g_error_count;
  if (g_nerrors == MAX_ERRORS_KEPT) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_errors[g_nerrors], sizeof g_errors[0], fmt, ap);
  va_end(ap);
  fprintf(stderr, "rdkbench: error: %s\n", g_errors[g_nerrors]);
  ++g_nerrors;
}

/* Client-level errors (connection refused, all brokers down, fatal idempotence errors). */
static void on_client_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
  (void)opaque;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char buf[256];
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
    keep_error("fatal: %s: %s", rd_kafka_err2name(orig), buf);
    g_stop = 1;
    return;
  }
  /* Transient (librdkafka retries): reported on stderr, counted apart from failed messages. */
  fprintf(stderr, "rdkbench: client: %s: %s\n", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void print_errors_json(FILE *f) {
  fprintf(f, "\"error_count\":%" PRIu64 ",\"errors\":[", g_error_count);
  for (int i = 0; i < g_nerrors; ++i) {
    if (i) fputc(',', f);
    json_str(f, g_errors[i]);
  }
  fputc(']', f);
}

/* librdkafka's statistics (every 500 ms), so a run that looked clean to the application but had
   requests retried or answered with errors says so: per-broker request retries, transmit and
   receive errors and timeouts (summed), and the messages put into ProduceRequests (txmsgs, the
   last total of the report): above the messages acknowledged when batches were sent again after
   an error answer (not leader, leader not available, ...), which librdkafka retries silently. */
struct client_stats {
  int64_t txretries, txerrs, rxerrs, req_timeouts, txmsgs;
  int64_t at_ns; /* 0: none yet */
};
static struct client_stats g_stats;

static int64_t sum_field(const char *json, const char *field) {
  char key[64];
  snprintf(key, sizeof key, "\"%s\":", field);
  int64_t sum = 0;
  for (const char *p = strstr(json, key); p; p = strstr(p + 1, key)) sum += strtoll(p + strlen(key), NULL, 10);
  return sum;
}

static int64_t last_field(const char *json, const char *field) {
  char key[64];
  snprintf(key, sizeof key, "\"%s\":", field);
  const char *last = NULL;
  for (const char *p = strstr(json, key); p; p = strstr(p + 1, key)) last = p;
  return last ? strtoll(last + strlen(key), NULL, 10) : 0;
}

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
  (void)rk, (void)len, (void)opaque;
  g_stats.txretries = sum_field(json, "txretries");
  g_stats.txerrs = sum_field(json, "txerrs");
  g_stats.rxerrs = sum_field(json, "rxerrs");
  g_stats.req_timeouts = sum_field(json, "req_timeouts");
  g_stats.txmsgs = last_field(json, "txmsgs");
  g_stats.at_ns = now_ns();
  return 0; /* librdkafka frees json */
}

static void enable_stats(rd_kafka_conf_t *conf) {
  set_conf(conf, "statistics.interval.ms", "500");
  rd_kafka_conf_set_stats_cb(conf, on_stats);
}

/* Serves callbacks until a statistics report newer than `after` came (at most 1.5 s). */
static void final_stats(rd_kafka_t *rk, int64_t after) {
  const int64_t deadline = now_ns() + 1500000000LL;
  while (g_stats.at_ns <= after && now_ns() < deadline) rd_kafka_poll(rk, 50);
}

static void print_stats_json(FILE *f, int producer) {
  fprintf(f, "\"client_stats\":{\"reported\":%s,\"request_retries\":%" PRId64 ",\"transmit_errors\":%" PRId64
             ",\"receive_errors\":%" PRId64 ",\"request_timeouts\":%" PRId64,
          g_stats.at_ns ? "true" : "false", g_stats.txretries, g_stats.txerrs, g_stats.rxerrs, g_stats.req_timeouts);
  if (producer) fprintf(f, ",\"messages_transmitted\":%" PRId64, g_stats.txmsgs);
  fprintf(f, "},");
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* Partitions of the topic from the cluster's metadata (waits until every one has a leader). */
static int topic_partitions(rd_kafka_t *rk, const char *topic, double timeout_s) {
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  const int64_t deadline = now_ns() + (int64_t)(timeout_s * 1e9);
  int n = -1;
  const char *last = "no answer";
  while (!g_stop && now_ns() < deadline) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
    if (err) {
      last = rd_kafka_err2str(err);
    } else {
      if (md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0) {
        int all_led = 1;
        for (int i = 0; i < md->topics[0].partition_cnt; ++i)
          all_led = all_led && md->topics[0].partitions[i].leader >= 0 && !md->topics[0].partitions[i].err;
        if (all_led) n = md->topics[0].partition_cnt;
        else last = "a partition has no leader";
      } else if (md->topic_cnt == 1) {
        last = md->topics[0].err ? rd_kafka_err2str(md->topics[0].err) : "no partitions";
      }
      rd_kafka_metadata_destroy(md);
      if (n > 0) break;
    }
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  rd_kafka_topic_destroy(rkt);
  if (n < 0) {
    fprintf(stderr, "rdkbench: metadata of topic %s: %s\n", topic, last);
  }
  return n;
}

/* Asks every partition's leader for its offsets (ListOffsets): this connects to each leader
   before the clock starts (librdkafka connects lazily; a broker thread that is not connected yet
   may first try up to ~0.5 s later, which would otherwise land inside a short run), and gives
   the number of messages each partition holds. Returns the sum of high - low, or -1. */
static int64_t warm_up_leaders(rd_kafka_t *rk, const char *topic, int partitions) {
  int64_t total = 0;
  for (int p = 0; p < partitions; ++p) {
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int attempt = 0; attempt < 20 && !g_stop; ++attempt) {
      err = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 5000);
      if (!err) break;
      struct timespec ts = {0, 200 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
    if (err) {
      fprintf(stderr, "rdkbench: offsets of %s [%d]: %s\n", topic, p, rd_kafka_err2str(err));
      return -1;
    }
    total += hi - lo;
  }
  return total;
}

/* ---- produce ------------------------------------------------------------------------------ */
struct produce_state {
  uint64_t acked, failed;
  uint32_t *lat_us; /* one per acknowledged message */
  int64_t last_dr_ns;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  struct produce_state *st = opaque;
  const int64_t now = now_ns();
  st->last_dr_ns = now;
  if (m->err) {
    ++st->failed;
    keep_error("delivery to partition %" PRId32 ": %s (%s)", m->partition, rd_kafka_err2name(m->err),
               rd_kafka_err2str(m->err));
    return;
  }
  const int64_t sent = (int64_t)(intptr_t)m->_private;
  int64_t us = (now - sent) / 1000;
  if (us < 0) us = 0;
  if (us > UINT32_MAX) us = UINT32_MAX;
  st->lat_us[st->acked++] = (uint32_t)us;
}

struct progress {
  int64_t t0, next_ns;
  uint64_t last_count;
  int quiet;
};

static void produce_progress(struct progress *p, int64_t now, uint64_t sent, const struct produce_state *st,
                             rd_kafka_t *rk) {
  if (now < p->next_ns) return;
  const double span = (now - (p->next_ns - 1000000000LL)) / 1e9;
  if (!p->quiet)
    fprintf(stderr, "  %5.1f s  sent %" PRIu64 "  acked %" PRIu64 "  failed %" PRIu64 "  %.0f msg/s acked in the last %.1f s  queued %d\n",
            (now - p->t0) / 1e9, sent, st->acked, st->failed, (double)(st->acked - p->last_count) / span, span,
            rd_kafka_outq_len(rk));
  p->last_count = st->acked;
  while (p->next_ns <= now) p->next_ns += 1000000000LL;
}

static int run_produce(const struct opts *o) {
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  set_conf(conf, "bootstrap.servers", o->bootstrap);
  set_conf(conf, "client.id", "rdkbench");
  set_conf(conf, "acks", o->acks);
  set_conf_long(conf, "linger.ms", o->linger_ms);
  set_conf_long(conf, "batch.size", o->batch_size);
  set_conf_long(conf, "batch.num.messages", 1000000); /* batch.size is the limit, not a count */
  set_conf_long(conf, "max.in.flight.requests.per.connection", o->max_in_flight);
  set_conf_long(conf, "message.max.bytes", o->message_max_bytes);
  set_conf_long(conf, "queue.buffering.max.kbytes", o->queue_kbytes);
  set_conf_long(conf, "queue.buffering.max.messages", o->queue_messages);
  set_conf(conf, "enable.idempotence", o->idempotence ? "true" : "false");
  set_conf(conf, "compression.codec", o->compression);
  set_conf_long(conf, "message.timeout.ms", (long)(o->timeout_s * 1000) + 60000);
  apply_x(conf, o);

  struct produce_state st = {0};
  st.lat_us = malloc(o->messages * sizeof(uint32_t));
  if (!st.lat_us) die("out of memory for %" PRIu64 " latencies", o->messages);
  rd_kafka_conf_set_opaque(conf, &st);
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_error_cb(conf, on_client_error);
  enable_stats(conf);

  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) die("rd_kafka_new: %s", err);

  /* Connect and learn the partitions before the clock starts (quorumq-bench sets its topic up
     first too). */
  const int partitions = topic_partitions(rk, o->topic, 60);
  if (partitions < 0 || warm_up_leaders(rk, o->topic, partitions) < 0) {
    rd_kafka_destroy(rk);
    return 1;
  }
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);

  uint64_t window = UINT64_MAX;
  if (o->window > 0) window = (uint64_t)o->window;
  else if (o->window == 0) {
    window = (uint64_t)o->max_in_flight * (uint64_t)o->batch_size * (uint64_t)partitions / o->size;
    if (window < 1) window = 1;
  }

  char *value = malloc(o->size);
  for (size_t i = 0; i < o->size; ++i) value[i] = (char)('a' + i % 26);

  if (!o->quiet)
    fprintf(stderr, "rdkbench produce: %" PRIu64 " x %zu B to %s (%d partitions) via %s, acks=%s linger.ms=%d batch.size=%ld in-flight=%d idempotence=%d window=%" PRIu64 "\n",
            o->messages, o->size, o->topic, partitions, o->bootstrap, o->acks, o->linger_ms, o->batch_size,
            o->max_in_flight, o->idempotence, window);

  const int64_t t0 = now_ns();
  struct progress pr = {t0, t0 + 1000000000LL, 0, o->quiet};
  uint64_t queue_full = 0, window_full = 0, sent = 0;
  int stalled = 0;
  while (sent < o->messages && !g_stop) {
    const int64_t now = now_ns();
    produce_progress(&pr, now, sent, &st, rk);
    if (sent - (st.acked + st.failed) >= window) { /* closed loop: wait for a delivery report */
      ++window_full;
      rd_kafka_poll(rk, 1);
      const int64_t since = now_ns() - (st.last_dr_ns > t0 ? st.last_dr_ns : t0);
      if (since > (int64_t)(o->timeout_s * 1e9)) {
        stalled = 1;
        break;
      }
      continue;
    }
    memcpy(value, &sent, 8); /* header: sequence, send time */
    memcpy(value + 8, &now, 8);
    rd_kafka_resp_err_t e = rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
                                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(value, o->size),
                                              RD_KAFKA_V_OPAQUE((void *)(intptr_t)now), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      ++queue_full;
      rd_kafka_poll(rk, 1); /* serve delivery reports: they free queue space */
      continue;
    }
    if (e) {
      keep_error("produce(): %s", rd_kafka_err2str(e));
      break;
    }
    ++sent;
    if ((sent & 255) == 0) rd_kafka_poll(rk, 0);
  }
  if (stalled) keep_error("no delivery report for %.0f s with the window full", o->timeout_s);
  /* Wait for every delivery report, with a progress line per second. */
  const int64_t flush_deadline = now_ns() + (int64_t)(o->timeout_s * 1e9);
  while (rd_kafka_outq_len(rk) > 0 && !g_stop && now_ns() < flush_deadline) {
    rd_kafka_poll(rk, 100);
    produce_progress(&pr, now_ns(), sent, &st, rk);
  }
  const int left = rd_kafka_outq_len(rk);
  if (left > 0) keep_error("%d messages without a delivery report after %.0f s of flush", left, o->timeout_s);
  const int64_t t_end = st.last_dr_ns > t0 ? st.last_dr_ns : now_ns();
  const double secs = (t_end - t0) / 1e9;
  final_stats(rk, t_end); /* after the clock stopped */
  const int64_t resent = g_stats.txmsgs - (int64_t)(st.acked + st.failed);

  qsort(st.lat_us, st.acked, sizeof(uint32_t), cmp_u32);
  double mean = 0;
  for (uint64_t i = 0; i < st.acked; ++i) mean += st.lat_us[i];
  if (st.acked) mean /= (double)st.acked;
#define PCT(q) (st.acked ? st.lat_us[(uint64_t)((double)(st.acked - 1) * (q))] : 0)

  const double rate = secs > 0 ? (double)st.acked / secs : 0;
  printf("{\"tool\":\"rdkbench\",\"mode\":\"produce\",\"label\":");
  json_str(stdout, o->label);
  printf(",\"librdkafka\":");
  json_str(stdout, rd_kafka_version_str());
  printf(",\"bootstrap\":");
  json_str(stdout, o->bootstrap);
  printf(",\"topic\":");
  json_str(stdout, o->topic);
  printf(",\"settings\":{\"messages\":%" PRIu64 ",\"size_bytes\":%zu,\"partitions\":%d,\"acks\":", o->messages, o->size,
         partitions);
  json_str(stdout, o->acks);
  printf(",\"linger_ms\":%d,\"batch_size\":%ld,\"max_in_flight\":%d,\"message_max_bytes\":%ld,\"queue_kbytes\":%ld,"
         "\"queue_messages\":%ld,\"window\":%" PRId64 ",\"idempotence\":%s,\"compression\":",
         o->linger_ms, o->batch_size, o->max_in_flight, o->message_max_bytes, o->queue_kbytes, o->queue_messages,
         window == UINT64_MAX ? (int64_t)-1 : (int64_t)window, o->idempotence ? "true" : "false");
  json_str(stdout, o->compression);
  printf(",\"extra\":[");
  for (int i = 0; i < o->nx; ++i) {
    if (i) putchar(',');
    json_str(stdout, o->x[i]);
  }
  printf("]},\"sent\":%" PRIu64 ",\"acked\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"unreported\":%d,\"queue_full_waits\":%" PRIu64 ",\"window_full_polls\":%" PRIu64
         ",\"seconds\":%.3f,\"msgs_per_s\":%.1f,\"mb_per_s\":%.2f,"
         "\"ack_latency\":{\"count\":%" PRIu64 ",\"mean_us\":%.0f,\"p50_us\":%u,\"p99_us\":%u,\"p999_us\":%u,\"max_us\":%u},",
         sent, st.acked, st.failed, left, queue_full, window_full, secs, rate, rate * (double)o->size / 1e6, st.acked, mean, PCT(0.50),
         PCT(0.99), PCT(0.999), st.acked ? st.lat_us[st.acked - 1] : 0);
  printf("\"messages_resent\":%" PRId64 ",", g_stats.at_ns && resent > 0 ? resent : 0);
  print_stats_json(stdout, 1);
  print_errors_json(stdout);
  printf("}\n");
  fflush(stdout);
#undef PCT
  if (!o->quiet)
    fprintf(stderr, "rdkbench produce: %" PRIu64 "/%" PRIu64 " acked in %.2f s: %.0f msg/s, %.1f MB/s, %" PRIu64
            " failed, %" PRId64 " sent again after an error answer, %" PRId64 " request retries\n",
            st.acked, o->messages, secs, rate, rate * (double)o->size / 1e6, st.failed,
            g_stats.at_ns && resent > 0 ? resent : 0, g_stats.txretries);

  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
  free(value);
  free(st.lat_us);
  return (st.failed || st.acked != o->messages || g_error_count || g_stop) ? 1 : 0;
}

/* ---- consume ------------------------------------------------------------------------------ */
static int run_consume(const struct opts *o) {
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  set_conf(conf, "bootstrap.servers", o->bootstrap);
  set_conf(conf, "client.id", "rdkbench");
  /* No group.id: assign() only, no coordinator, no commits (kcat without -G). */
  set_conf(conf, "enable.auto.commit", "false");
  set_conf(conf, "enable.auto.offset.store", "false");
  set_conf(conf, "enable.partition.eof", "true");
  set_conf(conf, "auto.offset.reset", "earliest");
  set_conf_long(conf, "max.in.flight.requests.per.connection", o->max_in_flight);
  apply_x(conf, o);
  rd_kafka_conf_set_error_cb(conf, on_client_error);
  enable_stats(conf);

  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk) die("rd_kafka_new: %s", err);
  const int partitions = topic_partitions(rk, o->topic, 60);
  const int64_t held = partitions < 0 ? -1 : warm_up_leaders(rk, o->topic, partitions);
  if (held < 0) {
    rd_kafka_destroy(rk);
    return 1;
  }
  /* librdkafka's simple consumer: each partition started at the beginning on one queue, no
     group.id (rd_kafka_assign() needs one), no coordinator, no commits: kcat without -G. */
  rd_kafka_topic_conf_t *tconf = rd_kafka_topic_conf_new();
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, tconf);
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  if (!o->quiet)
    fprintf(stderr, "rdkbench consume: %s (%d partitions, %" PRId64 " messages) from the beginning via %s, %s\n", o->topic,
            partitions, held, o->bootstrap, o->messages ? "until the count is read" : "until every partition's end");

  const int64_t t0 = now_ns();
  for (int p = 0; p < partitions; ++p)
    if (rd_kafka_consume_start_queue(rkt, p, RD_KAFKA_OFFSET_BEGINNING, q) == -1)
      die("consume_start partition %d: %s", p, rd_kafka_err2str(rd_kafka_last_error()));

  uint64_t consumed = 0, bytes = 0, last_consumed = 0;
  int64_t first_ns = 0, last_ns = t0, next_progress = t0 + 1000000000LL;
  /* Messages that came with the first one (its batch): the rate from the first message counts
     only those after it, as scripts/kafka_bench.py does for the CLI's first output chunk. */
  uint64_t first_count = 0;
  char *eof = calloc((size_t)partitions, 1);
  int eofs = 0;
  rd_kafka_message_t *batch[1024];
  int timed_out = 0;
  while (!g_stop) {
    if (o->messages && consumed >= o->messages) break;
    if (!o->messages && eofs == partitions) break;
    /* What is there now, without waiting (consume_batch_queue with a timeout waits for a full
       batch, which would stretch the last one by the timeout); else block for one message. */
    ssize_t n = rd_kafka_consume_batch_queue(q, 0, batch, 1024);
    if (n == 0) {
      rd_kafka_message_t *one = rd_kafka_consume_queue(q, 100);
      if (one) {
        batch[0] = one;
        n = 1;
      }
    }
    const int64_t now = now_ns();
    for (ssize_t i = 0; i < n; ++i) {
      rd_kafka_message_t *m = batch[i];
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (m->partition >= 0 && m->partition < partitions && !eof[m->partition]) {
          eof[m->partition] = 1;
          ++eofs;
        }
      } else if (m->err) {
        keep_error("fetch from partition %" PRId32 ": %s (%s)", m->partition, rd_kafka_err2name(m->err),
                   rd_kafka_message_errstr(m));
      } else {
        if (!first_ns) first_ns = now;
        ++consumed;
        bytes += m->len;
        last_ns = now;
      }
      rd_kafka_message_destroy(m);
    }
    if (first_ns && !first_count) first_count = consumed;
    if (g_error_count) break;
    if (now - last_ns > (int64_t)(o->timeout_s * 1e9) && (o->messages || eofs < partitions)) {
      keep_error("no message for %.0f s: %" PRIu64 " of %" PRIu64 " read, %d of %d partitions at their end",
                 o->timeout_s, consumed, o->messages, eofs, partitions);
      timed_out = 1;
      break;
    }
    if (now >= next_progress) {
      const double span = (now - (next_progress - 1000000000LL)) / 1e9;
      if (!o->quiet)
        fprintf(stderr, "  %5.1f s  consumed %" PRIu64 "  %.0f msg/s in the last %.1f s  partitions at their end %d/%d\n",
                (now - t0) / 1e9, consumed, (double)(consumed - last_consumed) / span, span, eofs, partitions);
      last_consumed = consumed;
      while (next_progress <= now) next_progress += 1000000000LL;
    }
  }
  const double secs = (last_ns - t0) / 1e9;
  const double read_secs = first_ns ? (last_ns - first_ns) / 1e9 : 0;
  const double rate = secs > 0 ? (double)consumed / secs : 0;
  const double read_rate = read_secs > 0 ? (double)(consumed - first_count) / read_secs : 0;
  final_stats(rk, now_ns());

  printf("{\"tool\":\"rdkbench\",\"mode\":\"consume\",\"label\":");
  json_str(stdout, o->label);
  printf(",\"librdkafka\":");
  json_str(stdout, rd_kafka_version_str());
  printf(",\"bootstrap\":");
  json_str(stdout, o->bootstrap);
  printf(",\"topic\":");
  json_str(stdout, o->topic);
  printf(",\"settings\":{\"messages\":%" PRIu64 ",\"partitions\":%d,\"max_in_flight\":%d,\"extra\":[", o->messages,
         partitions, o->max_in_flight);
  for (int i = 0; i < o->nx; ++i) {
    if (i) putchar(',');
    json_str(stdout, o->x[i]);
  }
  printf("]},\"held_at_start\":%" PRId64 ",\"consumed\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"partitions_at_end\":%d,\"seconds\":%.3f,\"msgs_per_s\":%.1f,"
         "\"mb_per_s\":%.2f,\"read_seconds\":%.3f,\"first_batch\":%" PRIu64 ",\"read_msgs_per_s\":%.1f,",
         held, consumed, bytes, eofs, secs, rate, secs > 0 ? (double)bytes / secs / 1e6 : 0, read_secs, first_count, read_rate);
  print_stats_json(stdout, 0);
  print_errors_json(stdout);
  printf("}\n");
  fflush(stdout);
  if (!o->quiet)
    fprintf(stderr, "rdkbench consume: %" PRIu64 " messages (%.1f MB) in %.2f s: %.0f msg/s (%.0f msg/s from the first message)\n",
            consumed, bytes / 1e6, secs, rate, read_rate);

  for (int p = 0; p < partitions; ++p) rd_kafka_consume_stop(rkt, p);
  rd_kafka_queue_destroy(q);
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
  free(eof);
  /* To the end: at least what the partitions held when the run started (more if produced to). */
  const int short_read = o->messages ? consumed < o->messages : consumed < (uint64_t)held;
  if (short_read && !timed_out)
    fprintf(stderr, "rdkbench: read %" PRIu64 " messages, expected %" PRIu64 "\n", consumed,
            o->messages ? o->messages : (uint64_t)held);
  return (g_error_count || timed_out || short_read || g_stop) ? 1 : 0;
}

int main(int argc, char **argv) {
  struct opts o;
  parse(argc, argv, &o);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  return !strcmp(o.mode, "produce") ? run_produce(&o) : run_consume(&o);
}
