"""IMAP correctness that independent suites (imaptest, IMAPClient's live test) checked:
\\Recent for IMAP4rev1 sessions (recent in exactly one session; RECENT, STATUS RECENT, the
\\Recent flag, SEARCH NEW/OLD/RECENT; none for IMAP4rev2), OK [UNSEEN n] at SELECT, new
keywords announced with FLAGS/PERMANENTFLAGS before a FETCH shows them, NIL as a keyword,
APPEND storing CRLF line ends, an over-long command line answered with its tag, modified
UTF-7 names that would not round-trip refused, FETCH of a message another session expunged
(NO [EXPUNGEISSUED]), and SUBSCRIBE of a mailbox that does not exist refused."""

import itertools
import re
import socket

from imap_helpers import imap_ports, tls_ctx, wait_imap
from conftest import HOST

PASSWORD = "rev1-Secret-4"
# debug: the IMAP state changes are logged there (test_state_changes_are_logged)
SERVER_CONF = {"log_level": "debug", "store_read_threads": "2"}  # reads off the loop
_users = itertools.count(1)


def new_user(server):
    address = "rev%d@example.test" % next(_users)
    server.add_user(address, PASSWORD)
    return address


class Raw:
    """A raw IMAPS session; cmd() returns (untagged lines, tagged line) as str, literals
    joined into their line as {n}<data>."""

    def __init__(self, server, user):
        wait_imap(server)
        raw = socket.create_connection((HOST, imap_ports(server)[1]), timeout=10)
        self.sock = tls_ctx().wrap_socket(raw)
        self.f = self.sock.makefile("rb")
        assert self.f.readline().startswith(b"* OK")
        self.n = 0
        self.ok('LOGIN "%s" "%s"' % (user, PASSWORD))

    def line(self):
        line = self.f.readline()
        assert line, "connection closed"
        m = re.search(rb"\{(\d+)\}\r\n$", line)
        if m:
            data = self.f.read(int(m.group(1)))
            line = line[:-2] + data + self.line().encode("latin-1")
        return line.decode("latin-1").rstrip("\r\n")

    def cmd(self, text):
        self.n += 1
        tag = "t%d" % self.n
        data = text.encode() if isinstance(text, str) else text
        self.sock.sendall(tag.encode() + b" " + data + b"\r\n")
        lines = []
        while True:
            line = self.line()
            if line.startswith(tag + " "):
                return lines, line
            lines.append(line)

    def ok(self, text):
        lines, tagged = self.cmd(text)
        assert tagged.split()[1] == "OK", (text, lines, tagged)
        return lines

    def append(self, mailbox, message, binary=False):
        self.n += 1
        tag = "t%d" % self.n
        self.sock.sendall(b"%s APPEND %s %s{%d+}\r\n" % (
            tag.encode(), mailbox.encode(), b"~" if binary else b"", len(message))
            + message + b"\r\n")
        lines = []
        while True:
            line = self.line()
            if line.startswith(tag + " "):
                assert " OK" in line, line
                return lines
            lines.append(line)

    def close(self):
        self.sock.close()


def recent_of(lines):
    return [int(m.group(1)) for m in (re.match(r"^\* (\d+) RECENT$", l) for l in lines) if m]


def msg(subject):
    return ("From: a@remote.test\r\nSubject: %s\r\n\r\nbody\r\n" % subject).encode()


def test_recent_in_exactly_one_session(server):
    user = new_user(server)
    a, b = Raw(server, user), Raw(server, user)
    a.ok("CREATE R")
    a.append("R", msg("one"))
    a.append("R", msg("two"))
    # STATUS and EXAMINE look without claiming.
    assert "RECENT 2" in a.ok("STATUS R (RECENT)")[0]
    lines = b.ok("EXAMINE R")
    assert recent_of(lines) == [2]
    assert any(l == "* OK [UNSEEN 1] First unseen" for l in lines), lines
    b.ok("CLOSE")
    # The first SELECT claims them.
    assert recent_of(a.ok("SELECT R")) == [2]
    assert recent_of(b.ok("SELECT R")) == [0]
    assert "RECENT 0" in b.ok("STATUS R (RECENT)")[0]
    flags_a = " ".join(a.ok("FETCH 1:* FLAGS"))
    assert flags_a.count("\\Recent") == 2, flags_a
    assert "\\Recent" not in " ".join(b.ok("FETCH 1:* FLAGS"))
    assert a.ok("SEARCH RECENT") == ["* SEARCH 1 2"]
    assert a.ok("SEARCH NEW") == ["* SEARCH 1 2"]
    assert a.ok("SEARCH OLD") == ["* SEARCH"]
    assert b.ok("SEARCH RECENT") == ["* SEARCH"]
    assert b.ok("SEARCH OLD") == ["* SEARCH 1 2"]
    a.ok("STORE 1 +FLAGS \\Seen")
    assert a.ok("SEARCH NEW") == ["* SEARCH 2"]
    # A new message is recent in the first session told of it, only.
    lines = b.append("R", msg("three")) + b.ok("NOOP")
    assert "* 3 EXISTS" in lines and recent_of(lines) == [1], lines
    lines = a.ok("NOOP")
    assert "* 3 EXISTS" in lines and recent_of(lines) == [2], lines
    assert "\\Recent" not in a.ok("FETCH 3 FLAGS")[0]
    assert "\\Recent" in b.ok("FETCH 3 FLAGS")[0]
    # Reselecting: nothing is recent any more.
    assert recent_of(a.ok("SELECT R")) == [0]
    a.close()
    b.close()


def test_no_recent_for_imap4rev2(server):
    user = new_user(server)
    c = Raw(server, user)
    c.ok("CREATE R2")
    c.append("R2", msg("one"))
    c.ok("ENABLE IMAP4rev2")
    lines = c.ok("SELECT R2")
    assert recent_of(lines) == [] and not any("UNSEEN" in l for l in lines), lines
    assert "\\Recent" not in c.ok("FETCH 1 FLAGS")[0]
    c.close()
    # The rev2 session claimed nothing: a rev1 session still sees it recent.
    d = Raw(server, user)
    assert recent_of(d.ok("SELECT R2")) == [1]
    d.close()


def test_new_keyword_announced_before_fetch(server):
    user = new_user(server)
    a, b = Raw(server, user), Raw(server, user)
    a.append("INBOX", msg("kw"))
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    lines = a.ok("STORE 1 +FLAGS ($Hello)")
    i_flags = next(i for i, l in enumerate(lines) if l.startswith("* FLAGS"))
    i_fetch = next(i for i, l in enumerate(lines) if "FETCH" in l)
    assert i_flags < i_fetch and "$Hello" in lines[i_flags], lines
    assert any("PERMANENTFLAGS" in l and "$Hello" in l for l in lines[:i_fetch]), lines
    # The other session learns it at its next sync, before the FETCH that uses it.
    lines = b.ok("NOOP")
    i_flags = next(i for i, l in enumerate(lines) if l.startswith("* FLAGS"))
    i_fetch = next(i for i, l in enumerate(lines) if "FETCH" in l)
    assert i_flags < i_fetch and "$Hello" in lines[i_flags], lines
    # Known now: not announced again.
    lines = a.ok("STORE 1 -FLAGS ($Hello)")
    lines += a.ok("STORE 1 +FLAGS ($Hello)")
    assert not any(l.startswith("* FLAGS") for l in lines), lines
    # NIL is an atom, so a keyword (RFC 9051 §9 flag-keyword).
    lines = a.ok("STORE 1 +FLAGS NIL")
    assert any(l.startswith("* FLAGS") and " NIL" in l for l in lines), lines
    assert "NIL" in a.ok("FETCH 1 FLAGS")[0]
    a.close()
    b.close()


def test_append_converts_bare_lf(server):
    user = new_user(server)
    c = Raw(server, user)
    c.append("INBOX", b"From: a@b.c\nSubject: lf\n\nline one\nline two\rthree\r\n")
    c.append("INBOX", b"From: a@b.c\r\n\r\nbin\n\x00x\n", binary=True)  # literal8: as sent
    c.ok("SELECT INBOX")
    want = b"From: a@b.c\r\nSubject: lf\r\n\r\nline one\r\nline two\r\nthree\r\n"
    lines = c.ok("FETCH 1 (RFC822.SIZE BODY.PEEK[])")
    assert ("RFC822.SIZE %d " % len(want)) in lines[0], lines
    assert lines[0].encode("latin-1").endswith(b"{%d}" % len(want) + want + b")"), lines
    assert server.mail_cat(user, 1) == want
    lines = c.ok("FETCH 2 RFC822.SIZE")
    assert "RFC822.SIZE 22" in lines[0], lines
    c.close()


def test_overlong_line_gets_tagged_answer(server):
    user = new_user(server)
    c = Raw(server, user)
    c.sock.sendall(b"long1 NOOP " + b"x" * 70000 + b"\r\n")
    rest = b""
    c.sock.settimeout(10)
    try:
        while True:
            chunk = c.f.read1(65536)
            if not chunk:
                break
            rest += chunk
    except OSError:
        pass
    assert re.search(rb"^long1 BAD \[TOOBIG\]", rest, re.M), rest
    assert b"* BYE" in rest
    c.close()
    # A line that continues a command after a literal: the command's tag.
    c = Raw(server, user)
    c.sock.sendall(b"long2 SELECT {5+}\r\nINBOX " + b"y" * 70000 + b"\r\n")
    rest = b""
    try:
        while True:
            chunk = c.f.read1(65536)
            if not chunk:
                break
            rest += chunk
    except OSError:
        pass
    assert re.search(rb"^long2 BAD \[TOOBIG\]", rest, re.M), rest
    c.close()


def test_mutf7_names_must_round_trip(server):
    user = new_user(server)
    c = Raw(server, user)
    lines, tagged = c.cmd("CREATE &AOQ-&AOQ-")         # null shift: not canonical
    assert tagged.split()[1] in ("NO", "BAD"), tagged
    lines, tagged = c.cmd("RENAME INBOX &AOQ-&AOQ-")
    assert tagged.split()[1] in ("NO", "BAD"), tagged
    c.ok("CREATE &AOQA5A-")                              # the canonical spelling
    assert any(l.endswith('"&AOQA5A-"') for l in c.ok('LIST "" "*"'))
    c.close()


def test_fetch_of_expunged_message(server):
    user = new_user(server)
    a, b = Raw(server, user), Raw(server, user)
    a.append("INBOX", msg("one"))
    a.append("INBOX", msg("two"))
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    b.ok("STORE 1 +FLAGS.SILENT \\Deleted")
    b.ok("EXPUNGE")
    # a has not been told: its message 1 is gone from the store.
    lines, tagged = a.cmd("FETCH 1:2 (ENVELOPE BODYSTRUCTURE)")
    assert tagged.split()[1] == "NO" and "[EXPUNGEISSUED]" in tagged, tagged
    assert not any("ENVELOPE NIL" in l or l.startswith("* 1 FETCH") for l in lines), lines
    assert any(l.startswith("* 2 FETCH (ENVELOPE (") for l in lines), lines
    # FLAGS come from the session's view.
    assert a.ok("FETCH 1 FLAGS")[0].startswith("* 1 FETCH (FLAGS (")
    assert "* 1 EXPUNGE" in a.ok("NOOP")
    a.close()
    b.close()


def test_subscribe_needs_an_existing_mailbox(server):
    user = new_user(server)
    c = Raw(server, user)
    lines, tagged = c.cmd("SUBSCRIBE NoSuchBox")
    assert tagged.split()[1] == "NO" and "[NONEXISTENT]" in tagged, tagged
    c.ok("CREATE Box")
    c.ok("SUBSCRIBE Box")
    c.ok("DELETE Box")
    c.ok("UNSUBSCRIBE Box")
    c.close()


def test_literal8_append_stores_binary_parts_as_base64(server):
    user = new_user(server)
    c = Raw(server, user)
    body = b"\x00-\xe4\n\r\n"
    c.append("INBOX", b"From: a@b.c\r\nMime-Version: 1.0\r\nContent-Type: application/x\r\n"
             b"Content-Transfer-Encoding: binary\r\n\r\n" + body, binary=True)
    c.ok("SELECT INBOX")
    lines = c.ok("FETCH 1 (BODY.PEEK[1] BINARY.PEEK[1] BINARY.SIZE[1])")
    raw = lines[0].encode("latin-1")
    assert b"BODY[1] {8}AC3kCg0K" in raw, raw               # no NUL in a {n} literal
    assert b"BINARY[1] ~{6}" + body in raw, raw              # literal8 gives the octets
    assert b"BINARY.SIZE[1] 6" in raw, raw
    assert b"Content-Transfer-Encoding: base64\r\n" in server.mail_cat(user, 1)
    c.close()


def test_no_answers_do_not_end_the_session(server):
    """Only BAD counts toward limit_errors: NO is a normal answer (a message expunged
    meanwhile, a missing mailbox) and long sessions get many of them."""
    user = new_user(server)
    c = Raw(server, user)
    for i in range(30):
        lines, tagged = c.cmd("SELECT NoSuchBox%d" % i)
        assert tagged.split()[1] == "NO", tagged
    c.ok("NOOP")
    c.close()


def test_state_changes_are_logged(server):
    user = new_user(server)
    c = Raw(server, user)
    c.ok("SELECT INBOX")
    c.ok("UNSELECT")
    c.cmd("LOGOUT")
    c.close()
    log = server.log_text()
    for pair in (("not-authenticated", "authenticated"), ("authenticated", "selected"),
                 ("selected", "authenticated"), ("authenticated", "logout")):
        assert "proto=imap event=state from=%s to=%s" % pair in log, pair


def test_append_quota_counts_the_converted_size(server):
    """The quota sees the stored octets: a literal that fits before its bare LFs become
    CRLF but not after is refused with OVERQUOTA, and nothing is stored."""
    address = "revq@example.test"
    server.add_user(address, PASSWORD, quota="1K")
    c = Raw(server, address)
    message = b"Subject: q\n\n" + b"\n" * 600
    assert len(message) < 1024 < 2 * len(message)
    c.n += 1
    c.sock.sendall(b"q1 APPEND INBOX {%d+}\r\n" % len(message) + message + b"\r\n")
    while True:
        line = c.line()
        if line.startswith("q1 "):
            break
    assert line.startswith("q1 NO") and "[OVERQUOTA]" in line, line
    assert server.mail_list(address) == []
    c.close()
