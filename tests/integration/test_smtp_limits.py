"""Limits: command-line length, recipients per transaction, message size (DATA, BDAT
and MAIL SIZE=), mailbox quotas, the error limit; and CHUNKING (BDAT)."""

import pytest

from conftest import RawSMTP, check_stored, unique

SERVER_CONF = {
    "limit_message_size": "100K",
    "limit_recipients": 5,
    "limit_errors": 20,
    "limit_command_line": 2048,
    # RCPT and end-of-data quota reads run on the store's reader threads here (as on
    # PostgreSQL): the queued path of store_read().
    "store_read_threads": 2,
}
LIMIT = 100 * 1024
SMALL = "small@example.test"   # quota 10K: for "message bigger than the quota"
FILL = "fill@example.test"     # quota 10K: filled step by step
QUOTA = 10 * 1024


def server_setup(srv):
    srv.add_user(SMALL, "small-pass", quota="10K")
    srv.add_user(FILL, "fill-pass", quota="10K")


def body_of_size(subject, size):
    """A message of exactly size octets (CRLF lines, no line starting with '.')."""
    head = ("Subject: %s\r\nFrom: <s@remote.test>\r\n\r\n" % subject).encode()
    n = size - len(head)
    assert n >= 2
    lines = []
    while n > 0:
        take = min(n, 78)
        if take < 2:   # never leave a lone byte: grow the previous line instead
            lines[-1] = b"b" * (len(lines[-1]) - 2 + take) + b"\r\n"
            break
        lines.append(b"a" * (take - 2) + b"\r\n")
        n -= take
    msg = head + b"".join(lines)
    assert len(msg) == size, (len(msg), size)
    return msg


def open_tx(server, rcpts, mail_params=""):
    c = RawSMTP(server.smtp_port)
    c.ehlo()
    r = c.cmd("MAIL FROM:<s@remote.test>" + mail_params)
    assert r.code == 250, r
    for rc in rcpts:
        assert c.cmd("RCPT TO:<%s>" % rc).code == 250
    return c


def subjects(server, user):
    return [m["subject"] for m in server.mail_list(user)]


# --- command line length ---------------------------------------------------------


def test_line_at_limit_accepted(server):
    with RawSMTP(server.smtp_port) as c:
        line = "NOOP " + "x" * (2048 - 5 - 2)   # 2048 octets with CRLF
        r = c.cmd(line)
        assert r.code == 250, r


def test_line_over_limit_refused_session_continues(server):
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        r = c.cmd("NOOP " + "x" * (2048 - 5 - 1))  # 2049 octets with CRLF
        assert r.code == 500 and r.lines[0].startswith("5.5.2"), r
        r = c.cmd("NOOP " + "y" * 5000)
        assert r.code == 500 and r.lines[0].startswith("5.5.2"), r
        assert c.cmd("NOOP").code == 250
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250


@pytest.mark.parametrize("pad", [2040, 2043, 2044, 2045, 2046, 2047, 2048, 2049, 2050, 4096,
                                 6000])
def test_rest_of_long_line_not_executed(server, pad):
    """Whatever follows the first limit octets of an over-long line is discarded up to
    the line's CRLF, never run as a command of its own."""
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        c.send("NOOP " + "x" * (pad - 5) + "MAIL FROM:<tail@remote.test>\r\n"
               "MAIL FROM:<s@remote.test>\r\n")
        r = c.read_reply()
        assert r.code == 500 and r.lines[0].startswith("5.5.2"), r
        r = c.read_reply()
        assert r.code == 250, "the tail of the long line was executed as MAIL: %r" % r
        assert c.no_reply(0.3)
        r = c.cmd("RCPT TO:<demo@example.test>")
        assert r.code == 250, r


def test_long_line_tail_quit_not_executed(server):
    with RawSMTP(server.smtp_port) as c:
        c.send("NOOP " + "x" * 2043 + "QUIT\r\n")
        assert c.read_reply().code == 500
        assert c.cmd("NOOP").code == 250


# --- recipients ----------------------------------------------------------------


def test_too_many_recipients(server):
    subj = unique("rcpts")
    rcpts = ["demo@example.test", "alice@example.test", "bob@other.test",
             "demo+a@example.test", "alice+b@example.test"]
    with open_tx(server, rcpts) as c:
        r = c.cmd("RCPT TO:<demo+c@example.test>")
        assert r.code == 452 and r.lines[0].startswith("4.5.3"), r
        assert c.cmd("DATA").code == 354
        c.send(body_of_size(subj, 500) + b".\r\n")
        assert c.read_reply().code == 250
        # The limit is per transaction.
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250
        for rc in rcpts:
            assert c.cmd("RCPT TO:<%s>" % rc).code == 250
        assert c.cmd("RCPT TO:<x@example.test>").code == 452
    for user in ("demo@example.test", "alice@example.test", "bob@other.test"):
        assert subj in subjects(server, user)


# --- message size -----------------------------------------------------------------


def test_size_advertised(server):
    with RawSMTP(server.smtp_port) as c:
        r = c.ehlo()
        assert "SIZE %d" % LIMIT in r.lines, r


def test_mail_size_parameter(server):
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<s@remote.test> SIZE=%d" % (LIMIT + 1))
        assert r.code == 552 and r.lines[0].startswith("5.3.4"), r
        r = c.cmd("MAIL FROM:<s@remote.test> SIZE=999999999999999999999999")
        assert r.code in (501, 552), r
        r = c.cmd("MAIL FROM:<s@remote.test> SIZE=%d" % LIMIT)
        assert r.code == 250, r


def test_message_at_limit_accepted(server):
    """RFC 1870: SIZE counts the octets the client sends; a message of exactly the
    advertised SIZE (accepted at MAIL SIZE=) must be accepted, whatever trace fields the
    server adds."""
    subj = unique("atlimit")
    msg = body_of_size(subj, LIMIT)
    with open_tx(server, ["alice@example.test"], " SIZE=%d" % LIMIT) as c:
        assert c.cmd("DATA").code == 354
        c.send(msg + b".\r\n")
        r = c.read_reply(timeout=30)
        assert r.code == 250, r
    found = [m for m in server.mail_list("alice@example.test") if m["subject"] == subj]
    assert len(found) == 1
    check_stored(server.mail_cat("alice@example.test", found[0]["uid"]), msg, "s@remote.test")


def test_message_over_limit_refused_session_usable(server):
    big, ok = unique("toobig"), unique("afterbig")
    with open_tx(server, ["alice@example.test"]) as c:
        assert c.cmd("DATA").code == 354
        # One octet over, then much more: every octet must be read before the reply.
        c.send(body_of_size(big, LIMIT + 1) + b".\r\n")
        r = c.read_reply(timeout=30)
        assert r.code == 552 and r.lines[0].startswith("5.3.4"), r
        assert c.cmd("RCPT TO:<alice@example.test>").code == 503  # transaction reset
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(body_of_size(big, 3 * LIMIT) + b".\r\n")
        r = c.read_reply(timeout=30)
        assert r.code == 552, r
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(body_of_size(ok, 1000) + b".\r\n")
        assert c.read_reply().code == 250
    subs = subjects(server, "alice@example.test")
    assert ok in subs and big not in subs


# --- quota --------------------------------------------------------------------------


def test_message_bigger_than_quota_with_size(server):
    with open_tx(server, [], " SIZE=%d" % (QUOTA + 2000)) as c:
        r = c.cmd("RCPT TO:<%s>" % SMALL)
        assert r.code == 552 and r.lines[0].startswith("5.2.2"), r


def test_message_bigger_than_quota_at_end_of_data(server):
    subj = unique("overquota")
    with open_tx(server, [SMALL]) as c:
        assert c.cmd("DATA").code == 354
        c.send(body_of_size(subj, QUOTA + 2000) + b".\r\n")
        r = c.read_reply()
        assert r.code == 552 and r.lines[0].startswith("5.2.2"), r
        assert c.cmd("NOOP").code == 250
    assert subj not in subjects(server, SMALL)


def test_quota_fills_up(server):
    first, second, third, fourth = (unique(x) for x in ("q1", "q2", "q3", "q4"))
    with open_tx(server, [FILL]) as c:
        assert c.cmd("DATA").code == 354
        c.send(body_of_size(first, 6000) + b".\r\n")
        assert c.read_reply().code == 250
        # About 6 KB used of 10 KB: another 6000 octets do not fit.
        assert c.cmd("MAIL FROM:<s@remote.test> SIZE=6000").code == 250
        r = c.cmd("RCPT TO:<%s>" % FILL)
        assert r.code == 452 and r.lines[0].startswith("4.2.2"), r
        assert c.cmd("RSET").code == 250
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250
        assert c.cmd("RCPT TO:<%s>" % FILL).code == 250
        assert c.cmd("DATA").code == 354
        c.send(body_of_size(second, 6000) + b".\r\n")
        r = c.read_reply()
        assert r.code == 452 and r.lines[0].startswith("4.2.2"), r
        # 3000 still fit.
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250
        assert c.cmd("RCPT TO:<%s>" % FILL).code == 250
        assert c.cmd("DATA").code == 354
        c.send(body_of_size(third, 3000) + b".\r\n")
        assert c.read_reply().code == 250
    assert subjects(server, FILL) == [first, third]
    # Lower the quota below the usage while the server runs: now full at RCPT.
    server.cli("user", "quota", FILL, "1K")
    with open_tx(server, []) as c:
        r = c.cmd("RCPT TO:<%s>" % FILL)
        assert r.code == 452 and r.lines[0].startswith("4.2.2"), r
        # Other recipients of the same transaction are not affected.
        assert c.cmd("RCPT TO:<demo@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(body_of_size(fourth, 500) + b".\r\n")
        assert c.read_reply().code == 250
    assert fourth in subjects(server, "demo@example.test")
    assert fourth not in subjects(server, FILL)
    # 0 = unlimited.
    server.cli("user", "quota", FILL, "0")
    with open_tx(server, []) as c:
        assert c.cmd("RCPT TO:<%s>" % FILL).code == 250


def test_user_list_shows_quota(server):
    out = server.cli("user", "list").stdout
    line = [l for l in out.splitlines() if l.startswith(SMALL + " ")]
    assert len(line) == 1 and "quota=" in line[0], out


# --- error limit -----------------------------------------------------------------


def test_error_limit_closes(server):
    with RawSMTP(server.smtp_port) as c:
        for i in range(19):
            r = c.cmd("BOGUS%d" % i)
            assert r.code == 500, (i, r)
        c.send("BOGUS19\r\n")
        replies = [c.read_reply()]
        if replies[0].code != 421:
            replies.append(c.read_reply())
        assert replies[-1].code == 421 and replies[-1].lines[0].startswith("4.7.0"), replies
        assert c.is_closed(5)


def test_error_limit_after_starttls(server):
    """The 20th error reply and the 421 must reach the client over TLS too."""
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        for i in range(19):
            r = c.cmd("BOGUS%d" % i)
            assert r.code == 500, (i, r)
        c.send("BOGUS19\r\n")
        replies = [c.read_reply()]
        if replies[0].code != 421:
            replies.append(c.read_reply())
        assert replies[-1].code == 421 and replies[-1].lines[0].startswith("4.7.0"), replies


def test_errors_below_limit_keep_session(server):
    with RawSMTP(server.smtp_port) as c:
        for i in range(18):
            assert c.cmd("BOGUS").code == 500
        assert c.cmd("NOOP").code == 250
        assert c.cmd("HELO client.test").code == 250


# --- BDAT ----------------------------------------------------------------------


def test_bdat_binaryish_single_chunk(server):
    subj = unique("bdat1")
    # Lines starting with dots, an embedded CRLF.CRLF and 8-bit octets: BDAT carries
    # them as they are (no dot-stuffing, no end marker).
    msg = (b"Subject: " + subj.encode() + b"\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: binary\r\n\r\n"
           b".\r\n..two\r\nQUIT\r\n\r\n.\r\n" + bytes(range(0x20, 0x100)) + b"\r\n")
    with open_tx(server, ["demo@example.test"]) as c:
        c.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
        r = c.read_reply()
        assert r.code == 250, r
        assert c.cmd("NOOP").code == 250
    found = [m for m in server.mail_list("demo@example.test") if m["subject"] == subj]
    assert len(found) == 1
    check_stored(server.mail_cat("demo@example.test", found[0]["uid"]), msg, "s@remote.test")


def test_bdat_pipelined_chunks(server):
    subj = unique("bdat2")
    msg = body_of_size(subj, 3000)
    parts = [msg[:1000], msg[1000:1001], msg[1001:2999], msg[2999:]]
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        wire = b"MAIL FROM:<s@remote.test>\r\nRCPT TO:<bob@other.test>\r\n"
        for p in parts:
            wire += b"BDAT %d\r\n" % len(p) + p
        wire += b"BDAT 0 LAST\r\nNOOP\r\n"
        c.send(wire)
        codes = [c.read_reply().code for _ in range(2 + len(parts) + 2)]
        assert codes == [250] * 8, codes
    found = [m for m in server.mail_list("bob@other.test") if m["subject"] == subj]
    assert len(found) == 1
    check_stored(server.mail_cat("bob@other.test", found[0]["uid"]), msg, "s@remote.test")


def test_bdat_before_rcpt(server):
    chunk = b"QUIT\r\nRSET\r\n"
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        # Before MAIL: the chunk is read and an error given; its content is not commands.
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        r = c.read_reply()
        assert r.code in (503, 554) and r.lines[0].startswith("5.5."), r
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250
        c.send(b"BDAT %d\r\n" % len(chunk) + chunk)
        r = c.read_reply()
        assert r.code in (503, 554) and r.lines[0].startswith("5.5."), r
        assert c.no_reply(0.3)
        r = c.cmd("NOOP")
        assert r.code == 250, r


def test_bdat_then_data_refused(server):
    with open_tx(server, ["demo@example.test"]) as c:
        c.send(b"BDAT 4\r\nabcd")
        assert c.read_reply().code == 250
        r = c.cmd("DATA")
        assert r.code == 503, r
        r = c.cmd("RCPT TO:<alice@example.test>")
        assert r.code == 503, r
        assert c.cmd("RSET").code == 250


def test_bdat_syntax(server):
    with open_tx(server, ["demo@example.test"]) as c:
        for bad in ("BDAT", "BDAT x", "BDAT -1", "BDAT 10 FIRST", "BDAT 99999999999999999999999"):
            r = c.cmd(bad)
            assert r.code == 501 or r.code == 552, (bad, r)
        assert c.cmd("NOOP").code == 250


def test_bdat_over_size_limit(server):
    ok = unique("bdat-after")
    big = b"x" * (LIMIT // 2 + 1000) + b"\r\n"   # two of these are too many
    with open_tx(server, ["demo@example.test"]) as c:
        c.send(b"BDAT %d\r\n" % len(big) + big)
        assert c.read_reply(timeout=30).code == 250
        c.send(b"BDAT %d LAST\r\n" % len(big) + big)
        r = c.read_reply(timeout=30)
        assert r.code == 552 and r.lines[0].startswith("5.3.4"), r
        msg = body_of_size(ok, 400)
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250
        assert c.cmd("RCPT TO:<demo@example.test>").code == 250
        c.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
        assert c.read_reply().code == 250
    assert ok in subjects(server, "demo@example.test")


def test_bdat_refused_chunk_in_pieces(server):
    # Found by fuzz_smtp_session: the octets of a refused chunk (no MAIL yet) that came in
    # more than one read were timed from no body at all (the epoch) and the session was
    # dropped as "421 4.4.2 Data rate too low" instead of answering the BDAT.
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        c.send(b"BDAT 10 LAST\r\nabcde")
        assert c.no_reply(0.2)  # the first half is read on its own
        c.send(b"fghij")
        r = c.read_reply()
        assert r.code == 503 and r.lines[0].startswith("5.5.1"), r
        assert c.cmd("NOOP").code == 250
