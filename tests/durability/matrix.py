"""The crash matrix (issue 13): for one fault scenario on one store engine, run iterations
of a random workload against a server armed with a fault point (src/core/fault.h), crash it,
restart it without faults and check what survived. See README.md for the scenarios, the
checks and how to call run_point() from another harness (e.g. a power-loss layer).

Clients are the standard library's smtplib, imaplib and poplib; the server is the ASan
build (POSTHORN_BIN, default build/asan/posthorn), which has the fault points."""

import base64
import hashlib
import imaplib
import os
import poplib
import random
import re
import smtplib
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import conftest  # noqa: E402  (Server, pg_fresh_database, HOST, USERS)

HOST = conftest.HOST
DEMO = "demo@example.test"
PASSWORD = conftest.USERS[DEMO]
# Above this size a message is a file under data/messages (store_inline_max's default).
INLINE_MAX = 128 * 1024


# ---------------------------------------------------------------------------
# counts


class Counts:
    """What one scenario x engine run found. lost and truncated must be 0; duplicated
    counts messages stored twice after the client sent them again for want of a reply (the
    window between a commit and its reply, open in every session a crash interrupts); a
    message stored twice that was sent once counts as bad, as does every other broken
    invariant (UIDs reused, UIDVALIDITY changed, a moved
    message in neither mailbox, a POP3 delete without QUIT, integrity, orphans)."""

    def __init__(self, scenario, engine):
        self.scenario, self.engine = scenario, engine
        self.iterations = self.fired = self.acked = 0
        self.lost = self.duplicated = self.truncated = self.bad = 0
        self.problems = []

    def problem(self, kind, text):
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.problems) < 20:
            self.problems.append("%s: %s" % (kind, text))

    def ok(self):
        return self.lost == 0 and self.truncated == 0 and self.bad == 0

    def row(self):
        return (self.scenario, self.engine, self.iterations, self.fired, self.acked,
                self.lost, self.duplicated, self.truncated, self.bad)


TABLE_HEAD = ("scenario", "engine", "iter", "fired", "acked", "lost", "dup", "trunc", "bad")


def format_table(results):
    rows = [TABLE_HEAD] + [tuple(str(v) for v in r.row()) for r in results]
    widths = [max(len(r[i]) for r in rows) for i in range(len(TABLE_HEAD))]
    lines = []
    for n, r in enumerate(rows):
        lines.append("  ".join(v.ljust(widths[i]) if i < 2 else v.rjust(widths[i])
                               for i, v in enumerate(r)))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# messages and clients


def make_message(tag, size, rnd):
    """A message of about size octets whose Subject is tag: a short text part and random
    octets as a base64 attachment (as large mail usually is; text that long would only
    make the search index slow)."""
    head = ("From: <s@remote.test>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@durability>"
            "\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
            "--b0\r\nContent-Type: text/plain\r\n\r\ncrash matrix message %s\r\n"
            "--b0\r\nContent-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n" % (DEMO, tag, tag, tag)).encode()
    raw = base64.b64encode(rnd.randbytes(max(1, (size - len(head)) * 3 // 4)))
    lines = [raw[i:i + 76] for i in range(0, len(raw), 76)]
    return head + b"\r\n".join(lines) + b"\r\n--b0--\r\n"


SUBJECT = re.compile(rb"^Subject: (\S+)\r$", re.M)


def subject_of(data):
    m = SUBJECT.search(data.split(b"\r\n\r\n", 1)[0] + b"\r\n")
    return m.group(1).decode() if m else None


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def smtp_session(port, msgs, acked, lock):
    """Send msgs ({tag: bytes}, in order) on one connection; record each 250 in acked.
    Stops at the first lost connection (the rest are sent again after the restart)."""
    try:
        s = smtplib.SMTP(HOST, port, timeout=60)
        s.ehlo("durability.test")
    except (OSError, smtplib.SMTPException):
        return
    try:
        for tag, msg in msgs:
            try:
                s.sendmail("s@remote.test", [DEMO], msg)
            except smtplib.SMTPResponseException:
                continue            # 4xx/5xx: not accepted; the client tries again later
            with lock:
                acked.add(tag)
        s.quit()
    except (OSError, smtplib.SMTPException):
        pass
    finally:
        s.close()


def imap_connect(server):
    c = imaplib.IMAP4_SSL(HOST, server.base + 993, ssl_context=tls_ctx(), timeout=60)
    c.login(DEMO, PASSWORD)
    return c


def imap_append_session(server, msgs, acked, lock, mailbox="INBOX"):
    try:
        c = imap_connect(server)
    except (OSError, imaplib.IMAP4.error):
        return
    try:
        for tag, msg in msgs:
            typ, _ = c.append(mailbox, None, None, msg)
            if typ == "OK":
                with lock:
                    acked.add(tag)
        c.logout()
    except (OSError, imaplib.IMAP4.error, imaplib.IMAP4.abort):
        pass


FETCH_UID = re.compile(rb"UID (\d+)")


def imap_snapshot(server, mailboxes=("INBOX",)):
    """{mailbox: (uidvalidity, uidnext, {uid: bytes})} read over IMAP."""
    c = imap_connect(server)
    out = {}
    try:
        for mb in mailboxes:
            typ, data = c.status(mb, "(UIDVALIDITY UIDNEXT)")
            if typ != "OK":
                out[mb] = None
                continue
            st = data[0].decode()
            uidvalidity = int(re.search(r"UIDVALIDITY (\d+)", st).group(1))
            uidnext = int(re.search(r"UIDNEXT (\d+)", st).group(1))
            c.select(mb, readonly=True)
            msgs = {}
            typ, data = c.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
            for item in data or []:
                if isinstance(item, tuple):
                    m = FETCH_UID.search(item[0])
                    msgs[int(m.group(1))] = item[1]
            out[mb] = (uidvalidity, uidnext, msgs)
        c.logout()
    finally:
        try:
            c.shutdown()
        except OSError:
            pass
    return out


# ---------------------------------------------------------------------------
# the store's integrity, read directly


def sql_rows(server, engine, query):
    if engine == "sqlite":
        db = sqlite3.connect("file:%s?mode=ro" % (server.dir / "data" / "posthorn.db"), uri=True)
        try:
            return db.execute(query).fetchall()
        finally:
            db.close()
    p = subprocess.run(["psql", "-At", "-F", "|", server.store_url, "-c", query],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("psql: %s" % p.stderr)
    return [tuple(l.split("|")) for l in p.stdout.splitlines() if l]


INTEGRITY_SQL = [
    # UIDs are never reused: UIDNEXT above every UID present and every tombstone.
    ("uidnext not above a stored UID",
     "SELECT count(*) FROM mailboxes m WHERE uidnext <= (SELECT coalesce(max(uid), 0)"
     " FROM mailbox_entries e WHERE e.mailbox_id = m.id)"),
    ("uidnext not above an expunged UID",
     "SELECT count(*) FROM mailboxes m WHERE uidnext <= (SELECT coalesce(max(uid), 0)"
     " FROM expunged x WHERE x.mailbox_id = m.id)"),
    ("entry pointing at no message",
     "SELECT count(*) FROM mailbox_entries e WHERE NOT EXISTS"
     " (SELECT 1 FROM messages m WHERE m.id = e.message_id)"),
    ("account used bytes differ from its entries",
     "SELECT count(*) FROM accounts a WHERE used_bytes <> (SELECT coalesce(sum(m.size), 0)"
     " FROM mailbox_entries e JOIN mailboxes b ON b.id = e.mailbox_id JOIN messages m"
     " ON m.id = e.message_id WHERE b.account_id = a.id)"),
]


def check_integrity(server, engine, counts):
    """The store's own consistency after the restart (start-up cleanup done): `posthorn db
    check`, then the same and more read straight from the database and the files."""
    p = server.cli("db", "check", check=False)
    if p.returncode != 0:
        counts.problem("bad", "db check: %s" % (p.stdout + p.stderr).strip()[:300])
    for what, query in INTEGRITY_SQL:
        n = int(sql_rows(server, engine, query)[0][0])
        if n:
            counts.problem("bad", "integrity: %s (%d)" % (what, n))
    if engine != "sqlite":
        return
    if sql_rows(server, engine, "PRAGMA integrity_check")[0][0] != "ok":
        counts.problem("bad", "integrity: PRAGMA integrity_check failed")
    if sql_rows(server, engine, "PRAGMA foreign_key_check"):
        counts.problem("bad", "integrity: PRAGMA foreign_key_check found rows")
    rows = sql_rows(server, engine, "SELECT sha256, size, content IS NULL FROM messages")
    known = {r[0]: (int(r[1]), bool(r[2])) for r in rows}
    msgdir = server.dir / "data" / "messages"
    files = {}
    for fan in msgdir.iterdir():
        for f in fan.iterdir():
            files[f.name] = f
    for name in files:
        if name not in known:
            counts.problem("bad", "orphan message file after start-up: %s" % name)
    for sha, (size, is_file) in known.items():
        if not is_file:
            continue
        f = files.get(sha)
        if f is None:
            counts.problem("bad", "message file missing: %s" % sha)
            continue
        data = f.read_bytes()
        if len(data) != size or hashlib.sha256(data).hexdigest() != sha:
            counts.problem("truncated", "message file %s: size %d, want %d" % (
                sha, len(data), size))
    leftovers = list((server.dir / "data" / "tmp").iterdir())
    if leftovers:
        counts.problem("bad", "spool files left after start-up: %d" % len(leftovers))


# ---------------------------------------------------------------------------
# scenarios


class Scenario:
    """A row of the matrix: the fault point and actions it arms, the workload, and
    whether the point itself sits in the window between a commit and its reply (dup_window,
    for the documentation: a duplicate is judged by whether the client sent it twice)."""

    def __init__(self, name, point, actions, nth, workload, dup_window=False, engines=None,
                 sizes=(500, 300 * 1024), clients=(1, 4), per_client=(1, 4), setup=None):
        self.name, self.point, self.actions, self.nth = name, point, actions, nth
        self.workload, self.dup_window = workload, dup_window
        self.engines = engines or ("sqlite", "postgresql")
        self.sizes, self.clients, self.per_client = sizes, clients, per_client
        self.setup = setup  # setup(server): once, before the first start; returns a closer


class Iteration:
    """One iteration's bookkeeping, kept over the whole run for the UID checks."""

    def __init__(self, rnd, tag):
        self.rnd, self.tag = rnd, tag
        self.msgs = {}          # tag -> bytes: everything a client tried to store
        self.acked = set()      # tags that got 250 / OK
        self.lock = threading.Lock()


def run_threads(fns):
    ts = [threading.Thread(target=f, daemon=True) for f in fns]
    for t in ts:
        t.start()
    for t in ts:
        t.join(180)


def smtp_workload(server, it, scenario):
    """Several concurrent SMTP clients, each a few messages of random sizes."""
    lo, hi = scenario.sizes
    sessions = []
    for c in range(it.rnd.randint(*scenario.clients)):
        batch = []
        for k in range(it.rnd.randint(*scenario.per_client)):
            tag = "%s-c%d-m%d" % (it.tag, c, k)
            msg = make_message(tag, it.rnd.randint(lo, hi), it.rnd)
            it.msgs[tag] = msg
            batch.append((tag, msg))
        sessions.append(batch)
    run_threads([lambda b=b: smtp_session(server.smtp_port, b, it.acked, it.lock)
                 for b in sessions])


def append_workload(server, it, scenario):
    lo, hi = scenario.sizes
    sessions = []
    for c in range(it.rnd.randint(1, 3)):
        batch = []
        for k in range(it.rnd.randint(1, 3)):
            tag = "%s-a%d-m%d" % (it.tag, c, k)
            msg = make_message(tag, it.rnd.randint(lo, hi), it.rnd)
            it.msgs[tag] = msg
            batch.append((tag, msg))
        sessions.append(batch)
    run_threads([lambda b=b: imap_append_session(server, b, it.acked, it.lock)
                 for b in sessions])


def seed_messages(server, it, n):
    """n small messages delivered before the fault is armed (acknowledged)."""
    batch = []
    for k in range(n):
        tag = "%s-s%d" % (it.tag, k)
        msg = make_message(tag, it.rnd.randint(300, 3000), it.rnd)
        it.msgs[tag] = msg
        batch.append((tag, msg))
    smtp_session(server.smtp_port, batch, it.acked, it.lock)


def imap_uids_by_tag(c, mailbox):
    c.select(mailbox)
    typ, data = c.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    out = {}
    for item in data or []:
        if isinstance(item, tuple):
            uid = int(FETCH_UID.search(item[0]).group(1))
            out[subject_of(item[1] + b"\r\n")] = uid
    return out


def expunge_workload(server, it, scenario):
    """IMAP: flag a random subset \\Deleted and EXPUNGE it (the fault fires inside)."""
    tags = [t for t in it.msgs if t in it.acked and t.startswith(it.tag)]
    doomed = set(it.rnd.sample(tags, max(1, len(tags) // 2)))
    it.doomed, it.done = doomed, False
    try:
        c = imap_connect(server)
        uids = imap_uids_by_tag(c, "INBOX")
        sel = ",".join(str(uids[t]) for t in doomed if t in uids)
        c.uid("STORE", sel, "+FLAGS.SILENT", r"(\Deleted)")
        typ, _ = c.expunge()
        it.done = typ == "OK"
        c.logout()
    except (OSError, imaplib.IMAP4.error, imaplib.IMAP4.abort):
        pass


def pop3_workload(server, it, scenario):
    """POP3: DELE a random subset, then QUIT (the fault fires inside UPDATE)."""
    tags = [t for t in it.msgs if t in it.acked and t.startswith(it.tag)]
    doomed = set(it.rnd.sample(tags, max(1, len(tags) // 2)))
    it.doomed, it.done = doomed, False
    try:
        p = poplib.POP3_SSL(HOST, server.base + 995, context=tls_ctx(), timeout=60)
        p.user(DEMO)
        p.pass_(PASSWORD)
        _, listing, _ = p.list()
        for entry in listing:
            num = int(entry.split()[0])
            _, top, _ = p.top(num, 0)
            if subject_of(b"\r\n".join(top) + b"\r\n") in doomed:
                p.dele(num)
        if it.rnd.random() < 0.2:
            p.sock.close()          # no QUIT: nothing may be deleted
            it.no_quit = True
            return
        it.done = p.quit().startswith(b"+OK")
    except (OSError, poplib.error_proto):
        pass


def move_workload(server, it, scenario):
    """IMAP MOVE of a random subset to Archive (the fault fires between copy and delete)."""
    tags = [t for t in it.msgs if t in it.acked and t.startswith(it.tag)]
    moving = set(it.rnd.sample(tags, max(1, len(tags) // 2)))
    it.doomed, it.done = moving, False
    try:
        c = imap_connect(server)
        c.create("Archive")
        uids = imap_uids_by_tag(c, "INBOX")
        sel = ",".join(str(uids[t]) for t in moving if t in uids)
        typ, _ = c.uid("MOVE", sel, "Archive")
        it.done = typ == "OK"
        c.logout()
    except (OSError, imaplib.IMAP4.error, imaplib.IMAP4.abort):
        pass


def listen_workload(server, it, scenario):
    """PostgreSQL LISTEN loss: let the listener lose its connection (it waits 250 ms at a
    time), then deliver."""
    time.sleep(2.5)
    smtp_workload(server, it, scenario)


class Sink:
    """The remote server of the queue scenario: an aiosmtpd server that takes everything
    and counts what it got by Subject."""

    def __init__(self):
        from aiosmtpd.controller import Controller
        self.got = {}
        self.lock = threading.Lock()
        sock = socket.socket()
        sock.bind((HOST, 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.controller = Controller(self, hostname=HOST, port=self.port)
        self.controller.start()

    async def handle_DATA(self, server, session, envelope):
        tag = subject_of(envelope.original_content or envelope.content)
        with self.lock:
            self.got[tag] = self.got.get(tag, 0) + 1
        return "250 2.0.0 Ok"

    def close(self):
        self.controller.stop()


def queue_setup(server):
    """Outbound on, mail for remote.test to the sink (no DNS)."""
    sink = Sink()
    server.sink = sink
    server.append_conf({"outbound_enabled": "yes",
                        "outbound_routes": "remote.test=%s:%d/none" % (HOST, sink.port)})
    return sink.close


def submit_session(server, msgs, acked, lock):
    """Submission (587, STARTTLS, AUTH) of msgs to far@remote.test."""
    try:
        s = smtplib.SMTP(HOST, server.submission_port, timeout=60)
        s.starttls(context=tls_ctx())
        s.login(DEMO, PASSWORD)
    except (OSError, smtplib.SMTPException):
        return
    try:
        for tag, msg in msgs:
            try:
                s.sendmail(DEMO, ["far@remote.test"], msg.replace(
                    b"From: <s@remote.test>", b"From: <%s>" % DEMO.encode()))
            except smtplib.SMTPResponseException:
                continue
            with lock:
                acked.add(tag)
        s.quit()
    except (OSError, smtplib.SMTPException):
        pass


def queue_workload(server, it, scenario):
    """Submit messages for a remote domain and let the queue deliver them to the sink; the
    fault fires after the sink's 250, before the queue records it."""
    lo, hi = scenario.sizes
    batch = []
    for k in range(it.rnd.randint(2, 4)):
        tag = "%s-q%d" % (it.tag, k)
        it.msgs[tag] = make_message(tag, it.rnd.randint(lo, hi), it.rnd)
        batch.append((tag, it.msgs[tag]))
    submit_session(server, batch, it.acked, it.lock)
    wait_until(lambda: server.proc.poll() is not None or not server.queue_entries(), 20)


def wait_until(cond, timeout):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.2)
    return cond()


def check_queue(srv, it, counts, expected_remote):
    """Every submitted message reaches the sink (again after the restart: a duplicate is
    the documented window) or is still queued; none is lost."""
    srv.cli("queue", "flush")
    wait_until(lambda: not srv.queue_entries(), 30)
    queued = len(srv.queue_entries())
    counts.acked += len(it.acked)
    expected_remote.update(it.acked)
    for tag in sorted(expected_remote):
        n = srv.sink.got.get(tag, 0)
        if n == 0 and queued == 0:
            counts.problem("lost", "%s never reached the remote server" % tag)
        elif n > 1 and tag not in expected_remote.reported:
            expected_remote.reported.add(tag)
            counts.problem("duplicated", "%s delivered %d times" % (tag, n))


class TagSet(set):
    def __init__(self):
        super().__init__()
        self.reported = set()
        self.retried = set()


SCENARIOS = [
    Scenario("smtp.data.mid", "smtp.data.mid", ["sigkill", "abort", "enospc", "eio"],
             (1, 120), smtp_workload),
    Scenario("smtp.data.before_commit", "smtp.data.before_commit", ["sigkill", "abort"],
             (1, 3), smtp_workload),
    Scenario("smtp.data.after_commit", "smtp.data.after_commit", ["sigkill", "abort"],
             (1, 3), smtp_workload, dup_window=True),
    Scenario("smtp.data.after_250", "smtp.data.after_250", ["sigkill", "abort"],
             (1, 3), smtp_workload),
    Scenario("store.blob.before_row", "store.blob.before_row", ["sigkill", "eio", "enospc"],
             (1, 4), smtp_workload, sizes=(INLINE_MAX + 1, 600 * 1024),
             engines=("sqlite",)),  # PostgreSQL keeps bodies in the database: no files
    Scenario("store.wal.checkpoint", "store.wal.checkpoint", ["sigkill", "eio"], (1, 1),
             smtp_workload, dup_window=True, engines=("sqlite",),
             sizes=(80 * 1024, INLINE_MAX), clients=(3, 4), per_client=(12, 14)),
    Scenario("imap.append.mid", "imap.append.mid", ["sigkill", "abort", "enospc", "eio"],
             (1, 60), append_workload),
    Scenario("imap.expunge.mid", "store.expunge.mid", ["sigkill", "eio"], (1, 1),
             expunge_workload),
    Scenario("imap.move.between", "store.move.between", ["sigkill", "eio"], (1, 1),
             move_workload),
    Scenario("pop3.update.mid", "store.expunge.mid", ["sigkill", "eio"], (1, 1),
             pop3_workload),
    Scenario("queue.after_remote_250", "queue.after_remote_250", ["sigkill", "abort"], (1, 2),
             queue_workload, dup_window=True, sizes=(500, 100 * 1024), setup=queue_setup),
    Scenario("pg.txn.lost", "pg.txn.lost", ["drop"], (1, 40), smtp_workload,
             engines=("postgresql",)),
    Scenario("pg.commit.lost", "pg.commit.lost", ["drop"], (1, 6), smtp_workload,
             dup_window=True, engines=("postgresql",)),
    Scenario("pg.listen.lost", "pg.listen.lost", ["drop"], (1, 6), listen_workload,
             engines=("postgresql",)),
]
SCENARIO_BY_NAME = {s.name: s for s in SCENARIOS}
# Workloads that need messages in the mailbox first.
SEEDED = {expunge_workload, pop3_workload, move_workload}
# The scenarios of the quick slice in `make test` (tests/integration/test_durability_matrix.py).
QUICK = ["smtp.data.mid", "smtp.data.after_commit", "store.blob.before_row",
         "imap.move.between"]


# ---------------------------------------------------------------------------
# one scenario x engine


def kill_crash(server):
    """The default crash hook: kill -9 what is still running (the fault may have killed it
    already, or only failed an operation)."""
    server.kill()


def new_server(engine, data_dir, pgurl):
    store_url = conftest.pg_fresh_database(pgurl) if engine == "postgresql" else None
    srv = conftest.Server(Path(data_dir), store_url=store_url,
                          extra_conf={"log_level": "info"})
    for d in conftest.DOMAINS:
        srv.cli("domain", "add", d)
    srv.add_user(DEMO, PASSWORD)
    return srv


def run_point(scenario, engine, iterations, data_dir, crash=kill_crash, seed=0, pgurl=None,
              log=None, action=None, nth=None):
    """Run iterations of scenario (a name from SCENARIOS, or a Scenario) on engine
    ("sqlite" or "postgresql", which needs pgurl: a cluster's URL, tests/pg_cluster.sh) in a
    new server under data_dir (created; must not exist). crash(server) is called after each
    workload: it must leave the server process gone (default: kill -9); a power-loss layer
    passes its own. action and nth, when given, replace the random choice of the fault's
    action and of the hit it fires on. Returns Counts."""
    sc = SCENARIO_BY_NAME[scenario] if isinstance(scenario, str) else scenario
    counts = Counts(sc.name, engine)
    rnd = random.Random("%s/%s/%d" % (sc.name, engine, seed))
    srv = new_server(engine, data_dir, pgurl)
    closer = sc.setup(srv) if sc.setup else None
    expected_remote = TagSet()
    history = {}        # mailbox -> {uid: tag} of every UID ever seen
    uidvalidity = {}
    expected = {}       # tag -> bytes: must be present (in INBOX or Archive)
    gone = set()        # tags that must be absent (expunged or deleted with an OK)
    reported = TagSet()  # duplicates already counted; .retried: tags sent twice
    try:
        for i in range(iterations):
            it = Iteration(rnd, "it%d%s" % (i, rnd.randbytes(3).hex()))
            it.no_quit = False
            if sc.workload in SEEDED:
                srv.env = None
                srv.start()
                seed_messages(srv, it, rnd.randint(2, 6))
                expected.update({t: it.msgs[t] for t in it.acked})
                counts.acked += len(it.acked)
                srv.stop()
            act = action or rnd.choice(sc.actions)
            n = nth or rnd.randint(*sc.nth)
            srv.env = dict(os.environ, POSTHORN_FAULT="%s:%s:%d" % (sc.point, act, n))
            try:
                srv.start()
            except AssertionError:
                # The fault hit start-up itself (a PostgreSQL commit of the orphan sweep,
                # say): the server refused to start, which loses nothing; on to the restart.
                srv.proc = None
            if srv.proc is not None:
                sc.workload(srv, it, sc)
            fired = "event=fault point=%s" % sc.point in srv.log_text()
            counts.fired += fired
            crash(srv)
            if engine == "postgresql":
                # A POP3 maildrop lease of the dead server would run out after
                # POP3_LEASE_TTL (120 s; until then its logins get -ERR [IN-USE]): time
                # passes here at once, or the next iterations' POP3 logins are refused and
                # the fault never fires.
                sql_rows(srv, engine, "UPDATE leases SET until = 0 RETURNING name")
            srv.env = None
            srv.start()
            if sc.workload is queue_workload:
                check_queue(srv, it, counts, expected_remote)
                check_integrity(srv, engine, counts)
            else:
                verify(srv, engine, sc, it, counts, history, uidvalidity, expected, gone,
                       reported)
            srv.stop()
            counts.iterations += 1
            if log:
                log("%s %s iteration %d: %s:%s:%d fired=%s" % (
                    sc.name, engine, i, sc.point, act, n, fired))
    finally:
        srv.kill()
        if closer:
            closer()
    return counts


def verify(srv, engine, sc, it, counts, history, uidvalidity, expected, gone, reported):
    mailboxes = ("INBOX", "Archive")
    snap = imap_snapshot(srv, mailboxes)
    # What the clients sent without an answer, they send again (as an MTA would).
    if sc.workload in (smtp_workload, listen_workload, append_workload):
        retry = [(t, m) for t, m in it.msgs.items() if t not in it.acked]
        reported.retried.update(t for t, _ in retry)
        acked_before = set(it.acked)
        if sc.workload is append_workload:
            imap_append_session(srv, retry, it.acked, it.lock)
        else:
            smtp_session(srv.smtp_port, retry, it.acked, it.lock)
        counts.acked += len(acked_before)
        for t in it.acked:
            expected[t] = it.msgs[t]
        snap = imap_snapshot(srv, mailboxes)
    else:
        check_changes(sc, it, snap, counts, expected, gone)
    present = {}
    for mb in mailboxes:
        if snap.get(mb) is None:
            continue
        v, uidnext, msgs = snap[mb]
        if mb in uidvalidity and uidvalidity[mb] != v:
            counts.problem("bad", "%s: UIDVALIDITY changed %d -> %d" % (mb, uidvalidity[mb], v))
        uidvalidity[mb] = v
        seen = history.setdefault(mb, {})
        for uid, data in msgs.items():
            tag = subject_of(data)
            if uid in seen and seen[uid] != tag:
                counts.problem("bad", "%s: UID %d reused (%s, now %s)" % (mb, uid, seen[uid], tag))
            seen[uid] = tag
            if uid >= uidnext:
                counts.problem("bad", "%s: UID %d not below UIDNEXT %d" % (mb, uid, uidnext))
            present.setdefault(tag, []).append(data)
    for tag, msg in expected.items():
        copies = present.get(tag, [])
        if not copies:
            counts.problem("lost", "%s (%d octets)" % (tag, len(msg)))
            continue
        if any(not c.endswith(msg) for c in copies):
            counts.problem("truncated", "%s: stored %s, sent %d" % (
                tag, [len(c) for c in copies], len(msg)))
        if len(copies) > 1 and tag not in reported:
            reported.add(tag)
            counts.problem("duplicated" if tag in reported.retried else "bad",
                           "%s stored %d times" % (tag, len(copies)))
    for tag in gone:
        if tag in present:
            counts.problem("bad", "%s is back after it was removed with an OK" % tag)
    check_integrity(srv, engine, counts)


def check_changes(sc, it, snap, counts, expected, gone):
    """Expunge, POP3 UPDATE and MOVE: all or nothing, and what got an OK happened."""
    inbox = {subject_of(d) for d in snap["INBOX"][2].values()}
    archive = {subject_of(d) for d in snap["Archive"][2].values()} if snap.get("Archive") else set()
    doomed = getattr(it, "doomed", set())
    if sc.workload is move_workload:
        moved = {t for t in doomed if t in archive}
        for t in doomed:
            if t not in inbox and t not in archive:
                counts.problem("lost", "%s moved into neither mailbox" % t)
            if t in inbox and t in archive:
                counts.problem("bad", "%s in both mailboxes after MOVE" % t)
        if moved and moved != doomed:
            counts.problem("bad", "MOVE half done: %d of %d" % (len(moved), len(doomed)))
        if it.done and moved != doomed:
            counts.problem("lost", "MOVE answered OK but %d of %d moved" % (len(moved), len(doomed)))
        return
    removed = {t for t in doomed if t not in inbox}
    if sc.workload is pop3_workload and it.no_quit and removed:
        counts.problem("bad", "POP3 deleted %d without QUIT" % len(removed))
    if removed and removed != doomed:
        counts.problem("bad", "expunge half done: %d of %d" % (len(removed), len(doomed)))
    if it.done and removed != doomed:
        counts.problem("bad", "OK but %d of %d removed" % (len(removed), len(doomed)))
    for t in removed:
        expected.pop(t, None)
        gone.add(t)
