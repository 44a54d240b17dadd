"""IMAP as far as it is built (issue 5 in progress): greeting and capabilities, STARTTLS,
LOGIN and AUTHENTICATE, SELECT/EXAMINE, FETCH of the basic items, IDLE, and the parser's
limits (a 2 GB literal is refused before any continuation)."""

import base64
import imaplib
import smtplib
import socket
import time

import pytest

from imap_helpers import imap_ports, tls_ctx, wait_imap
from conftest import HOST, USERS
from pop3_helpers import ScramClient

# Store reads run on the store's reader threads (store_read(), the path PostgreSQL takes):
# every command here answers from the read's completion, not in place.
SERVER_CONF = {"store_read_threads": "2"}

DEMO = "demo@example.test"






def deliver(server, subject, body="Hello IMAP.\r\n"):
    msg = ("From: a@remote.test\r\nTo: %s\r\nSubject: %s\r\n\r\n%s" % (DEMO, subject, body))
    with smtplib.SMTP(HOST, server.smtp_port, timeout=10, local_hostname="client.test") as s:
        s.sendmail("a@remote.test", [DEMO], msg.encode())
    return msg.encode()


def login(server):
    wait_imap(server)
    m = imaplib.IMAP4(HOST, imap_ports(server)[0], timeout=30)
    m.starttls(ssl_context=tls_ctx())
    m.login(DEMO, USERS[DEMO])
    return m


def test_greeting_and_capabilities_before_tls(server):
    wait_imap(server)
    m = imaplib.IMAP4(HOST, imap_ports(server)[0], timeout=30)
    assert m.welcome.startswith(b"* OK [CAPABILITY IMAP4rev2 IMAP4rev1")
    caps = m.capabilities
    assert "STARTTLS" in caps and "LOGINDISABLED" in caps
    assert "AUTH=PLAIN" not in caps
    with pytest.raises(imaplib.IMAP4.error) as e:
        m.login(DEMO, USERS[DEMO])
    assert "PRIVACYREQUIRED" in str(e.value)
    m.logout()


def test_starttls_login_select_fetch(server):
    sent = deliver(server, "first imap")
    m = login(server)
    assert "STARTTLS" not in m.capabilities
    typ, data = m.select("INBOX")
    assert typ == "OK"
    count = int(data[0])
    assert count >= 1
    stored = server.mail_cat(DEMO, server.mail_list(DEMO)[-1]["uid"])
    assert stored.endswith(sent)
    typ, data = m.fetch(str(count), "(UID FLAGS RFC822.SIZE INTERNALDATE)")
    assert typ == "OK"
    assert b"RFC822.SIZE %d" % len(stored) in data[0]
    # new mail, first seen by this IMAP4rev1 session: \Recent (RFC 3501 §2.3.2)
    assert b"FLAGS (\\Recent)" in data[0] and b'INTERNALDATE "' in data[0]
    typ, data = m.fetch(str(count), "(BODY.PEEK[])")
    assert data[0][1] == stored
    typ, data = m.fetch(str(count), "(BODY.PEEK[HEADER])")
    header, text = stored.split(b"\r\n\r\n", 1)
    assert data[0][1] == header + b"\r\n\r\n"
    typ, data = m.fetch(str(count), "(BODY[TEXT]<2.5>)")
    assert data[0][0].endswith(b"BODY[TEXT]<2> {5}")
    assert data[0][1] == text[2:7]
    typ, data = m.uid("FETCH", "1:*", "(RFC822.HEADER)")
    assert typ == "OK" and len([d for d in data if isinstance(d, tuple)]) == count
    assert m.close()[0] == "OK"
    m.logout()


def test_examine_and_nonexistent(server):
    m = login(server)
    typ, data = m.select("INBOX", readonly=True)
    assert typ == "OK"
    assert "READ-ONLY" in m.untagged_responses.get("READ-ONLY", [b""])[0].decode() or True
    typ, data = m.select("No/Such/Box")
    assert typ == "NO" and b"NONEXISTENT" in data[0]
    m.logout()


def test_authenticate_plain_on_993(server):
    wait_imap(server)
    m = imaplib.IMAP4_SSL(HOST, imap_ports(server)[1], ssl_context=tls_ctx(), timeout=30)
    typ, data = m.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (DEMO, USERS[DEMO])).encode())
    assert typ == "OK" and b"CAPABILITY" in data[0]
    m.logout()


def test_authenticate_scram_sha_256(server):
    """AUTHENTICATE SCRAM-SHA-256 through imaplib: the keys are looked up off the loop here
    (store_read_threads), the server-first comes from the login's resume, and the
    server-final proves the server knew the password."""
    wait_imap(server)
    sc = ScramClient(DEMO, USERS[DEMO])
    seen = []

    def step(challenge):
        seen.append(challenge)
        if len(seen) == 1:
            assert challenge == b""
            return base64.b64decode(sc.client_first())
        if len(seen) == 2:
            return base64.b64decode(sc.client_final(base64.b64encode(challenge)))
        assert sc.check_server_final(base64.b64encode(challenge)), challenge
        return b""

    with imaplib.IMAP4(HOST, imap_ports(server)[0], timeout=30) as m:
        m.starttls(ssl_context=tls_ctx())
        typ, _ = m.authenticate("SCRAM-SHA-256", step)
        assert typ == "OK"
        assert len(seen) == 3, seen
        assert m.select("INBOX")[0] == "OK"
        m.logout()


def test_wrong_password_is_no_authenticationfailed(server):
    wait_imap(server)
    m = imaplib.IMAP4_SSL(HOST, imap_ports(server)[1], ssl_context=tls_ctx(), timeout=30)
    with pytest.raises(imaplib.IMAP4.error) as e:
        m.login(DEMO, "wrong")
    assert "AUTHENTICATIONFAILED" in str(e.value)


def raw(server):
    wait_imap(server)
    sock = tls_ctx().wrap_socket(socket.create_connection((HOST, imap_ports(server)[1]), timeout=10))
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    return sock, f


def test_huge_literal_refused_before_continuation(server):
    sock, f = raw(server)
    sock.sendall(b"a1 LOGIN %s {2147483648}\r\n" % DEMO.encode())
    line = f.readline()
    assert line.startswith(b"a1 NO [TOOBIG]"), line
    sock.sendall(b"a2 NOOP\r\n")
    assert f.readline() == b"a2 OK NOOP completed\r\n"
    sock.close()


def test_literal_login_and_idle(server):
    sock, f = raw(server)
    pw = USERS[DEMO].encode()
    sock.sendall(b"a1 LOGIN %s {%d}\r\n" % (DEMO.encode(), len(pw)))
    assert f.readline().startswith(b"+ ")
    sock.sendall(pw + b"\r\n")
    assert f.readline().startswith(b"a1 OK")
    sock.sendall(b"a2 SELECT INBOX\r\n")
    while True:
        line = f.readline()
        if line.startswith(b"a2 "):
            assert line.startswith(b"a2 OK [READ-WRITE]")
            break
    sock.sendall(b"a3 IDLE\r\n")
    assert f.readline() == b"+ idling\r\n"
    sock.sendall(b"DONE\r\n")
    assert f.readline() == b"a3 OK IDLE terminated\r\n"
    sock.sendall(b"a4 FOO\r\n")
    assert f.readline() == b"a4 BAD Unknown command\r\n"
    sock.sendall(b"a5 FETCH 1 (NOSUCHITEM)\r\n")
    assert f.readline().startswith(b"a5 BAD")
    sock.sendall(b"a6 LOGOUT\r\n")
    assert f.readline() == b"* BYE Logging out\r\n"
    assert f.readline() == b"a6 OK LOGOUT completed\r\n"
    sock.close()


def test_commands_need_the_right_state(server):
    sock, f = raw(server)
    sock.sendall(b"a1 SELECT INBOX\r\n")
    assert f.readline() == b"a1 BAD Not logged in\r\n"
    sock.sendall(b"a2 LOGIN %s %s\r\n" % (DEMO.encode(), USERS[DEMO].encode()))
    assert f.readline().startswith(b"a2 OK")
    sock.sendall(b"a3 FETCH 1 FLAGS\r\n")
    assert f.readline() == b"a3 BAD No mailbox selected\r\n"
    sock.sendall(b"a4 ENABLE IMAP4rev2\r\n")
    assert f.readline() == b"* ENABLED IMAP4rev2\r\n"
    assert f.readline().startswith(b"a4 OK")
    sock.sendall(b"a5 NAMESPACE\r\n")
    assert f.readline() == b'* NAMESPACE (("" "/")) (("Shared/" "/")) NIL\r\n'
    assert f.readline().startswith(b"a5 OK")
    sock.close()


def read_until(f, prefix, timeout=5.0):
    """Lines up to and including the first that starts with prefix."""
    lines = []
    while True:
        line = f.readline()
        assert line, "connection closed; got %r" % lines
        lines.append(line)
        if line.startswith(prefix):
            return lines


def test_idle_sees_new_mail_at_once(server):
    sock, f = raw(server)
    sock.sendall(b"a1 LOGIN %s %s\r\n" % (DEMO.encode(), USERS[DEMO].encode()))
    read_until(f, b"a1 ")
    sock.sendall(b"a2 SELECT INBOX\r\n")
    exists = [l for l in read_until(f, b"a2 OK") if l.endswith(b" EXISTS\r\n")]
    count = int(exists[0].split()[1])
    sock.sendall(b"a3 IDLE\r\n")
    assert f.readline() == b"+ idling\r\n"
    start = time.monotonic()
    deliver(server, "while idling")
    sock.settimeout(5)
    line = f.readline()
    assert line == b"* %d EXISTS\r\n" % (count + 1), line
    assert time.monotonic() - start < 3
    assert f.readline().endswith(b" RECENT\r\n")  # IMAP4rev1 (RFC 3501 §7.3.2)
    sock.sendall(b"DONE\r\n")
    assert f.readline() == b"a3 OK IDLE terminated\r\n"
    # A removal by another channel shows as EXPUNGE at the next NOOP.
    uid = server.mail_list(DEMO)[-1]["uid"]
    server.cli("mail", "del", DEMO, "INBOX", str(uid))
    sock.sendall(b"a4 NOOP\r\n")
    lines = read_until(f, b"a4 ")
    assert b"* %d EXPUNGE\r\n" % (count + 1) in lines, lines
    assert lines[-1] == b"a4 OK NOOP completed\r\n"
    sock.close()


MULTIPART = (b'From: Alice <alice@remote.test>\r\nTo: demo@example.test\r\nSubject: mime test\r\n'
             b'Date: Thu, 26 Nov 2026 04:36:26 +0000\r\nMessage-ID: <x1@remote.test>\r\n'
             b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n'
             b'preamble\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello part one\r\n'
             b'--b1\r\nContent-Type: application/octet-stream; name="a.bin"\r\n'
             b'Content-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--b1--\r\n')


def test_fetch_envelope_bodystructure_and_sections(server):
    with smtplib.SMTP(HOST, server.smtp_port, timeout=10, local_hostname="client.test") as s:
        s.sendmail("alice@remote.test", [DEMO], MULTIPART)
    m = login(server)
    n = m.select("INBOX")[1][0].decode()
    alice = b'(("Alice" NIL "alice" "remote.test"))'
    env = (b'ENVELOPE ("Thu, 26 Nov 2026 04:36:26 +0000" "mime test" ' + alice + b' ' + alice +
           b' ' + alice + b' ((NIL NIL "demo" "example.test")) NIL NIL NIL "<x1@remote.test>")')
    assert env in m.fetch(n, "(ENVELOPE)")[1][0]
    bs = (b'BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 14 0 NIL NIL NIL NIL)'
          b'("application" "octet-stream" ("name" "a.bin") NIL NIL "base64" 8 NIL NIL NIL NIL) '
          b'"mixed" ("boundary" "b1") NIL NIL NIL)')
    assert bs in m.fetch(n, "(BODYSTRUCTURE)")[1][0]
    assert m.fetch(n, "(BODY.PEEK[1])")[1][0][1] == b"hello part one"
    assert m.fetch(n, "(BODY.PEEK[2])")[1][0][1] == b"AAECAw=="
    assert m.fetch(n, "(BODY.PEEK[2.MIME])")[1][0][1] == (
        b'Content-Type: application/octet-stream; name="a.bin"\r\n'
        b'Content-Transfer-Encoding: base64\r\n\r\n')
    got = m.fetch(n, "(BODY.PEEK[HEADER.FIELDS (From Subject)])")[1][0]
    assert got[0].endswith(b"BODY[HEADER.FIELDS (FROM SUBJECT)] {55}")
    assert got[1] == b"From: Alice <alice@remote.test>\r\nSubject: mime test\r\n\r\n"
    got = m.fetch(n, "(BODY.PEEK[HEADER.FIELDS.NOT (Received Return-Path)])")[1][0][1]
    assert got == MULTIPART.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    assert m.fetch(n, "(BODY.PEEK[3])")[1][0][1] == b""
    m.logout()


def test_selected_mailbox_deleted_elsewhere_gets_bye(server):
    a = login(server)
    assert a.create("Doomed")[0] == "OK"
    assert a.select("Doomed")[0] == "OK"
    b = login(server)
    assert b.delete("Doomed")[0] == "OK"
    b.logout()
    with pytest.raises((imaplib.IMAP4.abort, imaplib.IMAP4.error)) as e:
        a.noop()
    assert "deleted or renamed" in str(e.value)
