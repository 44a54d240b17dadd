"""Session lifecycle (net/session): what happens to an operation that runs on another thread
(the store writer) when the server is told to stop or the client goes away meanwhile.

- SIGTERM while a POP3 QUIT's deletions or an IMAP APPEND's commit may be in flight: the
  server answers what it did (or says goodbye before doing it) and the store agrees with the
  answer; the server exits 0 with a clean (ASan) log.
- A session closed by the server (the pre-login deadline) while its password is checked is
  freed by the check's wake, and SIGTERM during a pending check answers the login first.
- A client that disconnects right after a command that starts a store operation (SMTP end of
  DATA, IMAP APPEND and STORE, POP3 QUIT with deletions): the operation completes, its session
  is freed after it, and nothing leaks or is touched after free.
"""

import os
import signal
import socket
import ssl
import threading
import time

import pytest

from conftest import HOST, USERS, RawSMTP, unique
from imap_helpers import imap_ports, tls_ctx, wait_imap
from pop3_helpers import RawPOP3, deliver_all, message, pop3s_port, wait_pop3

PASSWORD = "Lifecycle-Secret-5"
# One password worker, so a queue of logins keeps a check pending for seconds; a short
# pre-login deadline to end a session while its check is pending.
LOGIN_TIMEOUT = 4
SERVER_CONF = {"auth_workers": "1", "limit_login_timeout": "%ds" % LOGIN_TIMEOUT,
               "limit_connections_per_ip": "500"}
_users = iter(range(1, 1000))


@pytest.fixture(autouse=True)
def running(server):
    """Every test starts with a running server, whatever the previous test left."""
    if server.proc is None:
        server.start()
        wait_pop3(server)
        wait_imap(server)
    yield


def new_user(server):
    addr = "life%d@example.test" % next(_users)
    server.add_user(addr, PASSWORD)
    return addr


def subjects(server, user):
    return [m["subject"] for m in server.mail_list(user)]


def exited_cleanly(server, timeout=15):
    """After the test's SIGTERM: wait for exit 0 and a clean log, and start again."""
    proc = server.proc
    try:
        rc = proc.wait(timeout)
    finally:
        server.stop()
    assert rc == 0, "exit status after SIGTERM: %r\n%s" % (rc, server.log_text()[-4000:])
    server.assert_clean_log()
    server.start()
    wait_pop3(server)
    wait_imap(server)


# ---------------------------------------------------------------------------
# IMAP over implicit TLS, byte level


class RawIMAP:
    def __init__(self, server, user):
        raw = socket.create_connection((HOST, imap_ports(server)[1]), timeout=20)
        self.sock = tls_ctx().wrap_socket(raw)
        self.buf = b""
        assert self.line().startswith(b"* OK")
        self.send(b'a0 LOGIN %s "%s"\r\n' % (user.encode(), PASSWORD.encode()))
        assert self.until(b"a0 ")[-1].startswith(b"a0 OK")

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def until(self, tag):
        lines = []
        while True:
            l = self.line()
            lines.append(l)
            if l.startswith(tag):
                return lines

    def rest(self):
        """Everything until the server closes."""
        out = self.buf
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (ConnectionResetError, ssl.SSLError, socket.timeout):
            pass
        return out

    def vanish(self):
        """Close at once, without reading the answer (RST if anything is unread)."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        self.sock.close()


def append_cmd(tag, subject):
    msg = ("From: <a@remote.test>\r\nSubject: %s\r\n\r\nbody\r\n" % subject).encode()
    return b"%s APPEND INBOX {%d+}\r\n%s\r\n" % (tag, len(msg), msg)


# ---------------------------------------------------------------------------
# SIGTERM while an operation may be in flight


def test_sigterm_during_pop3_quit_deletions(server):
    user = new_user(server)
    msgs = [message(unique("q"), to=user) for _ in range(40)]
    deliver_all(server, msgs, rcpt=user)
    p = RawPOP3(pop3s_port(server), tls=True)
    assert p.user_pass(user, PASSWORD).startswith(b"+OK")
    for i in range(1, 41):
        p.send(b"DELE %d\r\n" % i)
    for i in range(1, 41):
        assert p.read_line().startswith(b"+OK")
    p.send(b"QUIT\r\n")
    server.proc.send_signal(signal.SIGTERM)   # while the deletions commit, or about then
    answer = p.read_line()
    assert p.is_closed(10)
    p.close()
    # Exactly one line: either QUIT's own (the goodbye waited for the commit) or the
    # shutdown goodbye before QUIT was read (then nothing was deleted, RFC 1939 §6).
    assert answer in (b"+OK Logging out, 40 messages deleted",
                      b"-ERR [SYS/TEMP] Server shutting down"), answer
    exited_cleanly(server)
    left = subjects(server, user)
    if answer.startswith(b"+OK"):
        assert left == []
    else:
        assert len(left) == 40


def test_sigterm_during_imap_append_commit(server):
    user = new_user(server)
    s = RawIMAP(server, user)
    subj = unique("append")
    s.send(append_cmd(b"a1", subj))
    server.proc.send_signal(signal.SIGTERM)   # while the APPEND commits, or about then
    out = s.rest()
    s.sock.close()
    assert b"* BYE Server shutting down\r\n" in out, out
    if b"a1 OK" in out:
        # The goodbye came after the answer, never before it or inside it.
        assert out.index(b"a1 OK") < out.index(b"* BYE"), out
    exited_cleanly(server)
    stored = subjects(server, user)
    assert stored == ([subj] if b"a1 OK" in out else []), (stored, out)


def test_sigterm_with_many_operations_in_flight(server):
    """Several sessions each with a store operation just started when SIGTERM comes: every
    session ends with an answer the store agrees with, and the server exits 0."""
    user = new_user(server)
    sessions = [RawIMAP(server, user) for _ in range(6)]
    subjs = [unique("many") for _ in sessions]
    for s, subj in zip(sessions, subjs):
        s.send(append_cmd(b"a1", subj))
    server.proc.send_signal(signal.SIGTERM)
    answered = []
    for s, subj in zip(sessions, subjs):
        out = s.rest()
        s.sock.close()
        assert b"* BYE" in out, out
        if b"a1 OK" in out:
            answered.append(subj)
    exited_cleanly(server)
    assert sorted(subjects(server, user)) == sorted(answered)


# ---------------------------------------------------------------------------
# Clients that vanish while their operation runs


def test_clients_vanishing_during_store_operations(server):
    user = new_user(server)
    deliver_all(server, [message(unique("pop"), to=user) for _ in range(10)], rcpt=user)
    appended = []
    for round_ in range(10):
        # IMAP: an APPEND, then gone before its answer.
        s = RawIMAP(server, user)
        subj = unique("gone")
        s.send(append_cmd(b"a1", subj))
        s.vanish()
        appended.append(subj)
        # IMAP: SELECT, then a STORE (a writer operation), then gone.
        s = RawIMAP(server, user)
        s.send(b"a1 SELECT INBOX\r\n")
        s.until(b"a1 ")
        s.send(b"a2 STORE 1:* +FLAGS (\\Flagged)\r\n")
        s.vanish()
    # SMTP: the end of DATA starts the delivery; the client does not wait for the 250.
    delivered = []
    for round_ in range(5):
        c = RawSMTP(server.smtp_port)
        c.ehlo()
        c.cmd("MAIL FROM:<s@remote.test>")
        c.cmd("RCPT TO:<%s>" % user)
        assert c.cmd("DATA").code == 354
        subj = unique("smtpgone")
        c.send(b"Subject: %s\r\n\r\nbody\r\n.\r\n" % subj.encode())
        c.close()
        delivered.append(subj)
    # POP3: QUIT with deletions, gone before the answer. The maildrop lock is released by
    # the session's end, so each next login waits for the previous one.
    for round_ in range(3):
        p = None
        for attempt in range(50):
            p = RawPOP3(pop3s_port(server), tls=True)
            r = p.user_pass(user, PASSWORD)
            if r.startswith(b"+OK"):
                break
            p.close()
            time.sleep(0.1)
        assert r.startswith(b"+OK"), r
        p.send(b"DELE 1\r\nQUIT\r\n")
        p.close()
    # Everything that was sent completely was done, and the sessions are gone cleanly.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        have = subjects(server, user)
        if all(x in have for x in appended + delivered):
            break
        time.sleep(0.2)
    have = subjects(server, user)
    for x in appended + delivered:
        assert x in have, (x, have)
    assert len(have) == 10 + len(appended) + len(delivered) - 3, have
    # The server still works, and ASan saw nothing.
    s = RawIMAP(server, user)
    s.send(b"a9 LOGOUT\r\n")
    assert s.until(b"a9 ")[-1].startswith(b"a9 OK")
    server.assert_clean_log()
    tmp = server.dir / "data" / "tmp"
    deadline = time.monotonic() + 5
    while os.listdir(tmp) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert os.listdir(tmp) == [], "spool files left behind"


# ---------------------------------------------------------------------------
# A password check pending while the session ends (the worker is kept busy)


def imaps_greeted(server):
    sock = tls_ctx().wrap_socket(socket.create_connection((HOST, imap_ports(server)[1]),
                                                          timeout=30))
    buf = b""
    while b"\r\n" not in buf:
        chunk = sock.recv(4096)
        assert chunk, "no greeting"
        buf += chunk
    assert buf.startswith(b"* OK"), buf
    return sock


def read_all(sock):
    out = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
    except (ConnectionResetError, ssl.SSLError, socket.timeout):
        pass
    return out


def busy_worker(server, n=60):
    """n connections whose wrong passwords (never cached) queue on the one worker: about
    n times one argon2id hash (tens of ms each) of work ahead of the next login."""
    socks = [imaps_greeted(server) for _ in range(n)]
    return socks


class BusyFeeder(threading.Thread):
    """Keeps the one password worker busy: a new connection with a wrong password (never
    cached) every 20 ms, faster than the worker hashes, until stopped (at most `cap`)."""

    def __init__(self, server, cap=250):
        super().__init__(daemon=True)
        self.server, self.cap, self.socks = server, cap, []
        self.stop_now = threading.Event()

    def run(self):
        while not self.stop_now.is_set() and len(self.socks) < self.cap:
            s = imaps_greeted(self.server)
            s.sendall(b"x LOGIN nobody@example.test wrong-%d\r\n" % len(self.socks))
            self.socks.append(s)
            time.sleep(0.02)

    def finish(self):
        self.stop_now.set()
        self.join()
        for s in self.socks:
            s.close()


def test_deadline_while_password_is_checked(server):
    """on_closed comes while the password check is in flight (the deadline closed the
    session): the session lives until the check's wake, which frees it without answering;
    nothing leaks (LeakSanitizer at exit) and the server keeps working."""
    user = new_user(server)
    feeder = BusyFeeder(server)
    feeder.start()
    time.sleep(0.5)                                      # the worker has a queue now
    target = imaps_greeted(server)                       # its deadline starts now
    time.sleep(LOGIN_TIMEOUT - 1)                        # more than 1 s of hashes queued
    target.sendall(b'a1 LOGIN %s "%s"\r\n' % (user.encode(), PASSWORD.encode()))
    target.settimeout(LOGIN_TIMEOUT + 10)
    out = read_all(target)
    target.close()
    feeder.finish()
    # The deadline ended it while the check waited behind the others: no answer to a1.
    assert b"* BYE" in out and b"a1 " not in out, out
    # Stop now, while checks of sessions that are gone still wait on the worker: the
    # server runs until their wakes freed them (else LeakSanitizer reports the sessions at
    # exit, or a wake comes after the event loop is gone), and exits 0. Every queued hash
    # runs first, and the feeder queued seconds of them: on a loaded machine that is long.
    server.proc.send_signal(signal.SIGTERM)
    exited_cleanly(server, timeout=120)
    s = RawIMAP(server, user)
    s.send(b"a9 LOGOUT\r\n")
    assert s.until(b"a9 ")[-1].startswith(b"a9 OK")
    s.sock.close()


def test_sigterm_while_password_is_checked(server):
    """Shutdown while a login's check is pending: the login is answered first (the goodbye
    waits for the operation), then BYE."""
    user = new_user(server)
    busy = busy_worker(server, 4)     # ahead of it, but done well before its deadline
    target = imaps_greeted(server)
    for i, s in enumerate(busy):
        s.sendall(b"x LOGIN nobody@example.test wrong-%d\r\n" % i)
    target.sendall(b'a1 LOGIN %s "%s"\r\n' % (user.encode(), PASSWORD.encode()))
    time.sleep(0.1)
    server.proc.send_signal(signal.SIGTERM)
    target.settimeout(30)
    out = read_all(target)
    target.close()
    for s in busy:
        s.close()
    assert b"a1 OK" in out and b"* BYE Server shutting down" in out, out
    assert out.index(b"a1 OK") < out.index(b"* BYE"), out
    exited_cleanly(server)
