"""Real POP3 clients from Debian against the configuration `posthorn init` writes:
fetchmail over STLS on 110 (keep + UIDL, three runs with new mail in between: each message
fetched exactly once; then a run without keep that empties the maildrop), and getmail6
over implicit TLS on 995 with the server's certificate verified (two runs, read_all =
false, delete = false: each message once). Every delivered copy must be the stored
message (trace headers included) byte for byte, modulo the client's LF line ends and
fetchmail's own Received: field."""

import os
import re
import shutil
import stat
import subprocess

import pytest

from conftest import USERS, unique
from pop3_helpers import (BOB, DEMO, deliver_all, message, pop3_port, pop3s_port, stored_messages,
                          wait_pop3)

FETCHMAIL = shutil.which("fetchmail")
GETMAIL = shutil.which("getmail")
FETCHMAIL_RECEIVED = re.compile(
    rb"Received: from 127\.0\.0\.1 \[127\.0\.0\.1\]\n(?:[ \t][^\n]*\n)*")


@pytest.fixture(scope="module", autouse=True)
def pop3_ready(server):
    wait_pop3(server)


def write_private(path, text):
    path.write_text(text)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)


def write_mda(path, outdir):
    """An MDA that stores each message in its own file under outdir."""
    path.write_text('#!/bin/sh\nexec cat > "$(mktemp %s/msg.XXXXXXXX)"\n' % outdir)
    os.chmod(path, 0o700)


def delivered(outdir):
    return [p.read_bytes() for p in sorted(outdir.iterdir())]


def swaks_deliver(server, to, subject, body):
    p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % server.smtp_port, "--to", to,
                        "--from", "sender@remote.test", "--helo", "client.test",
                        "--header", "Subject: " + subject, "--body", body],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def lf(b):
    return b.replace(b"\r\n", b"\n")


# ---------------------------------------------------------------------------
# fetchmail


def fetchmail_rc(server, rcfile, mda, keep):
    write_private(rcfile, (
        "set no bouncemail\n"
        "set no syslog\n"
        "poll 127.0.0.1 service %d protocol POP3 uidl\n"
        "  user \"%s\" there with password \"%s\" is \"tester\" here\n"
        "  options %s no sslcertck %s\n"
        "  mda \"%s\"\n") % (pop3_port(server), DEMO, USERS[DEMO],
                            "keep" if keep else "no keep", "" if keep else "fetchall", mda))


def run_fetchmail(tmp, rcfile, idfile, expect_mail=True):
    env = dict(os.environ, HOME=str(tmp / "home"))
    (tmp / "home").mkdir(exist_ok=True)
    p = subprocess.run([FETCHMAIL, "-f", str(rcfile), "--idfile", str(idfile), "-v",
                        "--nodetach"], capture_output=True, text=True, env=env, timeout=120)
    out = p.stdout + p.stderr
    # 0: mail fetched, 1: no mail
    assert p.returncode == (0 if expect_mail else 1), "fetchmail exit %d:\n%s" % (
        p.returncode, out[-4000:])
    assert "POP3> STLS" in out, "fetchmail did not use STLS:\n" + out[-4000:]
    return out


@pytest.mark.skipif(FETCHMAIL is None, reason="fetchmail is not installed")
def test_fetchmail_keep_three_runs_then_delete(server, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    mda = tmp_path / "mda.sh"
    write_mda(mda, out_dir)
    rc = tmp_path / "fetchmailrc"
    ids = tmp_path / "fetchids"
    fetchmail_rc(server, rc, mda, keep=True)

    def check_run(expected_new):
        before = set(p.name for p in out_dir.iterdir())
        run_fetchmail(tmp_path, rc, ids)
        new = [out_dir.joinpath(n).read_bytes() for n in sorted(
            set(p.name for p in out_dir.iterdir()) - before)]
        got = sorted(FETCHMAIL_RECEIVED.sub(b"", m, count=1) for m in new)
        assert got == sorted(lf(m) for m in expected_new)

    stored_seen = {}
    # run 1: two messages (one through swaks)
    deliver_all(server, [message(unique("fm"), b".dot\r\nline\r\n")])
    swaks_deliver(server, DEMO, unique("fm-swaks"), "hello\n.\n..two\n")
    server.wait_mail(DEMO, 2)
    stored = stored_messages(server)
    assert len(stored) == 2
    check_run(list(stored.values()))
    stored_seen.update(stored)
    # run 2 and 3: new mail in between; only the new messages arrive
    for n in (1, 2):
        deliver_all(server, [message(unique("fm")) for _ in range(n)])
        stored = stored_messages(server)
        check_run([m for uid, m in stored.items() if uid not in stored_seen])
        stored_seen.update(stored)
    assert len(stored_seen) == 5
    assert len(server.mail_list(DEMO)) == 5          # keep: all still there
    # a fourth run without new mail fetches nothing
    before = len(list(out_dir.iterdir()))
    run_fetchmail(tmp_path, rc, ids, expect_mail=False)
    assert len(list(out_dir.iterdir())) == before

    # without keep (and with fetchall, a fresh id file): everything again, then deleted
    out2 = tmp_path / "out2"
    out2.mkdir()
    mda2 = tmp_path / "mda2.sh"
    write_mda(mda2, out2)
    rc2 = tmp_path / "fetchmailrc2"
    fetchmail_rc(server, rc2, mda2, keep=False)
    run_fetchmail(tmp_path, rc2, tmp_path / "fetchids2")
    got = sorted(FETCHMAIL_RECEIVED.sub(b"", m, count=1) for m in delivered(out2))
    assert got == sorted(lf(m) for m in stored_seen.values())
    assert server.mail_list(DEMO) == []


# ---------------------------------------------------------------------------
# getmail6


def getmail_rc(server, rcfile, mda):
    write_private(rcfile, (
        "[retriever]\n"
        "type = SimplePOP3SSLRetriever\n"
        "server = 127.0.0.1\n"
        "port = %d\n"
        "username = %s\n"
        "password = %s\n"
        "ca_certs = %s\n"
        "ssl_cert_hostname = %s\n"
        "\n"
        "[destination]\n"
        "type = MDA_external\n"
        "path = %s\n"
        "allow_root_commands = true\n"
        "unixfrom = false\n"
        "\n"
        "[options]\n"
        "read_all = false\n"
        "delete = false\n"
        "delivered_to = false\n"
        "received = false\n"
        "verbose = 2\n") % (pop3s_port(server), BOB, USERS[BOB],
                            server.dir / "tls" / "cert.pem", server.hostname, mda))


def run_getmail(rcfile, state):
    p = subprocess.run([GETMAIL, "--rcfile", str(rcfile), "--getmaildir", str(state)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, "getmail exit %d:\n%s" % (p.returncode, p.stdout + p.stderr)
    return p.stdout + p.stderr


@pytest.mark.skipif(GETMAIL is None, reason="getmail6 is not installed")
def test_getmail_two_runs(server, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    state = tmp_path / "state"
    state.mkdir()
    mda = tmp_path / "mda.sh"
    write_mda(mda, out_dir)
    rc = tmp_path / "getmailrc"
    getmail_rc(server, rc, mda)

    deliver_all(server, [message(unique("gm"), b".a\r\n..b\r\n", to=BOB),
                         message(unique("gm"), to=BOB)], rcpt=BOB)
    first = stored_messages(server, BOB)
    run_getmail(rc, state)
    assert sorted(delivered(out_dir)) == sorted(lf(m) for m in first.values())

    deliver_all(server, [message(unique("gm"), "8-bit: \u00e4\u00f6\u00fc\r\n", to=BOB)],
                rcpt=BOB)
    second = stored_messages(server, BOB)
    run_getmail(rc, state)
    assert sorted(delivered(out_dir)) == sorted(lf(m) for m in second.values())
    assert len(server.mail_list(BOB)) == 3            # delete = false
    # nothing new: nothing fetched
    run_getmail(rc, state)
    assert len(delivered(out_dir)) == 3
