"""Submission (587 with STARTTLS, 465 with implicit TLS): TLS and AUTH preconditions,
AUTH PLAIN and LOGIN with smtplib and swaks, sender ownership, local delivery and the
outbound queue for remote recipients. (Wrong passwords: test_smtp_auth.py.)"""

import base64
import smtplib
import subprocess

import pytest

from conftest import (USERS, RawSMTP, check_stored, has_enhanced_code, split_stored,
                      tls_client_context, unique)

DEMO = "demo@example.test"
ALICE = "alice@example.test"

# MAIL's sender check and RCPT's lookups run on the store's reader threads here (as on
# PostgreSQL): the queued path of store_read().
SERVER_CONF = {"store_read_threads": "2"}


def server_setup(srv):
    srv.cli("alias", "add", "sales@example.test", DEMO)


def plain(user, password):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()


def b64(s):
    return base64.b64encode(s.encode()).decode()


def message(subject, sender=DEMO, to="friend@remote.example"):
    return ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nSubmitted body.\r\n"
            % (sender, to, subject)).encode()


def tls587(server):
    """RawSMTP on 587 after EHLO + STARTTLS + EHLO."""
    c = RawSMTP(server.submission_port)
    c.ehlo()
    c.starttls()
    c.ehlo()
    return c


def authed(server, port_kind="587", user=DEMO):
    if port_kind == "587":
        c = tls587(server)
    else:
        c = RawSMTP(server.submissions_port, tls=True)
        c.ehlo()
    r = c.cmd("AUTH PLAIN " + plain(user, USERS[user]))
    assert r.code == 235, r
    return c


def caps(reply):
    return {l.split()[0].upper(): l for l in reply.lines[1:]}


def smtp587(server):
    s = smtplib.SMTP("127.0.0.1", server.submission_port, timeout=15, local_hostname="client.test")
    s.ehlo("client.test")
    s.starttls(context=tls_client_context())
    s.ehlo("client.test")
    return s


# --- preconditions ----------------------------------------------------------


def test_587_capabilities_before_and_after_tls(server):
    with RawSMTP(server.submission_port) as c:
        assert c.greeting.code == 220
        before = caps(c.ehlo())
        assert "STARTTLS" in before
        assert "AUTH" not in before, "AUTH offered before TLS: %r" % before
        c.starttls()
        after = caps(c.ehlo())
        assert "STARTTLS" not in after
        assert "AUTH" in after
        mechs = after["AUTH"].upper().split()[1:]
        assert "PLAIN" in mechs and "LOGIN" in mechs, after["AUTH"]


def test_465_greets_after_handshake_and_offers_auth(server):
    with RawSMTP(server.submissions_port, tls=True) as c:
        assert c.greeting.raw == b"220 mx.example.test ESMTP Posthorn\r\n"
        cp = caps(c.ehlo())
        assert "STARTTLS" not in cp
        assert "PLAIN" in cp["AUTH"].upper().split()


def test_auth_before_starttls_refused(server):
    with RawSMTP(server.submission_port) as c:
        c.ehlo()
        r = c.cmd("AUTH PLAIN " + plain(DEMO, USERS[DEMO]))
        assert r.code == 538 and r.lines[0].startswith("5.7.11"), r
        r = c.cmd("AUTH LOGIN")
        assert r.code == 538, r
        # Not authenticated afterwards.
        r = c.cmd("MAIL FROM:<%s>" % DEMO)
        assert r.code == 530, r


def test_mail_without_auth(server):
    with RawSMTP(server.submission_port) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<%s>" % DEMO)
        assert r.code == 530 and r.lines[0].startswith("5.7.0"), r
        c.starttls()
        c.ehlo()
        r = c.cmd("MAIL FROM:<%s>" % DEMO)
        assert r.code == 530 and r.lines[0].startswith("5.7.0"), r
    with RawSMTP(server.submissions_port, tls=True) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<%s>" % DEMO)
        assert r.code == 530 and r.lines[0].startswith("5.7.0"), r


def test_auth_on_port_25_refused(server):
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        r = c.cmd("AUTH PLAIN " + plain(DEMO, USERS[DEMO]))
        assert r.code == 503 and r.lines[0].startswith("5.5.1"), r
        c.starttls()
        assert "AUTH" not in caps(c.ehlo())
        r = c.cmd("AUTH PLAIN " + plain(DEMO, USERS[DEMO]))
        assert r.code == 503 and r.lines[0].startswith("5.5.1"), r


def test_auth_before_ehlo(server):
    with RawSMTP(server.submissions_port, tls=True) as c:
        r = c.cmd("AUTH PLAIN " + plain(DEMO, USERS[DEMO]))
        assert r.code == 503, r


# --- AUTH mechanisms -------------------------------------------------------------


def test_auth_plain_initial_response(server):
    with tls587(server) as c:
        r = c.cmd("AUTH PLAIN " + plain(DEMO, USERS[DEMO]))
        assert r.code == 235 and r.lines[0].startswith("2.7.0"), r
        r = c.cmd("AUTH PLAIN " + plain(DEMO, USERS[DEMO]))
        assert r.code == 503, r
        assert c.cmd("MAIL FROM:<%s>" % DEMO).code == 250


def test_auth_plain_with_challenge(server):
    with tls587(server) as c:
        r = c.cmd("AUTH PLAIN")
        assert r.code == 334, r
        r = c.cmd(plain(ALICE, USERS[ALICE]))  # password contains a space
        assert r.code == 235, r


def test_auth_login(server):
    with tls587(server) as c:
        r = c.cmd("AUTH LOGIN")
        assert r.code == 334 and base64.b64decode(r.lines[0]).lower().startswith(b"user"), r
        r = c.cmd(b64(DEMO))
        assert r.code == 334 and base64.b64decode(r.lines[0]).lower().startswith(b"pass"), r
        r = c.cmd(b64(USERS[DEMO]))
        assert r.code == 235, r


def test_auth_cancel(server):
    with tls587(server) as c:
        assert c.cmd("AUTH LOGIN").code == 334
        r = c.cmd("*")
        assert r.code == 501 and r.lines[0].startswith("5."), r
        assert c.cmd("MAIL FROM:<%s>" % DEMO).code == 530
        assert c.cmd("NOOP").code == 250


def test_auth_unknown_mechanism(server):
    with tls587(server) as c:
        r = c.cmd("AUTH CRAM-MD5")
        assert r.code == 504 and r.lines[0].startswith("5.5.4"), r


def test_starttls_resets_session(server):
    """RFC 3207 4.2: after the handshake the client must EHLO again."""
    with RawSMTP(server.submission_port) as c:
        c.ehlo()
        c.starttls()
        r = c.cmd("AUTH PLAIN " + plain(DEMO, USERS[DEMO]))
        assert r.code == 503, r


# --- delivery through submission ------------------------------------------------


def test_smtplib_587_plain_local_delivery(server):
    subj = unique("sub-local")
    msg = message(subj, to=ALICE)
    with smtp587(server) as s:
        assert "plain" in s.esmtp_features["auth"].lower()
        s.login(DEMO, USERS[DEMO])
        assert s.sendmail(DEMO, [ALICE], msg) == {}
    found = [m for m in server.wait_mail(ALICE, 1) if m["subject"] == subj]
    assert len(found) == 1
    stored = server.mail_cat(ALICE, found[0]["uid"])
    trace = check_stored(stored, msg, DEMO)
    assert b"ESMTPSA" in trace or b"ESMTPS" in trace, trace


def test_smtplib_587_login_remote_queued(server):
    subj = unique("sub-remote")
    msg = message(subj)
    with smtp587(server) as s:
        s.user, s.password = ALICE, USERS[ALICE]
        code, resp = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        assert code == 235
        assert s.sendmail(ALICE, ["carol@remote.example"], msg) == {}
    q = [e for e in server.queue_list() if e["to"] == "carol@remote.example"]
    assert len(q) == 1, server.queue_list()
    assert q[0]["from"] == ALICE
    assert q[0]["size"] >= len(msg)


def test_smtp_ssl_465(server):
    subj = unique("sub-465")
    msg = message(subj, to=DEMO)
    with smtplib.SMTP_SSL("127.0.0.1", server.submissions_port, timeout=15,
                          local_hostname="client.test", context=tls_client_context()) as s:
        s.login(DEMO, USERS[DEMO])
        assert s.sendmail(DEMO, [DEMO, "dave@remote.example"], msg) == {}
    found = [m for m in server.wait_mail(DEMO, 1) if m["subject"] == subj]
    assert len(found) == 1
    # (Received-field validity with several recipients: test_smtp_inbound.py)
    trace, _ = split_stored(server.mail_cat(DEMO, found[0]["uid"]), msg)
    assert trace.startswith(b"Return-Path: <demo@example.test>\r\nReceived: ")
    q = [e for e in server.queue_list() if e["to"] == "dave@remote.example"]
    assert len(q) == 1 and q[0]["from"] == DEMO


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks_587_starttls_auth(server, mech):
    subj = unique("swaks-" + mech)
    p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % server.submission_port,
                        "--tls", "--auth", mech, "--auth-user", DEMO,
                        "--auth-password", USERS[DEMO], "--from", DEMO, "--to", ALICE,
                        "--helo", "client.test", "--header", "Subject: " + subj],
                       capture_output=True, text=True, timeout=30)
    # (The exit status is checked by the 465 test; QUIT after STARTTLS has its own test.)
    assert "<~  235 2.7.0" in p.stdout, p.stdout + p.stderr
    assert "<~  250 2.0.0" in p.stdout, p.stdout + p.stderr
    found = [m for m in server.wait_mail(ALICE, 1) if m["subject"] == subj]
    assert len(found) == 1 and found[0]["sender"] == DEMO


def test_swaks_465_remote(server):
    p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % server.submissions_port,
                        "--tls-on-connect", "--auth", "PLAIN", "--auth-user", ALICE,
                        "--auth-password", USERS[ALICE], "--from", ALICE,
                        "--to", "erin@remote.example", "--helo", "client.test"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    q = [e for e in server.queue_list() if e["to"] == "erin@remote.example"]
    assert len(q) == 1 and q[0]["from"] == ALICE


def test_swaks_wrong_password_fails(server):
    p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % server.submission_port,
                        "--tls", "--auth", "PLAIN", "--auth-user", "bob@other.test",
                        "--auth-password", "not-the-password", "--from", "bob@other.test",
                        "--to", "x@remote.example", "--helo", "client.test"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "535 5.7.8" in p.stdout
    assert all(e["to"] != "x@remote.example" for e in server.queue_list())


# --- sender ownership ----------------------------------------------------------


@pytest.mark.parametrize("sender", [DEMO, "demo+lists@example.test", "sales@example.test",
                                    "DEMO@Example.Test"])
def test_owned_senders_accepted(server, sender):
    with authed(server) as c:
        r = c.cmd("MAIL FROM:<%s>" % sender)
        assert r.code == 250, r


@pytest.mark.parametrize("sender", [ALICE, "bob@other.test", "ceo@remote.example",
                                    "alice+x@example.test", "demox@example.test"])
def test_foreign_senders_refused(server, sender):
    with authed(server, "465") as c:
        r = c.cmd("MAIL FROM:<%s>" % sender)
        assert r.code == 553 and r.lines[0].startswith("5.7.1"), r
        # The session goes on.
        assert c.cmd("MAIL FROM:<%s>" % DEMO).code == 250


def test_foreign_sender_smtplib(server):
    with smtp587(server) as s:
        s.login(DEMO, USERS[DEMO])
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            s.sendmail(ALICE, [ALICE], b"Subject: spoof\r\n\r\nx\r\n")
        assert e.value.smtp_code == 553


def test_submission_relay_to_unknown_local_user(server):
    with authed(server) as c:
        assert c.cmd("MAIL FROM:<%s>" % DEMO).code == 250
        r = c.cmd("RCPT TO:<nobody@example.test>")
        assert r.code == 550 and r.lines[0].startswith("5.1.1"), r


# --- closing over TLS -------------------------------------------------------------


def test_quit_over_implicit_tls_gets_221(server):
    with RawSMTP(server.submissions_port, tls=True) as c:
        c.ehlo()
        r = c.cmd("QUIT")
        assert r.code == 221 and r.lines[0].startswith("2.0.0"), r
        assert c.is_closed(5)


def test_quit_after_starttls_gets_221(server):
    """The 221 must reach the client over TLS before the server closes (RFC 5321
    4.1.1.10); swaks reports 'Remote host closed connection unexpectedly' otherwise."""
    with RawSMTP(server.submission_port) as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        r = c.cmd("QUIT")
        assert r.code == 221 and r.lines[0].startswith("2.0.0"), r


def test_pipelined_replies_before_close_after_starttls(server):
    """Every reply written before the close reaches the client, also on a connection
    that was upgraded with STARTTLS (port 25 here)."""
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        c.send("NOOP\r\nRSET\r\nQUIT\r\n")
        codes = []
        try:
            for _ in range(3):
                codes.append(c.read_reply().code)
        except Exception as e:
            pytest.fail("replies lost before close: got %r, then %r" % (codes, e))
        assert codes == [250, 250, 221]


def test_every_submission_reply_has_enhanced_status_code(server):
    bad = []

    def check(c, line):
        r = c.cmd(line)
        if r.code != 334 and not has_enhanced_code(r):
            bad.append((line, r))
        return r

    with RawSMTP(server.submission_port) as c:
        c.ehlo()
        for line in ("MAIL FROM:<%s>" % DEMO, "AUTH PLAIN " + plain(DEMO, USERS[DEMO]),
                     "AUTH LOGIN", "RCPT TO:<x@remote.example>", "NOOP", "RSET"):
            check(c, line)
        assert check(c, "STARTTLS").code == 220
        c.wrap_tls()
        c.ehlo()
        for line in ("STARTTLS", "AUTH FOO", "MAIL FROM:<%s>" % DEMO, "AUTH LOGIN", "*",
                     "AUTH PLAIN !!!notbase64", "AUTH PLAIN " + plain(DEMO, USERS[DEMO]),
                     "AUTH PLAIN " + plain(DEMO, USERS[DEMO]), "MAIL FROM:<%s>" % ALICE,
                     "MAIL FROM:<%s>" % DEMO, "RCPT TO:<nobody@example.test>",
                     "RCPT TO:<x@remote.example>", "RSET"):
            check(c, line)
    assert not bad, bad
