#!/usr/bin/python3
"""bench/slowread.py: server memory while one IMAP client FETCHes a large mailbox and reads
nothing, Posthorn beside Dovecot (issue 8 §2).

    bench/slowread.py [--messages 50] [--size-mib 20] [--stall 5] [--servers A,B]
                      [--no-build] [--keep]

For each server (A: Posthorn, release build; B: Dovecot as bench/run sets it up), on a fresh
instance in a temporary directory: APPEND two different messages of SIZE MiB, COPY them
until the mailbox holds MESSAGES messages (COPY shares the stored body in both servers, so
the disk is not filled), then one client sends `FETCH 1:* BODY.PEEK[]` with a 64 KiB socket
receive buffer and reads nothing for STALL seconds while the server's memory (PSS of its
process tree, sampled every 0.25 s) is watched; then it reads the whole answer and checks
every literal's size. Prints a Markdown table: the mailbox, the memory before, the growth
while the client stalled, and the read throughput afterwards. Standard library only; uses
bench/run's server classes.
"""

import argparse
import os
import random
import re
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import report_section  # noqa: E402

REPO = HERE.parent
MIB = 1024 * 1024


def message(tag, size):
    """A text message of about size octets (CRLF lines of printable ASCII)."""
    rnd = random.Random(tag)
    head = ("From: bench@load.test\r\nTo: user@bench.test\r\nSubject: slow read %s\r\n"
            "Message-ID: <%s@load.test>\r\n\r\n" % (tag, tag)).encode()
    pool = bytes(rnd.randrange(33, 127) for _ in range(8192))
    lines, total, n = [], len(head), 0
    while total < size:
        start = (n * 6151) % 7000
        line = b"%08d " % n + pool[start:start + 990] + b"\r\n"
        lines.append(line)
        total += len(line)
        n += 1
    return head + b"".join(lines)


class Client:
    """A minimal plaintext IMAP client (both servers allow it on loopback for the bench)."""

    def __init__(self, port, user, password, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(300)
        self.sock.connect(("127.0.0.1", port))
        self.f = self.sock.makefile("rb")
        self.n = 0
        if not self.f.readline().startswith(b"* OK"):
            raise RuntimeError("no IMAP greeting")
        self.ok(b'LOGIN "%s" "%s"' % (user.encode(), password.encode()))

    def send(self, text):
        self.n += 1
        tag = b"s%d" % self.n
        self.sock.sendall(tag + b" " + text + b"\r\n")
        return tag

    def read(self, tag, sizes=None):
        """Read up to tag's reply; literal sizes go to sizes (octets counted, not kept)."""
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError("connection closed")
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                left = int(m.group(1))
                if sizes is not None:
                    sizes.append(left)
                while left > 0:
                    got = self.f.read(min(left, MIB))
                    if not got:
                        raise RuntimeError("connection closed in a literal")
                    left -= len(got)
                continue
            if line.startswith(tag + b" "):
                return line[len(tag) + 1:].rstrip()

    def ok(self, text):
        reply = self.read(self.send(text))
        if not reply.startswith(b"OK"):
            raise RuntimeError("%r: %r" % (text[:40], reply))
        return reply

    def append(self, msg):
        tag = self.send(b"APPEND INBOX {%d}" % len(msg))
        if not self.f.readline().startswith(b"+"):
            raise RuntimeError("APPEND: no continuation")
        self.sock.sendall(msg + b"\r\n")
        reply = self.read(tag)
        if not reply.startswith(b"OK"):
            raise RuntimeError("APPEND: %r" % reply)

    def close(self):
        self.f.close()
        self.sock.close()


def fill(port, user, password, count, size):
    """APPEND two messages, COPY until the mailbox holds count; their sizes in order."""
    msgs = [message("a", size), message("b", size)]
    c = Client(port, user, password)
    for m in msgs:
        c.append(m)
    c.ok(b"SELECT INBOX")
    have = 2
    while have < count:
        n = min(have, count - have)
        c.ok(b"COPY 1:%d INBOX" % n)
        have += n
    c.close()
    return [len(msgs[i % 2]) for i in range(count)]


def measure(run, srv, count, size, stall):
    user = run.RCPT
    password = run.password(user)
    sizes = fill(srv.imap_port, user, password, count, size)
    c = Client(srv.imap_port, user, password, rcvbuf=64 * 1024)
    c.ok(b"EXAMINE INBOX")
    before = run.tree_pss_kib(srv.pids)
    sampler = run.MemSampler(srv.pids, 0.25)
    sampler.start()
    tag = c.send(b"FETCH 1:* BODY.PEEK[]")
    time.sleep(stall)
    stalled_peak = sampler.phase_peak_kib
    sampler.new_phase()
    t0 = time.monotonic()
    got = []
    reply = c.read(tag, got)
    seconds = time.monotonic() - t0
    sampler.stop()
    c.close()
    if not reply.startswith(b"OK") or got != sizes:
        raise RuntimeError("%s: FETCH answered %r, %d of %d literals right"
                           % (srv.name, reply, sum(a == b for a, b in zip(got, sizes)), count))
    return {"mailbox_mb": sum(sizes) / 1e6, "before_kib": before,
            "stall_growth_kib": max(0, stalled_peak - before),
            "read_peak_growth_kib": max(0, sampler.peak_kib - before),
            "read_mbps": sum(sizes) / 1e6 / seconds}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=50)
    ap.add_argument("--size-mib", type=int, default=20)
    ap.add_argument("--stall", type=float, default=5.0, help="seconds of not reading")
    ap.add_argument("--servers", default="A,B", help="A = Posthorn, B = Dovecot")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)
    run = report_section.load_run()
    binary = os.environ.get("POSTHORN_BIN") or str(REPO / "build" / "posthorn")
    run.prepare(binary, not args.no_build, ["smtp"])
    top = tempfile.mkdtemp(prefix="posthorn-slowread-")
    os.chmod(top, 0o755)
    rows = []
    try:
        for key in args.servers.split(","):
            d = Path(top) / key
            d.mkdir()
            os.chmod(d, 0o755)
            srv = run.Posthorn(d, binary, pop3=True) if key == "A" else run.Peer(d)
            try:
                srv.start()
                r = measure(run, srv, args.messages, args.size_mib * MIB, args.stall)
            finally:
                srv.stop()
            run.log("%s: %.0f MB mailbox, before %.1f MiB, +%.1f MiB while stalled, "
                    "+%.1f MiB at most while reading, %.0f MB/s"
                    % (srv.name, r["mailbox_mb"], r["before_kib"] / 1024,
                       r["stall_growth_kib"] / 1024, r["read_peak_growth_kib"] / 1024,
                       r["read_mbps"]))
            rows.append((srv.name, r))
    finally:
        run.stop_all()
        if not args.keep:
            shutil.rmtree(top, ignore_errors=True)
    print("| server | mailbox | PSS before | growth while the client reads nothing "
          "(%.0f s) | growth while reading | read MB/s |" % args.stall)
    print("|---|---|---|---|---|---|")
    for name, r in rows:
        print("| %s | %d × %d MiB (%.0f MB) | %.1f MiB | %.1f MiB | %.1f MiB | %.0f |"
              % (name, args.messages, args.size_mib, r["mailbox_mb"], r["before_kib"] / 1024,
                 r["stall_growth_kib"] / 1024, r["read_peak_growth_kib"] / 1024,
                 r["read_mbps"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
