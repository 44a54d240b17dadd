"""DNS for outbound delivery, through `posthorn dns TYPE NAME` against the test DNS server
(tests/integration/dns_server.py): MX with several preferences, A, AAAA, CNAME, NXDOMAIN,
NODATA, TXT of several strings, TLSA, reserved names (.test, .invalid, localhost) asked of the
configured server instead of answered by libunbound, answers too large for UDP fetched over
TCP, SERVFAIL and a dropped query as temporary failures after dns_timeout. DNSSEC: a zone
signed with ldns-signzone, its DS as dns_trust_anchor: its records (and its NSEC-proven
NXDOMAIN and NODATA) are secure, an unsigned zone's are not, a broken signature is bogus.
"""

import re
import time

import pytest

from conftest import run_cli
from dns_server import DNSServer, sign_zone, tamper_signature

TLSA_HEX = "8f2b" * 16

ZONE = """
$TTL 300
example.test.            IN SOA ns.example.test. hostmaster.example.test. 1 60 60 600 120
example.test.            IN MX 20 mx2.example.test.
example.test.            IN MX 10 MX1.Example.TEST.
example.test.            IN MX 10 mx1b.example.test.
example.test.            IN TXT "v=spf1 ip4:127.0.0.0/8 " "-all"
quoted.example.test.     IN TXT "say \\"hi\\"" ""
mx1.example.test.        IN A 127.0.0.2
mx1.example.test.        IN A 127.0.0.3
mx1.example.test.        IN AAAA ::1
mx1.example.test.        IN AAAA 2001:db8::25
alias.example.test. 60   IN CNAME mx1.example.test.
_25._tcp.mx1.example.test. IN TLSA 3 1 1 %s
nullmx.test.             IN MX 0 .
host.invalid.            IN A 127.0.0.7
localhost.               IN A 127.0.0.53
""" % TLSA_HEX

# A TXT RRset far above 1232 octets: truncated over UDP, so fetched over TCP.
BIG = "".join('big.example.test. IN TXT "%s"\n' % (("%02d" % i) * 100) for i in range(20))


@pytest.fixture(scope="module")
def dns():
    server = DNSServer(ZONE + BIG).start()
    server.drop("slow.example.test")
    server.servfail("broken.example.test")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def conf(tmp_path_factory, dns):
    path = tmp_path_factory.mktemp("dns") / "posthorn.conf"
    path.write_text("dns_resolver = %s\ndns_timeout = 2\n" % dns.address)
    return path


def lookup(conf, rtype, name, timeout=60):
    p = run_cli(["dns", rtype, name], conf=conf, timeout=timeout)
    lines = p.stdout.splitlines()
    assert lines, "no output: %r" % p.stderr
    m = re.fullmatch(r"status=(\w+) secure=(yes|no) ttl=(\d+)", lines[-1])
    assert m, lines[-1]
    status, secure, ttl = m.group(1), m.group(2), int(m.group(3))
    assert p.returncode == (0 if status == "ok" else 1), (p.returncode, p.stdout, p.stderr)
    return lines[:-1], status, secure, ttl, p


def test_mx_preferences(conf):
    records, status, secure, ttl, _ = lookup(conf, "mx", "example.test")
    assert status == "ok" and secure == "no" and ttl == 300
    assert sorted(records) == ["MX 10 mx1.example.test", "MX 10 mx1b.example.test",
                               "MX 20 mx2.example.test"]


def test_null_mx(conf):
    records, status, _, _, _ = lookup(conf, "mx", "nullmx.test.")
    assert status == "ok"
    assert records == ["MX 0 ."]


def test_a_and_aaaa(conf):
    records, status, _, _, _ = lookup(conf, "a", "mx1.example.test")
    assert status == "ok"
    assert sorted(records) == ["A 127.0.0.2", "A 127.0.0.3"]
    records, status, _, _, _ = lookup(conf, "AAAA", "MX1.example.test")
    assert status == "ok"
    assert sorted(records) == ["AAAA 2001:db8::25", "AAAA ::1"]


def test_cname_to_a(conf):
    records, status, _, ttl, _ = lookup(conf, "a", "alias.example.test")
    assert status == "ok"
    assert sorted(records) == ["A 127.0.0.2", "A 127.0.0.3"]
    assert ttl == 60  # the CNAME's TTL is the smallest on the way


def test_nxdomain(conf):
    records, status, secure, ttl, _ = lookup(conf, "mx", "nosuch.example.test")
    assert (records, status, secure) == ([], "nxdomain", "no")
    assert ttl == 120  # the SOA's MINIMUM (RFC 2308)


def test_nodata(conf):
    records, status, _, ttl, _ = lookup(conf, "mx", "mx1.example.test")
    assert (records, status) == ([], "nodata")
    assert ttl == 120
    records, status, _, _, _ = lookup(conf, "tlsa", "_25._tcp.mx2.example.test")
    assert status == "nxdomain"


def test_txt_strings_concatenated(conf):
    records, status, _, _, _ = lookup(conf, "txt", "example.test")
    assert status == "ok"
    assert records == ['TXT "v=spf1 ip4:127.0.0.0/8 -all"']
    records, status, _, _, _ = lookup(conf, "txt", "quoted.example.test")
    assert records == ['TXT "say \\"hi\\""']


def test_tlsa(conf):
    records, status, secure, _, _ = lookup(conf, "tlsa", "_25._tcp.mx1.example.test")
    assert status == "ok" and secure == "no"
    assert records == ["TLSA 3 1 1 " + TLSA_HEX]


def test_reserved_names_asked_of_the_server(conf, dns):
    """libunbound answers .test, .invalid and localhost itself unless told otherwise."""
    records, status, _, _, _ = lookup(conf, "a", "host.invalid")
    assert (records, status) == (["A 127.0.0.7"], "ok")
    records, status, _, _, _ = lookup(conf, "a", "localhost")
    assert (records, status) == (["A 127.0.0.53"], "ok")
    lookup(conf, "mx", "other.test")
    asked = {(name, rtype) for name, rtype, _ in dns.queries}
    assert ("host.invalid", "A") in asked
    assert ("localhost", "A") in asked
    assert ("other.test", "MX") in asked


def test_large_answer_over_tcp(conf, dns):
    records, status, _, _, _ = lookup(conf, "txt", "big.example.test")
    assert status == "ok"
    assert sorted(records) == sorted('TXT "%s"' % (("%02d" % i) * 100) for i in range(20))
    assert ("big.example.test", "TXT", "tcp") in dns.queries


def test_servfail_is_tempfail(conf):
    records, status, secure, _, p = lookup(conf, "a", "broken.example.test")
    assert (records, status, secure) == ([], "tempfail", "no")


def test_dropped_query_times_out(conf):
    start = time.monotonic()
    records, status, _, ttl, p = lookup(conf, "mx", "slow.example.test")
    elapsed = time.monotonic() - start
    assert (records, status, ttl) == ([], "tempfail", 0)
    assert "timeout" in p.stderr
    # dns_timeout = 2 ends it, not libunbound's own give-up (minutes) nor the default 10 s
    assert 1.5 <= elapsed < 9, elapsed


def test_usage_errors(conf):
    p = run_cli(["dns", "ns", "example.test"], conf=conf)
    assert p.returncode == 1 and "unknown type" in p.stderr
    p = run_cli(["dns", "a", "bad..name"], conf=conf)
    assert p.returncode == 1 and "invalid domain name" in p.stderr
    p = run_cli(["dns", "a"], conf=conf)
    assert p.returncode == 2


def test_bad_resolver_setting(tmp_path):
    path = tmp_path / "posthorn.conf"
    path.write_text("dns_resolver = dns.example.test\n")
    p = run_cli(["dns", "a", "example.test"], conf=path)
    assert p.returncode == 1
    assert "dns_resolver: expected IP or IP:PORT" in p.stderr


SIGNED = """
$ORIGIN signed.test.
$TTL 300
@                 IN SOA ns.signed.test. hostmaster.signed.test. 1 60 60 600 120
@                 IN NS ns
@                 IN MX 10 mx
ns                IN A 127.0.0.1
mx                IN A 127.0.0.20
tampered          IN A 127.0.0.21
_25._tcp.mx       IN TLSA 3 1 1 %s
""" % TLSA_HEX

UNSIGNED = """
unsigned.test.    300 IN SOA ns.unsigned.test. hostmaster.unsigned.test. 1 60 60 600 120
mx.unsigned.test. 300 IN A 127.0.0.20
_25._tcp.mx.unsigned.test. 300 IN TLSA 3 1 1 %s
""" % TLSA_HEX


@pytest.fixture(scope="module")
def dnssec_conf(tmp_path_factory):
    keys = tmp_path_factory.mktemp("keys")
    signed, anchor = sign_zone(SIGNED, "signed.test", keys)
    server = DNSServer(tamper_signature(signed, "tampered.signed.test", "A") + UNSIGNED)
    server.start()
    path = keys / "posthorn.conf"
    path.write_text("dns_resolver = %s\ndns_trust_anchor = %s\ndns_timeout = 5\n"
                    % (server.address, anchor))
    yield path
    server.stop()


def test_dnssec_secure(dnssec_conf):
    records, status, secure, _, _ = lookup(dnssec_conf, "a", "mx.signed.test")
    assert (records, status, secure) == (["A 127.0.0.20"], "ok", "yes")
    records, status, secure, _, _ = lookup(dnssec_conf, "tlsa", "_25._tcp.mx.signed.test")
    assert (records, status, secure) == (["TLSA 3 1 1 " + TLSA_HEX], "ok", "yes")
    records, status, secure, _, _ = lookup(dnssec_conf, "mx", "signed.test")
    assert (records, status, secure) == (["MX 10 mx.signed.test"], "ok", "yes")


def test_dnssec_secure_denial(dnssec_conf):
    """NSEC proves the absence: DANE needs a secure 'no TLSA' as much as a secure TLSA."""
    _, status, secure, _, _ = lookup(dnssec_conf, "aaaa", "mx.signed.test")
    assert (status, secure) == ("nodata", "yes")
    _, status, secure, _, _ = lookup(dnssec_conf, "tlsa", "_25._tcp.ns.signed.test")
    assert (status, secure) == ("nxdomain", "yes")


def test_dnssec_unsigned_zone_is_insecure(dnssec_conf):
    records, status, secure, _, _ = lookup(dnssec_conf, "a", "mx.unsigned.test")
    assert (records, status, secure) == (["A 127.0.0.20"], "ok", "no")
    records, status, secure, _, _ = lookup(dnssec_conf, "tlsa", "_25._tcp.mx.unsigned.test")
    assert (status, secure) == ("ok", "no")


def test_dnssec_tampered_signature_is_bogus(dnssec_conf):
    records, status, secure, ttl, p = lookup(dnssec_conf, "a", "tampered.signed.test")
    assert (records, status, secure, ttl) == ([], "bogus", "no", 0)
    assert "validation failure" in p.stderr


def test_without_anchor_nothing_is_secure(dnssec_conf, tmp_path):
    """With dns_resolver set and no dns_trust_anchor, answers are not validated."""
    text = dnssec_conf.read_text()
    conf = tmp_path / "posthorn.conf"
    conf.write_text("".join(l + "\n" for l in text.splitlines()
                            if not l.startswith("dns_trust_anchor")))
    records, status, secure, _, _ = lookup(conf, "a", "tampered.signed.test")
    assert (records, status, secure) == (["A 127.0.0.21"], "ok", "no")
    _, status, secure, _, _ = lookup(conf, "a", "mx.signed.test")
    assert (status, secure) == ("ok", "no")


def test_ipv6_resolver(tmp_path):
    try:
        server = DNSServer(ZONE, host="::1").start()
    except OSError:
        pytest.skip("no IPv6 loopback")
    try:
        conf = tmp_path / "posthorn.conf"
        conf.write_text("dns_resolver = %s\ndns_timeout = 2\n" % server.address)
        assert server.address.startswith("[::1]:")
        records, status, _, _, _ = lookup(conf, "a", "mx1.example.test")
        assert (sorted(records), status) == (["A 127.0.0.2", "A 127.0.0.3"], "ok")
    finally:
        server.stop()
