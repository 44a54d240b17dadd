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

from conftest import DOMAINS, HOST, USERS, RawSMTP, Server, reload_with, tls_client_context
from imap_helpers import Raw as RawIMAP

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
}


def _mount_tmpfs(path):
    path.mkdir()
    try:
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d,mode=0755" % FS_SIZE,
                            "tmpfs", str(path)], capture_output=True, text=True)
    except OSError as e:  # no mount binary, or not allowed to run it
        pytest.skip("cannot mount a tmpfs for the data directory: %s" % e)
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
    """The database passes SQLite's integrity check, every message file is named by a row
    (no orphans of failed deliveries) and every row's file is there, and the store opens."""
    data = mnt / "data"
    db = sqlite3.connect(str(data / "posthorn.db"))
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = {r[0] for r in db.execute("SELECT sha256 FROM messages WHERE content IS NULL")}
    finally:
        db.close()
    files = {f.name for d in (data / "messages").iterdir() if d.is_dir() for f in d.iterdir()}
    assert files == rows
    assert os.listdir(data / "tmp") == []
    assert srv.mail_list(USER)


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
    # The operator hears of it once, not once per refusal.
    assert srv.log_text().count("event=disk-low") == 1
    # Space freed: the same server takes mail again.
    disk.fill_to(4 << 20)
    wait_until(lambda: smtp_mail(disk).code == 250, what="250 at MAIL")
    assert srv.log_text().count("event=disk-ok") == 1
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


# ---------------------------------------------------------------------------
# a write that fails after DATA: 451 4.3.0, never 250


def test_spool_write_fails_451(disk):
    before = inbox(disk)
    free = disk.fill_to(MIN_FREE + (512 << 10))
    wait_until(lambda: smtp_mail(disk).code == 250, what="MAIL taken")
    # Bigger than what is free: the spool file cannot be written (a file body).
    r = smtp_send(disk, message(free + (256 << 10), "too big for the disk"))
    assert r.code == 451 and r.lines[0].startswith("4.3.0"), r
    assert spool_files(disk) == []
    assert inbox(disk) == before
    # BDAT (RFC 3030) the same.
    c = RawSMTP(disk.server.smtp_port, timeout=30)
    c.send("EHLO client.test\r\n")
    assert c.read_reply().code == 250
    c.send("MAIL FROM:<sender@other.test>\r\nRCPT TO:<%s>\r\n" % USER)
    for _ in range(2):
        assert c.read_reply().code == 250
    data = message(free + (256 << 10), "bdat")
    c.send(b"BDAT %d LAST\r\n" % len(data) + data)
    r = c.read_reply()
    assert r.code == 451 and r.lines[0].startswith("4.3.0"), r
    # The session goes on: a message that fits is taken.
    c.send("MAIL FROM:<sender@other.test>\r\nRCPT TO:<%s>\r\nDATA\r\n" % USER)
    assert [c.read_reply().code for _ in range(3)] == [250, 250, 354]
    c.send(message(1000, "fits") + b"\r\n.\r\n")
    assert c.read_reply().code == 250
    c.sock.close()
    assert spool_files(disk) == []
    assert [m["subject"] for m in inbox(disk)] == [m["subject"] for m in before] + ["fits"]
    disk.fill_to(4 << 20)


def test_commit_fails_451(disk):
    """The spool file fits, the database commit does not (the body goes into the WAL)."""
    before = inbox(disk)
    free = disk.fill_to(MIN_FREE + (800 << 10))
    size = free - (200 << 10)
    # The premise: the WAL has no room for the body already (it never shrinks).
    wal = disk.mnt / "data" / "posthorn.db-wal"
    assert not wal.exists() or wal.stat().st_size < size // 2
    wait_until(lambda: smtp_mail(disk).code == 250, what="MAIL taken")
    r = smtp_send(disk, message(size, "no room in the database"))
    assert r.code == 451 and r.lines[0].startswith("4.3.0"), r
    assert spool_files(disk) == []
    assert inbox(disk) == before
    # The writer recovers once space is back (SQLite rolled the transaction back).
    disk.fill_to(4 << 20)
    assert smtp_send(disk, message(5000, "after the failed commit")).code == 250
    assert inbox(disk)[-1]["subject"] == "after the failed commit"


# ---------------------------------------------------------------------------
# IMAP and POP3 on a full disk


def imap_login(disk, user=USER, password=PASSWORD):
    m = imaplib.IMAP4(HOST, disk.server.base + 143, timeout=30)
    m.login(user, password)
    return m


def fill_database(disk, m):
    """Fill the disk, then COPY until the database cannot grow: every COPY answered OK
    must be there, the first NO must be temporary and change nothing. The number of
    messages copied."""
    n = int(m.select("INBOX")[1][0])
    had = archived(m)
    disk.fill_to(0)
    copied = 0
    for i in range(400):
        typ, data = m.copy("1:*", "Archive")
        if typ != "OK":
            assert data[0].startswith(b"[UNAVAILABLE]"), data
            break
        copied += n
    else:
        pytest.fail("400 COPY commands on a full disk all succeeded")
    assert archived(m) == had + copied
    return copied


def archived(m):
    return int(m.status("Archive", "(MESSAGES)")[1][0].split()[-1].rstrip(b")"))


def wait_space(disk, low):
    """Until the server has seen the disk's new state (MAIL refused, or taken)."""
    want = 452 if low else 250
    wait_until(lambda: smtp_mail(disk).code == want, what="MAIL answered %d" % want)


def test_imap_on_full_disk(disk):
    srv = disk.server
    m = imap_login(disk)
    before = inbox(disk)
    assert len(before) >= 3
    bodies = {b["uid"]: srv.mail_cat(USER, b["uid"]) for b in before}
    had = len(srv.mail_list(USER, "Archive"))
    copied = fill_database(disk, m)
    wait_space(disk, low=True)
    # APPEND: refused below min_free_space, before the literal is sent.
    typ, data = m.append("INBOX", None, None, message(500, "append"))
    assert (typ, data) == ("NO", [b"[UNAVAILABLE] Insufficient system storage, try again "
                                  b"later"])
    # A non-synchronizing literal (RFC 7888) is on its way already: read, dropped, the
    # same NO, and the connection stays.
    raw = RawIMAP(srv, USER, PASSWORD)
    assert raw.append(b"INBOX", message(500, "literal+")) == (
        b"NO [UNAVAILABLE] Insufficient system storage, try again later")
    assert raw.cmd(b"NOOP")[-1].startswith(b"OK")
    raw.close()
    # STORE and CREATE write the database: a temporary NO, and nothing changed.
    assert m.store("1", "+FLAGS", "(\\Flagged)") == ("NO", [b"[UNAVAILABLE] STORE failed"])
    assert m.create("NewFolder") == ("NO", [b"[UNAVAILABLE] CREATE failed: storage error"])
    assert b"\\Flagged" not in m.fetch("1", "(FLAGS)")[1][0]
    assert m.list('""', "NewFolder")[1] == [None]
    # MOVE (RFC 6851): in the source or in the target, never in neither nor both.
    in_archive = archived(m)
    typ, data = m._simple_command("MOVE", "1", "Archive")
    assert (typ, data) == ("NO", [b"[UNAVAILABLE] MOVE failed"])
    assert archived(m) == in_archive
    # Reads go on working.
    assert len(m.search(None, "ALL")[1][0].split()) == len(before)
    assert m.select("INBOX") == ("OK", [str(len(before)).encode()])
    assert m.fetch("1", "(BODY.PEEK[])")[1][0][1] == bodies[before[0]["uid"]]
    # Space freed: the same session writes again.
    disk.fill_to(4 << 20)
    wait_space(disk, low=False)
    assert m.store("1", "+FLAGS", "(\\Flagged)")[0] == "OK"
    assert b"\\Flagged" in m.fetch("1", "(FLAGS)")[1][0]
    assert m.create("NewFolder")[0] == "OK"
    assert m.append("NewFolder", None, None, message(500, "append"))[0] == "OK"
    assert m.copy("1:*", "Archive")[0] == "OK"
    m.logout()
    # Every message acknowledged before is intact.
    assert [b["uid"] for b in inbox(disk)] == [b["uid"] for b in before]
    for uid, body in bodies.items():
        assert srv.mail_cat(USER, uid) == body
    assert len(srv.mail_list(USER, "Archive")) == had + copied + len(before)


def test_pop3_quit_on_full_disk(disk):
    """A QUIT whose deletions cannot be committed answers -ERR and deletes nothing."""
    srv = disk.server
    before = inbox(disk)
    m = imap_login(disk)
    fill_database(disk, m)
    m.logout()
    p = poplib.POP3(HOST, srv.base + 110, timeout=30)
    p.user(USER)
    p.pass_(PASSWORD)
    count = p.stat()[0]
    assert count == len(before)
    p.dele(1)
    p.dele(2)
    with pytest.raises(poplib.error_proto) as e:
        p.quit()
    assert e.value.args[0].startswith(b"-ERR [SYS/TEMP]"), e.value.args
    assert inbox(disk) == before
    # Freed: the deletions go through.
    disk.fill_to(4 << 20)
    p = poplib.POP3(HOST, srv.base + 110, timeout=30)
    p.user(USER)
    p.pass_(PASSWORD)
    assert p.stat()[0] == count
    p.dele(1)
    assert p.quit().startswith(b"+OK")
    assert [b["uid"] for b in inbox(disk)] == [b["uid"] for b in before[1:]]


def test_check_off_write_fails_mid_message(disk):
    """min_free_space = 0 turns the check off (a reload applies it to new sessions): then
    the disk fills during the message itself, and the reply is still temporary."""
    srv = disk.server
    before = inbox(disk)
    reload_with(srv, {"min_free_space": "0"})
    try:
        disk.fill_to(512 << 10)
        assert smtp_mail(disk).code == 250
        r = smtp_send(disk, message(1 << 20, "bigger than the disk"))
        assert r.code == 451 and r.lines[0].startswith("4.3.0"), r
        m = imap_login(disk)
        typ, data = m.append("INBOX", None, None, message(1 << 20, "append"))
        assert (typ, data) == ("NO", [b"[UNAVAILABLE] Cannot store the message now"])
        m.logout()
        assert spool_files(disk) == []
        assert inbox(disk) == before
    finally:
        reload_with(srv, {"min_free_space": "1M"})
        disk.fill_to(4 << 20)


# ---------------------------------------------------------------------------
# quota and disk full are told apart


def test_quota_is_not_disk_full(disk):
    srv = disk.server
    full = "full@example.test"  # quota 20K
    disk.fill_to(4 << 20)
    wait_space(disk, low=False)
    # Plenty of disk, over quota: the quota's codes (RFC 3463 X.2.2), never X.3.1.
    c = RawSMTP(srv.smtp_port)
    c.send("EHLO client.test\r\n")
    c.read_reply()
    c.send("MAIL FROM:<sender@other.test> SIZE=30000\r\n")
    assert c.read_reply().code == 250
    c.send("RCPT TO:<%s>\r\n" % full)
    r = c.read_reply()
    assert (r.code, r.lines[0][:5]) == (552, "5.2.2"), r
    c.sock.close()
    assert smtp_send(disk, message(15000, "fits"), to=full).code == 250
    r = smtp_send(disk, message(10000, "over"), to=full)
    assert (r.code, r.lines[0][:5]) == (452, "4.2.2"), r
    m = imap_login(disk, full, "full-Secret-7")
    typ, data = m.append("INBOX", None, None, message(10000, "append"))
    assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]"), data
    # Disk low: the disk's codes, for an account over quota as for any other.
    disk.fill_to(MIN_FREE // 2)
    wait_space(disk, low=True)
    r = smtp_mail(disk)
    assert (r.code, r.lines[0][:5]) == (452, "4.3.1"), r
    typ, data = m.append("INBOX", None, None, message(100, "append"))
    assert typ == "NO" and data[0].startswith(b"[UNAVAILABLE]"), data
    m.logout()
    disk.fill_to(4 << 20)
    assert [x["subject"] for x in srv.mail_list(full)] == ["fits"]
