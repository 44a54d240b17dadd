"""Real IMAP clients against Posthorn: mbsync (isync) syncing both ways and re-syncing after
changes on both sides, with no errors or warnings."""

import os
import shutil
import smtplib
import subprocess
import time

import pytest

from conftest import HOST, USERS

DEMO = "demo@example.test"
MBSYNC = shutil.which("mbsync")


def deliver(server, subject):
    msg = "From: a@remote.test\r\nTo: %s\r\nSubject: %s\r\n\r\nbody of %s\r\n" % (
        DEMO, subject, subject)
    with smtplib.SMTP(HOST, server.smtp_port, timeout=10, local_hostname="client.test") as s:
        s.sendmail("a@remote.test", [DEMO], msg.encode())


def mbsync(server, home):
    rc = home / "mbsyncrc"
    (home / "mail").mkdir(exist_ok=True)
    if not rc.exists():
        rc.write_text(
            "IMAPAccount ph\nHost 127.0.0.1\nPort %d\nUser %s\nPass \"%s\"\nSSLType IMAPS\n"
            "CertificateFile %s\nSystemCertificates no\n\n"
            "IMAPStore ph-remote\nAccount ph\n\n"
            "MaildirStore ph-local\nPath %s/mail/\nInbox %s/mail/INBOX\nSubFolders Verbatim\n\n"
            "Channel ph\nFar :ph-remote:\nNear :ph-local:\nPatterns *\nCreate Both\n"
            "Expunge Both\nSyncState *\n" % (server.base + 993, DEMO, USERS[DEMO],
                                            server.dir / "tls" / "cert.pem", home, home))
    p = subprocess.run([MBSYNC, "-c", str(rc), "-a"], capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, HOME=str(home)))
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    bad = [l for l in out.splitlines()
           if ("error" in l.lower() or "warning" in l.lower())]
    assert not bad, out
    return out


def maildir_files(home, box):
    d = home / "mail" / box
    return sorted(f for sub in ("cur", "new") for f in (d / sub).glob("*") if f.is_file())


@pytest.mark.skipif(MBSYNC is None, reason="mbsync (isync) not installed")
def test_mbsync_two_way(server, tmp_path):
    deliver(server, "first")
    deliver(server, "second")
    mbsync(server, tmp_path)
    assert {p.name for p in (tmp_path / "mail").iterdir()} >= {
        "INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"}
    inbox = maildir_files(tmp_path, "INBOX")
    assert len(inbox) == 2
    stored = {m["uid"]: server.mail_cat(DEMO, m["uid"]) for m in server.mail_list(DEMO)}
    # mbsync stores LF line ends and adds its own X-TUID header; otherwise the bytes match.
    local = sorted(b"".join(l for l in f.read_bytes().splitlines(True)
                            if not l.startswith(b"X-TUID:")) for f in inbox)
    assert local == sorted(v.replace(b"\r\n", b"\n") for v in stored.values())

    # Changes on both sides: a local message in Sent, a local flag, remote new mail and a
    # remote deletion.
    sent_new = tmp_path / "mail" / "Sent" / "new"
    (sent_new / ("%d.local1:2,S" % time.time())).write_bytes(
        b"From: demo@example.test\r\nSubject: written offline\r\n\r\nhi\r\n")
    first = inbox[0]
    flagged = first.parent.parent / "cur" / (first.name.split(":2,")[0] + ":2,FS")
    first.rename(flagged)
    deliver(server, "third")
    gone = server.mail_list(DEMO)[-2]["uid"]  # the second message
    server.cli("mail", "del", DEMO, "INBOX", str(gone))
    mbsync(server, tmp_path)

    sent = server.mail_list(DEMO, "Sent")
    assert [m["subject"] for m in sent] == ["written offline"]
    assert "\\Seen" in sent[0]["flags"]
    inbox_remote = server.mail_list(DEMO)
    assert any("\\Flagged" in m["flags"] for m in inbox_remote), inbox_remote
    assert len(maildir_files(tmp_path, "INBOX")) == 2  # first (flagged) + third
    # A third run changes nothing and still reports nothing wrong.
    mbsync(server, tmp_path)
    assert len(server.mail_list(DEMO)) == 2
