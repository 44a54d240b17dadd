"""DMARC aggregate reports (RFC 7489 §7.2, Appendix C) end to end: messages from port 25
whose From domain publishes a DMARC record with rua= are counted per UTC day (also the one
refused by p=reject); `posthorn dmarc show` lists the rows; with dmarc_report_send = yes,
`posthorn dmarc send` stores one report mail per policy domain for its rua= addresses
(gzip-compressed XML in a multipart/mixed mail, parsed here with xml.etree; one goes to a
local account, one to the queue), skips an
address at another domain without the external destination record (§7.1), and reports to
at most dmarc_report_max_domains domains. One server, one DNS server, one send."""

import base64
import datetime
import email
import email.policy
import gzip
import os
import smtplib
import sqlite3
import time
import xml.etree.ElementTree as ET

import dkim
import nacl.signing
import pytest

from conftest import HOST, make_server, unique
from dns_server import DNSServer

DEMO = "demo@example.test"


def txt(name, text):
    return '%s. IN TXT "%s"\n' % (name, text)


KEY = os.urandom(32)  # an Ed25519 seed; auth.test publishes its public key as sel
ZONE = ("$TTL 300\n"
        "test. IN SOA ns.test. hostmaster.test. 1 60 60 600 60\n"
        # SPF passes from 127.0.0.1 only; DMARC passes through aligned SPF
        + txt("auth.test", "v=spf1 ip4:127.0.0.1 -all")
        # reports to one of our accounts, which accepts them for auth.test
        + txt("_dmarc.auth.test", "v=DMARC1; p=none; rua=mailto:demo@example.test")
        + txt("auth.test._report._dmarc.example.test", "v=DMARC1")
        + txt("sel._domainkey.auth.test", "v=DKIM1; k=ed25519; p=" + base64.b64encode(
            nacl.signing.SigningKey(KEY).verify_key.encode()).decode())
        # reports to collector.test (authorized) and nocollect.test (not)
        + txt("ext.test", "v=spf1 -all")
        + txt("_dmarc.ext.test", "v=DMARC1; p=reject; adkim=s; "
              "rua=mailto:rep@collector.test,mailto:rep@nocollect.test")
        + txt("ext.test._report._dmarc.collector.test", "v=DMARC1")
        + txt("zzz.test", "v=spf1 ip4:127.0.0.1 -all")
        + txt("_dmarc.zzz.test", "v=DMARC1; p=quarantine; rua=mailto:dmarc@zzz.test")
        + txt("nodmarc.test", "v=spf1 ip4:127.0.0.1 -all")
        # sampled out by pct=0: reject becomes quarantine; no rua: never reported to
        + txt("apct.test", "v=spf1 -all")
        + txt("_dmarc.apct.test", "v=DMARC1; p=reject; pct=0"))


@pytest.fixture(scope="module")
def dns():
    srv = DNSServer(ZONE)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, dns):
    srv = make_server(tmp_path_factory, "dmarc_report", {
        "inbound_checks": "yes",
        "dns_resolver": dns.address,
        "dns_timeout": "1s",
        "dmarc_report_send": "yes",
        "dmarc_report_max_domains": "2",
        "dmarc_report_organization": "Posthorn <Test> & Co",
    })
    srv.start()
    yield srv
    srv.stop_and_check()


def send(server, sender, source="127.0.0.1", signed=False):
    """One message with From = sender (DKIM-signed by its domain with KEY); the reply code
    of the end of data."""
    subject = unique("dmarc")
    msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@example>\r\n\r\nHi.\r\n"
           % (sender, DEMO, subject, subject)).encode()
    if signed:
        msg = dkim.sign(msg, b"sel", sender.split("@")[1].encode(), base64.b64encode(KEY),
                        canonicalize=(b"relaxed", b"relaxed"),
                        signature_algorithm=b"ed25519-sha256") + msg
    with smtplib.SMTP(HOST, server.smtp_port, timeout=30, local_hostname="client.test",
                      source_address=(source, 0)) as s:
        s.ehlo()
        s.mail(sender)
        s.rcpt(DEMO)
        return s.data(msg)[0]


def show_rows(server, *args):
    out = server.cli("dmarc", "show", *args).stdout
    rows = []
    for line in out.splitlines():
        fields = {}
        head, _, rest = line.partition(' header_from="')
        for kv in head.split():
            k, _, v = kv.partition("=")
            fields[k] = v
        fields["rest"] = 'header_from="' + rest
        rows.append(fields)
    return rows


def report_of(raw):
    """A report mail: (message, attachment file name, XML root)."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parts = [p for p in msg.iter_attachments()]
    assert len(parts) == 1
    assert parts[0].get_content_type() == "application/gzip"
    return msg, parts[0].get_filename(), ET.fromstring(gzip.decompress(parts[0].get_content()))


def test_collect_show_and_send(server, tmp_path):
    assert send(server, "a@auth.test") == 250
    assert send(server, "b@auth.test") == 250
    assert send(server, "a@auth.test", source="127.0.0.2") == 250  # SPF fails: DMARC fails
    assert send(server, "a@ext.test") == 550                       # p=reject
    assert send(server, "a@zzz.test") == 250
    assert send(server, "a@nodmarc.test") == 250                   # no record: not counted
    assert send(server, "a@apct.test") == 250                      # pct=0: quarantined
    # from 127.0.0.3 SPF fails, an Ed25519 signature of auth.test passes DMARC
    assert send(server, "c@auth.test", source="127.0.0.3", signed=True) == 250

    rows = show_rows(server)
    got = sorted((r["domain"], r["ip"], r["count"], r["disposition"], r["spf"]) for r in rows)
    assert got == [("apct.test", "127.0.0.1", "1", "quarantine", "fail"),
                   ("auth.test", "127.0.0.1", "2", "none", "pass"),
                   ("auth.test", "127.0.0.2", "1", "none", "fail"),
                   ("auth.test", "127.0.0.3", "1", "none", "fail"),
                   ("ext.test", "127.0.0.1", "1", "reject", "fail"),
                   ("zzz.test", "127.0.0.1", "1", "none", "pass")]
    ext = [r for r in rows if r["domain"] == "ext.test"][0]
    assert 'policy="reject reject 100 s r"' in ext["rest"]
    assert 'spf_result="ext.test mfrom fail"' in ext["rest"]
    assert [r["domain"] for r in show_rows(server, "EXT.test")] == ["ext.test"]
    (pct,) = show_rows(server, "apct.test")
    assert 'reason="sampled_out"' in pct["rest"] and 'rua=""' in pct["rest"]
    assert 'reason=""' in ext["rest"]
    (signed,) = [r for r in rows if r["ip"] == "127.0.0.3"]
    assert signed["dkim"] == "pass"
    assert 'dkim_results="auth.test sel pass"' in signed["rest"]

    # the rows are part of the store's dump (posthorn db export)
    server.cli("db", "export", tmp_path / "dump")
    lines = (tmp_path / "dump").read_text(errors="replace").splitlines()
    start = [i for i, l in enumerate(lines) if l.startswith("table dmarc ")]
    assert len(start) == 1, [l for l in lines if l.startswith("table ")]
    body = lines[start[0] + 1:]
    body = body[:[i for i, l in enumerate(body) if l.startswith("table ") or l == "end"][0]]
    assert len(body) == len(rows), lines[start[0]:start[0] + 8]
    assert sum("\tauth.test\t" in l for l in body) == 3

    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    p = server.cli("dmarc", "send", "--day", today)
    assert p.stdout.strip() == "2 report(s) sent for %s" % today
    # a day is sent once
    again = server.cli("dmarc", "send", "--day", today, check=False)
    assert again.returncode != 0 and "already" in again.stderr

    # auth.test's report went to our account; ext.test's to the queue (apct.test, first,
    # has no rua= and does not count; zzz.test is over dmarc_report_max_domains = 2;
    # nocollect.test has no record authorizing reports about ext.test)
    entries = {e["domain"]: e for e in server.queue_entries()}
    assert set(entries) == {"collector.test"}, entries
    assert server.queue_show(entries["collector.test"]["id"])["from"] == \
        "<postmaster@%s>" % server_hostname(server)
    uids = [m["uid"] for m in server.mail_list(DEMO)
            if m["subject"].startswith("Report Domain: auth.test ")]
    assert len(uids) == 1

    msg, name, root = report_of(server.mail_cat(DEMO, uids[0]))
    assert msg["To"] == DEMO
    day0 = int(datetime.datetime.fromisoformat(today + "T00:00:00+00:00").timestamp())
    assert name == "%s!auth.test!%d!%d.xml.gz" % (server_hostname(server), day0, day0 + 86399)
    report_id = root.findtext("report_metadata/report_id")
    assert msg["Subject"] == "Report Domain: auth.test Submitter: %s Report-ID: <%s>" % (
        server_hostname(server), report_id)
    assert root.findtext("report_metadata/org_name") == "Posthorn <Test> & Co"
    assert root.findtext("report_metadata/date_range/begin") == str(day0)
    assert root.findtext("policy_published/domain") == "auth.test"
    assert root.findtext("policy_published/p") == "none"
    records = {r.findtext("row/source_ip"): r for r in root.findall("record")}
    assert set(records) == {"127.0.0.1", "127.0.0.2", "127.0.0.3"}
    r1, r2, r3 = records["127.0.0.1"], records["127.0.0.2"], records["127.0.0.3"]
    assert r1.findtext("row/count") == "2"
    assert r1.findtext("row/policy_evaluated/spf") == "pass"
    assert r1.findtext("row/policy_evaluated/dkim") == "fail"
    assert r1.findtext("identifiers/header_from") == "auth.test"
    assert r1.findtext("identifiers/envelope_from") == "auth.test"
    assert r1.findtext("auth_results/spf/domain") == "auth.test"
    assert r1.findtext("auth_results/spf/result") == "pass"
    assert r2.findtext("row/count") == "1"
    assert r2.findtext("auth_results/spf/result") == "fail"
    assert r3.findtext("row/policy_evaluated/dkim") == "pass"
    assert r3.findtext("row/policy_evaluated/spf") == "fail"
    assert [(d.findtext("domain"), d.findtext("selector"), d.findtext("result"))
            for d in r3.findall("auth_results/dkim")] == [("auth.test", "sel", "pass")]

    # the queued report's XML, as `dmarc show --xml` builds it
    root = ET.fromstring(server.cli("dmarc", "show", "--day", today, "--xml", "ext.test").stdout)
    assert root.findtext("policy_published/adkim") == "s"
    (rec,) = root.findall("record")
    assert rec.findtext("row/policy_evaluated/disposition") == "reject"
    assert rec.findtext("row/count") == "1"


def server_hostname(server):
    for line in server.conf.read_text().splitlines():
        k, _, v = line.partition("=")
        if k.strip() == "hostname":
            return v.strip()
    raise AssertionError("no hostname in the configuration")


@pytest.mark.sqlite_only("copies rows to yesterday in posthorn.db with sqlite3")
def test_daily_run_reports_yesterday(server):
    """The server itself reports the previous UTC day at start-up: yesterday gets
    auth.test's rows (copied from today's while the server is down) and is not claimed yet;
    the outbound engine sends its report to the local rua address."""
    if not show_rows(server, "auth.test"):
        pytest.skip("needs test_collect_show_and_send's rows")
    day = int(time.time()) // 86400
    yesterday = (datetime.date(1970, 1, 1) + datetime.timedelta(days=day - 1)).isoformat()
    server.stop()
    db = sqlite3.connect(str(server.dir / "data" / "posthorn.db"))
    db.execute("DELETE FROM dmarc_days WHERE day = ?", (day - 1,))
    db.execute("INSERT INTO dmarc SELECT ?, policy_domain, policy, rua, source_ip, header_from,"
               " envelope_from, disposition, reason, dkim_aligned, spf_aligned, dkim, spf,"
               " messages FROM dmarc WHERE day = ? AND policy_domain = 'auth.test'",
               (day - 1, day))
    db.commit()
    db.close()
    server.append_conf({"outbound_enabled": "yes"})
    server.start()
    subject = "Report Domain: auth.test "

    def reports():
        return [m for m in server.mail_list(DEMO) if m["subject"].startswith(subject)]
    before = len(reports())
    deadline = time.time() + 15
    while len(reports()) == before and time.time() < deadline:
        time.sleep(0.2)
    assert "event=dmarc-report-day day=%s result=sending" % yesterday in server.log_text()
    new = reports()[-1]
    assert yesterday in new["subject"]
    _, _, root = report_of(server.mail_cat(DEMO, new["uid"]))
    assert root.findtext("report_metadata/date_range/begin") == str((day - 1) * 86400)
    assert {r.findtext("row/source_ip") for r in root.findall("record")} == \
        {"127.0.0.1", "127.0.0.2", "127.0.0.3"}
