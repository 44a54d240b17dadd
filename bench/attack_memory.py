#!/usr/bin/python3
"""bench/attack_memory.py: server memory per connection under a connection flood (issue 13 §5).

    bench/attack_memory.py [--connections 2000] [--binary build/posthorn] [--keep]

On a fresh Posthorn (release build, `posthorn init` in a temporary directory, limits raised
so nothing is refused or timed out during the run) it opens, one scenario at a time, N
connections from loopback and measures the server's resident memory (VmRSS, and Pss from
/proc/PID/smaps_rollup) before and after, once the server has greeted all of them:

- imap-idle:      N IMAP connections, greeted, never a command (not logged in)
- imap-slowloris: N IMAP connections, each sent half a command line ("a LOGIN us") and stalled
- smtp-idle:      N port-25 connections, greeted, never a command
- smtp-slowloris: N port-25 connections, each stalled in the middle of "EHLO"
- imaps-handshake: N implicit-TLS IMAP connections that sent nothing (handshake pending)

and prints a Markdown table of the memory growth per connection. Each scenario runs on its
own fresh server (freed memory stays in glibc's arenas and would flatter the next one).
Standard library only.
"""

import argparse
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def mem_kib(pid):
    """(VmRSS, Pss) in KiB."""
    rss = pss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def wait_port(port, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def free_base():
    """A port base whose seven listener ports are free now."""
    for _ in range(100):
        base = random.randrange(20000, 60000, 1000)
        ok = True
        for p in (25, 110, 143, 465, 587, 993, 995):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", base + p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return base
    raise SystemExit("no free port base")


def start(binary, top, base):
    subprocess.run([binary, "init", str(top), "--hostname", "mx.bench.test", "--port-base",
                    str(base)], check=True, capture_output=True)
    conf = top / "posthorn.conf"
    with open(conf, "a") as f:
        f.write("log_level = warn\nlimit_connections_per_ip = 0\nlimit_connections = 100000\n"
                "limit_connection_rate_per_ip = 0\n"
                "limit_login_timeout = 1h\nlimit_tls_handshake_timeout = 1h\n"
                "limit_request_timeout = 1h\nsmtp_pregreet_wait = 0\n"
                "outbound_enabled = no\ninbound_checks = no\n")
    log = open(top / "serve.log", "wb")
    proc = subprocess.Popen([binary, "-c", str(conf), "serve"], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    for p in (25, 143, 993):
        if not wait_port(base + p, proc):
            proc.kill()
            raise SystemExit("the server did not start:\n" +
                             (top / "serve.log").read_text(errors="replace")[-2000:])
    time.sleep(1.0)
    return proc


def open_many(port, n, send=None, greet=True):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        socks.append(s)
    for s in socks:
        if greet:
            s.recv(512)  # the greeting: the session exists
        if send:
            s.sendall(send)
    return socks


def scenario(proc, port, n, send=None, greet=True):
    before = mem_kib(proc.pid)
    socks = open_many(port, n, send, greet)
    time.sleep(2.0)  # the server read what was sent
    after = mem_kib(proc.pid)
    for s in socks:
        s.close()
    return before, after


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--binary", default=str(REPO / "build" / "posthorn"))
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.connections + 200
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    n = args.connections
    rows = []
    for name, port, send, greet in (
            ("imap-idle", 143, None, True),
            ("imap-slowloris", 143, b"a LOGIN us", True),
            ("smtp-idle", 25, None, True),
            ("smtp-slowloris", 25, b"EH", True),
            ("imaps-handshake", 993, None, False)):
        # a fresh server each time: memory freed by one scenario stays in glibc's arenas
        # and would make the next one look cheaper
        top = Path(tempfile.mkdtemp(prefix="posthorn-attack-"))
        base = free_base()
        proc = start(args.binary, top, base)
        try:
            (rss0, pss0), (rss1, pss1) = scenario(proc, base + port, n, send, greet)
            rows.append((name, rss0, rss1, (rss1 - rss0) / n, (pss1 - pss0) / n))
        finally:
            proc.terminate()
            proc.wait(30)
            if not args.keep:
                shutil.rmtree(top, ignore_errors=True)
    print("| scenario (%d connections) | RSS before (MiB) | RSS after (MiB) | RSS KiB/conn | "
          "PSS KiB/conn |" % n)
    print("|---|---:|---:|---:|---:|")
    for name, rss0, rss1, per, pss_per in rows:
        print("| %s | %.1f | %.1f | %.1f | %.1f |" % (name, rss0 / 1024, rss1 / 1024, per,
                                                      pss_per))


if __name__ == "__main__":
    sys.exit(main())
