#!/usr/bin/python3
"""Power loss: the server's data directory lives on powerfs (powerfs.py), which keeps only
what was made durable (fsync of a file for its bytes, fsync of a directory for its names).
Each round starts the server on what the previous cut left, checks that every message
acknowledged so far (250 to SMTP DATA, OK to IMAP APPEND) is there byte for byte, then
delivers with several concurrent SMTP and IMAP clients (random sizes, bodies below and above
store_inline_max), SIGKILLs the server in the middle of that traffic, restarts it on what
the page cache holds (a crash), delivers again, SIGKILLs it and cuts the power.
The last round also stops cleanly and checks the store: SQLite's integrity_check and
foreign_key_check on every surviving state, every stored message readable over IMAP.

    powerloss.py [--rounds N] [--unsafe | --both] [--engine sqlite|postgresql|all]
                 [--seed S] [--seconds T]

--engine postgresql puts a PostgreSQL cluster's data directory on the layer instead (the
store is then all in the database). --unsafe is the negative control: the server runs with
POSTHORN_TEST_UNSAFE_NOSYNC=1 (test builds only: no fsync anywhere, SQLite
synchronous=OFF), PostgreSQL with fsync=off, and the run must LOSE messages;
the exit status is 0 when it does, 1 when it does not (the harness would then be blind).
Without --unsafe the exit status is 0 when nothing acknowledged was lost or truncated.

run_powerloss() is the entry for the durability matrix (tests/durability/). Needs root,
/dev/fuse and python3-fusepy (tests/deps.sh); fuse_unavailable() says why not, or None.
"""

import argparse
import base64
import imaplib
import json
import os
import random
import shutil
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

from conftest import BIN, HOST, USERS, RawSMTP, Server, sanitizer_lines  # noqa: E402

POWERFS = HERE / "powerfs.py"
SMTP_USER = "demo@example.test"
IMAP_USER = "alice@example.test"
INLINE_MAX = 128 * 1024  # store_inline_max, set in the configuration below


def fuse_unavailable():
    """None when powerfs can run here, else the reason why not."""
    if os.geteuid() != 0:
        return "needs root (mounting a FUSE file system)"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    try:
        import fusepy  # noqa: F401
    except ImportError:
        return "python3-fusepy is not installed (tests/deps.sh)"
    if not Path(BIN).exists():
        return "no server binary at %s" % BIN
    return _trial_mount()


def _trial_mount():
    """None when a powerfs mount works here (a container may lack the right to mount)."""
    work = Path(tempfile.mkdtemp(prefix="posthorn-powerfs-probe."))
    layer = Layer(work / "mnt", work)
    (work / "empty").mkdir()
    try:
        layer.mount(work / "empty")
        layer.unmount()
        return None
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        if layer.proc is not None and layer.proc.poll() is None:
            layer.proc.kill()
        return "cannot mount a FUSE file system here: %s" % str(e).strip()[-300:]
    finally:
        shutil.rmtree(work, ignore_errors=True)


class Layer:
    """One powerfs mount at a time at mnt; each unmount leaves a state directory."""

    def __init__(self, mnt, work):
        self.mnt, self.work = Path(mnt), Path(work)
        self.proc, self.state, self.n = None, None, 0

    def mount(self, load_dir, env=None):
        self.n += 1
        self.state = self.work / ("state%d" % self.n)
        self.mnt.mkdir(parents=True, exist_ok=True)
        self.log = open(self.work / ("powerfs%d.log" % self.n), "wb")
        self.proc = subprocess.Popen(["/usr/bin/python3", "-W", "ignore", str(POWERFS),
                                      str(self.mnt), str(self.state), str(load_dir)],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **(env or {})))
        deadline = time.monotonic() + 20
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("powerfs did not mount: " + (
                    self.work / ("powerfs%d.log" % self.n)).read_text())
            time.sleep(0.05)

    def unmount(self):
        """Unmount (every user must be dead); returns the state directory."""
        for _ in range(50):
            if subprocess.run(["umount", str(self.mnt)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["umount", "-l", str(self.mnt)])
        self.proc.wait(120)
        self.log.close()
        if not (self.state / "durable").is_dir():
            raise RuntimeError("powerfs left no state: " + (
                self.work / ("powerfs%d.log" % self.n)).read_text())
        return self.state


WORDS = [w.encode() for w in (
    "the quick brown fox jumps over lazy dog mail server power loss durable fsync write "
    "directory rename commit journal page block sector cache volatile stable storage disk "
    "message body header subject sender recipient mailbox folder inbox archive draft sent "
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
    "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu one two "
    "three four five six seven eight nine ten red green blue yellow orange purple black "
    "white river mountain forest ocean island desert valley meadow garden castle bridge").split()]


def make_message(rng, subject, kind):
    """A message of random size: small ones stay below store_inline_max (stored in the
    database), large ones above it (a file under data/messages/)."""
    if kind == "small":
        size = rng.randrange(200, 4000)
    elif kind == "large":
        size = rng.randrange(INLINE_MAX + 1, INLINE_MAX * 3)
    else:
        size = rng.randrange(1 << 20, 2 << 20)
    head = ("From: <s@remote.test>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@t>\r\n\r\n"
            % (SMTP_USER, subject, subject)).encode()
    # Words, as mail has (random base64 would make the search index the whole cost).
    lines, left = [], size - len(head)
    while left > 0:
        line = b" ".join(rng.choices(WORDS, k=12))[:max(1, left - 2)]
        lines.append(line)
        left -= len(line) + 2
    return head + b"\r\n".join(lines) + b"\r\n"


def pick_kind(rng):
    r = rng.random()
    return "small" if r < 0.6 else "large" if r < 0.95 else "huge"


class Traffic:
    """Concurrent clients; acked maps subject -> (protocol, bytes) once acknowledged."""

    def __init__(self, srv, seed, tag):
        self.srv, self.seed, self.tag = srv, seed, tag
        self.acked, self.lock = {}, threading.Lock()
        self.stop = threading.Event()
        self.threads, self.errors, self.sent = [], [], 0

    def start(self, smtp_clients=3, imap_clients=2, submission_clients=1):
        for i in range(smtp_clients):
            self.threads.append(threading.Thread(target=self._smtp, args=(i,), daemon=True))
        for i in range(submission_clients):
            self.threads.append(threading.Thread(target=self._submit, args=(i,), daemon=True))
        for i in range(imap_clients):
            self.threads.append(threading.Thread(target=self._imap, args=(i,), daemon=True))
        for t in self.threads:
            t.start()

    def wait_acked(self, n, timeout=60):
        """Until at least n messages were acknowledged in this round (so that every round
        has something to lose)."""
        deadline = time.monotonic() + timeout
        while len(self.acked) < n and time.monotonic() < deadline:
            if not any(t.is_alive() for t in self.threads):
                break
            time.sleep(0.02)

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def _ack(self, subject, proto, msg):
        with self.lock:
            self.acked[subject] = (proto, msg)

    def _smtp(self, i):
        rng = random.Random("%s-smtp-%d" % (self.seed, i))
        n = 0
        try:
            with RawSMTP(self.srv.smtp_port, timeout=30) as c:
                c.ehlo()
                while not self.stop.is_set():
                    n += 1
                    subj = "pl-%s-s%d-%d" % (self.tag, i, n)
                    msg = make_message(rng, subj, pick_kind(rng))
                    c.send("MAIL FROM:<s@remote.test>\r\nRCPT TO:<%s>\r\nDATA\r\n" % SMTP_USER)
                    for _ in range(3):
                        if c.read_reply().code not in (250, 354):
                            raise RuntimeError("SMTP refused")
                    c.send(msg + b".\r\n")
                    if c.read_reply(timeout=60).code == 250:
                        self._ack(subj, "smtp", msg)
        except Exception as e:  # the kill ends every session
            self.errors.append("smtp%d: %r" % (i, e))

    def _submit(self, i):
        """Mail to a remote domain: 250 on port 587 means queued (outbound delivery is
        off in the tests); the queue entry is checked by recipient and size."""
        rng = random.Random("%s-sub-%d" % (self.seed, i))
        n = 0
        try:
            with RawSMTP(self.srv.submission_port, timeout=30) as c:
                c.ehlo()
                c.starttls()
                c.ehlo()
                auth = base64.b64encode(b"\0%s\0%s" % (SMTP_USER.encode(),
                                                       USERS[SMTP_USER].encode())).decode()
                if c.cmd("AUTH PLAIN " + auth).code != 235:
                    raise RuntimeError("AUTH refused")
                while not self.stop.is_set():
                    n += 1
                    subj = "pl-%s-q%d-%d" % (self.tag, i, n)
                    msg = make_message(rng, subj, pick_kind(rng)).replace(
                        b"To: <%s>" % SMTP_USER.encode(), b"To: <%s@remote.test>" % subj.encode())
                    c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s@remote.test>\r\nDATA\r\n"
                           % (SMTP_USER, subj))
                    for _ in range(3):
                        if c.read_reply().code not in (250, 354):
                            raise RuntimeError("submission refused")
                    c.send(msg + b".\r\n")
                    if c.read_reply(timeout=60).code == 250:
                        self._ack(subj, "queue", msg)
        except Exception as e:
            self.errors.append("submission%d: %r" % (i, e))

    def _imap(self, i):
        rng = random.Random("%s-imap-%d" % (self.seed, i))
        n = 0
        try:
            c = imaplib.IMAP4_SSL(HOST, self.srv.base + 993, ssl_context=tls_ctx(), timeout=30)
            c.login(IMAP_USER, USERS[IMAP_USER])
            while not self.stop.is_set():
                n += 1
                subj = "pl-%s-i%d-%d" % (self.tag, i, n)
                msg = make_message(rng, subj, pick_kind(rng))
                typ, _ = c.append("INBOX", None, None, msg)
                if typ == "OK":
                    self._ack(subj, "imap", msg)
        except Exception as e:
            self.errors.append("imap%d: %r" % (i, e))


def tls_ctx():
    """The test certificate is self-signed (no CA bundle to load)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def stored_messages(srv, user):
    """subject -> list of stored bytes, read over IMAP (every body must be readable)."""
    c = imaplib.IMAP4_SSL(HOST, srv.base + 993, ssl_context=tls_ctx(), timeout=120)
    c.login(user, USERS[user])
    typ, data = c.select("INBOX", readonly=True)
    assert typ == "OK", data
    out = {}
    if int(data[0]) > 0:
        typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[])")
        assert typ == "OK", data
        for item in data:
            if not isinstance(item, tuple):
                continue
            body = item[1]
            start = body.find(b"\r\nSubject: ")
            subj = body[start + 11:body.find(b"\r\n", start + 11)].decode() if start >= 0 else ""
            out.setdefault(subj, []).append(body)
    c.logout()
    return out


def check_acked(srv, acked):
    """Counts (lost, truncated, duplicated) over every acknowledged message, plus details."""
    have = {}
    have.update(stored_messages(srv, SMTP_USER))
    for k, v in stored_messages(srv, IMAP_USER).items():
        have.setdefault(k, []).extend(v)
    queued = {}
    if any(p == "queue" for p, _ in acked.values()):
        for e in srv.queue_entries():
            for r in srv.queue_show(e["id"])["recipients"]:
                queued.setdefault(r["address"].split("@")[0], []).append(e["size"])
    lost, truncated, duplicated, details = 0, 0, 0, []
    for subj, (proto, msg) in acked.items():
        if proto == "queue":
            sizes = queued.get(subj)
            if not sizes:
                lost += 1
                details.append("lost %s (queued, %d octets)" % (subj, len(msg)))
            elif sizes[0] < len(msg):
                truncated += 1
                details.append("queue entry %s of %d octets, %d sent" % (
                    subj, sizes[0], len(msg)))
            duplicated += len(sizes or []) > 1
            continue
        got = have.get(subj)
        if not got:
            lost += 1
            details.append("lost %s (%s, %d octets)" % (subj, proto, len(msg)))
            continue
        if len(got) > 1:
            duplicated += 1
        ok = got[0].endswith(msg) if proto == "smtp" else got[0] == msg
        if not ok:
            truncated += 1
            details.append("differs %s (%s, %d octets sent, %d stored)" % (
                subj, proto, len(msg), len(got[0])))
    return lost, truncated, duplicated, details


def check_sqlite(state_dir, work):
    """integrity_check and foreign_key_check of the database a cut left (on a copy, so
    that the WAL recovery happens there); returns a list of problems."""
    copy = Path(tempfile.mkdtemp(dir=work, prefix="dbcheck"))
    try:
        for name in ("posthorn.db", "posthorn.db-wal"):
            if (state_dir / name).exists():
                shutil.copy(state_dir / name, copy / name)
        if not (copy / "posthorn.db").exists():
            return ["no posthorn.db survived"]
        db = sqlite3.connect(str(copy / "posthorn.db"))
        problems = [r[0] for r in db.execute("PRAGMA integrity_check") if r[0] != "ok"]
        problems += ["foreign key: %r" % (r,) for r in db.execute("PRAGMA foreign_key_check")]
        db.close()
        return problems
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def db_check_cli(srv):
    """`posthorn db check`, when this build has it (the store's own integrity check)."""
    usage = subprocess.run([BIN, "-c", str(srv.conf), "db"], capture_output=True, text=True)
    if "db check" not in usage.stdout + usage.stderr:
        return []
    p = subprocess.run([BIN, "-c", str(srv.conf), "db", "check"], capture_output=True,
                       text=True, timeout=300)
    return [] if p.returncode == 0 else ["posthorn db check: %s" % (p.stdout + p.stderr)]


class PgCluster:
    """A PostgreSQL cluster (tests/pg_cluster.sh) whose data directory goes on the layer."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.data = self.dir / "data"
        self.options = ""
        self.pid = None
        self.bin = next(p for p in ("/usr/lib/postgresql/%s/bin" % v for v in (15, 16, 17))
                        if Path(p, "pg_ctl").exists())

    def create(self):
        url = subprocess.run(["sh", str(HERE.parent / "pg_cluster.sh"), "start", str(self.dir)],
                             check=True, capture_output=True, text=True).stdout.strip()
        self.port = (self.dir / "port").read_text().strip()
        return url

    def _pg_ctl(self, *args):
        return subprocess.run(["runuser", "-u", "postgres", "--", self.bin + "/pg_ctl", "-D",
                               str(self.data)] + list(args), capture_output=True, text=True,
                              timeout=180)

    def start(self):
        p = self._pg_ctl("-l", str(self.dir / "server.log"), "-w", "-t", "120", "start", "-o",
                         "-p %s -c max_connections=100 -c listen_addresses=127.0.0.1 "
                         "-c unix_socket_directories='%s' %s" % (self.port, self.dir,
                                                                 self.options))
        if p.returncode != 0:
            raise RuntimeError("PostgreSQL did not start: %s%s" % (
                p.stderr, (self.dir / "server.log").read_text()[-3000:]))
        # Kept: at the cut, postmaster.pid is read through the layer, which a loaded machine
        # has seen fail (the postmaster then outlived the cut).
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])

    def clear_locks(self):
        """After a power cut nothing from before it runs. Here the killed postmaster may
        still be a zombie (PID 1 reaps it when it does; it holds nothing any more), which
        PostgreSQL would take for a live server holding its lock files: postmaster.pid
        in the data directory and the socket's lock beside the socket."""
        (self.data / "postmaster.pid").unlink(missing_ok=True)
        for f in (".s.PGSQL.%s.lock" % self.port, ".s.PGSQL.%s" % self.port):
            (self.dir / f).unlink(missing_ok=True)

    def stop(self):
        if self._pg_ctl("-m", "fast", "-w", "stop").returncode == 0:
            self.pid = None  # gone: the number may be another process's by now

    def kill(self):
        """SIGKILL the postmaster and every child of it (stopped first: it forks no more)."""
        pid, self.pid = self.pid, None
        if pid is None:
            return
        try:
            os.kill(pid, 19)  # SIGSTOP
        except ProcessLookupError:
            return
        victims = [pid]
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    stat_ = Path("/proc", d, "stat").read_text()
                except OSError:
                    continue
                if int(stat_.rsplit(")", 1)[1].split()[1]) == pid:
                    victims.append(int(d))
        for v in victims:
            try:
                os.kill(v, 9)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30
        for v in victims:
            while time.monotonic() < deadline:
                try:
                    state = Path("/proc", str(v), "stat").read_text().rsplit(")", 1)[1].split()[0]
                except OSError:
                    break
                if state in ("Z", "X"):
                    break
                time.sleep(0.02)
            else:
                raise RuntimeError("PostgreSQL process %d outlived SIGKILL" % v)


def setup_accounts(srv, users=(SMTP_USER, IMAP_USER)):
    for d in sorted({u.split("@")[1] for u in users}):
        srv.cli("domain", "add", d)
    for addr in users:
        srv.add_user(addr, USERS[addr])


def run_powerloss(rounds=3, unsafe=False, seed=None, seconds=3.0, workdir=None, log=print,
                  fresh=None, min_acked=2, crash=True, engine="sqlite"):
    """The power-loss run (fresh: the store is created on the layer, else `posthorn init`'s
    store and the accounts are the durable starting point; by default fresh unless unsafe);
    engine "postgresql" puts a cluster's data directory on the layer instead;
    returns a dict: iterations, acked (smtp, imap), lost, truncated,
    duplicated, problems (integrity), details, cut (what the cuts discarded)."""
    seed = seed if seed is not None else random.randrange(1 << 30)
    if fresh is None:
        # The negative control starts from a durable store with its accounts: what it loses
        # is then the mail, not the accounts added beside an unsafe server.
        fresh = not unsafe
    rng = random.Random(seed)
    work = Path(workdir or tempfile.mkdtemp(prefix="posthorn-powerloss."))
    conf = {"store_inline_max": "128K", "log_level": "info"}
    pg = None
    if engine == "postgresql":
        # PostgreSQL's data directory on the layer; the cluster, the schema and the
        # accounts are the durable starting point. The negative control: fsync=off.
        work.chmod(0o755)  # the postgres user reaches its directory
        pg = PgCluster(work / "pg")
        srv = Server(work / "server", extra_conf=conf, store_url=pg.create())
        setup_accounts(srv)
        pg.stop()
        if unsafe:
            pg.options = "-c fsync=off"
        data, base, fresh = pg.data, work / "base", False
        shutil.move(str(data), str(base))
        data.mkdir(mode=0o700)
        shutil.chown(data, "postgres")
        base.chmod(0o700)
    else:
        srv = Server(work / "server", extra_conf=conf)
        data, base = srv.dir / "data", work / "base"
    if unsafe and not pg:
        srv.env = dict(os.environ, POSTHORN_TEST_UNSAFE_NOSYNC="1")
    if not pg and fresh:
        # An empty data directory: the store itself is created on the layer.
        shutil.rmtree(data)
        base.mkdir()
        data.mkdir()
    elif not pg:
        # What `posthorn init` and the account set-up left is the durable starting point.
        setup_accounts(srv)
        shutil.move(str(data), str(base))
        data.mkdir()
    layer = Layer(data, work)
    layer.mount(base)
    acked = {}
    res = {"seed": seed, "unsafe": unsafe, "iterations": 0, "acked_smtp": 0, "acked_imap": 0,
           "acked_queue": 0,
           "lost": 0, "truncated": 0, "duplicated": 0, "problems": [], "details": [],
           "cut_files": 0, "cut_names": 0}
    try:
        for r in range(rounds + 1):
            if r > 0:
                layer.mount(load)
            if pg:
                if r > 0:
                    pg.clear_locks()
                pg.start()
            srv.start()
            if fresh and r == 0:
                # The server created the store; accounts are added beside it, as an
                # administrator does after a first start.
                setup_accounts(srv)
            if acked:
                lost, trunc, dup, details = check_acked(srv, acked)
                res["lost"], res["truncated"], res["duplicated"] = lost, trunc, dup
                res["details"] = details[:20]
            if r == rounds:
                if pg:
                    res["problems"] += db_check_cli(srv)
                if srv.stop() != 0:
                    res["problems"].append("server did not stop cleanly")
                res["problems"] += sanitizer_lines(srv.log_text())
                if pg:
                    pg.stop()
                state = layer.unmount()
                if not pg:
                    res["problems"] += check_sqlite(state / "current", work)
                break
            # A crash first (SIGKILL, restart on what the page cache holds), then traffic
            # again, SIGKILL and the power cut: what a crash left half done (a directory
            # made but not synced) must be made durable by the restarted server.
            for phase in range(2 if crash else 1):
                if phase > 0:
                    # What was acknowledged before the crash (earlier cuts are the
                    # business of the check at the start of the round).
                    srv.start()
                    lost, trunc, dup, details = check_acked(srv, traffic.acked)
                    if lost or trunc:
                        res["problems"].append("round %d, after a crash (no power cut): "
                                               "lost %d, truncated %d: %s"
                                               % (r, lost, trunc, details[:3]))
                traffic = Traffic(srv, "%d-%d-%d" % (seed, r, phase),
                                  "%d%d%d" % (seed % 10000, r, phase))
                traffic.start()
                time.sleep(rng.uniform(seconds / 3, seconds))
                traffic.wait_acked(min_acked)
                srv.kill()  # SIGKILL in the middle of the traffic
                traffic.join()
                acked.update(traffic.acked)
                res["problems"] += sanitizer_lines(srv.log_text())
            if pg:
                pg.kill()
            state = layer.unmount()  # the power goes
            stats = json.loads((state / "stats.json").read_text())
            res["cut_files"] += stats["lost_file_count"]
            res["cut_names"] += stats["lost_name_count"]
            if os.environ.get("POWERLOSS_DEBUG"):
                log("errors: %r" % traffic.errors)
            res["iterations"] += 1
            res["acked_smtp"] = sum(1 for p, _ in acked.values() if p == "smtp")
            res["acked_imap"] = sum(1 for p, _ in acked.values() if p == "imap")
            res["acked_queue"] = sum(1 for p, _ in acked.values() if p == "queue")
            if not pg:
                res["problems"] += ["round %d: %s" % (r, p)
                                    for p in check_sqlite(state / "durable", work)]
            log("round %d: %d acked in all, cut discarded %d unsynced files and %d names"
                % (r, len(acked), stats["lost_file_count"], stats["lost_name_count"]))
            load = state / "durable"
        if not pg:
            # The store's own check, on a plain copy of the final state.
            final = work / "final"
            shutil.copytree(state / "current", final, symlinks=True)
            data.rmdir()
            final.rename(data)
            res["problems"] += db_check_cli(srv)
    finally:
        if srv.proc is not None:
            srv.kill()
        if pg:
            pg.kill()
        if layer.proc is not None and layer.proc.poll() is None:
            subprocess.run(["umount", "-l", str(data)])
        if pg:
            subprocess.run(["sh", str(HERE.parent / "pg_cluster.sh"), "stop", str(pg.dir)],
                           capture_output=True)
    if not workdir and not res["problems"] and (unsafe or not res["lost"] + res["truncated"]):
        shutil.rmtree(work, ignore_errors=True)
    else:
        res["workdir"] = str(work)
    return res


def table(results):
    lines = ["%-28s %10s %7s %6s %10s %9s %s" % ("case", "iterations", "acked", "lost",
                                                 "duplicated", "truncated", "integrity")]
    for name, r in results:
        lines.append("%-28s %10d %7d %6d %10d %9d %s" % (
            name, r["iterations"], r["acked_smtp"] + r["acked_imap"] + r["acked_queue"], r["lost"],
            r["duplicated"], r["truncated"], "ok" if not r["problems"] else "FAILED"))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--unsafe", action="store_true", help="only the negative control")
    ap.add_argument("--both", action="store_true", help="the run and the negative control")
    ap.add_argument("--engine", default="sqlite", choices=("sqlite", "postgresql", "all"))
    args = ap.parse_args()
    why = fuse_unavailable()
    if why:
        print("powerloss: skipped: " + why)
        return 0
    cases = []
    for e in ("sqlite", "postgresql") if args.engine == "all" else (args.engine,):
        if not args.unsafe:
            cases.append((e, False))
        if args.unsafe or args.both:
            cases.append(("%s unsafe (control)" % e, True))
    results, ok = [], True
    for name, unsafe in cases:
        e = name.split()[0]
        print("== %s" % name, flush=True)
        r = run_powerloss(args.rounds, unsafe, args.seed, args.seconds,
                          log=lambda s: print("  " + s, flush=True), engine=e)
        results.append((name, r))
        print("  seed %d, %d SMTP + %d IMAP + %d queued acknowledged; lost %d, truncated %d, "
              "duplicated %d; cuts discarded %d files, %d names" % (
                  r["seed"], r["acked_smtp"], r["acked_imap"], r["acked_queue"], r["lost"],
                  r["truncated"],
                  r["duplicated"], r["cut_files"], r["cut_names"]), flush=True)
        for d in r["details"][:5] + r["problems"][:10]:
            print("    " + d)
        if unsafe:
            ok = ok and r["lost"] + r["truncated"] > 0
            if r["lost"] + r["truncated"] == 0:
                print("  NEGATIVE CONTROL LOST NOTHING: the harness does not detect loss")
        else:
            ok = ok and not (r["lost"] or r["truncated"] or r["problems"])
        if "workdir" in r:
            print("  kept %s" % r["workdir"])
    print(table(results))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
