// natsbench: the NATS JetStream counterpart of quorumq-bench, for scripts/peers_bench.sh.
//
// It measures the same three things quorumq-bench does, on one JetStream stream with file storage
// and R1 or R3 replicas, and prints one JSON line per measurement on stdout (progress and errors go
// to stderr), so a script can put the figures next to quorumq-bench's --json output:
//
//	pub-async  PublishAsync with at most -window acks outstanding, for -duration seconds; the
//	           clock stops when the last ack arrived (like quorumq-bench's closed loop).
//	pub-sync   Publish one message and wait for its ack, then the next ("one at a time"):
//	           ack latency p50/p99 in µs and msg/s.
//	consume    A durable pull consumer reads the stream from the start (what the earlier modes
//	           wrote), Fetch(-fetch) at a time, acking the last message of each batch (AckAll,
//	           the JetStream analogue of committing a consumer offset per fetch).
//
// Before each measurement it probes the disk like quorumq-bench does (4 KiB pwrite + fdatasync of
// one block in -fsync-dir for -fsync-ms) and reports the mean as fsync_mean_us: this VM's disk
// throttles fsync after bursts, so a figure means little without the fsync cost measured beside it.
// NATS JetStream itself does not fsync per message (sync_interval defaults to 2 minutes).
//
// Builds in GOPATH mode against Debian's packages, no network:
//
//	apt-get install -y golang-go golang-github-nats-io-go-nats-dev
//	GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=/tmp/gocache go build -o natsbench ./bench/nats/natsbench
//
// Usage: natsbench -servers nats://127.0.0.1:14331 -replicas 3 -modes pub-async,consume -duration 12
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
)

type config struct {
	servers      string
	replicas     int
	modes        []string
	duration     time.Duration
	sizeBytes    int
	window       int
	fetch        int
	stream       string
	label        string
	fsyncDir     string
	fsyncFor     time.Duration
	readyTimeout time.Duration
}

// latencySummary mirrors the keys of quorumq-bench's ack_latency object, so one parser reads both.
type latencySummary struct {
	Count  int     `json:"count"`
	MeanUs float64 `json:"mean_us"`
	P50Us  float64 `json:"p50_us"`
	P90Us  float64 `json:"p90_us"`
	P99Us  float64 `json:"p99_us"`
	MaxUs  float64 `json:"max_us"`
}

// result is one JSON line. Figures a mode does not measure are null.
type result struct {
	Tool          string          `json:"tool"`
	Label         string          `json:"label,omitempty"`
	Mode          string          `json:"mode"`
	Replicas      int             `json:"replicas"`
	Servers       int             `json:"servers"`
	SizeBytes     int             `json:"size_bytes"`
	Window        int             `json:"window"`
	DurationS     float64         `json:"duration_s"`
	Seconds       float64         `json:"seconds"`
	Sent          int64           `json:"sent"`
	Acked         int64           `json:"acked"`
	Failed        int64           `json:"failed"`
	Consumed      int64           `json:"consumed"`
	MsgsPerS      float64         `json:"msgs_per_s"`
	MBPerS        float64         `json:"mb_per_s"`
	AckLatency    *latencySummary `json:"ack_latency"`
	FsyncMeanUs   *float64        `json:"fsync_mean_us"`
	FsyncPerS     *float64        `json:"fsync_per_s"`
	LoadavgBefore string          `json:"loadavg_before"`
	ClientCPUPct  float64         `json:"client_cpu_pct"`
	Client        string          `json:"client"`
	ServerVersion string          `json:"server_version"`
	Error         string          `json:"error,omitempty"`
}

func main() {
	cfg := parseFlags()
	nc, js, err := connect(cfg)
	if err != nil {
		fatal(err)
	}
	defer nc.Close()
	if err := createStream(js, cfg); err != nil {
		fatal(err)
	}
	defer js.DeleteStream(cfg.stream)

	payload := make([]byte, cfg.sizeBytes)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	for _, mode := range cfg.modes {
		r := result{Tool: "natsbench", Label: cfg.label, Mode: strings.ReplaceAll(mode, "-", "_"),
			Replicas: cfg.replicas, Servers: len(strings.Split(cfg.servers, ",")), SizeBytes: cfg.sizeBytes,
			DurationS: cfg.duration.Seconds(), Client: "nats.go " + nats.Version, ServerVersion: nc.ConnectedServerVersion()}
		probeFsync(cfg, &r)
		r.LoadavgBefore = loadavg()
		fmt.Fprintf(os.Stderr, "natsbench: %s R%d for %.0f s (fsync %s us)\n", mode, cfg.replicas, cfg.duration.Seconds(), fmtOpt(r.FsyncMeanUs))
		cpu0 := cpuSeconds()
		switch mode {
		case "pub-async":
			r.Window = cfg.window
			err = publishAsync(js, cfg, payload, &r)
		case "pub-sync":
			r.Window = 1
			err = publishSync(js, cfg, payload, &r)
		case "consume":
			err = consume(js, cfg, &r)
		}
		if err != nil {
			r.Error = err.Error()
		}
		if r.Seconds > 0 {
			r.ClientCPUPct = round6((cpuSeconds() - cpu0) / r.Seconds * 100)
			n := r.Acked
			if mode == "consume" {
				n = r.Consumed
			}
			r.MsgsPerS = round6(float64(n) / r.Seconds)
			r.MBPerS = round6(float64(n) * float64(cfg.sizeBytes) / r.Seconds / 1e6)
		}
		line, _ := json.Marshal(r)
		fmt.Println(string(line))
		if err != nil {
			fatal(fmt.Errorf("%s: %w", mode, err))
		}
	}
}

func parseFlags() config {
	var c config
	var modes string
	var durationS, fsyncMs, readyS float64
	flag.StringVar(&c.servers, "servers", "nats://127.0.0.1:4222", "comma-separated server URLs")
	flag.IntVar(&c.replicas, "replicas", 1, "stream replicas (1 or 3)")
	flag.StringVar(&modes, "modes", "pub-async,pub-sync,consume", "measurements to run, in order: pub-async, pub-sync, consume")
	flag.Float64Var(&durationS, "duration", 10, "seconds per measurement")
	flag.IntVar(&c.sizeBytes, "size", 1024, "message bytes")
	flag.IntVar(&c.window, "window", 256, "pub-async: acks outstanding at most (PublishAsyncMaxPending)")
	flag.IntVar(&c.fetch, "fetch", 500, "consume: messages per Fetch")
	flag.StringVar(&c.stream, "stream", "QQPEERS", "stream name (deleted first if it exists, and at the end)")
	flag.StringVar(&c.label, "label", "", "copied into every JSON line")
	flag.StringVar(&c.fsyncDir, "fsync-dir", os.TempDir(), "directory whose fsync cost is probed before each measurement")
	flag.Float64Var(&fsyncMs, "fsync-ms", 1000, "fsync probe length in ms (0: no probe)")
	flag.Float64Var(&readyS, "ready-timeout", 30, "seconds to wait for the servers and JetStream to accept the stream")
	flag.Parse()
	c.duration = time.Duration(durationS * float64(time.Second))
	c.fsyncFor = time.Duration(fsyncMs * float64(time.Millisecond))
	c.readyTimeout = time.Duration(readyS * float64(time.Second))
	for _, m := range strings.Split(modes, ",") {
		switch m = strings.TrimSpace(m); m {
		case "pub-async", "pub-sync", "consume":
			c.modes = append(c.modes, m)
		case "":
		default:
			usage("unknown mode " + m)
		}
	}
	if len(c.modes) == 0 || c.duration <= 0 || c.sizeBytes < 1 || c.window < 1 || c.fetch < 1 || c.replicas < 1 {
		usage("need at least one mode, and positive -duration, -size, -window, -fetch, -replicas")
	}
	return c
}

func usage(msg string) {
	fmt.Fprintln(os.Stderr, "natsbench:", msg)
	flag.Usage()
	os.Exit(2)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "natsbench: fatal:", err)
	os.Exit(1)
}

// connect retries until the servers answer: the script starts them just before us.
func connect(cfg config) (*nats.Conn, nats.JetStreamContext, error) {
	deadline := time.Now().Add(cfg.readyTimeout)
	for {
		nc, err := nats.Connect(cfg.servers, nats.Timeout(5*time.Second), nats.MaxReconnects(5))
		if err == nil {
			js, err := nc.JetStream(nats.MaxWait(10*time.Second), nats.PublishAsyncMaxPending(cfg.window))
			if err != nil {
				nc.Close()
				return nil, nil, err
			}
			return nc, js, nil
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("connect %s: %w", cfg.servers, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// createStream makes a fresh file-storage stream, retrying while a new cluster has no
// JetStream meta leader yet (AddStream then fails or times out for a few seconds).
func createStream(js nats.JetStreamContext, cfg config) error {
	deadline := time.Now().Add(cfg.readyTimeout)
	for {
		_ = js.DeleteStream(cfg.stream)
		_, err := js.AddStream(&nats.StreamConfig{
			Name: cfg.stream, Subjects: []string{cfg.stream + ".>"}, Storage: nats.FileStorage,
			Replicas: cfg.replicas, Retention: nats.LimitsPolicy, Discard: nats.DiscardOld, MaxMsgs: -1, MaxBytes: -1})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("create stream %s R%d: %w", cfg.stream, cfg.replicas, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func publishAsync(js nats.JetStreamContext, cfg config, payload []byte, r *result) error {
	subject := cfg.stream + ".async"
	start := time.Now()
	deadline := start.Add(cfg.duration)
	// One collector goroutine reads each future's outcome in order, so failures are counted, not
	// inferred; PublishAsync itself blocks once -window acks are outstanding.
	futures := make(chan nats.PubAckFuture, cfg.window*2)
	var failed int64
	var firstErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				if failed++; firstErr == nil {
					firstErr = err
				}
			}
		}
	}()
	var err error
	for err == nil && time.Now().Before(deadline) {
		var f nats.PubAckFuture
		if f, err = js.PublishAsync(subject, payload); err == nil {
			r.Sent++
			futures <- f
		} else if strings.Contains(err.Error(), "stalled with too many outstanding") {
			// nats.go 1.22 gives up after 200 ms stalled at the window (a plain error, no
			// sentinel to compare with): that is back-pressure, so retry.
			err = nil
		}
	}
	close(futures)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		return fmt.Errorf("%d acks still outstanding 60 s after the last publish", js.PublishAsyncPending())
	}
	r.Seconds = time.Since(start).Seconds()
	r.Failed = failed
	r.Acked = r.Sent - failed
	if firstErr != nil {
		fmt.Fprintln(os.Stderr, "natsbench: pub-async: first failed ack:", firstErr)
	}
	return err
}

func publishSync(js nats.JetStreamContext, cfg config, payload []byte, r *result) error {
	subject := cfg.stream + ".sync"
	latUs := make([]float64, 0, 1<<16)
	start := time.Now()
	deadline := start.Add(cfg.duration)
	for time.Now().Before(deadline) {
		t := time.Now()
		r.Sent++
		if _, err := js.Publish(subject, payload); err != nil {
			r.Failed++
			if r.Failed > 100 {
				return fmt.Errorf("more than 100 failed publishes, last: %w", err)
			}
			continue
		}
		latUs = append(latUs, float64(time.Since(t).Nanoseconds())/1e3)
	}
	r.Seconds = time.Since(start).Seconds()
	r.Acked = int64(len(latUs))
	r.AckLatency = summarize(latUs)
	return nil
}

func consume(js nats.JetStreamContext, cfg config, r *result) error {
	info, err := js.StreamInfo(cfg.stream)
	if err != nil {
		return err
	}
	total := int64(info.State.Msgs)
	durable := fmt.Sprintf("reader%d", time.Now().UnixNano())
	if _, err := js.AddConsumer(cfg.stream, &nats.ConsumerConfig{Durable: durable, AckPolicy: nats.AckAllPolicy,
		DeliverPolicy: nats.DeliverAllPolicy, MaxAckPending: cfg.fetch * 4}); err != nil {
		return err
	}
	defer js.DeleteConsumer(cfg.stream, durable)
	sub, err := js.PullSubscribe("", durable, nats.Bind(cfg.stream, durable))
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	start := time.Now()
	deadline := start.Add(cfg.duration)
	for r.Consumed < total && time.Now().Before(deadline) {
		msgs, err := sub.Fetch(cfg.fetch, nats.MaxWait(2*time.Second))
		if len(msgs) == 0 {
			if err != nil && !errors.Is(err, nats.ErrTimeout) {
				return err
			}
			continue
		}
		r.Consumed += int64(len(msgs))
		if err := msgs[len(msgs)-1].Ack(); err != nil {
			return err
		}
	}
	r.Seconds = time.Since(start).Seconds()
	return nil
}

func summarize(us []float64) *latencySummary {
	if len(us) == 0 {
		return nil
	}
	sort.Float64s(us)
	sum := 0.0
	for _, v := range us {
		sum += v
	}
	at := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(len(us)))) - 1
		if i < 0 {
			i = 0
		}
		return round6(us[i])
	}
	return &latencySummary{Count: len(us), MeanUs: round6(sum / float64(len(us))), P50Us: at(50), P90Us: at(90),
		P99Us: at(99), MaxUs: round6(us[len(us)-1])}
}

// probeFsync is quorumq-bench's probe (bench/src/fsync_probe.cc) in Go: rewrite one 4 KiB block
// and fdatasync it, again and again, so the cost measured is the sync alone.
func probeFsync(cfg config, r *result) {
	if cfg.fsyncFor <= 0 {
		return
	}
	path := filepath.Join(cfg.fsyncDir, ".natsbench-fsync-probe")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "natsbench: fsync probe:", err)
		return
	}
	defer os.Remove(path)
	defer f.Close()
	block := make([]byte, 4096)
	rounds := 0
	start := time.Now()
	for time.Since(start) < cfg.fsyncFor {
		if _, err := f.WriteAt(block, 0); err != nil {
			fmt.Fprintln(os.Stderr, "natsbench: fsync probe:", err)
			return
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			fmt.Fprintln(os.Stderr, "natsbench: fsync probe:", err)
			return
		}
		rounds++
	}
	secs := time.Since(start).Seconds()
	mean, perS := round6(secs*1e6/float64(rounds)), round6(float64(rounds)/secs)
	r.FsyncMeanUs, r.FsyncPerS = &mean, &perS
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// round6 keeps 6 significant digits, as quorumq-bench's JSON does.
func round6(v float64) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	scale := math.Pow(10, 6-math.Ceil(math.Log10(math.Abs(v))))
	return math.Round(v*scale) / scale
}

func fmtOpt(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", *v)
}
