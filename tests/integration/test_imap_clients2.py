"""More real IMAP clients against Posthorn: curl's IMAP URLs (RFC 5092 style: fetch by UID and
section, list mailboxes, search, custom commands, upload, STARTTLS) compared with the stored
bytes, and offlineimap syncing a Maildir both ways and re-syncing after changes on both sides
with no errors or warnings."""

import hashlib
import imaplib
import itertools
import os
import shutil
import smtplib
import ssl
import subprocess
import time

import pytest

from imap_helpers import imap_ports, tls_ctx, wait_imap
from conftest import HOST

PASSWORD = "cli2-Secret-5"
CURL = shutil.which("curl")
OFFLINEIMAP = shutil.which("offlineimap")
_counter = itertools.count(1)


@pytest.fixture
def user(server):
    """A fresh account per test, so tests do not see each other's messages."""
    addr = "k%d@example.test" % next(_counter)
    server.add_user(addr, PASSWORD)
    wait_imap(server)
    return addr


def deliver(server, user, subject, body="Hello from SMTP.\r\n"):
    msg = "From: a@remote.test\r\nTo: %s\r\nSubject: %s\r\n\r\n%s" % (user, subject, body)
    with smtplib.SMTP(HOST, server.smtp_port, timeout=10, local_hostname="client.test") as s:
        s.sendmail("a@remote.test", [user], msg.encode())


def imap_login(server, user):
    m = imaplib.IMAP4_SSL(HOST, imap_ports(server)[1], ssl_context=tls_ctx(), timeout=30)
    m.login(user, PASSWORD)
    return m


# ---------------------------------------------------------------- curl

def curl(server, user, path, *args, password=PASSWORD, starttls=False, check=True):
    """Run curl on imaps://host:993-port/path (or imap:// with STARTTLS required);
    returns the CompletedProcess with bytes output."""
    if starttls:
        url = "imap://%s:%d/%s" % (HOST, imap_ports(server)[0], path)
        extra = ["--ssl-reqd"]
    else:
        url = "imaps://%s:%d/%s" % (HOST, imap_ports(server)[1], path)
        extra = []
    cmd = [CURL, "-sS", "-k", "--max-time", "20", "-u", "%s:%s" % (user, password),
           "--url", url] + extra + list(args)
    p = subprocess.run(cmd, capture_output=True, timeout=30)
    if check:
        assert p.returncode == 0, (cmd, p.returncode, p.stderr)
    return p


needs_curl = pytest.mark.skipif(CURL is None, reason="curl not installed")


@needs_curl
def test_curl_fetch_by_uid_equals_stored_bytes(server, user):
    deliver(server, user, "one")
    body = "".join("line %04d of a longer message, to make a bigger literal\r\n" % i
                   for i in range(3000))
    deliver(server, user, "two", body)
    msgs = server.wait_mail(user, 2)
    assert len(msgs) == 2
    for m in msgs:
        stored = server.mail_cat(user, m["uid"])
        assert curl(server, user, "INBOX;UID=%d" % m["uid"]).stdout == stored
        head, text = stored.split(b"\r\n\r\n", 1)
        got = curl(server, user, "INBOX;UID=%d;SECTION=HEADER" % m["uid"]).stdout
        assert got == head + b"\r\n\r\n"
        assert curl(server, user, "INBOX;UID=%d;SECTION=TEXT" % m["uid"]).stdout == text
        got = curl(server, user, "INBOX;UID=%d;SECTION=TEXT;PARTIAL=5.20" % m["uid"]).stdout
        assert got == text[5:25]
    # The same message by sequence number (MAILINDEX) and over STARTTLS on the other port.
    stored = server.mail_cat(user, msgs[1]["uid"])
    assert curl(server, user, "INBOX;MAILINDEX=2").stdout == stored
    assert curl(server, user, "INBOX;UID=%d" % msgs[1]["uid"], starttls=True).stdout == stored
    # A UID that does not exist: curl says the remote file was not found (exit 78).
    p = curl(server, user, "INBOX;UID=%d" % (msgs[1]["uid"] + 100), check=False)
    assert p.returncode == 78 and p.stdout == b"", p
    # Reading with BODY[] sets \Seen; the other message stays unseen.
    flags = {m["uid"]: m["flags"] for m in server.mail_list(user)}
    assert all("\\Seen" in f for f in flags.values()), flags


@needs_curl
def test_curl_list_search_examine_and_custom_commands(server, user):
    deliver(server, user, "apple pie")
    deliver(server, user, "banana split")
    deliver(server, user, "cherry apple")
    uids = [m["uid"] for m in server.wait_mail(user, 3)]
    assert len(uids) == 3

    # The root URL lists every mailbox.
    out = curl(server, user, "").stdout.decode()
    names = {l.rsplit(" ", 1)[1].strip('"') for l in out.splitlines()}
    assert all(l.startswith("* LIST (") for l in out.splitlines()), out
    assert names == {"INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"}, out
    assert '* LIST (\\HasNoChildren \\Sent) "/" "Sent"' in out.splitlines(), out

    out = curl(server, user, "INBOX", "-X", "UID SEARCH ALL").stdout
    assert out == b"* SEARCH %s\r\n" % b" ".join(b"%d" % u for u in uids), out
    # A search in the URL's query part.
    out = curl(server, user, "INBOX?SUBJECT%20apple").stdout
    assert out == b"* SEARCH 1 3\r\n", out
    out = curl(server, user, "INBOX?UID%20" + str(uids[1])).stdout
    assert out == b"* SEARCH 2\r\n", out

    out = curl(server, user, "", "-X", "EXAMINE INBOX").stdout.decode()
    lines = out.splitlines()
    assert "* 3 EXISTS" in lines, out
    assert "* OK [UIDNEXT %d] Predicted next UID" % (uids[-1] + 1) in lines, out
    assert any(l.startswith("* OK [UIDVALIDITY ") for l in lines), out
    assert any(l.startswith("* FLAGS (") for l in lines), out

    # Custom commands that change things, each in its own curl session.
    curl(server, user, "INBOX", "-X", "UID STORE %d +FLAGS (\\Flagged)" % uids[0])
    assert "\\Flagged" in server.mail_list(user)[0]["flags"]
    out = curl(server, user, "INBOX", "-X", "UID FETCH %d (FLAGS)" % uids[0]).stdout
    assert b"\\Flagged" in out and b"UID %d" % uids[0] in out, out
    curl(server, user, "", "-X", "CREATE Projects/Curl")
    out = curl(server, user, "", "-X", 'LIST "" "Projects/*"').stdout
    assert out == b'* LIST (\\HasNoChildren) "/" "Projects/Curl"\r\n', out
    out = curl(server, user, "", "-X", "STATUS INBOX (MESSAGES UIDNEXT)").stdout
    assert out == b'* STATUS "INBOX" (MESSAGES 3 UIDNEXT %d)\r\n' % (uids[-1] + 1) \
        or out == b"* STATUS INBOX (MESSAGES 3 UIDNEXT %d)\r\n" % (uids[-1] + 1), out

    # Wrong password: curl reports a login failure (exit 67) and gets nothing.
    p = curl(server, user, "INBOX;UID=%d" % uids[0], password="wrong", check=False)
    assert p.returncode == 67 and p.stdout == b"", p
    # A mailbox that does not exist: SELECT fails (curl also says 67 for that).
    p = curl(server, user, "NoSuchBox;UID=1", check=False)
    assert p.returncode != 0 and p.stdout == b"", p


@needs_curl
def test_curl_upload_appends_exact_bytes(server, user, tmp_path):
    msg = ("From: me@example.test\r\nTo: you@example.test\r\nSubject: =?UTF-8?B?w6TDtsO8?=\r\n"
           "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
           "8-bit body: \u00e4\u00f6\u00fc \u20ac\r\nsecond line\r\n").encode()
    f = tmp_path / "up.eml"
    f.write_bytes(msg)
    curl(server, user, "Drafts", "-T", str(f))
    drafts = server.mail_list(user, "Drafts")
    assert len(drafts) == 1
    assert server.mail_cat(user, drafts[0]["uid"], "Drafts") == msg
    assert curl(server, user, "Drafts;UID=%d" % drafts[0]["uid"]).stdout == msg
    # Upload into INBOX too, then the message is there by UID over STARTTLS.
    curl(server, user, "INBOX", "-T", str(f), starttls=True)
    inbox = server.mail_list(user)
    assert len(inbox) == 1
    assert curl(server, user, "INBOX;UID=%d" % inbox[0]["uid"]).stdout == msg


# ---------------------------------------------------------------- offlineimap

def cert_sha256(server):
    """SHA-256 of the server certificate (DER), for offlineimap's cert_fingerprint: its
    sslcacertfile check also wants the certificate's name (mx.example.test) to match the
    host it connects to, 127.0.0.1."""
    pem = (server.dir / "tls" / "cert.pem").read_text()
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def offlineimap(server, user, home):
    conf = home / "offlineimaprc"
    if not conf.exists():
        (home / "mail").mkdir()
        conf.write_text(
            "[general]\naccounts = ph\nmetadata = %s/meta\nui = basic\n\n"
            "[Account ph]\nlocalrepository = local\nremoterepository = remote\n\n"
            "[Repository local]\ntype = Maildir\nlocalfolders = %s/mail\n\n"
            "[Repository remote]\ntype = IMAP\nremotehost = %s\nremoteport = %d\n"
            "remoteuser = %s\nremotepass = %s\nssl = yes\ncert_fingerprint = %s\n"
            "tls_level = tls_secure\nssl_version = tls1_2\nmaxconnections = 1\n"
            % (home, home, HOST, imap_ports(server)[1], user, PASSWORD, cert_sha256(server)))
    p = subprocess.run([OFFLINEIMAP, "-o", "-u", "basic", "-c", str(conf)],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, HOME=str(home)))
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    bad = [l for l in out.splitlines() if "error" in l.lower() or "warning" in l.lower()]
    assert not bad, out
    return out


def maildir(home, box):
    d = home / "mail" / box
    return sorted(f for sub in ("cur", "new") for f in (d / sub).glob("*") if f.is_file())


def info_flags(path):
    return path.name.split(":2,", 1)[1] if ":2," in path.name else ""


@pytest.mark.skipif(OFFLINEIMAP is None,
                    reason="offlineimap not installed (Debian package offlineimap3)")
def test_offlineimap_two_way(server, user, tmp_path):
    deliver(server, user, "first")
    deliver(server, user, "second")
    deliver(server, user, "fourth")
    assert len(server.wait_mail(user, 3)) == 3
    m = imap_login(server, user)
    typ, data = m.append("Archive", "(\\Flagged)", None,
                         b"From: x@example.test\r\nSubject: archived\r\n\r\nold\r\n")
    assert typ == "OK", data
    m.logout()

    offlineimap(server, user, tmp_path)
    assert {p.name for p in (tmp_path / "mail").iterdir()} >= {
        "INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"}
    inbox = maildir(tmp_path, "INBOX")
    assert len(inbox) == 3
    stored = [server.mail_cat(user, x["uid"]) for x in server.mail_list(user)]
    # offlineimap keeps the message text, with local (LF) line ends.
    assert sorted(f.read_bytes().replace(b"\r\n", b"\n") for f in inbox) == \
        sorted(s.replace(b"\r\n", b"\n") for s in stored)
    archive = maildir(tmp_path, "Archive")
    assert len(archive) == 1 and "F" in info_flags(archive[0])

    # Changes on both sides. Local: a new message in Sent, the first INBOX message read and
    # flagged, the archived message deleted. Remote: new mail, the second INBOX message
    # removed, and flags set by another IMAP client on a new and on a synced message.
    sent_cur = tmp_path / "mail" / "Sent" / "cur"
    (sent_cur / ("%d_0.%d.localhost:2,S" % (time.time(), os.getpid()))).write_bytes(
        b"From: %s\nTo: x@example.test\nSubject: written offline\n\nhi there\n" % user.encode())
    by_subject = {}
    for f in inbox:
        subj = [l for l in f.read_bytes().splitlines() if l.startswith(b"Subject: ")][0]
        by_subject[subj[9:].decode()] = f
    first = by_subject["first"]
    first.rename(first.parent.parent / "cur" / (first.name.split(":2,")[0] + ":2,FS"))
    archive[0].unlink()
    deliver(server, user, "third")
    assert len(server.wait_mail(user, 4)) == 4
    remote = {x["subject"]: x["uid"] for x in server.mail_list(user)}
    server.cli("mail", "del", user, "INBOX", str(remote["second"]))
    m = imap_login(server, user)
    m.select("INBOX")
    for subject in ("third", "fourth"):
        typ, data = m.uid("STORE", str(remote[subject]), "+FLAGS", "(\\Answered)")
        assert typ == "OK", data
    m.logout()

    offlineimap(server, user, tmp_path)
    sent = server.mail_list(user, "Sent")
    assert [x["subject"] for x in sent] == ["written offline"], sent
    assert "\\Seen" in sent[0]["flags"]
    assert server.mail_cat(user, sent[0]["uid"], "Sent").endswith(b"\r\n\r\nhi there\r\n")
    inbox_remote = {x["subject"]: x["flags"] for x in server.mail_list(user)}
    assert set(inbox_remote) == {"first", "third", "fourth"}, inbox_remote
    assert "\\Flagged" in inbox_remote["first"] and "\\Seen" in inbox_remote["first"]
    assert server.mail_list(user, "Archive") == []
    local = {}
    for f in maildir(tmp_path, "INBOX"):
        subj = [l for l in f.read_bytes().splitlines() if l.startswith(b"Subject: ")][0]
        local[subj[9:].decode()] = info_flags(f)
    assert set(local) == {"first", "third", "fourth"}, local
    assert "R" in local["third"] and "R" in local["fourth"], local
    assert set(local["first"]) == set("FS"), local

    # A third run finds nothing to do and still reports nothing wrong.
    offlineimap(server, user, tmp_path)
    assert len(server.mail_list(user)) == 3
    assert len(maildir(tmp_path, "INBOX")) == 3
    assert len(server.mail_list(user, "Sent")) == 1
    assert len(maildir(tmp_path, "Sent")) == 1
