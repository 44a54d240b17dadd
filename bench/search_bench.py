#!/usr/bin/python3
"""bench/search_bench.py: SEARCH BODY and TEXT on one large mailbox (issue 11), run by
`bench/run --only search` or alone (`bench/search_bench.py --sizes 2000,20000 --output -`).

For each N (full: 10,000 and 100,000 messages; quick: 1,000 and 10,000) one mailbox of N
messages on Posthorn (SQLite, bench/run's Posthorn class; filled over IMAP by pipelined
MULTIAPPEND as bench/largebox_bench.py does, so every message is indexed at APPEND) and on
Dovecot from Debian (bench/peers/peer.sh, Maildir written directly; no FTS plugin, so its
body searches read every message; its first SELECT builds its index, before the timing).
The messages (~900 octets) are a third plain ASCII, a third quoted-printable ISO-8859-1, a
third base64 UTF-8, each with a word of its own (`tok<i>x`), one word in ten messages
(`quarterly`), and the accented word `café` in the encoded ones. Then R rounds (default 5),
servers interleaved, each a new session (LOGIN and SELECT not timed), timing:

- SEARCH BODY tok<N/2>x: one hit (a selective word);
- SEARCH BODY quarterly: N/10 hits;
- SEARCH CHARSET UTF-8 BODY café: decoded from QP Latin-1 and base64 UTF-8 (2N/3 hits);
- SEARCH TEXT "subject: message 1": headers too (about N/10 hits);
- SEARCH BODY xq: two characters (no trigram: Posthorn scans its stored texts);
- SEARCH BODY nowhere-to-be-found: no hit.

Median and min per server, hit counts compared (they must agree), and the growth from the
smaller N to the larger. Standard library only; reuses bench/largebox_bench.py.
"""

import argparse
import base64
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import largebox_bench as lb  # noqa: E402
import report_section  # noqa: E402

MARK_START = "<!-- search-bench start -->"
MARK_END = "<!-- search-bench end -->"


def message(i):
    """Message i of the search corpus (see the module's text)."""
    subject = b"message %d" % i
    words = b"tok%dx body text of the search benchmark%s" % (
        i, b" quarterly figures" if i % 10 == 3 else b"")
    head = (b"From: a%d@x.test\r\nTo: b@y.test\r\nSubject: %s\r\n"
            b"Date: Sun, 6 Dec 2026 10:00:00 +0000\r\nMessage-ID: <%d@x.test>\r\n"
            % (i % 97, subject, i))
    filler = b"more ordinary words on a line of the message\r\n" * 10
    kind = i % 3
    if kind == 0:
        return head + b"\r\n" + words + b"\r\n" + filler
    if kind == 1:
        body = words + b" le caf=E9 co=FBte cher\r\n" + filler
        return (head + b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=ISO-8859-1\r\n"
                b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + body)
    text = words + " le café coûte cher\r\n".encode() + filler
    b64 = base64.encodebytes(text).replace(b"\n", b"\r\n")
    return (head + b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b64)


def queries(n):
    return [
        ("rare", "BODY tok%dx (1 hit)" % (n // 2), b"SEARCH BODY tok%dx" % (n // 2), None),
        ("tenth", "BODY quarterly (N/10)", b"SEARCH BODY quarterly", None),
        ("decoded", "BODY café, QP and base64 (2N/3)", b"SEARCH CHARSET UTF-8 BODY",
         "café".encode()),
        ("text", 'TEXT "subject: message 1"', b'SEARCH TEXT "subject: message 1"', None),
        ("short", "BODY xq (2 characters)", b"SEARCH BODY xq", None),
        ("none", "BODY nowhere-to-be-found (0)", b"SEARCH BODY nowhere-to-be-found", None),
    ]


def one_round(port, user, pw, n):
    c = lb.Client(port)
    c.login(user, pw)
    c.cmd(b"SELECT INBOX")
    out = {}
    for key, _, cmd, literal in queries(n):
        t = time.perf_counter()
        lines = c.cmd(cmd, literal=literal)
        out[key] = ((time.perf_counter() - t) * 1000.0, lb.search_count(lines))
    c.close()
    return out


def run(R, binary, top, sizes, rounds=5, peer=True, log=lb.log_default):
    user = R.RCPT
    pw = R.password(user)
    res = {"sizes": list(sizes), "rounds": rounds, "by_size": {}}
    largebox_message = lb.message
    lb.message = message  # fill_imap and fill_maildir write this corpus
    try:
        for n in sizes:
            res["by_size"][n] = run_size(R, binary, top, n, rounds, peer, user, pw, log)
    finally:
        lb.message = largebox_message
    return res


def run_size(R, binary, top, n, rounds, peer, user, pw, log):
    """One mailbox of n messages on each server: the figures of report()'s rows."""
    with lb.server_pair(R, binary, Path(top) / ("search-%d" % n), user, pw, peer) as servers:
        a = servers[0][1]
        b = servers[1][1] if peer else None
        out = {k: {"rounds": []} for k, _ in servers}
        out["posthorn"]["fill_s"] = lb.fill_imap(a.imap_port, user, pw, n)
        log("N=%d: Posthorn filled (and indexed) by MULTIAPPEND in %.1f s"
            % (n, out["posthorn"]["fill_s"]))
        if peer:
            out["dovecot"]["fill_s"] = lb.fill_maildir(b.maildir, n)
            lb.first_select(b.imap_port, user, pw, n)
        for i in range(rounds):
            for k, s in servers:
                r = one_round(s.imap_port, user, pw, n)
                out[k]["rounds"].append(r)
                log("N=%d round %d %-9s %s" % (n, i + 1, k, "  ".join(
                    "%s %.1f ms (%d)" % (q, r[q][0], r[q][1]) for q in r)))
        for k, _ in servers:
            rs = out[k]["rounds"]
            out[k]["median"] = {q: statistics.median(r[q][0] for r in rs) for q in rs[0]}
            out[k]["min"] = {q: min(r[q][0] for r in rs) for q in rs[0]}
            out[k]["hits"] = {q: rs[0][q][1] for q in rs[0]}
        return out


def report(res, info=None):
    sizes = res["sizes"]
    lines = ["## SEARCH BODY and TEXT on a large mailbox", "",
             "One mailbox of N messages (~900 octets: a third plain, a third quoted-printable "
             "ISO-8859-1, a third base64 UTF-8) on Posthorn (SQLite; filled over IMAP by "
             "MULTIAPPEND, so each message's text was decoded and indexed once at APPEND) and "
             "on Dovecot from Debian (Maildir written directly, indexed by a first SELECT; "
             "no FTS plugin, so each body search reads and decodes every message). Each round "
             "is a new session per server (LOGIN and SELECT not timed); median (min) of %d "
             "rounds in ms; hits are the number of matches (both servers must agree) "
             "(bench/search_bench.py)." % res["rounds"], ""]
    if info:
        lines.append(info)
        lines.append("")
    lines.append("| N | search | hits | Posthorn ms | Dovecot ms | Posthorn / Dovecot |")
    lines.append("|---|---|---|---|---|---|")
    for n in sizes:
        out = res["by_size"][n]
        p = out["posthorn"]
        dv = out.get("dovecot")
        for key, label, _, _ in queries(n):
            hits = "%d" % p["hits"][key]
            if dv is not None and dv["hits"][key] != p["hits"][key]:
                hits += " (Dovecot %d)" % dv["hits"][key]
            pd = "%.1f (%.1f)" % (p["median"][key], p["min"][key])
            dd = ("%.1f (%.1f)" % (dv["median"][key], dv["min"][key])) if dv else "–"
            ratio = ("%.3f" % (p["median"][key] / dv["median"][key])) if dv and \
                dv["median"][key] > 0 else "–"
            lines.append("| %s | %s | %s | %s | %s | %s |" % (
                "{:,}".format(n), label, hits, pd, dd, ratio))
    if len(sizes) >= 2:
        lo, hi = sizes[0], sizes[-1]
        lines += ["", "Growth from %s to %s messages (%.0f×):" % (
            "{:,}".format(lo), "{:,}".format(hi), hi / lo), "",
            "| search | Posthorn | Dovecot |", "|---|---|---|"]
        for key, label, _, _ in queries(hi):
            def g(side):
                a = res["by_size"][lo].get(side)
                b = res["by_size"][hi].get(side)
                if not a or not b or a["median"][key] <= 0:
                    return "–"
                return "%.1f×" % (b["median"][key] / a["median"][key])
            lines.append("| %s | %s | %s |" % (label.split(" (")[0], g("posthorn"),
                                                g("dovecot")))
    return MARK_START + "\n" + "\n".join(lines) + "\n" + MARK_END


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000",
                    help="comma-separated mailbox sizes (10000,100000; --quick 1000,10000)")
    ap.add_argument("--quick", action="store_true", help="sizes 1000,10000 and 3 rounds")
    ap.add_argument("--rounds", type=int, help="rounds per size (5; --quick 3)")
    ap.add_argument("--no-peer", action="store_true", help="Posthorn only")
    ap.add_argument("--output", default="-", help="merge the section into this Markdown file")
    args = ap.parse_args(argv)
    sizes = [int(x) for x in ("1000,10000" if args.quick and args.sizes == "10000,100000"
                              else args.sizes).split(",") if x.strip()]
    rounds = args.rounds or (3 if args.quick else 5)
    R = report_section.load_run()
    binary = os.environ.get("POSTHORN_BIN") or str(HERE.parent / "build" / "posthorn")
    with tempfile.TemporaryDirectory(prefix="posthorn-search-") as top:
        os.chmod(top, 0o755)
        try:
            res = run(R, binary, top, sizes, rounds, not args.no_peer)
        finally:
            R.stop_all()
    text = report(res)
    print(text)
    if args.output != "-":
        report_section.merge_into(args.output, text, MARK_START, MARK_END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
