"""Several nodes on one PostgreSQL (issue 10): a throw-away cluster (tests/pg_cluster.sh)
and three Posthorn nodes made by `posthorn init --store postgresql --store-url URL`. IDLE
on one node sees mail delivered through another at once, and so does NOTIFY; three nodes APPEND to one mailbox
at once with unique UIDs that no session ever sees out of order; the POP3 maildrop lock
holds across nodes; a store exported from SQLite and imported into PostgreSQL looks the
same to an IMAP client."""

import imaplib
import os
import signal
import socket
import poplib
import re
import shutil
import smtplib
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from aiosmtpd.controller import Controller

from conftest import HOST, USERS, Server, make_server, tls_client_context, unique
from imap_helpers import imap_ports, tls_ctx, wait_imap
from pop3_helpers import pop3s_port

REPO = Path(__file__).resolve().parents[2]
ALICE = "alice@example.test"
DEMO = "demo@example.test"

pytestmark = [
    pytest.mark.skipif(
        not any(Path("/usr/lib/postgresql/%d/bin/initdb" % v).exists() for v in (15, 16, 17)),
        reason="PostgreSQL server binaries are not installed (tests/deps.sh installs them)"),
    pytest.mark.sqlite_only("runs a PostgreSQL cluster of its own: once per suite is enough"),
]


PG_DIR = {}


@pytest.fixture(scope="module")
def pg():
    """A fresh cluster and database; yields its URI. Its directory is outside pytest's own,
    which the `postgres` user (the cluster's owner when we are root) cannot enter."""
    d = tempfile.mkdtemp(prefix="posthorn-pg.")
    p = subprocess.run(["sh", str(REPO / "tests" / "pg_cluster.sh"), "start", str(d)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    PG_DIR["dir"] = d
    yield p.stdout.strip().splitlines()[-1]
    subprocess.run(["sh", str(REPO / "tests" / "pg_cluster.sh"), "stop", str(d)], timeout=60)
    shutil.rmtree(d, ignore_errors=True)


def pg_ctl(*args):
    """pg_ctl on the module's cluster, as its owner."""
    pg_bin = next(str(p.parent) for v in (15, 16, 17)
                  for p in [Path("/usr/lib/postgresql/%d/bin/pg_ctl" % v)] if p.exists())
    cmd = [pg_bin + "/pg_ctl", "-D", PG_DIR["dir"] + "/data", "-w", "-t", "60"] + list(args)
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    subprocess.run(cmd, check=True, timeout=90, capture_output=True)


@pytest.fixture(scope="module")
def nodes(pg, tmp_path_factory):
    """Three nodes of one installation; accounts are made through the first."""
    made = []
    for i in range(3):
        srv = Server(tmp_path_factory.mktemp("node%d" % i), hostname="node%d.example.test" % i,
                     store_url=pg)
        made.append(srv)
    first = made[0]
    for d in ("example.test", "other.test"):
        first.cli("domain", "add", d)
    for addr, pw in USERS.items():
        first.add_user(addr, pw)
    for srv in made:
        srv.start()
        wait_imap(srv)
    yield made
    for srv in made:
        srv.stop_and_check()


def imap(server, user=ALICE):
    _, port = imap_ports(server)
    c = imaplib.IMAP4_SSL(HOST, port, ssl_context=tls_ctx(), timeout=30)
    c.login(user, USERS[user])
    return c


def deliver(server, rcpt, subject):
    msg = "From: s@remote.test\r\nTo: %s\r\nSubject: %s\r\n\r\nbody\r\n" % (rcpt, subject)
    with smtplib.SMTP(HOST, server.smtp_port, timeout=30, local_hostname="client.test") as s:
        assert not s.sendmail("s@remote.test", [rcpt], msg)


def test_init_second_node_joins(nodes):
    """Every node sees the one installation: the accounts made through node 0."""
    for srv in nodes:
        users = srv.cli("user", "list").stdout
        assert ALICE in users and DEMO in users
        assert "store = postgresql" in (srv.dir / "posthorn.conf").read_text()


def test_idle_sees_delivery_through_another_node(nodes):
    a, b = nodes[0], nodes[1]
    c = imap(a)
    c.select("INBOX")
    tag = c._new_tag().decode()
    c.send(("%s IDLE\r\n" % tag).encode())
    assert c.readline().startswith(b"+")
    subject = unique("cross")
    start = time.monotonic()
    deliver(b, ALICE, subject)
    c.sock.settimeout(10)
    line = c.readline()
    elapsed = time.monotonic() - start
    assert re.match(rb"^\* \d+ EXISTS", line), line
    # The notification, not the 30 s safety poll, brought it.
    assert elapsed < 5, elapsed
    c.send(b"DONE\r\n")
    while not c.readline().startswith(tag.encode()):
        pass
    c.logout()


def test_notify_hears_another_node(nodes):
    """NOTIFY (RFC 5465) on node 0 hears node 1: a delivery into INBOX while another
    mailbox is selected gives STATUS, a CREATE and a RENAME give LIST (with OLDNAME)."""
    a, b = nodes[0], nodes[1]
    c = imap(a)
    box = "N" + unique("n").replace("-", "")[-6:]
    c.create(box)
    c.select(box)
    tag = c._new_tag().decode()
    c.send(("%s NOTIFY SET (inboxes (MessageNew MessageExpunge)) (personal (MailboxName))\r\n"
            % tag).encode())
    while not c.readline().startswith(tag.encode()):
        pass
    c.sock.settimeout(10)
    deliver(b, ALICE, unique("notify"))
    line = c.readline()
    assert re.match(rb'^\* STATUS "INBOX" \(MESSAGES \d+ UIDNEXT', line), line
    other = imap(b)
    other.create(box + "x")
    assert c.readline() == b'* LIST () "/" "%sx"\r\n' % box.encode()
    other.rename(box + "x", box + "y")
    assert c.readline() == b'* LIST () "/" "%sy" ("OLDNAME" ("%sx"))\r\n' % (
        box.encode(), box.encode())
    other.delete(box + "y")
    other.logout()
    c.logout()


def test_appends_from_three_nodes(nodes):
    """UIDs are unique, and a watching session never sees UID n+1 before UID n."""
    box = "Shared" + unique("x").replace("-", "")[-6:]
    c0 = imap(nodes[0])
    c0.create(box)
    c0.logout()
    per_node = 15
    errors = []

    def appender(srv):
        try:
            c = imap(srv)
            for i in range(per_node):
                msg = ("Subject: %s %d\r\n\r\nx\r\n" % (srv.hostname, i)).encode()
                typ, _ = c.append(box, None, None, msg)
                assert typ == "OK"
            c.logout()
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    seen = []
    stop = threading.Event()

    def watcher():
        c = imap(nodes[0])
        c.select(box, readonly=True)
        while not stop.is_set():
            c.noop()
            _, data = c.uid("SEARCH", "ALL")
            seen.append([int(u) for u in data[0].split()])
        c.logout()

    w = threading.Thread(target=watcher)
    w.start()
    threads = [threading.Thread(target=appender, args=(srv,)) for srv in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(1)
    stop.set()
    w.join()
    assert not errors, errors
    c = imap(nodes[2])
    c.select(box, readonly=True)
    _, data = c.uid("SEARCH", "ALL")
    uids = [int(u) for u in data[0].split()]
    c.logout()
    assert len(uids) == 3 * per_node == len(set(uids))
    assert uids == list(range(1, 3 * per_node + 1))
    # Every view is a prefix 1..n of the final list: no gaps that fill in later.
    for view in seen:
        assert view == list(range(1, len(view) + 1)), view


def test_pop3_lock_across_nodes(nodes):
    def login(srv):
        p = poplib.POP3_SSL(HOST, pop3s_port(srv), context=tls_ctx(), timeout=30)
        p.user(DEMO)
        return p

    first = login(nodes[0])
    first.pass_(USERS[DEMO])
    second = login(nodes[1])
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        second.pass_(USERS[DEMO])
    first.quit()
    time.sleep(0.5)  # the release is written after the goodbye
    third = login(nodes[2])
    third.pass_(USERS[DEMO])
    third.quit()


class SmtpLoad(threading.Thread):
    """Messages to rcpt, one after the other, round robin over the nodes, until stopped:
    which subjects got 250, how many temporary refusals, and any permanent one (there must
    be none: an outage is never "user unknown")."""

    def __init__(self, nodes, rcpt):
        super().__init__(daemon=True)
        self.nodes, self.rcpt = nodes, rcpt
        self.accepted, self.permanent = [], []
        self.temporary = 0
        self.halt = threading.Event()

    def send(self, srv, subject):
        msg = "From: s@remote.test\r\nTo: %s\r\nSubject: %s\r\n\r\nload\r\n" % (
            self.rcpt, subject)
        try:
            with smtplib.SMTP(HOST, srv.smtp_port, timeout=30,
                              local_hostname="client.test") as s:
                s.sendmail("s@remote.test", [self.rcpt], msg)
            self.accepted.append(subject)
        except smtplib.SMTPRecipientsRefused as e:
            for code, text in e.recipients.values():
                if code >= 500:
                    self.permanent.append((code, text))
            self.temporary += 1
        except smtplib.SMTPResponseException as e:
            if e.smtp_code >= 500:
                self.permanent.append((e.smtp_code, e.smtp_error))
            self.temporary += 1
        except (OSError, smtplib.SMTPException):
            self.temporary += 1

    def run(self):
        i = 0
        while not self.halt.is_set():
            self.send(self.nodes[i % len(self.nodes)], unique("load%d" % i))
            i += 1
            time.sleep(0.02)


def test_database_restart(nodes):
    """PostgreSQL is stopped and started under SMTP load through every node: during the
    outage a node answers 451 (never 250 without a commit, never a permanent refusal); when
    the database is back every node serves again by itself, and every message that got 250
    is there."""
    a = nodes[0]
    port = open(PG_DIR["dir"] + "/port").read().strip()
    c = imap(a)  # logged in before the outage
    imap(nodes[2]).logout()  # node 2's password lookups have a connection now
    load = SmtpLoad(nodes, DEMO)
    load.start()
    deadline = time.monotonic() + 30
    while len(load.accepted) < 5:
        assert time.monotonic() < deadline and load.is_alive(), "no load before the outage"
        time.sleep(0.1)
    pg_ctl("stop", "-m", "fast")
    try:
        typ, data = c.select("INBOX")
        assert typ == "NO" and b"[UNAVAILABLE]" in data[0], (typ, data)
        c.logout()
        p = poplib.POP3_SSL(HOST, pop3s_port(a), context=tls_ctx(), timeout=30)
        p.user(DEMO)
        with pytest.raises(poplib.error_proto, match=r"SYS/TEMP"):
            p.pass_(USERS[DEMO])
        p.quit()
        msg = "Subject: %s\r\n\r\nx\r\n" % unique("down")
        with smtplib.SMTP(HOST, a.smtp_port, timeout=30, local_hostname="client.test") as s:
            with pytest.raises(smtplib.SMTPException) as e:
                s.sendmail("s@remote.test", [ALICE], msg)
        assert "451" in str(e.value) or "4.3.0" in str(e.value), e.value
    finally:
        pg_ctl("start", "-l", PG_DIR["dir"] + "/server.log", "-o",
               "-p %s -c listen_addresses=127.0.0.1 -c unix_socket_directories='%s'"
               % (port, PG_DIR["dir"]))
    subject = unique("back")
    for srv in nodes:
        deadline = time.monotonic() + 30
        while True:
            try:
                deliver(srv, ALICE, subject + srv.hostname)
                break
            except smtplib.SMTPException:
                assert time.monotonic() < deadline, "node %s did not recover" % srv.hostname
                time.sleep(0.5)
    # Its first login after the restart works at once: a read on a connection the restart
    # broke runs again on a new one.
    c = imap(nodes[2])
    c.select("INBOX", readonly=True)
    _, data = c.search(None, "SUBJECT", subject)
    assert len(data[0].split()) == 3
    c.logout()
    # The load goes on a little after the recovery, then: every 250 is in the store.
    after = len(load.accepted)
    deadline = time.monotonic() + 30
    while len(load.accepted) < after + 5:
        assert time.monotonic() < deadline, "the load does not get through after the restart"
        time.sleep(0.1)
    load.halt.set()
    load.join(60)
    assert not load.permanent, load.permanent
    assert load.temporary > 0, "the outage was never seen by the load"
    stored = {m["subject"] for m in a.mail_list(DEMO)}
    missing = [s for s in load.accepted if s not in stored]
    assert not missing, "%d of %d messages that got 250 are missing: %s" % (
        len(missing), len(load.accepted), missing[:5])


class Sink:
    """An SMTP sink that keeps what it receives."""

    def __init__(self):
        self.received = []

    async def handle_DATA(self, server, session, envelope):
        self.received.append(envelope.content)
        return "250 2.0.0 Ok"


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_queue_taken_over_after_sigkill(pg, nodes, tmp_path_factory):
    """Node X claims the queue's entries and hangs on a server that never greets; X is
    killed with SIGKILL while it holds the leases; node Y delivers every entry once their
    leases ran out: nothing lost, nothing twice."""
    stall = socket.socket()
    stall.bind((HOST, 0))
    stall.listen(16)  # accepts (in the kernel) and never says a word
    sink = Sink()
    sink_port = free_port()
    controller = Controller(sink, hostname=HOST, port=sink_port)
    controller.start()
    common = {"outbound_enabled": "yes", "queue_lease_time": "10s", "queue_retry_min": "1s",
              "outbound_connect_timeout": "60s", "outbound_greeting_timeout": "60s"}
    x = Server(tmp_path_factory.mktemp("nodex"), hostname="nodex.example.test", store_url=pg,
               extra_conf=dict(common, outbound_routes="far.test=%s:%d/none"
                               % (HOST, stall.getsockname()[1])))
    y = None
    try:
        x.start()
        subjects = [unique("takeover%d" % i) for i in range(3)]
        for subj in subjects:
            msg = "From: <%s>\r\nSubject: %s\r\n\r\nx\r\n" % (DEMO, subj)
            with smtplib.SMTP(HOST, x.submission_port, timeout=30,
                              local_hostname="client.test") as s:
                s.starttls(context=tls_client_context())
                s.login(DEMO, USERS[DEMO])
                assert not s.sendmail(DEMO, ["r%s@far.test" % subj[-4:]], msg)
        deadline = time.monotonic() + 20
        while True:
            entries = [e for e in x.queue_entries() if e["domain"] == "far.test"]
            if len(entries) == 3 and all(e["state"] == "active" for e in entries):
                break
            assert time.monotonic() < deadline, entries
            time.sleep(0.2)
        x.proc.send_signal(signal.SIGKILL)
        x.proc.wait(10)
        x.proc = None
        y = Server(tmp_path_factory.mktemp("nodey"), hostname="nodey.example.test",
                   store_url=pg,
                   extra_conf=dict(common, outbound_routes="far.test=%s:%d/none"
                                   % (HOST, sink_port)))
        y.start()
        deadline = time.monotonic() + 60
        while len(sink.received) < 3:
            assert time.monotonic() < deadline, "delivered %d of 3" % len(sink.received)
            time.sleep(0.5)
        time.sleep(2)  # anything twice would arrive now
        got = [m for m in sink.received]
        for subj in subjects:
            assert sum(subj.encode() in m for m in got) == 1, subj
        deadline = time.monotonic() + 10
        while [e for e in y.queue_entries() if e["domain"] == "far.test"]:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        controller.stop()
        stall.close()
        if y is not None:
            y.stop_and_check()


def test_sqlite_store_moves_to_postgresql(tmp_path_factory, tmp_path, pg):
    """db export from SQLite, db import into a new PostgreSQL database: the same view for an
    IMAP client (UIDVALIDITY, UIDs, flags, bodies)."""
    src = make_server(tmp_path_factory, "tomove")
    src.start()
    wait_imap(src)
    for i in range(3):
        deliver(src, ALICE, unique("move%d" % i))
    c = imap(src)
    c.select("INBOX")
    c.uid("STORE", "2", "+FLAGS", r"(\Seen $Label1)")
    c.logout()

    def view(srv):
        c = imap(srv)
        typ, st = c.status("INBOX", "(UIDVALIDITY UIDNEXT MESSAGES)")
        c.select("INBOX", readonly=True)
        _, data = c.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
        c.logout()
        items = [(re.sub(rb" ?\\Recent", b"", i[0]), i[1]) for i in data if isinstance(i, tuple)]
        return st, items

    before = view(src)
    dump = tmp_path / "dump"
    src.cli("db", "export", dump)
    src.stop_and_check()
    # A database of its own in the same cluster.
    url = pg.rsplit("/", 1)[0] + "/moved"
    port = re.search(r":(\d+)/", pg).group(1)
    subprocess.run(["createdb", "-U", "postgres", "-h", "127.0.0.1", "-p", port, "moved"],
                   check=True, timeout=60)
    dst = Server(tmp_path_factory.mktemp("moved"), store_url=url)
    dst.cli("db", "import", dump)
    dst.start()
    try:
        wait_imap(dst)
        assert view(dst) == before
    finally:
        dst.stop_and_check()
        shutil.rmtree(dst.dir, ignore_errors=True)
