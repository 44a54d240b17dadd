"""Ten concurrent IMAP sessions on one INBOX: a flag change in one reaches the other nine at
their next NOOP, all ten IDLE sessions see "* n EXISTS" within 1 second of an SMTP delivery,
an EXPUNGE reaches the others (at NOOP and during IDLE) with sequence numbers that stay
consistent in every session, and two sessions APPENDing at once get distinct ascending UIDs."""

import itertools
import re
import smtplib
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from imap_helpers import imap_ports, tls_ctx, wait_imap
from conftest import HOST

# Store reads run on the store's reader threads (store_read(), the path PostgreSQL takes):
# every command here answers from the read's completion, not in place.
SERVER_CONF = {"store_read_threads": "2"}

PASSWORD = "conc-Secret-7"
SESSIONS = 10
_counter = itertools.count(1)


def new_user(server):
    """A fresh account per test, so tests do not see each other's messages."""
    addr = "c%d@example.test" % next(_counter)
    server.add_user(addr, PASSWORD)
    return addr


def deliver(server, user, subject):
    msg = "From: a@remote.test\r\nTo: %s\r\nSubject: %s\r\n\r\nbody of %s\r\n" % (
        user, subject, subject)
    with smtplib.SMTP(HOST, server.smtp_port, timeout=10, local_hostname="client.test") as s:
        s.sendmail("a@remote.test", [user], msg.encode())


class Session:
    """A raw IMAP session over implicit TLS that keeps its own model of the selected
    mailbox: the list of UIDs by sequence number, updated from EXISTS / EXPUNGE / FETCH."""

    def __init__(self, server, user):
        self.sock = tls_ctx().wrap_socket(
            socket.create_connection((HOST, imap_ports(server)[1]), timeout=15))
        self.f = self.sock.makefile("rb")
        assert self.line().startswith(b"* OK")
        self.n = 0
        self.uids = []          # uids[seq - 1]
        self.exists = 0
        out = self.cmd(b'LOGIN %s "%s"' % (user.encode(), PASSWORD.encode()))
        assert out[-1].startswith(b"OK"), out

    def line(self, timeout=None):
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            line = self.f.readline()
        finally:
            if timeout is not None:
                self.sock.settimeout(15)
        assert line, "connection closed"
        return line

    def send(self, data):
        self.sock.sendall(data)

    def tag(self):
        self.n += 1
        return b"t%d" % self.n

    def until(self, tag):
        """Untagged lines (a literal is appended to the line that announces it) up to the
        tagged one; returns (lines, status text)."""
        lines = []
        while True:
            line = self.line()
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                line += self.f.read(int(m.group(1))) + self.line()
            if line.startswith(tag + b" "):
                return lines, line[len(tag) + 1:].rstrip(b"\r\n")
            lines.append(line)

    def cmd(self, text):
        tag = self.tag()
        self.send(tag + b" " + text + b"\r\n")
        lines, status = self.until(tag)
        return lines + [status]

    def apply(self, line):
        """Update the model from one untagged line; returns what it was (or None)."""
        m = re.match(rb"\* (\d+) (EXISTS|EXPUNGE|FETCH)\b(.*)\r\n$", line)
        if not m:
            return None
        n, what = int(m.group(1)), m.group(2)
        if what == b"EXISTS":
            assert n >= len(self.uids), "EXISTS %d shrinks the mailbox (%d)" % (n, len(self.uids))
            self.uids += [None] * (n - len(self.uids))
        elif what == b"EXPUNGE":
            assert 1 <= n <= len(self.uids), "EXPUNGE %d out of range 1..%d" % (
                n, len(self.uids))
            del self.uids[n - 1]
        else:
            assert 1 <= n <= len(self.uids), "FETCH %d out of range 1..%d: %r" % (
                n, len(self.uids), line)
            u = re.search(rb"\bUID (\d+)", m.group(3))
            if u:
                uid = int(u.group(1))
                assert self.uids[n - 1] in (None, uid), "FETCH %d: UID %d, model has %r" % (
                    n, uid, self.uids[n - 1])
                self.uids[n - 1] = uid
        return what

    def select(self):
        out = self.cmd(b"SELECT INBOX")
        assert out[-1].startswith(b"OK [READ-WRITE]"), out
        self.uids = []
        for l in out[:-1]:
            self.apply(l)
        out = self.cmd(b"FETCH 1:* (UID)") if self.uids else [b"OK"]
        assert out[-1].startswith(b"OK"), out
        for l in out[:-1]:
            self.apply(l)
        assert None not in self.uids

    def server_uids(self):
        """UIDs by sequence number as the server reports them now: a NOOP (pending
        untagged responses are applied to the model), then a FETCH."""
        out = self.cmd(b"NOOP")
        assert out[-1] == b"OK NOOP completed", out
        for l in out[:-1]:
            self.apply(l)
        if not self.uids:
            return []
        out = self.cmd(b"FETCH 1:* (UID)")
        assert out[-1].startswith(b"OK"), out
        got = []
        for l in out[:-1]:
            self.apply(l)
            m = re.match(rb"\* (\d+) FETCH \(UID (\d+)\)\r\n$", l)
            if m:
                got.append((int(m.group(1)), int(m.group(2))))
        return [uid for _, uid in sorted(got)]

    def close(self):
        try:
            self.send(b"z LOGOUT\r\n")
        except OSError:
            pass
        self.f.close()
        self.sock.close()


def append(s, subject, user="x@example.test"):
    msg = ("From: %s\r\nSubject: %s\r\n\r\nappended %s\r\n" % (user, subject, subject)).encode()
    out = s.cmd(b"APPEND INBOX {%d+}\r\n" % len(msg) + msg)
    m = re.match(rb"OK \[APPENDUID (\d+) (\d+)\]", out[-1])
    assert m, out
    return int(m.group(1)), int(m.group(2)), out[:-1]


def open_sessions(server, user, n=SESSIONS):
    wait_imap(server)
    with ThreadPoolExecutor(n) as ex:
        sessions = list(ex.map(lambda _: Session(server, user), range(n)))
    with ThreadPoolExecutor(n) as ex:
        list(ex.map(lambda s: s.select(), sessions))
    return sessions


def close_all(sessions):
    for s in sessions:
        s.close()


def each(sessions, fn):
    """fn(session) in one thread per session; returns the results in order."""
    with ThreadPoolExecutor(len(sessions)) as ex:
        return list(ex.map(fn, sessions))


def test_flags_reach_the_other_nine_at_noop(server):
    user = new_user(server)
    seed = Session(server, user)
    uids = [append(seed, "m%d" % i)[1] for i in range(3)]
    seed.close()
    sessions = open_sessions(server, user)
    try:
        assert all(s.uids == uids for s in sessions)
        out = sessions[0].cmd(b"STORE 2 +FLAGS.SILENT (\\Flagged $Work)")
        # .SILENT still announces the new keyword (FLAGS, PERMANENTFLAGS): RFC 9051 §7.3.5
        assert out[-1] == b"OK STORE completed" and all(
            l.startswith((b"* FLAGS (", b"* OK [PERMANENTFLAGS (")) for l in out[:-1]), out
        outs = each(sessions[1:], lambda s: s.cmd(b"NOOP"))
        for out in outs:
            assert out[-1] == b"OK NOOP completed", out
            fetches = [l for l in out if b" FETCH " in l]
            assert len(fetches) == 1, out
            m = re.match(rb"\* 2 FETCH \((.*)\)\r\n$", fetches[0])
            assert m, fetches
            assert b"UID %d" % uids[1] in m.group(1), fetches
            flags = re.search(rb"FLAGS \(([^)]*)\)", m.group(1))
            # one of the ten (whichever selected first) also holds \Recent
            assert flags and set(flags.group(1).split()) - {b"\\Recent"} == {
                b"\\Flagged", b"$Work"}, fetches
            assert any(l.startswith(b"* FLAGS (") and b"$Work" in l
                       for l in out[:out.index(fetches[0])]), out
        # A second NOOP has nothing more to say.
        for out in each(sessions[1:], lambda s: s.cmd(b"NOOP")):
            assert out == [b"OK NOOP completed"], out

        # Several sessions changing flags at once: each change reaches everyone, and all
        # sessions end up agreeing on the final flags.
        def mark(s):
            i = sessions.index(s)
            seq = 1 + i % 3
            out = s.cmd(b"STORE %d +FLAGS.SILENT ($K%d)" % (seq, i))
            assert out[-1] == b"OK STORE completed", out
        each(sessions, mark)
        want = {1: set(), 2: {b"\\Flagged", b"$Work"}, 3: set()}
        for i in range(SESSIONS):
            want[1 + i % 3].add(b"$K%d" % i)

        def final_flags(s):
            s.cmd(b"NOOP")
            out = s.cmd(b"FETCH 1:3 (FLAGS)")
            got = {}
            for l in out[:-1]:
                m = re.match(rb"\* (\d) FETCH \(.*FLAGS \(([^)]*)\)", l)
                if m:
                    got[int(m.group(1))] = set(m.group(2).split())
            return got
        holders = 0
        for got in each(sessions, final_flags):
            # \Recent: in exactly one of the ten sessions (RFC 3501 §2.3.2)
            recent = [b"\\Recent" in f for f in got.values()]
            holders += all(recent)
            assert all(recent) or not any(recent), got
            assert {k: v - {b"\\Recent"} for k, v in got.items()} == want
        assert holders == 1
    finally:
        close_all(sessions)


def test_ten_idle_sessions_see_delivery_within_one_second(server):
    user = new_user(server)
    deliver(server, user, "before")
    assert len(server.wait_mail(user, 1)) == 1
    sessions = open_sessions(server, user)
    try:
        assert all(len(s.uids) == 1 for s in sessions)
        for s in sessions:
            s.send(b"i1 IDLE\r\n")
        for s in sessions:
            assert s.line() == b"+ idling\r\n"
        seen = [None] * SESSIONS
        errors = []

        def wait_exists(i):
            s = sessions[i]
            try:
                while True:
                    line = s.line(timeout=5)
                    if line == b"* 2 EXISTS\r\n":
                        seen[i] = time.monotonic()
                        return
                    if line != b"* 1 RECENT\r\n" and not line.endswith(b" RECENT\r\n"):
                        errors.append((i, line))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append((i, repr(e)))

        threads = [threading.Thread(target=wait_exists, args=(i,)) for i in range(SESSIONS)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        deliver(server, user, "while ten idle")
        delivered = time.monotonic()
        for t in threads:
            t.join(10)
        assert not errors, errors
        late = [(i, round(t - delivered, 3)) for i, t in enumerate(seen)
                if t is None or t - delivered > 1.0]
        assert not late, "sessions without EXISTS within 1 s of delivery: %r" % late
        for s in sessions:
            s.send(b"DONE\r\n")
        for s in sessions:
            lines, status = s.until(b"i1")
            assert status == b"OK IDLE terminated", (lines, status)
            s.uids.append(None)
        uid = server.mail_list(user)[-1]["uid"]
        for got in each(sessions, lambda s: s.server_uids()):
            assert len(got) == 2 and got[1] == uid
    finally:
        close_all(sessions)


def test_expunge_reaches_others_with_consistent_numbers(server):
    user = new_user(server)
    seed = Session(server, user)
    uids = [append(seed, "m%d" % i)[1] for i in range(8)]
    seed.close()
    sessions = open_sessions(server, user)
    try:
        assert all(s.uids == uids for s in sessions)
        actor, idlers, pollers = sessions[0], sessions[1:5], sessions[5:]
        for s in idlers:
            s.send(b"i1 IDLE\r\n")
        for s in idlers:
            assert s.line() == b"+ idling\r\n"
        # Delete messages 2, 5 and 8 (not adjacent, the last included): the numbers the
        # others receive depend on the order the server reports them in, which each
        # session's model follows.
        out = actor.cmd(b"STORE 2,5,8 +FLAGS.SILENT (\\Deleted)")
        assert out[-1] == b"OK STORE completed", out
        out = actor.cmd(b"EXPUNGE")
        assert out[-1] == b"OK EXPUNGE completed", out
        for l in out[:-1]:
            assert actor.apply(l) == b"EXPUNGE", out
        left = [u for i, u in enumerate(uids) if i not in (1, 4, 7)]
        assert actor.uids == left

        def idle_collect(s):
            """EXPUNGE lines arriving during IDLE, until three have come."""
            got = []
            while len([l for l in got if l.endswith(b" EXPUNGE\r\n")]) < 3:
                line = s.line(timeout=3)
                got.append(line)
                # The \Deleted flag change may come first as a FETCH.
                assert s.apply(line) in (b"EXPUNGE", b"FETCH"), got
            s.send(b"DONE\r\n")
            lines, status = s.until(b"i1")
            assert status == b"OK IDLE terminated", (lines, status)
            for l in lines:
                s.apply(l)
            return got
        for got in each(idlers, idle_collect):
            assert len([l for l in got if l.endswith(b" EXPUNGE\r\n")]) == 3, got

        def noop_collect(s):
            out = s.cmd(b"NOOP")
            assert out[-1] == b"OK NOOP completed", out
            for l in out[:-1]:
                s.apply(l)
            return [l for l in out if l.endswith(b" EXPUNGE\r\n")]
        for got in each(pollers, noop_collect):
            assert len(got) == 3, got

        # Every session's model matches the server's numbering.
        for s, got in zip(sessions, each(sessions, lambda s: s.server_uids())):
            assert s.uids == left and got == left, (s.uids, got)

        # An expunge while a session is selected and idle reaches it even when other
        # sessions expunge at the same time (each removes a different message).
        def remove(s):
            i = sessions.index(s)
            if i >= len(left):
                return
            out = s.cmd(b"UID STORE %d +FLAGS.SILENT (\\Deleted)" % left[i])
            assert out[-1].startswith(b"OK"), out
            for l in out[:-1]:  # UID STORE may carry others' EXPUNGEs (RFC 9051 7.5.1)
                s.apply(l)
            out = s.cmd(b"UID EXPUNGE %d" % left[i])
            assert out[-1] == b"OK UID EXPUNGE completed", out
            for l in out[:-1]:
                s.apply(l)
        each(sessions, remove)
        for s, got in zip(sessions, each(sessions, lambda s: s.server_uids())):
            assert s.uids == [] and got == [], (s.uids, got)
    finally:
        close_all(sessions)


def test_concurrent_appends_get_distinct_ascending_uids(server):
    user = new_user(server)
    a, b = Session(server, user), Session(server, user)
    try:
        results = {}

        def run(name, s):
            results[name] = [append(s, "%s%d" % (name, i))[:2] for i in range(15)]
        ta = threading.Thread(target=run, args=("a", a))
        tb = threading.Thread(target=run, args=("b", b))
        ta.start()
        tb.start()
        ta.join(60)
        tb.join(60)
        assert set(results) == {"a", "b"}
        validity = {v for r in results.values() for v, _ in r}
        assert len(validity) == 1
        ua = [u for _, u in results["a"]]
        ub = [u for _, u in results["b"]]
        assert ua == sorted(ua) and len(set(ua)) == len(ua), ua
        assert ub == sorted(ub) and len(set(ub)) == len(ub), ub
        assert not set(ua) & set(ub), (ua, ub)
        stored = server.mail_list(user)
        assert sorted(ua + ub) == [m["uid"] for m in stored]
        by_uid = {m["uid"]: m["subject"] for m in stored}
        assert [by_uid[u] for u in ua] == ["a%d" % i for i in range(15)]
        assert [by_uid[u] for u in ub] == ["b%d" % i for i in range(15)]
        # A session that selects afterwards sees them in UID order.
        c = Session(server, user)
        c.select()
        assert c.uids == sorted(ua + ub)
        c.close()
    finally:
        a.close()
        b.close()


def test_no_expunge_during_fetch_store_search(server):
    """RFC 9051 7.5.1: another session's EXPUNGE is not reported in the middle of FETCH,
    STORE or SEARCH (sequence numbers must not move under them); it comes at the next
    command that may carry it, and the numbers then agree with the server's."""
    user = new_user(server)
    seed = Session(server, user)
    uids = [append(seed, "m%d" % i)[1] for i in range(6)]
    seed.close()
    a, b = open_sessions(server, user, 2)
    try:
        out = a.cmd(b"STORE 1,4 +FLAGS.SILENT (\\Deleted)")
        assert out[-1] == b"OK STORE completed", out
        out = a.cmd(b"EXPUNGE")
        assert out[-1] == b"OK EXPUNGE completed", out
        for cmd in (b"FETCH 1:* (FLAGS)", b"STORE 2 +FLAGS.SILENT (\\Seen)", b"SEARCH ALL",
                    b"FETCH 6 (UID)"):
            out = b.cmd(cmd)
            assert not [l for l in out if l.endswith(b" EXPUNGE\r\n")], (cmd, out)
            assert out[-1].startswith((b"OK", b"NO")), (cmd, out)
            for l in out[:-1]:
                b.apply(l)
            assert len(b.uids) == 6, (cmd, out)
        out = b.cmd(b"NOOP")
        assert out[-1] == b"OK NOOP completed", out
        for l in out[:-1]:
            b.apply(l)
        left = [u for i, u in enumerate(uids) if i not in (0, 3)]
        assert b.uids == left, out
        assert b.server_uids() == left
        # The STORE that b made on its message 2 (uids[1]) landed on that message.
        flags = {m["uid"]: m["flags"] for m in server.mail_list(user)}
        assert "\\Seen" in flags[uids[1]] and "\\Seen" not in flags[uids[2]], flags
    finally:
        close_all([a, b])
