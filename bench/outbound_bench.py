"""bench/outbound_bench.py: the outbound benchmark (issue 9), run by `bench/run --only outbound`.

Messages per second relayed from submission to one SMTP sink over many destination domains,
and the relaying server's CPU time per message: Posthorn (A) beside Postfix from Debian (B),
rounds A B A B on fresh instances, in one run.

The world, all on loopback and the same for both servers:

- DNS: Knot DNS (`knotd`, Debian package `knot`) on 127.0.0.35 port 53, authoritative for
  `test.`: D domains d0.test … d(D-1).test, each `MX 10 mx.dI.test.`, every `mx.dI.test.`
  `A 127.0.0.2` (TTL 300). Posthorn asks it through `dns_resolver = 127.0.0.35:53`; Postfix's
  `smtp` client runs chrooted in its queue directory, whose `etc/resolv.conf` names
  127.0.0.35 (the system's /etc/resolv.conf is not touched). Port 53 because resolv.conf
  cannot name another port.
- Sink: Postfix's `smtp-sink` on 127.0.0.2 (a C event loop; it accepts everything and
  counts messages, `-c`); both servers reach it through their MX port setting
  (`outbound_port`, Postfix's `smtp_tcp_port`).
- Load: S submission sessions (threads of bench/run), each opened before the clock starts
  (Posthorn: submission port, STARTTLS, AUTH PLAIN as a local user; Postfix: its smtpd with
  STARTTLS, relaying for 127.0.0.0/8 by `mynetworks`: AUTH would need Dovecot's SASL, and
  one AUTH per session is outside the measured interval anyway) and warmed up with W
  messages; then N messages of SIZE octets, each to one recipient, recipient i in domain
  d(i mod D), spread over the sessions.
- Relay: the clock runs from the first MAIL FROM of the N to the moment the sink has counted
  them all. Drain: the N are submitted while delivery is held, then released; the clock
  runs from the release to the sink having them all (the delivery engine alone).

Standard library only; reuses bench/run's helpers (passed in as a module).
"""

import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import knot_dns
import process
import report_section

MARK_START = "<!-- outbound-bench start -->"
MARK_END = "<!-- outbound-bench end -->"

KNOTD = knot_dns.KNOTD
SMTP_SINK = "/usr/sbin/smtp-sink"
POSTFIX = "/usr/sbin/postfix"
POSTQUEUE = "/usr/sbin/postqueue"
DNS_IP = "127.0.0.35"
SINK_IP = "127.0.0.2"
SENDER_DOMAIN = "bench.test"
SENDER = "sender@" + SENDER_DOMAIN
SESSIONS = 20  # submission sessions at once (bench/run --outbound-sessions)
SIZE = 4096
WARMUP = 40  # messages per round before the clock starts (spawns Postfix's processes)


def log_default(msg):
    print("bench: " + msg, flush=True)


# ---------------------------------------------------------------------------
# The world: DNS and the sink


def zone_text(domains):
    lines = ["$TTL 300",
             "test. IN SOA ns.test. hostmaster.test. 1 60 60 600 60",
             "test. IN NS ns.test.",
             "ns.test. IN A %s" % DNS_IP]
    for i in range(domains):
        lines.append("d%d.test. IN MX 10 mx.d%d.test." % (i, i))
        lines.append("mx.d%d.test. IN A %s" % (i, SINK_IP))
    return "\n".join(lines) + "\n"


class Dns(knot_dns.Knot):
    """knotd authoritative for test. (zone_text(domains)) on DNS_IP:53."""

    def __init__(self, workdir, domains):
        super().__init__(workdir, DNS_IP, "test.", zone_text(domains), ("d0.test", "MX"))


def free_port(host):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


class Sink:
    """smtp-sink on SINK_IP:port, counting messages (-c); .count() and .time_of(n)."""

    def __init__(self):
        self.port = None
        self.proc = None
        self.updates = []  # (perf_counter, messages so far)
        self.lock = threading.Lock()

    def start(self):
        for _ in range(20):
            self.port = free_port(SINK_IP)
            self.proc = subprocess.Popen(
                [SMTP_SINK, "-c", "-u", "postfix", "-h", "sink.test", "-m", "1000",
                 "%s:%d" % (SINK_IP, self.port), "1024"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with socket.create_connection((SINK_IP, self.port), timeout=1) as c:
                        c.recv(100)
                    break
                except OSError:
                    time.sleep(0.05)
            if self.proc.poll() is None:
                break
        else:
            raise RuntimeError("smtp-sink did not start: %s" % self.proc.stderr.read())
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = b""
        while True:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                return
            now = time.perf_counter()
            buf += chunk
            *done, buf = buf.split(b"\r")
            for line in done:
                for field in line.split():
                    if field.startswith(b"mesg="):
                        n = int(field[5:])
                        with self.lock:
                            if not self.updates or n > self.updates[-1][1]:
                                self.updates.append((now, n))

    def count(self):
        with self.lock:
            return self.updates[-1][1] if self.updates else 0

    def wait(self, n, timeout, what=""):
        """Wait until the sink counted n messages; returns when (perf_counter) it did."""
        deadline = time.monotonic() + timeout
        while self.count() < n:
            if time.monotonic() > deadline:
                raise RuntimeError("sink: %d of %d messages after %.0f s %s"
                                   % (self.count(), n, timeout, what))
            time.sleep(0.01)
        with self.lock:
            for t, k in self.updates:
                if k >= n:
                    return t
        raise AssertionError("unreachable")

    def stop(self):
        self.proc = process.stop(self.proc)


# ---------------------------------------------------------------------------
# The two relays


def make_posthorn_class(R):
    class PosthornOut(R.Posthorn):
        """Posthorn with outbound delivery to the sink; the sender is a local user who
        submits on the submission port (STARTTLS + AUTH). No DKIM key: nothing is signed."""
        name = "Posthorn"
        auth = True

        def __init__(self, workdir, binary, sink_port, enabled=True):
            super().__init__(workdir, binary, users=(SENDER,))
            self.sink_port = sink_port
            self.enabled = enabled

        def _init(self):
            super()._init()
            with open(self.dir / "posthorn.conf", "a") as f:
                f.write("outbound_enabled = %s\noutbound_port = %d\n"
                        "dns_resolver = %s:53\nqueue_retry_min = 1s\nqueue_retry_max = 2s\n"
                        % ("yes" if self.enabled else "no", self.sink_port, DNS_IP))

        def release(self):
            """The queue drain: stop, turn outbound delivery on, start again (the queue is
            due at once). Returns True (a new process) as soon as it is started."""
            self.stop()
            conf = self.dir / "posthorn.conf"
            conf.write_text(conf.read_text().replace("\noutbound_enabled = no\n",
                                                     "\noutbound_enabled = yes\n"))
            self.log = open(self.dir / "serve.log", "ab")
            self.proc = subprocess.Popen([self.bin, "-c", str(conf), "serve"],
                                         stdin=subprocess.DEVNULL, stdout=self.log,
                                         stderr=subprocess.STDOUT)
            R._running.append(self)
            return True

        def held(self):
            return self.queued()

        @property
        def submit_port(self):
            return self.base + 587

        def queued(self):
            """Entries still in the queue (`posthorn queue list`)."""
            return len([x for x in self.cli("queue", "list").splitlines() if x.strip()])

    return PosthornOut


class PostfixOut:
    """A private Postfix relaying for 127.0.0.0/8 to the MX hosts of the recipients' domains
    on the sink's port: smtpd on 127.0.0.1 with STARTTLS (the same certificate and key as
    Posthorn's), the smtp client chrooted into the queue directory so that it resolves
    through the benchmark's DNS server. Everything else is Postfix's default (20 deliveries
    at once per destination, 100 smtp processes, connection cache on demand), as
    bench/peers/peer.sh does for the other benchmarks."""
    name = "Postfix"
    auth = False

    def __init__(self, workdir, sink_port, R, cert_dir, enabled=True):
        self.dir = Path(workdir) / "postfix"
        self.sink_port = sink_port
        self.enabled = enabled
        self.R = R
        self.cert_dir = Path(cert_dir)
        self.base = None
        self.master = None

    @property
    def submit_port(self):
        return self.base + 587

    @property
    def pids(self):
        return [self.master] if self.master else []

    def _write(self):
        d = self.dir
        for sub in ("etc", "queue/etc", "data", "log", "tls"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        shutil.chown(d / "data", "postfix")
        for f in ("cert.pem", "key.pem"):
            shutil.copy(self.cert_dir / f, d / "tls" / f)
        os.chmod(d / "tls" / "key.pem", 0o600)
        # The chrooted smtp client's resolver configuration, and what Debian copies into
        # a chroot besides (none of it is needed with smtp_host_lookup = dns).
        (d / "queue" / "etc" / "resolv.conf").write_text(
            "nameserver %s\noptions timeout:2 attempts:2\n" % DNS_IP)
        for f in ("services", "hosts", "localtime", "nsswitch.conf"):
            try:
                shutil.copy("/etc/" + f, d / "queue" / "etc" / f)
            except OSError:
                pass
        q = d / "queue"
        (d / "etc" / "main.cf").write_text("""\
# Private Postfix relay for the Posthorn outbound benchmark (bench/outbound_bench.py).
compatibility_level = 3.6
queue_directory = {q}
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = {d}/log
maillog_file = {d}/log/maillog
myhostname = peer.{dom}
mydomain = {dom}
myorigin = $myhostname
mydestination =
relay_domains =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_banner = $myhostname ESMTP
biff = no
append_dot_mydomain = no
alias_maps =
alias_database =
local_recipient_maps =
relayhost =
message_size_limit = 52428800
smtpd_tls_cert_file = {d}/tls/cert.pem
smtpd_tls_key_file = {d}/tls/key.pem
smtpd_tls_security_level = may
smtp_tls_security_level = may
smtp_host_lookup = dns
smtp_tcp_port = {port}
minimal_backoff_time = 1s
maximal_backoff_time = 2s
queue_run_delay = 1s
{defer}""".format(q=q, d=d, dom=SENDER_DOMAIN, port=self.sink_port,
           defer="" if self.enabled else "smtpd_client_restrictions = "
                                          "check_client_access static:HOLD\n"))
        (d / "etc" / "master.cf").write_text("""\
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       y       -       -       smtp
relay     unix  -       -       y       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
""".format(port=self.submit_port))

    def start(self):
        R = self.R
        self.base = R.pick_port_base((587,))
        self._write()
        R._running.append(self)
        p = subprocess.run([POSTFIX, "-c", str(self.dir / "etc"), "start"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError("postfix did not start: %s %s\n%s"
                               % (p.stdout, p.stderr, self.log_tail()))
        pidfile = self.dir / "queue" / "pid" / "master.pid"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                self.master = int(pidfile.read_text().strip())
                break
            except (OSError, ValueError):
                time.sleep(0.05)
        if not self.master or not R.wait_port(self.submit_port, 20):
            raise RuntimeError("postfix does not listen on %d\n%s"
                               % (self.submit_port, self.log_tail()))

    def log_tail(self):
        try:
            return (self.dir / "log" / "maillog").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def queued(self):
        """Messages still in Postfix's queue (`postqueue -p`)."""
        p = subprocess.run([POSTQUEUE, "-c", str(self.dir / "etc"), "-p"],
                           capture_output=True, text=True, timeout=60)
        if "Mail queue is empty" in p.stdout:
            return 0
        return len([x for x in p.stdout.splitlines() if x[:1].isalnum()
                    and not x.startswith("-Queue ID")])

    def _files(self, sub):
        n = 0
        for _, _, files in os.walk(self.dir / "queue" / sub):
            n += len(files)
        return n

    def held(self):
        """Messages in the hold queue, 0 while any is still incoming."""
        if self._files("incoming") or self._files("maildrop"):
            return 0
        return self._files("hold")

    def release(self):
        """The queue drain: `postsuper -H ALL` (held mail to the deferred queue), then
        `postqueue -f` (deliver the deferred queue now)."""
        for cmd in (["/usr/sbin/postsuper", "-c", str(self.dir / "etc"), "-H", "ALL"],
                    [POSTQUEUE, "-c", str(self.dir / "etc"), "-f"]):
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            if p.returncode != 0:
                raise RuntimeError("%s: %s" % (" ".join(cmd), p.stderr.strip()))
        return False

    def stop(self):
        if self.master:
            subprocess.run([POSTFIX, "-c", str(self.dir / "etc"), "stop"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(self.master, 0)
                except OSError:
                    break
                time.sleep(0.1)
            else:
                try:
                    os.kill(self.master, signal.SIGKILL)
                except OSError:
                    pass
            self.master = None
        if self in self.R._running:
            self.R._running.remove(self)


# ---------------------------------------------------------------------------
# The load


def message(i, rcpt, size=SIZE):
    head = ("From: Bench Sender <%s>\r\nTo: <%s>\r\nSubject: outbound bench %d\r\n"
            "Message-ID: <outbound-%d@%s>\r\nDate: Sun, 06 Dec 2026 10:00:00 +0000\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            % (SENDER, rcpt, i, i, SENDER_DOMAIN)).encode()
    line = b"The quick brown fox jumps over the lazy dog, message %d. " % i
    body = bytearray()
    while len(head) + len(body) < size - 80:
        body += line[:70] + b"\r\n"
    return head + bytes(body)


def recipients(start, n, domains):
    return [("rcpt%d@d%d.test" % (i, i % domains), i) for i in range(start, start + n)]


class Client(threading.Thread):
    """One submission session: opened (STARTTLS, AUTH when the server wants it) and warmed
    up before the clock; then it sends its share of the measured messages at `go`."""

    def __init__(self, port, auth, warm, load, go):
        super().__init__(daemon=True)
        self.port, self.auth, self.warm, self.load, self.go = port, auth, warm, load, go
        self.ready = threading.Event()
        self.error = None
        self.done_at = None

    def run(self):
        try:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with smtplib.SMTP("127.0.0.1", self.port, timeout=300,
                              local_hostname="client.test") as s:
                s.starttls(context=ctx)
                if self.auth:
                    s.login(SENDER, "bench-" + SENDER)
                for rcpt, i in self.warm:
                    s.sendmail(SENDER, [rcpt], message(i, rcpt))
                self.ready.set()
                self.go.wait()
                for rcpt, i in self.load:
                    s.sendmail(SENDER, [rcpt], message(i, rcpt))
                self.done_at = time.perf_counter()
        except Exception as e:  # reported by the round
            self.error = e
            self.ready.set()


def start_clients(server, warm, load, sessions, go):
    threads = [Client(server.submit_port, server.auth, warm[k::sessions], load[k::sessions], go)
               for k in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.ready.wait(120)
        if t.error:
            go.set()
            raise RuntimeError("%s: submission failed: %r\n%s"
                               % (server.name, t.error, server.log_tail()))
    return threads


def join_clients(server, threads):
    """Wait for the sessions; returns when the last one had its last 250 (perf_counter)."""
    for t in threads:
        t.join(900)
        if t.error or t.done_at is None:
            raise RuntimeError("%s: submission failed: %r\n%s"
                               % (server.name, t.error, server.log_tail()))
    return max(t.done_at for t in threads)


def check_empty(server, sink, expected):
    """Every message left the queue, and the sink has none more than expected."""
    deadline = time.monotonic() + 30
    while server.queued() and time.monotonic() < deadline:
        time.sleep(0.2)
    left = server.queued()
    time.sleep(0.3)
    extra = sink.count() - expected
    if left or extra:
        raise RuntimeError("%s: %d entries still queued, %d messages more than sent at the "
                           "sink" % (server.name, left, extra))


def relay_round(R, server, sink, knobs):
    """Submission and relay at once on a started server: warm-up, then N messages; the clock
    runs from the first submission to the sink having them all. Returns a dict."""
    n, domains, sessions = (knobs["outbound_messages"], knobs["outbound_domains"],
                            knobs["outbound_sessions"])
    base = sink.count()
    warm = recipients(0, WARMUP, domains)
    load = recipients(WARMUP, n, domains)
    go = threading.Event()
    threads = start_clients(server, warm, load, sessions, go)
    sink.wait(base + WARMUP, 120, "(warm-up, %s)\n%s" % (server.name, server.log_tail()))
    time.sleep(0.5)
    cpu0 = R.tree_cpu(server.pids)
    t0 = time.perf_counter()
    go.set()
    t_sub = join_clients(server, threads)
    t1 = sink.wait(base + WARMUP + n, 600, "(%s)\n%s" % (server.name, server.log_tail()))
    cpu1 = R.tree_cpu(server.pids)
    check_empty(server, sink, base + WARMUP + n)
    return {"seconds": t1 - t0, "rate": n / (t1 - t0), "submit_rate": n / (t_sub - t0),
            "cpu_ms_per_msg": (cpu1 - cpu0) * 1000.0 / n, "cpu_s": cpu1 - cpu0}


def drain_round(R, server, sink, knobs):
    """The delivery engine alone: N messages submitted while delivery is held (Posthorn
    `outbound_enabled = no`, Postfix: on hold), then released (Posthorn: restarted with
    delivery on; Postfix: `postsuper -H ALL`, `postqueue -f`); the clock runs from the
    release to the sink having them all. Returns a dict."""
    n, domains, sessions = (knobs["outbound_messages"], knobs["outbound_domains"],
                            knobs["outbound_sessions"])
    base = sink.count()
    go = threading.Event()
    threads = start_clients(server, [], recipients(0, n, domains), sessions, go)
    s0 = time.perf_counter()
    go.set()
    s1 = join_clients(server, threads)
    deadline = time.monotonic() + 120
    while server.held() != n:
        if time.monotonic() > deadline:
            raise RuntimeError("%s: %d of %d messages held in the queue\n%s"
                               % (server.name, server.held(), n, server.log_tail()))
        time.sleep(0.1)
    time.sleep(0.5)
    if sink.count() != base:
        raise RuntimeError("%s: delivered while held" % server.name)
    cpu0 = R.tree_cpu(server.pids)
    t0 = time.perf_counter()
    if server.release():
        cpu0 = 0.0  # a new process: all of its CPU time counts
    t1 = sink.wait(base + n, 600, "(drain, %s)\n%s" % (server.name, server.log_tail()))
    cpu1 = R.tree_cpu(server.pids)
    check_empty(server, sink, base + n)
    return {"seconds": t1 - t0, "rate": n / (t1 - t0), "submit_rate": n / (s1 - s0),
            "cpu_ms_per_msg": (cpu1 - cpu0) * 1000.0 / n, "cpu_s": cpu1 - cpu0}


def run(R, binary, top, knobs, log=log_default):
    """All rounds, A B A B: in each, a fresh instance per server for the relay and another
    for the drain. Returns {"A": [round...], "B": [...], knobs}; a round is
    {"relay": {...}, "drain": {...}}."""
    top = Path(top)
    res = {"A": [], "B": [], "messages": knobs["outbound_messages"],
           "domains": knobs["outbound_domains"], "sessions": knobs["outbound_sessions"],
           "size": SIZE, "warmup": WARMUP}
    dns = Dns(top / "outbound-world", knobs["outbound_domains"])
    sink = Sink()
    PosthornOut = make_posthorn_class(R)
    certs = top / "outbound-1-A-relay" / "posthorn" / "tls"  # Postfix uses Posthorn's

    def make(key, d, enabled):
        if key == "A":
            return PosthornOut(d, binary, sink.port, enabled)
        return PostfixOut(d, sink.port, R, certs, enabled)

    try:
        dns.start()
        sink.start()
        log("outbound: DNS on %s:53 (%d domains), smtp-sink on %s:%d"
            % (DNS_IP, knobs["outbound_domains"], SINK_IP, sink.port))
        for i in range(1, knobs["rounds"] + 1):
            for key in ("A", "B"):
                # Both servers fsync every message: the disk's speed of the moment decides
                # much (it drifts on a shared machine), so each round shows it.
                r = {"fsync": R.fsync_probe.probe(str(top), knobs.get("probe_s", 0.5))[0]}
                res.setdefault("fsync_all", []).append(r["fsync"])
                for phase, fn in (("relay", relay_round), ("drain", drain_round)):
                    d = top / ("outbound-%d-%s-%s" % (i, key, phase))
                    d.mkdir()
                    os.chmod(d, 0o755)
                    srv = make(key, d, phase == "relay")
                    try:
                        srv.start()
                        r[phase] = fn(R, srv, sink, knobs)
                    finally:
                        srv.stop()
                res[key].append(r)
                log("round %d %-10s fsync %5.0f/s  relay %6.1f msgs/s (submitted %6.1f/s) "
                    "%.3f ms CPU/msg;  submission alone %6.1f/s;  "
                    "drain %6.1f msgs/s %.3f ms CPU/msg"
                    % (i, srv.name, r["fsync"], r["relay"]["rate"], r["relay"]["submit_rate"],
                       r["relay"]["cpu_ms_per_msg"], r["drain"]["submit_rate"],
                       r["drain"]["rate"], r["drain"]["cpu_ms_per_msg"]))
    finally:
        sink.stop()
        dns.stop()
    return res


# ---------------------------------------------------------------------------
# The report section


def report(res, info, R):
    A, B = res["A"], res["B"]
    rows = []

    def vals(runs, phase, key):
        return [r[phase][key] if phase else key(r) for r in runs]

    def row(name, phase, key, digits, better):
        a, b = vals(A, phase, key), vals(B, phase, key)
        per_round = [R.ratio(x, y) for x, y in zip(a, b)]
        lo, hi, _ = R.spread(per_round)
        rows.append("| %s | %s | %s | **%.2f×** (rounds %.2f–%.2f) | %s |"
                    % (name, R.cell(a, digits), R.cell(b, digits), R.ratio(R.med(a), R.med(b)),
                       lo, hi, better))

    def ratio(phase, key):
        return R.ratio(R.med(vals(A, phase, key)), R.med(vals(B, phase, key)))

    row("relay: messages/s, first submission → sink has all", "relay", "rate", 1, "higher")
    row("relay: CPU time per message, ms", "relay", "cpu_ms_per_msg", 3, "lower")
    row("relay: messages/s submitted (last 250 to the clients)", "relay", "submit_rate", 1,
        "higher")
    row("submission alone (delivery held): messages/s", "drain", "submit_rate", 1, "higher")
    row("drain of a held queue: messages/s, release → sink has all", "drain", "rate", 1,
        "higher")
    row("drain: CPU time per message, ms", "drain", "cpu_ms_per_msg", 3, "lower")
    if all("fsync" in r for r in A + B):
        row("relay: messages per fsync (relay rate / the fsync rate probed before the round)",
            None, lambda r: r["relay"]["rate"] / r["fsync"], 3, "higher")
    rate, cpu = ratio("relay", "rate"), ratio("relay", "cpu_ms_per_msg")
    met = rate >= 1.0 and cpu < 1.0
    fs = res.get("fsync_all") or [info["fsync"]]
    out = [MARK_START, "## Outbound relay", "",
           "Run %s on %s (%s cores), Postfix %s (Debian); `bench/run --only outbound`. "
           "%d rounds A B; per round and server %d messages of %d octets, one recipient each, "
           "over %d domains, from %d submission sessions at once, relayed to one `smtp-sink`; "
           "fsync rate of the disk (4 KiB append + fsync, probed before each server's round): "
           "median %.0f /s (%.0f–%.0f)."
           % (info["date"], info["cpu"], info["cores"], info["postfix"], len(A),
              res["messages"], res["size"], res["domains"], res["sessions"], R.med(fs), min(fs),
              max(fs)), "",
           "| benchmark | Posthorn: median (min–max, ±spread) | Postfix: median (min–max, "
           "±spread) | Posthorn / Postfix | better |",
           "|---|---|---|---|---|"] + rows + [
           "",
           "Goal of issue 9 (relay at least as fast as Postfix, with less CPU per message): "
           "**%s** (%.2f× the rate, %.2f× the CPU per message; drain alone %.2f× the rate, "
           "%.2f× the CPU)." % ("met" if met else "not met", rate, cpu,
                                ratio("drain", "rate"), ratio("drain", "cpu_ms_per_msg")), "",
           "### Rounds", "",
           "| round | server | fsync/s before | relay msgs/s | seconds | submitted msgs/s | CPU s "
           "| CPU ms/msg | submission alone msgs/s | drain msgs/s | seconds | CPU s | CPU ms/msg |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for i, (a, b) in enumerate(zip(A, B), 1):
        for name, r in (("Posthorn", a), ("Postfix", b)):
            x, y = r["relay"], r["drain"]
            out.append("| %d | %s | %.0f | %.1f | %.2f | %.1f | %.2f | %.3f | %.1f | %.1f | %.2f "
                       "| %.2f | %.3f |"
                       % (i, name, r.get("fsync", 0), x["rate"], x["seconds"], x["submit_rate"],
                          x["cpu_s"],
                          x["cpu_ms_per_msg"], y["submit_rate"], y["rate"], y["seconds"],
                          y["cpu_s"], y["cpu_ms_per_msg"]))
    out += ["", METHOD.format(**res), MARK_END]
    return "\n".join(out)


METHOD = """\
### How the outbound relay is measured

- **World** (the same for both, started once per run): Knot DNS (`knotd`) on 127.0.0.35
  port 53, authoritative for `test.`, with {domains} domains `d0.test` … each with
  `MX 10 mx.dI.test`, every MX host `A 127.0.0.2` (TTL 300); Postfix's `smtp-sink` on
  127.0.0.2 accepts every message and counts it (`-c`, read as it goes). Both servers reach
  the MX hosts on the sink's port: Posthorn's `outbound_port`, Postfix's `smtp_tcp_port`.
- **DNS for each server.** Posthorn: `dns_resolver = 127.0.0.35:53` (libunbound, which
  caches the answers for their TTL). Postfix has no resolver setting: its `smtp` client runs
  chrooted in its queue directory (as Debian runs it by default) with its own
  `etc/resolv.conf` naming 127.0.0.35, so it asks the same server through the C library's
  stub resolver, which caches nothing (queries per delivery, answered by Knot in
  microseconds; Knot's CPU is counted for neither).
- **Submission.** {sessions} sessions at once (threads of bench/run, Python's `smtplib`),
  each sending its share one message after another, opened before the clock: Posthorn on
  its submission port with STARTTLS and `AUTH PLAIN` as a local user; Postfix on its smtpd
  with STARTTLS, relaying for 127.0.0.0/8 by `mynetworks` (AUTH in Postfix needs a SASL
  server such as Dovecot's; with sessions opened before the clock it would not change the
  measured interval). The same certificate (RSA 2048) on both. Messages are {size} octets
  of text with one recipient; recipient i is in domain `d(i mod {domains}).test`. Both
  servers reply 250 only when the message is on disk (fsynced).
- **Relay** (submission and delivery at once; fresh instances): each session first sends
  its part of {warmup} warm-up messages (Postfix spawns its `smtpd`, `cleanup`, `qmgr` and
  `smtp` processes) and the sink must have them all; then the clock starts and the sessions
  send the {messages} measured messages. *messages/s* = {messages} / (time from the start
  of the measured submissions to the moment the sink has counted every message);
  *submitted* = the same over the time until the last session got its last 250.
- **Drain** (the delivery engine alone; other fresh instances): the {messages} messages
  are submitted while delivery is held (Posthorn `outbound_enabled = no`; Postfix puts every
  message on hold, `smtpd_client_restrictions = check_client_access static:HOLD`), then
  released: Posthorn is stopped and started with `outbound_enabled = yes` (its start-up is
  inside the measured time and CPU, a few ms), Postfix gets `postsuper -H ALL` (hold queue
  to deferred queue) and `postqueue -f` (both inside the measured time; the commands' own
  few ms of CPU are not in master's tree, the work they start is).
  *Submission alone* is the rate of those held submissions (sessions opened first, then
  the clock from the first MAIL FROM to the last 250): what the relay figure would be if
  delivery cost nothing. The clock runs from
  the release to the sink having every message. Postfix's connection cache reuses
  connections to a destination with a backlog; Posthorn opens one connection per queue
  entry (no reuse yet).
- After each phase the queue must be empty (`posthorn queue list`, `postqueue -p`) and the
  sink must have no message more than was sent.
- **CPU time per message**: user + system time of the relaying server over the measured
  interval, from `/proc` as in the other benchmarks: Posthorn's one process (all
  threads); for Postfix the tree of its `master` (every live process plus the time of the
  children master has reaped: `smtpd`, `cleanup`, `qmgr`, `trivial-rewrite`, `smtp`, …),
  divided by {messages}. The sink, the DNS server and the clients are not counted.
- **Settings**: both at their defaults for concurrency (Posthorn `outbound_concurrency =
  100`, `outbound_domain_concurrency = 20`; Postfix 100 `smtp` processes, 20 per
  destination, connection cache on demand) and with opportunistic TLS (the sink offers no
  STARTTLS, so every delivery is plaintext). No DKIM signing on either (Posthorn has no key
  for the sender's domain; Postfix has no milter). Retries after 1 s on both, in case a
  delivery fails (none should). Posthorn `log_level = warn`; Postfix logs one line per
  delivery to its own file through `postlogd`.
"""


# bench/run puts the section into the report, or keeps an earlier one.
_SECTION = report_section.Section(MARK_START, MARK_END)
merge_into = _SECTION.merge_into
carry_over = _SECTION.carry_over
