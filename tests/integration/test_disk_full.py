"""Disk full (issue 13 §4): the server's data directory on a small tmpfs (8 MiB), filled by
a file the test grows and shrinks. Below `min_free_space` SMTP MAIL answers `452 4.3.1` on
port 25 and on submission, and IMAP APPEND `NO [UNAVAILABLE]`; a write that fails after DATA
(the spool file, or the database commit) answers `451 4.3.0`, never 250, and leaves no
spool file; IMAP writes of the database (STORE, COPY, CREATE) and a POP3 QUIT that cannot
commit get temporary refusals and change nothing; a full mailbox (quota) still answers
`452 4.2.2`, not the disk's code. After every case the store opens, `PRAGMA
integrity_check` passes, every message acknowledged before is intact, and once space is
freed the same server takes mail again, without a restart.

Mounting needs root (as in CI); elsewhere the module skips. SQLite only: on PostgreSQL the
database lives on another file system."""

import imaplib
import os
import poplib
import smtplib
import sqlite3
import subprocess
import time

import pytest

from conftest import DOMAINS, HOST, USERS, RawSMTP, Server, tls_client_context

pytestmark = pytest.mark.sqlite_only("the data directory's file system holds the database")

FS_SIZE = 8 << 20
MIN_FREE = 1 << 20
USER = "demo@example.test"
PASSWORD = USERS[USER]

SERVER_CONF = {
    "min_free_space": "1M",
    "limit_message_size": "3M",
    # Bodies up to 2 MiB go into the database: a commit of one needs as much again in the
    # WAL, which is how the commit (not only the spool file) is made to fail.
    "store_inline_max": "2M",
    "allow_plaintext_auth": "yes",
    "log_level": "debug",
}


def _mount_tmpfs(path):
    path.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d,mode=0755" % FS_SIZE, "tmpfs",
                        str(path)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip("cannot mount a tmpfs for the data directory (needs root): %s"
                    % p.stderr.strip())


class Disk:
    """The tmpfs and the filler file that takes its space."""

    def __init__(self, mnt):
        self.mnt = mnt
        self.filler = mnt / "filler"
        self.filler.touch()

    def free(self):
        st = os.statvfs(self.mnt)
        return st.f_bavail * st.f_frsize

    def fill_to(self, free):
        """Grow or shrink the filler until about `free` octets are left (page granularity);
        0 fills the file system completely."""
        have = self.free()
        size = self.filler.stat().st_size
        if have > free:
            want = size + (have - free)
            with open(self.filler, "ab") as f:
                block = b"\0" * 65536
                while size < want:
                    n = min(len(block), want - size)
                    try:
                        f.write(block[:n])
                        f.flush()
                    except OSError:
                        break  # full
                    size += n
        elif have < free:
            os.truncate(self.filler, max(0, size - (free - have)))
        return self.free()


@pytest.fixture(scope="module")
def disk(tmp_path_factory):
    base = tmp_path_factory.mktemp("disk_full")
    mnt = base / "mnt"
    _mount_tmpfs(mnt)
    srv = None
    try:
        conf = dict(SERVER_CONF, data_dir=str(mnt / "data"))
        srv = Server(base / "srv", extra_conf=conf)
        for d in DOMAINS:
            srv.cli("domain", "add", d)
        for addr, pw in USERS.items():
            srv.add_user(addr, pw)
        srv.add_user("full@example.test", "full-Secret-7", quota="20K")
        srv.start()
        d = Disk(mnt)
        d.server = srv
        yield d
        d.fill_to(FS_SIZE)
        srv.stop_and_check()
        check_store(srv, mnt)
    finally:
        if srv is not None and srv.proc is not None:
            srv.kill()
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


# ---------------------------------------------------------------------------
# helpers


def wait_until(fn, timeout=10.0, what="condition"):
    """Poll fn() until it returns a true value (the store measures free space at most once
    a second, so a changed disk shows within about a second)."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.1)


def message(size, subject="disk"):
    head = ("From: sender@other.test\r\nTo: %s\r\nSubject: %s\r\n\r\n" % (USER, subject)).encode()
    body = size - len(head)
    line = b"x" * 76 + b"\r\n"
    return head + line * (body // len(line)) + b"y" * (body % len(line))


def smtp_mail(disk, extra=""):
    """One port 25 session's reply to MAIL (a new session each time)."""
    c = RawSMTP(disk.server.smtp_port)
    c.send("EHLO client.test\r\n")
    c.read_reply()
    c.send("MAIL FROM:<sender@other.test>%s\r\n" % extra)
    r = c.read_reply()
    c.send("QUIT\r\n")
    c.sock.close()
    return r


def smtp_send(disk, data, to=USER):
    """Send one message on port 25: the reply to the end of data (or the earlier refusal)."""
    c = RawSMTP(disk.server.smtp_port, timeout=30)
    try:
        c.send("EHLO client.test\r\n")
        c.read_reply()
        for cmd in ("MAIL FROM:<sender@other.test>", "RCPT TO:<%s>" % to, "DATA"):
            c.send(cmd + "\r\n")
            r = c.read_reply()
            if r.code >= 400:
                return r
        c.send(data.replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n")
        return c.read_reply()
    finally:
        c.sock.close()


def spool_files(disk):
    return sorted(os.listdir(disk.mnt / "data" / "tmp"))


def inbox(disk, user=USER):
    return disk.server.mail_list(user)


def check_store(srv, mnt):
    """The database opens and passes SQLite's integrity check."""
    db = sqlite3.connect(str(mnt / "data" / "posthorn.db"))
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        db.close()


# ---------------------------------------------------------------------------
# below min_free_space: refused before the message


def test_mail_refused_below_min_free_space(disk):
    srv = disk.server
    assert smtp_send(disk, message(2000, "before")).code == 250
    before = inbox(disk)
    disk.fill_to(MIN_FREE // 2)
    r = wait_until(lambda: (lambda r: r if r.code == 452 else None)(smtp_mail(disk)),
                   what="452 at MAIL")
    assert r.lines == ["4.3.1 Insufficient system storage"], r
    # Submission too (587, after STARTTLS and AUTH).
    with smtplib.SMTP(HOST, srv.submission_port, local_hostname="client.test",
                      timeout=10) as s:
        s.starttls(context=tls_client_context())
        s.login(USER, PASSWORD)
        code, text = s.mail(USER)
        assert (code, text) == (452, b"4.3.1 Insufficient system storage")
        # No transaction was started.
        assert s.rcpt(USER)[0] == 503
    assert inbox(disk) == before
    # Space freed: the same server takes mail again.
    disk.fill_to(4 << 20)
    wait_until(lambda: smtp_mail(disk).code == 250, what="250 at MAIL")
    assert smtp_send(disk, message(3000, "after")).code == 250
    assert len(inbox(disk)) == len(before) + 1


def test_mail_size_counts_against_free_space(disk):
    """SIZE= (RFC 1870) is added to min_free_space, as Postfix adds it to queue_minfree."""
    disk.fill_to(MIN_FREE + (512 << 10))
    r = wait_until(lambda: (lambda r: r if r.code == 452 else None)(
        smtp_mail(disk, " SIZE=%d" % (1 << 20))), what="452 at MAIL SIZE=1M")
    assert r.lines == ["4.3.1 Insufficient system storage"]
    assert smtp_mail(disk, " SIZE=100000").code == 250
    assert smtp_mail(disk).code == 250
    disk.fill_to(4 << 20)
