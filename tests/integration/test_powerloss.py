"""Power loss, the quick slice of tests/durability/powerloss.py (`make powerloss` runs the
long one): the data directory lives on powerfs, which keeps only what was fsynced (file
bytes) and directory-fsynced (names). Skipped where FUSE cannot be mounted."""

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "durability"))
import powerloss  # noqa: E402

WHY = powerloss.fuse_unavailable()
pytestmark = [pytest.mark.skipif(WHY is not None, reason="powerfs: %s" % WHY),
              pytest.mark.sqlite_only("the data directory holds the store")]


def test_new_store_directories_survive_a_power_cut(tmp_path):
    """A store created from nothing: once `posthorn` returned, its directories are durable
    (a fan-out directory and its files are only as durable as messages/ itself)."""
    srv = Server(tmp_path / "srv")
    data = srv.dir / "data"
    subprocess.run(["rm", "-rf", str(data)], check=True)
    data.mkdir()
    (tmp_path / "empty").mkdir()
    layer = powerloss.Layer(data, tmp_path)
    layer.mount(tmp_path / "empty")
    try:
        srv.cli("domain", "list")
    finally:
        state = layer.unmount()
    survived = sorted(p.name for p in (state / "durable").iterdir())
    assert "messages" in survived and "tmp" in survived, survived
    assert "posthorn.db" in survived, survived


def test_acknowledged_mail_survives_a_power_cut(tmp_path):
    r = powerloss.run_powerloss(rounds=1, seconds=1, workdir=tmp_path, log=lambda s: None,
                                crash=False)
    assert r["acked_smtp"] + r["acked_imap"] + r["acked_queue"] >= 2, r
    assert (r["lost"], r["truncated"]) == (0, 0), r["details"]
    assert not r["problems"], r["problems"]


def test_negative_control_loses_mail(tmp_path):
    """Without fsync (the test build's POSTHORN_TEST_UNSAFE_NOSYNC) the same run must lose
    acknowledged mail: otherwise the harness could not see a loss."""
    r = powerloss.run_powerloss(rounds=1, seconds=1, unsafe=True, workdir=tmp_path,
                                log=lambda s: None, crash=False)
    assert r["acked_smtp"] + r["acked_imap"] + r["acked_queue"] >= 2, r
    assert r["lost"] > 0, r


def test_fanout_directory_made_before_a_crash_is_synced(tmp_path):
    """A crash right after mkdir of a fan-out directory (messages/xx/), before messages/ was
    synced: the restarted server stores the same bytes (an IMAP APPEND has no trace fields,
    so the same content address) into that existing directory and must still make its name
    durable before OK, or a power cut takes the directory and the message with it."""
    srv = Server(tmp_path / "srv", extra_conf={"store_inline_max": "0"})
    powerloss.setup_accounts(srv, users=[powerloss.IMAP_USER])
    data = srv.dir / "data"
    base = tmp_path / "base"
    data.rename(base)
    data.mkdir()
    layer = powerloss.Layer(data, tmp_path)
    layer.mount(base, env={"POWERFS_KILL_MKDIR": "/messages/"})
    rng = powerloss.random.Random(13)
    msg = powerloss.make_message(rng, "fanout-crash", "small")
    user = powerloss.IMAP_USER
    try:
        srv.start()
        c = powerloss.imaplib.IMAP4_SSL(powerloss.HOST, srv.base + 993,
                                        ssl_context=powerloss.tls_ctx(), timeout=30)
        c.login(user, powerloss.USERS[user])
        with pytest.raises((powerloss.imaplib.IMAP4.abort, OSError)):
            c.append("INBOX", None, None, msg)  # the server dies in the mkdir
        srv.proc.wait(30)
        srv.kill()
        srv.start()  # no power cut yet: the directory is there, its name not durable
        c = powerloss.imaplib.IMAP4_SSL(powerloss.HOST, srv.base + 993,
                                        ssl_context=powerloss.tls_ctx(), timeout=30)
        c.login(user, powerloss.USERS[user])
        typ, data_ = c.append("INBOX", None, None, msg)
        assert typ == "OK", data_
        srv.kill()
    finally:
        if srv.proc is not None:
            srv.kill()
        state = layer.unmount()
    assert (state / "durable" / "messages").is_dir()
    fanouts = [p.name for p in (state / "current" / "messages").iterdir()]
    assert len(fanouts) == 1, fanouts
    survived = state / "durable" / "messages" / fanouts[0]
    assert survived.is_dir() and any(survived.iterdir()), "the acknowledged APPEND was lost"
