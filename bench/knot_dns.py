"""bench/knot_dns.py: the benchmarks' DNS server, Knot DNS (`knotd`, Debian package `knot`)
in the foreground, authoritative for one zone on IP:53 of loopback, shared by
outbound_bench.py (`test.` on 127.0.0.35) and checks_bench.py (`example.` on 127.0.0.36).
Port 53 because a resolv.conf cannot name another port. Standard library only."""

import os
import socket
import struct
import subprocess
import time
from pathlib import Path

import process

KNOTD = "/usr/sbin/knotd"

QTYPES = {"A": 1, "MX": 15, "TXT": 16}


def query_packet(qid, name, qtype):
    """A DNS query (RD set) for name and qtype ("MX", "TXT"...), class IN."""
    labels = b"".join(bytes([len(label)]) + label.encode()
                      for label in name.rstrip(".").split("."))
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0" + \
        struct.pack(">HH", QTYPES[qtype], 1)


class Knot:
    """knotd authoritative for origin ("test.") with the zone text on ip:53, its files in
    workdir/dns. start() returns once probe, (name, qtype) of a record of the zone, gets an
    answer with one record. Also .resolver (Posthorn's dns_resolver), .ip and .pids."""

    def __init__(self, workdir, ip, origin, zone, probe):
        self.dir = Path(workdir) / "dns"
        self.ip = ip
        self.origin = origin
        self.zone = zone
        self.probe = probe
        self.resolver = "%s:53" % ip
        self.proc = None

    @property
    def pids(self):
        return [self.proc.pid] if self.proc else []

    def start(self):
        if not os.access(KNOTD, os.X_OK):
            raise RuntimeError("%s is missing (Debian package knot)" % KNOTD)
        self.dir.mkdir(parents=True, exist_ok=True)
        zonefile = self.origin.rstrip(".") + ".zone"
        (self.dir / zonefile).write_text(self.zone)
        conf = self.dir / "knot.conf"
        conf.write_text(
            "server:\n    listen: %s@53\n    rundir: %s\n    udp-workers: 1\n"
            "    tcp-workers: 1\n    background-workers: 1\n"
            "log:\n  - target: %s/knot.log\n    any: warning\n"
            "database:\n    storage: %s/db\n"
            "template:\n  - id: default\n    storage: %s\n    semantic-checks: off\n"
            "    zonefile-sync: -1\n    journal-content: none\n"
            "zone:\n  - domain: %s\n    file: %s\n"
            % (self.ip, self.dir, self.dir, self.dir, self.dir, self.origin, zonefile))
        self.proc = subprocess.Popen([KNOTD, "-c", str(conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self._answers():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("knotd did not answer on %s:53 (is port 53 taken?): %s"
                           % (self.ip, self._log()))

    def _log(self):
        try:
            return (self.dir / "knot.log").read_text(errors="replace")[-1500:]
        except OSError:
            return ""

    def _answers(self):
        """True when the probe query gets an answer with one record."""
        q = query_packet(0x4321, *self.probe)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.3)
        try:
            s.sendto(q, (self.ip, 53))
            data = s.recv(512)
            return data[:2] == b"\x43\x21" and data[6:8] == b"\x00\x01"
        except OSError:
            return False
        finally:
            s.close()

    def stop(self):
        self.proc = process.stop(self.proc)
