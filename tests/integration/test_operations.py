"""Running the server: privilege drop, SIGHUP reload, connection limits, idle timeout,
session log lines."""

import os
import pwd
import signal
import smtplib
import time

import pytest

from conftest import HOST, RawSMTP, USERS, make_server, wait_port


def send_simple(port, rcpts, sender="someone@remote.test"):
    with smtplib.SMTP(HOST, port, timeout=10, local_hostname="client.test") as s:
        s.ehlo("client.test")
        s.sendmail(sender, rcpts, b"Subject: ops\r\n\r\nhello\r\n")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
@pytest.mark.sqlite_only("checks the owner of posthorn.db")
def test_privilege_drop_to_configured_user(tmp_path_factory):
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    srv = make_server(tmp_path_factory, "privdrop", {"user": "nobody"})
    # pytest's temporary directories are private to root; the data directory's parents must
    # be traversable by the unprivileged user, as /var/lib would be.
    d = srv.dir
    while str(d) not in ("/", "/tmp"):
        os.chmod(d, os.stat(d).st_mode | 0o711)
        d = d.parent
    srv.start()
    try:
        status = open("/proc/%d/status" % srv.proc.pid).read()
        uid_line = [l for l in status.splitlines() if l.startswith("Uid:")][0].split()[1:]
        gid_line = [l for l in status.splitlines() if l.startswith("Gid:")][0].split()[1:]
        assert uid_line == [str(nobody.pw_uid)] * 4, status
        assert gid_line == [str(nobody.pw_gid)] * 4, status
        # The data directory was handed over: delivery still works.
        send_simple(srv.smtp_port, ["demo@example.test"])
        assert len(srv.wait_mail("demo@example.test", 1)) == 1
        assert os.stat(srv.dir / "data" / "posthorn.db").st_uid == nobody.pw_uid
    finally:
        srv.stop_and_check()


def test_privilege_drop_to_missing_user_refuses_to_start(tmp_path_factory):
    """A configured user that does not exist stops the start-up with a clear error."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    srv = make_server(tmp_path_factory, "privdrop_missing",
                      {"user": "no-such-user-posthorn"}, accounts=False)
    import subprocess
    from conftest import BIN
    p = subprocess.run([BIN, "-c", str(srv.conf), "serve"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode != 0
    assert "no-such-user-posthorn does not exist" in p.stderr


def test_sighup_reloads_limits_for_new_sessions(tmp_path_factory):
    srv = make_server(tmp_path_factory, "reload")
    srv.start()
    try:
        old = RawSMTP(srv.smtp_port)
        old.ehlo()
        srv.append_conf({"limit_recipients": 1})
        srv.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "event=reload result=ok" not in srv.log_text():
            assert time.monotonic() < deadline, srv.log_text()
            time.sleep(0.05)
        new = RawSMTP(srv.smtp_port)
        new.ehlo()
        assert new.cmd("MAIL FROM:<a@remote.test>").code == 250
        assert new.cmd("RCPT TO:<demo@example.test>").code == 250
        r = new.cmd("RCPT TO:<alice@example.test>")
        assert r.code == 452 and r.lines[0].startswith("4.5.3"), r
        # The session opened before the reload keeps the limits it started with.
        assert old.cmd("MAIL FROM:<a@remote.test>").code == 250
        assert old.cmd("RCPT TO:<demo@example.test>").code == 250
        assert old.cmd("RCPT TO:<alice@example.test>").code == 250
        old.close()
        new.close()
    finally:
        srv.stop_and_check()


def test_sighup_with_broken_config_keeps_running(tmp_path_factory):
    srv = make_server(tmp_path_factory, "reload_bad", accounts=False)
    srv.start()
    try:
        srv.append_conf({"no_such_key": 1})
        srv.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "event=reload result=failed" not in srv.log_text():
            assert time.monotonic() < deadline, srv.log_text()
            time.sleep(0.05)
        assert "no_such_key: unknown key" in srv.log_text()
        c = RawSMTP(srv.smtp_port)
        assert c.greeting.code == 220
        c.close()
    finally:
        srv.stop_and_check()


def test_connections_per_ip_limit(tmp_path_factory):
    srv = make_server(tmp_path_factory, "perip", {"limit_connections_per_ip": 2},
                      accounts=False)
    srv.start()
    try:
        # The start-up probes (wait_port) count until the server has accepted and seen
        # them close: retry until two sessions fit, then the third must not.
        deadline = time.monotonic() + 10
        while True:
            a = RawSMTP(srv.smtp_port)
            b = RawSMTP(srv.smtp_port)
            if a.greeting.code == 220 and b.greeting.code == 220:
                break
            a.close()
            b.close()
            assert time.monotonic() < deadline, srv.log_text()
            time.sleep(0.05)
        c = RawSMTP(srv.smtp_port)
        assert c.greeting.code == 421 and c.greeting.lines[0].startswith("4.7.0"), c.greeting
        assert c.is_closed()
        assert a.cmd("QUIT").code == 221
        assert a.is_closed()
        a.close()
        # A slot is free again once a session ends.
        deadline = time.monotonic() + 5
        while True:
            d = RawSMTP(srv.smtp_port)
            if d.greeting.code == 220 or time.monotonic() > deadline:
                break
            d.close()
            time.sleep(0.1)
        assert d.greeting.code == 220
        d.close()
        b.close()
    finally:
        srv.stop_and_check()


def test_idle_timeout_closes_with_421(tmp_path_factory):
    srv = make_server(tmp_path_factory, "idle", {"limit_request_timeout": "2s"},
                      accounts=False)
    srv.start()
    try:
        c = RawSMTP(srv.smtp_port)
        c.ehlo()
        r = c.read_reply(timeout=6)
        assert r.code == 421 and r.lines[0].startswith("4.4.2"), r
        assert c.is_closed()
    finally:
        srv.stop_and_check()


def test_session_log_lines_carry_session_id(server):
    send_simple(server.smtp_port, ["demo@example.test"])
    log = server.log_text()
    delivered = [l for l in log.splitlines() if "event=delivered" in l]
    assert delivered, log
    sid = delivered[-1].split("session=")[1].split()[0]
    assert len(sid) == 12
    assert "session=%s proto=smtp event=connect ip=127.0.0.1" % sid in log
    assert "session=%s proto=smtp event=rcpt to=<demo@example.test> result=250" % sid in log
