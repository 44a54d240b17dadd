"""Smoke run of the benchmark harness (bench/) against Posthorn, so that it does not rot:
Postfix's smtp-source load generator with a few messages, the single-connection latency
client, the fsync probe, and the shell syntax and command line of the scripts. The real
benchmark (bench/run) is not part of the tests."""

import os
import subprocess
import sys
import time

import pytest

from conftest import HOST, REPO

BENCH = REPO / "bench"
sys.path.insert(0, str(BENCH))
import fsync_probe  # noqa: E402
import smtp_latency  # noqa: E402

SMTP_SOURCE = "/usr/sbin/smtp-source"
RCPT = "alice@example.test"
SERVER_CONF = {"limit_connections_per_ip": "0", "log_level": "warn"}


def count(srv, user=RCPT):
    return len(srv.mail_list(user))


def test_smtp_source_delivers_every_message(server):
    if not os.access(SMTP_SOURCE, os.X_OK):
        pytest.skip("%s missing (Debian package postfix; bench/peers/install.sh)" % SMTP_SOURCE)
    before = count(server)
    p = subprocess.run([SMTP_SOURCE, "-l", "2048", "-m", "5", "-s", "2",
                        "-f", "sender@load.test", "-t", RCPT,
                        "%s:%d" % (HOST, server.smtp_port)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "warning" not in p.stderr and "fatal" not in p.stderr, p.stderr
    # Posthorn replies 250 only once a message is durable: no waiting.
    assert count(server) == before + 5


def test_latency_client_times_each_message(server):
    before = count(server)
    t0 = time.monotonic()
    samples = smtp_latency.measure(HOST, server.smtp_port, 3, 4096, "lat@load.test", RCPT)
    wall = time.monotonic() - t0
    assert len(samples) == 3
    assert all(0 < s <= wall for s in samples), samples
    s = smtp_latency.summary(samples)
    assert s["n"] == 3 and 0 < s["p50_ms"] <= s["p99_ms"] <= s["max_ms"], s
    msgs = server.mail_list(RCPT)
    assert len(msgs) == before + 3
    assert {m["subject"] for m in msgs[-3:]} == {"latency probe %d" % i for i in range(3)}


def test_latency_message_body_is_exact_size_and_clean():
    for size in (200, 4096, 10240):
        body = smtp_latency.make_body(size, 7)
        assert len(body) == size
        assert body.endswith(b"\r\n")
        lines = body.split(b"\r\n")[:-1]
        assert not any(l.startswith(b".") for l in lines)
        assert b"\n" not in body.replace(b"\r\n", b"")


def test_latency_client_refuses_non_loopback():
    with pytest.raises(SystemExit):
        smtp_latency.parse_target("192.0.2.1:25")
    assert smtp_latency.parse_target("127.0.0.1:2525") == ("127.0.0.1", 2525)


def test_percentiles():
    assert smtp_latency.percentile([1, 2, 3, 4, 5], 50) == 3
    assert smtp_latency.percentile([1, 2], 50) == 1.5
    assert smtp_latency.percentile([5], 99) == 5


def test_fsync_probe(tmp_path):
    rate, n = fsync_probe.probe(str(tmp_path), 0.2)
    assert n > 0 and rate > 0
    assert os.listdir(tmp_path) == []


def test_scripts_parse():
    for sh in ("peers/peer.sh", "peers/install.sh"):
        p = subprocess.run(["bash", "-n", str(BENCH / sh)], capture_output=True, text=True)
        assert p.returncode == 0, (sh, p.stderr)
    for script in ("run", "smtp_latency.py", "fsync_probe.py"):
        path = BENCH / script
        assert os.access(path, os.X_OK), script
        p = subprocess.run([sys.executable, str(path), "--help"], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 0 and "usage" in p.stdout.lower(), (script, p.stderr)
