"""Helpers for the POP3 integration tests (tests/integration/test_pop3*.py).

The conftest Server knows only the SMTP ports, so the POP3 ports are read from the
listeners that `posthorn init --port-base N` wrote (N+110 with STLS, N+995 implicit TLS).

Helpers: pop3_ports / wait_pop3, message building and delivery through inbound SMTP,
poplib logins (STLS on 110, implicit TLS on 995, plain USER/PASS where allowed), RawPOP3
(a byte-level client that reads status lines and multi-line responses exactly as sent),
SASL PLAIN and a SCRAM-SHA-256 client (RFC 5802 / RFC 7677) written for these tests.
"""

import base64
import hashlib
import hmac
import os
import poplib
import re
import smtplib
import time

from conftest import HOST, USERS, RawSMTP, tls_client_context, wait_port

DEMO = "demo@example.test"
ALICE = "alice@example.test"
BOB = "bob@other.test"
SENDER = "sender@remote.test"

GREETING = b"+OK Posthorn POP3 ready"
PLAINTEXT_REFUSED = (b"-ERR [AUTH] Plaintext authentication disallowed on non-secure "
                     b"connections, use STLS")
UIDL_RE = re.compile(rb"^[0-9a-f]{16}$")


# ---------------------------------------------------------------------------
# Ports


def _listen_port(server, key):
    for line in server.conf.read_text().splitlines():
        m = re.match(r"^\s*%s\s*=\s*127\.0\.0\.1:(\d+)\s*$" % key, line)
        if m:
            return int(m.group(1))
    raise AssertionError("no %s = 127.0.0.1:PORT line in %s" % (key, server.conf))


def pop3_ports(server):
    """(POP3 port with STLS, POP3S port) as configured (N+110, N+995 for --port-base N)."""
    return _listen_port(server, "pop3_listen"), _listen_port(server, "pop3s_listen")


def pop3_port(server):
    return pop3_ports(server)[0]


def pop3s_port(server):
    return pop3_ports(server)[1]


def wait_pop3(server):
    for p in pop3_ports(server):
        assert wait_port(p, 20, server.proc), "POP3 port %d not listening:\n%s" % (
            p, server.log_text()[-4000:])


# ---------------------------------------------------------------------------
# Mail


def message(subject, body=b"Hello.\r\n", sender=SENDER, to=DEMO, extra=b""):
    """A small RFC 5322 message with CRLF line ends; subject doubles as the Message-ID."""
    if isinstance(body, str):
        body = body.encode()
    head = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@remote.test>\r\n"
            "Date: Mon, 06 Jan 2025 10:00:00 +0000\r\n" % (sender, to, subject, subject))
    return head.encode() + extra + b"\r\n" + body


def deliver(server, msg, rcpt=DEMO, sender=SENDER):
    """Send msg (bytes, CRLF) through inbound SMTP; smtplib does the dot-stuffing."""
    with smtplib.SMTP(HOST, server.smtp_port, timeout=30, local_hostname="client.test") as s:
        s.ehlo("client.test")
        refused = s.sendmail(sender, [rcpt], msg, mail_options=["BODY=8BITMIME"])
        assert not refused, refused


def deliver_all(server, msgs, rcpt=DEMO):
    """Deliver each message and wait until the store holds them all; returns mail list."""
    before = len(server.mail_list(rcpt))
    for m in msgs:
        deliver(server, m, rcpt)
    listing = server.wait_mail(rcpt, before + len(msgs), timeout=20)
    assert len(listing) == before + len(msgs), listing
    return listing


def stored_messages(server, user=DEMO):
    """{uid: stored bytes} of user's INBOX, in UID order."""
    return {m["uid"]: server.mail_cat(user, m["uid"]) for m in server.mail_list(user)}


def stored_by_subject(server, user=DEMO):
    out = {}
    for m in server.mail_list(user):
        assert m["subject"] not in out, "two messages with subject %r" % m["subject"]
        out[m["subject"]] = server.mail_cat(user, m["uid"])
    return out


def account_usage(server, user):
    """(used, messages) from `user list`."""
    for line in server.cli("user", "list").stdout.splitlines():
        if line.split(" ", 1)[0] == user:
            used = int(re.search(r"\bused=(\d+)", line).group(1))
            count = int(re.search(r"\bmessages=(\d+)", line).group(1))
            return used, count
    raise AssertionError("%s not in user list" % user)


def empty_mailbox(server, user=DEMO):
    """Delete everything in user's INBOX through POP3 (over 995)."""
    if not server.mail_list(user):
        return
    p = login_ssl(server, user, retry_in_use=5)
    count, _ = p.stat()
    for i in range(1, count + 1):
        p.dele(i)
    p.quit()
    assert server.mail_list(user) == []


def retr_bytes(lines):
    """The message poplib returned (lines without CRLF, dot-stuffing undone) as bytes."""
    return b"".join(l + b"\r\n" for l in lines)


# ---------------------------------------------------------------------------
# poplib clients


def connect_stls(server, timeout=30):
    """poplib client on 110 after a successful STLS (certificate not checked)."""
    p = poplib.POP3(HOST, pop3_port(server), timeout=timeout)
    p.stls(tls_client_context())
    return p


def connect_ssl(server, timeout=30):
    return poplib.POP3_SSL(HOST, pop3s_port(server), context=tls_client_context(),
                           timeout=timeout)


def _user_pass(p, user, password, retry_in_use):
    password = USERS[user] if password is None else password
    deadline = time.monotonic() + retry_in_use
    p.user(user)
    while True:
        try:
            p.pass_(password)
            return p
        except poplib.error_proto as e:
            if b"[IN-USE]" not in e.args[0] or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def login_stls(server, user=DEMO, password=None, retry_in_use=0):
    """USER/PASS after STLS on 110. retry_in_use: seconds to keep retrying [IN-USE] (for
    a previous session the server may not have seen close yet)."""
    return _user_pass(connect_stls(server), user, password, retry_in_use)


def login_ssl(server, user=DEMO, password=None, retry_in_use=0):
    """USER/PASS on 995."""
    return _user_pass(connect_ssl(server), user, password, retry_in_use)


def login_plain(server, user=DEMO, password=None, retry_in_use=0):
    """USER/PASS on 110 without TLS (only where allow_plaintext_auth = yes)."""
    p = poplib.POP3(HOST, pop3_port(server), timeout=30)
    return _user_pass(p, user, password, retry_in_use)


def uidl_map(p):
    """{message number: unique-id bytes} from UIDL without argument."""
    resp, lines, _ = p.uidl()
    assert resp.startswith(b"+OK"), resp
    out = {}
    for l in lines:
        n, uid = l.split(b" ")
        out[int(n)] = uid
    return out


def list_map(p):
    resp, lines, _ = p.list()
    assert resp.startswith(b"+OK"), resp
    return {int(l.split()[0]): int(l.split()[1]) for l in lines}


def drop(p):
    """Close a poplib connection without QUIT (a dropped connection)."""
    try:
        p.file.close()
    except OSError:
        pass
    try:
        p.sock.close()
    except OSError:
        pass


# ---------------------------------------------------------------------------
# Raw POP3 client


class RawPOP3(RawSMTP):
    """Byte-level POP3 client: sends exactly what the test says; status lines and
    multi-line responses are returned as received (bytes, CRLF removed)."""

    def __init__(self, port, tls=False, timeout=15.0, greeting=True):
        super().__init__(port, tls=tls, timeout=timeout, greeting=False)
        self.greeting = self.read_line() if greeting else None

    def cmd(self, line, timeout=None):
        """Send one command line, return its status line."""
        self.send(line + ("\r\n" if isinstance(line, str) else b"\r\n"))
        return self.read_line(timeout)

    def read_multi(self, timeout=None):
        """The lines of a multi-line response after its status line, up to (without)
        the terminating '.', still dot-stuffed."""
        lines = []
        while True:
            l = self.read_line(timeout)
            if l == b".":
                return lines
            lines.append(l)

    def multi(self, line, timeout=None):
        """(status line, lines) of a command answered with a multi-line response; lines
        is None when the status is -ERR."""
        status = self.cmd(line, timeout)
        if not status.startswith(b"+OK"):
            return status, None
        return status, self.read_multi(timeout)

    def capa(self):
        status, lines = self.multi("CAPA")
        assert status.startswith(b"+OK"), status
        return [l.decode() for l in lines]

    def stls(self):
        r = self.cmd("STLS")
        assert r.startswith(b"+OK"), r
        self.wrap_tls()
        return r

    def auth_plain(self, user=DEMO, password=None, timeout=30):
        password = USERS[user] if password is None else password
        return self.cmd("AUTH PLAIN " + plain_b64(user, password), timeout)

    def user_pass(self, user=DEMO, password=None, timeout=30):
        password = USERS[user] if password is None else password
        r = self.cmd("USER " + user)
        assert r.startswith(b"+OK"), r
        return self.cmd("PASS " + password, timeout)


def unstuff(lines):
    return [l[1:] if l.startswith(b".") else l for l in lines]


def plain_b64(user, password, authzid=""):
    return base64.b64encode(("%s\0%s\0%s" % (authzid, user, password)).encode()).decode()


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


# ---------------------------------------------------------------------------
# SCRAM-SHA-256 client side (RFC 5802 §3, §7; RFC 7677)


class ScramClient:
    def __init__(self, user, password):
        self.user = user
        self.password = password
        self.cnonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"),
                                         self.cnonce)

    def client_first(self):
        return b64("n,," + self.first_bare)

    def client_final(self, server_first_b64):
        server_first = base64.b64decode(server_first_b64).decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        assert attrs["r"].startswith(self.cnonce), server_first
        salt = base64.b64decode(attrs["s"])
        iterations = int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = "c=biws,r=" + attrs["r"]
        auth_message = ",".join((self.first_bare, server_first, without_proof)).encode()
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.server_signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
        return b64(without_proof + ",p=" + base64.b64encode(proof).decode())

    def check_server_final(self, server_final_b64):
        text = base64.b64decode(server_final_b64).decode()
        return text == "v=" + base64.b64encode(self.server_signature).decode()

