#!/usr/bin/python3
"""bench/largebox_bench.py: one large mailbox (issue 11), run by `bench/run --only largebox`
or alone (`bench/largebox_bench.py --sizes 2000,20000 --output -`).

For each N (full: 10,000 and 100,000 messages; quick: 1,000 and 10,000) one mailbox of N
messages on Posthorn (SQLite, bench/run's Posthorn class) and on Dovecot (bench/peers/peer.sh,
Maildir), both running at once. Posthorn is filled over IMAP with pipelined MULTIAPPEND (500
messages per command, LITERAL+); Dovecot's Maildir is written directly with the same
messages and flags (one in ten unseen), so that its first SELECT builds its index. Then:

- the first SELECT after the fill (one sample per server and N);
- R rounds (default 5), the servers interleaved A B A B: a new session (LOGIN not timed),
  SELECT INBOX (nothing changed since the last session), FETCH 1:* FLAGS (read in bulk),
  SEARCH UNSEEN, NOOP (median of 5), and one APPEND of a small message (\\Seen) into the
  selected mailbox; then another new session's SELECT, the first after that change (Dovecot
  rescans its Maildir then); median and min per server;
- the growth of each from the smaller N to the larger (ratio of medians) beside the ratio of
  the sizes (the issue's goal: at most linear; faster than Dovecot at the larger N for
  SELECT, FETCH 1:* FLAGS and SEARCH UNSEEN);
- at the larger N, the server's memory: before the sessions, with 20 sessions selected on
  the mailbox, and 10 s after they all logged out (Posthorn: VmRSS, RssAnon and the [heap]
  mapping of its one process, and its threads; Dovecot: PSS of its process tree). When gdb
  is there, Posthorn's RSS is read once more after calling malloc_trim(0) in the process
  (a diagnostic: how much of what stayed was free memory that glibc kept).

Standard library only. Reuses bench/run's server classes.
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import report_section  # noqa: E402

MARK_START = "<!-- largebox-bench start -->"
MARK_END = "<!-- largebox-bench end -->"
BATCH = 500  # messages per MULTIAPPEND command
PIPELINE = 4  # MULTIAPPEND commands in flight
SESSIONS = 20  # sessions selected at once for the memory figures
SETTLE_S = 10  # seconds after the last LOGOUT before the memory is read again
NOOPS = 5
# Seconds before each timed SELECT. Dovecot rescans its Maildir's cur/ on a SELECT within
# about a second of its previous rescan (it cannot trust a directory mtime that recent), so
# back-to-back sessions would time that rescan every time; real clients rarely open a
# mailbox twice a second. The first SELECT after a change rescans whatever the pause.
PAUSE_S = 2.0
TIMEOUT = 600  # seconds for any one response
# (key, label) of the timed commands, in the order of a round
MEASURES = (("select", "SELECT (new session, nothing changed)"),
            ("fetch_flags", "FETCH 1:* FLAGS"), ("search_unseen", "SEARCH UNSEEN"),
            ("noop", "NOOP (selected)"), ("append", "APPEND (one small message)"),
            ("select_changed", "SELECT after that APPEND (new session)"))
GOAL_FASTER = ("first_select", "select", "fetch_flags", "search_unseen", "select_changed")
SMALL = b"From: a@x.test\r\nTo: b@y.test\r\nSubject: small\r\n\r\n" + b"y" * 500 + b"\r\n"


def log_default(msg):
    print("[largebox %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def message(i):
    """Message i: about 700 octets with From, To, Subject, Date and Message-ID."""
    return (b"From: a%d@x.test\r\nTo: b@y.test\r\nSubject: message %d\r\n"
            b"Date: Sun, 6 Dec 2026 10:00:00 +0000\r\nMessage-ID: <%d@x.test>\r\n\r\n"
            % (i % 97, i, i)) + b"body line of the large mailbox benchmark\r\n" * 14


def seen(i):
    return i % 10 != 0


# ---------------------------------------------------------------------------
# The client


class Client:
    """A plain IMAP client on 127.0.0.1 that reads responses without parsing more than
    it needs (so that Python does not dominate the timing of large responses)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.sock.makefile("rb")
        self.n = 0
        greet = self.f.readline()
        if not greet.startswith(b"* OK"):
            raise RuntimeError("greeting %r" % greet[:80])

    def tag(self):
        self.n += 1
        return b"x%d" % self.n

    def cmd(self, text, literal=None):
        """Send a command (with one non-synchronizing literal), return its untagged lines;
        raise unless the tagged reply is OK."""
        tag = self.tag()
        if literal is None:
            self.sock.sendall(tag + b" " + text + b"\r\n")
        else:
            self.sock.sendall(tag + b" " + text + b" {%d+}\r\n" % len(literal) + literal + b"\r\n")
        return self._until(tag, text)

    def _until(self, tag, what=b""):
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError("connection closed during %r" % what[:40])
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                line += self.f.read(int(m.group(1))) + self.f.readline()
            if line.startswith(tag + b" "):
                if line.split()[1] != b"OK":
                    raise RuntimeError("%r: %r" % (what[:40], line[:200]))
                return lines
            lines.append(line)

    def bulk(self, text):
        """Send a command whose response has no literals and read it in large chunks;
        returns the number of untagged lines."""
        tag = self.tag()
        self.sock.sendall(tag + b" " + text + b"\r\n")
        end = b"\r\n" + tag + b" "
        buf = bytearray(self.f.read1(1 << 20))
        start = 0
        while True:
            i = buf.find(end, start)
            if i >= 0 and buf.endswith(b"\r\n"):
                if not buf[i + len(end):].startswith(b"OK"):
                    raise RuntimeError("%r: %r" % (text[:40], bytes(buf[i:i + 200])))
                return buf.count(b"\n", 0, i + 2)
            start = max(0, len(buf) - len(end))
            chunk = self.f.read1(1 << 20)
            if not chunk:
                raise RuntimeError("connection closed during %r" % text[:40])
            buf += chunk

    def login(self, user, pw):
        self.cmd(b'LOGIN %s "%s"' % (user.encode(), pw.encode()))

    def close(self):
        try:
            self.cmd(b"LOGOUT")
        except (OSError, RuntimeError):
            pass
        self.sock.close()


def exists_of(lines):
    for line in lines:
        f = line.split()
        if len(f) >= 3 and f[0] == b"*" and f[2] == b"EXISTS":
            return int(f[1])
    return None


def search_count(lines):
    return sum(len(line.split()) - 2 for line in lines if line.startswith(b"* SEARCH"))


# ---------------------------------------------------------------------------
# Filling


def fill_imap(port, user, pw, n, batch=None, pipeline=PIPELINE):
    """N messages into INBOX by MULTIAPPEND, BATCH per command, PIPELINE commands in flight
    (a thread sends, this one reads the tagged replies). Returns seconds."""
    batch = batch or BATCH
    c = Client(port)
    c.login(user, pw)
    tags = []
    commands = []
    for start in range(0, n, batch):
        parts = []
        for i in range(start, min(n, start + batch)):
            m = message(i)
            parts.append(b" %s {%d+}\r\n%s" % (b"(\\Seen)" if seen(i) else b"()", len(m), m))
        tag = c.tag()
        tags.append(tag)
        commands.append(tag + b" APPEND INBOX" + b"".join(parts) + b"\r\n")
    window = threading.Semaphore(pipeline)
    failed = []

    def send():
        try:
            for data in commands:
                window.acquire()
                c.sock.sendall(data)
        except OSError as e:
            failed.append(e)

    t0 = time.monotonic()
    th = threading.Thread(target=send, daemon=True)
    th.start()
    try:
        for tag in tags:
            c._until(tag, b"APPEND")
            window.release()
    finally:
        th.join(TIMEOUT)
    if failed:
        raise RuntimeError("MULTIAPPEND: %s" % failed[0])
    took = time.monotonic() - t0
    c.close()
    return took


def fill_maildir(maildir, n, owner="mail"):
    """The same N messages and flags written as a Maildir (cur/, flags in the names), owned
    by Dovecot's mail user. Returns seconds."""
    import pwd
    t0 = time.monotonic()
    for sub in ("cur", "new", "tmp"):
        os.makedirs(maildir / sub, exist_ok=True)
    stamp = 1765000000
    for i in range(n):
        m = message(i)
        name = "%d.M%dP1.largebox,S=%d:2,%s" % (stamp + i, i, len(m), "S" if seen(i) else "")
        with open(maildir / "cur" / name, "wb") as f:
            f.write(m)
    pw = pwd.getpwnam(owner)
    # Dovecot's home (maildir's parent) and everything below it belong to the mail user.
    for root, dirs, files in os.walk(maildir.parent):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for x in files:
            os.chown(os.path.join(root, x), pw.pw_uid, pw.pw_gid)
    os.chown(maildir.parent, pw.pw_uid, pw.pw_gid)
    return time.monotonic() - t0


# ---------------------------------------------------------------------------
# Measuring


def first_select(port, user, pw, n):
    c = Client(port)
    c.login(user, pw)
    t = time.perf_counter()
    lines = c.cmd(b"SELECT INBOX")
    ms = (time.perf_counter() - t) * 1000.0
    c.close()
    if exists_of(lines) != n:
        raise RuntimeError("first SELECT: EXISTS %r, expected %d" % (exists_of(lines), n))
    return ms


def one_round(port, user, pw, pause=None):
    """A new session: SELECT, FETCH 1:* FLAGS, SEARCH UNSEEN, NOOPs, APPEND; then a new
    session's SELECT, each SELECT `pause` seconds after the last command. {key: ms} and
    the counts seen."""
    pause = PAUSE_S if pause is None else pause
    time.sleep(pause)
    c = Client(port)
    c.login(user, pw)
    r = {}
    t = time.perf_counter()
    lines = c.cmd(b"SELECT INBOX")
    r["select"] = (time.perf_counter() - t) * 1000.0
    r["exists"] = exists_of(lines)
    t = time.perf_counter()
    r["flags_lines"] = c.bulk(b"FETCH 1:* FLAGS")
    r["fetch_flags"] = (time.perf_counter() - t) * 1000.0
    t = time.perf_counter()
    lines = c.cmd(b"SEARCH UNSEEN")
    r["search_unseen"] = (time.perf_counter() - t) * 1000.0
    r["unseen"] = search_count(lines)
    noops = []
    for _ in range(NOOPS):
        t = time.perf_counter()
        c.cmd(b"NOOP")
        noops.append((time.perf_counter() - t) * 1000.0)
    r["noop"] = statistics.median(noops)
    t = time.perf_counter()
    c.cmd(b"APPEND INBOX (\\Seen)", literal=SMALL)
    r["append"] = (time.perf_counter() - t) * 1000.0
    c.close()
    time.sleep(pause)
    c = Client(port)
    c.login(user, pw)
    t = time.perf_counter()
    lines = c.cmd(b"SELECT INBOX")
    r["select_changed"] = (time.perf_counter() - t) * 1000.0
    if exists_of(lines) != r["exists"] + 1:
        raise RuntimeError("SELECT after APPEND: EXISTS %r" % exists_of(lines))
    c.close()
    return r


def proc_mem(pid):
    """Posthorn's memory: VmRSS, RssAnon, RssFile, the [heap] mapping's Rss, the other
    anonymous mappings' Rss (glibc's thread arenas among them), threads; KiB."""
    out = {"rss": 0, "anon": 0, "file": 0, "heap": 0, "anon_maps": 0, "threads": 0}
    keys = {"VmRSS": "rss", "RssAnon": "anon", "RssFile": "file", "Threads": "threads"}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k = line.split(":")[0]
                if k in keys:
                    out[keys[k]] = int(line.split()[1])
        with open("/proc/%d/smaps" % pid) as f:
            name = None
            for line in f:
                first = line.split()
                if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                    name = first[5] if len(first) > 5 else ""
                elif first and first[0] == "Rss:":
                    if name == "[heap]":
                        out["heap"] += int(first[1])
                    elif name == "":
                        out["anon_maps"] += int(first[1])
    except OSError:
        pass
    return out


def malloc_trim(pid):
    """Call malloc_trim(0) in the process with gdb (a diagnostic); False without gdb."""
    gdb = shutil.which("gdb")
    if not gdb:
        return False
    p = subprocess.run([gdb, "-p", str(pid), "-batch", "-nx", "-ex",
                        "call (int) malloc_trim(0)"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=120)
    return p.returncode == 0


def memory(srv, port, user, pw, mem_of, sessions=SESSIONS, settle=SETTLE_S, trim_pid=None):
    """Memory before the sessions, with `sessions` selected, and `settle` s after logout."""
    r = {"before": mem_of()}
    cs = []
    for _ in range(sessions):
        c = Client(port)
        c.login(user, pw)
        c.cmd(b"SELECT INBOX")
        cs.append(c)
    time.sleep(0.5)
    r["selected"] = mem_of()
    for c in cs:
        c.close()
    time.sleep(settle)
    r["after"] = mem_of()
    if trim_pid is not None and malloc_trim(trim_pid):
        time.sleep(0.5)
        r["after_trim"] = mem_of()
    return r


# ---------------------------------------------------------------------------
# The run


def _med(xs):
    return statistics.median(xs) if xs else None


@contextlib.contextmanager
def server_pair(R, binary, d, user, pw, peer=True):
    """Posthorn and (unless peer is False) Dovecot serving user in the new directory d, as
    [("posthorn", server), ("dovecot", server)]; both are stopped on leaving the block."""
    d.mkdir(parents=True)
    os.chmod(d, 0o755)
    servers = []
    try:
        a = R.Posthorn(d, binary, [user], pop3=True)
        a.start()
        servers.append(("posthorn", a))
        if peer:
            pwfile = d / "peer-passwords"
            pwfile.write_text("%s {PLAIN}%s\n" % (user, pw))
            b = R.Peer(d, [user], pwfile)
            b.start()
            servers.append(("dovecot", b))
        yield servers
    finally:
        for _, s in servers:
            s.stop()


def run(R, binary, top, sizes, rounds=5, peer=True, sessions=SESSIONS, settle=SETTLE_S,
        pause=PAUSE_S, log=log_default):
    """Posthorn and Dovecot (unless peer is False) side by side, for each N in sizes; R is
    bench/run as a module. Returns a dict for report()."""
    user = R.RCPT
    pw = R.password(user)
    res = {"sizes": list(sizes), "rounds": rounds, "sessions": sessions, "settle_s": settle,
           "pause_s": pause,
           "batch": BATCH, "by_size": {}}
    for n in sizes:
        with server_pair(R, binary, Path(top) / ("largebox-%d" % n), user, pw, peer) as servers:
            a = servers[0][1]
            b = servers[1][1] if peer else None
            out = {k: {"rounds": []} for k, _ in servers}
            out["posthorn"]["fill_s"] = fill_imap(a.imap_port, user, pw, n)
            log("N=%d: Posthorn filled by MULTIAPPEND in %.1f s (%.0f msgs/s)"
                % (n, out["posthorn"]["fill_s"], n / out["posthorn"]["fill_s"]))
            if peer:
                out["dovecot"]["fill_s"] = fill_maildir(b.maildir, n)
                log("N=%d: Maildir written in %.1f s" % (n, out["dovecot"]["fill_s"]))
            for k, s in servers:
                time.sleep(pause)
                out[k]["first_select"] = first_select(s.imap_port, user, pw, n)
                log("N=%d: %s first SELECT %.1f ms" % (n, s.name, out[k]["first_select"]))
            for i in range(rounds):
                for k, s in servers:
                    r = one_round(s.imap_port, user, pw, pause)
                    out[k]["rounds"].append(r)
                    log("N=%d round %d %-18s SELECT %.1f  FETCH FLAGS %.1f (%d lines)  "
                        "SEARCH UNSEEN %.1f (%d)  NOOP %.2f  APPEND %.1f  SELECT after %.1f ms"
                        % (n, i + 1, s.name, r["select"], r["fetch_flags"], r["flags_lines"],
                           r["search_unseen"], r["unseen"], r["noop"], r["append"],
                           r["select_changed"]))
            for k, _ in servers:
                rs = out[k]["rounds"]
                out[k]["median"] = {m: _med([r[m] for r in rs]) for m, _ in MEASURES}
                out[k]["min"] = {m: min(r[m] for r in rs) for m, _ in MEASURES}
                out[k]["unseen"] = rs[0]["unseen"]
                out[k]["exists"] = rs[0]["exists"]
            if n == max(sizes):
                pid = a.proc.pid
                out["posthorn"]["memory"] = memory(a, a.imap_port, user, pw,
                                                   lambda: proc_mem(pid), sessions, settle,
                                                   trim_pid=pid)
                log("N=%d: Posthorn memory %s" % (n, json.dumps(out["posthorn"]["memory"])))
                if peer:
                    out["dovecot"]["memory"] = memory(
                        b, b.imap_port, user, pw,
                        lambda: {"pss": R.tree_pss_kib(b.pop3_pids)}, sessions, settle)
                    log("N=%d: Dovecot memory %s" % (n, json.dumps(out["dovecot"]["memory"])))
            res["by_size"][n] = out
        # The directory stays until the end (bench/run's top): deleting 100,000 files slows
        # the next size's file creation (ext4 scans past recently freed inodes).
    return res


# ---------------------------------------------------------------------------
# The report


def _f(v, digits=1):
    return "–" if v is None else ("%.*f" % (digits, v))


def _n(n):
    return "{:,}".format(n)


def _mib(kib):
    return "–" if kib is None else "%.1f" % (kib / 1024.0)


def goals(res):
    """[(measure, posthorn growth, dovecot growth, linear?, faster at the larger N?)]"""
    sizes = res["sizes"]
    if len(sizes) < 2:
        return []
    lo, hi = res["by_size"][min(sizes)], res["by_size"][max(sizes)]
    scale = max(sizes) / float(min(sizes))
    rows = []
    for m, label in (("first_select", "first SELECT"),) + MEASURES:
        def val(side, k):
            if k not in side:
                return None
            return side[k]["first_select"] if m == "first_select" else side[k]["median"][m]
        pa, pb = val(lo, "posthorn"), val(hi, "posthorn")
        da, db = val(lo, "dovecot"), val(hi, "dovecot")
        g_p = pb / pa if pa else None
        g_d = db / da if da and db else None
        linear = g_p is not None and g_p <= scale
        faster = None
        if m in GOAL_FASTER and db is not None:
            faster = pb < db
        rows.append((m, label, g_p, g_d, linear, faster, scale))
    return rows


def report(res, info=None):
    sizes = res["sizes"]
    lines = [MARK_START, "## Large mailboxes", ""]
    lines.append(
        "One mailbox of N messages (~700 octets, 90 %% \\Seen) on Posthorn (SQLite; filled "
        "over IMAP by pipelined MULTIAPPEND, %d per command) and on Dovecot (Maildir written "
        "directly, so that its first SELECT builds its index), both running at once. Each "
        "round opens a new session (LOGIN not timed) on each server in turn and times SELECT, "
        "FETCH 1:* FLAGS (read in bulk), SEARCH UNSEEN, NOOP (median of %d) and one APPEND of "
        "a small message, then another new session's SELECT (the first after that change); "
        "each SELECT %.0f s after the last command (Dovecot rescans its Maildir on a SELECT "
        "within about a second of its previous rescan, and on the first after a change); "
        "median (min) of %d rounds, in ms. The first SELECT after the fill is one sample "
        "(bench/largebox_bench.py)." % (res["batch"], NOOPS, res.get("pause_s", 0),
                                         res["rounds"]))
    if info:
        lines.append("")
        lines.append("%s, %s cores, %s; Dovecot %s." % (
            info.get("date", "?"), info.get("cores", "?"), info.get("cpu", "?"),
            info.get("dovecot", "?")))
    lines.append("")
    lines.append("| N | measure | Posthorn ms | Dovecot ms | Posthorn / Dovecot |")
    lines.append("|---|---|---|---|---|")
    for n in sizes:
        out = res["by_size"][n]
        p, d = out["posthorn"], out.get("dovecot")
        lines.append("| %s | first SELECT (one sample) | %s | %s | %s |" % (
            _n(n), _f(p["first_select"]), _f(d["first_select"]) if d else "–",
            _f(p["first_select"] / d["first_select"], 2) if d else "–"))
        for m, label in MEASURES:
            digits = 2 if m == "noop" else 1
            pm, dm = p["median"][m], d["median"][m] if d else None
            lines.append("| %s | %s | %s (%s) | %s | %s |" % (
                _n(n), label, _f(pm, digits), _f(p["min"][m], digits),
                ("%s (%s)" % (_f(dm, digits), _f(d["min"][m], digits))) if d else "–",
                _f(pm / dm, 2) if dm else "–"))
    rows = goals(res)
    if rows:
        scale = rows[0][6]
        lines.append("")
        lines.append("Growth from %s to %s messages (%.0f×), ratio of the medians, and the "
                     "issue's goals: at most linear (≤ %.0f×), and faster than Dovecot at %s "
                     "for SELECT, FETCH 1:* FLAGS and SEARCH UNSEEN." % (
                         _n(min(sizes)), _n(max(sizes)), scale, scale, _n(max(sizes))))
        lines.append("")
        lines.append("| measure | Posthorn growth | Dovecot growth | at most linear | "
                     "faster than Dovecot |")
        lines.append("|---|---|---|---|---|")
        for m, label, g_p, g_d, linear, faster, _ in rows:
            lines.append("| %s | %s× | %s | %s | %s |" % (
                label, _f(g_p, 1), (_f(g_d, 1) + "×") if g_d else "–",
                "yes" if linear else "**no**",
                "–" if faster is None else ("yes" if faster else "**no**")))
    big = res["by_size"][max(sizes)]
    mem = big["posthorn"].get("memory")
    if mem:
        lines.append("")
        lines.append("Memory on the %s-message mailbox: before the sessions, with %d sessions "
                     "selected on it, and %d s after they all logged out (MiB). Posthorn: its "
                     "one process (VmRSS; RssAnon; the Rss of glibc's main heap, [heap]; of "
                     "the other anonymous mappings, thread arenas among them)%s." % (
                         _n(max(sizes)), res["sessions"], res["settle_s"],
                         "; the last column after calling malloc_trim(0) in the process with "
                         "gdb (a diagnostic, not something the server does)"
                         if "after_trim" in mem else ""))
        lines.append("")
        head = "| server | figure | before | %d selected | %d s after logout |" % (
            res["sessions"], res["settle_s"])
        sep = "|---|---|---|---|---|"
        if "after_trim" in mem:
            head += " after malloc_trim(0) |"
            sep += "---|"
        lines.append(head)
        lines.append(sep)
        for key, label in (("rss", "VmRSS"), ("anon", "RssAnon"), ("heap", "[heap]"),
                           ("anon_maps", "other anonymous")):
            row = "| Posthorn | %s | %s | %s | %s |" % (
                label, _mib(mem["before"][key]), _mib(mem["selected"][key]),
                _mib(mem["after"][key]))
            if "after_trim" in mem:
                row += " %s |" % _mib(mem["after_trim"][key])
            lines.append(row)
        dm = big.get("dovecot", {}).get("memory")
        if dm:
            row = "| Dovecot | PSS of the tree | %s | %s | %s |" % (
                _mib(dm["before"]["pss"]), _mib(dm["selected"]["pss"]),
                _mib(dm["after"]["pss"]))
            if "after_trim" in mem:
                row += " – |"
            lines.append(row)
        kept = mem["after"]["rss"] - mem["before"]["rss"]
        grew = mem["selected"]["rss"] - mem["before"]["rss"]
        lines.append("")
        lines.append("Posthorn kept %.1f of the %.1f MiB its sessions added (%d threads)." % (
            kept / 1024.0, grew / 1024.0, mem["after"]["threads"]))
    lines.append(MARK_END)
    return "\n".join(lines)


# bench/run puts the section into the report, or keeps an earlier one.
_SECTION = report_section.Section(MARK_START, MARK_END)
merge_into = _SECTION.merge_into
carry_over = _SECTION.carry_over


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000",
                    help="comma-separated mailbox sizes (10000,100000; --quick 1000,10000)")
    ap.add_argument("--quick", action="store_true", help="sizes 1000,10000 and 3 rounds")
    ap.add_argument("--rounds", type=int, help="rounds per size (5; --quick 3)")
    ap.add_argument("--pause", type=float, default=PAUSE_S,
                    help="seconds before each timed SELECT (%.0f)" % PAUSE_S)
    ap.add_argument("--no-peer", action="store_true", help="Posthorn only")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--output", default="-", help='merge the section into this Markdown file')
    args = ap.parse_args(argv)
    sizes = [int(x) for x in ("1000,10000" if args.quick and args.sizes == "10000,100000"
                              else args.sizes).split(",") if x.strip()]
    rounds = args.rounds or (3 if args.quick else 5)
    R = report_section.load_run()
    binary = os.environ.get("POSTHORN_BIN") or str(HERE.parent / "build" / "posthorn")
    with tempfile.TemporaryDirectory(prefix="posthorn-largebox-") as top:
        os.chmod(top, 0o755)
        try:
            res = run(R, binary, top, sizes, rounds, not args.no_peer, pause=args.pause)
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
