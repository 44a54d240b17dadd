"""The command line: init and check-config, configuration errors (FILE:LINE: key: reason),
--help on every level, error exits, passwords on stdin, POSTHORN_CONFIG, management
commands while the server runs, SIGHUP reload."""

import base64
import re
import signal
import time

import pytest

from conftest import USERS, RawSMTP, Server, pick_port_base, run_cli

DEMO = "demo@example.test"


@pytest.fixture(scope="module")
def inited(tmp_path_factory):
    """A directory made by init (no server running)."""
    d = tmp_path_factory.mktemp("cli") / "ph"
    base = pick_port_base()
    p = run_cli(["init", d, "--hostname", "cli.example.test", "--port-base", base])
    assert p.returncode == 0, p.stderr
    return d, base


def conf_with(tmp_path, inited, extra):
    """A copy of the inited configuration with extra lines appended; returns (path,
    number of the first appended line)."""
    d, _ = inited
    text = (d / "posthorn.conf").read_text()
    # Relative paths are relative to the file's directory: point them at d.
    text = text.replace("data_dir = data", "data_dir = %s/data" % d)
    text = text.replace("tls/cert.pem", "%s/tls/cert.pem" % d).replace("tls/key.pem", "%s/tls/key.pem" % d)
    if not text.endswith("\n"):
        text += "\n"
    first = text.count("\n") + 1
    path = tmp_path / "test.conf"
    path.write_text(text + extra)
    return path, first


# --- init / check-config -----------------------------------------------------------


def test_init_writes_everything(inited):
    d, base = inited
    conf = (d / "posthorn.conf").read_text()
    assert (d / "data").is_dir()
    assert (d / "tls" / "cert.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY-----" in (d / "tls" / "key.pem").read_text()
    assert re.search(r"^hostname = cli\.example\.test$", conf, re.M)
    assert re.search(r"^smtp_listen = 127\.0\.0\.1:%d$" % (base + 25), conf, re.M)
    assert re.search(r"^submission_listen = 127\.0\.0\.1:%d$" % (base + 587), conf, re.M)
    assert re.search(r"^submissions_listen = 127\.0\.0\.1:%d$" % (base + 465), conf, re.M)
    assert re.search(r"^allow_plaintext_auth = no$", conf, re.M)
    assert re.search(r"^smtp_bare_lf = reject$", conf, re.M)


def test_key_file_not_world_readable(inited):
    d, _ = inited
    assert (d / "tls" / "key.pem").stat().st_mode & 0o077 == 0


def test_check_config_ok(inited):
    d, _ = inited
    p = run_cli(["-c", d / "posthorn.conf", "check-config"])
    assert p.returncode == 0, p.stderr
    assert "configuration ok" in p.stdout + p.stderr


def test_init_refuses_existing(inited):
    d, _ = inited
    before = (d / "posthorn.conf").read_text()
    p = run_cli(["init", d, "--hostname", "other.test", "--port-base", 20000])
    assert p.returncode != 0
    assert "exists" in p.stderr
    assert (d / "posthorn.conf").read_text() == before


def test_init_needs_hostname(tmp_path):
    p = run_cli(["init", tmp_path / "x"])
    assert p.returncode != 0 and p.stderr.strip()
    assert not (tmp_path / "x" / "posthorn.conf").exists()


def test_init_store_options(tmp_path):
    """--store and --store-url: the engine is checked, the two go together, and SQLite is
    written into the file as the default."""
    d = tmp_path / "sq"
    p = run_cli(["init", d, "--hostname", "h.test", "--port-base", pick_port_base()])
    assert p.returncode == 0, p.stderr
    conf = (d / "posthorn.conf").read_text()
    assert re.search(r"^store = sqlite$", conf, re.M)
    assert re.search(r"^store_url = $", conf, re.M)
    for args, want in [(["--store", "mysql"], "--store must be sqlite or postgresql"),
                       (["--store", "postgresql"], "go together"),
                       (["--store-url", "dbname=x"], "go together")]:
        p = run_cli(["init", tmp_path / "bad", "--hostname", "h.test"] + args)
        assert p.returncode != 0 and want in p.stderr, p.stderr
        assert not (tmp_path / "bad" / "posthorn.conf").exists()


def test_store_engine_checked(tmp_path, inited):
    """An unknown engine, or postgresql without a URL, stops a command with a clear error."""
    for extra, want in [("store = oracle\n", 'unknown store engine "oracle"'),
                        ("store = postgresql\n", "needs store_url")]:
        conf, _ = conf_with(tmp_path, inited, extra)
        p = run_cli(["-c", conf, "domain", "list"])
        assert p.returncode != 0 and want in p.stderr, p.stderr


def test_appended_settings_accepted(tmp_path, inited):
    conf, _ = conf_with(tmp_path, inited, "limit_message_size = 100K\nlimit_recipients = 5\n"
                        "limit_errors = 20\nlimit_command_line = 2048\nlimit_auth_failures = 3\n"
                        "limit_request_timeout = 300s\nlimit_connections_per_ip = 50\n"
                        "smtp_bare_lf = normalize\nlog_level = debug\n"
                        "limit_request_timeout = 5m\ndefault_quota = 1G\n")
    p = run_cli(["-c", conf, "check-config"])
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("line,want", [
    ("outbound_routes = partner.test\n", "outbound_routes: expected DOMAIN=HOST"),
    ("outbound_routes = a.test=host:99999\n", "outbound_routes: expected DOMAIN=HOST"),
    ("smarthost = smtp.example.test:port\n", "smarthost: expected HOST[:PORT]"),
    ("smarthost = smtp.example.test\nsmarthost_tls = ssl\n", "smarthost_tls: expected tls"),
])
def test_check_config_outbound_settings(tmp_path, inited, line, want):
    """Outbound settings parsed only at delivery time are checked before the server runs."""
    conf, _ = conf_with(tmp_path, inited, line)
    p = run_cli(["-c", conf, "check-config"])
    assert p.returncode != 0 and want in p.stderr, p.stderr
    (tmp_path / "ok").mkdir()
    ok, _ = conf_with(tmp_path / "ok", inited, "outbound_routes = a.test=10.0.0.5:2525/require-tls,"
                      " b.test=[2001:db8::25]\nsmarthost = smtp.example.test:465\n")
    p = run_cli(["-c", ok, "check-config"])
    assert p.returncode == 0, p.stderr


def test_check_config_smarthost_password_file_private(tmp_path, inited):
    pw = tmp_path / "smarthost.pw"
    pw.write_text("secret\n")
    pw.chmod(0o644)
    conf, _ = conf_with(tmp_path, inited, "smarthost = smtp.example.test:587\n"
                        "smarthost_password_file = %s\n" % pw)
    p = run_cli(["-c", conf, "check-config"])
    assert p.returncode != 0 and "readable by others" in p.stderr, p.stderr
    pw.chmod(0o600)
    p = run_cli(["-c", conf, "check-config"])
    assert p.returncode == 0, p.stderr


def test_unknown_key(tmp_path, inited):
    conf, line = conf_with(tmp_path, inited, "# comment\nbogus_key = 1\n")
    want = "%s:%d: bogus_key: unknown key" % (conf, line + 1)
    p = run_cli(["-c", conf, "check-config"])
    assert p.returncode != 0
    assert want in p.stderr, p.stderr
    # serve refuses to start, with the same message, and quickly.
    p = run_cli(["-c", conf, "serve"], timeout=20)
    assert p.returncode != 0
    assert want in p.stderr, p.stderr


@pytest.mark.parametrize("line", ["limit_recipients = many", "limit_message_size = 10X",
                                  "limit_request_timeout = soon", "smtp_bare_lf = maybe",
                                  "allow_plaintext_auth = perhaps", "limit_errors = -1",
                                  "limit_recipients", "limit_connection_rate_per_ip = lots"])
def test_bad_values_name_file_line_key(tmp_path, inited, line):
    conf, n = conf_with(tmp_path, inited, line + "\n")
    # "FILE:LINE: key: reason"; a line without '=' has no key to name.
    want = "%s:%d: " % (conf, n) + (line.split()[0] + ": " if "=" in line else "")
    p = run_cli(["-c", conf, "check-config"])
    assert p.returncode != 0
    assert want in p.stderr, p.stderr


def test_missing_config_file(tmp_path):
    p = run_cli(["-c", tmp_path / "nope.conf", "domain", "list"])
    assert p.returncode != 0
    assert "nope.conf" in p.stderr


def test_missing_tls_key(tmp_path, inited):
    conf, _ = conf_with(tmp_path, inited, "tls_key = %s\n" % (tmp_path / "missing.pem"))
    p = run_cli(["-c", conf, "check-config"])
    assert p.returncode != 0
    assert "missing.pem" in p.stderr


def test_config_order_does_not_matter(tmp_path):
    """A setting must not change another one: limit_data_min_rate written after
    limit_message_size must leave the message size limit alone."""
    srv = Server(tmp_path / "order", extra_conf={"limit_message_size": "100K",
                                                 "limit_data_min_rate": 400})
    srv.start()
    try:
        with RawSMTP(srv.smtp_port) as c:
            r = c.ehlo()
            assert "SIZE 102400" in r.lines, r
    finally:
        srv.stop_and_check()


# --- help, version, usage errors --------------------------------------------------------

HELP_ARGS = [[], ["init"], ["serve"], ["check-config"], ["domain"], ["domain", "add"],
             ["domain", "del"], ["domain", "list"], ["user"], ["user", "add"], ["user", "del"],
             ["user", "list"], ["user", "passwd"], ["user", "quota"], ["alias"],
             ["alias", "add"], ["alias", "del"], ["alias", "list"], ["mail"], ["mail", "list"],
             ["mail", "cat"], ["queue"], ["queue", "list"]]


@pytest.mark.parametrize("args", HELP_ARGS, ids=lambda a: " ".join(a) or "top")
def test_help_everywhere(args, tmp_path):
    # No configuration is needed for --help (there is none here).
    p = run_cli(args + ["--help"])
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("usage:"), p.stdout
    if args:
        assert args[0] in p.stdout


def test_version():
    p = run_cli(["--version"])
    assert p.returncode == 0
    assert re.search(r"\d+\.\d+", p.stdout)


@pytest.mark.parametrize("args", [["frobnicate"], ["domain"], ["domain", "add"],
                                  ["domain", "frob", "x"], ["user", "quota", DEMO],
                                  ["user", "quota", DEMO, "lots"], ["alias", "add", "a@example.test"],
                                  ["user", "quota", DEMO, "1M", "--messages", "x"],
                                  ["user", "quota", DEMO, "1M", "--messages", "-1"],
                                  ["user", "quota", DEMO, "1M", "--msgs", "3"],
                                  ["user", "quota", DEMO, "1M", "--messages"],
                                  ["mail", "cat", DEMO, "INBOX", "999"],
                                  ["mail", "cat", DEMO, "INBOX", "abc"],
                                  ["mail", "list", "nobody@example.test"],
                                  ["user", "del", "nobody@example.test"],
                                  ["domain", "del", "example.test"],
                                  ["alias", "add", "x@elsewhere.example", DEMO],
                                  ["user", "add", "x@elsewhere.example"],
                                  ["user", "add", DEMO]],
                         ids=lambda a: " ".join(a))
def test_errors_exit_nonzero_with_message(server, args):
    p = server.cli(*args, input="some-password\n", check=False)
    assert p.returncode != 0, p.stdout
    assert p.stderr.strip(), "no error text for %r" % args


def test_commands_need_config(tmp_path):
    env = {"POSTHORN_CONFIG": str(tmp_path / "missing.conf")}
    p = run_cli(["domain", "list"], env=env)
    assert p.returncode != 0
    assert "missing.conf" in p.stderr


# --- accounts through the CLI (server running) ----------------------------------------


def test_posthorn_config_env(server):
    p = run_cli(["domain", "list"], env={"POSTHORN_CONFIG": str(server.conf)})
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == sorted(["example.test", "other.test"]) or \
        set(p.stdout.split()) == {"example.test", "other.test"}


def test_lists(server):
    users = server.cli("user", "list").stdout
    for u in USERS:
        assert re.search(r"^%s\b" % re.escape(u), users, re.M), users
    only = server.cli("user", "list", "other.test").stdout
    assert "bob@other.test" in only and DEMO not in only


def auth_ok(server, user, password):
    with RawSMTP(server.submissions_port, tls=True) as c:
        c.ehlo()
        token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        return c.cmd("AUTH PLAIN " + token, timeout=30).code


def test_password_from_stdin_and_passwd(server):
    user = "carol@example.test"
    pw = "carol pass: with spaces & symbols \u00e9"
    server.cli("user", "add", user, input=pw + "\n")
    assert auth_ok(server, user, pw) == 235
    # Only the first line is the password.
    server.cli("user", "passwd", user, input="second-pass\nignored\n")
    assert auth_ok(server, user, "second-pass") == 235
    assert auth_ok(server, user, pw) == 535


def test_empty_password_refused(server):
    p = server.cli("user", "add", "dave@example.test", input="", check=False)
    assert p.returncode != 0 and p.stderr.strip()
    assert "dave@example.test" not in server.cli("user", "list").stdout


def test_user_add_with_quota(server):
    server.cli("user", "add", "erin@example.test", "--quota", "2M", input="erin-pass\n")
    line = [l for l in server.cli("user", "list").stdout.splitlines()
            if l.startswith("erin@example.test")]
    assert len(line) == 1 and "quota=" in line[0]
    assert "unlimited" not in line[0]


def test_user_quota_messages(server):
    server.cli("user", "add", "mona@example.test", input="mona-pass\n")
    server.cli("user", "quota", "mona@example.test", "3M", "--messages", "250")

    def line():
        return [l for l in server.cli("user", "list").stdout.splitlines()
                if l.startswith("mona@example.test ")][0]
    assert line() == "mona@example.test quota=3145728 used=0 messages=0 message_limit=250"
    # The two-argument form keeps the message limit.
    server.cli("user", "quota", "mona@example.test", "1M")
    assert line().endswith(" quota=1048576 used=0 messages=0 message_limit=250")
    server.cli("user", "quota", "mona@example.test", "0", "--messages", "0")
    assert line() == "mona@example.test quota=unlimited used=0 messages=0"


def test_user_del_while_running(server):
    server.cli("user", "add", "frank@example.test", input="frank-pass\n")
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@remote.test>")
        assert c.cmd("RCPT TO:<frank@example.test>").code == 250
    server.cli("user", "del", "frank@example.test")
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@remote.test>")
        assert c.cmd("RCPT TO:<frank@example.test>").code == 550


def test_domain_add_del_while_running(server):
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@remote.test>")
        assert c.cmd("RCPT TO:<x@third.test>").code == 554
    server.cli("domain", "add", "third.test")
    server.cli("alias", "add", "@third.test", DEMO)
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        c.cmd("MAIL FROM:<s@remote.test>")
        assert c.cmd("RCPT TO:<x@third.test>").code == 250
    p = server.cli("domain", "del", "third.test", check=False)
    assert p.returncode != 0   # still used by the catch-all
    server.cli("alias", "del", "@third.test", DEMO)
    server.cli("domain", "del", "third.test")
    assert "third.test" not in server.cli("domain", "list").stdout


def test_alias_del_one_target(server):
    server.cli("alias", "add", "pair@example.test", DEMO)
    server.cli("alias", "add", "pair@example.test", "alice@example.test")
    server.cli("alias", "del", "pair@example.test", DEMO)
    lines = [l for l in server.cli("alias", "list").stdout.splitlines() if "pair@example.test" in l]
    assert lines and all(DEMO not in l for l in lines) and any("alice@" in l for l in lines)


def test_mail_list_other_mailbox(server):
    p = server.cli("mail", "list", DEMO, "NoSuchBox", check=False)
    assert p.returncode != 0 and p.stderr.strip()


def test_queue_list_empty_ok(server):
    p = server.cli("queue", "list")
    assert p.returncode == 0


# --- SIGHUP -------------------------------------------------------------------------


def test_sighup_reloads(server):
    with open(server.conf, "a") as f:
        f.write("hostname = reloaded.example.test\nlimit_recipients = 2\n")
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while True:
        with RawSMTP(server.smtp_port) as c:
            if b"reloaded.example.test" in c.greeting.raw or time.monotonic() > deadline:
                break
        time.sleep(0.1)
    with RawSMTP(server.smtp_port) as c:
        assert c.greeting.raw == b"220 reloaded.example.test ESMTP Posthorn\r\n"
        c.ehlo()
        c.cmd("MAIL FROM:<s@remote.test>")
        assert c.cmd("RCPT TO:<%s>" % DEMO).code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        r = c.cmd("RCPT TO:<bob@other.test>")
        assert r.code == 452, r
    assert server.proc.poll() is None, "server died on SIGHUP"


def test_sighup_with_bad_config_keeps_running(server):
    with open(server.conf, "a") as f:
        f.write("no_such_setting = 1\n")
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "event=reload result=failed" not in server.log_text():
        assert time.monotonic() < deadline, server.log_text()
        time.sleep(0.02)
    try:
        assert server.proc.poll() is None, "a bad configuration on reload stopped the server"
        with RawSMTP(server.smtp_port) as c:
            assert c.greeting.code == 220
            assert c.cmd("NOOP").code == 250
    finally:
        text = server.conf.read_text().replace("no_such_setting = 1\n", "")
        server.conf.write_text(text)


def test_alias_to_missing_target_refused(server):
    p = server.cli("alias", "add", "ghost@example.test", "nobody-here@example.test", check=False)
    assert p.returncode != 0
    assert "nobody-here@example.test is not an account or alias" in p.stderr
    assert "ghost@example.test" not in server.cli("alias", "list").stdout
