"""SMTP smuggling and STARTTLS command injection.

DATA ends only at CRLF.CRLF. A message with a bare LF or bare CR is refused with 550 5.5.2
under smtp_bare_lf = reject (the module's `server`), or stored with CRLF line ends under
smtp_bare_lf = normalize (`normalize_server`). Either way a "second message" hidden
behind a non-standard end marker ("\\n.\\n", "\\r.\\r", ...) must never be executed.
Bytes pipelined after STARTTLS are discarded (CVE-2011-0411 class)."""

import pytest

from conftest import RawSMTP, check_stored, make_server, unique

DEMO, ALICE = "demo@example.test", "alice@example.test"

# A non-standard "end of data" followed by a complete second transaction.
SMUGGLE_ENDINGS = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r\n.\r", b"\r.\r\n",
                   b"\r\n.\r\r\n", b"\r\n.\n\r\n", b"\n.\r", b"\r.\n"]


@pytest.fixture(scope="module")
def normalize_server(tmp_path_factory):
    srv = make_server(tmp_path_factory, "normalize", {"smtp_bare_lf": "normalize"})
    srv.start()
    yield srv
    srv.stop_and_check()


def subjects(server, user):
    return [m["subject"] for m in server.mail_list(user)]


def smuggle_payload(subj, evil_subj, ending):
    return (b"From: <s@remote.test>\r\nSubject: " + subj.encode() + b"\r\n\r\nhello" + ending
            + b"MAIL FROM:<evil@remote.test>\r\nRCPT TO:<" + ALICE.encode() + b">\r\nDATA\r\n"
            b"From: <ceo@example.test>\r\nSubject: " + evil_subj.encode()
            + b"\r\n\r\nsmuggled\r\n.\r\n")


def start_data(c, rcpt=DEMO):
    c.ehlo()
    assert c.cmd("MAIL FROM:<s@remote.test>").code == 250
    assert c.cmd("RCPT TO:<%s>" % rcpt).code == 250
    assert c.cmd("DATA").code == 354


@pytest.mark.parametrize("ending", SMUGGLE_ENDINGS, ids=repr)
def test_smuggling_reject_mode(server, ending):
    subj, evil = unique("carrier"), unique("smuggled")
    with RawSMTP(server.smtp_port) as c:
        start_data(c)
        c.send(smuggle_payload(subj, evil, ending))
        r = c.read_reply()
        # One message with a bare CR/LF, ended by the final CRLF.CRLF: refused.
        assert r.code == 550 and r.lines[0].startswith("5.5.2"), r
        # No reply for a smuggled MAIL/RCPT/DATA follows.
        assert c.no_reply(0.5), c.buf
        r = c.cmd("NOOP")
        assert r.code == 250 and r.lines[0].startswith("2.0.0"), r
    assert subj not in subjects(server, DEMO)
    assert evil not in subjects(server, ALICE)


@pytest.mark.parametrize("ending", SMUGGLE_ENDINGS, ids=repr)
def test_smuggling_normalize_mode(normalize_server, ending):
    srv = normalize_server
    subj, evil = unique("carrier"), unique("smuggled")
    with RawSMTP(srv.smtp_port) as c:
        start_data(c)
        c.send(smuggle_payload(subj, evil, ending))
        r = c.read_reply()
        assert r.code == 250, r
        assert c.no_reply(0.5), c.buf
        assert c.cmd("NOOP").code == 250
    assert evil not in subjects(srv, ALICE), "smuggled message was delivered"
    found = [m for m in srv.mail_list(DEMO) if m["subject"] == subj]
    assert len(found) == 1
    stored = srv.mail_cat(DEMO, found[0]["uid"])
    # The would-be commands are message text, and every line ends with CRLF.
    assert b"MAIL FROM:<evil@remote.test>\r\n" in stored
    assert stored.endswith(b"smuggled\r\n")
    assert b"\r" not in stored.replace(b"\r\n", b"")
    assert b"\n" not in stored.replace(b"\r\n", b"")


@pytest.mark.parametrize("body", [b"line one\nline two\r\n", b"line one\rline two\r\n",
                                  b"bare LF before CRLF\n\r\n", b"\n\r\n", b"a\r\r\nb\r\n",
                                  b"a\n\r\nb\r\n"], ids=repr)
def test_bare_lf_cr_rejected(server, body):
    subj = unique("bare")
    with RawSMTP(server.smtp_port) as c:
        start_data(c)
        c.send(b"Subject: " + subj.encode() + b"\r\n\r\n" + body + b".\r\n")
        r = c.read_reply()
        assert r.code == 550 and r.lines[0].startswith("5.5.2"), r
        # The session is usable and the transaction was reset.
        assert c.cmd("RCPT TO:<%s>" % DEMO).code == 503
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250
    assert subj not in subjects(server, DEMO)


def test_bare_lf_in_headers_rejected(server):
    subj = unique("barehdr")
    with RawSMTP(server.smtp_port) as c:
        start_data(c)
        c.send(b"Subject: " + subj.encode() + b"\nX-Other: y\r\n\r\nbody\r\n.\r\n")
        r = c.read_reply()
        assert r.code == 550, r
    assert subj not in subjects(server, DEMO)


@pytest.mark.parametrize("body,expected", [
    (b"line one\nline two\r\n", b"line one\r\nline two\r\n"),
    (b"bare LF before CRLF\n\r\n", b"bare LF before CRLF\r\n\r\n"),
    (b"one\n\ntwo\r\n", b"one\r\n\r\ntwo\r\n"),
], ids=["middle", "end", "empty-line"])
def test_bare_lf_normalized(normalize_server, body, expected):
    srv = normalize_server
    subj = unique("norm")
    head = b"From: <s@remote.test>\r\nSubject: " + subj.encode() + b"\r\n\r\n"
    with RawSMTP(srv.smtp_port) as c:
        start_data(c)
        c.send(head + body + b".\r\n")
        r = c.read_reply()
        assert r.code == 250, r
    found = [m for m in srv.mail_list(DEMO) if m["subject"] == subj]
    assert len(found) == 1
    check_stored(srv.mail_cat(DEMO, found[0]["uid"]), head + expected, "s@remote.test")


def test_bare_cr_normalized(normalize_server):
    srv = normalize_server
    subj = unique("normcr")
    with RawSMTP(srv.smtp_port) as c:
        start_data(c)
        c.send(b"Subject: " + subj.encode() + b"\r\n\r\nline one\rline two\r\n.\r\n")
        r = c.read_reply()
        assert r.code == 250, r
    found = [m for m in srv.mail_list(DEMO) if m["subject"] == subj]
    assert len(found) == 1
    stored = srv.mail_cat(DEMO, found[0]["uid"])
    assert b"\r" not in stored.replace(b"\r\n", b"")
    assert b"\n" not in stored.replace(b"\r\n", b"")
    assert b"line one" in stored and stored.endswith(b"line two\r\n")


def test_crlf_dot_crlf_is_the_end(server):
    """Sanity: the standard terminator with text right behind it in the same packet;
    the text is the next command."""
    subj = unique("std")
    with RawSMTP(server.smtp_port) as c:
        start_data(c)
        c.send(b"Subject: " + subj.encode() + b"\r\n\r\nbody\r\n.\r\nMAIL FROM:<x@remote.test>\r\n")
        assert c.read_reply().code == 250
        assert c.read_reply().code == 250   # the MAIL after the message
        assert c.cmd("RCPT TO:<%s>" % DEMO).code == 250
    assert subj in subjects(server, DEMO)


# --- STARTTLS ------------------------------------------------------------------


@pytest.mark.parametrize("port", ["smtp", "submission"])
@pytest.mark.parametrize("injected", [b"NOOP\r\n", b"MAIL FROM:<evil@remote.test>\r\n",
                                      b"EHLO evil\r\nNOOP\r\n"], ids=["noop", "mail", "ehlo"])
def test_starttls_discards_pipelined_bytes(server, port, injected):
    with RawSMTP(getattr(server, port + "_port")) as c:
        c.ehlo()
        c.send(b"STARTTLS\r\n" + injected)
        r = c.read_reply()
        assert r.code == 220 and r.lines[0].startswith("2.0.0"), r
        # Anything after the 220 in clear text would be an answer to the injection.
        assert c.buf == b"", "cleartext after 220: %r" % c.buf
        c.wrap_tls()
        r = c.cmd("EHLO client.test")
        assert r.code == 250 and r.lines[0].startswith("mx.example.test"), \
            "first reply over TLS is not the EHLO reply: %r" % r
        assert c.no_reply(0.5), "stray data over TLS: %r" % c.buf
        # A fresh session: the injected MAIL was not executed.
        if port == "smtp":
            r = c.cmd("MAIL FROM:<s@remote.test>")
            assert r.code == 250, r
        r = c.cmd("NOOP")
        assert r.code == 250 and r.lines[0].startswith("2.0.0"), r


def test_starttls_twice_refused(server):
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        r = c.cmd("STARTTLS")
        assert r.code in (503, 554) and r.lines[0].startswith("5."), r


def test_starttls_with_argument_refused(server):
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        r = c.cmd("STARTTLS now")
        assert r.code == 501, r
        assert c.cmd("NOOP").code == 250


def test_delivery_over_starttls_on_25(server):
    subj = unique("tls25")
    msg = b"From: <s@remote.test>\r\nSubject: " + subj.encode() + b"\r\n\r\nover TLS\r\n"
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        c.starttls()
        start_data(c)
        c.send(msg + b".\r\n")
        assert c.read_reply().code == 250
    found = [m for m in server.mail_list(DEMO) if m["subject"] == subj]
    assert len(found) == 1
    trace = check_stored(server.mail_cat(DEMO, found[0]["uid"]), msg, "s@remote.test")
    assert b"ESMTPS" in trace
