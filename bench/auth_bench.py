"""bench/auth_bench.py: the authentication benchmark (issue 8 §5), run by `bench/run --only auth`.

Posthorn (A) and Dovecot (B, bench/peers/peer.sh with the same argon2id hashes) side by side:

1. logins/s: IMAP `LOGIN` + `LOGOUT` over fresh connections, 4 at a time; "first" = each
   account once on a freshly started server (every login hashes), "repeat" = the same
   accounts again, several times (Posthorn answers them from its authentication cache;
   Dovecot's default configuration has no auth cache).
2. imaptest's default profile (clients log in and out continuously) for S seconds with 10
   clients over the accounts: commands/s from its totals (../shared/imaptest).
3. a logged-in session's SELECT/NOOP latency (p50/p99/max) alone, then while 20 other
   connections log in and out continuously; Posthorn runs this phase with
   `auth_cache_ttl = 0`, so that every one of those logins hashes (the worst case).

Standard library only. Reuses bench/run's server classes.
"""

import mailbox
import multiprocessing
import os
import random
import socket
import subprocess
import threading
import time
from email.message import EmailMessage
from pathlib import Path

import report_section

HERE = Path(__file__).resolve().parent
IMAPTEST = Path(os.environ.get("IMAPTEST", HERE.parent.parent / "shared" / "imaptest" / "imaptest"))
if not IMAPTEST.exists():
    IMAPTEST = Path("/work/shared/imaptest/imaptest")

MARK_START = "<!-- auth-bench start -->"
MARK_END = "<!-- auth-bench end -->"


# ---------------------------------------------------------------------------
# A tiny IMAP client (plaintext on loopback)


class Imap:
    def __init__(self, port, timeout=60):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.f = self.sock.makefile("rb")
        self.n = 0
        line = self.f.readline()
        if not line.startswith(b"* OK"):
            raise RuntimeError("bad greeting %r" % line)

    def cmd(self, text):
        self.n += 1
        tag = b"t%d" % self.n
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError("connection closed during %r" % text.split()[0])
            if line.startswith(tag + b" "):
                return line[len(tag) + 1:]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def login_once(port, user, pw):
    c = Imap(port)
    try:
        r = c.cmd('LOGIN "%s" "%s"' % (user, pw))
        if not r.startswith(b"OK"):
            raise RuntimeError("login of %s failed: %r" % (user, r))
        c.cmd("LOGOUT")
    finally:
        c.close()


def login_rate(port, pairs, concurrency=4, max_secs=None):
    """Log every (user, password) of pairs in once, concurrency at a time (with max_secs: the
    pairs over and over until that time is up); returns logins/s."""
    it = iter(pairs)
    lock = threading.Lock()
    errors = []
    count = [0]
    deadline = None if max_secs is None else time.monotonic() + max_secs

    def work():
        nonlocal it
        while True:
            with lock:
                nxt = next(it, None)
                if nxt is None and deadline is not None and time.monotonic() < deadline:
                    it = iter(pairs)
                    nxt = next(it, None)
                if nxt is not None and deadline is not None and time.monotonic() >= deadline:
                    nxt = None
            if nxt is None:
                return
            try:
                login_once(port, *nxt)
                with lock:
                    count[0] += 1
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(str(e))
                return

    t0 = time.monotonic()
    th = [threading.Thread(target=work) for _ in range(concurrency)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    dt = time.monotonic() - t0
    if errors:
        raise RuntimeError("logins failed: %s" % errors[:3])
    return count[0] / dt


# ---------------------------------------------------------------------------
# Latency of a working session while others log in


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def session_latency(c, secs, interval=0.01):
    """SELECT INBOX and NOOP in turn, one every interval seconds for secs: ms each."""
    out = []
    i = 0
    end = time.monotonic() + secs
    while time.monotonic() < end:
        t = time.perf_counter()
        r = c.cmd("SELECT INBOX" if i % 2 == 0 else "NOOP")
        dt = time.perf_counter() - t
        out.append(dt * 1000)
        if not r.startswith(b"OK"):
            raise RuntimeError("working session: %r" % r)
        i += 1
        if dt < interval:
            time.sleep(interval - dt)
    return out


def _churn_process(port, others, churners, stop, done, failed):
    """Child process: churners threads loop over LOGIN/LOGOUT until stop is set."""
    def churn(i):
        user, pw = others[i % len(others)]
        while not stop.is_set():
            try:
                login_once(port, user, pw)
                with done.get_lock():
                    done.value += 1
            except Exception:  # noqa: BLE001 - counted
                with failed.get_lock():
                    failed.value += 1
                return

    th = [threading.Thread(target=churn, args=(i,)) for i in range(churners)]
    for t in th:
        t.start()
    for t in th:
        t.join()


def latency_under_logins(port, worker, others, secs=10.0, churners=20):
    """p50/p99/max ms of SELECT/NOOP (one every 10 ms) alone for secs, then as long again
    while `churners` connections log in and out in a loop. Returns a dict with the number of
    logins completed meanwhile."""
    c = Imap(port)
    r = c.cmd('LOGIN "%s" "%s"' % worker)
    if not r.startswith(b"OK"):
        raise RuntimeError("worker login failed: %r" % r)
    session_latency(c, min(1.0, secs))  # warm up
    idle = session_latency(c, secs)
    # The churners run in a child process: their threads must not compete with this one for
    # Python's interpreter lock, which would show up as latency of the probed session.
    done = multiprocessing.Value("l", 0)
    failed = multiprocessing.Value("l", 0)
    stop = multiprocessing.Event()
    child = multiprocessing.get_context("fork").Process(
        target=_churn_process, args=(port, others, churners, stop, done, failed))
    child.start()
    try:
        time.sleep(min(1.0, secs))  # let every churner be in the middle of a login
        before = done.value
        loaded = session_latency(c, secs)
        during = done.value - before
    finally:
        stop.set()
        child.join(60)
        if child.is_alive():
            child.kill()
            child.join()
    c.cmd("LOGOUT")
    c.close()
    if failed.value:
        raise RuntimeError("%d churn logins failed" % failed.value)

    def summary(v):
        return {"p50": pct(v, 50), "p99": pct(v, 99), "max": max(v)}

    return {"idle": summary(idle), "loaded": summary(loaded), "logins": during,
            "samples": len(loaded)}


# ---------------------------------------------------------------------------
# imaptest


def write_mbox(path, count=50, seed=8):
    rng = random.Random(seed)
    box = mailbox.mbox(str(path), create=True)
    for i in range(count):
        m = EmailMessage()
        m["From"] = "Sender %d <sender%d@load.test>" % (i, i)
        m["To"] = "user@bench.test"
        m["Subject"] = "imaptest message %d" % i
        m["Date"] = "Mon, 01 Jan 2024 10:%02d:00 +0000" % (i % 60)
        m["Message-ID"] = "<%d.imaptest@load.test>" % i
        m.set_content("".join("line %d of message %d %s\n" % (j, i, "x" * rng.randint(10, 70))
                              for j in range(rng.randint(5, 80))))
        box.add(m)
    box.flush()
    box.close()


def imaptest(port, userfile, mbox, secs, clients=10, n_users=20):
    """imaptest's default profile; returns (commands, commands/s, per-command totals)."""
    env = dict(os.environ, LD_LIBRARY_PATH="/usr/lib/dovecot")
    p = subprocess.run([str(IMAPTEST), "host=127.0.0.1", "port=%d" % port,
                        # user= is required by its argument check; userfile= wins
                        "user=unused", "users=%d" % n_users, "userfile=%s" % userfile,
                        "mbox=%s" % mbox, "clients=%d" % clients,
                        "secs=%d" % secs, "no_tracking"],
                       capture_output=True, text=True, timeout=secs + 120, env=env)
    out = p.stdout + p.stderr
    lines = out.splitlines()
    try:
        i = max(k for k, l in enumerate(lines) if l.startswith("Totals:"))
    except ValueError:
        raise RuntimeError("imaptest printed no totals (%d): %s" % (p.returncode, out[-2000:]))
    names = lines[i + 1].split()
    nums = None
    for line in lines[i + 2:]:
        f = line.split()
        if len(f) >= len(names) and all(x.isdigit() for x in f[:len(names)]):
            nums = [int(x) for x in f[:len(names)]]
            break
    if nums is None:
        raise RuntimeError("imaptest totals not understood: %s" % "\n".join(lines[i:i + 6]))
    totals = dict(zip(names, nums))
    total = sum(totals.values())
    errors = sum(1 for l in lines if "Error:" in l)
    return {"commands": total, "rate": total / secs, "totals": totals, "errors": errors}


# ---------------------------------------------------------------------------
# The run


def users(n, domain):
    return ["auth%02d@%s" % (i, domain) for i in range(n)]


def run(run_mod, binary, top, secs=30, n_users=40, repeat_secs=10, lat_secs=10.0, log=print):
    top = Path(top)
    R = run_mod
    accts = users(n_users, R.DOMAIN)
    pairs = [(u, R.password(u)) for u in accts]
    hashes = top / "auth-peer-passwords"
    scheme = R.argon2_hashes(accts, hashes)
    tdir = top / "auth-template"
    tdir.mkdir()
    os.chmod(tdir, 0o755)
    template = R.Posthorn(tdir, binary, accts, pop3=True)
    log("creating %d Posthorn accounts (argon2id each)" % n_users)
    template.make_template()
    mbox = top / "auth-imaptest.mbox"
    write_mbox(mbox)
    userfile = top / "auth-imaptest-users"
    userfile.write_text("".join("%s:%s\n" % p for p in pairs[:20]))

    class Tuned(R.Posthorn):
        extra = ""

        def _from_template(self):
            super()._from_template()
            with open(self.dir / "posthorn.conf", "a") as f:
                f.write(self.extra)

    def posthorn(name, extra=""):
        d = top / name
        d.mkdir()
        os.chmod(d, 0o755)
        s = Tuned(d, binary, accts, pop3=True, template=template)
        s.extra = extra
        return s

    def peer(name, auth_cache=False):
        d = top / name
        d.mkdir()
        os.chmod(d, 0o755)
        return R.Peer(d, accts, hashes, auth_cache=auth_cache)

    servers = (("A", lambda n: posthorn(n)), ("B", peer),
               ("C", lambda n: peer(n, auth_cache=True)))

    res = {"scheme": scheme, "users": n_users, "repeat_secs": repeat_secs, "secs": secs,
           "lat_secs": lat_secs}
    for key, make in servers:
        srv = make("auth-logins-" + key)
        try:
            srv.start()
            R.wait_port(srv.imap_port, 20)
            first = login_rate(srv.imap_port, pairs)
            repeat = login_rate(srv.imap_port, pairs, max_secs=repeat_secs)
        finally:
            srv.stop()
        res.setdefault("logins", {})[key] = {"first": first, "repeat": repeat}
        log("%s %-18s logins/s first %.1f  repeat %.1f  (x%.1f)"
            % (key, srv.name, first, repeat, repeat / first))
    for key, make in servers:
        srv = make("auth-imaptest-" + key)
        try:
            srv.start()
            R.wait_port(srv.imap_port, 20)
            it = imaptest(srv.imap_port, userfile, mbox, secs)
        finally:
            srv.stop()
        res.setdefault("imaptest", {})[key] = it
        log("%s %-18s imaptest default profile: %.1f commands/s (%d commands, %d error lines)"
            % (key, srv.name, it["rate"], it["commands"], it["errors"]))
    for key, make in (("A", lambda n: posthorn(n, "auth_cache_ttl = 0\n")), ("B", peer)):
        srv = make("auth-latency-" + key)
        try:
            srv.start()
            R.wait_port(srv.imap_port, 20)
            lat = latency_under_logins(srv.imap_port, pairs[0], pairs[1:21], secs=lat_secs)
        finally:
            srv.stop()
        res.setdefault("latency", {})[key] = lat
        log("%-18s SELECT/NOOP p99 %.2f ms alone, %.2f ms (max %.1f) during %d logins"
            % (srv.name, lat["idle"]["p99"], lat["loaded"]["p99"], lat["loaded"]["max"],
               lat["logins"]))
    return res


def report(res, info):
    L, I, T = res["logins"], res["imaptest"], res["latency"]

    def row(label, fmt, get, keys="ABC", bold=None):
        cells = []
        for k in "ABC":
            if k not in keys:
                cells.append("—")
                continue
            v = fmt % get(k)
            cells.append("**%s**" % v if k == bold else v)
        return "| %s | %s |" % (label, " | ".join(cells))

    out = [MARK_START, "## Authentication", "",
           "Run %s on %s (%s cores), Dovecot %s; `bench/run --only auth`. Passwords: %s on "
           "both. One run, not medians: compare the ratios." % (
               info["date"], info["cpu"], info["cores"], info["dovecot"], res["scheme"]), "",
           "| measure | Posthorn | Dovecot (defaults) | Dovecot, `auth_cache` on |",
           "|---|---:|---:|---:|"]
    out.append(row("IMAP logins/s, first login of each of %d accounts (4 at a time)"
                   % res["users"], "%.1f", lambda k: L[k]["first"]))
    out.append(row("IMAP logins/s, repeat logins (the same accounts over and over, %d s)"
                   % res["repeat_secs"], "%.1f", lambda k: L[k]["repeat"]))
    out.append(row("repeat / first", "%.1f×", lambda k: L[k]["repeat"] / L[k]["first"],
                   bold="A"))
    out.append(row("imaptest default profile, 10 clients, %d s: commands/s" % res["secs"],
                   "%.1f", lambda k: I[k]["rate"], bold="A"))
    out.append(row("imaptest \"Error:\" lines", "%d", lambda k: I[k]["errors"]))
    for what, label in (("idle", "alone"),
                        ("loaded", "while 20 connections log in and out (every login hashes)")):
        out.append(row("SELECT/NOOP of a logged-in session, %s: p50 / p99 / max ms" % label,
                       "%.2f / %.2f / %.1f",
                       lambda k: (T[k][what]["p50"], T[k][what]["p99"], T[k][what]["max"]),
                       keys="AB"))
    out.append(row("logins completed during that measurement", "%d",
                   lambda k: T[k]["logins"], keys="AB"))
    out += ["",
            "- **first / repeat**: fresh IMAP connections doing `LOGIN` and `LOGOUT`, 4 at a "
            "time. First logins hash (argon2id, 64 MiB) on every server; Posthorn answers a "
            "repeat login with the same password from its authentication cache "
            "(`auth_cache_ttl`, default 1 h: one account look-up, no hash). Dovecot's defaults "
            "have no auth cache (`auth_cache_size = 0`); the third column turns it on "
            "(`auth_cache_size = 10M`, `auth_cache_ttl = 1 hour`): it caches the passdb "
            "reply, and the password is still verified against the cached argon2id hash, so "
            "it barely changes a repeat login's cost.",
            "- **imaptest**: Dovecot's imaptest (`../shared/imaptest`, release-2.3) with its "
            "default profile and `no_tracking`, 20 accounts, 10 clients that log in and out "
            "continuously; commands/s is the sum of its totals over the run time.",
            "- **latency**: one logged-in session sends `SELECT INBOX` and `NOOP` in turn, one "
            "every 10 ms (client-side time per command), %d s alone, then %d s while 20 other "
            "connections loop over `LOGIN`/`LOGOUT`. Posthorn runs this phase with "
            "`auth_cache_ttl = 0` and Dovecot with its defaults, so every one of those logins "
            "hashes; Posthorn's `auth_workers` (default: one less than the cores, at least 1) hash at nice 19." % (
                res.get("lat_secs", 10), res.get("lat_secs", 10)),
            MARK_END]
    return "\n".join(out)


# bench/run puts the section into the report, or keeps an earlier one.
_SECTION = report_section.Section(MARK_START, MARK_END)
merge_into = _SECTION.merge_into
carry_over = _SECTION.carry_over
