"""TLS posture (issue 13 §6): TLS 1.2 at least, Mozilla's "intermediate" cipher list (TLS 1.2
suites and TLS 1.3 suites set explicitly), no renegotiation, no compression, certificates
chosen by SNI name (`tls_sni`), and a certificate reload on SIGHUP that keeps running
sessions and keeps the old certificate when the new one is broken."""

import os
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import HOST, USERS
from imap_helpers import imap_ports
from pop3_helpers import pop3_ports

INTERMEDIATE_TLS12 = [
    "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-RSA-CHACHA20-POLY1305", "DHE-RSA-AES128-GCM-SHA256",
    "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305"]
# Outside the profile: no forward secrecy, CBC, SHA-1 MACs.
WEAK_TLS12 = ["AES128-GCM-SHA256", "AES256-SHA", "ECDHE-RSA-AES128-SHA",
              "ECDHE-RSA-AES256-SHA384", "DHE-RSA-AES128-SHA256"]
TLS13_SUITES = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                "TLS_CHACHA20_POLY1305_SHA256"}
USER = "demo@example.test"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # TLS 1.0/1.1 on purpose


def make_cert(directory, name, combined=False):
    """A self-signed EC certificate for name; returns (cert path, key path or None)."""
    os.makedirs(directory, exist_ok=True)
    cert = os.path.join(directory, name.replace("*", "star") + ".pem")
    key = os.path.join(directory, name.replace("*", "star") + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                    "/CN=" + name, "-addext", "subjectAltName=DNS:" + name,
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    if combined:
        with open(cert, "a") as out, open(key) as k:
            out.write(k.read())
        os.unlink(key)
        return cert, None
    return cert, key


def server_setup(srv):
    d = srv.dir / "sni"
    make_cert(d, "alt.example.test")
    make_cert(d, "*.wild.example.test", combined=True)
    srv.append_conf({"tls_sni": "alt.example.test:sni/alt.example.test.pem:"
                                "sni/alt.example.test.key, "
                                "*.wild.example.test:sni/star.wild.example.test.pem",
                     "allow_plaintext_auth": "yes"})


def client_ctx(minimum=None, maximum=None, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    return ctx


def handshake(port, ctx, name=None):
    s = socket.create_connection((HOST, port), timeout=20)
    try:
        return ctx.wrap_socket(s, server_hostname=name)
    except Exception:
        s.close()  # a refused handshake leaves no socket behind
        raise


def tls_ports(server):
    _, imaps = imap_ports(server)
    _, pop3s = pop3_ports(server)
    return {"imaps": imaps, "pop3s": pop3s, "submissions": server.submissions_port}


def der_of(path):
    """The first certificate of a PEM file (which may also hold the key)."""
    with open(path) as f:
        text = f.read()
    end = "-----END CERTIFICATE-----"
    start = text.index("-----BEGIN CERTIFICATE-----")
    return ssl.PEM_cert_to_DER_cert(text[start:text.index(end) + len(end)])


def peer_der(port, name=None):
    with handshake(port, client_ctx(), name) as s:
        return s.getpeercert(binary_form=True)


# ---------------------------------------------------------------------------
# Versions, ciphers, compression, renegotiation


@pytest.mark.parametrize("port_name", ["imaps", "pop3s", "submissions"])
def test_tls11_is_refused(server, port_name):
    ctx = client_ctx(ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1, "DEFAULT:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError) as e:
        handshake(tls_ports(server)[port_name], ctx)
    # The server's protocol_version alert, not a client that could not offer TLS 1.1.
    assert "PROTOCOL_VERSION" in str(e.value).upper() or \
        "UNSUPPORTED_PROTOCOL" in str(e.value).upper(), e.value


def test_tls12_and_tls13_negotiate(server):
    port = tls_ports(server)["imaps"]
    with handshake(port, client_ctx()) as s:
        assert s.version() == "TLSv1.3"
        assert s.cipher()[0] in TLS13_SUITES
        assert s.compression() is None
    with handshake(port, client_ctx(maximum=ssl.TLSVersion.TLSv1_2)) as s:
        assert s.version() == "TLSv1.2"
        assert s.cipher()[0] in INTERMEDIATE_TLS12
        assert s.compression() is None


@pytest.mark.parametrize("cipher", INTERMEDIATE_TLS12)
def test_intermediate_tls12_ciphers_are_accepted(server, cipher):
    ctx = client_ctx(maximum=ssl.TLSVersion.TLSv1_2, ciphers=cipher)
    with handshake(tls_ports(server)["imaps"], ctx) as s:
        assert s.cipher()[0] == cipher


@pytest.mark.parametrize("cipher", WEAK_TLS12)
def test_weak_tls12_ciphers_are_refused(server, cipher):
    ctx = client_ctx(maximum=ssl.TLSVersion.TLSv1_2, ciphers=cipher + ":@SECLEVEL=0")
    with pytest.raises(ssl.SSLError) as e:
        handshake(tls_ports(server)["imaps"], ctx)
    assert "HANDSHAKE_FAILURE" in str(e.value).upper() or \
        "NO_SHARED_CIPHER" in str(e.value).upper(), e.value


def test_tls13_suites_are_the_three_of_the_profile(server):
    for suite in sorted(TLS13_SUITES):
        r = subprocess.run(["openssl", "s_client", "-connect",
                            "%s:%d" % (HOST, tls_ports(server)["imaps"]), "-tls1_3",
                            "-ciphersuites", suite],
                           input=b"", capture_output=True, timeout=30)
        assert ("Cipher is " + suite).encode() in r.stdout, r.stdout[-2000:]
    # TLS_AES_128_CCM_SHA256 is outside the profile
    r = subprocess.run(["openssl", "s_client", "-connect",
                        "%s:%d" % (HOST, tls_ports(server)["imaps"]), "-tls1_3",
                        "-ciphersuites", "TLS_AES_128_CCM_SHA256"],
                       input=b"", capture_output=True, timeout=30)
    assert b"Cipher is TLS_AES_128_CCM_SHA256" not in r.stdout


def test_renegotiation_is_refused(server):
    """openssl s_client's "R" asks for a TLS 1.2 renegotiation; the server declines (a
    no_renegotiation alert, then the connection fails), and a fresh handshake still works."""
    port = tls_ports(server)["imaps"]
    p = subprocess.Popen(["openssl", "s_client", "-connect", "%s:%d" % (HOST, port),
                          "-tls1_2"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(1.0)  # the handshake and the greeting
        p.stdin.write(b"R\n")
        p.stdin.flush()
        time.sleep(1.0)
        try:
            p.stdin.write(b"a NOOP\n")
            p.stdin.flush()
        except BrokenPipeError:
            pass  # s_client already gave up: the renegotiation failed
        out, _ = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert b"RENEGOTIATING" in out, out[-2000:]
    assert b"a OK" not in out, out[-2000:]
    assert b"no renegotiation" in out.lower(), out[-2000:]
    with handshake(port, client_ctx(maximum=ssl.TLSVersion.TLSv1_2)) as s:
        assert s.recv(100).startswith(b"* OK")


# ---------------------------------------------------------------------------
# SNI


@pytest.mark.parametrize("port_name", ["imaps", "pop3s", "submissions"])
def test_sni_gives_each_name_its_certificate(server, port_name):
    port = tls_ports(server)[port_name]
    sni = server.dir / "sni"
    default = der_of(server.dir / "tls" / "cert.pem")
    assert peer_der(port, "alt.example.test") == der_of(sni / "alt.example.test.pem")
    assert peer_der(port, "ALT.Example.Test") == der_of(sni / "alt.example.test.pem")
    assert peer_der(port, "imap.wild.example.test") == \
        der_of(sni / "star.wild.example.test.pem")
    # a wildcard covers one label only; unknown names and no name get the default
    assert peer_der(port, "a.b.wild.example.test") == default
    assert peer_der(port, "wild.example.test") == default
    assert peer_der(port, "other.example.test") == default
    assert peer_der(port, None) == default


def test_sni_after_starttls(server):
    imap, _ = imap_ports(server)
    s = socket.create_connection((HOST, imap), timeout=20)
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    s.sendall(b"a STARTTLS\r\n")
    assert f.readline().startswith(b"a OK")
    t = client_ctx().wrap_socket(s, server_hostname="alt.example.test")
    assert t.getpeercert(binary_form=True) == der_of(server.dir / "sni" / "alt.example.test.pem")
    t.close()


def test_check_config_validates_tls_sni(server):
    from conftest import run_cli
    conf = server.dir / "check-bad.conf"  # beside the real one: same relative paths
    text = server.conf.read_text()
    conf.write_text(text.replace("tls_sni = ", "tls_sni = bad_name!:x.pem "))
    p = run_cli(["check-config"], conf=conf)
    assert p.returncode != 0 and "tls_sni" in p.stderr, p.stderr
    conf.write_text(text.replace("tls_sni = ", "tls_sni = good.example.test:missing.pem "))
    p = run_cli(["check-config"], conf=conf)
    assert p.returncode != 0 and "missing.pem" in p.stderr, p.stderr
    p = run_cli(["check-config"], conf=server.conf)
    assert p.returncode == 0, p.stderr


# ---------------------------------------------------------------------------
# Reload


def wait_log_count(server, text, count, timeout=20):
    deadline = time.monotonic() + timeout
    while server.log_text().count(text) < count:
        assert time.monotonic() < deadline, server.log_text()[-3000:]
        time.sleep(0.05)


def reload(server, text):
    n = server.log_text().count(text)
    server.proc.send_signal(signal.SIGHUP)
    wait_log_count(server, text, n + 1)


def imaps_login(server):
    _, imaps = imap_ports(server)
    s = handshake(imaps, client_ctx())
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    s.sendall(b'a LOGIN "%s" "%s"\r\n' % (USER.encode(), USERS[USER].encode()))
    line = f.readline()
    while line.startswith(b"* "):
        line = f.readline()
    assert line.startswith(b"a OK"), line
    return s, f


def test_sighup_swaps_the_certificate_and_sessions_survive(server):
    _, imaps = imap_ports(server)
    tls = server.dir / "tls"
    old = der_of(tls / "cert.pem")
    assert peer_der(imaps) == old
    session, f = imaps_login(server)
    cert, key = make_cert(str(server.dir / "new"), "mx.example.test")
    os.replace(key, tls / "key.pem")
    os.replace(cert, tls / "cert.pem")
    reload(server, "event=reload tls=ok")
    new = der_of(tls / "cert.pem")
    assert new != old
    assert peer_der(imaps) == new
    # the session made before the reload goes on, with its own certificate
    assert session.getpeercert(binary_form=True) == old
    session.sendall(b"b NOOP\r\n")
    assert f.readline().startswith(b"b OK")
    session.close()


def test_broken_certificate_keeps_the_old_one(server):
    _, imaps = imap_ports(server)
    tls = server.dir / "tls"
    good = (tls / "cert.pem").read_bytes()
    before = der_of(tls / "cert.pem")
    session, f = imaps_login(server)
    try:
        (tls / "cert.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nbroken\n")
        reload(server, "event=reload tls=failed")
        assert "keeping the old certificates" in server.log_text()
        assert peer_der(imaps) == before
        assert peer_der(imaps, "alt.example.test") == \
            der_of(server.dir / "sni" / "alt.example.test.pem")
        session.sendall(b"b NOOP\r\n")
        assert f.readline().startswith(b"b OK")
        # a broken SNI certificate keeps every old one too
        (tls / "cert.pem").write_bytes(good)
        alt = server.dir / "sni" / "alt.example.test.key"
        alt_key = alt.read_bytes()
        alt.write_bytes(b"not a key\n")
        reload(server, "event=reload tls=failed")
        alt.write_bytes(alt_key)
        assert peer_der(imaps, "alt.example.test") == \
            der_of(server.dir / "sni" / "alt.example.test.pem")
    finally:
        (tls / "cert.pem").write_bytes(good)
        reload(server, "event=reload tls=ok")
        session.close()
    assert peer_der(imaps) == before
