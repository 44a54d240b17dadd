"""bench/cluster_bench.py: the cluster benchmark (issue 10), run by `bench/run --only cluster`.

In one run, on fresh instances every round:

1. SMTP ingest with Postfix's `smtp-source` (bench/run's sessions and message size) into
   (a) Posthorn on SQLite, (b) Posthorn on PostgreSQL with one node, (c) Posthorn on
   PostgreSQL with three nodes (three `posthorn init --store postgresql` directories on one
   database, the load split evenly over their SMTP ports at once) and (d) the peer, Postfix ->
   Dovecot (bench/run's Peer); rounds alternate a b c d a b c d ...
2. Cross-node IDLE latency: two nodes on one PostgreSQL database; an IMAP client on node A
   in IDLE on INBOX; K messages one after another by SMTP into node B; each sample is the
   time from B's 250 (end of DATA) to `* N EXISTS` on A's IDLE connection. The same on one
   SQLite node (A = B) as a reference.

PostgreSQL is a throw-away cluster (tests/pg_cluster.sh) with its default settings (fsync
on, synchronous_commit on), started once per run; each round gets a new database.

Standard library only; reuses bench/run's helpers (passed in as a module, R).
"""

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import report_section
import smtp_latency

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PG_CLUSTER = REPO / "tests" / "pg_cluster.sh"

MARK_START = "<!-- cluster-bench start -->"
MARK_END = "<!-- cluster-bench end -->"

HOST = "127.0.0.1"
NODES = 3  # nodes of the multi-node ingest variant
VARIANTS = (("sqlite", "Posthorn, SQLite"),
            ("pg1", "Posthorn, PostgreSQL, 1 node"),
            ("pg3", "Posthorn, PostgreSQL, %d nodes" % NODES),
            ("peer", "Postfix → Dovecot"))
IDLE_PATHS = (("idle_pg", "PostgreSQL, 2 nodes: 250 on B → EXISTS on A"),
              ("idle_sqlite", "SQLite, 1 node (A = B), reference"))
IDLE_SIZE = 4096  # octets of each message of the IDLE latency test
IDLE_WARMUP = 3  # messages sent first, not measured (connections, caches)
IDLE_TIMEOUT = 10.0  # seconds to wait for one EXISTS
STRACE = "/usr/bin/strace"  # counts the SQLite server's fsyncs (Debian package strace)
CLI_TRIES = 5
START_RETRIES = []  # node starts made again after a database connect timeout (reported)  # attempts of a `posthorn user list` whose database connection timed out
PG_SETTINGS = ("fsync", "synchronous_commit", "wal_sync_method", "full_page_writes",
               "commit_delay", "shared_buffers", "max_connections")


def log_default(msg):
    print("bench: " + msg, flush=True)


# ---------------------------------------------------------------------------
# PostgreSQL: a throw-away cluster


def pg_bin():
    for v in (15, 16, 17):
        d = Path("/usr/lib/postgresql/%d/bin" % v)
        if (d / "initdb").exists():
            return d
    return None


class PgCluster:
    """tests/pg_cluster.sh start DIR / stop DIR; .url is the database it made, .database()
    makes another one and returns its URL."""

    name = "PostgreSQL"

    def __init__(self, directory):
        self.dir = Path(directory)
        self.url = None
        self._running = None

    def start(self, running):
        if pg_bin() is None:
            raise RuntimeError("no PostgreSQL server binaries (Debian package postgresql-15)")
        p = subprocess.run(["sh", str(PG_CLUSTER), "start", str(self.dir)],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=180)
        self._running = running
        running.append(self)
        if p.returncode != 0 or not p.stdout.strip():
            raise RuntimeError("pg_cluster.sh start: " + p.stderr.strip()[-2000:])
        self.url = p.stdout.strip().splitlines()[-1]

    def psql(self, sql, url=None):
        p = subprocess.run([str(pg_bin() / "psql"), "-X", "-q", "-A", "-t", "-v",
                            "ON_ERROR_STOP=1", "-d", url or self.url, "-c", sql],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError("psql %r: %s" % (sql, p.stderr.strip()))
        return p.stdout.strip()

    def database(self, name):
        """A new, empty database; its URL."""
        self.psql("CREATE DATABASE %s" % name)
        return self.url.rsplit("/", 1)[0] + "/" + name

    def postmaster(self):
        """The postmaster's PID: its process tree is the whole server (backends, WAL writer,
        checkpointer ...)."""
        with open(self.dir / "data" / "postmaster.pid") as f:
            return int(f.readline())

    def settings(self):
        return {k: self.psql("SHOW %s" % k) for k in PG_SETTINGS}

    def version(self):
        return self.psql("SHOW server_version").split()[0]

    def stop(self):
        if self.url is not None or self._running is not None:
            subprocess.run(["sh", str(PG_CLUSTER), "stop", str(self.dir)],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
            self.url = None
        if self._running is not None and self in self._running:
            self._running.remove(self)


def make_node_class(R):
    class Node(R.Posthorn):
        """A Posthorn node as bench/run makes it, on SQLite or (store_url) on PostgreSQL;
        join: the store is shared with a node made before, which added the accounts."""

        def __init__(self, workdir, binary, store_url=None, hostname=None, join=False,
                     plain=False):
            super().__init__(workdir, binary, pop3=plain)
            if store_url:
                self.init_args = ("--store", "postgresql", "--store-url", store_url)
            if hostname:
                self.hostname = hostname
            self.join = join

        def add_accounts(self):
            if not self.join:
                super().add_accounts()

        def start(self):
            """As bench/run's, but a node whose `posthorn init` or start-up could not reach
            PostgreSQL within its 10 s connect timeout (seen on this machine now and then
            under load: a new connection to the cluster, psql's too, took 4-14 s) is made
            again from scratch; each such retry is counted in START_RETRIES and reported."""
            for attempt in range(CLI_TRIES):
                try:
                    return super().start()
                except RuntimeError as e:
                    if attempt == CLI_TRIES - 1 or "timeout expired" not in str(e):
                        raise
                    START_RETRIES.append(str(e).splitlines()[0][:200])
                    self.stop()
                    shutil.rmtree(self.dir, ignore_errors=True)
                    time.sleep(2.0)

        def delivered(self):
            """As bench/run's, but a CLI that could not reach PostgreSQL in time (its
            connections give up after 10 s, which happens when other work starves the
            database's processes of CPU on a shared machine) is tried again."""
            for attempt in range(CLI_TRIES):
                try:
                    return super().delivered()
                except RuntimeError as e:
                    if attempt == CLI_TRIES - 1 or "timeout expired" not in str(e):
                        raise
                    time.sleep(2.0)

    return Node


# ---------------------------------------------------------------------------
# Ingest


def split(total, parts):
    """total as `parts` near-equal integers (the first ones one larger)."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def ingest(R, servers, messages, sessions, timeout):
    """Postfix's smtp-source against every server's SMTP port at once, the messages and the
    sessions split evenly. Returns (start, end of the slowest) in perf_counter seconds."""
    n = len(servers)
    msgs, sess = split(messages, n), split(sessions, n)
    ends, errors = [None] * n, []

    def work(i):
        try:
            R.smtp_source(servers[i].smtp_port, msgs[i], max(1, sess[i]), R.SIZE, timeout)
            ends[i] = time.perf_counter()
        except Exception as e:  # reported below, after every load ended
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n) if msgs[i]]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return t0, max(e for e in ends if e is not None)


def verify(servers, expected):
    """Every Posthorn node's `posthorn user list` shows exactly the expected count."""
    for s in servers:
        n = s.delivered()
        if n != expected:
            raise RuntimeError("%s: %d messages in the store, want %d\n%s"
                               % (s.name, n, expected, s.log_tail()))


def ingest_round(R, servers, cpu_roots, pg_roots, knobs, messages):
    """Warm-up (not measured), then `messages` by smtp-source split over servers; the clock
    stops at the slowest smtp-source's exit for Posthorn (a 250 means durable), or when the
    peer's Maildir holds them all. Returns the measurements."""
    first = servers[0]
    time.sleep(0.5)
    expected = knobs["warmup"]
    ingest(R, servers, knobs["warmup"], R.SESSIONS, 300)
    R.wait_delivered(first, expected, 120)
    time.sleep(0.5)
    cpu0 = R.tree_cpu(cpu_roots)
    pg0 = R.tree_cpu(pg_roots) if pg_roots else 0.0
    t0, t1 = ingest(R, servers, messages, R.SESSIONS, 900)
    expected += messages
    if first.durable_at_reply:
        cpu1 = R.tree_cpu(cpu_roots)
        pg1 = R.tree_cpu(pg_roots) if pg_roots else 0.0
        verify(servers, expected)
    else:
        t1 = R.wait_delivered(first, expected, 600)
        cpu1 = R.tree_cpu(cpu_roots)
        pg1 = 0.0
        n = first.delivered()
        if n != expected:
            raise RuntimeError("%s: %d messages, want %d" % (first.name, n, expected))
    return {"seconds": t1 - t0, "rate": messages / (t1 - t0),
            "cpu_ms_per_msg": (cpu1 - cpu0) * 1000.0 / messages,
            "pg_ms_per_msg": (pg1 - pg0) * 1000.0 / messages,
            "messages": messages, "nodes": len(servers)}


# ---------------------------------------------------------------------------
# Cross-node IDLE latency


class IdleWatch:
    """An IMAP connection (plaintext LOGIN on loopback) in IDLE on INBOX; a thread stamps
    every `* N EXISTS` with the time its line arrived."""

    def __init__(self, port, user, pw, timeout=30.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.sock.makefile("rb")
        self.events = queue.Queue()
        line = self.f.readline()
        if not line.startswith(b"* OK"):
            raise RuntimeError("IMAP greeting %r" % line)
        self._cmd(b'a LOGIN "%s" "%s"' % (user.encode(), pw.encode()))
        self.count = 0
        for line in self._cmd(b"b SELECT INBOX"):
            m = re.match(rb"\* (\d+) EXISTS", line)
            if m:
                self.count = int(m.group(1))
        self.sock.sendall(b"c IDLE\r\n")
        line = self.f.readline()
        if not line.startswith(b"+"):
            raise RuntimeError("IDLE refused: %r" % line)
        self.sock.settimeout(None)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _cmd(self, line):
        tag = line.split(b" ", 1)[0] + b" "
        self.sock.sendall(line + b"\r\n")
        lines = []
        while True:
            got = self.f.readline()
            if not got:
                raise RuntimeError("IMAP connection closed after %r" % line.split(b" ")[1])
            if got.startswith(tag):
                if not got[len(tag):].startswith(b"OK"):
                    raise RuntimeError("IMAP %r: %r" % (line.split(b" ")[1], got))
                return lines
            lines.append(got)

    def _read(self):
        try:
            while True:
                line = self.f.readline()
                now = time.perf_counter()
                if not line:
                    break
                m = re.match(rb"\* (\d+) EXISTS", line)
                if m:
                    self.events.put((int(m.group(1)), now))
        except (OSError, ValueError):
            pass
        self.events.put((None, None))

    def wait_exists(self, n, timeout):
        """The arrival time of the first EXISTS that reports at least n messages."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("no * %d EXISTS within %.0f s" % (n, timeout))
            try:
                k, t = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if k is None:
                raise RuntimeError("IDLE connection closed while waiting for * %d EXISTS" % n)
            if k >= n:
                return t

    def close(self):
        try:
            self.sock.sendall(b"DONE\r\n")
        except OSError:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)


def idle_latency(imap_port, smtp_port, user, pw, k, warmup=IDLE_WARMUP, size=IDLE_SIZE,
                 timeout=IDLE_TIMEOUT):
    """One IMAP client in IDLE on imap_port (node A); warmup + k messages to user sent one
    after another over one SMTP connection to smtp_port (node B), the next only after the
    EXISTS of the one before. Returns the k samples in seconds: arrival of `* N EXISTS` on
    A minus arrival of B's 250 after the end of DATA (negative if EXISTS came first)."""
    watch = IdleWatch(imap_port, user, pw)
    c = None
    try:
        c = smtp_latency.Client(HOST, smtp_port)
        code, text = c.reply()
        if code != 220:
            raise RuntimeError("SMTP greeting %d %s" % (code, text))
        c.cmd("EHLO idle.load.test", 250)
        n = watch.count
        samples = []
        for i in range(warmup + k):
            c.cmd("MAIL FROM:<idle@load.test>", 250)
            c.cmd("RCPT TO:<%s>" % user, 250)
            c.cmd("DATA", 354)
            c.sock.sendall(smtp_latency.make_body(size, i) + b".\r\n")
            code, text = c.reply()
            t250 = time.perf_counter()
            if code != 250:
                raise RuntimeError("end of DATA -> %d %s" % (code, text))
            n += 1
            te = watch.wait_exists(n, timeout)
            if i >= warmup:
                samples.append(te - t250)
        try:
            c.cmd("QUIT", 221)
        except (smtp_latency.SmtpError, OSError):
            pass
        return samples
    finally:
        if c is not None:
            c.close()
        watch.close()


# ---------------------------------------------------------------------------
# The run


def _dir(top, name):
    d = Path(top) / name
    d.mkdir()
    os.chmod(d, 0o755)
    return d


def _stop(servers):
    for s in servers:
        try:
            s.stop()
        except Exception:  # noqa: BLE001 (stop the others; bench/run stops all at the end)
            pass


def ingest_variant(R, Node, pg, binary, top, i, key, knobs, messages):
    d = _dir(top, "cluster-%d-%s" % (i, key))
    servers, pg_roots = [], []
    try:
        if key == "peer":
            servers = [R.Peer(d)]
            servers[0].start()
        elif key == "sqlite":
            servers = [Node(d, binary)]
            servers[0].start()
        else:
            url = pg.database("ingest_%d_%s" % (i, key))
            pg_roots = [pg.postmaster()]
            for n in range(1 if key == "pg1" else NODES):
                s = Node(_dir(d, "n%d" % (n + 1)), binary, store_url=url,
                         hostname="node%d.%s" % (n + 1, R.DOMAIN), join=n > 0)
                servers.append(s)
                s.start()  # one after the other: the next picks ports this one holds
        roots = [p for s in servers for p in s.pids] + pg_roots
        return ingest_round(R, servers, roots, pg_roots, knobs, messages)
    finally:
        _stop(servers)


def fsync_count(R, Node, binary, top, knobs, messages):
    """SQLite once more, with `posthorn serve` under strace counting its fsync and fdatasync
    calls (`--seccomp-bpf`: only those two calls stop the process, so it runs at nearly its
    speed): messages per fsync as counted, where the table's column divides the ingest rate
    by the disk's probed fsync rate (a bound that a CPU-bound ingest on a fast disk cannot
    pass). Counts the whole life of the server: start-up, warm-up and the measured load.
    Returns {"messages", "fsyncs", "per_fsync"}."""
    d = _dir(top, "cluster-fsync-count")
    out = d / "strace.txt"
    s = Node(d, binary)
    s.wrapper = (STRACE, "-f", "--seccomp-bpf", "-e", "trace=fsync,fdatasync", "-c",
                 "-o", str(out))
    try:
        s.start()
        total = knobs["warmup"] + messages
        ingest(R, [s], knobs["warmup"], R.SESSIONS, 300)
        ingest(R, [s], messages, R.SESSIONS, 900)
        verify([s], total)
        # The server is strace's child: it gets the SIGTERM, strace writes the summary when
        # it has exited.
        children = Path("/proc/%d/task/%d/children" % (s.proc.pid, s.proc.pid)).read_text()
        for pid in children.split():
            os.kill(int(pid), signal.SIGTERM)
        s.proc.wait(60)
    finally:
        _stop([s])
    calls = 0
    for line in out.read_text().splitlines():
        f = line.split()
        if f and f[-1] in ("fsync", "fdatasync") and len(f) >= 5:
            calls += int(f[3])
    if calls == 0:
        raise RuntimeError("strace counted no fsync: %s" % out.read_text()[-500:])
    return {"messages": total, "fsyncs": calls, "per_fsync": total / calls}


def idle_variant(R, Node, pg, binary, top, i, key, k):
    d = _dir(top, "cluster-%d-%s" % (i, key))
    servers = []
    user, pw = R.RCPT, R.password(R.RCPT)
    try:
        if key == "idle_sqlite":
            a = Node(d, binary, plain=True)
            servers.append(a)
            a.start()
            b = a
        else:
            url = pg.database("idle_%d" % i)
            a = Node(_dir(d, "a"), binary, store_url=url, hostname="a." + R.DOMAIN, plain=True)
            servers.append(a)
            a.start()
            b = Node(_dir(d, "b"), binary, store_url=url, hostname="b." + R.DOMAIN,
                     join=True, plain=True)
            servers.append(b)
            b.start()
        R.wait_port(a.imap_port, 20)
        samples = idle_latency(a.imap_port, b.smtp_port, user, pw, k)
        verify(servers, IDLE_WARMUP + k)
        return [s * 1000.0 for s in samples]
    finally:
        _stop(servers)


def run(R, binary, top, knobs, log=log_default):
    """All rounds: per round the four ingest variants one after the other, then the two IDLE
    latency measurements. Returns the results for report()."""
    top = Path(top)
    messages = knobs.get("cluster_messages") or knobs["messages"]
    k = knobs.get("cluster_idle", 50)
    res = {"rounds": [], "messages": messages, "warmup": knobs["warmup"],
           "sessions": R.SESSIONS, "size": R.SIZE, "idle_k": k, "nodes": NODES,
           "fsync_all": [], "idle_size": IDLE_SIZE, "idle_warmup": IDLE_WARMUP}
    Node = make_node_class(R)
    pg = PgCluster(_dir(top, "cluster-pg"))
    try:
        pg.start(R._running)
        res["pg_version"] = pg.version()
        res["pg_settings"] = pg.settings()
        log("cluster: PostgreSQL %s at %s (%s)" % (
            res["pg_version"], pg.url,
            ", ".join("%s=%s" % kv for kv in res["pg_settings"].items())))
        for i in range(1, knobs["rounds"] + 1):
            rnd = {}
            for key, label in VARIANTS:
                fs = R.fsync_probe.probe(str(top), knobs.get("probe_s", 0.5))[0]
                res["fsync_all"].append(fs)
                r = ingest_variant(R, Node, pg, binary, top, i, key, knobs, messages)
                r["fsync"] = fs
                rnd[key] = r
                log("round %d %-32s fsync %5.0f/s  %7.0f msgs/s  %.3f ms CPU/msg "
                    "(PostgreSQL %.3f)" % (i, label, fs, r["rate"], r["cpu_ms_per_msg"],
                                           r["pg_ms_per_msg"]))
            for key, label in IDLE_PATHS:
                ms = idle_variant(R, Node, pg, binary, top, i, key, k)
                rnd[key] = ms
                log("round %d IDLE %-44s p50 %.2f ms  p99 %.2f ms  max %.2f ms"
                    % (i, label, smtp_latency.percentile(ms, 50),
                       smtp_latency.percentile(ms, 99), max(ms)))
            res["rounds"].append(rnd)
        if shutil.which(STRACE):
            res["fsync_count"] = fsync_count(R, Node, binary, top, knobs, messages)
            c = res["fsync_count"]
            log("cluster: SQLite under strace: %d messages, %d fsync/fdatasync calls: %.2f "
                "messages per fsync" % (c["messages"], c["fsyncs"], c["per_fsync"]))
    finally:
        pg.stop()
        res["start_retries"] = list(START_RETRIES)
    return res


# ---------------------------------------------------------------------------
# The report section


def report(res, info, R):
    rounds = res["rounds"]
    fs = res.get("fsync_all") or [info["fsync"]]
    fsync_med = R.med(fs)
    peer = [r["peer"]["rate"] for r in rounds]
    rows = []
    for key, label in VARIANTS:
        rates = [r[key]["rate"] for r in rounds]
        cpu = [r[key]["cpu_ms_per_msg"] for r in rounds]
        if key == "peer":
            rel = "1 (reference)"
        else:
            per_round = [R.ratio(x, y) for x, y in zip(rates, peer)]
            lo, hi, _ = R.spread(per_round)
            rel = "**%.2f×** (rounds %.2f–%.2f)" % (R.ratio(R.med(rates), R.med(peer)), lo, hi)
        cpu_txt = R.cell(cpu, 3)
        if key.startswith("pg"):
            cpu_txt += "; PostgreSQL %s" % R.fmt(R.med([r[key]["pg_ms_per_msg"]
                                                         for r in rounds]), 3)
        rows.append("| %s | %s | %s | %s | %s |"
                    % (label, R.cell(rates, 0), rel, cpu_txt,
                       R.fmt(R.med(rates) / fsync_med, 3)))
    sq = R.med([r["sqlite"]["rate"] for r in rounds])
    sq_ratio = R.ratio(sq, R.med(peer))
    per_fsync = sq / fsync_med
    counted = res.get("fsync_count")
    idle = {}
    for key, _ in IDLE_PATHS:
        ms = [x for r in rounds for x in r[key]]
        idle[key] = {"n": len(ms), "p50": smtp_latency.percentile(ms, 50),
                     "p99": smtp_latency.percentile(ms, 99), "max": max(ms),
                     "round_p99": [smtp_latency.percentile(r[key], 99) for r in rounds]}
    p99 = idle["idle_pg"]["p99"]

    def met(ok):
        return "met" if ok else "not met"

    st = res.get("pg_settings", {})
    out = [MARK_START, "## Cluster: SQLite and PostgreSQL (issue 10)", "",
           "Run %s on %s (%s cores), PostgreSQL %s, Postfix %s, Dovecot %s (Debian); "
           "`bench/run --only cluster`. %d rounds; per round and server %d messages of %d "
           "octets from %d `smtp-source` sessions (split evenly over the nodes of the "
           "%d-node variant); fsync rate of the disk (4 KiB append + fsync, probed before each "
           "server's round): median %.0f /s (%.0f–%.0f). PostgreSQL: `fsync = %s`, "
           "`synchronous_commit = %s`, `wal_sync_method = %s` (its defaults)."
           % (info["date"], info["cpu"], info["cores"], res.get("pg_version", "?"),
              info.get("postfix", "?"), info.get("dovecot", "?"), len(rounds), res["messages"],
              res["size"], res["sessions"], res["nodes"], fsync_med, min(fs), max(fs),
              st.get("fsync", "?"), st.get("synchronous_commit", "?"),
              st.get("wal_sync_method", "?")), "",
           "| SMTP ingest, %d sessions × %d KiB, durable | msgs/s: median (min–max, ±spread) "
           "| / Postfix → Dovecot | CPU ms/msg: median (min–max, ±spread) | messages per fsync |"
           % (res["sessions"], res["size"] // 1024),
           "|---|---|---|---|---|"] + rows + [
           "",
           "| IDLE latency, end-of-DATA 250 → `* N EXISTS` | samples | p50 ms | p99 ms | max ms "
           "| p99 per round, ms |",
           "|---|---|---|---|---|---|"]
    for key, label in IDLE_PATHS:
        x = idle[key]
        out.append("| %s | %d | %.2f | %.2f | %.2f | %s |"
                   % (label, x["n"], x["p50"], x["p99"], x["max"],
                      ", ".join("%.2f" % v for v in x["round_p99"])))
    if counted:
        fsync_goal = ("**%s** (%.2f messages per fsync counted: %d messages, %d fsync and "
                      "fdatasync calls of the server under strace; the ingest rate over the "
                      "probed fsync rate is %.2f)"
                      % (met(counted["per_fsync"] > 1.0), counted["per_fsync"],
                         counted["messages"], counted["fsyncs"], per_fsync))
    else:
        fsync_goal = "**%s** (%.2f, ingest rate over probed fsync rate; strace missing)" % (
            met(per_fsync > 1.0), per_fsync)
    out += ["",
            "Goals of issue 10: durable ingest on SQLite at least 5× the peer's: **%s** (%.2f×); "
            "more than one message per fsync on SQLite: %s; cross-node IDLE p99 "
            "under 50 ms: **%s** (%.2f ms)."
            % (met(sq_ratio >= 5.0), sq_ratio, fsync_goal, met(p99 < 50.0), p99), "",
            "### Rounds", "",
            "| round | server | fsync/s before | msgs/s | seconds | CPU ms/msg | of which "
            "PostgreSQL |",
            "|---|---|---|---|---|---|---|"]
    for i, rnd in enumerate(rounds, 1):
        for key, label in VARIANTS:
            r = rnd[key]
            out.append("| %d | %s | %.0f | %.0f | %.2f | %.3f | %s |"
                       % (i, label, r["fsync"], r["rate"], r["seconds"], r["cpu_ms_per_msg"],
                          "%.3f" % r["pg_ms_per_msg"] if key.startswith("pg") else "–"))
    if res.get("start_retries"):
        out += ["", "Node starts made again after a PostgreSQL connect timeout in this run: "
                "%d (a new connection to the cluster now and then takes more than the 10 s "
                "`connect_timeout` here under load; see issue 10's notes)."
                % len(res["start_retries"])]
    out += ["", METHOD.format(**res), MARK_END]
    return "\n".join(out)


METHOD = """\
### How the cluster benchmark is measured

- **Servers.** Posthorn as bench/run configures it for the SMTP benchmark (`posthorn init`,
  then `log_level = warn`, no connection limits, `smtp_pregreet_wait = 0`), one account.
  SQLite: the default store (`data_dir/posthorn.db`, WAL). PostgreSQL: one throw-away
  cluster per run (`tests/pg_cluster.sh`: initdb, server on 127.0.0.1 with its default
  settings: `fsync = on`, `synchronous_commit = on`, as issue 10 requires, WAL fsynced at
  every commit), a new database for every round and variant; each node is a directory made
  by `posthorn init DIR --hostname nodeN.bench.test --port-base N --store postgresql
  --store-url URL` (the first creates the schema and the account, the others join). With
  PostgreSQL every message body is stored in the database. The peer is bench/run's private
  Postfix → LMTP → Dovecot pair (`bench/peers/peer.sh`). Every round starts fresh instances
  in new directories; the order within a round is SQLite, PostgreSQL 1 node, PostgreSQL
  {nodes} nodes, peer.
- **Ingest.** Postfix's `smtp-source -s S -l {size} -m N`: {sessions} sessions in all, one
  {size}-octet message per connection, one recipient, as bench/run's SMTP benchmark; first
  {warmup} messages not measured (warm-up), then {messages} measured. With {nodes} nodes,
  one `smtp-source` per node's port 25 started at once, the messages and the sessions split
  evenly; the rate is all {messages} messages over the time from the start until the
  slowest `smtp-source` exited. For Posthorn the clock stops there (a 250 means committed
  and fsynced: SQLite's WAL, or PostgreSQL's commit), verified afterwards through every
  node with `posthorn user list`; for the peer when Dovecot's Maildir holds every message.
  The column *Postfix → Dovecot* is the ratio of the medians of the rates, with the range of
  the per-round ratios (each against the peer of the same round).
- **CPU time per message**: user + system time over the measured interval from `/proc` (as
  bench/run's SMTP benchmark): the Posthorn processes of every node, plus, with PostgreSQL,
  the whole tree of the cluster's postmaster (backends, WAL writer, checkpointer, and the
  children it reaped): PostgreSQL is part of the cost, shown apart as *of which PostgreSQL*;
  for the peer the trees of Postfix's `master` and Dovecot's `dovecot`. smtp-source and
  this script are not counted.
- **Messages per fsync**: in the table, the median ingest rate / the median of the fsync
  probes of this section (above 1 only when commits are grouped, and only when the ingest
  is faster than the disk's fsyncs: on a disk that fsyncs faster than the CPU can take mail
  in, it stays below 1 however well commits are grouped). The goal line counts them: after
  the rounds, one more SQLite server runs under `strace -f --seccomp-bpf -e
  trace=fsync,fdatasync -c` (only those two calls stop it) through a warm-up and the same
  load, and every message it took is divided by every fsync and fdatasync it made,
  start-up included.
- **IDLE latency.** A fresh database and two nodes A and B on it; an IMAP client logs in to
  A (plaintext LOGIN on loopback), SELECTs INBOX and sends IDLE; a thread reads its
  connection and stamps every `* N EXISTS` line on arrival. Then messages of {idle_size}
  octets are sent one after another on one SMTP connection to B, each only after the EXISTS
  of the one before arrived ({idle_warmup} first ones not counted), {idle_k} per round;
  each sample is the arrival of `* N EXISTS` on A minus the arrival of B's 250 after the end
  of DATA. Percentiles are over the samples of all rounds. The reference row does the same
  on one SQLite node (A = B: the change reaches IDLE sessions inside the process, and the
  EXISTS can arrive a fraction of a millisecond before the 250: negative samples). The
  messages are sent one at a time, so this is the latency of an idle system, not under load.
- **Caveats.** One machine, everything on loopback: the nodes, PostgreSQL, the peer's
  processes and the load generators share the same cores (see the cores above) and the
  same disk, so the {nodes}-node figure shows the cost of coordination through one
  database, not the capacity of {nodes} machines; with PostgreSQL the store's commits cross
  a loopback TCP connection instead of a function call. Every message goes to one account,
  as in bench/run's SMTP benchmark: with several nodes their commits contend for the same
  mailbox's counter rows (UIDs and MODSEQs come from rows the writing transaction locks),
  the worst case for a cluster; mail spread over many mailboxes contends less.
"""


# bench/run puts the section into the report, or keeps an earlier one.
_SECTION = report_section.Section(MARK_START, MARK_END)
merge_into = _SECTION.merge_into
carry_over = _SECTION.carry_over
