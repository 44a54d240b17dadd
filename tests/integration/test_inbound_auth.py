"""Checks on arrival at port 25 (issue 12): SPF at MAIL FROM, DKIM and DMARC at the end of
data, answered by the local authoritative DNS server (dns_server.py), and the one
Authentication-Results header (RFC 8601) each delivered message carries, parsed with Debian's
python3-authres. Messages are signed by dkimpy (python3-dkim) with RSA and Ed25519 keys and
fetched back over IMAP. One server for the module."""

import imaplib
import re
import smtplib
import time

import authres
import authres.arc
import authres.dmarc
import dkim
import pytest

from conftest import HOST, USERS, RawSMTP, make_server, reload_with, unique
from dkim_keys import make_keys
from dns_server import DNSServer
from imap_helpers import imap_ports, tls_ctx, wait_imap

DEMO = "demo@example.test"
AUTHSERV = "mx.example.test"  # the server's hostname
AR_CTX = authres.FeatureContext(authres.dmarc, authres.arc)


def txt(name, text):
    """A zone-file TXT line, split into character-strings of at most 255 octets."""
    parts = " ".join('"%s"' % text[i:i + 255] for i in range(0, len(text), 255))
    return "%s. IN TXT %s\n" % (name, parts)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """The DKIM keys, with their records as text for the zone."""
    return {alg: (key, rec.decode())
            for alg, (key, rec) in make_keys(tmp_path_factory.mktemp("arkeys")).items()}


def zone(keys):
    z = "$TTL 300\n"
    z += "test. IN SOA ns.test. hostmaster.test. 1 60 60 600 60\n"
    # SPF
    z += txt("spfpass.test", "v=spf1 ip4:127.0.0.1 -all")
    z += txt("spfpass2.test", "v=spf1 ip4:127.0.0.2 -all")  # only from 127.0.0.2
    z += txt("spffail.test", "v=spf1 ip4:192.0.2.1 -all")
    z += txt("softfail.test", "v=spf1 ~all")
    z += "nospf.test. IN A 192.0.2.9\n"
    z += txt("helo.test", "v=spf1 ip4:127.0.0.1 -all")
    z += txt("slow.test", "v=spf1 -all")  # dropped: no answer comes
    # ptr: 127.0.0.1's PTR name (validated by its A record) is under ptr.test
    z += txt("ptr.test", "v=spf1 ptr:ptr.test -all")
    z += "1.0.0.127.in-addr.arpa. IN PTR host.ptr.test.\n"
    z += "host.ptr.test. IN A 127.0.0.1\n"
    # 127.0.0.8's PTR name is not confirmed: its address is another (smtp_rdns.c)
    z += "8.0.0.127.in-addr.arpa. IN PTR forged.ptr.test.\n"
    z += "forged.ptr.test. IN A 127.0.0.9\n"
    # 127.0.0.9 has two PTR names: the one whose address is 127.0.0.9 confirms
    z += "9.0.0.127.in-addr.arpa. IN PTR wrong9.ptr.test.\n"
    z += "9.0.0.127.in-addr.arpa. IN PTR multi9.ptr.test.\n"
    z += "wrong9.ptr.test. IN A 127.0.0.99\n"
    z += "multi9.ptr.test. IN A 127.0.0.9\n"
    # DKIM and DMARC: signed.test passes DMARC only through DKIM (SPF fails)
    for dom in ("signed.test", "nodmarc.test"):
        z += txt(dom, "v=spf1 -all")
        z += txt("sel-rsa._domainkey." + dom, keys["rsa"][1])
        z += txt("sel-ed._domainkey." + dom, keys["ed25519"][1])
    z += txt("_dmarc.signed.test", "v=DMARC1; p=reject")
    z += txt("reject.test", "v=spf1 -all")
    z += txt("_dmarc.reject.test", "v=DMARC1; p=reject; pct=100")
    z += txt("quarantine.test", "v=spf1 -all")
    z += txt("_dmarc.quarantine.test", "v=DMARC1; p=quarantine")
    z += txt("skip.test", "v=spf1 -all")
    z += txt("_dmarc.skip.test", "v=DMARC1; p=reject")
    # ARC: listed.test's mail passes through a list that seals it (lists.test, trusted; or
    # rogue.test, not trusted) and fails DMARC's p=reject on its own
    z += txt("listed.test", "v=spf1 -all")
    z += txt("_dmarc.listed.test", "v=DMARC1; p=reject")
    for dom in ("lists.test", "rogue.test"):
        z += txt("sel-rsa._domainkey." + dom, keys["rsa"][1])
    # DNS lists: 127.0.0.5 is blocked; 127.0.0.6 is blocked and allowed (allowed wins);
    # for 127.0.0.7 the block list answers with a refusal code (never a listing)
    z += "5.0.0.127.bl.test. IN A 127.0.0.2\n"
    z += "6.0.0.127.bl.test. IN A 127.0.0.3\n"
    z += "6.0.0.127.wl.test. IN A 127.0.10.1\n"
    z += "7.0.0.127.bl.test. IN A 127.255.255.254\n"
    return z


@pytest.fixture(scope="module")
def dns(keys):
    srv = DNSServer(zone(keys))
    srv.start()
    srv.drop("slow.test")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, dns):
    srv = make_server(tmp_path_factory, "inbound_auth", {
        "inbound_checks": "yes",
        "dns_resolver": dns.address,
        "dns_timeout": "1s",
        # other.test is ours (conftest DOMAINS): its mail is checked, never acted on
        "inbound_checks_skip_domains": "other.test",
        "arc_trusted_sealers": "lists.test",
        "dnsbl_zones": "bl.test=127.0.0.[2..11]",
        "dnswl_zones": "wl.test",
    })
    srv.start()
    yield srv
    srv.stop_and_check()


def message(subject, from_addr, extra_headers=b"", body=b"Hello.\r\n"):
    return (extra_headers +
            b"From: <" + from_addr.encode() + b">\r\n"
            b"To: <" + DEMO.encode() + b">\r\n"
            b"Subject: " + subject.encode() + b"\r\n"
            b"Message-ID: <" + subject.encode() + b"@example>\r\n"
            b"\r\n" + body)


def sign(msg, keys, alg, domain):
    selector = b"sel-ed" if alg == "ed25519" else b"sel-rsa"
    algorithm = b"ed25519-sha256" if alg == "ed25519" else b"rsa-sha256"
    return dkim.sign(msg, selector, domain.encode(), keys[alg][0],
                     canonicalize=(b"relaxed", b"relaxed"), signature_algorithm=algorithm) + msg


def send(server, sender, msg, source="127.0.0.1", helo="client.test", rcpt=DEMO):
    with smtplib.SMTP(HOST, server.smtp_port, timeout=30, local_hostname=helo,
                      source_address=(source, 0)) as s:
        s.sendmail(sender, [rcpt], msg)


def fetch(server, subject, user=DEMO, boxes=("INBOX", "Junk")):
    """The stored message with this subject, from INBOX or Junk (a quarantined message is
    in Junk), over IMAP; boxes narrows the search."""
    wait_imap(server)
    m = imaplib.IMAP4(HOST, imap_ports(server)[0], timeout=30)
    m.starttls(ssl_context=tls_ctx())
    m.login(user, USERS[user])
    try:
        for box in boxes:
            if m.select(box, readonly=True)[0] != "OK":
                continue
            typ, data = m.uid("SEARCH", "HEADER", "Subject", '"%s"' % subject)
            assert typ == "OK"
            uids = data[0].split()
            if uids:
                assert len(uids) == 1
                typ, data = m.uid("FETCH", uids[0], "(BODY.PEEK[])")
                assert typ == "OK"
                return data[0][1]
        return None
    finally:
        m.logout()


def header_fields(raw):
    """The header block's fields, unfolded, in order: [(name, value)]."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    fields = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t"):
            fields[-1] = (fields[-1][0], fields[-1][1] + line)
        else:
            name, _, value = line.partition(":")
            fields.append((name, value))
    return fields


def our_ar(raw):
    """The one Authentication-Results field with our authserv-id, parsed: {method: [res]}.
    It must be the first field of the message."""
    fields = header_fields(raw)
    assert fields[0][0] == "Authentication-Results", fields[:3]
    ours = [v for n, v in fields if n.lower() == "authentication-results"
            and v.strip().split(";")[0].strip().lower() == AUTHSERV]
    assert len(ours) == 1, ours
    parsed = AR_CTX.parse("Authentication-Results:" + ours[0])
    assert parsed.authserv_id == AUTHSERV
    out = {}
    for r in parsed.results:
        props = {"%s.%s" % (p.type, p.name): p.value for p in r.properties}
        out.setdefault(r.method, []).append((r.result, props, r.reason))
    return out


def deliver_and_parse(server, sender, from_addr, subject=None, **kw):
    subject = subject or unique("ar")
    send(server, sender, message(subject, from_addr), **kw)
    raw = fetch(server, subject)
    assert raw is not None
    return our_ar(raw)


@pytest.mark.parametrize("sender,source,want", [
    ("a@spfpass.test", "127.0.0.1", "pass"),
    ("a@spfpass2.test", "127.0.0.2", "pass"),
    ("a@spfpass2.test", "127.0.0.1", "fail"),
    ("a@spffail.test", "127.0.0.1", "fail"),
    ("a@softfail.test", "127.0.0.1", "softfail"),
    ("a@nospf.test", "127.0.0.1", "none"),
    ("a@slow.test", "127.0.0.1", "temperror"),
    ("a@ptr.test", "127.0.0.1", "pass"),   # PTR lookups through net/dns
    ("b@ptr.test", "127.0.0.2", "fail"),   # no PTR record for 127.0.0.2
])
def test_spf(server, sender, source, want):
    # An SPF fail is only recorded (spf_reject_fail = no); a temperror never refuses.
    ar = deliver_and_parse(server, sender, sender, source=source)
    assert ar["spf"] == [(want, {"smtp.mailfrom": sender}, ar["spf"][0][2])]
    assert ar["dkim"] == [("none", {}, None)]
    assert ar["dmarc"][0][0] == "none"
    assert ar["dmarc"][0][1] == {"header.from": sender.split("@")[1]}


@pytest.mark.parametrize("source,ptr,name,result", [
    ("127.0.0.1", "host.ptr.test", "host.ptr.test", "OK"),  # the name's address is 127.0.0.1
    ("127.0.0.8", "forged.ptr.test", "unknown", "FORGED"),  # the name's address is another
    ("127.0.0.9", "multi9.ptr.test", "multi9.ptr.test", "OK"),  # the second of two names
])
def test_client_name(server, source, ptr, name, result):
    # The forward-confirmed name of the client (smtp_rdns.c) in our Received field. The
    # lookups start at connect and nothing waits for them: the test waits for the log line.
    line = "event=rdns ip=%s ptr=%s name=%s result=%s" % (source, ptr, name, result)
    before = server.log_text().count(line)
    subject = unique("rdns")
    with smtplib.SMTP(HOST, server.smtp_port, timeout=30, local_hostname="client.test",
                      source_address=(source, 0)) as s:
        deadline = time.monotonic() + 10
        while server.log_text().count(line) == before:
            assert time.monotonic() < deadline, "no event=rdns line"
            time.sleep(0.05)
        s.sendmail("a@nospf.test", [DEMO], message(subject, "a@nospf.test"))
    raw = fetch(server, subject)
    assert b"Received: from client.test (%s [%s])" % (name.encode(), source.encode()) in raw


def test_client_name_lookup_off(server):
    # smtp_peername_lookup = no: no lookups at all, the name is unknown.
    reload_with(server, {"smtp_peername_lookup": "no"})
    try:
        before = server.log_text().count("event=rdns ")
        subject = unique("nordns")
        send(server, "a@nospf.test", message(subject, "a@nospf.test"))
        raw = fetch(server, subject)
        assert b"Received: from client.test (unknown [127.0.0.1])" in raw
        assert server.log_text().count("event=rdns ") == before
    finally:
        reload_with(server, {"smtp_peername_lookup": "yes"})


def test_spf_of_helo_for_null_sender(server):
    ar = deliver_and_parse(server, "", "a@nospf.test", helo="helo.test")
    assert ar["spf"] == [("pass", {"smtp.helo": "helo.test"}, None)]


@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
def test_dkim_pass_aligns_dmarc(server, keys, alg):
    subject = unique("dkim-" + alg)
    msg = sign(message(subject, "a@signed.test"), keys, alg, "signed.test")
    send(server, "a@signed.test", msg)  # SPF fails; p=reject, yet DKIM aligns
    ar = our_ar(fetch(server, subject))
    assert ar["spf"][0][0] == "fail"
    [(res, props, _)] = ar["dkim"]
    assert res == "pass"
    assert props["header.d"] == "signed.test"
    assert props["header.s"] == ("sel-ed" if alg == "ed25519" else "sel-rsa")
    # header.b: the first 8 characters of the signature's b= (RFC 6008)
    head = msg.split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"")
    bval = re.search(rb"[;\s]b=([^;]*)", head).group(1)
    assert props["header.b"] == re.sub(rb"\s", b"", bval)[:8].decode()
    assert ar["dmarc"] == [("pass", {"header.from": "signed.test"}, None)]


def test_dkim_fail_when_body_altered(server, keys):
    subject = unique("dkim-altered")
    msg = sign(message(subject, "a@nodmarc.test", body=b"Pay 10 EUR.\r\n"), keys, "rsa",
               "nodmarc.test")
    send(server, "a@nodmarc.test", msg.replace(b"Pay 10 EUR", b"Pay 99 EUR"))
    ar = our_ar(fetch(server, subject))
    [(res, props, reason)] = ar["dkim"]
    assert (res, props["header.d"], reason) == ("fail", "nodmarc.test",
                                                "body hash did not verify")
    assert ar["dmarc"][0][0] == "none"


def test_two_signatures(server, keys):
    subject = unique("dkim-two")
    msg = sign(sign(message(subject, "a@nodmarc.test"), keys, "rsa", "nodmarc.test"),
               keys, "ed25519", "nodmarc.test")
    send(server, "a@nodmarc.test", msg)
    ar = our_ar(fetch(server, subject))
    assert sorted((r, p["header.s"]) for r, p, _ in ar["dkim"]) == [
        ("pass", "sel-ed"), ("pass", "sel-rsa")]


def test_dmarc_reject(server):
    subject = unique("dmarc-reject")
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(server, "a@reject.test", message(subject, "a@reject.test"))
    assert e.value.smtp_code == 550
    assert e.value.smtp_error.startswith(b"5.7.1 ")
    assert b"DMARC" in e.value.smtp_error and b"reject.test" in e.value.smtp_error
    assert fetch(server, subject) is None
    assert "dmarc=fail from_domain=reject.test policy=reject action=reject" in \
        server.log_text()


def test_dmarc_quarantine(server):
    subject = unique("dmarc-quarantine")
    send(server, "a@quarantine.test", message(subject, "a@quarantine.test"))
    ar = our_ar(fetch(server, subject))
    assert ar["dmarc"] == [("fail", {"header.from": "quarantine.test"}, None)]
    # Quarantine: the recipient's Junk folder, not INBOX.
    assert fetch(server, subject, boxes=("Junk",)) is not None
    assert fetch(server, subject, boxes=("INBOX",)) is None
    lines = [l for l in server.log_text().splitlines()
             if "event=auth-results" in l and "from_domain=quarantine.test" in l]
    assert len(lines) == 1 and "policy=quarantine action=quarantine" in lines[0], lines
    assert "session=" in lines[0]


def test_skip_domains_checked_not_acted_on(server):
    # p=reject for skip.test, but the recipient's domain other.test is skipped: delivered
    # with dmarc=fail in the header.
    subject = unique("skip")
    bob = "bob@other.test"
    send(server, "a@skip.test", message(subject, "a@skip.test"), rcpt=bob)
    raw = fetch(server, subject, user=bob)
    assert raw is not None
    assert our_ar(raw)["dmarc"][0][0] == "fail"
    assert "from_domain=skip.test policy=reject action=skipped" in server.log_text()


def test_forged_authentication_results_removed(server):
    subject = unique("forged")
    forged = (b"Authentication-Results: " + AUTHSERV.encode() + b";\r\n"
              b"\tspf=pass smtp.mailfrom=a@spffail.test;\r\n\tdmarc=pass\r\n"
              b"Authentication-Results: other.example; dkim=pass header.d=x.test\r\n"
              b"authentication-results: (comment) MX.EXAMPLE.TEST; none\r\n")
    send(server, "a@spffail.test", message(subject, "a@spffail.test", extra_headers=forged))
    raw = fetch(server, subject)
    ar = our_ar(raw)  # exactly one with our authserv-id, first
    assert ar["spf"][0][0] == "fail"
    fields = header_fields(raw)
    names = [n for n, _ in fields]
    assert names[:3] == ["Authentication-Results", "Return-Path", "Received"]
    others = [v for n, v in fields if n.lower() == "authentication-results"][1:]
    assert [v.strip() for v in others] == ["other.example; dkim=pass header.d=x.test"]
    # the rest of the message is what was sent, minus the forged fields
    assert raw.endswith(message(subject, "a@spffail.test",
                                extra_headers=b"Authentication-Results: other.example; "
                                              b"dkim=pass header.d=x.test\r\n"))
    assert "event=auth-results-removed" in server.log_text()
    # the size the store recorded is that of the rewritten message
    [entry] = [m for m in server.mail_list(DEMO) if m["subject"] == subject]
    assert entry["size"] == len(raw)


def test_pipelined_commands_wait_for_spf(server):
    # MAIL waits for its DNS answers with input paused; RCPT, DATA and the message sent in
    # the same write are answered after it, in order.
    subject = unique("pipelined")
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        c.send("MAIL FROM:<a@spfpass.test>\r\nRCPT TO:<%s>\r\nDATA\r\n" % DEMO)
        assert [c.read_reply().code for _ in range(3)] == [250, 250, 354]
        c.send(message(subject, "a@spfpass.test") + b".\r\n")
        assert c.read_reply().code == 250
        c.cmd("QUIT")
    assert our_ar(fetch(server, subject))["spf"][0][0] == "pass"


def test_client_gone_during_lookup(server, dns):
    # The client leaves while MAIL waits for an answer that never comes (a dropped name
    # never asked before: libunbound caches failures for a while). Input is paused during
    # the wait, so the end of the connection is seen once the lookup has timed out and MAIL
    # was answered; the session is then freed and the server goes on (the module's clean
    # stop checks the sanitizers).
    name = unique("gone").replace("-", "") + ".test"
    dns.drop(name)
    c = RawSMTP(server.smtp_port)
    c.ehlo(name)
    c.send("MAIL FROM:<a@%s>\r\n" % name)
    c.close()
    sid = None
    deadline = time.monotonic() + 10
    while sid is None or ("session=%s proto=smtp event=disconnect" % sid) not in server.log_text():
        assert time.monotonic() < deadline, "no disconnect"
        m = re.search(r"session=(\S+) proto=smtp event=ehlo helo=%s" % name, server.log_text())
        sid = m.group(1) if m else None
        time.sleep(0.05)
    ar = deliver_and_parse(server, "a@spfpass.test", "a@spfpass.test")
    assert ar["spf"][0][0] == "pass"


def test_submission_is_not_checked(server):
    subject = unique("submission")
    with smtplib.SMTP(HOST, server.submission_port, timeout=30,
                      local_hostname="client.test") as s:
        s.starttls(context=tls_ctx())
        s.login(DEMO, USERS[DEMO])
        s.sendmail(DEMO, [DEMO], message(subject, DEMO))
    raw = fetch(server, subject)
    assert b"Authentication-Results" not in raw
    assert raw.startswith(b"Return-Path: ")


def test_checks_then_milter(server, keys):
    # The checks write the spool file from memory, then the milter (Debian's python3-milter
    # running milter_server.py) sees and edits that file: it sees our field, and the stored
    # message has the milter's changes, our one field and the client's body.
    import socket
    import subprocess
    from pathlib import Path
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(["/usr/bin/python3", str(Path(__file__).with_name("milter_server.py")),
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the test filter did not start"
                time.sleep(0.05)
        reload_with(server, {"milter": "inet:127.0.0.1:%d" % port})
        subject = unique("milter")
        body = b"Milter body.\r\n"
        msg = sign(message(subject, "a@signed.test", extra_headers=b"X-Remove-Me: x\r\n",
                           body=body), keys, "rsa", "signed.test")
        send(server, "a@signed.test", msg)
        raw = fetch(server, "[filtered] " + subject)
        assert raw is not None
        fields = header_fields(raw)
        assert fields[0] == ("X-Milter-Top", " inserted")
        ours = [v for n, v in fields if n == "Authentication-Results"]
        # the checks ran before the filter changed the (signed) Subject
        assert len(ours) == 1 and "dkim=pass" in ours[0]
        assert [n for n, _ in fields][1:4] == ["Authentication-Results", "Return-Path",
                                               "Received"]
        assert not any(n == "X-Remove-Me" for n, _ in fields)
        seen = [v for n, v in fields if n == "X-Milter-Seen"][0]
        assert "body=%d" % len(body) in seen
        assert seen.endswith("host=host.ptr.test macro__=host.ptr.test [127.0.0.1]"), seen
        assert raw.endswith(b"\r\n\r\n" + body)
    finally:
        reload_with(server, {"milter": ""})
        proc.kill()
        proc.wait()


def test_settings_spf_reject_and_dmarc_reject_off(server):
    # Last in the module: it changes the settings of the module's server.
    reload_with(server, {"spf_reject_fail": "yes", "dmarc_reject": "no"})
    try:
        # SPF fail refused at MAIL with RFC 7372's code; softfail and temperror are not
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            send(server, "a@spffail.test", message(unique("spf-reject"), "a@spffail.test"))
        assert e.value.smtp_code == 550 and e.value.smtp_error.startswith(b"5.7.23 ")
        assert "event=spf-reject from=<a@spffail.test>" in server.log_text()
        assert deliver_and_parse(server, "a@softfail.test", "a@softfail.test")["spf"][0][0] \
            == "softfail"
        # p=reject with dmarc_reject = no: quarantined instead, delivered with dmarc=fail
        # (SPF passes for spfpass.test, which is not aligned with From: reject.test)
        subject = unique("dmarc-reject-off")
        send(server, "b@spfpass.test", message(subject, "b@reject.test"))
        assert our_ar(fetch(server, subject))["dmarc"][0][0] == "fail"
        lines = [l for l in server.log_text().splitlines()
                 if "event=auth-results" in l and "spf_identity=<b@spfpass.test>" in l]
        assert len(lines) == 1 and "policy=reject action=quarantine" in lines[0], lines
    finally:
        reload_with(server, {"spf_reject_fail": "no", "dmarc_reject": "yes"})


def arc_sealed(msg, keys, sealer):
    """msg as a list at sealer passes it on: its own Authentication-Results, then an ARC set
    sealed by dkimpy."""
    srv = b"mx." + sealer.encode()
    msg = b"Authentication-Results: " + srv + b"; spf=pass smtp.mailfrom=listed.test\r\n" + msg
    return b"".join(dkim.arc_sign(msg, b"sel-rsa", sealer.encode(), keys["rsa"][0], srv)) + msg


def test_arc_trusted_sealer_overrides_dmarc(server, keys):
    # From listed.test (p=reject) through the trusted list lists.test: DMARC fails, the
    # chain passes, and the list's seal sets the policy aside (RFC 8617 §7.2.1).
    subject = unique("arc-trusted")
    send(server, "list-bounces@listed.test",
         arc_sealed(message(subject, "a@listed.test"), keys, "lists.test"))
    ar = our_ar(fetch(server, subject))
    assert ar["arc"] == [("pass", {"smtp.remote-ip": "127.0.0.1"}, None)]
    assert ar["dmarc"][0][0] == "fail"
    assert "arc=pass arc_sealer=lists.test dmarc=fail from_domain=listed.test policy=reject " \
        "action=arc-override" in server.log_text()


def test_arc_untrusted_or_broken_chain(server, keys):
    # The same from a sealer nobody trusts: refused by DMARC's p=reject.
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(server, "list-bounces@listed.test",
             arc_sealed(message(unique("arc-rogue"), "a@listed.test"), keys, "rogue.test"))
    assert e.value.smtp_code == 550
    assert "arc=pass arc_sealer=rogue.test dmarc=fail from_domain=listed.test " \
        "policy=reject action=reject" in server.log_text()
    # A chain broken after the trusted seal (the body changed): no override.
    sealed = arc_sealed(message(unique("arc-broken"), "a@listed.test"), keys, "lists.test")
    with pytest.raises(smtplib.SMTPDataError):
        send(server, "list-bounces@listed.test", sealed.replace(b"Hello.", b"Hullo."))
    assert "arc=fail arc_sealer=lists.test dmarc=fail" in server.log_text()
    # Without any ARC field, no arc= result is written.
    ar = deliver_and_parse(server, "a@nospf.test", "a@nospf.test")
    assert "arc" not in ar


def test_dns_block_and_allow_lists(server):
    # A listed client gets 554 instead of the greeting (postscreen's wording).
    with pytest.raises(smtplib.SMTPConnectError) as e:
        smtplib.SMTP(HOST, server.smtp_port, timeout=30, source_address=("127.0.0.5", 0))
    assert e.value.smtp_code == 554
    assert e.value.smtp_error == b"5.7.1 Service unavailable; client [127.0.0.5] blocked " \
        b"using bl.test"
    assert "event=dnsbl zone=bl.test ip=127.0.0.5 result=listed list=block" in server.log_text()
    # Also listed by the allow list: served. A refusal code: served, and logged.
    for source in ("127.0.0.6", "127.0.0.7"):
        ar = deliver_and_parse(server, "a@nospf.test", "a@nospf.test", source=source)
        assert ar["spf"][0][0] == "none"
    assert "event=dnsbl zone=wl.test ip=127.0.0.6 result=listed list=allow" in \
        server.log_text()
    assert "zone=bl.test result=refused" in server.log_text()


def test_large_message_goes_to_a_file_first(server, keys):
    # Beyond SMTP_SPOOL_MEM_MAX (64 KiB) the message is not held in memory but spooled to a
    # file during DATA, and the checks rewrite that file: the outcome must be the same.
    subject = unique("large")
    forged = (b"Authentication-Results: " + AUTHSERV.encode() + b"; dkim=pass\r\n")
    body = b"".join(b"line %06d of a long message, with  two spaces \r\n" % i
                    for i in range(3000))
    assert len(body) > 100 * 1024
    msg = sign(message(subject, "a@signed.test", extra_headers=forged, body=body), keys,
               "rsa", "signed.test")
    send(server, "a@signed.test", msg)
    raw = fetch(server, subject)
    ar = our_ar(raw)  # one with our authserv-id, first; the forged one is gone
    assert [r for r, _, _ in ar["dkim"]] == ["pass"]
    assert ar["dmarc"][0][0] == "pass"
    assert raw.endswith(msg.replace(forged, b""))
    [entry] = [m for m in server.mail_list(DEMO) if m["subject"] == subject]
    assert entry["size"] == len(raw)
