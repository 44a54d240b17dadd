#!/usr/bin/python3
"""bench/scale_bench.py: many idle IMAP connections (issue 11), run by `bench/run --only scale`
or alone (`bench/scale_bench.py --connections 2000 --output -`).

N connections (quick 10,000; --full: as many as the descriptor limit allows) from many
127.x source addresses, each LOGIN + SELECT INBOX + IDLE, a share of them (10 %) over
implicit TLS (993); then one SMTP delivery per mailbox, and every session's time from that
delivery's SMTP 250 to its `* n EXISTS` line. Reports the server's memory growth per
connection, plain and TLS apart (Posthorn: VmRSS of its one process; Dovecot: PSS of its
process tree), and p50/p99/max of that latency. Memory is measured after one session per
mailbox is open (so that per-mailbox state is not charged to connections).

Dovecot (bench/peers/peer.sh: one imap process per connection, default_process_limit 1100,
no TLS configured) runs the same at the largest N it reaches: min(N, --peer-max, 1000).

Standard library only (asyncio for the clients). Reuses bench/run's server classes.
"""

import argparse
import asyncio
import json
import os
import resource
import smtplib
import ssl
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import report_section  # noqa: E402

MARK_START = "<!-- scale-bench start -->"
MARK_END = "<!-- scale-bench end -->"
PEER_MAX = 1000  # Dovecot's imap processes: peer.sh's default_process_limit is 1100
OPEN_TIMEOUT = 120  # seconds from connect to "+ idling" for one session


def log_default(msg):
    print("[scale %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def source_ip(i):
    """A 127.x source address for connection i: 250 connections per address."""
    a = i // 250
    return "127.%d.%d.%d" % (10 + a // 62500 % 200, a // 250 % 250 + 1, a % 250 + 1)


def fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    except (ValueError, OSError):
        pass
    return soft


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q / 100.0 * (len(v) - 1))))]


# ---------------------------------------------------------------------------
# The clients


class Session:
    def __init__(self, user, reader, writer, exists):
        self.user, self.reader, self.writer, self.exists = user, reader, writer, exists
        self.seen_at = None  # monotonic time of the new EXISTS


async def _until(reader, tag):
    lines = []
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed")
        lines.append(line)
        if line.startswith(tag + b" ") or (tag == b"+" and line.startswith(b"+")):
            return lines


async def open_session(port, ip, user, pw, ctx):
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, local_addr=(ip, 0), limit=1 << 16,
        server_hostname="" if ctx else None)
    greet = await reader.readline()
    if not greet.startswith(b"* OK"):
        raise ConnectionError("greeting %r" % greet[:60])
    writer.write(b"a LOGIN %s %s\r\n" % (user.encode(), pw.encode()))
    out = await _until(reader, b"a")
    if not out[-1].startswith(b"a OK"):
        raise ConnectionError("LOGIN %r" % out[-1][:80])
    writer.write(b"b SELECT INBOX\r\n")
    out = await _until(reader, b"b")
    if not out[-1].startswith(b"b OK"):
        raise ConnectionError("SELECT %r" % out[-1][:80])
    exists = 0
    for line in out:
        f = line.split()
        if len(f) == 3 and f[2] == b"EXISTS":
            exists = int(f[1])
    writer.write(b"c IDLE\r\n")
    await _until(reader, b"+")
    return Session(user, reader, writer, exists)


async def open_many(port, plan, ctx, parallel, log, what):
    """Open sessions for plan [(index, user, password)], parallel at a time."""
    sem = asyncio.Semaphore(parallel)
    sessions, errors = [], []

    async def one(i, user, pw):
        async with sem:
            try:
                # a server at its limit may leave a connection waiting: a failure, not a hang
                sessions.append(await asyncio.wait_for(
                    open_session(port, source_ip(i), user, pw, ctx), OPEN_TIMEOUT))
            except asyncio.TimeoutError:
                errors.append("no IDLE within %d s" % OPEN_TIMEOUT)
            except (OSError, ConnectionError, asyncio.IncompleteReadError, ssl.SSLError) as e:
                errors.append(str(e))

    t = time.monotonic()
    await asyncio.gather(*(one(i, u, p) for i, u, p in plan))
    log("%s: %d sessions in %.1f s, %d failed%s" % (
        what, len(sessions), time.monotonic() - t, len(errors),
        (" (first: %s)" % errors[0]) if errors else ""))
    return sessions, errors


async def watch(s):
    try:
        while True:
            line = await s.reader.readline()
            if not line:
                return
            f = line.split()
            if len(f) == 3 and f[2] == b"EXISTS" and int(f[1]) > s.exists:
                s.seen_at = time.monotonic()
                return
    except (OSError, ValueError):
        return


def deliver(smtp_port, users):
    """One message per mailbox, one after another: {user: monotonic time of its 250}."""
    done = {}
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=60, local_hostname="load.test") as c:
        for u in users:
            msg = ("From: scale@load.test\r\nTo: %s\r\nSubject: scale\r\n\r\nhello\r\n" % u)
            c.sendmail("scale@load.test", [u], msg.encode())
            done[u] = time.monotonic()
    return done


async def scale_round(server, users, password, n_plain, n_tls, parallel, mem_of, log,
                      tls_port=None):
    """Open the sessions, measure memory, deliver, measure latency. Returns a dict."""
    r = {"server": server.name}
    ctx = None
    if n_tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    m = len(users)
    warm = [(i, users[i % m], password(users[i % m])) for i in range(min(m, n_plain))]
    rest = [(i, users[i % m], password(users[i % m])) for i in range(len(warm), n_plain)]
    tls = [(i, users[i % m], password(users[i % m]))
           for i in range(n_plain, n_plain + n_tls)]
    all_sessions = []
    s, e = await open_many(server.imap_port, warm, None, parallel, log, "one per mailbox")
    all_sessions += s
    await asyncio.sleep(1.0)
    mem0 = mem_of()
    s, e1 = await open_many(server.imap_port, rest, None, parallel, log, "plain")
    all_sessions += s
    await asyncio.sleep(1.0)
    mem1 = mem_of()
    r["plain"] = len(s)
    r["plain_failed"] = len(e1)
    r["plain_kib_per_conn"] = (mem1 - mem0) / max(1, len(s))
    r["tls"] = 0
    if n_tls:
        s, e2 = await open_many(tls_port, tls, ctx, parallel, log, "TLS")
        all_sessions += s
        await asyncio.sleep(1.0)
        mem2 = mem_of()
        r["tls"] = len(s)
        r["tls_failed"] = len(e2)
        r["tls_kib_per_conn"] = (mem2 - mem1) / max(1, len(s))
    r["connections"] = len(all_sessions)
    r["mem_base_kib"] = mem0
    log("%s: %d connections, %.1f KiB/plain conn%s" % (
        server.name, len(all_sessions), r["plain_kib_per_conn"],
        (", %.1f KiB/TLS conn" % r["tls_kib_per_conn"]) if n_tls else ""))

    watchers = [asyncio.ensure_future(watch(x)) for x in all_sessions]
    loop = asyncio.get_running_loop()
    t250 = await loop.run_in_executor(None, deliver, server.smtp_port, users)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(w.done() for w in watchers):
        await asyncio.sleep(0.1)
    lat = [(x.seen_at - t250[x.user]) * 1000.0 for x in all_sessions if x.seen_at is not None]
    r["exists_seen"] = len(lat)
    r["latency_ms"] = {"p50": pct(lat, 50), "p99": pct(lat, 99),
                       "max": max(lat) if lat else None, "min": min(lat) if lat else None}
    log("%s: EXISTS in %d of %d sessions, p50 %.1f ms p99 %.1f ms" % (
        server.name, len(lat), len(all_sessions), r["latency_ms"]["p50"] or -1,
        r["latency_ms"]["p99"] or -1))
    for w in watchers:
        w.cancel()
    for x in all_sessions:
        x.writer.transport.abort()
    await asyncio.sleep(0.5)
    return r


# ---------------------------------------------------------------------------
# The run


def run(R, binary, top, connections, mailboxes=100, tls_share=0.1, peer=True,
        peer_max=PEER_MAX, parallel=200, log=log_default):
    """Posthorn, then Dovecot (unless peer is False); R is bench/run as a module."""
    limit = fd_limit()
    # The server holds one descriptor per connection, this process one too (plus slack).
    most = max(10, limit - 300)
    if connections > most:
        log("descriptor limit %d: %d connections instead of %d" % (limit, most, connections))
        connections = most
    mailboxes = max(1, min(mailboxes, connections))
    users = ["scale%d@%s" % (i, R.DOMAIN) for i in range(mailboxes)]
    n_tls = int(round(connections * tls_share))
    n_plain = connections - n_tls
    res = {"requested": connections, "fd_limit": limit, "mailboxes": mailboxes}
    d = Path(top) / "scale-posthorn"
    d.mkdir(parents=True)
    os.chmod(d, 0o755)
    srv = R.Posthorn(d, binary, users, pop3=True)
    # Room for every connection and the deliveries (the default limit is 10,000).
    srv.extra_conf = "limit_connections = %d\n" % (connections + 1000)
    srv.start()
    try:
        res["posthorn"] = asyncio.run(scale_round(
            srv, users, R.password, n_plain, n_tls, parallel, srv.rss_kib, log,
            tls_port=srv.base + 993))
        res["posthorn"]["mem"] = "VmRSS"
    finally:
        srv.stop()
    if peer:
        n_peer = min(connections, peer_max)
        d = Path(top) / "scale-peer"
        d.mkdir(parents=True)
        os.chmod(d, 0o755)
        p = R.Peer(d, users)
        p.start()
        try:
            res["dovecot"] = asyncio.run(scale_round(
                p, users, R.password, n_peer, 0, min(parallel, 50),
                lambda: R.tree_pss_kib(p.pop3_pids), log))
            res["dovecot"]["mem"] = "PSS of the process tree"
            res["dovecot"]["limit"] = ("peer.sh runs one imap process per connection with "
                                       "default_process_limit 1100: %d connections" % n_peer)
        finally:
            p.stop()
    return res


def _f(v, digits=1):
    return "–" if v is None else ("%.*f" % (digits, v))


def report(res, info=None):
    lines = [MARK_START, "## Scale: idle IMAP connections", ""]
    lines.append("N connections from many 127.x source addresses, each LOGIN + SELECT + IDLE "
                 "(10 %% over TLS for Posthorn), over %d mailboxes; then one SMTP delivery "
                 "per mailbox and each session's time from the SMTP 250 to its EXISTS line. "
                 "Descriptor limit of the run: %d (bench/scale_bench.py)."
                 % (res["mailboxes"], res["fd_limit"]))
    lines.append("")
    lines.append("| server | connections | memory | KiB per plain conn | KiB per TLS conn | "
                 "EXISTS seen | 250→EXISTS p50 ms | p99 ms | max ms |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for key, name in (("posthorn", "Posthorn"), ("dovecot", "Dovecot")):
        r = res.get(key)
        if not r:
            continue
        L = r["latency_ms"]
        lines.append("| %s | %d (%d plain, %d TLS) | %s | %s | %s | %d | %s | %s | %s |" % (
            name, r["connections"], r["connections"] - r["tls"], r["tls"], r["mem"],
            _f(r["plain_kib_per_conn"]), _f(r.get("tls_kib_per_conn")), r["exists_seen"],
            _f(L["p50"]), _f(L["p99"]), _f(L["max"])))
    if res.get("dovecot"):
        lines.append("")
        lines.append("Dovecot's limit: " + res["dovecot"]["limit"] + ".")
    lines.append(MARK_END)
    return "\n".join(lines)


# bench/run puts the section into the report, or keeps an earlier one.
_SECTION = report_section.Section(MARK_START, MARK_END)
merge_into = _SECTION.merge_into
carry_over = _SECTION.carry_over


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connections", type=int, default=10000,
                    help="connections (10000; --full: the descriptor limit)")
    ap.add_argument("--full", action="store_true", help="as many as the descriptor limit allows")
    ap.add_argument("--mailboxes", type=int, default=100)
    ap.add_argument("--tls-share", type=float, default=0.1)
    ap.add_argument("--no-peer", action="store_true", help="Posthorn only")
    ap.add_argument("--peer-max", type=int, default=PEER_MAX)
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--output", default="-", help='merge the section into this Markdown file')
    args = ap.parse_args(argv)
    R = report_section.load_run()
    binary = os.environ.get("POSTHORN_BIN") or str(HERE.parent / "build" / "posthorn")
    n = 10 ** 9 if args.full else args.connections
    with tempfile.TemporaryDirectory(prefix="posthorn-scale-") as top:
        os.chmod(top, 0o755)
        try:
            res = run(R, binary, top, n, args.mailboxes, args.tls_share, not args.no_peer,
                      args.peer_max)
        finally:
            R.stop_all()
    if args.json:
        print(json.dumps(res, indent=1))
    text = report(res)
    print(text)
    if args.output != "-":
        merge_into(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
