"""Outbound delivery end to end, all on loopback: instance A (mx.a.test) sends what its user
submits to the hosts a local DNS server names (dns_server.py, with one DNSSEC-signed zone for
DANE): instance B (mx.b.test, on 127.0.0.3) and an aiosmtpd sink (127.0.0.2) that accepts,
refuses (550), defers (451) or stalls per recipient. b.test's TLSA record is wrong but
unsigned, so it is ignored. Every host listens on the same port, which A reaches through
`outbound_port`. DSNs come back into the sender's INBOX and are parsed with `email`."""

import asyncio
import email
import hashlib
import http.server
import ssl
import email.policy
import re
import subprocess
import smtplib
import threading
import time

import dkim
import pytest
from aiosmtpd.controller import Controller

from conftest import Server, reload_with, tls_client_context, unique
from dns_server import DNSServer, sign_zone

ALICE, ALICE_PW = "alice@a.test", "Outbound-Secret-1"
BOB, BOB_PW = "bob@b.test", "Outbound-Secret-2"
SINK_IP, B_IP, HTTPS_IP, DEAD_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"
# MTA-STS policies served at https://mta-sts.DOMAIN/.well-known/mta-sts.txt
STS_POLICIES = {
    "mta-sts.sts.test": "version: STSv1\r\nmode: enforce\r\nmx: mx.sts.test\r\nmax_age: 86400\r\n",
    # B's certificate does not name mx.badsts.test
    "mta-sts.badsts.test": "version: STSv1\nmode: enforce\nmx: mx.badsts.test\nmax_age: 86400\n",
    # the policy names no MX host of the domain
    "mta-sts.nomx.test": "version: STSv1\nmode: enforce\nmx: elsewhere.test\nmax_age: 86400\n",
}


def openssl(*args, input=None):
    return subprocess.run(["openssl"] + list(args), check=True, capture_output=True,
                          input=input)


def make_ca(directory):
    """A test CA and a function that issues certificates for names (key, cert paths)."""
    ca_key, ca_cert = directory / "ca.key", directory / "ca.pem"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out",
            str(ca_cert), "-days", "3650", "-subj", "/CN=Posthorn Test CA", "-addext",
            "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")

    def issue(name, *alt):
        key, csr, cert = (directory / (name + ext) for ext in (".key", ".csr", ".pem"))
        ext = directory / (name + ".ext")
        ext.write_text("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                       "extendedKeyUsage=serverAuth\n"
                       % ",".join("DNS:" + n for n in (name,) + alt))
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
                "-subj", "/CN=" + name)
        openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
                "-CAcreateserial", "-out", str(cert), "-days", "3650", "-extfile", str(ext))
        return key, cert

    return ca_cert, issue


class PolicyHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0]
        policy = STS_POLICIES.get(host)
        if self.path != "/.well-known/mta-sts.txt" or policy is None:
            self.send_error(404)
            return
        body = policy.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def https_server(port, key, cert):
    srv = http.server.ThreadingHTTPServer((HTTPS_IP, port), PolicyHandler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class SinkHandler:
    """Recipients by local part: reject* → 550 at RCPT; later* → 451 at RCPT the first
    `defer_times` times; never* → always 451; slow* → the DATA reply waits `slow` seconds;
    others 250."""

    def __init__(self):
        self.received = []      # (mail_from, [rcpts], bytes)
        self.peers = []         # ([rcpts], (ip, port) of the connection)
        self.data_started = threading.Event()
        self.defer_times = 1
        self.deferred = {}
        self.slow = 4
        self.slow_active = self.slow_max = 0  # slow DATA replies pending at once

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local.startswith("reject"):
            return "550 5.1.1 <%s>: Recipient address rejected: no such user" % address
        if local.startswith("never"):
            return "451 4.2.0 <%s>: mailbox busy" % address
        if local.startswith("later"):
            n = self.deferred.get(address, 0)
            if n < self.defer_times:
                self.deferred[address] = n + 1
                return "451 4.2.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        self.peers.append((list(envelope.rcpt_tos), session.peer))
        if any(r.startswith("slow") for r in envelope.rcpt_tos):
            self.data_started.set()
            self.slow_active += 1
            self.slow_max = max(self.slow_max, self.slow_active)
            try:
                await asyncio.sleep(self.slow)
            finally:  # also when the connection drops (the kill test): aiosmtpd cancels us
                self.slow_active -= 1
        return "250 2.0.0 Ok: queued"

    def messages_to(self, rcpt):
        return [m for m in self.received if rcpt in m[1]]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    b = Server(tmp_path_factory.mktemp("outbound_b"), hostname="mx.b.test")
    port = b.smtp_port
    # B's certificate comes from a test CA that A trusts (outbound_tls_ca_file), for the
    # names of its MX records that MTA-STS checks (mx.sts.test; not mx.badsts.test).
    ca_cert, issue = make_ca(tmp_path_factory.mktemp("ca"))
    key, cert = issue("mx.b.test", "mx.sts.test", "mx.nomx.test")
    (b.dir / "tls" / "key.pem").write_bytes(key.read_bytes())
    (b.dir / "tls" / "cert.pem").write_bytes(cert.read_bytes())
    policies = https_server(port, *issue("mta-sts.sts.test", "mta-sts.badsts.test",
                                         "mta-sts.nomx.test"))
    b.append_conf({"smtp_listen": "127.0.0.1:%d %s:%d" % (port, B_IP, port)})
    b.cli("domain", "add", "b.test")
    b.add_user(BOB, BOB_PW)
    b.start()

    handler = SinkHandler()
    sink = Controller(handler, hostname=SINK_IP, port=port, enable_SMTPUTF8=False)
    sink.start()

    spki = spki_sha256(b.dir / "tls" / "cert.pem")
    signed, anchor = sign_zone(DANE_ZONE % {"port": port, "b": B_IP, "good": spki,
                                            "bad": "00" * 32},
                               "dane.test", tmp_path_factory.mktemp("dnssec"))
    dns = DNSServer(signed + zone(port))
    dns.start()
    for d in ("dane.test", "bad.dane.test", "sts.test", "badsts.test", "nomx.test"):
        b.cli("domain", "add", d)
        b.add_user("bob@" + d, BOB_PW)

    a = Server(tmp_path_factory.mktemp("outbound_a"), hostname="mx.a.test", extra_conf={
        "outbound_enabled": "yes", "outbound_port": str(port),
        "dns_resolver": "127.0.0.1:%d" % dns.port, "dns_timeout": "3",
        "dns_trust_anchor": anchor, "outbound_tls_ca_file": str(ca_cert),
        "mta_sts_port": str(port),
        "queue_retry_min": "1s", "queue_retry_max": "2s", "outbound_connection_cache_time": "20s",
        "outbound_routes": "routed.test=%s" % SINK_IP,
        "outbound_tls_required": "tlsonly.test",
        # The engine's reads (is an entry due? is a bounce's sender local?) run on the
        # store's reader threads here, as on PostgreSQL; instance C runs them in place.
        "store_read_threads": "2"})
    a.cli("domain", "add", "a.test")
    a.add_user(ALICE, ALICE_PW)
    keys = {sel: a.cli("dkim", "generate", "a.test", "--selector", sel, "--algorithm",
                       alg).stdout.strip().splitlines()[-1]
            for sel, alg in (("s1", "ed25519"), ("s2", "rsa"))}
    a.start()
    yield {"a": a, "b": b, "sink": handler, "dns": dns, "dkim_records": keys}
    stop_world(a, b, sink, dns, policies)


def stop_world(a, b, sink, dns, policies):
    """A world's end: B and the rest stop also when A's check fails."""
    try:
        a.stop_and_check()
    finally:
        try:
            b.stop_and_check()
        finally:
            sink.stop()
            dns.stop()
            policies.shutdown()


# A DNSSEC-signed zone: dane.test's MX (instance B) has a TLSA record matching B's
# certificate; bad.dane.test's MX (B again) one that does not.
DANE_ZONE = """
$ORIGIN dane.test.
$TTL 300
@                     IN SOA ns.dane.test. hostmaster.dane.test. 1 60 60 600 120
@                     IN NS ns
@                     IN MX 10 mx
ns                    IN A 127.0.0.1
mx                    IN A %(b)s
_%(port)d._tcp.mx     IN TLSA 3 1 1 %(good)s
bad                   IN MX 10 mxbad
mxbad                 IN A %(b)s
_%(port)d._tcp.mxbad  IN TLSA 3 1 1 %(bad)s
"""


def spki_sha256(cert_path):
    """SHA-256 of the certificate's public key (TLSA selector 1, matching type 1)."""
    pub = subprocess.run(["openssl", "x509", "-in", str(cert_path), "-noout", "-pubkey"],
                         check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         check=True, capture_output=True).stdout
    return hashlib.sha256(der).hexdigest()


def zone(port):
    return """
$TTL 60
a.test.       IN SOA ns.a.test. hostmaster.a.test. 1 60 60 600 60
b.test.       IN SOA ns.b.test. hostmaster.b.test. 1 60 60 600 60
b.test.       IN MX 10 mx.b.test.
mx.b.test.    IN A %(b)s
_%(port)d._tcp.mx.b.test. IN TLSA 3 1 1 %(zeros)s
sink.test.    IN SOA ns.sink.test. hostmaster.sink.test. 1 60 60 600 60
sink.test.    IN MX 10 mx.sink.test.
mx.sink.test. IN A %(sink)s
backup.test.  IN SOA ns.backup.test. hostmaster.backup.test. 1 60 60 600 60
backup.test.  IN MX 10 dead.backup.test.
backup.test.  IN MX 20 mx.backup.test.
dead.backup.test. IN A %(dead)s
mx.backup.test.   IN A %(sink)s
plain.test.   IN SOA ns.plain.test. hostmaster.plain.test. 1 60 60 600 60
plain.test.   IN A %(sink)s
tlsonly.test. IN SOA ns.tlsonly.test. hostmaster.tlsonly.test. 1 60 60 600 60
tlsonly.test. IN MX 10 mx.sink.test.
sts.test.     IN SOA ns.sts.test. hostmaster.sts.test. 1 60 60 600 60
sts.test.     IN MX 10 mx.sts.test.
mx.sts.test.  IN A %(b)s
_mta-sts.sts.test. IN TXT "v=STSv1; id=1"
mta-sts.sts.test.  IN A %(https)s
badsts.test.  IN SOA ns.badsts.test. hostmaster.badsts.test. 1 60 60 600 60
badsts.test.  IN MX 10 mx.badsts.test.
mx.badsts.test. IN A %(b)s
_mta-sts.badsts.test. IN TXT "v=STSv1; id=1"
mta-sts.badsts.test.  IN A %(https)s
nomx.test.    IN SOA ns.nomx.test. hostmaster.nomx.test. 1 60 60 600 60
nomx.test.    IN MX 10 mx.nomx.test.
mx.nomx.test. IN A %(b)s
_mta-sts.nomx.test. IN TXT "v=STSv1; id=1"
mta-sts.nomx.test.  IN A %(https)s
nullmx.test.  IN SOA ns.nullmx.test. hostmaster.nullmx.test. 1 60 60 600 60
nullmx.test.  IN MX 0 .
""" % {"b": B_IP, "sink": SINK_IP, "dead": DEAD_IP, "port": port, "zeros": "00" * 32,
       "https": HTTPS_IP}


def submit(a, rcpts, subject, rcpt_options=(), mail_options=()):
    msg = ("From: Alice <%s>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@a.test>\r\n"
           "Date: Sun, 06 Dec 2026 10:00:00 +0000\r\n\r\nHello from A.\r\nSecond line.\r\n"
           % (ALICE, ", ".join(rcpts), subject, subject)).encode()
    with smtplib.SMTP("127.0.0.1", a.submission_port, timeout=15,
                      local_hostname="client.test") as s:
        s.starttls(context=tls_client_context())
        s.login(ALICE, ALICE_PW)
        refused = s.sendmail(ALICE, rcpts, msg, mail_options=list(mail_options),
                             rcpt_options=list(rcpt_options))
        assert refused == {}
    return msg


def wait_for(what, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        v = what()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.1)


def stored_without_return_path(server, user, uid):
    raw = server.mail_cat(user, uid)
    assert raw.startswith(b"Return-Path:"), raw[:200]
    return raw.split(b"\r\n", 1)[1]


def dsns(a, subject):
    """The DSNs in Alice's INBOX about the message with this subject, parsed."""
    out = []
    for m in a.mail_list(ALICE):
        raw = stored_without_return_path(a, ALICE, m["uid"])
        if subject.encode() in raw and m["sender"] == "":
            out.append(email.message_from_bytes(raw, policy=email.policy.default))
    return out


def status_blocks(report):
    """The message/delivery-status part: [per-message fields, per-recipient fields...]."""
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    parts = list(report.iter_parts())
    assert parts[1].get_content_type() == "message/delivery-status"
    return parts[1].get_payload()


def wait_queue_empty(a, timeout=15.0):
    assert wait_for(lambda: a.queue_entries() == [], timeout), a.queue_entries()


# ---------------------------------------------------------------------------


def test_to_another_instance_through_mx_dkim_signed(world):
    a, b = world["a"], world["b"]
    subject = unique("a-to-b")
    submit(a, [BOB], subject)
    got = wait_for(lambda: [m for m in b.mail_list(BOB) if m["subject"] == subject])
    assert got, "not delivered to B:\n" + a.log_text()[-3000:]
    raw = stored_without_return_path(b, BOB, got[0]["uid"])
    # B's own trace header, then A's signature over A's message.
    assert raw.startswith(b"Received: from mx.a.test"), raw[:300]
    assert b"\r\nDKIM-Signature: " in raw
    # Two keys (Ed25519 and RSA, a rotation's overlap): two signatures, both good.
    txt = {"%s._domainkey.a.test." % sel: "".join(re.findall(r'"([^"]*)"', rec))
           for sel, rec in world["dkim_records"].items()}

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        return txt[name].encode()

    assert raw.count(b"DKIM-Signature: ") == 2
    d = dkim.DKIM(raw)
    for i in range(2):
        assert d.verify(idx=i, dnsfunc=dnsfunc), "dkimpy rejects signature %d" % i
    assert b"Return-Path" not in raw.split(b"\r\n\r\n", 1)[0].split(b"DKIM-Signature")[1]
    wait_queue_empty(a)
    log = a.log_text()
    assert re.search(r"event=outbound queue=\d+ to=<%s> relay=mx\.b\.test\[%s\]:\d+ .*"
                     r"status=sent code=250" % (re.escape(BOB), B_IP), log), log[-2000:]


def test_550_gives_failure_dsn(world):
    a = world["a"]
    subject = unique("refused")
    submit(a, ["reject1@sink.test"], subject)
    reports = wait_for(lambda: dsns(a, subject))
    assert len(reports) == 1, a.log_text()[-3000:]
    r = reports[0]
    assert r["To"].addresses[0].addr_spec == ALICE
    assert "MAILER-DAEMON@mx.a.test" in r["From"]
    assert r["Auto-Submitted"] == "auto-replied"
    blocks = status_blocks(r)
    assert blocks[0]["Reporting-MTA"] == "dns; mx.a.test"
    rcpt = blocks[1]
    assert rcpt["Final-Recipient"] == "rfc822; reject1@sink.test"
    assert rcpt["Action"] == "failed"
    assert rcpt["Status"] == "5.1.1"
    assert rcpt["Remote-MTA"] == "dns; mx.sink.test"
    assert "550 5.1.1" in rcpt["Diagnostic-Code"]
    assert "no such user" in rcpt["Diagnostic-Code"]
    assert rcpt["Last-Attempt-Date"]
    # The original comes back whole.
    original = list(r.iter_parts())[2]
    assert original.get_content_type() == "message/rfc822"
    assert subject in original.as_string()
    wait_queue_empty(a)


def test_second_mx_when_first_is_down(world):
    a, sink = world["a"], world["sink"]
    rcpt = "x%s@backup.test" % unique("")
    submit(a, [rcpt], unique("backup"))
    assert wait_for(lambda: sink.messages_to(rcpt)), a.log_text()[-3000:]
    log = a.log_text()
    assert re.search(r"event=outbound-host queue=\d+ relay=dead\.backup\.test\[%s\]" % DEAD_IP,
                     log), log[-2000:]
    wait_queue_empty(a)


def test_connection_reused_for_the_next_message(world):
    """Two messages to one host in succession: the second goes over the first's connection
    (kept for outbound_connection_cache_time)."""
    a, sink = world["a"], world["sink"]
    first, second = ("reuse%s@sink.test" % unique("") for _ in range(2))
    submit(a, [first], unique("reuse1"))
    assert wait_for(lambda: sink.messages_to(first)), a.log_text()[-3000:]
    submit(a, [second], unique("reuse2"))
    assert wait_for(lambda: sink.messages_to(second)), a.log_text()[-3000:]
    peers = {rcpts[0]: peer for rcpts, peer in sink.peers if rcpts[0] in (first, second)}
    assert peers[first] == peers[second], peers


def test_a_record_when_no_mx(world):
    a, sink = world["a"], world["sink"]
    rcpt = "y%s@plain.test" % unique("")
    submit(a, [rcpt], unique("plain"))
    assert wait_for(lambda: sink.messages_to(rcpt)), a.log_text()[-3000:]
    stored = sink.messages_to(rcpt)[0]
    assert stored[0] == ALICE
    assert not stored[2].startswith(b"Return-Path:")


def test_null_mx_bounces_at_once(world):
    a = world["a"]
    subject = unique("nullmx")
    submit(a, ["someone@nullmx.test"], subject)
    reports = wait_for(lambda: dsns(a, subject))
    assert reports, a.log_text()[-3000:]
    rcpt = status_blocks(reports[0])[1]
    assert rcpt["Action"] == "failed"
    assert rcpt["Status"] == "5.1.10"


def test_4xx_then_success_on_retry(world):
    a, sink = world["a"], world["sink"]
    rcpt = "later%s@sink.test" % unique("")
    submit(a, [rcpt], unique("later"))
    assert wait_for(lambda: sink.messages_to(rcpt), 20), a.log_text()[-3000:]
    assert sink.deferred[rcpt] == 1
    log = a.log_text()
    assert re.search(r"to=<%s> .*status=deferred code=451" % re.escape(rcpt), log)
    assert re.search(r"to=<%s> .*status=sent code=250" % re.escape(rcpt), log)
    wait_queue_empty(a)


def test_notify_success_gives_relayed_dsn(world):
    a, sink = world["a"], world["sink"]
    subject = unique("notify-success")
    rcpt = "s%s@sink.test" % unique("")
    submit(a, [rcpt], subject, rcpt_options=["NOTIFY=SUCCESS"])
    assert wait_for(lambda: sink.messages_to(rcpt))
    reports = wait_for(lambda: dsns(a, subject))
    assert reports, a.log_text()[-3000:]
    block = status_blocks(reports[0])[1]
    # aiosmtpd offers no DSN: we report that we relayed it.
    assert block["Action"] == "relayed"
    assert block["Final-Recipient"] == "rfc822; %s" % rcpt


def test_notify_never_gives_no_dsn(world):
    a = world["a"]
    subject = unique("notify-never")
    submit(a, ["reject2@sink.test"], subject, rcpt_options=["NOTIFY=NEVER"])
    wait_queue_empty(a)
    time.sleep(0.5)
    assert dsns(a, subject) == []


def test_static_route(world):
    """routed.test has no DNS records at all: the route names the host."""
    a, sink = world["a"], world["sink"]
    rcpt = "r%s@routed.test" % unique("")
    submit(a, [rcpt], unique("routed"))
    assert wait_for(lambda: sink.messages_to(rcpt)), a.log_text()[-3000:]
    assert re.search(r"to=<%s> relay=%s\[%s\]:\d+ .*status=sent" % (re.escape(rcpt), SINK_IP,
                                                                    SINK_IP), a.log_text())


def test_address_literal(world):
    a, sink = world["a"], world["sink"]
    rcpt = "lit%s@[%s]" % (unique(""), SINK_IP)
    submit(a, [rcpt], unique("literal"))
    assert wait_for(lambda: sink.messages_to(rcpt)), a.log_text()[-3000:]


def test_smtputf8_to_a_server_without_it_bounces(world):
    """The sink offers no SMTPUTF8: a UTF-8 recipient cannot be sent there (RFC 6531 §3.4)."""
    a, sink = world["a"], world["sink"]
    subject = unique("utf8")
    rcpt = "j\u00f6rg%s@sink.test" % unique("")
    msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nGr\u00fc\u00dfe\r\n"
           % (ALICE, rcpt, subject)).encode()
    with smtplib.SMTP("127.0.0.1", a.submission_port, timeout=15,
                      local_hostname="client.test") as s:
        s.starttls(context=tls_client_context())
        s.login(ALICE, ALICE_PW)
        assert s.sendmail(ALICE, [rcpt], msg, mail_options=["SMTPUTF8", "BODY=8BITMIME"]) == {}
    reports = wait_for(lambda: dsns(a, subject))
    assert reports, a.log_text()[-3000:]
    report = reports[0]
    parts = list(report.iter_parts())
    assert parts[1].get_content_type() == "message/global-delivery-status"
    # The raw report: UTF-8 addresses as they are (RFC 6533 utf-8 address type).
    raw = [stored_without_return_path(a, ALICE, m["uid"]) for m in a.mail_list(ALICE)]
    raw = [r for r in raw if subject.encode() in r][0]
    assert ("Final-Recipient: utf-8; %s\r\nAction: failed\r\nStatus: 5.6.7\r\n"
            % rcpt).encode() in raw
    assert sink.messages_to(rcpt) == []


def test_mandatory_tls_without_starttls_is_not_sent(world):
    """tlsonly.test is in outbound_tls_required; its MX (the sink) offers no STARTTLS."""
    a, sink = world["a"], world["sink"]
    rcpt = "t%s@tlsonly.test" % unique("")
    submit(a, [rcpt], unique("tlsonly"))
    assert wait_for(lambda: re.search(r"to=<%s> .*status=deferred" % re.escape(rcpt),
                                      a.log_text())), a.log_text()[-3000:]
    assert sink.messages_to(rcpt) == []
    entry = [e for e in a.queue_entries() if e["domain"] == "tlsonly.test"]
    assert len(entry) == 1
    assert "TLS" in entry[0]["last_error"] or "STARTTLS" in entry[0]["last_error"], entry
    a.cli("queue", "delete", entry[0]["id"], "--silent")


def test_smarthost_with_auth_over_tls(world, tmp_path_factory):
    """Instance C sends everything through B's submission port (STARTTLS, AUTH)."""
    b = world["b"]
    if "a.test" not in b.cli("domain", "list").stdout.split():
        b.cli("domain", "add", "a.test")
        b.add_user(ALICE, "Smarthost-Secret-3")
    pwfile = tmp_path_factory.mktemp("smarthost") / "password"
    pwfile.write_text("Smarthost-Secret-3\n")
    pwfile.chmod(0o600)
    c = Server(tmp_path_factory.mktemp("outbound_c"), hostname="mx.c.test", extra_conf={
        "outbound_enabled": "yes", "dns_resolver": "127.0.0.1:%d" % world["dns"].port,
        "smarthost": "127.0.0.1:%d" % b.submission_port, "smarthost_user": ALICE,
        "smarthost_password_file": str(pwfile), "smarthost_tls_verify": "no"})
    c.cli("domain", "add", "a.test")
    c.add_user(ALICE, ALICE_PW)
    c.start()
    try:
        subject = unique("smarthost")
        submit(c, ["zed@sink.test"], subject)
        assert wait_for(lambda: [q for q in b.queue_entries() if q["domain"] == "sink.test"]), (
            c.log_text()[-3000:], b.log_text()[-3000:])
        log = c.log_text()
        assert re.search(r'to=<zed@sink.test> relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d '
                         r'tls="TLSv1\.[23] .*status=sent' % b.submission_port, log), log[-2000:]
        assert "Smarthost-Secret-3" not in log
        assert re.search(r"event=auth result=ok user=alice@a\.test mech=PLAIN", b.log_text())
    finally:
        c.stop_and_check()


def test_dane_matching_tlsa_delivers(world):
    a, b = world["a"], world["b"]
    subject = unique("dane")
    submit(a, ["bob@dane.test"], subject)
    got = wait_for(lambda: [m for m in b.mail_list("bob@dane.test") if m["subject"] == subject])
    assert got, a.log_text()[-3000:]
    assert re.search(r'to=<bob@dane.test> relay=mx\.dane\.test\[%s\]:\d+ tls="TLSv1\.\d[^"]*" '
                     r'verify="verified \(DANE TLSA 3 1 1\)" status=sent' % B_IP,
                     a.log_text()), a.log_text()[-3000:]


def test_dane_mismatching_tlsa_is_not_used(world):
    a, b = world["a"], world["b"]
    subject = unique("dane-bad")
    submit(a, ["bob@bad.dane.test"], subject)
    assert wait_for(lambda: re.search(r"to=<bob@bad.dane.test> .*status=deferred",
                                      a.log_text())), a.log_text()[-3000:]
    assert [m for m in b.mail_list("bob@bad.dane.test") if m["subject"] == subject] == []
    entry = [e for e in a.queue_entries() if e["domain"] == "bad.dane.test"]
    assert len(entry) == 1
    a.cli("queue", "delete", entry[0]["id"], "--silent")


def test_mta_sts_enforce_with_valid_certificate(world):
    a, b = world["a"], world["b"]
    subject = unique("sts")
    submit(a, ["bob@sts.test"], subject)
    got = wait_for(lambda: [m for m in b.mail_list("bob@sts.test") if m["subject"] == subject])
    assert got, a.log_text()[-3000:]
    log = a.log_text()
    assert re.search(r"event=mta-sts domain=sts.test id=1 mode=enforce max_age=86400", log)
    assert re.search(r'to=<bob@sts.test> relay=mx\.sts\.test\[%s\]:\d+ tls="TLSv1\.\d[^"]*" '
                     r'verify="verified \(CA chain, host name\)" status=sent' % B_IP, log), log[-3000:]


def test_mta_sts_enforce_with_wrong_certificate_is_not_sent(world):
    a, b = world["a"], world["b"]
    subject = unique("badsts")
    submit(a, ["bob@badsts.test"], subject)
    assert wait_for(lambda: re.search(r"to=<bob@badsts.test> .*status=deferred",
                                      a.log_text())), a.log_text()[-3000:]
    assert [m for m in b.mail_list("bob@badsts.test") if m["subject"] == subject] == []
    # The certificate was checked and refused; no plain-text retry was made.
    assert not re.search(r"to=<bob@badsts.test> .*status=sent", a.log_text())
    entry = [e for e in a.queue_entries() if e["domain"] == "badsts.test"]
    a.cli("queue", "delete", entry[0]["id"], "--silent")


def test_mta_sts_enforce_mx_not_in_policy(world):
    a, b = world["a"], world["b"]
    subject = unique("nomx")
    submit(a, ["bob@nomx.test"], subject)
    assert wait_for(lambda: re.search(r"to=<bob@nomx.test> .*status=deferred .*MTA-STS",
                                      a.log_text())), a.log_text()[-3000:]
    assert "mx=mx.nomx.test result=not-in-policy mode=enforce" in a.log_text()
    assert [m for m in b.mail_list("bob@nomx.test") if m["subject"] == subject] == []
    entry = [e for e in a.queue_entries() if e["domain"] == "nomx.test"]
    a.cli("queue", "delete", entry[0]["id"], "--silent")


def test_requiretls(world):
    """RFC 8689: REQUIRETLS offered over TLS only (587 and 25); a REQUIRETLS message goes
    over verified TLS to a host that offers it (B through MTA-STS), and bounces, header
    only, when the host cannot keep the promise (the sink has no TLS)."""
    a, b = world["a"], world["b"]
    with smtplib.SMTP("127.0.0.1", a.submission_port, timeout=15,
                      local_hostname="client.test") as s:
        s.ehlo()
        assert not s.has_extn("requiretls")
        s.starttls(context=tls_client_context())
        s.ehlo()
        assert s.has_extn("requiretls")
    with smtplib.SMTP("127.0.0.1", b.smtp_port, timeout=15, local_hostname="client.test") as s:
        s.ehlo()
        assert not s.has_extn("requiretls")
        code, _ = s.mail(ALICE, ["REQUIRETLS"])
        assert code == 530
    good, bad = unique("rtls-ok"), unique("rtls-bad")
    submit(a, ["bob@sts.test"], good, mail_options=["REQUIRETLS"])
    submit(a, ["rt%s@sink.test" % unique("")], bad, mail_options=["REQUIRETLS"])
    got = wait_for(lambda: [m for m in b.mail_list("bob@sts.test") if m["subject"] == good])
    assert got, a.log_text()[-3000:]
    reports = wait_for(lambda: dsns(a, bad))
    assert reports, a.log_text()[-3000:]
    block = status_blocks(reports[0])[1]
    assert block["Action"] == "failed" and block["Status"] == "5.7.30"
    assert list(reports[0].iter_parts())[2].get_content_type() == "text/rfc822-headers"


def test_kill_during_delivery_delivers_after_restart(world):
    a, sink = world["a"], world["sink"]
    sink.data_started.clear()
    rcpt = "slow%s@sink.test" % unique("")
    submit(a, [rcpt], unique("kill"))
    assert sink.data_started.wait(15), a.log_text()[-3000:]
    a.kill()
    a.start()
    # The restarted node frees its old lease and sends again: once more at most.
    assert wait_for(lambda: len(sink.messages_to(rcpt)) >= 2 and a.queue_entries() == [], 30), (
        sink.messages_to(rcpt), a.log_text()[-3000:])
    assert len(sink.messages_to(rcpt)) == 2


def test_domain_concurrency(world):
    """outbound_domain_concurrency = 1: two messages to one domain go one after the other
    (the sink sees at most one of them at a time); with the default both go at once."""
    a, sink = world["a"], world["sink"]

    def two_slow_messages():
        sink.slow_max = 0
        rcpts = ["slow%s@sink.test" % unique("") for _ in range(2)]
        with smtplib.SMTP("127.0.0.1", a.submission_port, timeout=15,
                          local_hostname="client.test") as s:
            s.starttls(context=tls_client_context())
            s.login(ALICE, ALICE_PW)
            for r in rcpts:
                assert s.sendmail(ALICE, [r], b"From: <%s>\r\nSubject: c\r\n\r\nx\r\n"
                                  % ALICE.encode()) == {}
        assert wait_for(lambda: all(sink.messages_to(r) for r in rcpts), 30), a.log_text()[-3000:]
        wait_queue_empty(a)
        return sink.slow_max

    reload_with(a, {"outbound_domain_concurrency": "1"})
    try:
        assert two_slow_messages() == 1
    finally:
        reload_with(a, {"outbound_domain_concurrency": "20"})
    assert two_slow_messages() == 2


def test_delay_warning_then_expiry(world):
    """Runs last: it shortens A's queue times by a reload."""
    a = world["a"]
    reload_with(a, {"queue_delay_warning": "1s", "queue_lifetime": "5s"})
    subject = unique("never")
    rcpt = "never%s@sink.test" % unique("")
    submit(a, [rcpt], subject)
    delayed = wait_for(lambda: [r for r in dsns(a, subject)
                                if status_blocks(r)[1]["Action"] == "delayed"], 10)
    assert len(delayed) == 1, a.log_text()[-3000:]
    block = status_blocks(delayed[0])[1]
    assert block["Status"] == "4.2.0"
    assert block["Will-Retry-Until"]
    assert "mailbox busy" in block["Diagnostic-Code"]
    assert list(delayed[0].iter_parts())[2].get_content_type() == "text/rfc822-headers"
    failed = wait_for(lambda: [r for r in dsns(a, subject)
                               if status_blocks(r)[1]["Action"] == "failed"], 15)
    assert len(failed) == 1, a.log_text()[-3000:]
    assert status_blocks(failed[0])[1]["Status"] == "4.2.0"
    wait_queue_empty(a)
    assert re.search(r"to=<%s> .*status=expired" % re.escape(rcpt), a.log_text())
    # One warning only.
    assert len([r for r in dsns(a, subject) if status_blocks(r)[1]["Action"] == "delayed"]) == 1
