"""IMAP QUOTA (RFC 9208): the capabilities, one quota root "" per account covering all its
mailboxes, GETQUOTAROOT and GETQUOTA with exact STORAGE figures (units of 1024 octets, usage
rounded up, limit rounded down), an account without a limit (no quota root), unknown roots
and mailboxes, SETQUOTA refused (no QUOTASET), STATUS DELETED-STORAGE, and [OVERQUOTA] on
APPEND and COPY while a MOVE, which needs no space, still works; the message-count limit
(QUOTA=RES-MESSAGE, `posthorn user quota ADDRESS SIZE --messages N`) over IMAP and SMTP."""

import imaplib
import itertools
import re
import smtplib
import socket

from imap_helpers import Raw as RawClient, imap_ports, tls_ctx, wait_imap
from conftest import HOST

# Store reads run on the store's reader threads (store_read(), the path PostgreSQL takes).
SERVER_CONF = {"store_read_threads": "2"}

PASSWORD = "quota-Secret-9"
_counter = itertools.count(1)


def fresh_user(server, quota=None):
    addr = "q%d@example.test" % next(_counter)
    server.add_user(addr, PASSWORD, quota=quota)
    return addr


def kib(octets):
    return (octets + 1023) // 1024


def message(size, subject="m"):
    """A message of exactly size octets."""
    head = b"From: me@example.test\r\nSubject: %s\r\n\r\n" % subject.encode()
    assert size >= len(head) + 2
    return head + b"x" * (size - len(head) - 2) + b"\r\n"


class Raw(RawClient):
    """The shared raw client, with this module's password."""

    def __init__(self, server, user):
        super().__init__(server, user, PASSWORD)


def quota_lines(r, mailbox=b"INBOX"):
    out = r.cmd(b"GETQUOTAROOT " + mailbox)
    assert out[-1] == b"OK GETQUOTAROOT completed", out
    return out[:-1]


def test_capabilities(server):
    user = fresh_user(server)
    r = Raw(server, user)
    caps = r.cmd(b"CAPABILITY")[0].split()
    for cap in (b"QUOTA", b"QUOTA=RES-STORAGE", b"QUOTA=RES-MESSAGE"):
        assert cap in caps, caps
    # No SETQUOTA.
    assert b"QUOTASET" not in caps, caps
    r.close()


def test_getquotaroot_exact_storage(server):
    user = fresh_user(server, quota="100K")
    r = Raw(server, user)
    assert quota_lines(r) == [b"* QUOTAROOT \"INBOX\" \"\"\r\n",
                              b"* QUOTA \"\" (STORAGE 0 100)\r\n"]
    assert r.append(b"INBOX", message(1000)).startswith(b"OK [APPENDUID")
    assert quota_lines(r)[1] == b"* QUOTA \"\" (STORAGE 1 100)\r\n"
    # 2048 octets are exactly 2 KiB; one octet more rounds up to 3.
    assert r.append(b"Archive", message(1048)).startswith(b"OK [APPENDUID")
    assert quota_lines(r)[1] == b"* QUOTA \"\" (STORAGE 2 100)\r\n"
    assert r.append(b"Archive", message(100)).startswith(b"OK [APPENDUID")
    # The one root covers every mailbox of the account.
    assert quota_lines(r, b"Archive") == [b"* QUOTAROOT \"Archive\" \"\"\r\n",
                                          b"* QUOTA \"\" (STORAGE 3 100)\r\n"]
    assert r.cmd(b"GETQUOTA \"\"") == [b"* QUOTA \"\" (STORAGE 3 100)\r\n",
                                       b"OK GETQUOTA completed"]
    # A delivery over SMTP counts with the size it was stored with.
    msg = "From: a@remote.test\r\nTo: %s\r\nSubject: s\r\n\r\n%s\r\n" % (user, "y" * 3000)
    with smtplib.SMTP(HOST, server.smtp_port, timeout=10, local_hostname="client.test") as s:
        s.sendmail("a@remote.test", [user], msg.encode())
    delivered = server.wait_mail(user, 2)
    total = sum(m["size"] for m in delivered) + 1048 + 100
    assert total > 2148 + 3000
    assert r.cmd(b"GETQUOTA \"\"")[0] == b"* QUOTA \"\" (STORAGE %d 100)\r\n" % kib(total)
    r.close()
    # imaplib reads the same.
    wait_imap(server)
    m = imaplib.IMAP4_SSL(HOST, imap_ports(server)[1], ssl_context=tls_ctx(), timeout=30)
    m.login(user, PASSWORD)
    typ, data = m.getquotaroot("INBOX")
    assert typ == "OK"
    assert data == [[b'"INBOX" ""'], [b'"" (STORAGE %d 100)' % kib(total)]], data
    typ, data = m.getquota('""')
    assert (typ, data) == ("OK", [b'"" (STORAGE %d 100)' % kib(total)])
    m.logout()


def test_limit_rounded_down(server):
    user = fresh_user(server, quota="1500")
    r = Raw(server, user)
    assert r.cmd(b"GETQUOTA \"\"")[0] == b"* QUOTA \"\" (STORAGE 0 1)\r\n"
    r.close()


def test_account_without_limit(server):
    user = fresh_user(server)
    r = Raw(server, user)
    assert r.append(b"INBOX", message(5000)).startswith(b"OK [APPENDUID")
    # RFC 9208 §4.3.2: the mailbox has no quota root.
    assert quota_lines(r) == [b"* QUOTAROOT \"INBOX\"\r\n"]
    out = r.cmd(b"GETQUOTA \"\"")
    assert out[-1].startswith(b"NO ") and len(out) == 1, out
    # A limit set later makes the root appear, with the usage so far.
    server.cli("user", "quota", user, "1M")
    assert quota_lines(r) == [b"* QUOTAROOT \"INBOX\" \"\"\r\n",
                              b"* QUOTA \"\" (STORAGE 5 1024)\r\n"]
    # And 0 removes it again.
    server.cli("user", "quota", user, "0")
    assert quota_lines(r) == [b"* QUOTAROOT \"INBOX\"\r\n"]
    r.close()


def test_unknown_root_mailbox_and_syntax(server):
    user = fresh_user(server, quota="1M")
    r = Raw(server, user)
    for root in (b"\"INBOX\"", b"\"User quota\"", b"foo"):
        out = r.cmd(b"GETQUOTA " + root)
        assert len(out) == 1 and out[0].startswith(b"NO "), out
    out = r.cmd(b"GETQUOTAROOT \"No such box\"")
    assert out == [b"NO [NONEXISTENT] Mailbox does not exist"], out
    assert r.cmd(b"GETQUOTAROOT")[-1].startswith(b"BAD ")
    assert r.cmd(b"GETQUOTA")[-1].startswith(b"BAD ")
    assert r.cmd(b"GETQUOTAROOT INBOX extra")[-1].startswith(b"BAD ")
    # Still usable afterwards.
    assert quota_lines(r)[1] == b"* QUOTA \"\" (STORAGE 0 1024)\r\n"
    r.close()


def test_not_before_login(server):
    wait_imap(server)
    sock = tls_ctx().wrap_socket(
        socket.create_connection((HOST, imap_ports(server)[1]), timeout=10))
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    sock.sendall(b"a GETQUOTAROOT INBOX\r\n")
    assert f.readline().startswith(b"a BAD ")
    f.close()
    sock.close()


def test_setquota_refused(server):
    user = fresh_user(server, quota="1M")
    r = Raw(server, user)
    out = r.cmd(b"SETQUOTA \"\" (STORAGE 512)")
    assert out == [b"NO [NOPERM] Quota limits are set by the administrator"], out
    assert quota_lines(r)[1] == b"* QUOTA \"\" (STORAGE 0 1024)\r\n"
    r.close()


def test_status_deleted_storage(server):
    user = fresh_user(server, quota="1M")
    r = Raw(server, user)
    assert r.append(b"INBOX", message(1500, "a")).startswith(b"OK [APPENDUID")
    assert r.append(b"INBOX", message(3000, "b")).startswith(b"OK [APPENDUID")
    out = r.cmd(b"STATUS INBOX (MESSAGES DELETED DELETED-STORAGE)")
    assert out[0] == b"* STATUS \"INBOX\" (MESSAGES 2 DELETED 0 DELETED-STORAGE 0)\r\n", out
    assert r.cmd(b"SELECT INBOX")[-1].startswith(b"OK [READ-WRITE]")
    assert r.cmd(b"STORE 2 +FLAGS.SILENT (\\Deleted)")[-1] == b"OK STORE completed"
    out = r.cmd(b"STATUS INBOX (DELETED-STORAGE)")
    assert out[0] == b"* STATUS \"INBOX\" (DELETED-STORAGE 3)\r\n", out
    assert r.cmd(b"STORE 1 +FLAGS.SILENT (\\Deleted)")[-1] == b"OK STORE completed"
    out = r.cmd(b"STATUS INBOX (DELETED-STORAGE)")
    assert out[0] == b"* STATUS \"INBOX\" (DELETED-STORAGE 5)\r\n", out
    assert quota_lines(r)[1] == b"* QUOTA \"\" (STORAGE 5 1024)\r\n"
    # EXPUNGE frees what DELETED-STORAGE announced.
    assert r.cmd(b"EXPUNGE")[-1] == b"OK EXPUNGE completed"
    out = r.cmd(b"STATUS INBOX (DELETED-STORAGE)")
    assert out[0] == b"* STATUS \"INBOX\" (DELETED-STORAGE 0)\r\n", out
    assert quota_lines(r)[1] == b"* QUOTA \"\" (STORAGE 0 1024)\r\n"
    r.close()


def test_overquota_append_copy_move(server):
    user = fresh_user(server, quota="10K")
    r = Raw(server, user)
    assert r.append(b"INBOX", message(6000)).startswith(b"OK [APPENDUID")
    status = r.append(b"INBOX", message(6000))
    assert status.startswith(b"NO [OVERQUOTA]"), status
    assert r.cmd(b"SELECT INBOX")[-1].startswith(b"OK [READ-WRITE]")
    out = r.cmd(b"COPY 1 Archive")
    assert out[-1].startswith(b"NO [OVERQUOTA]"), out
    out = r.cmd(b"UID COPY 1:* Archive")
    assert out[-1].startswith(b"NO [OVERQUOTA]"), out
    assert r.cmd(b"STATUS Archive (MESSAGES)")[0] == b"* STATUS \"Archive\" (MESSAGES 0)\r\n"
    assert quota_lines(r)[1] == b"* QUOTA \"\" (STORAGE 6 10)\r\n"
    # A MOVE stays inside the one quota root and needs no space: it works at a full quota,
    # and even when the limit was lowered below the usage.
    out = r.cmd(b"MOVE 1 Archive")
    assert out[-1].startswith(b"OK"), out
    assert quota_lines(r, b"Archive")[1] == b"* QUOTA \"\" (STORAGE 6 10)\r\n"
    server.cli("user", "quota", user, "4K")
    assert r.cmd(b"SELECT Archive")[-1].startswith(b"OK [READ-WRITE]")
    out = r.cmd(b"UID MOVE 1:* INBOX")
    assert out[-1].startswith(b"OK"), out
    assert quota_lines(r)[1] == b"* QUOTA \"\" (STORAGE 6 4)\r\n"
    # Over the limit now: even a small APPEND or a COPY is refused.
    status = r.append(b"INBOX", message(100))
    assert status.startswith(b"NO [OVERQUOTA]"), status
    assert r.cmd(b"SELECT INBOX")[-1].startswith(b"OK [READ-WRITE]")
    assert r.cmd(b"COPY 1 Trash")[-1].startswith(b"NO [OVERQUOTA]")
    assert re.match(rb"\* STATUS \"INBOX\" \(MESSAGES 1\)",
                    r.cmd(b"STATUS INBOX (MESSAGES)")[0])
    r.close()


def smtp_send(server, user, subject):
    msg = "From: a@remote.test\r\nTo: %s\r\nSubject: %s\r\n\r\nbody\r\n" % (user, subject)
    with smtplib.SMTP(HOST, server.smtp_port, timeout=10, local_hostname="client.test") as s:
        s.sendmail("a@remote.test", [user], msg.encode())


def test_message_limit_imap(server):
    user = fresh_user(server, quota="1M")
    server.cli("user", "quota", user, "1M", "--messages", "3")
    r = Raw(server, user)
    assert quota_lines(r) == [b"* QUOTAROOT \"INBOX\" \"\"\r\n",
                              b"* QUOTA \"\" (STORAGE 0 1024 MESSAGE 0 3)\r\n"]
    assert r.append(b"INBOX", message(500, "1")).startswith(b"OK [APPENDUID")
    assert r.append(b"Archive", message(500, "2")).startswith(b"OK [APPENDUID")
    assert r.cmd(b"GETQUOTA \"\"")[0] == b"* QUOTA \"\" (STORAGE 1 1024 MESSAGE 2 3)\r\n"
    # A MULTIAPPEND of two would make 4: refused whole.
    m3, m4 = message(300, "3"), message(300, "4")
    out = r.cmd(b"APPEND INBOX {%d+}\r\n" % len(m3) + m3 + b" {%d+}\r\n" % len(m4) + m4)
    assert out[-1].startswith(b"NO [OVERQUOTA]"), out
    assert r.append(b"INBOX", m3).startswith(b"OK [APPENDUID")
    assert r.cmd(b"GETQUOTA \"\"")[0] == b"* QUOTA \"\" (STORAGE 2 1024 MESSAGE 3 3)\r\n"
    status = r.append(b"INBOX", m4)
    assert status.startswith(b"NO [OVERQUOTA]"), status
    assert r.cmd(b"SELECT INBOX")[-1].startswith(b"OK [READ-WRITE]")
    out = r.cmd(b"COPY 1 Trash")
    assert out[-1].startswith(b"NO [OVERQUOTA]"), out
    # A MOVE keeps the count.
    out = r.cmd(b"MOVE 1 Trash")
    assert out[-1].startswith(b"OK"), out
    assert r.cmd(b"GETQUOTA \"\"")[0] == b"* QUOTA \"\" (STORAGE 2 1024 MESSAGE 3 3)\r\n"
    # An expunge makes room again.
    assert r.cmd(b"STORE 1 +FLAGS.SILENT (\\Deleted)")[-1] == b"OK STORE completed"
    assert r.cmd(b"EXPUNGE")[-1] == b"OK EXPUNGE completed"
    assert r.append(b"INBOX", m4).startswith(b"OK [APPENDUID")
    r.close()


def test_message_limit_only(server):
    user = fresh_user(server)
    server.cli("user", "quota", user, "0", "--messages", "2")
    r = Raw(server, user)
    # Only the resource with a limit is listed.
    assert quota_lines(r) == [b"* QUOTAROOT \"INBOX\" \"\"\r\n",
                              b"* QUOTA \"\" (MESSAGE 0 2)\r\n"]
    r.close()


def test_message_limit_smtp(server):
    user = fresh_user(server)
    server.cli("user", "quota", user, "0", "--messages", "2")
    smtp_send(server, user, "one")
    smtp_send(server, user, "two")
    assert len(server.wait_mail(user, 2)) == 2
    # At RCPT: the mailbox is full.
    with smtplib.SMTP(HOST, server.smtp_port, timeout=10, local_hostname="client.test") as s:
        s.ehlo()
        s.mail("a@remote.test")
        code, text = s.rcpt(user)
        assert code == 452 and text.startswith(b"4.2.2"), (code, text)
    # At the end of data: RCPT saw room, an APPEND took it meanwhile.
    user2 = fresh_user(server)
    server.cli("user", "quota", user2, "0", "--messages", "1")
    with smtplib.SMTP(HOST, server.smtp_port, timeout=10, local_hostname="client.test") as s:
        s.ehlo()
        s.mail("a@remote.test")
        assert s.rcpt(user2)[0] == 250
        r = Raw(server, user2)
        assert r.append(b"INBOX", message(200)).startswith(b"OK [APPENDUID")
        r.close()
        code, text = s.data(b"Subject: late\r\n\r\nbody\r\n")
        assert code == 452 and text.startswith(b"4.2.2"), (code, text)
    assert len(server.mail_list(user2)) == 1
    assert len(server.mail_list(user)) == 2
