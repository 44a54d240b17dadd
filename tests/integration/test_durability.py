"""Durability: a message acknowledged with 250 survives kill -9 byte for byte; a graceful
SIGTERM answers sessions with 421, loses nothing that was acknowledged and stores nothing
that was not."""

import base64
import os
import signal
import time

import pytest

from conftest import USERS, RawSMTP, split_stored, unique

DEMO, ALICE = "demo@example.test", "alice@example.test"


def message(subj, size=300):
    head = ("From: <s@remote.test>\r\nTo: <%s>\r\nSubject: %s\r\n\r\n" % (DEMO, subj)).encode()
    line = b"The quick brown fox jumps over the lazy dog 0123456789.\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return head + body


@pytest.fixture(autouse=True)
def running(server):
    """Every test starts with a running server, whatever the previous test left."""
    if server.proc is None:
        server.start()
    yield


def check_body(stored, msg, sender="s@remote.test"):
    """Stored = trace + msg exactly. (The validity of the trace fields themselves is
    test_smtp_inbound's business.)"""
    trace, _ = split_stored(stored, msg)
    assert trace.startswith(b"Return-Path: <%s>\r\nReceived: " % sender.encode()), trace


def by_subject(srv, user):
    return {m["subject"]: m for m in srv.mail_list(user)}


def test_kill9_right_after_250(server):
    msgs = {}
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        # Several transactions; the last is a large one, and the kill comes the instant
        # its 250 arrives.
        for i, size in enumerate((300, 5000, 300, 700 * 1024)):
            subj = unique("durable%d" % i)
            msg = message(subj, size)
            msgs[subj] = msg
            rcpts = [DEMO] if i % 2 == 0 else [DEMO, ALICE]
            c.send("MAIL FROM:<s@remote.test>\r\n" + "".join(
                "RCPT TO:<%s>\r\n" % r for r in rcpts) + "DATA\r\n")
            for _ in range(len(rcpts) + 2):
                assert c.read_reply().code in (250, 354)
            c.send(msg + b".\r\n")
            r = c.read_reply(timeout=30)
            assert r.code == 250, r
        server.kill()
    # Readable with the server down (the store recovers by itself) ...
    before = by_subject(server, DEMO)
    for subj, msg in msgs.items():
        assert subj in before, "acknowledged message lost after kill -9: %s" % subj
        check_body(server.mail_cat(DEMO, before[subj]["uid"]), msg)
    # ... and after a restart, with the same bytes.
    server.start()
    after = by_subject(server, DEMO)
    for subj, msg in msgs.items():
        assert after[subj]["uid"] == before[subj]["uid"]
        assert after[subj]["size"] == before[subj]["size"]
        stored = server.mail_cat(DEMO, after[subj]["uid"])
        check_body(stored, msg)
        assert after[subj]["size"] == len(stored)
    alice = by_subject(server, ALICE)
    assert sum(1 for s in msgs if s in alice) == 2
    # New mail gets a UID above everything stored before the crash.
    subj = unique("after-crash")
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@remote.test>")
        c.cmd("RCPT TO:<%s>" % DEMO)
        assert c.cmd("DATA").code == 354
        c.send(message(subj) + b".\r\n")
        assert c.read_reply().code == 250
    uids = [m["uid"] for m in server.mail_list(DEMO)]
    new = by_subject(server, DEMO)[subj]["uid"]
    assert new == max(uids) and uids.count(new) == 1


def test_kill9_bdat_and_queue(server):
    subj = unique("bdat-durable")
    msg = message(subj, 2000)
    with RawSMTP(server.submissions_port, tls=True) as c:
        c.ehlo()
        auth = base64.b64encode(b"\0" + DEMO.encode() + b"\0" + USERS[DEMO].encode()).decode()
        assert c.cmd("AUTH PLAIN " + auth, timeout=30).code == 235
        assert c.cmd("MAIL FROM:<%s>" % DEMO).code == 250
        assert c.cmd("RCPT TO:<%s>" % ALICE).code == 250
        assert c.cmd("RCPT TO:<far@remote.example>").code == 250
        c.send(b"BDAT 1000\r\n" + msg[:1000])
        assert c.read_reply().code == 250
        c.send(b"BDAT %d LAST\r\n" % (len(msg) - 1000) + msg[1000:])
        assert c.read_reply().code == 250
        server.kill()
    server.start()
    m = by_subject(server, ALICE)[subj]
    check_body(server.mail_cat(ALICE, m["uid"]), msg, DEMO)
    q = [e for e in server.queue_list() if e["to"] == "far@remote.example"]
    assert len(q) == 1 and q[0]["from"] == DEMO


def test_kill9_mid_data_stores_nothing(server):
    subj = unique("partial")
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@remote.test>")
        c.cmd("RCPT TO:<%s>" % DEMO)
        assert c.cmd("DATA").code == 354
        c.send(message(subj, 4000))      # no end marker
        time.sleep(0.3)
        server.kill()
    server.start()
    assert subj not in by_subject(server, DEMO)


def test_sigterm_mid_data(server):
    done, partial = unique("done"), unique("cut")
    a = RawSMTP(server.smtp_port)
    a.ehlo()
    a.cmd("MAIL FROM:<s@remote.test>")
    a.cmd("RCPT TO:<%s>" % DEMO)
    assert a.cmd("DATA").code == 354
    a.send(message(done) + b".\r\n")
    assert a.read_reply().code == 250

    b = RawSMTP(server.smtp_port)
    b.ehlo()
    b.cmd("MAIL FROM:<s@remote.test>")
    b.cmd("RCPT TO:<%s>" % DEMO)
    assert b.cmd("DATA").code == 354
    b.send(message(partial, 3000))   # mid-DATA: no end marker yet

    idle = RawSMTP(server.submission_port)
    idle.ehlo()
    time.sleep(0.2)

    proc = server.proc
    proc.send_signal(signal.SIGTERM)
    for c in (b, idle, a):
        r = c.read_reply()
        assert r.code == 421 and r.lines[0].startswith("4."), r
        assert c.is_closed(5)
        c.close()
    try:
        rc = proc.wait(10)
    finally:
        server.stop()
    assert rc == 0, "exit status after SIGTERM: %r" % rc
    server.assert_clean_log()
    server.start()
    subs = by_subject(server, DEMO)
    assert done in subs
    assert partial not in subs


def test_sigint_is_graceful(server):
    proc = server.proc
    proc.send_signal(signal.SIGINT)
    try:
        rc = proc.wait(10)
    finally:
        server.stop()
    assert rc == 0, rc
    server.start()
    with RawSMTP(server.smtp_port) as c:
        assert c.greeting.code == 220


def test_refused_and_aborted_messages_leave_no_spool_files(server):
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        for payload in (b"Subject: bare\n\r\nx\r\n.\r\n",          # bare LF: 550
                        b"x" * 100 + b"\r\n.\r\n"):               # fine: 250
            c.cmd("MAIL FROM:<s@remote.test>")
            c.cmd("RCPT TO:<%s>" % DEMO)
            assert c.cmd("DATA").code == 354
            c.send(payload)
            assert c.read_reply().code in (250, 550)
        c.cmd("MAIL FROM:<s@remote.test>")
        c.cmd("RCPT TO:<%s>" % DEMO)
        c.send(b"BDAT 10\r\n0123456789")
        assert c.read_reply().code == 250
        assert c.cmd("RSET").code == 250                          # chunks dropped
        c.cmd("MAIL FROM:<s@remote.test>")
        c.cmd("RCPT TO:<%s>" % DEMO)
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: cut\r\n\r\nthe client goes away mid-DATA")
        time.sleep(0.2)
    # The client is gone; give the server a moment to notice.
    deadline = time.monotonic() + 5
    tmp = server.dir / "data" / "tmp"
    while os.listdir(tmp) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert os.listdir(tmp) == []
    assert server.proc.poll() is None
