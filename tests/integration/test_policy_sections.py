"""Per-domain and per-account policy (issue 12): [domain] and [account] sections of
posthorn.conf switch the checks on arrival per recipient. Three recipients with three
policies: demo@example.test (the global one: SPF fail refused, DMARC p=reject refused,
block lists refuse), alice@example.test (its own section: a DMARC reject goes to Junk
instead, greylisted) and bob@other.test (its domain's section: never refused nor put in
Junk, block lists not used). Answers come from the local DNS server; one server for the
module; check-config's errors for sections and DNS lists at the end."""

import signal
import smtplib
import time

import pytest

from conftest import HOST, make_server, run_cli, unique
from dns_server import DNSServer
from test_inbound_auth import fetch, message, txt

DEMO, ALICE, BOB = "demo@example.test", "alice@example.test", "bob@other.test"

SECTIONS = """
[domain other.test]
spf_reject_fail = no
dmarc_reject = no
dmarc_quarantine = no
dnsbl = no

[account alice@example.test]
dmarc_reject = no
greylisting = yes
"""


def zone():
    z = "$TTL 300\n"
    z += "test. IN SOA ns.test. hostmaster.test. 1 60 60 600 60\n"
    z += txt("spfpass.test", "v=spf1 ip4:127.0.0.0/8 -all")
    z += txt("spffail.test", "v=spf1 ip4:192.0.2.1 -all")
    z += txt("reject.test", "v=spf1 -all")
    z += txt("_dmarc.reject.test", "v=DMARC1; p=reject")
    z += "5.0.0.127.bl.test. IN A 127.0.0.2\n"
    return z


@pytest.fixture(scope="module")
def dns():
    srv = DNSServer(zone())
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, dns):
    srv = make_server(tmp_path_factory, "policy_sections", {
        "inbound_checks": "yes",
        "dns_resolver": dns.address,
        "dns_timeout": "1s",
        "spf_reject_fail": "yes",
        "greylist_delay": "1s",
        "greylist_auto_whitelist_clients": "2",
        "dnsbl_zones": "bl.test",
    })
    with open(srv.conf, "a") as f:
        f.write(SECTIONS)
    srv.start()
    yield srv
    srv.stop_and_check()


def session(server, source="127.0.0.1"):
    s = smtplib.SMTP(HOST, server.smtp_port, timeout=30, local_hostname="client.test",
                     source_address=(source, 0))
    s.ehlo()
    return s


def test_spf_fail_refused_per_recipient(server):
    # Not every policy refuses an SPF fail: MAIL is accepted, RCPT refuses demo only.
    with session(server) as s:
        assert s.mail("a@spffail.test")[0] == 250
        code, text = s.rcpt(DEMO)
        assert code == 550 and text.startswith(b"5.7.23 "), (code, text)
        assert s.rcpt(BOB)[0] == 250
        s.rset()
    assert "event=rcpt to=<%s> result=550 reason=spf" % DEMO in server.log_text()


def test_greylisting_per_recipient(server):
    sender = "g-%s@spfpass.test" % unique("grey")
    with session(server) as s:
        assert s.mail(sender)[0] == 250
        assert s.rcpt(ALICE)[0] == 451  # alice's account greylists
        assert s.rcpt(DEMO)[0] == 250   # the global policy does not
        s.rset()
    time.sleep(1.1)  # greylist_delay
    with session(server) as s:
        assert s.mail(sender)[0] == 250
        assert s.rcpt(ALICE)[0] == 250
        s.rset()


def deliver(server, rcpts, subject):
    """Send a message From reject.test (DMARC p=reject, fails) to rcpts: the reply."""
    with session(server) as s:
        assert s.mail("x@spfpass.test")[0] == 250
        for r in rcpts:
            assert s.rcpt(r)[0] == 250, r
        return s.data(message(subject, "x@reject.test"))


def test_dmarc_reject_only_when_every_recipient_refuses(server):
    subject = unique("dmarc-demo")
    code, text = deliver(server, [DEMO], subject)
    assert code == 550 and text.startswith(b"5.7.1 Rejected by the DMARC policy"), text
    # demo refuses, bob never acts: delivered, demo's copy in Junk, bob's in INBOX
    subject = unique("dmarc-mixed")
    assert deliver(server, [DEMO, BOB], subject)[0] == 250
    assert fetch(server, subject, DEMO, ("Junk",)) is not None
    assert fetch(server, subject, DEMO, ("INBOX",)) is None
    assert fetch(server, subject, BOB, ("INBOX",)) is not None
    log = server.log_text()
    assert "action=mixed" in log
    lines = [l for l in log.splitlines() if "event=auth-results-rcpt" in l]
    assert any("session=" in l and "to=<%s> action=junk" % DEMO in l for l in lines), lines
    assert any("to=<%s> action=inbox-skipped" % BOB in l for l in lines), lines


def test_account_section_quarantines_instead(server):
    # alice: dmarc_reject = no, so her copy goes to Junk where demo's would be refused
    sender = "x@spfpass.test"
    subject = unique("dmarc-alice")
    for attempt in range(2):  # the first RCPT of this triplet may be greylisted
        with session(server) as s:
            assert s.mail(sender)[0] == 250
            code = s.rcpt(ALICE)[0]
            if code == 451:
                s.rset()
                time.sleep(1.1)
                continue
            assert code == 250
            assert s.data(message(subject, "x@reject.test"))[0] == 250
            break
    assert fetch(server, subject, ALICE, ("Junk",)) is not None


def test_greylist_auto_whitelist_clients(server):
    # The two tests above each passed one triplet from 127.0.0.0/24 through alice's
    # greylisting: the client network now skips it (Postgrey's --auto-whitelist-clients).
    with session(server) as s:
        assert s.mail("w-%s@spfpass.test" % unique("auto"))[0] == 250
        assert s.rcpt(ALICE)[0] == 250
        s.rset()
    assert "greylist=pass reason=auto-whitelist client=127.0.0 passes=2" in server.log_text()


def test_dnsbl_per_recipient(server):
    # 127.0.0.5 is listed; bob's domain does not use the lists: greeted, refused per RCPT
    with session(server, "127.0.0.5") as s:
        assert s.mail("y@spfpass.test")[0] == 250
        code, text = s.rcpt(DEMO)
        assert code == 554 and b"blocked using bl.test" in text, (code, text)
        assert s.rcpt(BOB)[0] == 250
        s.rset()
    assert "event=rcpt to=<%s> result=554 reason=dnsbl" % DEMO in server.log_text()


def test_reload_changes_a_section(server):
    # Last in the module: a section for demo, appended and reloaded with SIGHUP.
    before = server.log_text().count("event=reload result=ok")
    with open(server.conf, "a") as f:
        f.write("[account demo@example.test]\ndmarc_reject = no\n")
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while server.log_text().count("event=reload result=ok") == before:
        assert time.monotonic() < deadline, "no reload"
        time.sleep(0.05)
    subject = unique("dmarc-reloaded")
    assert deliver(server, [DEMO], subject)[0] == 250
    assert fetch(server, subject, DEMO, ("Junk",)) is not None


@pytest.mark.parametrize("text,want", [
    ("[domain example.test]\nno_such_key = yes\n", "no_such_key: not allowed in a section"),
    ("[domain example.test]\nhostname = x\n", "hostname: not allowed in a section"),
    ("[account example.test]\n", "expected an address local@domain"),
    ("dnsbl_zones = bl.test=127.0.0.[9..2]\n", "dnsbl_zones: "),
    ("dnswl_zones = wl.test=1.2\n", "dnswl_zones: "),
])
def test_check_config_refuses(server, text, want):
    conf = server.dir / "check.conf"  # beside the server's: the same relative paths
    conf.write_text(server.conf.read_text().split("\n[")[0] + "\n" + text)
    assert run_cli(["check-config"], conf=server.conf).returncode == 0
    p = run_cli(["check-config"], conf=conf)
    assert p.returncode != 0 and want in p.stderr, p.stderr
