"""Shared fixtures and helpers for Posthorn's integration tests.

Each test module gets its own server (module-scoped `server` fixture) in a temporary
directory, with its own ports. A module tunes the server by defining SERVER_CONF, a dict of
configuration keys appended to the generated posthorn.conf before the first start.

Helpers: Server (init, CLI, start/stop/kill, mail list/cat, queue list), RawSMTP (a raw
socket client that sends bytes and reads complete multi-line replies with timeouts).

The store engine: SQLite unless POSTHORN_TEST_STORE=postgresql, which puts every server on
PostgreSQL (a new database of its own in the cluster at POSTHORN_TEST_PGURL). Tests that look
at SQLite's files are marked `sqlite_only` and skip there.
"""

import os
import random
import re
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("POSTHORN_BIN") or str(REPO / "build" / "asan" / "posthorn")
HOST = "127.0.0.1"

# Accounts every module's server starts with: address -> password.
DOMAINS = ["example.test", "other.test"]
USERS = {
    "demo@example.test": "demo-Secret-1",
    "alice@example.test": "alice Secret 2",
    "bob@other.test": "bob-Secret-3",
}

# The whole suite on PostgreSQL (see the module comment).
TEST_STORE = os.environ.get("POSTHORN_TEST_STORE", "sqlite")
PGURL = os.environ.get("POSTHORN_TEST_PGURL", "")
_pg_databases = iter(range(1, 1 << 30))


def pg_fresh_database(base_url=None):
    """A new, empty database in the test cluster; returns its URL."""
    base_url = base_url or PGURL
    assert base_url, "POSTHORN_TEST_PGURL is not set"
    name = "ph_%d_%d" % (os.getpid(), next(_pg_databases))
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", base_url, "-c",
                    'CREATE DATABASE "%s"' % name], check=True, timeout=60,
                   capture_output=True)
    return base_url.rsplit("/", 1)[0] + "/" + name


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only(reason): the test looks at SQLite's "
                            "files or limits; skipped when POSTHORN_TEST_STORE=postgresql")
    if TEST_STORE not in ("sqlite", "postgresql"):
        raise pytest.UsageError("POSTHORN_TEST_STORE must be sqlite or postgresql")
    if TEST_STORE == "postgresql" and not PGURL:
        raise pytest.UsageError("POSTHORN_TEST_STORE=postgresql needs POSTHORN_TEST_PGURL")


# Every serve process a test started: what a failed teardown left running is killed at the
# end of the session, so that it holds no ports and no database connections afterwards.
# trylast: after pytest's own sessionfinish, which tears the fixtures down (with -x a
# module's server fixture is torn down there; killing it first made its teardown report
# exit status -9 as if the server had hung).
_started = []


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    for proc in _started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def pytest_collection_modifyitems(config, items):
    if TEST_STORE != "postgresql":
        return
    for item in items:
        m = item.get_closest_marker("sqlite_only")
        if m is not None:
            why = m.args[0] if m.args else "SQLite only"
            item.add_marker(pytest.mark.skip(reason="sqlite_only: " + why))


SANITIZER_PATTERNS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "AddressSanitizer:DEADLYSIGNAL",
)


def sanitizer_lines(text):
    """Lines of text that report a sanitizer finding."""
    return [l for l in text.splitlines() if any(p in l for p in SANITIZER_PATTERNS)]


def run_cli(args, conf=None, input=None, env=None, timeout=60):
    """Run the posthorn binary; returns CompletedProcess with str stdout/stderr.

    Fails the test when the binary's stderr reports a sanitizer finding.
    """
    cmd = [BIN]
    if conf is not None:
        cmd += ["-c", str(conf)]
    cmd += [str(a) for a in args]
    full_env = dict(os.environ)
    full_env.pop("POSTHORN_CONFIG", None)
    if env:
        full_env.update(env)
    p = subprocess.run(cmd, input=input, capture_output=True, text=True, env=full_env,
                       timeout=timeout)
    bad = sanitizer_lines(p.stderr)
    assert not bad, "sanitizer finding in %r:\n%s" % (cmd, p.stderr)
    return p


# ---------------------------------------------------------------------------
# Ports

_used_bases = set()


def _port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pick_port_base():
    """A port base N (a multiple of 100 below 32000) whose server ports are free.

    Random so that two suites running at once rarely collide; bases below the usual
    ephemeral range (32768) so that outgoing connections never take our ports.
    POSTHORN_TEST_PORT_SLICE=0 or 1 keeps to one half of the range: make test runs two
    suites at once (tests/run-all.sh) and gives each its own half, so that neither takes
    a base the other has just checked or just freed."""
    lo, hi = 20000, 32000
    half = os.environ.get("POSTHORN_TEST_PORT_SLICE")
    if half in ("0", "1"):
        # The main run starts several hundred servers, the other a few dozen. Base 10000
        # is `make run`'s demo (tests/run-demo.sh): a demo left running stays out of the way.
        lo, hi = (10100, 26000) if half == "0" else (26000, 32000)
    candidates = list(range(lo, hi, 100))
    random.shuffle(candidates)
    # Bases not used yet in this run first; then any whose ports are free again.
    for base in [b for b in candidates if b not in _used_bases] + candidates:
        if all(_port_free(base + p) for p in (25, 465, 587, 110, 995, 143, 993)):
            _used_bases.add(base)
            return base
    raise RuntimeError("no free port base")


def wait_port(port, timeout=15.0, proc=None):
    """Wait until something accepts connections on port; False on timeout or exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


# ---------------------------------------------------------------------------
# Server


MAIL_LINE = re.compile(r"^(\d+) (\S+) (\d+) (\S+) <([^>]*)>(?: (.*))?$")
# `queue list`: ID STATE DOMAIN <FROM> SIZE CREATED ATTEMPTS NEXT PENDING/TOTAL LAST-ERROR
QUEUE_LINE = re.compile(r"^(\d+) (\S+) (\S+) <(.*)> (\d+) (\S+) (\d+) (\S+) (\d+)/(\d+) (.*)$")
# `queue show`: one line per recipient
QUEUE_RCPT = re.compile(r"^recipient: <(.*)> (\S+) notify=(\S+) orcpt=(\S+) last-attempt=(\S+)"
                        r" remote-mta=(\S+) status=(\S+) error=(.*)$")


class Server:
    """One Posthorn instance: a directory made by `posthorn init`, and a serve process."""

    def __init__(self, directory, hostname="mx.example.test", extra_conf=None, store_url=None):
        self.dir = Path(directory)
        self.hostname = hostname
        self.base = pick_port_base()
        if store_url is None and TEST_STORE == "postgresql":
            store_url = pg_fresh_database()
        self.store_url = store_url
        self.env = None  # the server's environment when not the tests' own
        store = ["--store", "postgresql", "--store-url", store_url] if store_url else []
        p = run_cli(["init", self.dir, "--hostname", hostname, "--port-base", self.base] + store)
        assert p.returncode == 0, p.stderr
        self.conf = self.dir / "posthorn.conf"
        # Greet at once on port 25 (the pregreet test's own tests set a wait). Mail for
        # other domains stays queued unless a test turns outbound delivery on (with a DNS
        # server of its own: tests never ask the machine's resolver). For the same reason
        # the checks on arrival (SPF/DKIM/DMARC, Authentication-Results) are off unless a
        # test turns them on (test_inbound_auth.py). Every test connects from 127.0.0.1, many
        # modules far more often than limit_connection_rate_per_ip's 120 a minute: the rate
        # is off unless a test sets it (test_hostile_limits.py).
        self.append_conf({"smtp_pregreet_wait": "0", "outbound_enabled": "no",
                          "inbound_checks": "no", "limit_connection_rate_per_ip": "0"})
        if extra_conf:
            self.append_conf(extra_conf)
        self.proc = None
        self.log_path = None
        self.starts = 0

    # ports
    @property
    def smtp_port(self):
        return self.base + 25

    @property
    def submission_port(self):
        return self.base + 587

    @property
    def submissions_port(self):
        return self.base + 465

    def append_conf(self, settings):
        with open(self.conf, "a") as f:
            for k, v in settings.items():
                f.write("%s = %s\n" % (k, v))

    def _rebase(self):
        """Move the listeners to a new free port base (after a lost race for ports)."""
        old = self.base
        self.base = pick_port_base()
        text = self.conf.read_text()
        for p in (25, 465, 587, 110, 995, 143, 993):
            text = text.replace("127.0.0.1:%d\n" % (old + p), "127.0.0.1:%d\n" % (self.base + p))
        self.conf.write_text(text)

    # CLI
    def cli(self, *args, input=None, check=True):
        p = run_cli(list(args), conf=self.conf, input=input)
        if check:
            assert p.returncode == 0, "posthorn %s failed (%d): %s" % (
                " ".join(map(str, args)), p.returncode, p.stderr)
        return p

    def add_user(self, address, password, quota=None):
        args = ["user", "add", address]
        if quota is not None:
            args += ["--quota", quota]
        self.cli(*args, input=password + "\n")

    def mail_list(self, user, mailbox=None):
        """Parsed `mail list`: a list of dicts uid, flags, size, date, sender, subject."""
        args = ["mail", "list", user] + ([mailbox] if mailbox else [])
        out = self.cli(*args).stdout
        result = []
        for line in out.splitlines():
            if not line.strip():
                continue
            m = MAIL_LINE.match(line)
            assert m, "unparsable mail list line: %r" % line
            result.append({
                "uid": int(m.group(1)), "flags": m.group(2), "size": int(m.group(3)),
                "date": m.group(4), "sender": m.group(5), "subject": m.group(6) or "",
            })
        return result

    def mail_cat(self, user, uid, mailbox="INBOX"):
        p = subprocess.run([BIN, "-c", str(self.conf), "mail", "cat", user, mailbox, str(uid)],
                           capture_output=True, timeout=60)
        assert not sanitizer_lines(p.stderr.decode(errors="replace")), p.stderr
        assert p.returncode == 0, p.stderr
        return p.stdout

    def queue_entries(self, domain=None):
        """`queue list [--domain D]`: one dict per entry."""
        args = ["queue", "list"] + (["--domain", domain] if domain else [])
        out = self.cli(*args).stdout
        result = []
        for line in out.splitlines():
            m = QUEUE_LINE.match(line)
            assert m, "unparsable queue list line: %r" % line
            result.append({
                "id": m.group(1), "state": m.group(2), "domain": m.group(3),
                "from": m.group(4), "size": int(m.group(5)), "created": m.group(6),
                "attempts": int(m.group(7)), "next": m.group(8), "pending": int(m.group(9)),
                "rcpts": int(m.group(10)),
                "last_error": "" if m.group(11) == "-" else m.group(11),
            })
        return result

    def queue_show(self, qid):
        """`queue show ID`: the entry's fields (dict) with "recipients", a list of dicts."""
        out = self.cli("queue", "show", str(qid)).stdout
        entry = {"recipients": []}
        for line in out.splitlines():
            m = QUEUE_RCPT.match(line)
            if m:
                entry["recipients"].append({
                    "address": m.group(1), "status": m.group(2), "notify": m.group(3),
                    "orcpt": m.group(4), "last_attempt": m.group(5), "remote_mta": m.group(6),
                    "code": m.group(7), "error": m.group(8)})
                continue
            key, sep, value = line.partition(": ")
            assert sep, "unparsable queue show line: %r" % line
            entry[key] = value
        return entry

    def queue_list(self):
        """One dict per queued recipient (entries expanded through `queue show`)."""
        result = []
        for e in self.queue_entries():
            for r in self.queue_show(e["id"])["recipients"]:
                result.append(dict(e, to=r["address"], status=r["status"],
                                   last_error=r["error"] if r["error"] != "-" else ""))
        return result

    def wait_mail(self, user, count, timeout=10.0, mailbox=None):
        """Poll `mail list` until user has at least count messages; returns the list."""
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.mail_list(user, mailbox)
            if len(msgs) >= count or time.monotonic() > deadline:
                return msgs
            time.sleep(0.1)

    # process
    def start(self):
        for attempt in range(3):
            self.starts += 1
            self.log_path = self.dir / ("serve-%d.log" % self.starts)
            self.log = open(self.log_path, "wb")
            self.proc = subprocess.Popen([BIN, "-c", str(self.conf), "serve"],
                                         stdout=self.log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.env)
            _started.append(self.proc)
            if all(wait_port(p, 20, self.proc) for p in
                   (self.smtp_port, self.submission_port, self.submissions_port)):
                self._wait_started()
                return
            self.kill()
            text = self.log_text()
            if "in use" in text.lower() and attempt < 2:
                self._rebase()
                continue
            raise AssertionError("server did not start:\n" + text)

    def _wait_started(self, timeout=20.0):
        """The ports listen before the server has dropped privileges and set up its signal
        handlers; "event=started" (logged at info and below) says it has."""
        if re.search(r"^log_level\s*=\s*(warn|error)", self.conf.read_text(), re.M):
            return
        deadline = time.monotonic() + timeout
        while "event=started" not in self.log_text():
            assert self.proc.poll() is None, "server exited:\n" + self.log_text()
            assert time.monotonic() < deadline, "no event=started:\n" + self.log_text()
            time.sleep(0.01)

    def log_text(self):
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def assert_clean_log(self):
        bad = sanitizer_lines(self.log_text())
        assert not bad, "sanitizer findings in server log:\n" + self.log_text()[-8000:]

    def stop(self, timeout=10.0):
        """SIGTERM; returns the exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            if os.environ.get("POSTHORN_TEST_HANG_DUMP"):
                subprocess.run(["gdb", "-p", str(proc.pid), "-batch", "-ex",
                                "thread apply all bt"], stdout=open(
                                    os.environ["POSTHORN_TEST_HANG_DUMP"], "a"),
                               stderr=subprocess.STDOUT)
            proc.kill()
            proc.wait()
            rc = None
        self.log.close()
        return rc

    def kill(self):
        """SIGKILL, no cleanup (a crash)."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        self.log.close()

    def stop_and_check(self):
        if self.proc is None:      # a test stopped or killed it already
            self.assert_clean_log()
            return
        rc = self.stop()
        log = self.log_text()
        assert rc == 0, "server exit status %r (want 0 within 10 s); log:\n%s" % (rc, log[-8000:])
        self.assert_clean_log()


def make_server(tmp_path_factory, name, extra_conf=None, accounts=True):
    srv = Server(tmp_path_factory.mktemp(name), extra_conf=extra_conf)
    if accounts:
        for d in DOMAINS:
            srv.cli("domain", "add", d)
        for addr, pw in USERS.items():
            srv.add_user(addr, pw)
    return srv


def reload_with(server, settings):
    """Append settings and SIGHUP: new sessions use them (the last value of a key counts)."""
    before = server.log_text().count("event=reload result=ok")
    server.append_conf(settings)
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while server.log_text().count("event=reload result=ok") == before:
        assert time.monotonic() < deadline, "no reload"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory, request):
    """A running server with DOMAINS and USERS; the module's SERVER_CONF is appended."""
    extra = getattr(request.module, "SERVER_CONF", None)
    name = request.module.__name__.rsplit(".", 1)[-1]
    srv = make_server(tmp_path_factory, name, extra)
    setup = getattr(request.module, "server_setup", None)
    if setup is not None:
        setup(srv)
    srv.start()
    yield srv
    srv.stop_and_check()


# ---------------------------------------------------------------------------
# Raw SMTP client


class Reply:
    def __init__(self, code, lines, raw):
        self.code = code          # int
        self.lines = lines        # text of each line after "ddd-" / "ddd "
        self.raw = raw            # the bytes as received

    @property
    def text(self):
        return "\n".join(self.lines)

    def __repr__(self):
        return "Reply(%d, %r)" % (self.code, self.lines)


ENHANCED = re.compile(r"^([245])\.\d{1,3}\.\d{1,3}(?: |$)")


def has_enhanced_code(reply):
    """True when every line of reply starts with an enhanced status code of its class."""
    for line in reply.lines:
        m = ENHANCED.match(line)
        if not m or int(m.group(1)) != reply.code // 100:
            return False
    return True


class ConnectionClosed(Exception):
    pass


class RawSMTP:
    """Byte-level SMTP client: send exactly what the test says, read whole replies."""

    def __init__(self, port, tls=False, timeout=10.0, greeting=True):
        self.timeout = timeout
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.buf = b""
        if tls:
            self.sock = tls_client_context().wrap_socket(self.sock, server_hostname=None)
        self.greeting = self.read_reply() if greeting else None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError):
            chunk = b""
        if not chunk:
            raise ConnectionClosed("connection closed; unread: %r" % self.buf)
        self.buf += chunk

    def read_line(self, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no complete line within %.1f s; have %r" % (timeout, self.buf))
            self._fill(left)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_reply(self, timeout=None):
        """One complete (possibly multi-line) reply."""
        lines, raw, code = [], b"", None
        while True:
            line = self.read_line(timeout)
            raw += line + b"\r\n"
            text = line.decode("utf-8", errors="replace")
            m = re.match(r"^(\d{3})([ -])(.*)$", text)
            assert m, "malformed reply line %r" % text
            if code is None:
                code = int(m.group(1))
            assert int(m.group(1)) == code, "reply code changed within a reply: %r" % raw
            lines.append(m.group(3))
            if m.group(2) == " ":
                return Reply(code, lines, raw)

    def cmd(self, line, timeout=None):
        self.send(line + "\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.read_reply(timeout)

    def ehlo(self, name="client.test"):
        r = self.cmd("EHLO " + name)
        assert r.code == 250, r
        return r

    def no_reply(self, wait=0.5):
        """True when nothing (not even EOF) arrives within wait seconds."""
        if self.buf:
            return False
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return True
        except (ssl.SSLError, OSError):
            return False
        self.buf += chunk
        return False

    def is_closed(self, timeout=5.0):
        """True when the server closes the connection (EOF) within timeout, with no more data."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, ssl.SSLEOFError, BrokenPipeError):
                return True
            except ssl.SSLError:
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False

    def starttls(self):
        r = self.cmd("STARTTLS")
        assert r.code == 220, r
        self.wrap_tls()
        return r

    def wrap_tls(self):
        """TLS handshake on the raw socket. Whatever was buffered in clear is left in
        self.cleartext_leftover and dropped from the reply buffer."""
        self.cleartext_leftover, self.buf = self.buf, b""
        self.sock.settimeout(self.timeout)
        self.sock = tls_client_context().wrap_socket(self.sock, server_hostname=None)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def tls_client_context():
    """A TLS client context that accepts the self-signed test certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def send_message(port, sender, rcpts, data, ehlo="client.test"):
    """Run one raw transaction (DATA with dot-stuffing done by the caller); returns the
    list of replies [MAIL, RCPT..., DATA, end-of-data]."""
    with RawSMTP(port) as c:
        c.ehlo(ehlo)
        replies = [c.cmd("MAIL FROM:<%s>" % sender)]
        for r in rcpts:
            replies.append(c.cmd("RCPT TO:<%s>" % r))
        replies.append(c.cmd("DATA"))
        if replies[-1].code == 354:
            c.send(data)
            replies.append(c.read_reply())
        c.cmd("QUIT")
        return replies


RFC5322_DATE = re.compile(rb"(?:[A-Z][a-z]{2}, )?\d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d(?::\d\d)? [+-]\d{4}")
FIELD_NAME = re.compile(rb"^[!-9;-~]+:")


def trace_problems(trace, sender):
    """What is wrong with a block of trace header fields (Return-Path + Received) the
    server prepended; [] when it is well-formed RFC 5322 / RFC 5321 4.4 text."""
    problems = []
    if not trace.endswith(b"\r\n"):
        problems.append("does not end with CRLF")
    lines = trace.split(b"\r\n")[:-1]
    for l in lines:
        if b"\r" in l or b"\n" in l:
            problems.append("bare CR/LF in %r" % l)
    if not lines or lines[0] != b"Return-Path: <%s>" % sender.encode():
        problems.append("first line is not Return-Path: <%s>: %r" % (sender, lines[:1]))
    if len(lines) < 2 or not lines[1].startswith(b"Received: "):
        problems.append("no Received: field after Return-Path")
    fields = []
    for l in lines:
        if l[:1] in (b" ", b"\t"):
            if not fields:
                problems.append("continuation line first: %r" % l)
            else:
                fields[-1] += b"\r\n" + l
        elif FIELD_NAME.match(l):
            fields.append(l)
        else:
            problems.append("line is neither a header field nor a folded continuation: %r" % l)
    for f in fields:
        if f.startswith(b"Received:"):
            unfolded = f.replace(b"\r\n", b"")
            if b";" not in unfolded or not RFC5322_DATE.search(unfolded.rsplit(b";", 1)[1]):
                problems.append("Received field does not end with '; date-time': %r" % f)
    return problems


def split_stored(stored, msg):
    """(trace, message) of stored bytes that must end with exactly msg."""
    assert stored.endswith(msg), "stored message differs from what was sent:\n%r\n---\n%r" % (
        stored, msg)
    return stored[:len(stored) - len(msg)], msg


def check_stored(stored, msg, sender):
    """Stored bytes = well-formed trace fields for sender + msg exactly; returns the trace."""
    trace, _ = split_stored(stored, msg)
    problems = trace_problems(trace, sender)
    assert not problems, "bad trace headers %r:\n%s" % (trace, "\n".join(problems))
    return trace


def unique(prefix="msg"):
    return "%s-%d-%06d" % (prefix, os.getpid(), random.randrange(10 ** 6))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report ends with the tail of its server's log: on a machine where
    the temporary directories are gone afterwards (CI, fresh-machine-check) it is the only
    trace of what the server saw."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" or not rep.failed:
        return
    srv = item.funcargs.get("server")
    if isinstance(srv, Server):
        rep.sections.append(("posthorn server log (last 6000 characters)",
                             srv.log_text()[-6000:]))
