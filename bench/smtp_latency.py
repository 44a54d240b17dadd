#!/usr/bin/python3
"""Single-connection SMTP latency probe for the Posthorn benchmarks (bench/run).

Sends N messages one after another over one SMTP connection and times, for each, the
interval from sending the end-of-data line (CRLF.CRLF) to receiving the complete final
reply. For a server that acknowledges only durable mail this is the commit latency.
Loopback targets only. Standard library only.

    smtp_latency.py 127.0.0.1:PORT --count 200 --size 10240 --from a@x.test --to b@y.test

prints one line "n=200 p50_ms=... p99_ms=... mean_ms=... max_ms=..." (or JSON with --json).
"""

import argparse
import ipaddress
import json
import socket
import sys
import time


class SmtpError(Exception):
    pass


class Client:
    """A minimal blocking SMTP client that reads whole (multi-line) replies."""

    def __init__(self, host, port, timeout=30.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def reply(self):
        """(code, text) of one complete reply."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise SmtpError("connection closed by server")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            if len(line) < 3 or not line[:3].isdigit():
                raise SmtpError("malformed reply line %r" % line)
            lines.append(line[4:].decode("utf-8", "replace"))
            if line[3:4] != b"-":
                return int(line[:3]), "\n".join(lines)

    def cmd(self, line, want):
        self.sock.sendall(line.encode() + b"\r\n")
        code, text = self.reply()
        if code != want:
            raise SmtpError("%s -> %d %s" % (line, code, text))
        return text

    def close(self):
        self.sock.close()


def make_body(size, index):
    """A message of about size octets: header fields, then 72-character lines; CRLF line
    ends, no line starts with a dot, ends with CRLF (the terminating dot is not included)."""
    head = ("From: <latency@load.test>\r\nTo: <rcpt@bench.test>\r\n"
            "Subject: latency probe %d\r\nMessage-ID: <lat-%d-%d@load.test>\r\n\r\n"
            % (index, index, time.monotonic_ns())).encode()
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n"
    body = bytearray(head)
    while len(body) + len(line) <= size:
        body += line
    if len(body) < size:
        body += b"x" * max(0, size - len(body) - 2) + b"\r\n"
    return bytes(body)


def measure(host, port, count, size, sender, rcpt, ehlo="latency.load.test"):
    """Send count messages on one connection; returns the list of end-of-data -> final
    reply times in seconds. Raises SmtpError when the server refuses anything."""
    c = Client(host, port)
    try:
        code, text = c.reply()
        if code != 220:
            raise SmtpError("greeting %d %s" % (code, text))
        c.cmd("EHLO " + ehlo, 250)
        samples = []
        for i in range(count):
            c.cmd("MAIL FROM:<%s>" % sender, 250)
            c.cmd("RCPT TO:<%s>" % rcpt, 250)
            c.cmd("DATA", 354)
            c.sock.sendall(make_body(size, i))
            t0 = time.perf_counter()
            c.sock.sendall(b".\r\n")
            code, text = c.reply()
            t1 = time.perf_counter()
            if code != 250:
                raise SmtpError("end of data -> %d %s" % (code, text))
            samples.append(t1 - t0)
        try:
            c.cmd("QUIT", 221)
        except (SmtpError, OSError):
            pass
        return samples
    finally:
        c.close()


def percentile(values, p):
    """The p-th percentile (0..100) by linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def summary(samples):
    """Dict of n, p50_ms, p99_ms, mean_ms, max_ms."""
    ms = [s * 1000.0 for s in samples]
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "mean_ms": sum(ms) / len(ms) if ms else float("nan"),
        "max_ms": max(ms) if ms else float("nan"),
    }


def parse_target(text):
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit("smtp_latency: only loopback targets are allowed, not %s" % host)
    return host, int(port)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("target", help="HOST:PORT (loopback only)")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--size", type=int, default=10240)
    ap.add_argument("--from", dest="sender", default="latency@load.test")
    ap.add_argument("--to", dest="rcpt", required=True)
    ap.add_argument("--json", action="store_true", help="print all samples as JSON")
    args = ap.parse_args(argv)
    host, port = parse_target(args.target)
    try:
        samples = measure(host, port, args.count, args.size, args.sender, args.rcpt)
    except (SmtpError, OSError) as e:
        print("smtp_latency: %s" % e, file=sys.stderr)
        return 1
    s = summary(samples)
    if args.json:
        s["samples_ms"] = [x * 1000.0 for x in samples]
        print(json.dumps(s))
    else:
        print("n=%d p50_ms=%.3f p99_ms=%.3f mean_ms=%.3f max_ms=%.3f"
              % (s["n"], s["p50_ms"], s["p99_ms"], s["mean_ms"], s["max_ms"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
