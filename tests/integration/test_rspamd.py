"""rspamd's HTTP protocol on port 25 (smtp/rspamd, smtp/smtp_filter.c): a fake of rspamd's
/checkv2 (rspamd_fake.py, Python's http.server) answers each action, and the server acts on
it: no action (rspamd's milter block applied, our X-Spamd-Result and X-Rspamd-Score added,
forged ones removed), add header and rewrite subject (X-Spam: Yes, the Junk folder),
greylist and soft reject (451 4.7.1), reject (550 5.7.1 with rspamd's message or ours); a
filter that hangs past rspamd_timeout, answers garbage or closes gets the default action
(tempfail); one that cannot be reached gets rspamd_default_action (reject here), and
rspamd_junk = no keeps spam in INBOX. The request carries rspamd's fields. Then, when
Debian's rspamd is installed, a smoke test against the real one: GTUBE is rejected."""

import os
import re
import shutil
import smtplib
import socket
import subprocess
import time
from pathlib import Path

import pytest

import rspamd_fake
from conftest import HOST, make_server, reload_with, unique

DEMO = "demo@example.test"


@pytest.fixture(scope="module")
def fake():
    srv, port = rspamd_fake.start()
    yield srv, port
    srv.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake, rspamd_started):
    srv = make_server(tmp_path_factory, "rspamd", {
        "rspamd_url": "http://127.0.0.1:%d" % fake[1], "rspamd_timeout": "1s"})
    srv.start()
    yield srv
    srv.stop_and_check()


def send(server, subject, extra=b"", tagged=True):
    """Send a message whose Subject starts with the fake's word (and is the word alone when
    not tagged); returns its unique tag (in the body either way)."""
    tag = unique("t")
    msg = (b"From: <a@example.org>\r\nTo: <" + DEMO.encode() + b">\r\nSubject: " +
           subject.encode() + (b" " + tag.encode() if tagged else b"") + b"\r\n" + extra +
           b"\r\nBody of " + tag.encode() + b".\r\n")
    with smtplib.SMTP(HOST, server.smtp_port, timeout=30, local_hostname="client.test") as s:
        s.sendmail("a@example.org", [DEMO], msg)
    return tag


def refused(server, subject, tagged=True):
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(server, subject, tagged=tagged)
    return e.value.smtp_code, e.value.smtp_error.decode()


def stored(server, tag):
    """{mailbox: the stored message} for the message tagged tag."""
    out = {}
    for box in ("INBOX", "Junk"):
        p = server.cli("mail", "list", DEMO, box, check=False)
        if p.returncode != 0:
            continue
        for line in p.stdout.splitlines():
            if tag in line:
                uid = int(line.split()[0])
                out[box] = server.mail_cat(DEMO, uid, box).decode()
    return out


def head_of(raw):
    return raw.split("\r\n\r\n", 1)[0].split("\r\n")


def test_no_action_with_rspamds_header_changes(server, fake):
    tag = send(server, "clean", b"X-Remove-Me: a\r\nX-Spam: Yes\r\nX-Rspamd-Score: -99\r\n"
               b"X-Remove-Me: b\r\n")
    got = stored(server, tag)
    assert list(got) == ["INBOX"]
    head = head_of(got["INBOX"])
    # order 0: the top of the message as the client sent it, below our trace fields.
    i = head.index("X-Rspamd-Server: fake")
    assert head[0].startswith("Return-Path: ")
    names = [h.split(":", 1)[0] for h in head[:i] if not h.startswith("\t")]
    assert names.count("Received") == 1 and set(names) <= {
        "Return-Path", "Received", "Authentication-Results"}, head
    assert head[i + 1].startswith(("X-Remove", "From:", "To:", "Subject:", "X-"))
    assert not any(h.startswith(("X-Remove-Me", "X-Spam:")) for h in head)
    assert "X-Rspamd-Score: 1.30" in head
    i = head.index("X-Spamd-Result: default: False [1.30 / 15.00];")
    assert head[i + 1:i + 3] == ["\tR_SPF_ALLOW(-0.20);", "\tFAKE_TEST(1.50)"]
    assert got["INBOX"].endswith("\r\n\r\nBody of %s.\r\n" % tag)
    # What rspamd was told: its fields, and the message as it is stored (our trace first).
    req = [r for r in fake[0].requests if tag in r["body"]][-1]
    assert req["path"] == "/checkv2" and req["version"] == "HTTP/1.0"
    fields = {}
    for k, v in req["fields"]:
        fields.setdefault(k.lower(), []).append(v)
    assert fields["ip"] == ["127.0.0.1"]
    assert fields["helo"] == ["client.test"]
    assert fields["from"] == ["a@example.org"]
    assert fields["rcpt"] == [DEMO]
    # 127.0.0.1's confirmed name (smtp_rdns.c; libunbound answers for the loopback itself)
    assert fields["hostname"] == ["localhost"]
    assert fields["mta-name"] == ["mx.example.test"]
    assert len(fields["queue-id"][0]) > 0 and "user" not in fields
    assert req["body"].startswith("Return-Path: <a@example.org>\r\nReceived: from client.test")
    log = server.log_text()
    assert 'event=rspamd id=%s action="no action" score=1.30' % fields["queue-id"][0] in log


def test_large_message_reaches_rspamd_whole(server, fake):
    """2 MB: the body goes out under output flow control (several writable rounds)."""
    line = b"x" * 98 + b"\r\n"
    tag = send(server, "clean", extra=b"X-Big: yes\r\n\r\n" + line * 20000)
    req = [r for r in fake[0].requests if tag in r["body"]][-1]
    assert req["body"].count("x" * 98) == 20000
    assert "INBOX" in stored(server, tag)


def test_spam_goes_to_junk_with_x_spam(server):
    tag = send(server, "addheader")
    got = stored(server, tag)
    assert list(got) == ["Junk"]
    head = head_of(got["Junk"])
    assert "X-Spam: Yes" in head and "X-Rspamd-Score: 7.50" in head
    assert "X-Spamd-Result: default: True [7.50 / 15.00];" in head
    tag = send(server, "rewrite")
    got = stored(server, tag)
    assert list(got) == ["Junk"]
    head = head_of(got["Junk"])
    assert "Subject: *** SPAM *** rewrite %s" % tag in head
    assert sum(1 for h in head if h.startswith("Subject:")) == 1
    assert "X-Spam: Yes" in head


def test_refusals(server):
    # "greylist" is accepted, unmarked, as rspamd's own milter proxy does.
    tag = send(server, "greylist")
    got = stored(server, tag)
    assert list(got) == ["INBOX"]
    head = head_of(got["INBOX"])
    assert not any(h.startswith("X-Spam:") for h in head)
    assert "X-Spamd-Result: default: False [4.00 / 15.00]" in head
    assert refused(server, "softreject") == (451, "4.7.1 Ratelimit exceeded, says the fake")
    assert refused(server, "reject") == (550, "5.7.1 Gtube pattern, says the fake")
    assert refused(server, "plainreject") == (550, "5.7.1 Spam message rejected")


def test_many_edits_keep_our_fields(server):
    """rspamd removes X-Spam under two spellings and adds 64 fields, to a message with 100
    forged X-Spam fields: every copy goes, rspamd's 64 and our three fields are written."""
    offset = len(server.log_text())
    tag = send(server, "manyedits", b"X-Spam: forged\r\n" * 100)
    head = head_of(stored(server, tag)["Junk"])
    assert [h for h in head if h.lower().startswith("x-spam:")] == ["X-Spam: Yes"]
    assert sum(1 for h in head if h.startswith("X-Add-")) == 64
    assert "X-Rspamd-Score: 8.00" in head
    assert any(h.startswith("X-Spamd-Result: default: True") for h in head)
    assert "event=rspamd-edits" not in server.log_text()[offset:]


def test_odd_verdicts(server):
    """An empty Subject from rspamd leaves ours; rspamd's SMTP message reaches the client as
    ASCII; 28 added fields of 8000 octets fit the new spool file (folded)."""
    tag = send(server, "emptysubject")
    head = head_of(stored(server, tag)["Junk"])
    assert "Subject: emptysubject %s" % tag in head
    assert refused(server, "smtpmsg") == (550, "5.7.1 Spam ??t??? here?x")
    tag = send(server, "bigadds")
    head = head_of(stored(server, tag)["INBOX"])
    assert sum(1 for h in head if h.startswith("X-Big-")) == 28
    assert max(len(h) for h in head) <= 998


def test_failures_get_the_default_action(server):
    offset = len(server.log_text())
    for word in ("hang", "malformed", "close"):
        assert refused(server, word) == (
            451, "4.7.1 Message content cannot be checked now, try again later"), word
    log = server.log_text()[offset:]
    assert 'failure="rspamd did not answer in time"' in log
    assert 'failure="the response is not a JSON object"' in log


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_client_leaves_while_rspamd_works(server, fake):
    """The client disconnects while rspamd is still working (the fake waits 4 s, beyond
    rspamd_timeout): the server lives on, finishes the exchange with rspamd (its default
    action), stores nothing and goes on serving."""
    offset = len(server.log_text())
    asked = len(fake[0].requests)
    tag = unique("gone")
    s = smtplib.SMTP(HOST, server.smtp_port, timeout=30, local_hostname="client.test")
    s.ehlo()
    assert s.mail("a@example.org")[0] == 250
    assert s.rcpt(DEMO)[0] == 250
    assert s.docmd("DATA")[0] == 354
    s.send(b"From: <a@example.org>\r\nSubject: hang %s\r\n\r\nx\r\n.\r\n" % tag.encode())
    deadline = time.monotonic() + 10
    while len(fake[0].requests) == asked:  # rspamd has the message
        assert time.monotonic() < deadline
        time.sleep(0.05)
    s.sock.close()
    deadline = time.monotonic() + 15
    while "event=rspamd " not in server.log_text()[offset:]:
        assert time.monotonic() < deadline, server.log_text()[offset:]
        time.sleep(0.1)
    assert server.proc.poll() is None
    assert stored(server, tag) == {}
    tag = send(server, "clean")
    assert "INBOX" in stored(server, tag)


def test_check_config_validates_the_filter_addresses(server):
    from conftest import run_cli
    base = server.conf.read_text()
    conf = server.dir / "check.conf"
    cases = [("rspamd_url", v, False) for v in (
        "https://127.0.0.1:11333", "http://rspamd.example:11333", "http://1.2.3.4:0",
        "127.0.0.1:11333", "http://[::1:11333")]
    cases += [("rspamd_url", v, True) for v in (
        "", "http://127.0.0.1", "http://[::1]:11333/", "http://localhost:11333/rspamd")]
    cases += [("milter", v, False) for v in ("127.0.0.1", "unix:relative.sock",
                                             "tcp:127.0.0.1:8891", "inet:host.example:1")]
    cases += [("milter", v, True) for v in ("unix:/run/opendkim.sock", "local:/x.sock",
                                            "inet:[::1]:8891", "127.0.0.1:11332")]
    for key, value, ok in cases:
        conf.write_text(base + "%s = %s\n" % (key, value))
        p = run_cli(["check-config"], conf=conf)
        assert (p.returncode == 0) == ok and (ok or key in p.stderr), (key, value, p.stderr)


def test_rspamd_down_and_junk_off(server, fake):
    # rspamd cannot be reached: rspamd_default_action.
    port = free_port()
    reload_with(server, {"rspamd_url": "http://127.0.0.1:%d" % port,
                         "rspamd_default_action": "reject"})
    offset = len(server.log_text())
    assert refused(server, "clean") == (550, "5.7.1 Message content rejected")
    log = server.log_text()[offset:]
    assert 'failure="rspamd cannot be reached or closed the connection"' in log
    # one key=value line with why (the address and the system's error)
    assert re.search(r'session=\w+ proto=smtp event=rspamd-failure id=\S+ reason="rspamd '
                     r'cannot be reached or closed the connection" error="connect to '
                     r'127\.0\.0\.1:%d: Connection refused"' % port, log), log
    # Pointed at the fake again with rspamd_junk = no: spam stays in INBOX, marked. The URL
    # names the endpoint itself: /checkv2 is not appended twice. Without the client's name
    # looked up, rspamd is not told a Hostname (it would score "unknown").
    reload_with(server, {"rspamd_url": "http://localhost:%d/checkv2" % fake[1],
                         "rspamd_junk": "no", "smtp_peername_lookup": "no"})
    tag = send(server, "addheader")
    got = stored(server, tag)
    assert list(got) == ["INBOX"] and "X-Spam: Yes" in head_of(got["INBOX"])
    req = [r for r in fake[0].requests if tag in r["body"]][-1]
    assert req["path"] == "/checkv2"
    assert "hostname" not in [k.lower() for k, _ in req["fields"]]


def test_milter_then_rspamd(server, fake, tmp_path):
    """Both filters: the milter (libmilter, on a UNIX-domain socket) first, then rspamd,
    which sees the milter's changes; a milter refusal is final (rspamd is not asked)."""
    sock = tmp_path / "milter.sock"
    proc = subprocess.Popen(["/usr/bin/python3", str(Path(__file__).with_name(
        "milter_server.py")), str(sock)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while not sock.exists():
            assert time.monotonic() < deadline and proc.poll() is None, proc.stdout.read()
            time.sleep(0.05)
        reload_with(server, {"milter": "unix:%s" % sock,
                             "rspamd_url": "http://127.0.0.1:%d" % fake[1]})
        tag = send(server, "clean")
        head = head_of(stored(server, tag)["INBOX"])
        assert head[0] == "X-Milter-Top: inserted"
        assert "Subject: [filtered] clean %s" % tag in head
        assert "X-Rspamd-Score: 0.00" in head  # the fake saw "[filtered] ...": no action
        req = [r for r in fake[0].requests if tag in r["body"]][-1]
        assert req["body"].startswith("X-Milter-Top: inserted\r\n")
        asked = len(fake[0].requests)
        assert refused(server, "reject", tagged=False) == (
            550, "5.7.1 Rejected by the test filter")
        assert len(fake[0].requests) == asked
    finally:
        reload_with(server, {"milter": ""})
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------------------
# The real rspamd (Debian's package, 3.4), when installed: GTUBE is rejected.

RSPAMD = shutil.which("rspamd") or ("/usr/bin/rspamd" if os.path.exists("/usr/bin/rspamd")
                                    else None)


@pytest.fixture(scope="module")
def rspamd_started(tmp_path_factory):
    """rspamd's normal worker alone on a free loopback port, started when the module starts
    (it takes seconds; the tests before the real one run meanwhile): (process, port), or
    None when rspamd is not installed. Debian's configuration with our overrides in a
    temporary directory: no controller, proxy or fuzzy worker, no redis, DNS to a closed
    port (no lookup leaves the machine), and a five-line list of top-level domains (the
    full list takes rspamd over a minute to compile at start)."""
    if RSPAMD is None:
        yield None
        return
    d = tmp_path_factory.mktemp("rspamd-real")
    port = free_port()
    for sub in ("local.d", "override.d", "db", "run"):
        (d / sub).mkdir()
    (d / "tld.dat").write_text("com\norg\nnet\ntest\nexample\n")
    (d / "local.d" / "worker-normal.inc").write_text(
        'bind_socket = "127.0.0.1:%d";\ncount = 1;\n' % port)
    (d / "local.d" / "options.inc").write_text(
        'dns { nameserver = ["127.0.0.1:1"]; timeout = 0.2s; retransmits = 1; }\n'
        'url_tld = "%s/tld.dat";\n' % d)
    (d / "local.d" / "logging.inc").write_text(
        'type = "file";\nfilename = "%s/rspamd.log";\nlevel = "info";\n' % d)
    for worker in ("controller", "proxy", "fuzzy"):
        (d / "override.d" / ("worker-%s.inc" % worker)).write_text("enabled = false;\n")
    user = ["-u", "root", "-g", "root", "-i"] if os.geteuid() == 0 else []
    cmd = [RSPAMD, "-f", "-c", "/etc/rspamd/rspamd.conf"] + user + [
        "--var", "LOCAL_CONFDIR=%s" % d, "--var", "DBDIR=%s/db" % d,
        "--var", "RUNDIR=%s/run" % d, "--var", "LOGDIR=%s" % d]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            cwd=str(d))
    yield proc, port
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def real_rspamd(rspamd_started):
    """The port of the running rspamd (waits until it listens)."""
    if rspamd_started is None:
        pytest.skip("rspamd is not installed (Debian package rspamd)")
    proc, port = rspamd_started
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return port
        except OSError:
            time.sleep(0.1)
    out = proc.stdout.read().decode(errors="replace") if proc.poll() is not None else ""
    pytest.fail("rspamd did not start: %s" % out[-3000:])


GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def test_real_rspamd_rejects_gtube(server, real_rspamd):
    reload_with(server, {"rspamd_url": "http://127.0.0.1:%d" % real_rspamd,
                         "rspamd_timeout": "20s"})
    msg = ("From: <a@example.org>\r\nTo: <%s>\r\nSubject: gtube\r\n"
           "Message-ID: <gtube@example.org>\r\nDate: Mon, 7 Dec 2026 06:00:00 +0000\r\n"
           "\r\n%s\r\n" % (DEMO, GTUBE)).encode()
    offset = len(server.log_text())
    with smtplib.SMTP(HOST, server.smtp_port, timeout=60, local_hostname="client.test") as s:
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("a@example.org", [DEMO], msg)
    assert (e.value.smtp_code, e.value.smtp_error) == (550, b"5.7.1 Gtube pattern")
    assert 'action="reject"' in server.log_text()[offset:]
    # A plain message passes (whatever its score, it is not refused) with our fields.
    tag = unique("plain")
    msg = ("From: <a@example.org>\r\nTo: <%s>\r\nSubject: %s\r\n"
           "Message-ID: <%s@example.org>\r\nDate: Mon, 7 Dec 2026 06:00:00 +0000\r\n"
           "\r\nHello there.\r\n" % (DEMO, tag, tag)).encode()
    with smtplib.SMTP(HOST, server.smtp_port, timeout=60, local_hostname="client.test") as s:
        s.sendmail("a@example.org", [DEMO], msg)
    got = stored(server, tag)
    assert got, server.log_text()[-2000:]
    raw = next(iter(got.values()))
    assert any(h.startswith("X-Rspamd-Score: ") for h in head_of(raw))
    assert any(h.startswith("X-Spamd-Result: default: ") for h in head_of(raw))

