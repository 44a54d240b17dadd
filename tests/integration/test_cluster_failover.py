"""Failover to a promoted standby (issue 10): a node's store_url lists two PostgreSQL hosts
with target_session_attrs=read-write (libpq's host list). The primary goes away, the
standby is promoted, and the node writes again by itself, without a restart; mail that got
250 before the failover is there after it.

Two throw-away clusters from tests/pg_cluster.sh: a primary, and a streaming standby made
from it with pg_basebackup. Replication is asynchronous (PostgreSQL's default), so the test
waits until the standby has replayed the primary's last commit before the primary stops:
what the failover itself must not lose is only what a standby has (synchronous replication
is the operator's setting for more; see docs/cluster.md)."""

import imaplib
import os
import shutil
import smtplib
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import HOST, USERS, Server, unique
from imap_helpers import imap_ports, tls_ctx

REPO = Path(__file__).resolve().parents[2]
ALICE = "alice@example.test"
PG_CLUSTER = str(REPO / "tests" / "pg_cluster.sh")

pytestmark = [
    pytest.mark.skipif(
        not any(Path("/usr/lib/postgresql/%d/bin/initdb" % v).exists() for v in (15, 16, 17)),
        reason="PostgreSQL server binaries are not installed (tests/deps.sh installs them)"),
    pytest.mark.sqlite_only("runs PostgreSQL clusters of its own: once per suite is enough"),
]


def pg_cluster(*args):
    p = subprocess.run(["sh", PG_CLUSTER] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=180)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""


def psql(port, sql):
    p = subprocess.run(["psql", "-At", "-h", HOST, "-p", str(port), "-U", "postgres",
                        "-d", "posthorn_test", "-c", sql],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


@pytest.fixture
def pair():
    """A primary and its streaming standby; yields (primary dir, standby dir)."""
    top = tempfile.mkdtemp(prefix="posthorn-pgfo.")
    os.chmod(top, 0o755)
    primary, standby = top + "/primary", top + "/standby"
    try:
        pg_cluster("start", primary)
        pg_cluster("standby", primary, standby)
        yield primary, standby
    finally:
        pg_cluster("stop", standby)
        pg_cluster("stop", primary)
        shutil.rmtree(top, ignore_errors=True)


def port_of(d):
    return int(Path(d, "port").read_text())


def deliver(srv, subject):
    msg = "From: s@remote.test\r\nTo: %s\r\nSubject: %s\r\n\r\nbody\r\n" % (ALICE, subject)
    with smtplib.SMTP(HOST, srv.smtp_port, timeout=30, local_hostname="client.test") as s:
        assert not s.sendmail("s@remote.test", [ALICE], msg)


def test_failover_to_promoted_standby(pair, tmp_path_factory):
    primary, standby = pair
    url = ("postgresql://postgres@%s:%d,%s:%d/posthorn_test?target_session_attrs=read-write"
           % (HOST, port_of(primary), HOST, port_of(standby)))
    srv = Server(tmp_path_factory.mktemp("failover"), store_url=url)
    srv.cli("domain", "add", "example.test")
    srv.add_user(ALICE, USERS[ALICE])
    srv.start()
    try:
        before = unique("before")
        deliver(srv, before)
        # The standby has replayed everything the primary committed.
        lsn = psql(port_of(primary), "SELECT pg_current_wal_lsn()")
        deadline = time.monotonic() + 30
        while psql(port_of(standby),
                   "SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn" % lsn) != "t":
            assert time.monotonic() < deadline, "the standby does not catch up"
            time.sleep(0.2)

        pg_cluster("stop", primary)
        # Only a read-only standby is left: no 250 without a commit.
        msg = "Subject: %s\r\n\r\nx\r\n" % unique("during")
        with smtplib.SMTP(HOST, srv.smtp_port, timeout=60, local_hostname="client.test") as s:
            with pytest.raises(smtplib.SMTPException) as e:
                s.sendmail("s@remote.test", [ALICE], msg)
        assert "451" in str(e.value) or "4.3.0" in str(e.value), e.value

        pg_cluster("promote", standby)
        after = unique("after")
        deadline = time.monotonic() + 60
        while True:
            try:
                deliver(srv, after)
                break
            except smtplib.SMTPException:
                assert time.monotonic() < deadline, "the node did not fail over:\n" + \
                    srv.log_text()[-3000:]
                time.sleep(0.5)
        _, port = imap_ports(srv)
        c = imaplib.IMAP4_SSL(HOST, port, ssl_context=tls_ctx(), timeout=30)
        c.login(ALICE, USERS[ALICE])
        c.select("INBOX", readonly=True)
        for subject in (before, after):
            _, data = c.search(None, "SUBJECT", subject)
            assert len(data[0].split()) == 1, subject
        c.logout()
    finally:
        srv.stop_and_check()
