"""POP3 transactions (RFC 1939) with Python's poplib and a raw client, on the configuration
`posthorn init` writes (logins over STLS on 110 or implicit TLS on 995):
download-and-delete byte-identical to the stored message (dot-stuffing, 8-bit, 300 KB),
DELE then a dropped connection or RSET deletes nothing, leave-on-server across three
sessions with stable UIDLs, TOP, LIST/STAT/UIDL with and without argument, states,
pipelining, [IN-USE], and an account removed while a session holds its maildrop."""

import poplib
import re

import pytest

from conftest import USERS, unique
from pop3_helpers import (ALICE, BOB, DEMO, UIDL_RE, RawPOP3, account_usage, deliver_all, drop,
                          empty_mailbox, list_map, login_ssl, login_stls, message, pop3s_port,
                          retr_bytes, stored_messages, uidl_map, unstuff, wait_pop3)

CAROL = "carol@example.test"

# Store reads run on the store's reader threads here (as on PostgreSQL), so every test of
# this module drives the queued path of store_read(); the other POP3 modules run them in
# place, as SQLite does by default.
SERVER_CONF = {"store_read_threads": "2"}


@pytest.fixture(scope="module", autouse=True)
def pop3_ready(server):
    wait_pop3(server)


@pytest.fixture
def empty_demo(server):
    """DEMO's INBOX empty before and after the test."""
    empty_mailbox(server, DEMO)
    yield
    empty_mailbox(server, DEMO)


def dotted_message():
    body = (b".\r\n"
            b"..\r\n"
            b".leading dot\r\n"
            b"...three\r\n"
            b"a line\r\n"
            b". \r\n"
            b"\r\n"
            b".\r\n")
    return message(unique("dots"), body)


def eight_bit_message():
    body = ("Gr\u00fc\u00dfe aus K\u00f6ln \u2014 \u00fcn\u00efc\u00f6d\u00e9\r\n".encode()
            + bytes(range(0x80, 0x100)) + b"\r\n"
            + bytes(range(0x20, 0x7f)) + b"\r\n")
    extra = (b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
             b"Content-Transfer-Encoding: 8bit\r\n")
    return message(unique("8bit"), body, extra=extra)


def big_message(size=300 * 1024):
    lines = []
    n = 0
    total = 0
    while total < size:
        l = b"%06d " % n + b"abcdefghijklmnopqrstuvwxyz0123456789" * 2
        if n % 50 == 0:
            l = b"." + l        # some lines need dot-stuffing
        lines.append(l)
        total += len(l) + 2
        n += 1
    return message(unique("big"), b"\r\n".join(lines) + b"\r\n")


# ---------------------------------------------------------------------------


def test_greeting_and_tls_ports(server):
    with RawPOP3(pop3s_port(server), tls=True) as c:
        assert c.greeting == b"+OK Posthorn POP3 ready"
        assert c.cmd("QUIT") == b"+OK Logging out"
        assert c.is_closed(5)


def test_download_and_delete(server, empty_demo):
    sent = [dotted_message(), eight_bit_message(), big_message()]
    listing = deliver_all(server, sent)
    stored = stored_messages(server)
    by_number = [stored[m["uid"]] for m in listing]        # message n = n-th UID
    for msg, st in zip(sent, by_number):
        assert st.endswith(msg), "stored bytes are not the sent message plus trace"
    used, count = account_usage(server, DEMO)
    assert count == 3 and used >= sum(len(s) for s in sent)

    p = login_stls(server)
    assert p.stat() == (3, sum(len(s) for s in by_number))
    assert list_map(p) == {i + 1: len(s) for i, s in enumerate(by_number)}
    for n, st in enumerate(by_number, 1):
        resp, lines, octets = p.retr(n)
        assert resp == b"+OK %d octets" % len(st), resp
        got = retr_bytes(lines)
        assert got == st, "RETR %d differs from the stored bytes (%d vs %d octets)" % (
            n, len(got), len(st))
        assert got.endswith(sent[n - 1])
    for n in (1, 2, 3):
        assert p.dele(n) == b"+OK Message %d deleted" % n
    assert p.stat() == (0, 0)
    # DELE takes effect only at QUIT.
    assert len(server.mail_list(DEMO)) == 3
    assert p.quit() == b"+OK Logging out, 3 messages deleted"
    assert server.mail_list(DEMO) == []
    assert account_usage(server, DEMO) == (0, 0)


def test_dele_then_dropped_connection_deletes_nothing(server, empty_demo):
    listing = deliver_all(server, [message(unique("drop")), message(unique("drop"))])
    usage = account_usage(server, DEMO)
    p = login_ssl(server)
    assert p.dele(1).startswith(b"+OK") and p.dele(2).startswith(b"+OK")
    assert p.stat() == (0, 0)
    drop(p)
    # The next session sees both (the server may need a moment to notice the drop).
    p = login_stls(server, retry_in_use=5)
    assert p.stat()[0] == 2
    assert p.quit() == b"+OK Logging out"
    assert [m["uid"] for m in server.mail_list(DEMO)] == [m["uid"] for m in listing]
    assert account_usage(server, DEMO) == usage


def test_dele_rset_quit_deletes_nothing(server, empty_demo):
    listing = deliver_all(server, [message(unique("rset")), message(unique("rset"))])
    with RawPOP3(pop3s_port(server), tls=True) as c:
        assert c.user_pass().startswith(b"+OK Logged in, 2 messages")
        assert c.cmd("DELE 2") == b"+OK Message 2 deleted"
        assert c.cmd("DELE 1") == b"+OK Message 1 deleted"
        assert c.cmd("STAT") == b"+OK 0 0"
        assert c.cmd("RSET").startswith(b"+OK")
        st = c.cmd("STAT")
        assert re.match(rb"^\+OK 2 \d+$", st), st
        assert c.cmd("QUIT") == b"+OK Logging out"
        assert c.is_closed(5)
    assert [m["uid"] for m in server.mail_list(DEMO)] == [m["uid"] for m in listing]


def test_quit_releases_the_maildrop_at_once(server):
    """A client that QUITs and logs in again at once must not meet its own lock."""
    for i in range(5):
        p = login_ssl(server, DEMO)
        assert p.quit().startswith(b"+OK Logging out")
        p = login_stls(server, DEMO)      # no retry: QUIT was answered, the lock is gone
        assert p.noop() == b"+OK"
        assert p.quit().startswith(b"+OK Logging out")


def test_leave_on_server_three_sessions(server):
    """A 'leave messages on server' client: UIDLs stay, new mail gets new UIDLs, no message
    is ever listed with two different UIDLs, and deleting one old message moves no UIDL."""
    seen = {}          # uidl -> message bytes
    uidl_of = {}       # message bytes -> uidl

    def session(expect_count):
        p = login_ssl(server, BOB, retry_in_use=5)
        uidls = uidl_map(p)
        assert sorted(uidls) == list(range(1, expect_count + 1)), uidls
        assert len(set(uidls.values())) == len(uidls), "two messages share a UIDL: %r" % uidls
        listing = server.mail_list(BOB)
        for n, u in uidls.items():
            assert UIDL_RE.match(u), u
            assert int(u[8:], 16) == listing[n - 1]["uid"], (u, listing)
            # UIDL n agrees with the listing
            assert p.uidl(n) == b"+OK %d %s" % (n, u)
        assert len({u[:8] for u in uidls.values()}) == 1      # one UIDVALIDITY
        new = []
        for n, u in uidls.items():
            if u in seen:
                continue
            _, lines, _ = p.retr(n)
            body = retr_bytes(lines)
            assert body not in uidl_of, "message listed again with another UIDL"
            seen[u] = body
            uidl_of[body] = u
            new.append(n)
        # every message still listed keeps the bytes it had under that UIDL
        for n, u in uidls.items():
            _, lines, _ = p.retr(n)
            assert retr_bytes(lines) == seen[u]
        return p, uidls, new

    deliver_all(server, [message(unique("los"), to=BOB), message(unique("los"), to=BOB)],
                rcpt=BOB)
    p, u1, new = session(2)
    assert new == [1, 2]
    assert p.quit() == b"+OK Logging out"

    deliver_all(server, [message(unique("los"), to=BOB)], rcpt=BOB)
    p, u2, new = session(3)
    assert new == [3]
    assert {n: u2[n] for n in u1} == u1
    assert u2[3] not in u1.values()
    # "delete from server after N days": the client removes its oldest copy
    assert p.dele(1).startswith(b"+OK")
    assert p.quit() == b"+OK Logging out, 1 messages deleted"

    deliver_all(server, [message(unique("los"), to=BOB), message(unique("los"), to=BOB)],
                rcpt=BOB)
    p, u3, new = session(4)
    assert new == [3, 4]
    assert u3[1] == u2[2] and u3[2] == u2[3]
    assert u1[1] not in u3.values()         # a deleted message's UIDL is never reused
    assert len(seen) == 5 and len(uidl_of) == 5
    assert p.quit() == b"+OK Logging out"


def test_top(server, empty_demo):
    body = b"line 1\r\n.dotted\r\n\r\nline 4\r\n..two dots\r\nline 6\r\n"
    deliver_all(server, [message(unique("top"), body)])
    st = list(stored_messages(server).values())[0]
    head, stored_body = st.split(b"\r\n\r\n", 1)
    head_lines = head.split(b"\r\n")
    body_lines = stored_body.split(b"\r\n")[:-1]
    assert body_lines[:2] == [b"line 1", b".dotted"]

    p = login_ssl(server)
    resp, lines, _ = p.top(1, 0)
    assert resp.startswith(b"+OK")
    assert lines == head_lines + [b""]
    resp, lines, _ = p.top(1, 3)
    assert lines == head_lines + [b""] + body_lines[:3]
    resp, lines, _ = p.top(1, 5)
    assert lines == head_lines + [b""] + body_lines[:5]
    resp, lines, _ = p.top(1, 100)     # more than there are: the whole message
    assert retr_bytes(lines) == st
    p.quit()

    # On the wire: dot-stuffed, CRLF, and the header/body separator present.
    with RawPOP3(pop3s_port(server), tls=True) as c:
        assert c.user_pass().startswith(b"+OK")
        status, raw = c.multi("TOP 1 2")
        assert status.startswith(b"+OK"), status
        assert raw == [l if not l.startswith(b".") else b"." + l for l in head_lines] + [
            b"", b"line 1", b"..dotted"]
        status, raw = c.multi("TOP 1 5")
        assert raw[-3:] == [b"", b"line 4", b"...two dots"]
        assert unstuff(raw) == head_lines + [b""] + body_lines[:5]
        assert c.cmd("TOP 1 -1") == b"-ERR Invalid number of lines"
        assert c.cmd("TOP 1 x") == b"-ERR Invalid number of lines"
        assert c.cmd("TOP 0 1") == b"-ERR Invalid message number"
        assert c.cmd("TOP 2 1") == b"-ERR There is no such message"
        assert c.cmd("TOP 1") == b"-ERR Missing argument"
        assert c.cmd("DELE 1").startswith(b"+OK")
        assert c.cmd("TOP 1 0") == b"-ERR Message is deleted"
        assert c.cmd("RSET").startswith(b"+OK")
        assert c.cmd("QUIT") == b"+OK Logging out"


def test_list_stat_uidl(server, empty_demo):
    msgs = [message(unique("list"), b"x" * 10 + b"\r\n"), message(unique("list")),
            message(unique("list"), b"y" * 1000 + b"\r\n")]
    deliver_all(server, msgs)
    stored = list(stored_messages(server).values())
    sizes = [len(s) for s in stored]
    with RawPOP3(pop3s_port(server), tls=True) as c:
        assert c.user_pass() == b"+OK Logged in, 3 messages (%d octets)" % sum(sizes)
        assert c.cmd("STAT") == b"+OK 3 %d" % sum(sizes)
        status, lines = c.multi("LIST")
        assert status.startswith(b"+OK")
        assert lines == [b"%d %d" % (i + 1, s) for i, s in enumerate(sizes)]
        for n in (1, 2, 3):
            assert c.cmd("LIST %d" % n) == b"+OK %d %d" % (n, sizes[n - 1])
        status, lines = c.multi("UIDL")
        uidls = [l.split(b" ")[1] for l in lines]
        assert [l.split(b" ")[0] for l in lines] == [b"1", b"2", b"3"]
        assert all(UIDL_RE.match(u) for u in uidls) and len(set(uidls)) == 3
        for n in (1, 2, 3):
            assert c.cmd("UIDL %d" % n) == b"+OK %d %s" % (n, uidls[n - 1])

        assert c.cmd("DELE 2") == b"+OK Message 2 deleted"
        assert c.cmd("STAT") == b"+OK 2 %d" % (sizes[0] + sizes[2])
        assert c.multi("LIST")[1] == [b"1 %d" % sizes[0], b"3 %d" % sizes[2]]
        assert c.multi("UIDL")[1] == [b"1 " + uidls[0], b"3 " + uidls[2]]
        for cmd in ("LIST 2", "UIDL 2", "RETR 2", "DELE 2", "TOP 2 0"):
            assert c.cmd(cmd) == b"-ERR Message is deleted", cmd
        # other messages still answer
        assert c.cmd("LIST 3") == b"+OK 3 %d" % sizes[2]
        assert c.cmd("RSET").startswith(b"+OK")
        assert c.cmd("LIST 2") == b"+OK 2 %d" % sizes[1]
        assert c.cmd("QUIT") == b"+OK Logging out"


BAD_NUMBERS = [
    ("0", b"-ERR Invalid message number"),
    ("-1", b"-ERR Invalid message number"),
    ("+1", b"-ERR Invalid message number"),
    ("abc", b"-ERR Invalid message number"),
    ("1.0", b"-ERR Invalid message number"),
    ("4294967296", b"-ERR Invalid message number"),
    ("99999999999999999999", b"-ERR Invalid message number"),
    ("2", b"-ERR There is no such message"),
    ("4294967295", b"-ERR There is no such message"),
]


@pytest.mark.parametrize("group", [BAD_NUMBERS[0:3], BAD_NUMBERS[3:6], BAD_NUMBERS[6:9]])
def test_bad_message_numbers(server, group):
    """Each group of 3 numbers x 5 commands stays under limit_errors (20) per session."""
    if not server.mail_list(ALICE):
        deliver_all(server, [message(unique("num"), to=ALICE)], rcpt=ALICE)
    with RawPOP3(pop3s_port(server), tls=True) as c:
        assert c.user_pass(ALICE).startswith(b"+OK Logged in, 1 messages")
        for arg, reply in group:
            for cmd in ("LIST", "UIDL", "RETR", "DELE"):
                assert c.cmd("%s %s" % (cmd, arg)) == reply, (cmd, arg)
            assert c.cmd("TOP %s 1" % arg) == reply, ("TOP", arg)
        assert c.cmd("STAT").startswith(b"+OK 1 ")     # still alive, nothing marked
        assert c.cmd("QUIT") == b"+OK Logging out"
    assert len(server.mail_list(ALICE)) == 1


def test_argument_errors(server):
    with RawPOP3(pop3s_port(server), tls=True) as c:
        assert c.user_pass(ALICE).startswith(b"+OK")
        assert c.cmd("RETR") == b"-ERR Missing argument"
        assert c.cmd("DELE") == b"-ERR Missing argument"
        assert c.cmd("LIST 1 2") == b"-ERR Invalid arguments"
        assert c.cmd("STAT 1") == b"-ERR Invalid arguments"
        assert c.cmd("UIDL  1") == b"-ERR Invalid arguments"
        assert c.cmd("XTND XMIT") == b"-ERR Unknown command"
        assert c.cmd("LIST " + "1" * 256) == b"-ERR Argument too long"
        assert c.cmd("noop") == b"+OK"
        assert c.cmd("stat").startswith(b"+OK")
        assert c.cmd("QUIT") == b"+OK Logging out"


def test_commands_in_the_wrong_state(server):
    with RawPOP3(pop3s_port(server), tls=True) as c:
        for cmd in ("STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "RSET", "TOP 1 0", "UIDL"):
            assert c.cmd(cmd) == b"-ERR Not logged in", cmd
        assert c.user_pass(ALICE).startswith(b"+OK")
        for cmd in ("USER x", "PASS x", "APOP x y", "AUTH PLAIN", "STLS", "UTF8"):
            assert c.cmd(cmd) == b"-ERR Command not valid in this state", cmd
        assert c.cmd("NOOP") == b"+OK"
        assert c.cmd("QUIT") == b"+OK Logging out"
    with RawPOP3(pop3s_port(server), tls=True) as c:
        assert c.cmd("QUIT") == b"+OK Logging out"       # QUIT in AUTHORIZATION
        assert c.is_closed(5)


def test_pipelining(server, empty_demo):
    """RFC 2449 PIPELINING: commands sent in one write are answered in order, including
    after a streamed RETR."""
    deliver_all(server, [message(unique("pipe"), b"one\r\n.two\r\n"), message(unique("pipe"))])
    stored = list(stored_messages(server).values())
    with RawPOP3(pop3s_port(server), tls=True) as c:
        c.send("USER %s\r\nPASS %s\r\nSTAT\r\nRETR 1\r\nLIST 2\r\nRETR 2\r\nUIDL 1\r\n"
               "DELE 1\r\nNOOP\r\nRSET\r\nQUIT\r\n" % (DEMO, USERS[DEMO]))
        assert c.read_line() == b"+OK"
        assert c.read_line(30).startswith(b"+OK Logged in, 2 messages")
        assert c.read_line() == b"+OK 2 %d" % sum(map(len, stored))
        assert c.read_line() == b"+OK %d octets" % len(stored[0])
        assert retr_bytes(unstuff(c.read_multi())) == stored[0]
        assert c.read_line() == b"+OK 2 %d" % len(stored[1])
        assert c.read_line() == b"+OK %d octets" % len(stored[1])
        assert retr_bytes(unstuff(c.read_multi())) == stored[1]
        assert UIDL_RE.match(c.read_line().split(b" ")[2])
        assert c.read_line() == b"+OK Message 1 deleted"
        assert c.read_line() == b"+OK"
        assert c.read_line().startswith(b"+OK")
        assert c.read_line() == b"+OK Logging out"
        assert c.is_closed(5)
    assert len(server.mail_list(DEMO)) == 2


def test_in_use(server):
    a = login_ssl(server, ALICE, retry_in_use=5)
    assert a.noop() == b"+OK"
    # a second session, over STLS with USER/PASS
    with RawPOP3(pop3s_port(server), tls=True) as b:
        r = b.user_pass(ALICE)
        assert r.startswith(b"-ERR [IN-USE] "), r
        # and through AUTH PLAIN
        r = b.auth_plain(ALICE)
        assert r.startswith(b"-ERR [IN-USE] "), r
        # the first session is unharmed
        assert a.stat()[0] >= 0
        assert a.quit().startswith(b"+OK Logging out")
        # once the first session is gone, the same connection can log in
        r = b.cmd("PASS " + USERS[ALICE], timeout=30)
        assert r.startswith(b"+OK Logged in"), r
        assert b.cmd("QUIT") == b"+OK Logging out"
    # and a new one too
    p = login_stls(server, ALICE, retry_in_use=5)
    p.quit()


def test_other_accounts_not_locked(server):
    a = login_ssl(server, ALICE, retry_in_use=5)
    b = login_ssl(server, DEMO, retry_in_use=5)
    assert a.noop() == b"+OK" and b.noop() == b"+OK"
    a.quit()
    b.quit()


def test_message_expunged_meanwhile(server, empty_demo):
    """Another channel (here `posthorn mail del`, later IMAP) removes a message a POP3 session
    has listed: that message alone gets -ERR, the others and the session work on."""
    sent = [message(unique("gone")), message(unique("stays"))]
    listing = deliver_all(server, sent)
    p = login_stls(server)
    assert p.stat()[0] == 2
    out = server.cli("mail", "del", DEMO, "INBOX", str(listing[0]["uid"])).stdout
    assert out.startswith("removed 1 messages")
    with pytest.raises(poplib.error_proto) as e:
        p.retr(1)
    assert e.value.args[0] == b"-ERR Message 1 no longer exists"
    resp, lines, _ = p.retr(2)
    assert retr_bytes(lines).endswith(sent[1])
    assert p.dele(1).startswith(b"+OK") and p.dele(2).startswith(b"+OK")
    assert p.quit() == b"+OK Logging out, 1 messages deleted"
    assert server.mail_list(DEMO) == []
    assert account_usage(server, DEMO) == (0, 0)


def test_account_deleted_while_session_holds_it(server):
    """The closest thing the CLI offers to 'a message removed under a POP3 session':
    `user del` while the account is in TRANSACTION. The session must stay sane: RETR of a
    listed message answers the message or a clean -ERR, QUIT answers, the server lives."""
    server.add_user(CAROL, "carol-Secret-4")
    deliver_all(server, [message(unique("gone"), to=CAROL), message(unique("gone"), to=CAROL)],
                rcpt=CAROL)
    with RawPOP3(pop3s_port(server), tls=True) as c:
        assert c.user_pass(CAROL, "carol-Secret-4").startswith(b"+OK Logged in, 2 messages")
        p = server.cli("user", "del", CAROL, check=False)
        if p.returncode != 0:
            c.cmd("QUIT")
            pytest.skip("`user del` refused while the account has mail: %s" % p.stderr.strip())
        r = c.cmd("RETR 1")
        if r.startswith(b"+OK"):
            c.read_multi()
        else:
            assert r == b"-ERR Message 1 no longer exists", r
        assert c.cmd("DELE 2").startswith(b"+OK")
        r = c.cmd("QUIT")
        assert r.startswith(b"+OK Logging out") or r.startswith(b"-ERR [SYS/TEMP]"), r
        assert c.is_closed(5)
    # the server is fine
    p = login_ssl(server, DEMO, retry_in_use=5)
    assert p.noop() == b"+OK"
    p.quit()
    server.assert_clean_log()
