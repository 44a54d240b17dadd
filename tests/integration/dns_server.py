"""A small authoritative DNS server for tests (python3-dnslib), on 127.0.0.1 (or ::1), UDP
and TCP on one free port.

The test gives the records as zone-file text and points Posthorn's `dns_resolver` at it:

    dns = DNSServer('''
        $TTL 300
        example.test.       IN SOA ns.example.test. hostmaster.example.test. 1 60 60 600 60
        example.test.       IN MX 10 mx1.example.test.
        mx1.example.test.   IN A 127.0.0.2
    ''')
    dns.start()
    conf["dns_resolver"] = dns.address   # "127.0.0.1:PORT" (dns.port alone)
    dns.set_zone(other_text)        # replace every record (the server keeps running)
    dns.drop("slow.example.test")   # never answer questions for this name (undrop() ends it)
    dns.servfail("broken.example.test")  # answer SERVFAIL for this name
    dns.stop()

    signed, anchor = sign_zone(zone_text, "signed.test", tmp_dir)   # DNSSEC (ldnsutils)
    DNSServer(signed + other_zones); conf["dns_trust_anchor"] = anchor

Answers carry AA. A name with records of the asked type gets them; a CNAME is followed inside
the data (the chain and the target's records are answered); a name that exists (or has names
below it) without the type gets NODATA, any other NXDOMAIN; negative answers carry the SOA of
the closest enclosing zone when the text has one. RRSIG records that cover an answered RRset
are added to it, and negative answers of a signed zone carry their NSEC proofs (for a zone
signed with ldns-signzone, NSEC not NSEC3), so a validating client sees them secure. A UDP
answer larger than the client's EDNS size (512 without EDNS) is truncated (TC), so the
client retries over TCP. `queries` records (name, type name, protocol) for every question.

Posthorn (libunbound) caches answers for their TTL: a test that changes records under a
running server uses small TTLs ($TTL 1) or new names.
"""

import os
import socket
import socketserver
import struct
import subprocess
import threading

from dnslib import CLASS, EDNS0, QTYPE, RCODE, RR, DNSRecord

__all__ = ["DNSServer", "dns_server", "sign_zone", "tamper_signature"]


def _key(name):
    return str(name).lower().rstrip(".")


def _canonical(name):
    """Sort key of RFC 4034 §6.1 canonical order: labels compared from the right."""
    return tuple(l.encode() for l in reversed(name.split("."))) if name else ()


class _Zone:
    def __init__(self, text):
        self.rrs = list(RR.fromZone(text)) if text.strip() else []
        self.names = {}  # name -> list of RR
        self.soas = {}  # zone apex -> SOA RR
        for rr in self.rrs:
            self.names.setdefault(_key(rr.rname), []).append(rr)
            if rr.rtype == QTYPE.SOA:
                self.soas[_key(rr.rname)] = rr

    def exists(self, name):
        if name in self.names:
            return True
        suffix = "." + name
        return any(n.endswith(suffix) for n in self.names)

    def rrset(self, name, rtype):
        """Records of name and type, with the RRSIGs covering them."""
        out = [rr for rr in self.names.get(name, []) if rr.rtype == rtype]
        if out:
            out += [rr for rr in self.names.get(name, [])
                    if rr.rtype == QTYPE.RRSIG and rr.rdata.covered == rtype]
        return out

    def soa_for(self, name):
        labels = name.split(".") if name else []
        for i in range(len(labels) + 1):
            apex = ".".join(labels[i:])
            if apex in self.soas:
                soa = self.soas[apex]
                return [soa] + [rr for rr in self.names.get(apex, [])
                                if rr.rtype == QTYPE.RRSIG and rr.rdata.covered == QTYPE.SOA]
        return []

    def nsec_covering(self, name):
        """NSEC records (with their RRSIGs) whose owner < name < next, in canonical order."""
        out = []
        want = _canonical(name)
        for owner, rrs in self.names.items():
            for rr in rrs:
                if rr.rtype != QTYPE.NSEC:
                    continue
                lo, hi = _canonical(owner), _canonical(_key(rr.rdata.label))
                if (lo < want < hi) or (hi <= lo and want > lo):  # the last one wraps
                    out += self.rrset(owner, QTYPE.NSEC)
        return out

    def denial(self, name, rcode):
        """RFC 4035 §3.1.3: the NSEC proofs for NODATA or NXDOMAIN (signed zones only)."""
        if rcode == RCODE.NOERROR:  # the name's own NSEC, or for an empty non-terminal
            return self.rrset(name, QTYPE.NSEC) or self.nsec_covering(name)  # the one over it
        proof = self.nsec_covering(name)
        encloser = name.split(".", 1)[1] if "." in name else ""
        while encloser and not self.exists(encloser):
            encloser = encloser.split(".", 1)[1] if "." in encloser else ""
        for rr in self.nsec_covering("*." + encloser if encloser else "*"):
            if rr not in proof:
                proof.append(rr)
        return proof

    def answer(self, qname, qtype):
        """(rcode, answer RRs, authority RRs)."""
        answer = []
        name = _key(qname)
        for _ in range(9):
            rrs = self.rrset(name, qtype)
            if rrs:
                return RCODE.NOERROR, answer + rrs, []
            cname = self.rrset(name, QTYPE.CNAME) if qtype != QTYPE.CNAME else []
            if not cname:
                break
            answer += cname
            name = _key(cname[0].rdata.label)
        rcode = RCODE.NOERROR if self.exists(name) else RCODE.NXDOMAIN
        return rcode, answer, self.soa_for(name) + self.denial(name, rcode)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        owner = self.server.owner
        if isinstance(self.request, tuple):
            data, sock = self.request
            reply = owner._reply(data, "udp")
            if reply is not None:
                sock.sendto(reply, self.client_address)
            return
        sock = self.request
        sock.settimeout(10)
        try:
            while True:
                head = self._recv(sock, 2)
                if head is None:
                    return
                (length,) = struct.unpack("!H", head)
                data = self._recv(sock, length)
                if data is None:
                    return
                reply = owner._reply(data, "tcp")
                if reply is not None:
                    sock.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            return

    @staticmethod
    def _recv(sock, n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf


class _UDP(socketserver.ThreadingMixIn, socketserver.UDPServer):
    daemon_threads = True
    allow_reuse_address = True


class _TCP(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


class DNSServer:
    """An authoritative server for the records of zone_text, on host (127.0.0.1, or an IPv6
    address such as ::1) and a free port."""

    def __init__(self, zone_text="", host="127.0.0.1"):
        self.host = host
        self.port = None
        self.queries = []
        self._lock = threading.Lock()
        self._zone = _Zone(zone_text)
        self._drop = set()
        self._servfail = set()
        self._servers = []
        self._threads = []

    # --- data
    def set_zone(self, zone_text):
        """Replace every record."""
        zone = _Zone(zone_text)
        with self._lock:
            self._zone = zone

    def drop(self, name):
        """Never answer questions about name (any type, UDP and TCP)."""
        with self._lock:
            self._drop.add(_key(name))

    def undrop(self, name):
        with self._lock:
            self._drop.discard(_key(name))

    def servfail(self, name, on=True):
        """Answer SERVFAIL to questions about name (on=False: answer normally again)."""
        with self._lock:
            (self._servfail.add if on else self._servfail.discard)(_key(name))

    # --- life
    def start(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        udp_class = type("_UDPx", (_UDP,), {"address_family": family})
        tcp_class = type("_TCPx", (_TCP,), {"address_family": family})
        for _ in range(50):
            udp = udp_class((self.host, 0), _Handler)
            port = udp.server_address[1]
            try:
                tcp = tcp_class((self.host, port), _Handler)
            except OSError:
                udp.server_close()
                continue
            self.port = port
            self._servers = [udp, tcp]
            break
        else:
            raise RuntimeError("no free port for the test DNS server")
        for srv in self._servers:
            srv.owner = self
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                                 daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self):
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
        for t in self._threads:
            t.join(5)
        self._servers = []
        self._threads = []

    @property
    def address(self):
        """The value for Posthorn's dns_resolver setting."""
        if ":" in self.host:
            return "[%s]:%d" % (self.host, self.port)
        return "%s:%d" % (self.host, self.port)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- answering
    def _reply(self, data, proto):
        try:
            request = DNSRecord.parse(data)
        except Exception:
            return None
        if not request.questions:
            return None
        q = request.q
        with self._lock:
            self.queries.append((_key(q.qname), QTYPE.get(q.qtype), proto))
            if _key(q.qname) in self._drop:
                return None
            servfail = _key(q.qname) in self._servfail
            zone = self._zone
        reply = request.reply(ra=0, aa=1)
        if q.qclass != CLASS.IN or servfail:
            reply.header.rcode = RCODE.SERVFAIL if servfail else RCODE.REFUSED
            return reply.pack()
        rcode, answer, authority = zone.answer(q.qname, q.qtype)
        reply.header.rcode = rcode
        for rr in answer:
            reply.add_answer(rr)
        for rr in authority:
            reply.add_auth(rr)
        opt = [rr for rr in request.ar if rr.rtype == QTYPE.OPT]
        limit = 512
        if opt:
            limit = max(512, min(opt[0].rclass, 4096))
            do = (opt[0].ttl >> 15) & 1
            reply.add_ar(EDNS0(udp_len=1232, flags="do" if do else ""))
        packed = reply.pack()
        if proto == "udp" and len(packed) > limit:
            short = request.reply(ra=0, aa=1)
            short.header.tc = 1
            short.header.rcode = rcode
            packed = short.pack()
        return packed


def dns_server(zone_text=""):
    """Start a server (for a pytest fixture: `yield` it and call stop())."""
    return DNSServer(zone_text).start()


def sign_zone(zone_text, origin, directory):
    """Sign zone_text (the zone `origin`, with its SOA) with a new ECDSA P-256 key using
    ldns-keygen and ldns-signzone (Debian's ldnsutils), NSEC. Returns (signed zone text,
    path of the trust anchor file: the key's DS record, for dns_trust_anchor)."""
    origin = origin.rstrip(".") + "."
    directory = str(directory)
    os.makedirs(directory, exist_ok=True)
    zone_path = os.path.join(directory, origin + "zone")
    with open(zone_path, "w") as f:
        f.write(zone_text)
    base = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", "-r", "/dev/urandom",
                           origin], cwd=directory, check=True, capture_output=True,
                          text=True).stdout.strip()
    # RRSIG times are 32-bit: expire before 2038 (ldns wraps later dates)
    subprocess.run(["ldns-signzone", "-o", origin, "-i", "20200101000000",
                    "-e", "20380101000000", zone_path, base], cwd=directory, check=True,
                   capture_output=True)
    with open(zone_path + ".signed") as f:
        signed = f.read()
    return signed, os.path.join(directory, base + ".ds")


def tamper_signature(signed_text, name, rtype):
    """signed_text with one octet of the signature of name's RRSIG over rtype changed."""
    out = []
    name = _key(name)
    for line in signed_text.splitlines():
        f = line.split()
        if len(f) > 5 and _key(f[0]) == name and f[3] == "RRSIG" and f[4] == rtype:
            sig = f[-1]
            line = line[:len(line) - len(sig)] + ("B" if sig[0] == "A" else "A") + sig[1:]
        out.append(line)
    return "\n".join(out) + "\n"
