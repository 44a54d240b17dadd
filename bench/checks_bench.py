"""bench/checks_bench.py: SMTP ingest with SPF, DKIM and DMARC checks on arrival (issue 12),
run by `bench/run --only checks`.

One DKIM-signed message of about 10 KiB (bench/run's SMTP size), sent N times over S sessions
at once by Postfix's `smtp-source -F` (the same C client and the same file for every server)
to port 25 of:

- A: Posthorn with `inbound_checks = no`;
- B: Posthorn with `inbound_checks = yes` and `dns_resolver` at the benchmark's DNS server;
- C: Postfix → Dovecot (bench/peers/peer.sh) with the checks of Debian's packages:
  `policyd-spf` (postfix-policyd-spf-python, spawned by Postfix's master, asked at RCPT by
  `check_policy_service`), OpenDKIM (verify mode) and OpenDMARC as milters
  (`smtpd_milters`), each a private daemon on 127.0.0.1 of this round's directory;
- D: the same Postfix → Dovecot without the checks (an extra row).

Rounds A B C D, A B C D, … on fresh instances. The world, on loopback, the same for all:
Knot DNS (`knotd`) on 127.0.0.36 port 53, authoritative for `example.` with TTLs of an hour:
`sender.example` has `v=spf1 ip4:127.0.0.1 -all`, an RSA 2048 key at
`bench._domainkey.sender.example` and `v=DMARC1; p=reject` at `_dmarc.sender.example`; the
message (From: `news@sender.example`, envelope sender the same) is signed by dkimpy
(python3-dkim, relaxed/relaxed, rsa-sha256), so SPF, DKIM and DMARC pass on every server. Not
under `test.`: the libunbound in OpenDKIM answers names there itself (RFC 6761), and a
libunbound configuration file for it (`ResolverConfiguration`) made OpenDKIM die under load.

How each is pointed at the DNS server: Posthorn `dns_resolver = 127.0.0.36:53`; OpenDKIM
`Nameservers 127.0.0.36`; OpenDMARC and policyd-spf (python3-spf) have no such setting and
read /etc/resolv.conf: they, and Postfix's master with the policyd-spf it spawns, run in a
private mount namespace (`unshare -m`) whose /etc/resolv.conf is a bind mount of a file
naming 127.0.0.36. Nothing system-wide changes. Needs root for the peer and for port 53.

Standard library only (plus python3-dkim to sign the message); reuses bench/run's helpers.
"""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import knot_dns
import report_section

MARK_START = "<!-- checks-bench start -->"
MARK_END = "<!-- checks-bench end -->"

OPENDKIM = "/usr/sbin/opendkim"
OPENDMARC = "/usr/sbin/opendmarc"
POLICYD_SPF = "/usr/bin/policyd-spf"
PSL = "/usr/share/publicsuffix/public_suffix_list.dat"
DNS_IP = "127.0.0.36"
SENDER_DOMAIN = "sender.example"
SENDER = "news@" + SENDER_DOMAIN
SELECTOR = "bench"
HELO = "client." + SENDER_DOMAIN
PEER_AUTHSERV = "peer.bench.test"  # peer.sh's myhostname for DOMAIN bench.test
WARMUP = 100  # messages per round before the clock (spawns Postfix's and the daemons'
#               processes, fills the DNS caches that have one)
SESSIONS = 50  # bench/run's SMTP sessions at once

SERVERS = (("A", "Posthorn, checks off"), ("B", "Posthorn, checks on"),
           ("C", "Postfix + policyd-spf + OpenDKIM + OpenDMARC"), ("D", "Postfix, checks off"))


def log_default(msg):
    print("bench: " + msg, flush=True)


# ---------------------------------------------------------------------------
# The world: key, zone, message, DNS server


def make_key(directory):
    """An RSA 2048 key: (private key PEM bytes, the DKIM key record's text)."""
    import base64
    pem = Path(directory) / "dkim.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", str(pem)], check=True, capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", str(pem), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return pem.read_bytes(), "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def _txt(name, text):
    parts = " ".join('"%s"' % text[i:i + 255] for i in range(0, len(text), 255))
    return "%s. IN TXT %s" % (name, parts)


def zone_text(key_record, ns_ip=DNS_IP):
    return "\n".join([
        "$TTL 3600",
        "example. IN SOA ns.example. hostmaster.example. 1 3600 600 86400 3600",
        "example. IN NS ns.example.",
        "ns.example. IN A %s" % ns_ip,
        _txt(SENDER_DOMAIN, "v=spf1 ip4:127.0.0.1 -all"),
        _txt("%s._domainkey.%s" % (SELECTOR, SENDER_DOMAIN), key_record),
        _txt("_dmarc." + SENDER_DOMAIN, "v=DMARC1; p=reject"),
        "%s. IN A 127.0.0.1" % HELO,
    ]) + "\n"


def make_message(key_pem, rcpt, size):
    """The signed message (CRLF), about size octets: text lines, none starting with a dot."""
    import dkim
    head = ("From: Bench News <%s>\r\nTo: <%s>\r\nSubject: checks bench\r\n"
            "Date: Mon, 07 Dec 2026 04:00:00 +0000\r\nMessage-ID: <checks-bench@%s>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            % (SENDER, rcpt, SENDER_DOMAIN)).encode()
    line = b"The quick brown fox jumps over the lazy dog, then checks its mail. 0123456\r\n"
    body = line * max(1, (size - len(head) - 600) // len(line))
    msg = head + body
    sig = dkim.sign(msg, SELECTOR.encode(), SENDER_DOMAIN.encode(), key_pem,
                    canonicalize=(b"relaxed", b"relaxed"), signature_algorithm=b"rsa-sha256")
    return sig + msg


def write_for_smtp_source(path, msg):
    """smtp-source -F reads lines and sends each with CRLF: the file has LF endings."""
    assert b"\n." not in msg and not msg.startswith(b".")
    Path(path).write_bytes(msg.replace(b"\r\n", b"\n"))


# ---------------------------------------------------------------------------
# The servers


def make_posthorn_class(R):
    class PosthornChecks(R.Posthorn):
        """bench/run's Posthorn (port 25 into its store), with the checks on or off."""

        def __init__(self, workdir, binary, checks, resolver):
            super().__init__(workdir, binary)
            self.checks = checks
            self.resolver = resolver
            self.name = "Posthorn, checks " + ("on" if checks else "off")

        def _init(self):
            super()._init()
            conf = self.dir / "posthorn.conf"
            text = conf.read_text()
            if self.checks:
                assert "\ninbound_checks = no\n" in text
                text = text.replace("\ninbound_checks = no\n",
                                    "\ninbound_checks = yes\ndns_resolver = %s\n"
                                    % self.resolver)
            conf.write_text(text)

        def sample(self):
            """The newest stored message of the recipient (`posthorn mail cat`)."""
            uids = [int(l.split()[0]) for l in self.cli("mail", "list", R.RCPT).splitlines()
                    if l.strip() and l.split()[0].isdigit()]
            if not uids:
                raise RuntimeError("%s: no message stored" % self.name)
            p = subprocess.run([self.bin, "-c", str(self.dir / "posthorn.conf"), "mail", "cat",
                                R.RCPT, "INBOX", str(max(uids))], capture_output=True, timeout=60)
            if p.returncode != 0:
                raise RuntimeError("posthorn mail cat: %s" % p.stderr.decode(errors="replace"))
            return p.stdout

    return PosthornChecks


def _stop_pid(pid):
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            if open("/proc/%d/stat" % pid).read().split(") ")[1].startswith("Z"):
                break
        except OSError:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def make_peer_class(R):
    class PeerChecks(R.Peer):
        """peer.sh's Postfix → Dovecot, with (checks=True) policyd-spf at RCPT and OpenDKIM
        and OpenDMARC as milters, all asking dns.ip through a private resolv.conf."""

        def __init__(self, workdir, checks, dns_ip):
            super().__init__(workdir)
            self.checks = checks
            self.dns_ip = dns_ip
            self.daemons = []  # Popen of opendkim, opendmarc
            self.daemon_names = []
            self.name = "Postfix + checks" if checks else "Postfix, checks off"

        @property
        def pids(self):
            return self.masters + [p.pid for p in self.daemons]

        def _netns_cmd(self, argv):
            """argv in a private mount namespace whose /etc/resolv.conf names dns_ip."""
            return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                    'mount --bind "$0" /etc/resolv.conf && exec "$@"',
                    str(self.resolv)] + argv

        def start(self):
            if not self.checks:
                return super().start()
            for tool in (OPENDKIM, OPENDMARC, POLICYD_SPF):
                if not os.access(tool, os.X_OK):
                    raise RuntimeError("%s is missing (bench/peers/install.sh)" % tool)
            c = self.dir.parent / "checks"
            c.mkdir(parents=True, exist_ok=True)
            os.chmod(c, 0o755)
            self.resolv = c / "resolv.conf"
            self.resolv.write_text("nameserver %s\noptions timeout:2 attempts:2\n" % self.dns_ip)
            (c / "internal-hosts").write_text("192.0.2.1\n")  # not 127.0.0.1 (their default)
            dkim_port, dmarc_port = _free_ports(2)
            (c / "opendkim.conf").write_text(
                "Mode v\nSocket inet:%d@127.0.0.1\nNameservers %s\nAuthservID %s\n"
                "InternalHosts %s/internal-hosts\nSyslog no\nPidFile %s/opendkim.pid\n"
                "UMask 002\nOn-Default accept\n"
                % (dkim_port, self.dns_ip, PEER_AUTHSERV, c, c))
            (c / "opendmarc.conf").write_text(
                "Socket inet:%d@127.0.0.1\nAuthservID %s\nTrustedAuthservIDs %s\n"
                "IgnoreHosts %s/internal-hosts\nRejectFailures true\nSPFSelfValidate false\n"
                "SPFIgnoreResults false\nFailureReports false\nHistoryFile %s/opendmarc.dat\n"
                "PublicSuffixList %s\nSyslog false\nPidFile %s/opendmarc.pid\n"
                "RequiredHeaders false\n"
                % (dmarc_port, PEER_AUTHSERV, PEER_AUTHSERV, c, c, PSL, c))
            # policyd-spf: Debian's settings but for the loopback exemption (the load comes
            # from 127.0.0.1), the result as Authentication-Results for OpenDMARC, no HELO
            # check (Posthorn checks HELO only for a null sender).
            (c / "policyd-spf.conf").write_text(
                "debugLevel = 0\nTestOnly = 1\nHELO_reject = No_Check\n"
                "Mail_From_reject = Fail\nPermError_reject = False\nTempError_Defer = False\n"
                "skip_addresses = 192.0.2.1/32\nHeader_Type = AR\nAuthserv_Id = %s\n"
                "Hide_Receiver = Yes\n" % PEER_AUTHSERV)
            for argv in ([OPENDKIM, "-f", "-x", str(c / "opendkim.conf")],
                         [OPENDMARC, "-f", "-c", str(c / "opendmarc.conf")]):
                errf = open(c / (Path(argv[0]).name + ".log"), "wb")
                self.daemon_names.append(Path(argv[0]).name)
                self.daemons.append(subprocess.Popen(self._netns_cmd(argv),
                                                     stdin=subprocess.DEVNULL, stdout=errf,
                                                     stderr=subprocess.STDOUT))
                errf.close()
            R._running.append(self)
            for port, p in ((dkim_port, self.daemons[0]), (dmarc_port, self.daemons[1])):
                if not R.wait_port(port, 20, p):
                    raise RuntimeError("peer checks: a milter did not start:\n" +
                                       self.log_tail())
            main_cf = c / "main.cf"
            main_cf.write_text(
                "smtpd_recipient_restrictions = reject_unauth_destination, "
                "check_policy_service unix:private/policyd-spf\n"
                "policyd-spf_time_limit = 3600\n"
                "smtpd_milters = inet:127.0.0.1:%d, inet:127.0.0.1:%d\n"
                "non_smtpd_milters =\nmilter_default_action = tempfail\n"
                % (dkim_port, dmarc_port))
            master_cf = c / "master.cf"
            master_cf.write_text(
                "policyd-spf unix - n n - 0 spawn\n"
                "  user=nobody argv=%s %s\n" % (POLICYD_SPF, c / "policyd-spf.conf"))
            os.environ["PEER_MAIN_CF"] = str(main_cf)
            os.environ["PEER_MASTER_CF"] = str(master_cf)
            os.environ["PEER_RESOLV_CONF"] = str(self.resolv)
            try:
                super().start()
            finally:
                for k in ("PEER_MAIN_CF", "PEER_MASTER_CF", "PEER_RESOLV_CONF"):
                    os.environ.pop(k, None)

        def sample(self):
            """The newest message file of the recipient's Maildir."""
            files = []
            for sub in ("new", "cur"):
                d = self.maildir / sub
                if d.is_dir():
                    files += [d / f for f in os.listdir(d)]
            if not files:
                raise RuntimeError("%s: no message delivered" % self.name)
            return max(files, key=lambda f: f.stat().st_mtime).read_bytes()

        def log_tail(self):
            out = [super().log_tail()]
            for name in self.daemon_names:
                try:
                    out.append((self.dir.parent / "checks" / (name + ".log")).read_text()[-800:])
                except OSError:
                    pass
            return "\n".join(out)

        def stop(self):
            super().stop()
            for p in self.daemons:
                _stop_pid(p.pid)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            self.daemons = []
            if self in R._running:
                R._running.remove(self)

    return PeerChecks


def _free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


# ---------------------------------------------------------------------------
# Load, the round, the verdicts


def smtp_source_file(R, port, msgfile, messages, sessions, timeout):
    """smtp-source -F: `sessions` concurrent sessions, one message per connection, the file's
    message `messages` times. Returns the wall time."""
    cmd = [R.SMTP_SOURCE, "-F", str(msgfile), "-m", str(messages), "-s", str(sessions),
           "-M", HELO, "-f", SENDER, "-t", R.RCPT, "%s:%d" % (R.HOST, port)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    t1 = time.perf_counter()
    if p.returncode != 0 or "fatal" in p.stderr or "warning" in p.stderr:
        raise RuntimeError("smtp-source failed (%d): %s"
                           % (p.returncode, p.stderr.strip()[-2000:]))
    return t1 - t0


def header_fields(raw):
    """[(name, value)] of the header block, unfolded."""
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode(errors="replace")
    fields = []
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + " " + line.strip())
        elif ":" in line:
            name, _, value = line.partition(":")
            fields.append((name.strip(), value.strip()))
    return fields


def verdicts(raw):
    """{method: result} of spf, dkim, dmarc from the Authentication-Results and Received-SPF
    fields of a delivered message ({} when there are none), and those fields' text."""
    out, shown = {}, []
    for name, value in header_fields(raw):
        n = name.lower()
        if n == "authentication-results":
            shown.append("%s: %s" % (name, value))
            for m in ("spf", "dkim", "dmarc"):
                hit = re.search(r"(?:^|[;\s])%s=([a-z]+)" % m, value)
                if hit and m not in out:
                    out[m] = hit.group(1)
        elif n == "received-spf":
            shown.append("%s: %s" % (name, value))
            out.setdefault("spf", value.split()[0].lower() if value else "")
    return out, shown


def check_sample(srv, checks):
    """The newest delivered message proves that the checks ran (or did not)."""
    v, shown = verdicts(srv.sample())
    want = {"spf": "pass", "dkim": "pass", "dmarc": "pass"} if checks else {}
    if v != want:
        raise RuntimeError("%s: verdicts %r in the delivered message, want %r:\n%s"
                           % (srv.name, v, want, "\n".join(shown)))
    return shown


def ingest_round(R, srv, msgfile, n, sessions, dns_pids, warmup=WARMUP):
    """Warm-up, then n messages; the clock runs from the start of smtp-source to its exit
    (Posthorn: 250 = stored) or to the last message in the Maildir (Postfix)."""
    smtp_source_file(R, srv.smtp_port, msgfile, warmup, sessions, 300)
    R.wait_delivered(srv, warmup, 120)
    time.sleep(0.5)
    cpu0, dns0 = R.tree_cpu(srv.pids), R.tree_cpu(dns_pids)
    t0 = time.perf_counter()
    smtp_source_file(R, srv.smtp_port, msgfile, n, sessions, 900)
    if srv.durable_at_reply:
        t1 = time.perf_counter()
        got = srv.delivered()
        if got != warmup + n:
            raise RuntimeError("%s: %d messages stored, want %d" % (srv.name, got, warmup + n))
    else:
        t1 = R.wait_delivered(srv, warmup + n, 600)
    cpu1, dns1 = R.tree_cpu(srv.pids), R.tree_cpu(dns_pids)
    return {"seconds": t1 - t0, "rate": n / (t1 - t0), "cpu_ms_per_msg": (cpu1 - cpu0) * 1e3 / n,
            "dns_ms_per_msg": (dns1 - dns0) * 1e3 / n}


def run(R, binary, top, knobs, log=log_default, peer=True, dns=None):
    """All rounds, A B C D (A B without the peer). dns: a started-on-demand object with
    start(), stop(), .resolver (Posthorn's dns_resolver), .ip and .pids, given the zone by
    zone(); None: Knot on 127.0.0.36:53. Returns {"rounds": [{key: result}], "shown": {key:
    [header lines]}, ...}."""
    top = Path(top)
    n, sessions = knobs["checks_messages"], knobs.get("checks_sessions", SESSIONS)
    warmup = knobs.get("checks_warmup", min(WARMUP, n))
    world = top / "checks-world"
    world.mkdir(parents=True, exist_ok=True)
    os.chmod(world, 0o755)
    key_pem, key_record = make_key(world)
    msg = make_message(key_pem, R.RCPT, R.SIZE)
    msgfile = world / "message.txt"
    write_for_smtp_source(msgfile, msg)
    if dns is None:
        dns = knot_dns.Knot(world, DNS_IP, "example.", zone_text(key_record),
                            ("_dmarc." + SENDER_DOMAIN, "TXT"))
    else:
        dns.set_zone(zone_text(key_record, dns.ip))
    PosthornChecks = make_posthorn_class(R)
    PeerChecks = make_peer_class(R)
    keys = ("A", "B", "C", "D") if peer else ("A", "B")
    res = {"rounds": [], "shown": {}, "messages": n, "sessions": sessions, "warmup": warmup,
           "size": len(msg), "keys": list(keys)}

    def make(key, d):
        if key in ("A", "B"):
            return PosthornChecks(d, binary, key == "B", dns.resolver)
        return PeerChecks(d, key == "C", dns.ip)

    try:
        dns.start()
        log("checks: DNS on %s, message of %d octets, %d × %d sessions"
            % (dns.resolver, len(msg), n, sessions))
        for i in range(1, knobs["rounds"] + 1):
            rnd = {}
            for key in keys:
                d = top / ("checks-%d-%s" % (i, key))
                d.mkdir()
                os.chmod(d, 0o755)
                # Posthorn follows the disk's fsync rate, which drifts on a shared machine:
                # probed before each server's round.
                fsync = R.fsync_probe.probe(str(top), knobs.get("probe_s", 0.5))[0]
                srv = make(key, d)
                try:
                    srv.start()
                    r = ingest_round(R, srv, msgfile, n, sessions, dns.pids, warmup)
                    r["fsync"] = fsync
                    shown = check_sample(srv, key in ("B", "C"))
                    res["shown"].setdefault(key, shown)
                finally:
                    srv.stop()
                rnd[key] = r
                log("round %d %-46s %7.1f msgs/s  %.3f ms CPU/msg  DNS %.3f ms CPU/msg"
                    % (i, dict(SERVERS)[key], r["rate"], r["cpu_ms_per_msg"],
                       r["dns_ms_per_msg"]))
            res["rounds"].append(rnd)
    finally:
        dns.stop()
    return res


# ---------------------------------------------------------------------------
# The report section


def goals(res, R):
    """(cost of the checks for Posthorn in %, Posthorn with checks / Postfix with checks or
    None), from the medians."""
    med = {k: R.med([r[k]["rate"] for r in res["rounds"]]) for k in res["keys"]}
    cost = (1.0 - med["B"] / med["A"]) * 100.0
    peer = med["B"] / med["C"] if "C" in med else None
    return cost, peer


def report(res, info, R):
    keys = res["keys"]
    rounds = res["rounds"]
    names = dict(SERVERS)

    def vals(k, f):
        return [r[k][f] for r in rounds]

    rows = []
    for k in keys:
        rate = vals(k, "rate")
        rows.append("| %s | %.1f | %.1f | %.3f | %.3f |"
                    % (names[k], R.med(rate), min(rate), R.med(vals(k, "cpu_ms_per_msg")),
                       R.med(vals(k, "dns_ms_per_msg"))))
    cost, peer = goals(res, R)
    per_round = ["%.1f" % ((1 - r["B"]["rate"] / r["A"]["rate"]) * 100) for r in rounds]
    goal = ["Goals of issue 12: the checks cost Posthorn less than 20 %% of its ingest rate: "
            "**%s** (%.1f %% from the medians; per round %s %%, their median %.1f %%: the "
            "rounds pair the two under the same disk and load)"
            % ("met" if cost < 20 else "not met", cost, ", ".join(per_round),
               R.med([(1 - r["B"]["rate"] / r["A"]["rate"]) * 100 for r in rounds]))]
    cpu_a, cpu_b = R.med(vals("A", "cpu_ms_per_msg")), R.med(vals("B", "cpu_ms_per_msg"))
    goal[0] += ("; CPU per message %.3f ms with them, %.3f ms without (+%.0f %%)"
                % (cpu_b, cpu_a, (cpu_b / cpu_a - 1) * 100 if cpu_a else 0))
    if peer is not None:
        per = ["%.2f" % (r["B"]["rate"] / r["C"]["rate"]) for r in rounds]
        pcost = (1.0 - R.med(vals("C", "rate")) / R.med(vals("D", "rate"))) * 100.0
        goal.append("Posthorn with checks ahead of Postfix with checks: **%s** (%.2f× from the "
                    "medians; per round %s). The checks cost Postfix %.1f %% of its rate."
                    % ("met" if peer > 1 else "not met", peer, ", ".join(per), pcost))
    out = [MARK_START, "## Checks on arrival: SPF, DKIM and DMARC", "",
           "Run %s on %s (%s cores), Postfix %s, Dovecot %s (Debian); `bench/run --only checks`."
           " %d rounds %s; per round and server %d messages (after %d of warm-up) of %d "
           "octets, signed (RSA 2048), from %d sessions at once."
           % (info["date"], info["cpu"], info["cores"], info.get("postfix", "?"),
              info.get("dovecot", "?"), len(rounds), " ".join(keys), res["messages"],
              res["warmup"], res["size"], res["sessions"]), "",
           "| server | messages/s: median | min | CPU ms per message | DNS server CPU ms per "
           "message |",
           "|---|---|---|---|---|"] + rows + ["", "  \n".join(goal), "",
                                              "### Rounds", "",
                                              "| round | " + " | ".join(
                                                  names[k] + " msgs/s" for k in keys) + " |",
                                              "|---" * (len(keys) + 1) + "|"]
    for i, r in enumerate(rounds, 1):
        out.append("| %d | %s |" % (i, " | ".join("%.1f" % r[k]["rate"] for k in keys)))
    fs = [r[k]["fsync"] for r in rounds for k in keys if "fsync" in r[k]]
    if fs:
        out += ["", "fsync rate of the disk (4 KiB append + fsync, probed before each server's "
                "round): median %.0f /s (%.0f–%.0f)." % (R.med(fs), min(fs), max(fs))]
    out += ["", "What the servers wrote into a delivered message (round 1; the checks-off "
            "servers wrote none):", "", "```"]
    for k in keys:
        for line in res["shown"].get(k, []):
            out.append("%s  %s" % (k, line[:300]))
    out += ["```", "", METHOD.format(**res), MARK_END]
    return "\n".join(out)


METHOD = """\
### How the checks are measured

- **World** (started once per run): Knot DNS on 127.0.0.36 port 53, authoritative for
  `example.`, TTL one hour: `sender.example TXT "v=spf1 ip4:127.0.0.1 -all"`, the RSA 2048 key at
  `bench._domainkey.sender.example`, `_dmarc.sender.example TXT "v=DMARC1; p=reject"`. One message
  of {size} octets from `news@sender.example` signed by dkimpy (relaxed/relaxed, rsa-sha256),
  so that SPF, DKIM and DMARC (aligned both ways) pass; it is sent {messages} times per round
  by `smtp-source -F` ({sessions} sessions at once, one message per connection, `MAIL FROM`
  news@sender.example, HELO client.sender.example) after {warmup} warm-up messages.
- **Posthorn**: bench/run's instance with `inbound_checks = no`, or `yes` with
  `dns_resolver = 127.0.0.36:53` (libunbound caches the answers for their TTL: after the
  warm-up no message waits for DNS). Its actions are the defaults: DMARC `p=reject`
  refused, results recorded for aggregate reports. The clock stops when smtp-source exits
  (a 250 from Posthorn means stored and fsynced).
- **Postfix** (peer.sh's private Postfix → LMTP → Dovecot): `check_policy_service` at RCPT
  to `policyd-spf` (postfix-policyd-spf-python; spawned by master as `nobody`; Debian's
  settings except `skip_addresses`, which exempts 127.0.0.0/8 by default, no HELO check, and
  the result written as Authentication-Results), then `smtpd_milters` OpenDKIM (`Mode v`)
  and OpenDMARC (`RejectFailures true`, a history file as for reports), both with
  `InternalHosts`/`IgnoreHosts` not covering 127.0.0.1 (they skip local clients by
  default). OpenDKIM asks 127.0.0.36 by its `Nameservers` setting (libunbound, which
  caches); OpenDMARC (libresolv) and policyd-spf (python3-spf) read /etc/resolv.conf, which
  in their private mount namespace (`unshare -m`, also Postfix's master's, whose `spawn`
  starts policyd-spf) names 127.0.0.36; neither caches. The clock stops when Dovecot has the
  last message in the Maildir.
- **Verdicts**: after each round the newest delivered message must carry `spf=pass`,
  `dkim=pass` and `dmarc=pass` (Posthorn: its one Authentication-Results field; Postfix:
  the fields policyd-spf, OpenDKIM and OpenDMARC added), and none on the servers without
  checks; a refused message fails smtp-source and the round.
- **CPU per message**: user + system time over the measured interval of Posthorn's process,
  or of Postfix's and Dovecot's master trees plus the opendkim and opendmarc processes
  (policyd-spf is a child of Postfix's master); the DNS server's is given apart.
"""

_SECTION = report_section.Section(MARK_START, MARK_END)
merge_into = _SECTION.merge_into
carry_over = _SECTION.carry_over
