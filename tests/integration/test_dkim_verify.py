"""DKIM verification (RFC 6376, RFC 8463) of messages signed by dkimpy (Debian's
python3-dkim) with RSA and Ed25519 keys, both canonicalisations, l= and i=: mime/dkim_verify
(through tests/unit/dkim_check.c) must give pass where dkimpy's own verifier passes, and
fail, permerror or temperror for an altered byte, a revoked or missing key, a DNS failure,
as RFC 6376 §6.1 and RFC 8601 name them."""

import re
import subprocess
from pathlib import Path

import dkim
import pytest

from conftest import BIN
from dkim_keys import make_keys

DRIVER = Path(BIN).parent / "tests" / "dkim_check"
DOMAIN = b"example.org"

MESSAGE = (b"From: Alice <alice@example.org>\r\n"
           b"To: Bob <bob@example.net>\r\n"
           b"Subject:   a  test\t message \r\n"
           b"Date: Sun, 06 Dec 2026 23:00:00 +0000\r\n"
           b"Message-ID: <1@example.org>\r\n"
           b"\r\n"
           b"Hello Bob,  \r\n"
           b"\r\n"
           b"a line with trailing white space \t\r\n"
           + b"x" * 2000 + b"\r\n"
           b"\r\n\r\n")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("dkimkeys"))


def sign(msg, keys, alg, selector, canon=(b"relaxed", b"relaxed"), **kw):
    algorithm = b"ed25519-sha256" if alg == "ed25519" else b"rsa-sha256"
    return dkim.sign(msg, selector, DOMAIN, keys[alg][0], canonicalize=canon,
                     signature_algorithm=algorithm, **kw) + msg


def records(keys, **override):
    """Key records by name: sel-rsa and sel-ed for the two keys, changed by override."""
    recs = {"sel-rsa._domainkey.example.org": ("OK", keys["rsa"][1]),
            "sel-ed._domainkey.example.org": ("OK", keys["ed25519"][1])}
    recs.update(override)
    return recs


def verify(tmp_path, msg, recs):
    """Our results: a list of (result, domain, selector, testing, body_length, problem)."""
    f = tmp_path / "msg.eml"
    f.write_bytes(msg)
    lines = "".join("K %s %s %s\n" % (name, st, rec.hex() if rec else "-")
                    for name, (st, rec) in recs.items())
    p = subprocess.run([str(DRIVER), str(f)], input=lines.encode(), capture_output=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    out = []
    for line in p.stdout.decode().splitlines():
        r, d, s, testing, blen, problem = line.split(" ", 5)
        out.append((r, d, s, testing == "1", blen == "1", problem))
    return out


def dkimpy_verifies(msg, recs):
    def dnsfunc(name, timeout=5):
        st, rec = recs.get(name.decode().rstrip("."), ("NX", None))
        return rec if st == "OK" else None
    return dkim.verify(msg, dnsfunc=dnsfunc)


@pytest.mark.parametrize("alg,selector,canon", [
    ("rsa", b"sel-rsa", (b"relaxed", b"relaxed")),
    ("rsa", b"sel-rsa", (b"simple", b"simple")),
    ("ed25519", b"sel-ed", (b"relaxed", b"simple")),
    ("ed25519", b"sel-ed", (b"simple", b"relaxed")),
])
def test_signed_by_dkimpy_passes(tmp_path, keys, alg, selector, canon):
    msg = sign(MESSAGE, keys, alg, selector, canon)
    recs = records(keys)
    assert dkimpy_verifies(msg, recs)
    got = verify(tmp_path, msg, recs)
    assert got == [("pass", "example.org", selector.decode(), False, False, "-")], got
    # One octet changed in the body, then in a signed header field: fail, as dkimpy says.
    body_changed = msg.replace(b"Hello Bob", b"Hello Rob")
    assert not dkimpy_verifies(body_changed, recs)
    assert verify(tmp_path, body_changed, recs)[0][0::5] == ("fail", "body hash did not verify")
    head_changed = msg.replace(b"a  test", b"a  jest")
    assert not dkimpy_verifies(head_changed, recs)
    assert verify(tmp_path, head_changed, recs)[0][0::5] == ("fail", "signature did not verify")


def test_two_signatures_and_canonicalisation_edges(tmp_path, keys):
    # Relaxed canonicalisation forgives what relays do: white space changes in a header
    # field and at line ends, a header field refolded, empty lines added at the end.
    msg = sign(sign(MESSAGE, keys, "rsa", b"sel-rsa"), keys, "ed25519", b"sel-ed")
    recs = records(keys)
    got = verify(tmp_path, msg, recs)
    assert [g[0] for g in got] == ["pass", "pass"], got
    relayed = msg.replace(b"Subject:   a  test\t message \r\n", b"Subject: a test\r\n message\r\n")
    relayed = relayed.replace(b"trailing white space \t\r\n", b"trailing white space\r\n") + b"\r\n"
    assert dkimpy_verifies(relayed, recs)
    assert [g[0] for g in verify(tmp_path, relayed, recs)] == ["pass", "pass"]
    # An empty body, signed simple: the body is one CRLF (RFC 6376 §3.4.3).
    empty = sign(MESSAGE.split(b"\r\n\r\n")[0] + b"\r\n\r\n", keys, "rsa", b"sel-rsa",
                 (b"simple", b"simple"))
    assert verify(tmp_path, empty, recs)[0][0] == "pass"


def test_body_length_and_identity(tmp_path, keys):
    msg = sign(MESSAGE, keys, "rsa", b"sel-rsa", length=True, identity=b"alice@mail.example.org")
    recs = records(keys)
    assert verify(tmp_path, msg, recs)[0][:5] == ("pass", "example.org", "sel-rsa", False, True)
    # Text appended after the signed length still passes (l= is recorded, and distrusted).
    assert verify(tmp_path, msg + b"appended by a list\r\n", recs)[0][:5] == (
        "pass", "example.org", "sel-rsa", False, True)
    # A key with t=s wants i= at d= exactly.
    strict = records(keys, **{"sel-rsa._domainkey.example.org": ("OK", keys["rsa"][1] + b"; t=s")})
    assert verify(tmp_path, msg, strict)[0][0] == "permerror"


def test_key_problems(tmp_path, keys):
    msg = sign(MESSAGE, keys, "rsa", b"sel-rsa")
    name = "sel-rsa._domainkey.example.org"
    cases = [
        (("OK", b"v=DKIM1; k=rsa; p="), "permerror", "the key is revoked or missing"),
        (("NX", None), "permerror", "no key for the signature"),
        (("TEMP", None), "temperror", "DNS failure looking up the key"),
        (("OK", keys["ed25519"][1]), "permerror", "the key does not fit the signature"),
        (("OK", b"v=DKIM1; k=rsa; h=sha1; p=" + keys["rsa"][1].split(b"p=")[1]), "permerror",
         "the key does not fit the signature"),
        (("OK", b"v=DKIM1; p=!!!"), "permerror", "the key cannot be read"),
    ]
    for rec, result, problem in cases:
        got = verify(tmp_path, msg, records(keys, **{name: rec}))
        assert got[0][0::5] == (result, problem), (rec, got)
    testing = records(keys, **{name: ("OK", keys["rsa"][1] + b"; t=y")})
    assert verify(tmp_path, msg, testing)[0][:4] == ("pass", "example.org", "sel-rsa", True)


def test_broken_signature_fields(tmp_path, keys):
    msg = sign(MESSAGE, keys, "rsa", b"sel-rsa")
    recs = records(keys)
    for old, new, problem in [
        (rb"v=1;", b"v=2;", "unknown version"),
        (rb"a=rsa-sha256", b"a=rsa-sha1", "rsa-sha1 is not accepted"),
        (rb"h=[^;]+;", b"h=subject:to;", "h= does not sign From"),
        (rb"d=example.org;", b"d=example.org; d=example.org;", "syntax error in the signature"),
        (rb"bh=[^;]+;", b"bh=AAAA;", "bad b= or bh="),
    ]:
        changed = re.sub(old, new, msg, count=1)
        assert changed != msg
        got = verify(tmp_path, changed, recs)
        assert got[0][0::5] == ("permerror", problem), (old, got)
    # No signature: nothing to report.
    assert verify(tmp_path, MESSAGE, recs) == []


# ---------------------------------------------------------------------------
# ARC (RFC 8617): chains sealed by dkimpy (arc_sign, RSA) must verify where dkimpy's own
# arc_verify passes, and fail where a relay's change breaks them.

def arc_records(keys, **override):
    """The RSA key published for the two sealers, example.org and list.example."""
    recs = records(keys)
    recs["sel-rsa._domainkey.list.example"] = ("OK", keys["rsa"][1])
    recs.update(override)
    return recs


def arc_seal(msg, keys, domain=b"example.org", results=b"spf=pass smtp.mailfrom=example.org"):
    """msg with its Authentication-Results and a new ARC set from domain on top."""
    srv = b"mx." + domain
    msg = b"Authentication-Results: " + srv + b"; " + results + b"\r\n" + msg
    return b"".join(dkim.arc_sign(msg, b"sel-rsa", domain, keys["rsa"][0], srv)) + msg


def arc_check(tmp_path, msg, recs):
    """Our chain result: (result, instances, sealer, problem)."""
    f = tmp_path / "arc.eml"
    f.write_bytes(msg)
    lines = "".join("K %s %s %s\n" % (name, st, rec.hex() if rec else "-")
                    for name, (st, rec) in recs.items())
    p = subprocess.run([str(DRIVER), "--arc", str(f)], input=lines.encode(),
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    r, n, sealer, problem = p.stdout.decode().rstrip("\n").split(" ", 3)
    return r, int(n), sealer, problem


def dkimpy_arc(msg, recs):
    def dnsfunc(name, timeout=5):
        st, rec = recs.get(name.decode().rstrip("."), ("NX", None))
        return rec if st == "OK" else None
    return dkim.arc_verify(msg, dnsfunc=dnsfunc)[0].decode()


def test_arc_chains_sealed_by_dkimpy(tmp_path, keys):
    recs = arc_records(keys)
    assert arc_check(tmp_path, MESSAGE, recs) == ("none", 0, "-", "-")
    one = arc_seal(sign(MESSAGE, keys, "rsa", b"sel-rsa"), keys)
    assert dkimpy_arc(one, recs) == "pass"
    assert arc_check(tmp_path, one, recs) == ("pass", 1, "example.org", "-")
    # A mailing list adds a footer and a subject tag, then seals: instance 2 passes.
    listed = one.replace(b"Subject:   a  test", b"Subject: [list] a  test") + b"-- \r\nlist\r\n"
    two = arc_seal(listed, keys, domain=b"list.example", results=b"arc=pass")
    assert dkimpy_arc(two, recs) == "pass"
    assert arc_check(tmp_path, two, recs) == ("pass", 2, "list.example", "-")
    # The DKIM signature no longer verifies, but the chain vouches for what the list saw.
    assert verify(tmp_path, two, recs)[0][0] == "fail"


def test_arc_chain_failures(tmp_path, keys):
    recs = arc_records(keys)
    two = arc_seal(arc_seal(MESSAGE, keys), keys, domain=b"list.example", results=b"arc=pass")
    # Changed after the newest seal: its AMS no longer verifies.
    body = two.replace(b"Hello Bob", b"Hello Rob")
    assert dkimpy_arc(body, recs) == "fail"
    assert arc_check(tmp_path, body, recs) == ("fail", 2, "list.example",
                                               "body hash did not verify")
    # An older set's results rewritten: the newest seal covers it.
    aar = two.replace(b"ARC-Authentication-Results: i=1; mx.example.org; spf=pass",
                      b"ARC-Authentication-Results: i=1; mx.example.org; spf=fail")
    assert aar != two and dkimpy_arc(aar, recs) == "fail"
    assert arc_check(tmp_path, aar, recs)[0::3] == ("fail", "an ARC-Seal did not verify")
    # A set with a field missing, and a key that cannot be found.
    cut = re.sub(rb"ARC-Seal: i=1;.*?\r\n(?! )", b"", two, count=1, flags=re.S)
    assert cut != two
    assert arc_check(tmp_path, cut, recs)[0::3] == ("fail", "an ARC set is incomplete")
    nokey = arc_records(keys, **{"sel-rsa._domainkey.list.example": ("NX", None)})
    assert arc_check(tmp_path, two, nokey)[0::3] == ("fail", "no key for the signature")
    # Sealing a broken chain says cv=fail, and the chain stays failed.
    resealed = arc_seal(body, keys, domain=b"relay.example", results=b"arc=fail")
    assert b"cv=fail" in resealed
    assert arc_check(tmp_path, resealed, arc_records(keys, **{
        "sel-rsa._domainkey.relay.example": ("OK", keys["rsa"][1])}))[0::3] == (
        "fail", "the newest ARC-Seal says cv=fail")
