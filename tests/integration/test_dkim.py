"""DKIM: `posthorn dkim generate|list|remove|sign`. Keys (RSA and Ed25519), the DNS record
line that `generate` prints last, key file modes, and signatures checked by two independent
verifiers: dkimpy (python3-dkim, with a dnsfunc that answers the printed records) and
OpenDKIM's `opendkim-testmsg` (opendkim-tools). opendkim-testmsg has no option to take a
key from anywhere but the DNS (libopendkim asks the libc resolver), so it runs in a private
mount + network namespace (`unshare -mn`, needs root) where /etc/resolv.conf names
127.0.0.1 and dnslib's zone resolver serves the printed records on port 53.

Run as a script (`test_dkim.py --opendkim ZONE FILE...`) this module is that namespace's
side: it serves ZONE and prints "rc FILE" for each message verified."""

import base64
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BIN, make_server, sanitizer_lines

HERE = Path(__file__).resolve().parent
RECORD = re.compile(r'^([A-Za-z0-9-]+)\._domainkey\.([a-z0-9.-]+)\. IN TXT((?: "[^"]{1,255}")+)$')


# --- helpers ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """An initialised instance with the test domains (the CLI needs no running server)."""
    return make_server(tmp_path_factory, "dkim", accounts=True)


def run(srv, args, input=None):
    """posthorn -c CONF dkim ARGS with bytes in and out; fails on a sanitizer finding."""
    p = subprocess.run([BIN, "-c", str(srv.conf), "dkim"] + [str(a) for a in args],
                       input=input, capture_output=True, timeout=60)
    err = p.stderr.decode(errors="replace")
    assert not sanitizer_lines(err), err
    return p


def generate(srv, domain, *extra):
    p = run(srv, ["generate", domain] + list(extra))
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert out.endswith("\n")
    last = out.splitlines()[-1]
    m = RECORD.match(last)
    assert m, "last line is not a zone-file TXT record: %r" % last
    strings = re.findall(r'"([^"]*)"', m.group(3))
    return m.group(1), last, "".join(strings)


def tags(txt):
    return dict(kv.strip().split("=", 1) for kv in txt.split(";") if kv.strip())


def sign(srv, msg):
    p = run(srv, ["sign"], input=msg)
    assert p.returncode == 0, p.stderr
    return p.stdout


def signatures(signed):
    """The DKIM-Signature fields at the top of signed, and the message after them."""
    fields = []
    rest = signed
    while rest.startswith(b"DKIM-Signature:"):
        end = re.search(rb"\r\n(?![ \t])", rest).end()
        fields.append(rest[:end])
        rest = rest[end:]
    return fields, rest


def dkimpy_verify(signed, records):
    """dkimpy's verdict for each signature of signed (records: name -> TXT text)."""
    import dkim

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        txt = records.get(name.rstrip("."))
        return txt.encode() if txt is not None else None

    d = dkim.DKIM(signed)
    n = len(signatures(signed)[0])
    result = []
    for i in range(n):
        try:
            result.append(d.verify(idx=i, dnsfunc=dnsfunc))
        except dkim.ValidationError:  # raised, not returned, for a body hash mismatch
            result.append(False)
    return result


def opendkim_verify(tmp_path, zone_lines, messages):
    """opendkim-testmsg's exit status for each message (bytes), in a private namespace."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("opendkim-testmsg needs a private network namespace (root + unshare)")
    assert shutil.which("opendkim-testmsg"), "opendkim-tools is not installed"
    zone = tmp_path / "zone.txt"
    zone.write_text("\n".join(zone_lines) + "\n")
    files = []
    for i, m in enumerate(messages):
        f = tmp_path / ("msg%d.eml" % i)
        f.write_bytes(m)
        files.append(str(f))
    inner = ["/usr/bin/python3", str(HERE / "test_dkim.py"), "--opendkim", str(zone),
             str(tmp_path)] + files
    p = subprocess.run(["unshare", "-mn"] + inner, capture_output=True, text=True, timeout=120)
    if p.returncode != 0 and "cannot change root filesystem propagation" in p.stderr:
        # A chroot whose "/" is no mount point (../shared/fresh-machine-check): unshare cannot
        # make the namespace private, and a bind mount could then reach the host.
        pytest.skip("no private mount namespace here (a chroot?): opendkim-testmsg not run")
    assert p.returncode == 0, p.stdout + p.stderr
    result = {}
    for line in p.stdout.splitlines():
        rc, name = line.split(" ", 1)
        result[name] = int(rc)
    return [result[f] for f in files], p.stderr


# --- messages -----------------------------------------------------------------------

PLAIN = (b"From: Demo <demo@example.test>\r\nTo: bob@other.test\r\nSubject: plain\r\n"
         b"Date: Sun, 06 Dec 2026 08:00:00 +0000\r\nMessage-ID: <plain@example.test>\r\n\r\n"
         b"Hello Bob,\r\njust a line.\r\n")
FOLDED = (b"From: \"Demo, the\r\n  User\" <demo@example.test>\r\nTo: a@other.test,\r\n"
          b"\tb@other.test,  \r\n   c@other.test\r\nSubject:   many \t  spaces\r\n  and a fold  \r\n"
          b"Date: Sun, 06 Dec 2026 08:00:00 +0000\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: text/plain;\r\n\tcharset=us-ascii\r\n\r\n"
          b"body with  two spaces \t \r\nand trailing tab\t\r\n")
DATE = b"Date: Sun, 06 Dec 2026 08:00:00 +0000\r\n"
TRAILING = (b"From: demo@example.test\r\nSubject: trailing\r\n" + DATE +
            b"\r\nline\r\n\r\n  \r\n\r\n\r\n")
EIGHTBIT = ("From: Dëmo <demo@example.test>\r\nTo: bob@other.test\r\nDate: Sun, 06 Dec 2026 08:00:00 +0000\r\nSubject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln — 8-bit body\r\n").encode() + \
    b"latin-1 \xe9\xe8\r\n"
FROMLIKE = (b"Return-Path: <demo@example.test>\r\nReceived: from x by y; Sun, 06 Dec 2026\r\n"
            b"From: Demo <demo@example.test>\r\nSender: Alice <alice@example.test>\r\n"
            b"Reply-To: list@other.test\r\nResent-From: alice@example.test\r\n"
            b"Resent-Date: Sun, 06 Dec 2026 09:00:00 +0000\r\nTo: x@other.test\r\nCc: y@other.test\r\n"
            b"List-Id: <l.example.test>\r\nX-Mailer: test\r\n" + DATE + b"\r\nbody\r\n")
BARE_LF = (b"From: demo@example.test\nSubject: typed by hand\nDate: Sun, 06 Dec 2026 08:00:00"
           b" +0000\n\nline one\nline two\n\n")
EMPTY_BODY = b"From: demo@example.test\r\nSubject: empty\r\n" + DATE + b"\r\n"
# opendkim-testmsg refuses a message without Date: before it looks at a signature
# ("dkim_chunk(): Syntax error": RFC 5322 §3.6 requires Date and From), so only dkimpy gets
# this one.
NO_DATE = b"From: demo@example.test\r\nSubject: no date\r\n\r\nline\r\n"
HEADER_ONLY = b"From: demo@example.test\r\nSubject: no empty line\r\n" + DATE  # no body at all
MESSAGES = [PLAIN, FOLDED, TRAILING, EIGHTBIT, FROMLIKE, BARE_LF, EMPTY_BODY, HEADER_ONLY]


# --- usage --------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["dkim"], ["dkim", "generate"], ["dkim", "list"],
                                  ["dkim", "remove"], ["dkim", "sign"]])
def test_help(args):
    p = subprocess.run([BIN] + args + ["--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout.startswith("usage: posthorn dkim generate")
    top = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=30)
    assert "dkim generate" in top.stdout


@pytest.mark.parametrize("args", [[], ["frob"], ["generate"], ["remove", "example.test"],
                                  ["sign", "a", "b"], ["generate", "example.test", "--bits", "4096"]])
def test_usage_errors(srv, args):
    p = run(srv, args)
    assert p.returncode == 2 and p.stderr.startswith(b"usage:")


# --- keys and records ---------------------------------------------------------------


@pytest.fixture(scope="module")
def keys(srv):
    """An RSA and an Ed25519 key for example.test: selector -> (zone line, TXT text)."""
    rsa_sel, rsa_line, rsa_txt = generate(srv, "example.test")
    ed_sel, ed_line, ed_txt = generate(srv, "Example.TEST", "--algorithm", "ed25519")
    return {rsa_sel: (rsa_line, rsa_txt), ed_sel: (ed_line, ed_txt)}


def records(keys, domain="example.test"):
    return {"%s._domainkey.%s" % (s, domain): txt for s, (line, txt) in keys.items()}


def test_rsa_record(srv, keys):
    sel = next(s for s, (l, t) in keys.items() if "k=rsa" in t)
    line, txt = keys[sel]
    # default selector: ph + year + month
    assert re.fullmatch(r"ph\d{6}", sel), sel
    assert line.startswith("%s._domainkey.example.test. IN TXT \"" % sel)
    strings = re.findall(r'"([^"]*)"', line)
    assert len(strings) >= 2 and all(1 <= len(s) <= 255 for s in strings)
    t = tags(txt)
    assert t["v"] == "DKIM1" and t["k"] == "rsa"
    der = base64.b64decode(t["p"], validate=True)
    # SubjectPublicKeyInfo of a 2048-bit key: 294 octets
    assert len(der) == 294 and der[:3] == b"\x30\x82\x01"


def test_ed25519_record(srv, keys):
    sel = next(s for s, (l, t) in keys.items() if "k=ed25519" in t)
    line, txt = keys[sel]
    assert sel != next(s for s in keys if s != sel)
    assert RECORD.match(line)
    t = tags(txt)
    assert t["k"] == "ed25519"
    assert len(base64.b64decode(t["p"], validate=True)) == 32  # RFC 8463 §4.2: the raw key


def test_key_files_private(srv, keys):
    d = srv.dir / "data" / "dkim" / "example.test"
    assert (os.stat(d).st_mode & 0o777) == 0o700
    assert (os.stat(d.parent).st_mode & 0o777) == 0o700
    names = sorted(p.name for p in d.iterdir())
    assert names == sorted("%s.%s.pem" % (s, "rsa" if "k=rsa" in t else "ed25519")
                           for s, (l, t) in keys.items())
    for f in d.iterdir():
        assert (os.stat(f).st_mode & 0o777) == 0o600, f
        assert os.stat(f).st_uid == os.geteuid()
        assert b"PRIVATE KEY-----" in f.read_bytes()


def test_key_given_to_run_user(tmp_path_factory):
    """Run as root with `user = nobody`: the key and its directories belong to nobody (the
    server reads keys after dropping to that user), and only nobody may read the key."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    import pwd
    nobody = pwd.getpwnam("nobody")
    s = make_server(tmp_path_factory, "dkimuser", extra_conf={"user": "nobody"})
    generate(s, "example.test", "--algorithm", "ed25519")
    d = s.dir / "data" / "dkim" / "example.test"
    files = list(d.iterdir())
    assert len(files) == 1
    for p in [d.parent, d] + files:
        st = os.stat(p)
        assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid), p
        assert st.st_mode & 0o077 == 0, p


def test_list(srv, keys):
    p = run(srv, ["list"])
    assert p.returncode == 0
    lines = p.stdout.decode().splitlines()
    assert len(lines) == 2
    for line in lines:
        domain, sel, alg, created = line.split(" ")
        assert domain == "example.test" and sel in keys
        assert ("k=%s;" % alg) in keys[sel][1]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created)


def test_third_key_refused(srv, keys):
    p = run(srv, ["generate", "example.test", "--algorithm", "ed25519", "--selector", "third"])
    assert p.returncode != 0
    err = p.stderr.decode()
    assert "remove" in err and "2 keys" in err
    assert len(list((srv.dir / "data" / "dkim" / "example.test").iterdir())) == 2


def test_generate_refusals(srv):
    p = run(srv, ["generate", "stranger.test"])
    assert p.returncode != 0 and b"not one of our domains" in p.stderr
    p = run(srv, ["generate", "other.test", "--selector", "bad_sel"])
    assert p.returncode != 0 and b"selector" in p.stderr
    p = run(srv, ["generate", "other.test", "--algorithm", "dsa"])
    assert p.returncode != 0
    assert not (srv.dir / "data" / "dkim" / "other.test").exists() or \
        not list((srv.dir / "data" / "dkim" / "other.test").iterdir())


# --- signing and verifying ------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(MESSAGES) + 1))
def test_sign_verifies_with_dkimpy(srv, keys, index):
    msg = (MESSAGES + [NO_DATE])[index]
    signed = sign(srv, msg)
    fields, rest = signatures(signed)
    assert len(fields) == 2  # one per active key
    algs = sorted(re.search(rb"a=([a-z0-9-]+);", f).group(1) for f in fields)
    assert algs == [b"ed25519-sha256", b"rsa-sha256"]
    for f in fields:
        assert b"c=relaxed/relaxed;" in f and b"d=example.test;" in f
        assert re.search(rb"t=\d+;", f) and b" x=" not in f
        assert all(len(l) <= 78 for l in f.split(b"\r\n"))
    # the message is printed with CRLF line ends
    assert rest == msg.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert dkimpy_verify(signed, records(keys)) == [True, True]


def test_tampering_fails_dkimpy(srv, keys):
    signed = sign(srv, PLAIN)
    recs = records(keys)
    assert dkimpy_verify(signed, recs) == [True, True]
    assert dkimpy_verify(signed.replace(b"just a line", b"just a lie!"), recs) == [False, False]
    # an added (second) Subject: the oversigned null instance catches it
    fields, rest = signatures(signed)
    added = b"".join(fields) + b"Subject: free money\r\n" + rest
    assert dkimpy_verify(added, recs) == [False, False]
    # an added Received: is fine (not signed), as is whitespace changed in a header
    fields, rest = signatures(signed)
    relayed = b"".join(fields) + b"Received: from a by b\r\n" + \
        rest.replace(b"Subject: plain", b"Subject:   plain ")
    assert dkimpy_verify(relayed, recs) == [True, True]


def test_return_path_not_signed(srv, keys):
    """The stored file starts with Return-Path:, which the client never sends."""
    signed = sign(srv, FROMLIKE)
    fields, rest = signatures(signed)
    assert all(b"Return-Path" not in f and b"Received" not in f for f in fields)
    sent = b"".join(fields) + rest.split(b"\r\n", 1)[1]
    assert not sent[len(b"".join(fields)):].startswith(b"Return-Path")
    assert dkimpy_verify(sent, records(keys)) == [True, True]
    h = re.search(rb"h=([^;]*);", fields[0].replace(b"\r\n\t", b"")).group(1).split(b":")
    assert h.count(b"From") == 2 and h.count(b"Sender") == 2 and h.count(b"Resent-From") == 1
    assert b"X-Mailer" not in h


def test_opendkim_verifies(srv, keys, tmp_path):
    zone = [line for line, txt in keys.values()]
    msgs, names = [], []
    for i, m in enumerate(MESSAGES):
        fields, rest = signatures(sign(srv, m))
        for f in fields:  # each signature on its own: both must verify
            alg = re.search(rb"a=([a-z0-9-]+);", f).group(1).decode()
            msgs.append(f + rest)
            names.append("message %d %s" % (i, alg))
            if i == 0:  # and the same with the body changed must not
                msgs.append(f + rest.replace(b"just a line", b"just a lie!"))
                names.append("message %d %s tampered" % (i, alg))
    rcs, err = opendkim_verify(tmp_path, zone, msgs)
    for name, rc in zip(names, rcs):
        if "tampered" in name:
            assert rc != 0, "opendkim accepted %s" % name
        else:
            assert rc == 0, "opendkim rejected %s (rc %d): %s" % (name, rc, err)


def test_sign_refusals(srv, keys):
    # no key for the From: domain (ours, but no key), two From: fields, no From: at all
    for msg in (b"From: bob@other.test\r\n\r\nx\r\n",
                b"From: demo@example.test\r\nFrom: alice@example.test\r\n\r\nx\r\n",
                b"To: demo@example.test\r\n\r\nx\r\n"):
        p = run(srv, ["sign"], input=msg)
        assert p.returncode == 1, msg
        assert p.stdout == b""
        assert b"no DKIM key" in p.stderr


def test_sign_file_argument(srv, keys, tmp_path):
    f = tmp_path / "m.eml"
    f.write_bytes(PLAIN)
    p = run(srv, ["sign", f])
    assert p.returncode == 0
    assert dkimpy_verify(p.stdout, records(keys)) == [True, True]


# --- rotation --------------------------------------------------------------------------


def test_rotation_remove_and_generate(srv, keys):
    """Remove one of two keys: one signature; a new key (a new default selector): two,
    and both verify with the records printed."""
    rsa_sel = next(s for s, (l, t) in keys.items() if "k=rsa" in t)
    ed_sel = next(s for s in keys if s != rsa_sel)
    p = run(srv, ["remove", "example.test", ed_sel])
    assert p.returncode == 0, p.stderr
    p = run(srv, ["remove", "example.test", ed_sel])
    assert p.returncode == 1 and b"no key" in p.stderr
    listing = run(srv, ["list"]).stdout.decode().splitlines()
    assert [l.split(" ")[1] for l in listing] == [rsa_sel]
    signed = sign(srv, PLAIN)
    assert len(signatures(signed)[0]) == 1
    assert dkimpy_verify(signed, records(keys)) == [True]
    new_sel, line, txt = generate(srv, "example.test", "--algorithm", "ed25519")
    assert new_sel not in (rsa_sel, ed_sel)  # a removed selector is not reused at once
    recs = records(keys)
    recs["%s._domainkey.example.test" % new_sel] = txt
    signed = sign(srv, FOLDED)
    fields, _ = signatures(signed)
    assert sorted(re.search(rb"s=([a-z0-9-]+);", f.replace(b"\r\n\t", b" ")).group(1).decode()
                  for f in fields) == sorted([rsa_sel, new_sel])
    assert dkimpy_verify(signed, recs) == [True, True]
    # the old record no longer verifies a new signature: it is a different key
    recs["%s._domainkey.example.test" % new_sel] = keys[ed_sel][1]
    assert dkimpy_verify(signed, recs).count(False) == 1


def test_second_domain_keys(srv, keys):
    sel, line, txt = generate(srv, "other.test", "--selector", "s1", "--algorithm", "ed25519")
    assert sel == "s1" and line.startswith("s1._domainkey.other.test. IN TXT")
    signed = sign(srv, b"From: Bob <bob@other.test>\r\nSubject: x\r\n\r\nhi\r\n")
    fields, _ = signatures(signed)
    assert len(fields) == 1 and b"d=other.test;" in fields[0]
    assert dkimpy_verify(signed, {"s1._domainkey.other.test": txt}) == [True]
    p = run(srv, ["list", "other.test"])
    assert p.stdout.decode().split(" ")[:3] == ["other.test", "s1", "ed25519"]


def test_parent_domain_key_signs_a_subdomain(srv):
    """From: a host name under a domain with a key (a bounce from MAILER-DAEMON@mx...): the
    parent's key signs it (relaxed alignment); a name under no key's domain stays unsigned."""
    srv.cli("domain", "add", "parent.test")
    sel, _, txt = generate(srv, "parent.test", "--algorithm", "ed25519")
    msg = (b"From: Mail Delivery System <MAILER-DAEMON@mx.parent.test>\r\n"
           b"Subject: bounce\r\n" + DATE + b"\r\nreport\r\n")
    signed = sign(srv, msg)
    fields, _ = signatures(signed)
    assert len(fields) == 1 and b"d=parent.test;" in fields[0]
    assert dkimpy_verify(signed, {"%s._domainkey.parent.test" % sel: txt}) == [True]
    p = run(srv, ["sign"], input=msg.replace(b"mx.parent.test", b"mx.nokey.invalid"))
    assert p.returncode == 1 and p.stdout == b""


# --- the namespace side of test_opendkim_verifies --------------------------------------


def _serve_and_verify(zone, workdir, files):
    from dnslib.server import DNSServer
    from dnslib.zoneresolver import ZoneResolver

    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    # Never let the bind mount below reach the machine's own /etc/resolv.conf: the mount
    # that holds /etc must not propagate to a peer (shared) outside this namespace.
    best, shared = "", True
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mnt, optional = fields[4], fields[6:fields.index("-")]
            if ("/etc/resolv.conf".startswith(mnt.rstrip("/") + "/") or mnt == "/") and \
                    len(mnt) >= len(best):
                best, shared = mnt, any(o.startswith("shared:") for o in optional)
    if shared:
        sys.exit("the mount holding /etc is shared: refusing to bind-mount resolv.conf")
    resolv = Path(workdir) / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions attempts:1 timeout:2\n")
    subprocess.run(["mount", "--bind", str(resolv), "/etc/resolv.conf"], check=True)
    resolver = ZoneResolver(open(zone).read())

    class Quiet:
        def __getattr__(self, name):
            return lambda *a, **k: None

    servers = [DNSServer(resolver, port=53, address="127.0.0.1", tcp=tcp, logger=Quiet())
               for tcp in (False, True)]
    for s in servers:
        s.start_thread()
    for f in files:
        with open(f, "rb") as msg:
            p = subprocess.run(["opendkim-testmsg"], stdin=msg, capture_output=True,
                               timeout=30)
        sys.stderr.write(p.stderr.decode(errors="replace"))
        print(p.returncode, f, flush=True)
    for s in servers:
        s.stop()


if __name__ == "__main__" and len(sys.argv) > 3 and sys.argv[1] == "--opendkim":
    _serve_and_verify(sys.argv[2], sys.argv[3], sys.argv[4:])
