#!/usr/bin/python3
"""Generate the MIME test corpus: real-world-shaped messages, well-formed and broken.

Usage: gen.py OUTDIR

Writes NNN-name.eml files (deterministic: the same bytes on every run, standard library only).
The corpus feeds the Dovecot differential test of ENVELOPE / BODYSTRUCTURE / BODY[n.MIME] /
BINARY.SIZE / SEARCH, the MIME unit tests and the fuzz seed corpus. Shapes covered:
multipart/mixed, alternative, related, digest, signed, encrypted, report; nested
message/rfc822; encoded words; RFC 2231 parameters; broken MIME (missing or wrong boundary,
missing end boundary, broken Content-Type, headers cut by a boundary); 8-bit headers; no
trailing newline; missing Content-Type; upper-case and quoted parameters; empty parts; group
and broken addresses; nesting beyond Dovecot's limit of 100 levels; bare-LF line ends.
"""

import base64
import os
import sys

CRLF = "\r\n"
MESSAGES = []


def message(name):
    def register(fn):
        MESSAGES.append((name, fn))
        return fn
    return register


def crlf(*lines):
    """Join lines with CRLF, ending with CRLF."""
    return (CRLF.join(lines) + CRLF).encode("utf-8")


def std_headers(subject="Test message", extra=()):
    return [
        "Return-Path: <alice@example.org>",
        "Received: from mail.example.org (mail.example.org [192.0.2.10])",
        "\tby mx.example.net with ESMTPS id 4XyZ1; Tue, 02 Jan 2024 10:00:00 +0000",
        "Date: Tue, 2 Jan 2024 10:00:00 +0100",
        "From: Alice Example <alice@example.org>",
        "To: Bob Example <bob@example.net>",
        "Subject: " + subject,
        "Message-ID: <20240102100000.1234@example.org>",
    ] + list(extra)


def b64(data, width=76):
    enc = base64.b64encode(data).decode("ascii")
    return [enc[i:i + width] for i in range(0, len(enc), width)] or [""]


def fake_bytes(n, seed):
    """Deterministic pseudo-random bytes (a linear congruential generator)."""
    out = bytearray()
    x = seed
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append((x >> 16) & 0xFF)
    return bytes(out)


PNG = b"\x89PNG\r\n\x1a\n" + fake_bytes(300, 7)
PDF = b"%PDF-1.4\n" + fake_bytes(700, 11) + b"\n%%EOF\n"


@message("plain-simple")
def _():
    return crlf(*std_headers("Lunch tomorrow?"), "MIME-Version: 1.0",
                "Content-Type: text/plain; charset=us-ascii",
                "Content-Transfer-Encoding: 7bit", "",
                "Hi Bob,", "", "Are we still on for lunch tomorrow?", "", "Alice")


@message("plain-no-content-type")
def _():
    return crlf(*std_headers("No MIME at all"), "", "Plain old RFC 822 mail.", "Second line.")


@message("plain-utf8-qp")
def _():
    return crlf(*std_headers("=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?="),
                "MIME-Version: 1.0", "Content-Type: text/plain; charset=UTF-8",
                "Content-Transfer-Encoding: quoted-printable", "",
                "Gr=C3=BC=C3=9Fe aus M=C3=BCnchen! Das ist eine l=C3=A4ngere Zeile, die =",
                "umbrochen wurde.", "")


@message("html-only")
def _():
    return crlf(*std_headers("Newsletter"), "MIME-Version: 1.0",
                "Content-Type: text/html; charset=\"utf-8\"",
                "Content-Transfer-Encoding: 8bit", "",
                "<html><body><h1>News</h1><p>Caf\u00e9 opening</p></body></html>")


@message("alternative")
def _():
    return crlf(*std_headers("Alternative"), "MIME-Version: 1.0",
                "Content-Type: multipart/alternative; boundary=\"alt-1\"", "",
                "This is a multi-part message in MIME format.", "",
                "--alt-1", "Content-Type: text/plain; charset=utf-8",
                "Content-Transfer-Encoding: 7bit", "", "Plain version", "",
                "--alt-1", "Content-Type: text/html; charset=utf-8",
                "Content-Transfer-Encoding: 7bit", "", "<p>HTML version</p>", "",
                "--alt-1--", "")


@message("mixed-pdf")
def _():
    return crlf(*std_headers("Invoice attached"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed;", " boundary=\"----=_Part_0_1\"", "",
                "------=_Part_0_1", "Content-Type: text/plain; charset=us-ascii", "",
                "Please find the invoice attached.", "",
                "------=_Part_0_1",
                "Content-Type: application/pdf; name=\"invoice-2024-001.pdf\"",
                "Content-Transfer-Encoding: base64",
                "Content-Disposition: attachment; filename=\"invoice-2024-001.pdf\"; size=716",
                "", *b64(PDF), "", "------=_Part_0_1--", "")


@message("related-inline-image")
def _():
    return crlf(*std_headers("Look at this"), "MIME-Version: 1.0",
                "Content-Type: multipart/related; type=\"text/html\"; boundary=rel",
                "", "--rel", "Content-Type: text/html; charset=us-ascii", "",
                "<img src=\"cid:logo@example.org\">", "--rel",
                "Content-Type: image/png; name=logo.png",
                "Content-ID: <logo@example.org>",
                "Content-Location: http://example.org/logo.png",
                "Content-Transfer-Encoding: base64",
                "Content-Disposition: inline; filename=logo.png", "", *b64(PNG), "--rel--")


@message("mixed-alternative-attachment")
def _():
    return crlf(*std_headers("Report"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=\"outer\"", "",
                "--outer", "Content-Type: multipart/alternative; boundary=\"inner\"", "",
                "--inner", "Content-Type: text/plain", "", "Text body", "--inner",
                "Content-Type: text/html", "", "<b>HTML body</b>", "--inner--", "",
                "--outer", "Content-Type: text/csv; name=data.csv",
                "Content-Disposition: attachment; filename=data.csv", "",
                "a,b,c", "1,2,3", "--outer--", "")


INNER_SIMPLE = [
    "Date: Mon, 1 Jan 2024 09:00:00 +0000",
    "From: Carol <carol@example.com>",
    "To: Alice Example <alice@example.org>",
    "Subject: Original message",
    "Message-ID: <orig-1@example.com>",
    "", "This is the original message.", "It has two lines.",
]


@message("forward-rfc822")
def _():
    return crlf(*std_headers("Fwd: Original message"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=fwd", "",
                "--fwd", "Content-Type: text/plain", "", "See below.", "",
                "--fwd", "Content-Type: message/rfc822",
                "Content-Disposition: attachment; filename=\"original.eml\"", "",
                *INNER_SIMPLE, "--fwd--", "")


@message("forward-rfc822-multipart")
def _():
    return crlf(*std_headers("Fwd: with parts"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=fwd2", "",
                "--fwd2", "Content-Type: text/plain", "", "Forwarded:", "",
                "--fwd2", "Content-Type: message/rfc822", "",
                "From: Dave <dave@example.com>", "Subject: inner alternative",
                "MIME-Version: 1.0", "Content-Type: multipart/alternative; boundary=in2", "",
                "--in2", "Content-Type: text/plain", "", "inner text", "--in2",
                "Content-Type: text/html", "", "<p>inner html</p>", "--in2--", "",
                "--fwd2--", "")


@message("rfc822-in-rfc822")
def _():
    return crlf(*std_headers("Fwd: Fwd: deep"), "MIME-Version: 1.0",
                "Content-Type: message/rfc822", "",
                "From: Erin <erin@example.com>", "Subject: Fwd: deep",
                "MIME-Version: 1.0", "Content-Type: message/rfc822", "",
                *INNER_SIMPLE)


@message("digest")
def _():
    return crlf(*std_headers("Digest, Vol 1, Issue 2"), "MIME-Version: 1.0",
                "Content-Type: multipart/digest; boundary=\"dig\"", "",
                "--dig", "", *INNER_SIMPLE, "",
                "--dig", "", "From: Frank <frank@example.com>", "Subject: Second", "",
                "Second message body.", "",
                "--dig", "Content-Type: text/plain", "", "Not a message, explicitly typed.",
                "--dig--", "")


@message("rfc2231-params")
def _():
    return crlf(*std_headers("RFC 2231"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=p2231", "",
                "--p2231",
                "Content-Type: application/octet-stream;",
                " name*=utf-8''%E2%82%AC%20rates.txt",
                "Content-Disposition: attachment;",
                " filename*0*=utf-8'en'very%20long%20file;",
                " filename*1=\"name with spaces\";",
                " filename*2*=%20end.txt", "", "data", "--p2231",
                "Content-Type: text/plain; title*0=\"part one \"; title*1=\"part two\"", "",
                "continuations without charset", "--p2231--", "")


@message("rfc2231-missing-index")
def _():
    return crlf(*std_headers("RFC 2231 gaps"), "MIME-Version: 1.0",
                "Content-Type: application/x-test; name*0=\"a\"; name*2=\"c\"; other*=x",
                "", "body")


@message("encoded-words")
def _():
    return crlf("Date: Wed, 3 Jan 2024 12:00:00 +0000",
                "From: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>",
                "To: =?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>",
                "CC: =?ISO-8859-1?Q?Olle_J=E4rnefors?= <ojarnef@admin.kth.se>",
                "Subject: =?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=",
                "  =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=",
                "Message-ID: <ew@example.org>", "MIME-Version: 1.0",
                "Content-Type: text/plain; charset=ISO-8859-1",
                "Content-Transfer-Encoding: quoted-printable", "", "Andr=E9", "")


@message("8bit-headers")
def _():
    return crlf("Date: Thu, 4 Jan 2024 08:00:00 +0900",
                "From: \u5c71\u7530\u592a\u90ce <taro@example.jp>",
                "To: J\u00fcrgen M\u00fcller <juergen@b\u00fccher.example>",
                "Subject: \u4f1a\u8b70\u306e\u304a\u77e5\u3089\u305b \u2014 caf\u00e9",
                "Message-ID: <8bit@example.jp>", "MIME-Version: 1.0",
                "Content-Type: text/plain; charset=utf-8",
                "Content-Transfer-Encoding: 8bit", "", "\u672c\u6587\u3067\u3059\u3002")


@message("no-trailing-newline")
def _():
    return crlf(*std_headers("No final newline"), "", "Last line without CRLF")[:-2]


@message("multipart-end-at-eof")
def _():
    return crlf(*std_headers("End boundary at EOF"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=eof", "",
                "--eof", "Content-Type: text/plain", "", "one", "--eof--")[:-2]


@message("missing-end-boundary")
def _():
    return crlf(*std_headers("Truncated multipart"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=trunc", "",
                "--trunc", "Content-Type: text/plain", "", "first", "--trunc",
                "Content-Type: application/octet-stream",
                "Content-Transfer-Encoding: base64", "", *b64(fake_bytes(200, 3)))


@message("multipart-no-boundary-param")
def _():
    return crlf(*std_headers("Where is the boundary"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed", "", "--x", "Content-Type: text/plain", "",
                "body", "--x--")


@message("multipart-wrong-boundary")
def _():
    return crlf(*std_headers("Wrong boundary"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=\"right\"", "",
                "--wrong", "Content-Type: text/plain", "", "body", "--wrong--", "")


@message("broken-content-type-no-subtype")
def _():
    return crlf(*std_headers("Type without subtype"), "MIME-Version: 1.0",
                "Content-Type: text; charset=us-ascii", "", "body")


@message("broken-content-type-empty")
def _():
    return crlf(*std_headers("Empty Content-Type"), "MIME-Version: 1.0",
                "Content-Type: ", "", "body")


@message("broken-content-type-garbage")
def _():
    return crlf(*std_headers("Garbage Content-Type"), "MIME-Version: 1.0",
                "Content-Type: text/plain garbage; charset=utf-8",
                "Content-Transfer-Encoding: 7bit garbage", "", "body")


@message("uppercase-params")
def _():
    return crlf(*std_headers("Upper case"), "MIME-Version: 1.0",
                "CONTENT-TYPE: TEXT/PLAIN; CHARSET=\"ISO-8859-1\"; FORMAT=Flowed",
                "CONTENT-TRANSFER-ENCODING: BASE64",
                "CONTENT-DISPOSITION: INLINE", "", "SGVsbG8gV29ybGQ=")


@message("quoted-params")
def _():
    return crlf(*std_headers("Quoted parameters"), "MIME-Version: 1.0",
                "Content-Type: application/octet-stream;",
                "\tname=\"semi;colon \\\"quoted\\\" back\\\\slash.bin\";",
                "\tx-empty=\"\"; x-token=abc.def",
                "Content-Disposition: attachment; filename=\"a b  c.bin\"", "", "xx")


@message("empty-parts")
def _():
    return crlf(*std_headers("Empty parts"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=e", "",
                "--e", "Content-Type: text/plain", "", "--e", "", "--e",
                "Content-Type: application/octet-stream", "", "", "--e", "--e--", "")


@message("deep-multipart-over-limit")
def _():
    depth = 105
    lines = std_headers("Deep multipart") + ["MIME-Version: 1.0"]
    for i in range(depth):
        lines += ["Content-Type: multipart/mixed; boundary=\"d%d\"" % i, "", "--d%d" % i]
    lines += ["Content-Type: text/plain", "", "bottom"]
    for i in reversed(range(depth)):
        lines += ["--d%d--" % i]
    return crlf(*lines)


@message("deep-rfc822-nesting")
def _():
    lines = std_headers("Deep forward") + ["MIME-Version: 1.0"]
    for i in range(12):
        lines += ["Content-Type: message/rfc822", "", "From: level%d@example.com" % i,
                  "Subject: level %d" % i, "MIME-Version: 1.0"]
    lines += ["Content-Type: text/plain", "", "deepest"]
    return crlf(*lines)


@message("deep-rfc822-over-limit")
def _():
    lines = std_headers("Deeper than the limit") + ["MIME-Version: 1.0"]
    for i in range(102):
        lines += ["Content-Type: message/rfc822", "", "Subject: l%d" % i]
    lines += ["", "deepest"]
    return crlf(*lines)


@message("group-addresses")
def _():
    return crlf("Date: Fri, 5 Jan 2024 10:00:00 +0000", "From: Alice <alice@example.org>",
                "To: undisclosed-recipients:;",
                "Cc: Team: bob@example.net, \"Carol C.\" <carol@example.com>;, dave@example.com",
                "Bcc: Empty Group: ;", "Subject: Groups", "", "body")


@message("odd-addresses")
def _():
    return crlf("From: \"Smith, John\" <john.smith@example.com> (Sales)",
                "Sender: secretary@example.com (Jane Secretary)",
                "Reply-To: \"quoted local\"@example.com, <@route1,@route2:routed@example.com>",
                "To: user@[192.0.2.1], just-a-name, Display Only, <>,",
                " broken <unterminated@example.com, \"Esc \\\"aped\\\"\" <esc@example.com>",
                "Cc: no-domain@, @no-local.example, a.b.c@d.e.f (comment (nested)), ,",
                "Subject: Odd addresses", "", "body")


@message("duplicate-headers")
def _():
    return crlf("From: first@example.com", "From: second@example.com",
                "To: a@example.com", "To: b@example.com", "Subject: first subject",
                "Subject: second subject", "Date: Sat, 6 Jan 2024 00:00:00 +0000",
                "Date: Sun, 7 Jan 2024 00:00:00 +0000", "MIME-Version: 1.0",
                "Content-Type: text/plain; charset=first",
                "Content-Type: text/html; charset=second",
                "Content-Transfer-Encoding: base64", "Content-Transfer-Encoding: 8bit",
                "", "Ym9keQ==")


@message("folded-headers")
def _():
    return crlf("Date: Mon, 8 Jan 2024", "  11:22:33 +0000",
                "From: Alice", " <alice@example.org>",
                "To: bob@example.net,", "\tcarol@example.com,", "  dave@example.com",
                "Subject: This is a long subject line that has been folded", "\tover",
                "  three lines", "Message-ID:", " <folded-id@example.org>",
                "In-Reply-To: <parent@example.org>", " <grandparent@example.org>",
                "References: <a@example.org>", " <b@example.org>",
                "MIME-Version: 1.0", "Content-Type: text/plain;", "  charset=utf-8;",
                "  format=flowed", "Content-Description: folded", " description", "",
                "body")


@message("header-garbage-lines")
def _():
    return crlf("From alice@example.org Mon Jan  8 00:00:00 2024",
                "From: Alice <alice@example.org>", "This line has no colon",
                "Subject: after garbage", " : colon continuation", "X-Empty:",
                "Content-Type : text/plain ; charset = us-ascii", "MIME-Version: 1.0", "",
                "body")


@message("header-only-no-blank")
def _():
    return crlf("From: alice@example.org", "Subject: header only")


@message("one-byte")
def _():
    return b"x"


@message("content-extras")
def _():
    return crlf(*std_headers("Extension data"), "MIME-Version: 1.0",
                "Content-Type: text/plain; charset=us-ascii",
                "Content-ID: <part1.abc@example.org>",
                "Content-Description: A description with \"quotes\"",
                "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==",
                "Content-Language: en-US, de-DE, fr",
                "Content-Location: https://example.org/msg/1",
                "Content-Disposition: inline; filename=\"msg.txt\"; creation-date=",
                " \"Wed, 12 Feb 1997 16:29:51 -0500\"", "", "body")


@message("bare-lf")
def _():
    text = "\n".join(std_headers("Bare LF line ends") + [
        "MIME-Version: 1.0", "Content-Type: multipart/alternative; boundary=lf", "",
        "--lf", "Content-Type: text/plain", "", "unix line ends", "", "--lf",
        "Content-Type: text/html", "", "<p>unix</p>", "--lf--", ""])
    return text.encode()


@message("mixed-line-ends")
def _():
    return (b"From: a@example.org\r\nSubject: mixed\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain\n\r\nline one\nline two\r\nline three\n")


@message("preamble-epilogue")
def _():
    return crlf(*std_headers("Preamble and epilogue"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=pe", "",
                "This is the preamble.", "It has --dashes-- too.", "", "--pe",
                "Content-Type: text/plain", "", "part", "--pe--", "",
                "This is the epilogue.", "--pe", "not a part any more")


@message("boundary-prefixes")
def _():
    return crlf(*std_headers("Boundary prefixes"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=\"b\"", "",
                "--b", "Content-Type: multipart/alternative; boundary=\"bb\"", "",
                "--bb", "Content-Type: text/plain", "", "in bb", "--bb",
                "Content-Type: text/html", "", "<p>in bb</p>", "--bb--", "--b",
                "Content-Type: text/plain", "", "in b", "--b--", "")


@message("boundary-trailing-space")
def _():
    return crlf(*std_headers("Boundary whitespace"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=ws", "",
                "--ws   ", "Content-Type: text/plain", "", "one", "--ws\t",
                "Content-Type: text/plain", "", "two", "--ws--  ", "")


@message("boundary-lookalikes")
def _():
    return crlf(*std_headers("Lookalikes"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=real", "",
                "--real", "Content-Type: text/plain", "",
                "-- real", "--Real", "---real", " --real", "--realistic is a prefix match",
                "--real", "Content-Type: text/plain", "", "last", "--real--", "")


@message("encodings")
def _():
    return crlf(*std_headers("Transfer encodings"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=enc", "",
                "--enc", "Content-Type: text/plain", "Content-Transfer-Encoding: BASE64", "",
                "aGVsbG8=", "--enc", "Content-Type: application/octet-stream",
                "Content-Transfer-Encoding: x-uuencode", "",
                "begin 644 a.txt", "#86)C", "`", "end", "--enc",
                "Content-Type: text/plain", "Content-Transfer-Encoding: Quoted-Printable", "",
                "caf=C3=A9", "--enc", "Content-Type: text/plain",
                "Content-Transfer-Encoding: (comment) 8bit (another)", "", "8bit", "--enc--", "")


@message("format-flowed")
def _():
    return crlf(*std_headers("Flowed"), "MIME-Version: 1.0",
                "Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes", "",
                "This is a flowed paragraph that goes on ", "and on.", "", "> quoted")


@message("calendar-invite")
def _():
    return crlf(*std_headers("Invitation: Meeting"), "MIME-Version: 1.0",
                "Content-Type: multipart/alternative; boundary=\"cal\"", "",
                "--cal", "Content-Type: text/plain; charset=UTF-8", "", "You are invited.",
                "--cal", "Content-Type: text/calendar; charset=UTF-8; method=REQUEST",
                "Content-Transfer-Encoding: 7bit", "", "BEGIN:VCALENDAR", "METHOD:REQUEST",
                "BEGIN:VEVENT", "UID:1@example.org", "DTSTART:20240110T100000Z",
                "SUMMARY:Meeting", "END:VEVENT", "END:VCALENDAR", "--cal--", "")


@message("smime-signed")
def _():
    return crlf(*std_headers("Signed"), "MIME-Version: 1.0",
                "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";",
                " micalg=sha-256; boundary=\"----SIG\"", "",
                "This is an S/MIME signed message", "", "------SIG",
                "Content-Type: text/plain; charset=us-ascii", "", "Signed text.", "",
                "------SIG", "Content-Type: application/pkcs7-signature; name=\"smime.p7s\"",
                "Content-Transfer-Encoding: base64",
                "Content-Disposition: attachment; filename=\"smime.p7s\"",
                "Content-Description: S/MIME Cryptographic Signature", "",
                *b64(fake_bytes(120, 5)), "", "------SIG--", "")


@message("pgp-encrypted")
def _():
    return crlf(*std_headers("Encrypted"), "MIME-Version: 1.0",
                "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";",
                "\tboundary=\"pgp\"", "", "--pgp",
                "Content-Type: application/pgp-encrypted",
                "Content-Description: PGP/MIME version identification", "", "Version: 1",
                "", "--pgp", "Content-Type: application/octet-stream; name=\"encrypted.asc\"",
                "Content-Description: OpenPGP encrypted message",
                "Content-Disposition: inline; filename=\"encrypted.asc\"", "",
                "-----BEGIN PGP MESSAGE-----", "", *b64(fake_bytes(150, 9), 64),
                "-----END PGP MESSAGE-----", "", "--pgp--", "")


@message("dsn-report")
def _():
    return crlf("Date: Tue, 9 Jan 2024 10:00:00 +0000",
                "From: Mail Delivery System <MAILER-DAEMON@example.net>",
                "To: alice@example.org", "Subject: Undelivered Mail Returned to Sender",
                "Auto-Submitted: auto-replied", "MIME-Version: 1.0",
                "Content-Type: multipart/report; report-type=delivery-status;",
                "\tboundary=\"DSN.123\"", "", "--DSN.123",
                "Content-Description: Notification", "Content-Type: text/plain; charset=us-ascii",
                "", "Your message could not be delivered.", "", "--DSN.123",
                "Content-Description: Delivery report",
                "Content-Type: message/delivery-status", "",
                "Reporting-MTA: dns; mx.example.net", "", "Final-Recipient: rfc822; nobody@example.net",
                "Action: failed", "Status: 5.1.1", "", "--DSN.123",
                "Content-Description: Undelivered Message Headers",
                "Content-Type: text/rfc822-headers", "",
                "From: alice@example.org", "To: nobody@example.net", "Subject: hello", "",
                "--DSN.123--", "")


@message("mailing-list")
def _():
    return crlf("Date: Wed, 10 Jan 2024 10:00:00 +0000",
                "From: Alice <alice@example.org>",
                "Sender: dev-bounces@lists.example.org",
                "Reply-To: dev@lists.example.org",
                "To: dev@lists.example.org", "Subject: [dev] Release plan",
                "List-Id: Developers <dev.lists.example.org>",
                "List-Unsubscribe: <mailto:dev-leave@lists.example.org>",
                "Precedence: list", "Message-ID: <list-1@example.org>",
                "In-Reply-To: <list-0@example.org>", "", "Let's ship on Friday.")


@message("long-subject")
def _():
    subject = " ".join("word%d" % i for i in range(250))
    return crlf(*std_headers(subject), "", "body")


@message("subject-specials")
def _():
    return crlf("From: a@example.org", "Subject: \"Quoted\" and back\\slash",
                "", "body")


@message("subject-whitespace")
def _():
    return crlf("From: a@example.org", "Subject:   lots\tof   white  space   ",
                "To: \"  Spaced   Name  \" <s@example.org>", "", "body")


@message("empty-fields")
def _():
    return crlf("From:", "To: ", "Subject:", "Date:", "Message-ID:", "", "body")


@message("many-recipients")
def _():
    to = ", ".join("User %d <user%d@example.net>" % (i, i) for i in range(40))
    return crlf("From: Alice <alice@example.org>, Bob <bob@example.net>", "To: " + to,
                "Subject: Many recipients", "", "body")


@message("content-type-comments")
def _():
    return crlf(*std_headers("Comments in Content-Type"), "MIME-Version: 1.0",
                "Content-Type: text/plain (plain text) ; charset=us-ascii (ascii)", "",
                "body")


@message("no-mime-version-multipart")
def _():
    return crlf("From: a@example.org", "Subject: Content-Type without MIME-Version",
                "Content-Type: multipart/mixed; boundary=nomv", "", "--nomv",
                "Content-Type: text/plain", "", "part", "--nomv--", "")


@message("no-mime-version-cte-only")
def _():
    return crlf("From: a@example.org", "Subject: CTE without MIME",
                "Content-Transfer-Encoding: base64",
                "Content-Disposition: attachment; filename=x", "", "aGVsbG8=")


@message("rfc822-empty-inner-header")
def _():
    return crlf(*std_headers("Inner without header"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=eh", "", "--eh",
                "Content-Type: message/rfc822", "", "", "inner body only", "--eh--", "")


@message("single-part-multipart")
def _():
    return crlf(*std_headers("Only one part"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=one", "", "--one", "",
                "part without header", "--one--", "")


@message("message-global")
def _():
    return crlf(*std_headers("message/global"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=g", "", "--g",
                "Content-Type: message/global", "",
                "From: \u00e9l\u00e8ve@\u00e9cole.example", "Subject: \u00e9t\u00e9", "",
                "contenu", "--g--", "")


@message("latin1-8bit-body")
def _():
    return (b"From: a@example.org\r\nSubject: Latin-1\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=iso-8859-1\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\nCaf\xe9 cr\xe8me br\xfbl\xe9e\r\n")


@message("broken-params")
def _():
    return crlf(*std_headers("Broken parameters"), "MIME-Version: 1.0",
                "Content-Type: text/plain; charset=\"\"; ; foo; =bar; name=; x=y z; q=\"unterminated",
                "", "body")


@message("long-boundary")
def _():
    bnd = "L" * 90
    return crlf(*std_headers("Boundary longer than 80"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=\"%s\"" % bnd, "",
                "--" + bnd, "Content-Type: text/plain", "", "one", "--" + bnd[:80] + "X",
                "Content-Type: text/plain", "", "two", "--" + bnd + "--", "")


@message("same-boundary-nested")
def _():
    return crlf(*std_headers("Same boundary twice"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=same", "", "--same",
                "Content-Type: multipart/alternative; boundary=same", "", "--same",
                "Content-Type: text/plain", "", "a", "--same", "Content-Type: text/html", "",
                "b", "--same--", "--same", "Content-Type: text/plain", "", "c", "--same--", "")


@message("header-cut-by-boundary")
def _():
    return crlf(*std_headers("Header cut by boundary"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=cut", "", "--cut",
                "Content-Type: text/plain", "X-Note: no blank line follows", "--cut",
                "Content-Type: message/rfc822", "--cut",
                "Content-Type: multipart/mixed; boundary=never", "--cut--", "")


@message("many-parts")
def _():
    lines = std_headers("Fifty parts") + ["MIME-Version: 1.0",
                                          "Content-Type: multipart/mixed; boundary=many", ""]
    for i in range(50):
        lines += ["--many", "Content-Type: text/plain; name=\"p%d.txt\"" % i, "", "part %d" % i]
    lines += ["--many--", ""]
    return crlf(*lines)


@message("encoded-filename")
def _():
    return crlf(*std_headers("Encoded filename"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=ef", "", "--ef",
                "Content-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document;",
                " name=\"=?UTF-8?B?w5xiZXJzaWNodC5kb2N4?=\"",
                "Content-Disposition: attachment;",
                " filename=\"=?UTF-8?B?w5xiZXJzaWNodC5kb2N4?=\"",
                "Content-Transfer-Encoding: base64", "", *b64(fake_bytes(90, 13)), "--ef--", "")


@message("attached-eml-named")
def _():
    return crlf(*std_headers("Attached .eml"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=ae", "", "--ae",
                "Content-Type: text/plain", "", "see attachment", "--ae",
                "Content-Type: message/rfc822; name=\"fwd.eml\"",
                "Content-Disposition: attachment; filename=\"fwd.eml\"",
                "Content-Description: Forwarded message", "",
                "Date: Thu, 11 Jan 2024 00:00:00 +0000",
                "From: =?utf-8?q?Z=C3=B6e?= <zoe@example.com>",
                "To: group: one@example.com, two@example.com;",
                "Subject: =?utf-8?b?w6l0w6k=?=", "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=ae2", "", "--ae2",
                "Content-Type: text/plain; charset=utf-8", "", "inner", "--ae2",
                "Content-Type: image/png", "Content-Transfer-Encoding: base64", "",
                *b64(PNG), "--ae2--", "", "--ae--", "")


@message("obsolete-date")
def _():
    return crlf("Date: 12 Jan 24 10:00 EST", "From: a@example.org", "Subject: old date", "",
                "body")


@message("no-date-no-from")
def _():
    return crlf("Subject: lonely", "", "body")


@message("utf8-domain-address")
def _():
    return crlf("From: Jos\u00e9 <jos\u00e9@ma\u00f1ana.example>",
                "To: \u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a", "Subject: SMTPUTF8", "",
                "body")


@message("address-list-commas")
def _():
    return crlf("From: a@example.org", "To: ,, b@example.org, , c@example.org,",
                "Cc: <d@example.org>", "Subject: commas", "", "body")


@message("display-name-escapes")
def _():
    return crlf("From: \"Doe, \\\"JD\\\" John\" <jd@example.org>",
                "To: Mary Smith <@a.example,@b.example:mary@example.net>",
                "Subject: escapes", "", "body")


@message("part-header-continuations")
def _():
    return crlf(*std_headers("Part headers folded"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed;", "\tboundary=\"fold\"", "", "--fold",
                "Content-Type:", " text/plain;", " charset=utf-8",
                "Content-Disposition:", " attachment;", " filename=\"folded.txt\"", "",
                "folded", "--fold--", "")


@message("empty-multipart-body")
def _():
    return crlf(*std_headers("Multipart with nothing"), "MIME-Version: 1.0",
                "Content-Type: multipart/alternative; boundary=nothing", "", "")


@message("boundary-first-line")
def _():
    return crlf(*std_headers("Body starts with boundary"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=fl", "", "--fl", "--fl", "",
                "second", "--fl--")


@message("mime-version-only")
def _():
    return crlf("From: a@example.org", "MIME-Version: 1.0", "Subject: MIME-Version only",
                "Content-Transfer-Encoding: quoted-printable", "", "caf=C3=A9")


@message("disposition-variants")
def _():
    return crlf(*std_headers("Dispositions"), "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=dv", "", "--dv",
                "Content-Type: text/plain", "Content-Disposition: INLINE", "", "a", "--dv",
                "Content-Type: text/plain", "Content-Disposition: ;filename=x.txt", "", "b",
                "--dv", "Content-Type: text/plain", "Content-Disposition: attachment",
                "Content-Disposition: inline; filename=second.txt", "", "c", "--dv--", "")


@message("uppercase-rfc822")
def _():
    return crlf(*std_headers("Upper-case MESSAGE/RFC822"), "MIME-Version: 1.0",
                "Content-Type: multipart/MIXED; boundary=UP", "", "--UP",
                "Content-Type: MESSAGE/RFC822", "", "Subject: inner", "", "inner",
                "--UP--", "")


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: gen.py OUTDIR\n")
        return 2
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for i, (name, fn) in enumerate(MESSAGES, 1):
        with open(os.path.join(out, "%03d-%s.eml" % (i, name)), "wb") as f:
            f.write(fn())
    print("%d messages written to %s" % (len(MESSAGES), out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
