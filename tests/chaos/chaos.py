#!/usr/bin/env python3
"""quorumq fault-injection suite (Jepsen-style). Python 3 stdlib only.

Outer process (root): makes one network namespace per broker plus one for the bridge and the
clients, then re-runs itself inside the bridge namespace (--inside) and always removes the
namespaces afterwards. Without namespaces (not root, or `ip netns` fails) it runs on loopback
and skips the network faults. The inner process starts 3 (or --brokers 5) brokers, 2 idempotent acks=quorum
producers and 1 group consumer (tests/chaos/chaos_client), runs the nemesis from a seed, heals,
drains, stops the brokers, compares the replicas' logs and checks the histories.
With --secure every broker runs with TLS on its client listener, mutual TLS between brokers,
SASL SCRAM logins and an admin token; every client (CLI, chaos_client, /metrics) uses them.
"""
import argparse, json, os, random, re, secrets, shutil, signal, subprocess, sys, tempfile, time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BROKER = os.path.join(ROOT, "build/release/broker/quorumq-broker")
CLI = os.path.join(ROOT, "build/release/client/cli/quorumq")
CLIENT = os.path.join(ROOT, "build/chaos/chaos_client")
LOSSYFS = os.path.join(ROOT, "build/chaos/lossyfs")  # power-loss fault (tests/chaos/lossyfs.cc)
TOPIC, PARTS = "chaos", 3
N = 3  # brokers: --brokers 3 or 5
NET = "10.77.0"
LIVENESS_S = 30.0  # clients must make progress again within this long after the last heal


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def sh(cmd, check=True):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{cmd}: {r.stderr.strip()}")
    return r


# ---------------------------------------------------------------- namespaces (outer process)
def ns_names(tag):
    return tag + "br", [f"{tag}n{i}" for i in range(1, N + 1)]


def ns_setup(tag):
    br, nodes = ns_names(tag)
    sh(f"ip netns add {br}")
    sh(f"ip -n {br} link set lo up")
    sh(f"ip -n {br} link add br0 type bridge")
    sh(f"ip -n {br} addr add {NET}.254/24 dev br0")
    sh(f"ip -n {br} link set br0 up")
    for i, ns in enumerate(nodes, 1):
        sh(f"ip netns add {ns}")
        sh(f"ip -n {ns} link set lo up")
        sh(f"ip -n {br} link add vb{i} type veth peer name eth0 netns {ns}")
        sh(f"ip -n {br} link set vb{i} master br0 up")
        sh(f"ip -n {ns} addr add {NET}.{i}/24 dev eth0")
        sh(f"ip -n {ns} link set eth0 up")
    sh(f"ip netns exec {nodes[0]} iptables -L -n")
    sh(f"ip netns exec {nodes[0]} tc qdisc add dev eth0 root tbf rate 2mbit burst 16kbit latency 200ms")
    sh(f"ip netns exec {nodes[0]} tc qdisc del dev eth0 root")


def ns_cleanup(tag):
    br, nodes = ns_names(tag)
    for ns in nodes + [br]:
        r = sh(f"ip netns pids {ns}", check=False)
        for pid in r.stdout.split():  # only processes inside our own namespaces
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
    time.sleep(0.3)
    for ns in nodes + [br]:
        sh(f"ip netns del {ns}", check=False)


# ---------------------------------------------------------------- security (--secure)
class Security:
    """Files for a run with TLS, mutual peer TLS, SASL and an admin token, made with the openssl
    CLI in the work dir: one CA; one client-listener certificate naming every broker address the
    suite uses (so hostname checks pass whichever broker is dialed); per node a peer certificate
    naming quorumq-node-<id> (the broker binds the peer's identity to its node id); the bootstrap
    super user `chaos` with a random password; the admin endpoint's bearer token."""
    USER = "chaos"

    def __init__(self, base, node_ids):
        d = os.path.join(base, "pki")
        os.makedirs(d)
        self.dir = d
        ips = [f"IP:{NET}.{i}" for i in range(1, 6)] + ["IP:127.0.0.1"]
        ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        self.ca = os.path.join(d, "ca.pem")
        sh(f"openssl req -x509 {ec} -days 2 -subj /CN=quorumq-chaos-ca -keyout {d}/ca.key -out {self.ca}")

        def issue(name, cn, sans, usage):
            ext = os.path.join(d, name + ".ext")
            with open(ext, "w") as f:
                f.write(f"subjectAltName={','.join(sans)}\nextendedKeyUsage={usage}\n")
            sh(f"openssl req {ec} -subj /CN={cn} -keyout {d}/{name}.key -out {d}/{name}.csr")
            sh(f"openssl x509 -req -in {d}/{name}.csr -CA {self.ca} -CAkey {d}/ca.key -CAcreateserial "
               f"-days 2 -extfile {ext} -out {d}/{name}.pem")
            os.chmod(f"{d}/{name}.key", 0o600)
            return f"{d}/{name}.pem", f"{d}/{name}.key"

        self.cert, self.key = issue("broker", "quorumq-chaos-broker", ips + ["DNS:localhost"], "serverAuth")
        self.peer = {i: issue(f"node{i}", f"quorumq-node-{i}", [f"DNS:quorumq-node-{i}"] + ips,
                              "serverAuth,clientAuth") for i in node_ids}
        self.password = secrets.token_hex(16)
        self.token = secrets.token_hex(24)
        self.user_file = self._secret_file("bootstrap-user", f"{self.USER}:{self.password}\n")
        self.password_file = self._secret_file("password", self.password + "\n")  # for the CLI
        self.token_file = self._secret_file("admin-token", self.token + "\n")

    def _secret_file(self, name, text):
        path = os.path.join(self.dir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path

    def broker_args(self, i):
        cert, key = self.peer[i]
        return [f"--tls-cert-file={self.cert}", f"--tls-key-file={self.key}",
                f"--peer-tls-cert-file={cert}", f"--peer-tls-key-file={key}", f"--peer-tls-ca-file={self.ca}",
                "--sasl", f"--sasl-bootstrap-user-file={self.user_file}", f"--admin-token-file={self.token_file}"]

    def cli_args(self):
        return ["--tls-ca-file", self.ca, "--user", self.USER, "--password-file", self.password_file]

    def client_env(self):
        return dict(os.environ, QUORUMQ_CHAOS_TLS_CA_FILE=self.ca, QUORUMQ_CHAOS_SASL_USER=self.USER,
                    QUORUMQ_CHAOS_SASL_PASSWORD=self.password)


# ---------------------------------------------------------------- brokers (inner process)
class Broker:
    def __init__(self, i, ns, host, port, admin, peers, base, secret, sec=None):
        self.i, self.ns, self.host, self.port, self.admin = i, ns, host, port, admin
        self.secret = secret
        self.sec = sec  # Security, or None (plain text, no logins)
        self.dir = os.path.join(base, f"b{i}")
        self.logf = os.path.join(base, f"b{i}.log")
        self.peers = peers
        self.proc = None
        self.paused = False
        self.fs = None  # lossyfs process when the data dir is on it (power-loss fault)
        self.disk = self.dir + ".disk"  # lossyfs's backing dir: what survives a power cut

    def mount_fs(self):
        os.makedirs(self.dir, exist_ok=True)
        os.makedirs(self.disk, exist_ok=True)
        self.fs = subprocess.Popen([LOSSYFS, self.disk, self.dir], stdout=subprocess.DEVNULL,
                                   stderr=open(self.logf + ".lossyfs", "a"))
        t0 = time.time()
        while not os.path.ismount(self.dir):
            if time.time() - t0 > 10 or self.fs.poll() is not None:
                raise RuntimeError(f"lossyfs did not mount {self.dir}")
            time.sleep(0.05)

    def at_stake(self):
        try:
            with open(os.path.join(self.dir, ".lossyfs")) as f:
                return int(f.read().split()[1])
        except Exception:
            return -1

    def power_loss(self):
        """Cut the power: the broker and its page cache (lossyfs) die at once."""
        self.kill9()
        dropped = self.at_stake()
        self.fs.kill()
        self.fs.wait()
        sh(f"fusermount3 -u -z {self.dir}", check=False)
        self.mount_fs()
        return dropped

    def unmount_fs(self):
        if self.fs:
            self.fs.terminate()
            try:
                self.fs.wait(5)
            except subprocess.TimeoutExpired:
                self.fs.kill()
            sh(f"fusermount3 -u -z {self.dir}", check=False)
            self.fs = None

    def start(self):
        cmd = [BROKER, f"--node-id={self.i}", f"--listen={self.host}:{self.port}",
               f"--admin-listen={self.host}:{self.admin}", f"--data-dir={self.dir}",
               f"--peers={self.peers}", f"--cluster-secret-file={self.secret}", "--log-level=info"]
        if self.sec:  # the cluster secret stays: SASL on a multi-broker cluster requires it
            cmd += self.sec.broker_args(self.i)
        if self.ns:
            cmd = ["ip", "netns", "exec", self.ns] + cmd  # ip execs the broker: same pid
        self.proc = subprocess.Popen(cmd, stdout=open(self.logf, "a"), stderr=subprocess.STDOUT)
        self.paused = False

    def up(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.up():
            os.kill(self.proc.pid, sig)

    def kill9(self):
        self.signal(signal.SIGKILL)
        if self.proc:
            self.proc.wait()
        self.paused = False

    def stop(self):  # SIGTERM, then SIGKILL after 20 s
        if not self.up():
            return None
        if self.paused:
            self.signal(signal.SIGCONT)
            self.paused = False
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.kill9()
            return "killed"

    def metrics(self, timeout=1.0):
        if not self.up() or self.paused:
            return None
        req = urllib.request.Request(f"http://{self.host}:{self.admin}/metrics")
        if self.sec:  # with authentication on, /metrics needs the admin token (the probes do not)
            req.add_header("Authorization", f"Bearer {self.sec.token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.read().decode()
        except Exception:
            return None

    def ready(self):
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.admin}/readyz", timeout=1) as r:
                return r.status == 200
        except Exception:
            return False


def leader_of(brokers, part):
    needle = f'quorumq_partition_leader{{topic="{TOPIC}",partition="{part}"}} 1'
    for b in brokers:
        m = b.metrics()
        if m and any(line.strip() == needle for line in m.splitlines()):
            return b
    return None


def hwms(b):
    m = b.metrics(timeout=2)
    if m is None:
        return None
    out = {}
    for p in range(PARTS):
        mm = re.search(rf'^quorumq_partition_high_watermark\{{topic="{TOPIC}",partition="{p}"\}} (\d+)', m, re.M)
        if not mm:
            return None
        out[p] = int(mm.group(1))
    return out


def tmpfs_limit(path, headroom_mib):
    st = os.statvfs(path)
    used = (st.f_blocks - st.f_bfree) * st.f_frsize >> 20
    sh(f"mount -o remount,size={used + headroom_mib}m {path}")


# ---------------------------------------------------------------- nemesis
class Nemesis:
    NET_KINDS = ["isolate-leader", "split-minority", "one-way-in", "slow-lossy-link", "kill-during-partition",
                 "bridge"]
    PROC_KINDS = ["kill9-random", "kill9-leader", "pause-leader", "pause-then-kill", "corrupt-stopped-replica",
                  "kill9-rolling", "kill9-consumer", "kill9-minority"]

    def __init__(self, brokers, rng, netns, tmpfs_broker):
        self.b, self.rng, self.netns = brokers, rng, netns
        self.kinds = self.PROC_KINDS + (self.NET_KINDS if netns else [])
        self.tmpfs_broker = tmpfs_broker  # its data dir is a small tmpfs: the disk-full fault
        if tmpfs_broker:
            self.kinds.append("disk-full")
        self.crashed_on_disk_full = 0
        self.dropped_pages = 0  # dirty pages lost by power cuts
        if any(b.fs for b in brokers):
            self.kinds += ["power-loss-one", "power-loss-all"]
        self.restart_consumer = None  # set by inner(): kill -9 the consumer and start a new one
        self.counts, self.events = {}, []
        self.last_heal = time.time()
        self.corrupted = 0

    def ev(self, what):
        self.events.append((time.time(), what))
        log("nemesis:", what)

    def leader(self):
        for _ in range(10):
            l = leader_of(self.b, self.rng.randrange(PARTS))
            if l:
                return l
            time.sleep(0.2)
        return self.rng.choice(self.b)

    def all_whole(self):
        """Every broker answers and none is re-fetching a log it cut at a damaged entry."""
        for b in self.b:
            m = b.metrics(timeout=1)
            mm = re.search(r"^quorumq_raft_groups_recovering (\d+)", m or "", re.M)
            if not mm or int(mm.group(1)) != 0:
                return False
        return True

    def nsx(self, b, cmd):
        sh(f"ip netns exec {b.ns} {cmd}")

    def cut(self, side_a, side_b):
        """No traffic between the two groups of brokers, in either direction."""
        for x in side_a:
            for y in side_b:
                self.nsx(x, f"iptables -A INPUT -s {y.host} -j DROP")
                self.nsx(x, f"iptables -A OUTPUT -d {y.host} -j DROP")
                self.nsx(y, f"iptables -A INPUT -s {x.host} -j DROP")
                self.nsx(y, f"iptables -A OUTPUT -d {x.host} -j DROP")

    def drop_peers(self, b, both=True):
        for o in self.b:
            if o is b:
                continue
            self.nsx(b, f"iptables -A INPUT -s {o.host} -j DROP")
            if both:
                self.nsx(b, f"iptables -A OUTPUT -d {o.host} -j DROP")

    def heal_net(self):
        if not self.netns:
            return
        for b in self.b:
            sh(f"ip netns exec {b.ns} iptables -F", check=False)
            sh(f"ip netns exec {b.ns} tc qdisc del dev eth0 root", check=False)

    def restart_down(self):
        for b in self.b:
            if b.paused:
                b.signal(signal.SIGCONT)
                b.paused = False
            if not b.up():
                b.start()

    def corrupt(self, b):
        path = os.path.join(b.dir, "data.mdb")
        with open(path, "r+b") as f:
            data = f.read()
            hits = [m.start() for m in re.finditer(rb"chaos-\d+-\d+", data)]
            if not hits:
                return False
            at = self.rng.choice(hits) + 8
            f.seek(at)
            f.write(bytes([data[at] ^ 0x01]))
        return True

    def one(self, hold):
        """One fault; False if none could be injected."""
        kind = self.rng.choice(self.kinds)
        if kind == "corrupt-stopped-replica" and not self.all_whole():
            # One damaged replica at a time (Jepsen's fault model: a bit flip on ONE node): a
            # replica that cut its log at a damaged entry re-fetches everything after it.
            # Damaging the other copies meanwhile exceeds what any 3-replica system can survive
            # (seed 100875108 did that to all three copies of one partition within 60 s). Another
            # kind is drawn instead.
            self.counts["corrupt-deferred"] = self.counts.get("corrupt-deferred", 0) + 1
            self.ev(f"{kind} deferred: a broker is down or still recovering a damaged log")
            others = [k for k in self.kinds if k != kind]
            if not others:
                time.sleep(hold)
                return False
            kind = self.rng.choice(others)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        r = self.rng
        if kind == "kill9-random":
            v = r.choice(self.b); self.ev(f"{kind} b{v.i}"); v.kill9(); time.sleep(hold)
        elif kind == "kill9-leader":
            v = self.leader(); self.ev(f"{kind} b{v.i}"); v.kill9(); time.sleep(hold)
        elif kind == "kill9-rolling":
            for v in r.sample(self.b, len(self.b)):
                self.ev(f"{kind} b{v.i}"); v.kill9(); time.sleep(hold / 3); v.start(); time.sleep(1.0)
        elif kind == "pause-leader":
            v = self.leader(); self.ev(f"{kind} b{v.i}"); v.signal(signal.SIGSTOP); v.paused = True; time.sleep(hold)
        elif kind == "pause-then-kill":
            v = self.leader(); self.ev(f"{kind} b{v.i}"); v.signal(signal.SIGSTOP); v.paused = True
            time.sleep(hold / 2); v.kill9(); time.sleep(hold / 2)
        elif kind == "corrupt-stopped-replica":
            l = self.leader()
            v = r.choice([b for b in self.b if b is not l])
            v.stop()
            ok = self.corrupt(v)
            self.corrupted += ok
            self.ev(f"{kind} b{v.i} flipped={ok}")
        elif kind == "isolate-leader":
            v = self.leader(); self.ev(f"{kind} b{v.i}")
            self.nsx(v, f"iptables -A INPUT -s {NET}.0/24 -j DROP")
            self.nsx(v, f"iptables -A OUTPUT -d {NET}.0/24 -j DROP")
            time.sleep(hold)
        elif kind == "split-minority":  # one node cut from its peers, clients still reach it
            v = r.choice(self.b); self.ev(f"{kind} b{v.i}"); self.drop_peers(v); time.sleep(hold)
        elif kind == "one-way-in":  # a node hears nothing from its peers but can still send
            v = r.choice(self.b); self.ev(f"{kind} b{v.i}"); self.drop_peers(v, both=False); time.sleep(hold)
        elif kind == "slow-lossy-link":
            v = r.choice(self.b); self.ev(f"{kind} b{v.i}")
            # This kernel has no sch_netem: slow = tbf rate limit, lossy = 10% random drops.
            self.nsx(v, "tc qdisc add dev eth0 root tbf rate 2mbit burst 16kbit latency 200ms")
            self.nsx(v, "iptables -A INPUT -m statistic --mode random --probability 0.1 -j DROP")
            self.nsx(v, "iptables -A OUTPUT -m statistic --mode random --probability 0.1 -j DROP")
            time.sleep(hold * 2)
        elif kind == "kill9-minority":  # as many as may fail at once: 1 of 3, 2 of 5
            vs = r.sample(self.b, (len(self.b) - 1) // 2)
            self.ev(f"{kind} " + ",".join(f"b{v.i}" for v in vs))
            for v in vs:
                v.kill9()
            time.sleep(hold)
        elif kind == "bridge":  # Jepsen's bridge: one node sees both halves, the halves not each other
            v = r.choice(self.b)
            rest = r.sample([b for b in self.b if b is not v], len(self.b) - 1)
            half = len(rest) // 2
            a_side, b_side = rest[:half], rest[half:]
            self.ev(f"{kind} via b{v.i}: " + ",".join(f"b{x.i}" for x in a_side) + " | " +
                    ",".join(f"b{x.i}" for x in b_side))
            self.cut(a_side, b_side)
            time.sleep(hold * 2)
        elif kind == "power-loss-one":  # one machine loses power: unsynced writes are gone
            v = r.choice([b for b in self.b if b.fs])
            d = v.power_loss(); self.dropped_pages += max(d, 0)
            self.ev(f"{kind} b{v.i} dropped {d} unsynced pages"); time.sleep(hold)
        elif kind == "power-loss-all":  # coordinated power failure of the whole cluster
            dropped = []
            for v in self.b:
                if v.fs:
                    d = v.power_loss(); self.dropped_pages += max(d, 0); dropped.append(f"b{v.i}:{d}")
                else:
                    v.kill9(); dropped.append(f"b{v.i}:kill9")
            self.ev(f"{kind} dropped unsynced pages " + ",".join(dropped)); time.sleep(hold)
        elif kind == "kill9-consumer":
            self.ev(kind); self.restart_consumer(hold)
        elif kind == "disk-full":
            v = self.tmpfs_broker; self.ev(f"{kind} b{v.i}")
            filler = os.path.join(v.dir, "filler")
            tmpfs_limit(v.dir, 32)  # the filler takes the last 32 MiB
            try:
                with open(filler, "wb") as f:
                    while True:
                        f.write(b"\0" * (1 << 20))
                        f.flush()
            except OSError:
                pass
            time.sleep(hold * 2)
            if not v.up():
                self.crashed_on_disk_full += 1
                self.ev(f"b{v.i} exited while its disk was full (promise 5: the broker stays up)")
            os.unlink(filler)
            tmpfs_limit(v.dir, 512)  # room for the rest of the run (a limit, not memory)
        elif kind == "kill-during-partition":
            v = self.leader(); self.ev(f"{kind} b{v.i}")
            self.nsx(v, f"iptables -A INPUT -s {NET}.0/24 -j DROP")
            self.nsx(v, f"iptables -A OUTPUT -d {NET}.0/24 -j DROP")
            time.sleep(hold / 2); v.kill9(); time.sleep(hold / 2)
        self.heal_net()
        self.restart_down()
        self.last_heal = time.time()
        self.ev("heal")


# ---------------------------------------------------------------- checker
def check(hist_dir, producers, final_log, divergent, ranges, last_heal, end_time):
    acked, invoked, failed = {}, set(), set()
    ack_times = {}
    for pid in producers:
        for line in open(os.path.join(hist_dir, f"producer-{pid}.hist")):
            f = line.split()
            if not f:
                continue
            if f[0] == "I":
                invoked.add((f[2], int(f[3])))
            elif f[0] == "A":
                acked[(f[2], int(f[3]))] = (int(f[4]), int(f[5]))
                ack_times.setdefault(f[2], []).append(int(f[1]) / 1000)
            elif f[0] == "F":
                failed.add((f[2], int(f[3])))
    value_at = {}  # value -> [(part, off)]
    for (p, o), v in final_log.items():
        value_at.setdefault(v, []).append((p, o))
    res = {"invoked": len(invoked), "acked": len(acked), "failed": len(failed),
           "unknown": len(invoked - set(acked) - failed)}
    lost = [k for k in acked if f"chaos-{k[0]}-{k[1]}" not in value_at]
    dup = [v for v, locs in value_at.items() if len(locs) > 1]
    wrong_off = [k for k, po in acked.items()
                 if f"chaos-{k[0]}-{k[1]}" in value_at and value_at[f"chaos-{k[0]}-{k[1]}"][0] != po]
    order = 0
    for pid in producers:
        per = {}
        for (p_id, seq), (part, off) in sorted(acked.items(), key=lambda kv: kv[0][1]):
            if p_id == pid:
                per.setdefault(part, []).append(off)
        order += sum(1 for offs in per.values() for a, b in zip(offs, offs[1:]) if b <= a)
    # consumer
    reads, bad_reads, redelivered, commits_ok, queries_back = {}, 0, 0, 0, 0
    read_times, last_q = [], {}
    committed, restarted, skipped, restarts, read_next = {}, set(), 0, 0, {}
    for line in open(os.path.join(hist_dir, "consumer.hist")):
        f = line.split(" ", 4)
        if f[0] == "K":
            restarts += 1
            restarted = set(range(PARTS))
        elif f[0] == "R" and int(f[2]) in restarted:
            # A restarted consumer resumes at the committed offset: never beyond what the old one
            # read (a commit may land after its last "ok" line was written, so not exact).
            restarted.discard(int(f[2]))
            if int(f[3]) > max(committed.get(int(f[2]), 0), read_next.get(int(f[2]), 0)):
                skipped += 1
        if f[0] == "C" and f[4].strip() == "ok":
            committed[int(f[2])] = max(committed.get(int(f[2]), 0), int(f[3]))
        if f[0] == "R":
            p, o, v = int(f[2]), int(f[3]), f[4].rstrip("\n")
            read_next[p] = max(read_next.get(p, 0), o + 1)
            read_times.append(int(f[1]) / 1000)
            if final_log.get((p, o)) != v:
                bad_reads += 1
            if (p, o) in reads:
                redelivered += 1
                if reads[(p, o)] != v:
                    bad_reads += 1
            reads[(p, o)] = v
        elif f[0] == "C" and f[4].strip() == "ok":
            commits_ok += 1
        elif f[0] == "Q":
            p, o = int(f[2]), int(f[3])
            if o < last_q.get(p, -1):
                queries_back += 1
            last_q[p] = max(o, last_q.get(p, -1))
    read_values = set(reads.values())
    unread = [k for k in acked if f"chaos-{k[0]}-{k[1]}" not in read_values]
    # liveness: longest gap between acknowledgements (per producer) and reads, and how soon each
    # client progressed after the last heal
    stalls, after_heal = [], []
    for pid, ts in ack_times.items():
        ts.sort()
        stalls += [b - a for a, b in zip(ts, ts[1:])]
        nxt = [t for t in ts if t >= last_heal]
        after_heal.append(nxt[0] - last_heal if nxt else float("inf"))
    rts = sorted(t for t in read_times if t <= end_time)
    nxt = [t for t in rts if t >= last_heal]
    after_heal.append(nxt[0] - last_heal if nxt else float("inf"))
    res.update(lost=len(lost), duplicated=len(dup), ack_offset_mismatch=len(wrong_off), order_violations=order,
               final_log_messages=len(final_log), reads=len(reads), redelivered=redelivered,
               bad_reads=bad_reads, unread_acked=len(unread), commits_ok=commits_ok,
               committed_went_back=queries_back, consumer_restarts=restarts, resume_skipped=skipped, divergent_entries=divergent, replica_ranges_differ=ranges,
               longest_stall_s=round(max(stalls, default=0), 2),
               progress_after_last_heal_s=round(max(after_heal), 2))
    violations = [k for k in ("lost", "duplicated", "ack_offset_mismatch", "order_violations", "bad_reads",
                              "unread_acked", "committed_went_back", "resume_skipped", "divergent_entries", "replica_ranges_differ")
                  if res[k]]
    if res["progress_after_last_heal_s"] > LIVENESS_S:
        violations.append("liveness")
    if res["acked"] == 0:
        violations.append("no_acks")
    examples = {"lost": lost[:5], "duplicated": dup[:5], "wrong_offset": wrong_off[:5], "unread": unread[:5]}
    return res, violations, examples


# ---------------------------------------------------------------- the run (inner process)
def inner(a):
    seed, rng = a.seed, random.Random(a.seed)
    base = a.workdir
    netns = bool(a.tag)
    if netns:
        _, nodes = ns_names(a.tag)
        hosts = [(f"{NET}.{i}", 9092, 9644, nodes[i - 1], 9093) for i in range(1, N + 1)]
    else:
        port = 20000 + rng.randrange(20000)
        hosts = [("127.0.0.1", port + 3 * i, port + 3 * i + 1, None, port + 3 * i + 2) for i in range(N)]
    # --peers names the peer listeners; every broker proves it knows the cluster secret.
    peers = ",".join(f"{i}@{h}:{pp}" for i, (h, _, _, _, pp) in enumerate(hosts, 1))
    secret = os.path.join(base, "cluster.secret")
    with open(secret, "w") as f:
        f.write(f"chaos-secret-{seed}-{os.getpid()}\n")
    os.chmod(secret, 0o600)
    sec = Security(base, range(1, N + 1)) if a.secure else None
    cli = [CLI] + (sec.cli_args() if sec else [])
    client_env = sec.client_env() if sec else None
    brokers = [Broker(i, ns, h, p, ad, peers, base, secret, sec) for i, (h, p, ad, ns, _) in enumerate(hosts, 1)]
    bootstrap = ",".join(f"{b.host}:{b.port}" for b in brokers)
    procs = []
    tmpfs_broker = None
    if os.geteuid() == 0:
        b = brokers[-1]
        os.makedirs(b.dir, exist_ok=True)
        if sh(f"mount -t tmpfs -o size=512m quorumq-chaos {b.dir}", check=False).returncode == 0:
            tmpfs_broker = b
        else:
            log("cannot mount a tmpfs: the disk-full fault is skipped")
    if os.geteuid() == 0 and os.access(LOSSYFS, os.X_OK) and os.path.exists("/dev/fuse"):
        for b in brokers:
            if b is not tmpfs_broker:
                b.mount_fs()  # its data dir on lossyfs: the power-loss faults
    else:
        log("no lossyfs (needs root, /dev/fuse and libfuse3-dev): the power-loss faults are skipped")
    try:
        for b in brokers:
            b.start()
        t0 = time.time()
        while not all(b.ready() for b in brokers):
            if time.time() - t0 > 60:
                raise RuntimeError("brokers not ready in 60 s")
            time.sleep(0.2)
        r = subprocess.run(cli + ["-b", bootstrap, "topic", "create", TOPIC, "-p", str(PARTS), "-r", str(N)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"quorumq topic create: {r.stderr.strip()}")
        while not all(leader_of(brokers, p) for p in range(PARTS)):
            time.sleep(0.2)
        fault_s = a.minutes * 60 - 50  # the rest: warm-up, tail, drain, checks
        tail_s = 20
        producers = ["1", "2"]
        stopfile = os.path.join(base, "drain")
        # Producers run until told to stop: the fault phase may outlast fault_s (a forced minimum
        # of faults in a short run), and the clients must still be working after the last heal,
        # or a short run would be judged on producers that had already exited.
        producers_stop = os.path.join(base, "producers-stop")
        min_faults = int(10 * a.minutes)  # the 3-minute CI run: >= 30 faults
        for pid in producers:
            procs.append(subprocess.Popen([CLIENT, "produce", bootstrap, TOPIC, pid,
                                           os.path.join(base, f"producer-{pid}.hist"),
                                           str(int(fault_s + tail_s + 5 + 8 * min_faults)), "150", producers_stop],
                                          stderr=open(os.path.join(base, f"producer-{pid}.err"), "w"),
                                          env=client_env))
        def start_consumer():
            return subprocess.Popen([CLIENT, "consume", bootstrap, TOPIC, "chaos-group",
                                     os.path.join(base, "consumer.hist"), stopfile],
                                    stderr=open(os.path.join(base, "consumer.err"), "a"), env=client_env)
        cons = start_consumer()
        consumer_box = [cons]

        def restart_consumer(hold):
            c = consumer_box[0]
            c.kill(); c.wait()
            with open(os.path.join(base, "consumer.hist"), "a") as h:
                h.write(f"K {int(time.time() * 1000)}\n")  # a new consumer starts from the committed offsets
            time.sleep(hold)
            consumer_box[0] = start_consumer()
        time.sleep(5)
        nem = Nemesis(brokers, rng, netns, tmpfs_broker)
        nem.restart_consumer = restart_consumer
        if a.only:
            nem.kinds = [k for k in nem.kinds if k in a.only.split(",")]
            if not nem.kinds:
                raise RuntimeError(f"--only {a.only}: no such fault available here")
        t_end = time.time() + fault_s
        faults = 0
        while time.time() < t_end or faults < min_faults:
            faults += nem.one(hold=rng.uniform(1.0, 3.0)) is not False
            time.sleep(rng.uniform(0.3, 1.0))
        nem.heal_net()
        nem.restart_down()
        last_heal = nem.last_heal
        log(f"faults done ({faults}); tail {tail_s}s with no faults")
        time.sleep(tail_s)  # the workload's fault-free phase (not a wait for a condition)
        open(producers_stop, "w").close()
        for p in procs:
            p.wait(timeout=180)
        end_time = time.time()
        t0 = time.time()
        while True:  # replicas agree on the high watermark of every partition
            hs = [hwms(b) for b in brokers]
            if all(hs) and all(h == hs[0] for h in hs):
                break
            if time.time() - t0 > 60:
                log("replicas did not converge in 60 s:", hs)
                break
            time.sleep(0.5)
        open(stopfile, "w").close()
        consumer_box[0].wait(timeout=120)
        # Stop all at the same instant (SIGSTOP all, then SIGKILL): a graceful stop one by one
        # hands leadership over and appends a no-op the already stopped brokers never get, which
        # would make the logs' tails differ for a reason that is not a fault.
        converged = bool(all(hs) and all(h == hs[0] for h in hs))
        for b in brokers:
            b.signal(signal.SIGSTOP)
        for b in brokers:
            b.kill9()
        out = subprocess.run([CLIENT, "dump", TOPIC, str(PARTS)] + [b.dir for b in brokers],
                             capture_output=True, text=True)
        final_log, divergent, rng_by_part = {}, 0, {}
        for line in out.stdout.splitlines():
            f = line.split(" ", 3)
            if f[0] == "REC":
                final_log[(int(f[1]), int(f[2]))] = f[3] if len(f) > 3 else ""
                continue
            f = line.split()
            if f[0] == "DIVERGE":
                divergent += 1
            elif f[0] == "RANGE":
                rng_by_part.setdefault(int(f[2]), set()).add(f[4])
            elif f[0] == "ERROR":
                raise RuntimeError("dump: " + line)
        ranges = sum(1 for s in rng_by_part.values() if len(s) > 1)
        res, violations, examples = check(base, producers, final_log, divergent, ranges, last_heal, end_time)
        res["replicas_converged_after_heal"] = converged
        if not converged:
            violations.append("replicas_not_converged")
        res["seed"] = seed
        res["brokers"] = N
        res["faults"] = faults
        res["faults_by_kind"] = nem.counts
        res["corruptions_applied"] = nem.corrupted
        res["broker_exited_on_disk_full"] = nem.crashed_on_disk_full
        res["unsynced_pages_dropped_by_power_cuts"] = nem.dropped_pages
        if nem.crashed_on_disk_full:
            violations.append("broker_exited_on_disk_full")
        res["mode"] = "netns" if netns else "loopback (network faults skipped)"
        res["secure"] = bool(sec)  # TLS, mutual peer TLS, SASL SCRAM logins, admin token
        crc = sum(1 for b in brokers for l in open(b.logf, errors="replace") if "failed its CRC check" in l)
        res["crc_detections_in_broker_logs"] = crc
        print("\n==== chaos summary ====")
        for k, v in res.items():
            print(f"  {k:32} {v}")
        if violations:
            print(f"\nVIOLATIONS: {', '.join(violations)}  (replay: tests/chaos/run --seed {seed} --minutes {a.minutes} --brokers {N}{' --secure' if sec else ''})")
            print("examples:", json.dumps(examples))
        else:
            print(f"\nOK: no violations (seed {seed})")
        with open(os.path.join(base, "summary.json"), "w") as fjs:
            json.dump({"result": res, "violations": violations}, fjs, indent=1)
        return 1 if violations else 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for c in (locals().get("consumer_box") or []):
            if c.poll() is None:
                c.kill()
        for b in brokers:
            if b.up():
                b.kill9()
        for b in brokers:
            b.unmount_fs()
        if tmpfs_broker:
            sh(f"umount {tmpfs_broker.dir}", check=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--brokers", type=int, default=3, choices=[3, 5])
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--loopback", action="store_true", help="do not make namespaces")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--only", default="", help="comma-separated fault kinds to use (e.g. disk-full)")
    ap.add_argument("--secure", action="store_true",
                    help="TLS, mutual peer TLS, SASL logins and an admin token on every broker")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tag", default="", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", default="", help=argparse.SUPPRESS)
    a = ap.parse_args()
    global N
    N = a.brokers
    if a.inside:
        sys.exit(inner(a))
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1, 2**31)
    for f in (BROKER, CLI, CLIENT):
        if not os.access(f, os.X_OK):
            sys.exit(f"missing {f}: build first (tests/chaos/run does)")
    work = tempfile.mkdtemp(prefix="quorumq-chaos-")
    log(f"seed {a.seed}, {a.minutes} min{', secure' if a.secure else ''}, work dir {work}")
    tag = ""
    if not a.loopback and os.geteuid() == 0:
        tag = f"qq{os.getpid() % 100000}"
        try:
            ns_setup(tag)
        except Exception as e:
            log(f"network namespaces unavailable ({e}); loopback, network faults skipped")
            ns_cleanup(tag)
            tag = ""
    elif not a.loopback:
        log("not root: loopback, network faults skipped")
    args = [sys.executable, os.path.abspath(__file__), "--inside", "--seed", str(a.seed), "--minutes",
            str(a.minutes), "--workdir", work, "--tag", tag, "--only", a.only, "--brokers", str(N)] + (["--secure"] if a.secure else [])
    if tag:
        args = ["ip", "netns", "exec", ns_names(tag)[0]] + args
    rc = 2
    child = None

    def on_signal(sig, _frm):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        child = subprocess.Popen(args)
        rc = child.wait()
    except KeyboardInterrupt:
        if child and child.poll() is None:
            child.kill()
            child.wait()
        rc = 130
    finally:
        if tag:
            ns_cleanup(tag)
        sh(f"umount {work}/b{N} 2>/dev/null", check=False)  # if the inner process died
        if rc == 0 and not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"histories and broker logs kept in {work}")
    if rc != 0:
        log(f"FAILED (exit {rc}); replay: tests/chaos/run --seed {a.seed} --minutes {a.minutes} --brokers {N}"
            + (" --secure" if a.secure else ""))
    sys.exit(rc)


if __name__ == "__main__":
    main()
