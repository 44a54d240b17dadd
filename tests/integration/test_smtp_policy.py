"""Flood and abuse defence and the Junk folder (issue 12): greylisting on port 25 (first try
451, a retry after greylist_delay passes and is remembered; never for submission), the
limit of unknown recipients per session, per-IP connection and message rates (a flood
from one address is throttled while another is served), per-account submission rates
(messages and new recipients per day), and junk training records of IMAP MOVE into and out
of Junk. One server; each test speaks from its own loopback address (127.0.0.x), so the
per-IP counters of one test do not touch another's."""
import imaplib
import smtplib
import socket
import time

import pytest

from conftest import HOST, USERS, tls_client_context, unique
from imap_helpers import imap_ports, tls_ctx, wait_imap

SERVER_CONF = {
    "greylisting": "yes",
    "greylist_delay": "1s",
    "smtp_invalid_recipients_max": 3,
    "smtp_connection_rate_per_ip": 5,
    "smtp_message_rate_per_ip": 4,
    "submission_messages_per_day": 3,
    "submission_recipients_per_day": 4,
}
DEMO = "demo@example.test"
ALICE = "alice@example.test"
RATED = "rated@example.test"
RATED_PW = "rated-Secret-7"


def server_setup(srv):
    srv.add_user(RATED, RATED_PW)


def smtp25(server, ip):
    s = smtplib.SMTP(HOST, server.smtp_port, timeout=15, local_hostname="client.test",
                     source_address=(ip, 0))
    s.ehlo("client.test")
    return s


def message(subject, to=DEMO, sender="a@remote.test"):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nbody\r\n" % (sender, to, subject)).encode()


# --- greylisting -----------------------------------------------------------------


def test_greylisting_defers_then_passes_and_remembers(server):
    sender = unique("grey") + "@remote.test"
    with smtp25(server, "127.0.0.2") as s:
        assert s.mail(sender)[0] == 250
        code, text = s.rcpt(DEMO)
        assert (code, text) == (451, b"4.7.1 Greylisted, try again later")
        # An unknown recipient is refused as such, not greylisted.
        assert s.rcpt("nobody@example.test")[0] == 550
        assert s.rcpt(DEMO)[0] == 451          # too early: still deferred
        s.rset()
        # The null sender is greylisted too (as Postgrey).
        assert s.mail("")[0] == 250
        assert s.rcpt(DEMO)[0] == 451
    time.sleep(1.2)
    subj = unique("grey-pass")
    # The retry comes from another address of the same /24: the same triplet (and a fresh
    # message-rate count: each address gets 4 MAILs an hour here).
    with smtp25(server, "127.0.0.3") as s:
        assert s.sendmail(sender, [DEMO], message(subj, sender=sender)) == {}
        # Remembered: the same triplet passes again at once.
        assert s.sendmail(sender, [DEMO], message(subj + "-2", sender=sender)) == {}
        # A new sender is a new triplet.
        assert s.mail("other-" + sender)[0] == 250
        assert s.rcpt(DEMO)[0] == 451
    subjects = [m["subject"] for m in server.wait_mail(DEMO, 2)]
    assert subj in subjects and subj + "-2" in subjects


def test_submission_is_never_greylisted(server):
    subj = unique("sub-nogrey")
    with smtplib.SMTP(HOST, server.submission_port, timeout=15,
                      local_hostname="client.test") as s:
        s.starttls(context=tls_client_context())
        s.login(ALICE, USERS[ALICE])
        assert s.sendmail(ALICE, [DEMO], message(subj, sender=ALICE)) == {}
    assert subj in [m["subject"] for m in server.wait_mail(DEMO, 1)]


# --- unknown recipients ----------------------------------------------------------


def test_invalid_recipients_close_the_session(server):
    with smtp25(server, "127.0.0.4") as s:
        assert s.mail("dict@remote.test")[0] == 250
        for i in range(3):
            assert s.rcpt("guess%d@example.test" % i)[0] == 550
        code, text = s.rcpt("guess9@example.test")
        assert code == 421 and text.startswith(b"4.7.0"), (code, text)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            s.noop()


# --- per-IP rates ----------------------------------------------------------------


def greet(server, ip):
    """Connect from ip and return the greeting line."""
    with socket.create_connection((HOST, server.smtp_port), timeout=10,
                                  source_address=(ip, 0)) as sock:
        f = sock.makefile("rb")
        line = f.readline()
        f.close()
        return line


def test_connection_rate_per_ip(server):
    for _ in range(5):
        assert greet(server, "127.0.0.7").startswith(b"220 ")
    assert greet(server, "127.0.0.7").startswith(b"421 4.7.0")
    assert greet(server, "127.0.0.8").startswith(b"220 ")   # another client is served


def test_message_rate_per_ip(server):
    with smtp25(server, "127.0.0.5") as s:
        for _ in range(4):
            assert s.mail("flood@remote.test")[0] == 250
            s.rset()
        code, text = s.mail("flood@remote.test")
        assert code == 450 and text.startswith(b"4.7.1"), (code, text)
    with smtp25(server, "127.0.0.6") as s:
        assert s.mail("calm@remote.test")[0] == 250


# --- submission rates ------------------------------------------------------------


def test_submission_rates_per_account(server):
    with smtplib.SMTP(HOST, server.submission_port, timeout=15,
                      local_hostname="client.test") as s:
        s.starttls(context=tls_client_context())
        s.login(RATED, RATED_PW)
        body = message("rates", to="r1@remote.test", sender=RATED)
        assert s.sendmail(RATED, ["r1@remote.test", "r2@remote.test"], body) == {}
        assert s.sendmail(RATED, ["R1@remote.test", "r3@remote.test"], body) == {}
        # r4 is the 4th new recipient of the day (the limit); r5 would be the 5th.
        assert s.mail(RATED)[0] == 250
        assert s.rcpt("r4@remote.test")[0] == 250
        code, text = s.rcpt("r5@remote.test")
        assert code == 451 and text.startswith(b"4.7.1"), (code, text)
        assert s.rcpt("r2@remote.test")[0] == 250   # known: not new
        assert s.data(body)[0] == 250
        # Three messages today: the 4th is refused, even to a known recipient.
        assert s.mail(RATED)[0] == 250
        code, text = s.rcpt("r1@remote.test")
        assert code == 451 and text.startswith(b"4.7.1"), (code, text)
    # Other accounts are not affected.
    with smtplib.SMTP(HOST, server.submission_port, timeout=15,
                      local_hostname="client.test") as s:
        s.starttls(context=tls_client_context())
        s.login(ALICE, USERS[ALICE])
        assert s.mail(ALICE)[0] == 250
        assert s.rcpt("r5@remote.test")[0] == 250


# --- junk training ---------------------------------------------------------------


def test_imap_move_into_and_out_of_junk_is_recorded(server):
    wait_imap(server)
    m = imaplib.IMAP4_SSL(HOST, imap_ports(server)[1], ssl_context=tls_ctx(), timeout=30)
    m.login(RATED, RATED_PW)
    for subj in ("spam-1", "spam-2"):
        assert m.append("INBOX", None, None, message(subj, to=RATED))[0] == "OK"
    assert m.append("Junk", None, None, message("appended", to=RATED))[0] == "OK"
    assert m.select("INBOX")[0] == "OK"
    assert m.uid("MOVE", "1:2", "Junk")[0] == "OK"
    assert m.select("Junk")[0] == "OK"
    typ, data = m.uid("SEARCH", "SUBJECT", "spam-2")
    assert typ == "OK" and data[0]
    assert m.uid("MOVE", data[0].decode(), "INBOX")[0] == "OK"
    m.logout()
    lines = server.cli("junk", "list").stdout.splitlines()
    mine = [l.split() for l in lines if " %s " % RATED in l]
    verdicts = sorted(f[2] for f in mine)
    assert verdicts == ["ham", "junk", "junk"], lines   # the APPEND into Junk is not one
    assert all(len(f[3]) == 64 for f in mine)
