"""Inbound SMTP (port 25): delivery to local accounts with smtplib, swaks and raw
sockets; aliases, catch-all and plus-addressing; relay denial; command sequencing;
the small commands (VRFY, HELP, RSET, NOOP, QUIT)."""

import re
import smtplib
import subprocess
import threading
import time

import pytest

from conftest import (RawSMTP, check_stored, has_enhanced_code, send_message, split_stored,
                      reload_with, trace_problems, unique)


def server_setup(srv):
    srv.cli("alias", "add", "info@example.test", "demo@example.test")
    srv.cli("alias", "add", "team@example.test", "demo@example.test")
    srv.cli("alias", "add", "team@example.test", "alice@example.test")
    srv.cli("alias", "add", "@other.test", "bob@other.test")


def message(subject, body="Hello.\r\n", sender="sender@remote.test", to="demo@example.test"):
    return ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@remote.test>\r\n\r\n%s"
            % (sender, to, subject, subject, body)).encode()


def find(srv, user, subject, count=1):
    """Messages of user with exactly this subject (waits a little for count of them)."""
    deadline = time.monotonic() + 10
    while True:
        found = [m for m in srv.mail_list(user) if m["subject"] == subject]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def stored_message(srv, user, subject):
    found = find(srv, user, subject)
    assert len(found) == 1, (user, subject, srv.mail_list(user))
    return srv.mail_cat(user, found[0]["uid"])


# ---------------------------------------------------------------------------


def test_greeting(server):
    with RawSMTP(server.smtp_port) as c:
        assert c.greeting.raw == b"220 mx.example.test ESMTP Posthorn\r\n"


def test_ehlo_capabilities(server):
    with RawSMTP(server.smtp_port) as c:
        r = c.ehlo("client.test")
        assert r.lines[0].split()[0] == "mx.example.test"
        caps = {l.split()[0].upper(): l for l in r.lines[1:]}
        for cap in ("PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES",
                    "CHUNKING", "STARTTLS", "HELP"):
            assert cap in caps, r
        assert re.fullmatch(r"SIZE \d+", caps["SIZE"]), caps["SIZE"]
        assert "AUTH" not in caps, "AUTH must not be offered on port 25: %r" % r


def test_helo_works(server):
    with RawSMTP(server.smtp_port) as c:
        r = c.cmd("HELO client.test")
        assert r.code == 250
        assert c.cmd("MAIL FROM:<a@remote.test>").code == 250


def test_smtplib_delivery_one_recipient(server):
    subj = unique("one")
    msg = message(subj, body="Line one.\r\nLine two.\r\n")
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10, local_hostname="client.test") as s:
        refused = s.sendmail("sender@remote.test", ["demo@example.test"], msg)
    assert refused == {}
    found = find(server, "demo@example.test", subj)
    assert len(found) == 1
    m = found[0]
    assert m["sender"] == "sender@remote.test"
    assert m["flags"] == "-"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", m["date"]), m["date"]
    stored = server.mail_cat("demo@example.test", m["uid"])
    assert m["size"] == len(stored)
    trace = check_stored(stored, msg, "sender@remote.test")
    assert b"by mx.example.test" in trace
    assert b"for <demo@example.test>" in trace


def test_smtplib_delivery_many_recipients(server):
    subj = unique("many")
    msg = message(subj)
    rcpts = ["demo@example.test", "alice@example.test", "bob@other.test"]
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10, local_hostname="client.test") as s:
        assert s.sendmail("sender@remote.test", rcpts, msg) == {}
    for user in rcpts:
        stored = stored_message(server, user, subj)
        trace, _ = split_stored(stored, msg)
        assert trace.startswith(b"Return-Path: <sender@remote.test>\r\nReceived: ")


def test_received_header_wellformed_with_two_recipients(server):
    """The Received field must stay a valid folded header field when the message has
    several recipients (RFC 5322 3.6.7, RFC 5321 4.4)."""
    subj = unique("rcvd2")
    msg = message(subj)
    replies = send_message(server.smtp_port, "s@remote.test",
                           ["demo@example.test", "alice@example.test"], msg + b".\r\n")
    assert replies[-1].code == 250, replies
    stored = stored_message(server, "alice@example.test", subj)
    trace, _ = split_stored(stored, msg)
    assert trace_problems(trace, "s@remote.test") == []


def test_uids_ascend(server):
    subjects = [unique("uid") for _ in range(3)]
    for subj in subjects:
        send_message(server.smtp_port, "a@remote.test", ["alice@example.test"],
                     message(subj) + b".\r\n")
    uids = [find(server, "alice@example.test", s)[0]["uid"] for s in subjects]
    assert uids == sorted(uids) and len(set(uids)) == 3, uids


def test_swaks_delivery(server, tmp_path):
    subj = unique("swaks")
    text = ("From: Sender <sender@remote.test>\nTo: demo@example.test\nSubject: %s\n"
            "X-Test: swaks\n\nBody line 1\nBody line 2" % subj)
    # swaks ends the data with CRLF . CRLF after the text
    f = tmp_path / "msg.txt"
    f.write_text(text)
    p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % server.smtp_port,
                        "--from", "sender@remote.test", "--to", "demo@example.test",
                        "--helo", "client.test", "--data", "@%s" % f],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    stored = stored_message(server, "demo@example.test", subj)
    trace = check_stored(stored, (text + "\n").replace("\n", "\r\n").encode(),
                         "sender@remote.test")
    assert b"Received: from client.test" in trace


def test_swaks_default_message(server):
    p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % server.smtp_port,
                        "--to", "demo@example.test", "--from", "swaks@remote.test",
                        "--header", "Subject: swaks-default"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "250 2.0.0" in p.stdout
    stored = stored_message(server, "demo@example.test", "swaks-default")
    assert b"\r\nSubject: swaks-default\r\n" in stored
    assert b"This is a test mailing\r\n" in stored


def test_dot_unstuffing_and_exact_bytes(server):
    subj = unique("dots")
    # What the author wrote, and the same dot-stuffed on the wire.
    original = message(subj, body=".leading dot\r\n..two dots\r\n.\r\nx\r\n \r\n\tz\r\n")
    wire = original.replace(b"\r\n.", b"\r\n..") + b".\r\n"
    replies = send_message(server.smtp_port, "s@remote.test", ["demo@example.test"], wire)
    assert replies[-1].code == 250, replies
    stored = stored_message(server, "demo@example.test", subj)
    check_stored(stored, original, "s@remote.test")


def test_8bit_body(server):
    subj = unique("8bit")
    msg = message(subj, body="Gr\u00fc\u00dfe aus \u65e5\u672c \u00ff\r\n").replace(
        b"\r\n\r\n", b"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@remote.test> BODY=8BITMIME").code == 250
        assert c.cmd("RCPT TO:<demo@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(msg + b".\r\n")
        assert c.read_reply().code == 250
    stored = stored_message(server, "demo@example.test", subj)
    check_stored(stored, msg, "s@remote.test")


def test_null_sender(server):
    subj = unique("bounce")
    replies = send_message(server.smtp_port, "", ["demo@example.test"], message(subj) + b".\r\n")
    assert [r.code for r in replies] == [250, 250, 354, 250], replies
    m = find(server, "demo@example.test", subj)[0]
    assert m["sender"] == ""
    assert server.mail_cat("demo@example.test", m["uid"]).startswith(b"Return-Path: <>\r\n")


def test_pipelined_transaction(server):
    subj = unique("pipe")
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        c.send("MAIL FROM:<p@remote.test>\r\nRCPT TO:<demo@example.test>\r\n"
               "RCPT TO:<nobody@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        codes = [c.read_reply().code for _ in range(5)]
        assert codes == [250, 250, 550, 250, 354]
        c.send(message(subj) + b".\r\nNOOP\r\nQUIT\r\n")
        assert c.read_reply().code == 250
        assert c.read_reply().code == 250
        assert c.read_reply().code == 221
    assert len(find(server, "demo@example.test", subj)) == 1
    assert len(find(server, "alice@example.test", subj)) == 1


def test_case_insensitive_commands_and_domain(server):
    subj = unique("case")
    with RawSMTP(server.smtp_port) as c:
        assert c.cmd("ehlo client.test").code == 250
        assert c.cmd("mail from:<s@remote.test>").code == 250
        assert c.cmd("rcpt to:<demo@EXAMPLE.Test>").code == 250
        assert c.cmd("data").code == 354
        c.send(message(subj) + b".\r\n")
        assert c.read_reply().code == 250
    assert len(find(server, "demo@example.test", subj)) == 1


# --- aliases -----------------------------------------------------------------


def test_alias_list(server):
    out = server.cli("alias", "list").stdout
    assert "info@example.test" in out and "demo@example.test" in out
    assert "@other.test" in out


def test_alias_delivers_to_target(server):
    subj = unique("alias")
    replies = send_message(server.smtp_port, "s@remote.test", ["info@example.test"],
                           message(subj, to="info@example.test") + b".\r\n")
    assert replies[-1].code == 250, replies
    assert len(find(server, "demo@example.test", subj)) == 1
    assert find(server, "alice@example.test", subj, count=0) == []


def test_multi_target_alias(server):
    subj = unique("team")
    replies = send_message(server.smtp_port, "s@remote.test", ["team@example.test"],
                           message(subj, to="team@example.test") + b".\r\n")
    assert replies[-1].code == 250, replies
    assert len(find(server, "demo@example.test", subj)) == 1
    assert len(find(server, "alice@example.test", subj)) == 1


def test_catch_all(server):
    subj = unique("catchall")
    replies = send_message(server.smtp_port, "s@remote.test", ["whoever.random@other.test"],
                           message(subj, to="whoever.random@other.test") + b".\r\n")
    assert replies[1].code == 250, replies
    assert replies[-1].code == 250, replies
    assert len(find(server, "bob@other.test", subj)) == 1


def test_catch_all_does_not_cover_other_domain(server):
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250
        r = c.cmd("RCPT TO:<whoever.random@example.test>")
        assert r.code == 550 and r.lines[0].startswith("5.1.1"), r


def test_plus_addressing(server):
    subj = unique("plus")
    replies = send_message(server.smtp_port, "s@remote.test", ["demo+newsletters@example.test"],
                           message(subj, to="demo+newsletters@example.test") + b".\r\n")
    assert replies[1].code == 250, replies
    assert replies[-1].code == 250, replies
    assert len(find(server, "demo@example.test", subj)) == 1


def test_plus_addressing_unknown_user(server):
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250
        r = c.cmd("RCPT TO:<nobody+tag@example.test>")
        assert r.code == 550 and r.lines[0].startswith("5.1.1"), r


def test_alias_added_while_running(server):
    subj = unique("live-alias")
    server.cli("alias", "add", "live@example.test", "alice@example.test")
    replies = send_message(server.smtp_port, "s@remote.test", ["live@example.test"],
                           message(subj) + b".\r\n")
    assert replies[-1].code == 250, replies
    assert len(find(server, "alice@example.test", subj)) == 1
    server.cli("alias", "del", "live@example.test")
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@remote.test>")
        assert c.cmd("RCPT TO:<live@example.test>").code == 550


# --- refusals ---------------------------------------------------------------


def test_relay_denied(server):
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250
        r = c.cmd("RCPT TO:<victim@elsewhere.example>")
        assert r.code == 554, r
        assert r.lines[0].startswith("5.7.1 ") and "Relay access denied" in r.text, r
    assert all(q["to"] != "victim@elsewhere.example" for q in server.queue_list())


def test_relay_denied_smtplib(server):
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10, local_hostname="client.test") as s:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            s.sendmail("s@remote.test", ["victim@elsewhere.example"], b"Subject: x\r\n\r\nx\r\n")
    code, text = e.value.recipients["victim@elsewhere.example"]
    assert code == 554 and text.startswith(b"5.7.1")


def test_unknown_local_user(server):
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250
        r = c.cmd("RCPT TO:<nobody@example.test>")
        assert r.code == 550 and r.lines[0].startswith("5.1.1 "), r
        # The transaction goes on: a valid recipient is still accepted.
        assert c.cmd("RCPT TO:<demo@example.test>").code == 250


def test_mail_before_ehlo(server):
    with RawSMTP(server.smtp_port) as c:
        r = c.cmd("MAIL FROM:<s@remote.test>")
        assert r.code == 503 and r.lines[0].startswith("5.5.1"), r
        r = c.cmd("RCPT TO:<demo@example.test>")
        assert r.code == 503 and r.lines[0].startswith("5.5.1"), r


def test_rcpt_before_mail(server):
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        r = c.cmd("RCPT TO:<demo@example.test>")
        assert r.code == 503 and r.lines[0].startswith("5.5.1"), r


def test_data_without_recipients(server):
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        r = c.cmd("DATA")
        assert r.code in (503, 554) and r.lines[0][0] == "5", r
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250
        r = c.cmd("DATA")
        assert r.code == 554 and r.lines[0].startswith("5.5.1"), r
        assert c.cmd("RCPT TO:<nobody@example.test>").code == 550
        r = c.cmd("DATA")
        assert r.code == 554 and r.lines[0].startswith("5.5.1"), r
        # No 354 was sent, so this line is a command, not message text.
        assert c.cmd("NOOP").code == 250


def test_nested_mail(server):
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250
        r = c.cmd("MAIL FROM:<t@remote.test>")
        assert r.code == 503 and r.lines[0].startswith("5.5.1"), r


def test_bad_syntax(server):
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:s@remote.test garbage")
        assert r.code == 501 and r.lines[0].startswith("5."), r
        r = c.cmd("FROB nicate")
        assert r.code == 500 and r.lines[0].startswith("5.5.2"), r
        r = c.cmd("EHLO")
        assert r.code == 501, r


def test_vrfy(server):
    """VRFY answers 252 for every address (never confirms one); `smtp_vrfy = no`: 502."""
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        for who in ("demo@example.test", "nobody@example.test"):
            r = c.cmd("VRFY " + who)
            assert r.code == 252 and r.lines[0].startswith("2."), r
    reload_with(server, {"smtp_vrfy": "no"})
    try:
        with RawSMTP(server.smtp_port) as c:
            c.ehlo()
            r = c.cmd("VRFY demo@example.test")
            assert r.code == 502 and r.lines[0].startswith("5.5.1"), r
    finally:
        reload_with(server, {"smtp_vrfy": "yes"})


def test_help(server):
    with RawSMTP(server.smtp_port) as c:
        r = c.cmd("HELP")
        assert r.code == 214 and r.lines[0].startswith("2.0.0"), r


def test_rset_clears_transaction(server):
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250
        assert c.cmd("RCPT TO:<demo@example.test>").code == 250
        r = c.cmd("RSET")
        assert r.code == 250 and r.lines[0].startswith("2.0.0"), r
        r = c.cmd("RCPT TO:<demo@example.test>")
        assert r.code == 503, r
        r = c.cmd("DATA")
        assert r.code in (503, 554), r
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250


def test_noop_and_quit(server):
    with RawSMTP(server.smtp_port) as c:
        r = c.cmd("NOOP")
        assert r.code == 250 and r.lines[0].startswith("2.0.0"), r
        r = c.cmd("QUIT")
        assert r.code == 221 and r.lines[0].startswith("2.0.0"), r
        assert c.is_closed(5)


def test_every_reply_has_enhanced_status_code(server):
    """RFC 2034: with ENHANCEDSTATUSCODES, every reply but the greeting and EHLO carries
    a status code of the reply's class."""
    with RawSMTP(server.smtp_port) as c:
        seq = ["MAIL FROM:<s@remote.test>", "HELO client.test", "NOOP", "RSET", "HELP",
               "VRFY demo@example.test", "EXPN team@example.test", "FROB", "RCPT TO:<x@y>",
               "MAIL FROM:<s@remote.test>", "MAIL FROM:<s@remote.test>",
               "RCPT TO:<nobody@example.test>", "RCPT TO:<v@elsewhere.example>",
               "RCPT TO:<bad address>", "DATA", "RCPT TO:<demo@example.test>", "AUTH PLAIN",
               "MAIL", "BDAT x", "DATA now", "NOOP", "RSET x", "QUIT"]
        bad = []
        for line in seq:
            r = c.cmd(line)
            if line.startswith("HELO"):
                continue  # RFC 2034 exempts the greeting and replies to HELO and EHLO
            if not has_enhanced_code(r):
                bad.append((line, r))
        assert not bad, bad


def test_transaction_after_message(server):
    """Two transactions on one connection; the second is not affected by the first."""
    s1, s2 = unique("first"), unique("second")
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        for subj, rcpt in ((s1, "demo@example.test"), (s2, "alice@example.test")):
            assert c.cmd("MAIL FROM:<s@remote.test>").code == 250
            assert c.cmd("RCPT TO:<%s>" % rcpt).code == 250
            assert c.cmd("DATA").code == 354
            c.send(message(subj) + b".\r\n")
            assert c.read_reply().code == 250
    assert len(find(server, "demo@example.test", s1)) == 1
    assert find(server, "alice@example.test", s1, count=0) == []
    assert len(find(server, "alice@example.test", s2)) == 1
    assert find(server, "demo@example.test", s2, count=0) == []


def test_ehlo_resets_transaction(server):
    """RFC 5321 4.1.4: EHLO in the middle of a transaction clears it like RSET."""
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250
        assert c.cmd("RCPT TO:<demo@example.test>").code == 250
        c.ehlo("again.test")
        r = c.cmd("RCPT TO:<demo@example.test>")
        assert r.code == 503, r
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250


def test_source_route_ignored(server):
    """RFC 5321 4.1.1.3: a source route in RCPT is accepted and ignored."""
    subj = unique("route")
    replies = send_message(server.smtp_port, "s@remote.test",
                           ["@relay1.test,@relay2.test:alice@example.test"], message(subj) + b".\r\n")
    assert [r.code for r in replies] == [250, 250, 354, 250], replies
    assert len(find(server, "alice@example.test", subj)) == 1


def test_non_ascii_address_needs_smtputf8(server):
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<j\u00f6rg@remote.test>")
        assert r.code == 553 and r.lines[0].startswith("5.6.7"), r
        r = c.cmd("MAIL FROM:<j\u00f6rg@remote.test> SMTPUTF8")
        assert r.code == 250, r
        assert c.cmd("RCPT TO:<demo@example.test>").code == 250


def test_smtputf8_delivery(server):
    subj = unique("utf8")
    sender = "j\u00f6rg@remote.test"
    msg = ("From: <%s>\r\nSubject: %s\r\n\r\nHall\u00f6\r\n" % (sender, subj)).encode()
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<%s> SMTPUTF8 BODY=8BITMIME" % sender).code == 250
        assert c.cmd("RCPT TO:<demo@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(msg + b".\r\n")
        assert c.read_reply().code == 250
    m = find(server, "demo@example.test", subj)
    assert len(m) == 1 and m[0]["sender"] == sender
    check_stored(server.mail_cat("demo@example.test", m[0]["uid"]), msg, sender)


def test_concurrent_deliveries(server):
    """Many clients at once: every acknowledged message is stored once, UIDs distinct."""
    tag = unique("conc")
    errors = []

    def client(n):
        try:
            with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30, local_hostname="client.test") as s:
                for i in range(6):
                    subj = "%s-%d-%d" % (tag, n, i)
                    s.sendmail("s@remote.test", ["demo@example.test", "bob@other.test"],
                               message(subj))
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for user in ("demo@example.test", "bob@other.test"):
        msgs = [m for m in server.mail_list(user) if m["subject"].startswith(tag + "-")]
        assert sorted(m["subject"] for m in msgs) == sorted(
            "%s-%d-%d" % (tag, n, i) for n in range(8) for i in range(6))
        all_uids = [m["uid"] for m in server.mail_list(user)]
        assert len(all_uids) == len(set(all_uids))
