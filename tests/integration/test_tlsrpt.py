"""TLS-RPT (RFC 8460) end to end, on the world of test_outbound.py (instance A sends to
instance B through MX records, MTA-STS and DANE, and to an aiosmtpd sink without
STARTTLS): every session A has with an MX host is counted per policy domain and UTC day;
`posthorn tlsrpt show` prints the RFC 8460 §4.4 report of each domain; with
tlsrpt_send = yes, `posthorn tlsrpt send` mails each domain's report (gzip-compressed JSON
in a multipart/report) to the mailto: address of its _smtp._tls record, which the sink
receives, and POSTs it to its https: address. With the default settings nothing is sent."""

import datetime
import email
import email.policy
import gzip
import http.server
import json
import re
import sqlite3
import ssl
import threading
import time

import pytest
from aiosmtpd.controller import Controller

from conftest import Server, unique
from dns_server import DNSServer, sign_zone
from test_outbound import (ALICE, ALICE_PW, B_IP, BOB_PW, DANE_ZONE, HTTPS_IP, SINK_IP,
                           STS_POLICIES, PolicyHandler, SinkHandler, make_ca, spki_sha256,
                           stop_world, submit, wait_for, zone)

RUA = "tlsrpt@sink.test"
TLSRPT_ZONE = """
_smtp._tls.sts.test.    IN TXT "v=TLSRPTv1; rua=mailto:%(rua)s"
_smtp._tls.badsts.test. IN TXT "v=TLSRPTv1;rua=mailto:%(rua)s,https://reports.sink.test:HTTPS_PORT/tlsrpt/v1"
reports.sink.test.      IN A %(https)s
"""
# MTA-STS domains whose MX is instance B: testing mode with a certificate that does not
# name the MX; a malformed policy; no policy (404); a policy server whose certificate does
# not name it.
for _d in ("teststs.test", "badpolicy.test", "nopolicy.test", "webpki.test"):
    TLSRPT_ZONE += """
%(d)s. IN SOA ns.%(d)s. hostmaster.%(d)s. 1 60 60 600 60
%(d)s. IN MX 10 mx.%(d)s.
mx.%(d)s. IN A %(b)s
_mta-sts.%(d)s. IN TXT "v=STSv1; id=1"
mta-sts.%(d)s. IN A %(https)s
""" % {"d": _d, "b": B_IP, "https": HTTPS_IP}
TLSRPT_ZONE %= {"rua": RUA, "https": HTTPS_IP}


class ReportHandler(PolicyHandler):
    """MTA-STS policies (GET), and TLS-RPT reports POSTed to /tlsrpt/v1 (kept in POSTS)."""
    posts = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.posts.append((self.path, self.headers.get("Content-Type"),
                           self.headers.get("Host"), body))
        self.send_response(201 if self.path == "/tlsrpt/v1" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()


def https_server(port, key, cert):
    srv = http.server.ThreadingHTTPServer((HTTPS_IP, port), ReportHandler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv
STS_POLICIES["mta-sts.teststs.test"] = ("version: STSv1\nmode: testing\nmx: mx.teststs.test\n"
                                        "max_age: 86400\n")
STS_POLICIES["mta-sts.badpolicy.test"] = ("version: STSv1\nmode: bogus\n"
                                          "mx: mx.badpolicy.test\nmax_age: 86400\n")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    b = Server(tmp_path_factory.mktemp("tlsrpt_b"), hostname="mx.b.test")
    port = b.smtp_port
    ca_cert, issue = make_ca(tmp_path_factory.mktemp("ca"))
    key, cert = issue("mx.b.test", "mx.sts.test", "mx.nomx.test")
    (b.dir / "tls" / "key.pem").write_bytes(key.read_bytes())
    (b.dir / "tls" / "cert.pem").write_bytes(cert.read_bytes())
    policies = https_server(port, *issue("mta-sts.sts.test", "mta-sts.badsts.test",
                                         "mta-sts.nomx.test", "mta-sts.teststs.test",
                                         "mta-sts.badpolicy.test", "mta-sts.nopolicy.test",
                                         "reports.sink.test"))
    b.append_conf({"smtp_listen": "127.0.0.1:%d %s:%d" % (port, B_IP, port)})
    for d in ("b.test", "dane.test", "bad.dane.test", "sts.test", "badsts.test", "teststs.test",
              "badpolicy.test", "nopolicy.test", "webpki.test"):
        b.cli("domain", "add", d)
        b.add_user("bob@" + d, BOB_PW)
    b.start()
    handler = SinkHandler()
    sink = Controller(handler, hostname=SINK_IP, port=port, enable_SMTPUTF8=False)
    sink.start()
    spki = spki_sha256(b.dir / "tls" / "cert.pem")
    signed, anchor = sign_zone(DANE_ZONE % {"port": port, "b": B_IP, "good": spki,
                                            "bad": "00" * 32},
                               "dane.test", tmp_path_factory.mktemp("dnssec"))
    dns = DNSServer(signed + zone(port) + TLSRPT_ZONE.replace("HTTPS_PORT", str(port)))
    dns.start()
    # Default TLS-RPT settings: collected, never sent.
    a = Server(tmp_path_factory.mktemp("tlsrpt_a"), hostname="mx.a.test", extra_conf={
        "outbound_enabled": "yes", "outbound_port": str(port),
        "dns_resolver": "127.0.0.1:%d" % dns.port, "dns_timeout": "3",
        "dns_trust_anchor": anchor, "outbound_tls_ca_file": str(ca_cert),
        "mta_sts_port": str(port), "queue_retry_min": "1s", "queue_retry_max": "2s",
        "outbound_routes": "routed.test=%s" % SINK_IP})
    a.cli("domain", "add", "a.test")
    a.add_user(ALICE, ALICE_PW)
    a.cli("dkim", "generate", "a.test", "--selector", "s1", "--algorithm", "ed25519")
    a.start()
    yield {"a": a, "b": b, "sink": handler, "spki": spki}
    stop_world(a, b, sink, dns, policies)


def today():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")


def report(a, domain):
    """The report `tlsrpt show` prints for domain today, parsed (None when none)."""
    out = a.cli("tlsrpt", "show", "--domain", domain).stdout.strip()
    return json.loads(out) if out else None


def policy(rep, ptype):
    got = [p for p in rep["policies"] if p["policy"]["policy-type"] == ptype]
    assert len(got) == 1, rep
    return got[0]


def delete_entries(a, domain):
    for e in a.queue_entries(domain):
        a.cli("queue", "delete", e["id"], "--silent")


def test_sts_success_counted(world):
    a, b = world["a"], world["b"]
    subject = unique("tlsrpt-sts")
    submit(a, ["bob@sts.test"], subject)
    assert wait_for(lambda: [m for m in b.mail_list("bob@sts.test") if m["subject"] == subject])
    rep = wait_for(lambda: report(a, "sts.test"))
    assert rep, a.log_text()[-3000:]
    # §4.4, field by field
    assert rep["organization-name"] == "mx.a.test"
    assert rep["contact-info"] == "postmaster@mx.a.test"
    assert rep["date-range"] == {"start-datetime": today() + "T00:00:00Z",
                                 "end-datetime": today() + "T23:59:59Z"}
    assert rep["report-id"] == "%s.sts.test@mx.a.test" % today()
    p = policy(rep, "sts")
    assert p["policy"]["policy-domain"] == "sts.test"
    assert p["policy"]["policy-string"] == ["version: STSv1", "mode: enforce",
                                            "mx: mx.sts.test", "max_age: 86400"]
    assert p["policy"]["mx-host"] == ["mx.sts.test"]
    assert p["summary"]["total-successful-session-count"] >= 1
    assert p["summary"]["total-failure-session-count"] == 0
    assert "failure-details" not in p
    assert set(rep) == {"organization-name", "date-range", "contact-info", "report-id",
                        "policies"}


def test_bad_certificate_is_a_failure(world):
    """badsts.test's MTA-STS policy names mx.badsts.test, which B's certificate does not."""
    a = world["a"]
    submit(a, ["bob@badsts.test"], unique("tlsrpt-badsts"))
    assert wait_for(lambda: re.search(r"to=<bob@badsts.test> .*status=deferred",
                                      a.log_text())), a.log_text()[-3000:]
    delete_entries(a, "badsts.test")
    p = policy(report(a, "badsts.test"), "sts")
    assert p["summary"]["total-successful-session-count"] == 0
    n = p["summary"]["total-failure-session-count"]
    assert n >= 1
    assert len(p["failure-details"]) == 1
    d = p["failure-details"][0]
    assert d["result-type"] == "certificate-host-mismatch"
    assert d["receiving-mx-hostname"] == "mx.badsts.test"
    assert d["receiving-ip"] == B_IP
    assert re.fullmatch(r"127\.\d+\.\d+\.\d+", d["sending-mta-ip"]), d
    assert d["failed-session-count"] == n


def test_dane_counted_under_tlsa(world):
    a, b = world["a"], world["b"]
    subject = unique("tlsrpt-dane")
    submit(a, ["bob@dane.test"], subject)
    assert wait_for(lambda: [m for m in b.mail_list("bob@dane.test") if m["subject"] == subject])
    p = policy(wait_for(lambda: report(a, "dane.test")), "tlsa")
    assert p["policy"]["policy-string"] == ["3 1 1 " + world["spki"].upper()]
    assert p["policy"]["mx-host"] == ["mx.dane.test"]
    assert p["summary"]["total-successful-session-count"] >= 1
    assert p["summary"]["total-failure-session-count"] == 0
    # A TLSA record the certificate does not match: a failed session under tlsa.
    submit(a, ["bob@bad.dane.test"], unique("tlsrpt-dane-bad"))
    assert wait_for(lambda: re.search(r"to=<bob@bad.dane.test> .*status=deferred",
                                      a.log_text())), a.log_text()[-3000:]
    delete_entries(a, "bad.dane.test")
    p = policy(report(a, "bad.dane.test"), "tlsa")
    assert p["policy"]["policy-string"] == ["3 1 1 " + "00" * 32]
    assert p["summary"]["total-successful-session-count"] == 0
    assert [d["result-type"] for d in p["failure-details"]] == ["validation-failure"]


def test_sts_testing_counts_what_would_have_failed(world):
    """testing mode: delivered over TLS although B's certificate does not name
    mx.teststs.test, and counted as the failure enforce would have been."""
    a, b = world["a"], world["b"]
    subject = unique("tlsrpt-testing")
    submit(a, ["bob@teststs.test"], subject)
    assert wait_for(lambda: [m for m in b.mail_list("bob@teststs.test")
                             if m["subject"] == subject]), a.log_text()[-3000:]
    p = policy(wait_for(lambda: report(a, "teststs.test")), "sts")
    assert p["policy"]["policy-string"][1] == "mode: testing"
    assert p["summary"] == {"total-successful-session-count": 0,
                            "total-failure-session-count": 1}
    assert p["failure-details"][0]["result-type"] == "certificate-host-mismatch"


@pytest.mark.parametrize("domain,result_type", [
    ("badpolicy.test", "sts-policy-invalid"),
    ("nopolicy.test", "sts-policy-fetch-error"),
    ("webpki.test", "sts-webpki-invalid"),
])
def test_sts_policy_failures(world, domain, result_type):
    """The policy could not be had: one failure under sts for the attempt; the message goes
    as without a policy (counted under no-policy-found)."""
    a, b = world["a"], world["b"]
    subject = unique("tlsrpt-" + domain)
    submit(a, ["bob@" + domain], subject)
    assert wait_for(lambda: [m for m in b.mail_list("bob@" + domain)
                             if m["subject"] == subject]), a.log_text()[-3000:]
    rep = wait_for(lambda: report(a, domain))
    p = policy(rep, "sts")
    assert p["policy"] == {"policy-type": "sts", "policy-domain": domain}
    assert p["summary"] == {"total-successful-session-count": 0,
                            "total-failure-session-count": 1}
    assert p["failure-details"] == [{"result-type": result_type, "failed-session-count": 1}]
    p = policy(rep, "no-policy-found")
    assert p["summary"] == {"total-successful-session-count": 1,
                            "total-failure-session-count": 0}


def test_no_policy_and_routes(world):
    """The sink offers no STARTTLS: no-policy-found, starttls-not-supported. A static route
    has no policy domain: nothing counted."""
    a, sink = world["a"], world["sink"]
    submit(a, ["someone@sink.test"], unique("tlsrpt-plain"))
    submit(a, ["someone@routed.test"], unique("tlsrpt-routed"))
    assert wait_for(lambda: sink.messages_to("someone@sink.test") and
                    sink.messages_to("someone@routed.test"))
    p = policy(wait_for(lambda: report(a, "sink.test")), "no-policy-found")
    assert "policy-string" not in p["policy"]
    assert p["policy"]["mx-host"] == ["mx.sink.test"]
    assert p["summary"]["total-failure-session-count"] >= 1
    assert {d["result-type"] for d in p["failure-details"]} == {"starttls-not-supported"}
    assert report(a, "routed.test") is None
    # Every domain: one JSON report a line.
    lines = a.cli("tlsrpt", "show").stdout.splitlines()
    domains = {json.loads(l)["policies"][0]["policy"]["policy-domain"] for l in lines}
    assert {"sts.test", "badsts.test", "sink.test"} <= domains
    assert "routed.test" not in domains


def test_default_settings_send_nothing(world):
    a, sink = world["a"], world["sink"]
    # The server's daily run at start-up claimed yesterday and sent nothing.
    assert re.search(r"event=tlsrpt-day day=\d{4}-\d\d-\d\d result=not-sent", a.log_text()), \
        a.log_text()[-3000:]
    p = a.cli("tlsrpt", "send", "--day", today(), check=False)
    assert p.returncode == 1
    assert "tlsrpt_send is off" in p.stderr
    assert sink.messages_to(RUA) == []
    assert ReportHandler.posts == []


def test_send_reports(world):
    a, sink = world["a"], world["sink"]
    if report(a, "sts.test") is None:
        test_sts_success_counted(world)
    if report(a, "badsts.test") is None:
        test_bad_certificate_is_a_failure(world)
    expected = {d: report(a, d) for d in ("sts.test", "badsts.test")}
    sink_before = report(a, "sink.test")
    a.append_conf({"tlsrpt_send": "yes", "tlsrpt_organization": "Posthorn Test",
                   "tlsrpt_contact": "tls-reports@a.test"})
    out = a.cli("tlsrpt", "send", "--day", today()).stdout
    assert "3 report(s) sent" in out, out + a.log_text()[-2000:]
    got = wait_for(lambda: len(sink.messages_to(RUA)) >= 2 and sink.messages_to(RUA))
    assert got and len(got) == 2, a.log_text()[-3000:]
    seen = set()
    for mail_from, rcpts, raw in got:
        assert mail_from == "tls-reports@a.test"
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        domain = msg["TLS-Report-Domain"]
        seen.add(domain)
        assert msg["TLS-Report-Submitter"] == "Posthorn Test"
        assert msg["Subject"] == "Report Domain: %s Submitter: Posthorn Test Report-ID: <%s.%s@mx.a.test>" % (
            domain, today(), domain)
        assert msg["From"] == "tls-reports@a.test"
        # signed on the way out with a.test's key, as every message from a.test
        assert re.search(r"\bd=a\.test;.*\bs=s1;", " ".join(msg["DKIM-Signature"].split()))
        assert msg.get_content_type() == "multipart/report"
        assert msg.get_param("report-type") == "tlsrpt"
        parts = list(msg.iter_parts())
        assert parts[0].get_content_type() == "text/plain"
        att = parts[1]
        assert att.get_content_type() == "application/tlsrpt+gzip"
        assert att.get_filename().startswith("Posthorn Test!%s!" % domain)
        assert att.get_filename().endswith(".json.gz")
        rep = json.loads(gzip.decompress(att.get_payload(decode=True)))
        want = dict(expected[domain], **{"organization-name": "Posthorn Test",
                                         "contact-info": "tls-reports@a.test"})
        assert rep == want
    assert seen == {"sts.test", "badsts.test"}
    # badsts.test's https: address got the same report by POST (RFC 8460 §5.4)
    posts = ReportHandler.posts
    assert len(posts) == 1, posts
    path, ctype, host, body = posts[0]
    assert (path, ctype) == ("/tlsrpt/v1", "application/tlsrpt+gzip")
    assert host.startswith("reports.sink.test:")
    assert json.loads(gzip.decompress(body)) == dict(
        expected["badsts.test"], **{"organization-name": "Posthorn Test",
                                    "contact-info": "tls-reports@a.test"})
    # A day is sent once; the report mails' own sessions are not counted.
    p = a.cli("tlsrpt", "send", "--day", today(), check=False)
    assert p.returncode == 1 and "already" in p.stderr
    assert report(a, "sink.test")["policies"] == sink_before["policies"]
    assert len(sink.messages_to(RUA)) == 2


def test_results_survive_a_restart(world):
    a = world["a"]
    before = report(a, "sts.test")
    assert before is not None
    a.stop()
    try:
        assert report(a, "sts.test") == before
    finally:
        a.start()
    assert report(a, "sts.test") == before


@pytest.mark.sqlite_only("reads tlsrpt_days from posthorn.db with sqlite3")
def test_daily_run_reports_yesterday_once(world):
    """The server itself reports the previous UTC day (at start-up, then after midnight):
    yesterday gets results (copied from today's in the database while A is down) and is
    not claimed yet; A sends tlsrpt_max_domains = 1 report, the first domain's, and a
    restart does not send it again."""
    a, sink = world["a"], world["sink"]
    if report(a, "badsts.test") is None:
        test_bad_certificate_is_a_failure(world)
    if report(a, "sts.test") is None:
        test_sts_success_counted(world)
    a.append_conf({"tlsrpt_send": "yes", "tlsrpt_max_domains": "1",
                   "tlsrpt_contact": "tls-reports@a.test"})
    a.stop()
    day = int(time.time()) // 86400
    yesterday = (datetime.date(1970, 1, 1) + datetime.timedelta(days=day - 1)).isoformat()
    db = sqlite3.connect(str(a.dir / "data" / "posthorn.db"))
    db.execute("DELETE FROM tlsrpt_days WHERE day = ?", (day - 1,))
    db.execute("INSERT OR REPLACE INTO tlsrpt SELECT ?, policy_domain, policy_type,"
               " policy_string, mx_host, result_type, sending_ip, receiving_mx, receiving_ip,"
               " sessions FROM tlsrpt WHERE day = ? AND policy_domain IN"
               " ('sts.test', 'badsts.test')", (day - 1, day))
    db.commit()
    db.close()
    before = len(sink.messages_to(RUA))
    a.start()
    assert wait_for(lambda: len(sink.messages_to(RUA)) > before), a.log_text()[-3000:]
    log = a.log_text()
    assert "event=tlsrpt-day day=%s result=sending" % yesterday in log
    assert "event=tlsrpt result=capped domains=2 tlsrpt_max_domains=1" in log
    msg = email.message_from_bytes(sink.messages_to(RUA)[-1][2], policy=email.policy.default)
    assert msg["TLS-Report-Domain"] == "badsts.test"
    rep = json.loads(gzip.decompress(list(msg.iter_parts())[1].get_payload(decode=True)))
    assert rep["date-range"]["start-datetime"] == yesterday + "T00:00:00Z"
    assert rep["policies"] == report(a, "badsts.test")["policies"]
    assert wait_for(lambda: len(ReportHandler.posts) == 2)
    assert json.loads(gzip.decompress(ReportHandler.posts[1][3])) == rep
    a.stop()
    a.start()
    assert wait_for(lambda: "event=tlsrpt-day day=%s result=claimed-before" % yesterday
                    in a.log_text()), a.log_text()[-3000:]
    time.sleep(1)
    assert len(sink.messages_to(RUA)) == before + 1
