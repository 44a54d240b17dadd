"""IMAP SEARCH and UID SEARCH (RFC 9051 §6.4.4, RFC 3501): every search key on a small
corpus of varied messages (different From/To/Cc/Bcc/Subject/Date headers, sizes, bodies in
base64, quoted-printable and other charsets, multipart, internal dates set by APPEND, one
delivered by SMTP), flags set with STORE, combinations with OR/NOT/parentheses, sequence and
UID sets, ESEARCH result options (RFC 4731) and IMAP4rev2 answers, CHARSET, BAD syntax, the
saved result "$" (RFC 5182, when SEARCHRES is advertised), no EXPUNGE during SEARCH, and a
mailbox big enough that a body search runs in several slices of the event loop."""

import datetime
import imaplib
import itertools
import re
import smtplib
import socket
import struct
import time

import pytest

import imap_helpers
from imap_helpers import imap_ports, tls_ctx, wait_imap
from conftest import HOST

# Store reads run on the store's reader threads (store_read(), the path PostgreSQL takes):
# every command here answers from the read's completion, not in place.
SERVER_CONF = {"store_read_threads": "2"}

PASSWORD = "search-Secret-7"
_counter = itertools.count(1)


def new_user(server):
    addr = "s%d@example.test" % next(_counter)
    server.add_user(addr, PASSWORD)
    return addr


class Raw(imap_helpers.Raw):
    """imap_helpers.Raw (over implicit TLS) logged in with this module's password."""

    def __init__(self, server, user=None):
        super().__init__(server, user, PASSWORD)


def msg(headers, body):
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


# The corpus: (message, flags, internal date). Sequence numbers 1..5; no. 6 comes by SMTP.
CORPUS = [
    (msg(["From: \"Alice Example\" <alice@example.test>",
          "To: demo@example.test,",
          "\tcarol@example.test",
          "Cc: dave@example.test",
          "Subject: Quarterly report",
          " for Q3",
          "Date: Tue, 1 Jul 2003 10:52:37 +0200",
          "X-Priority: 1 (Highest)"],
         "Hello,\r\nthe numbers are in.\r\n"),
     "(\\Seen)", "01-Jul-2003 12:00:00 +0000"),
    (msg(["From: Bob <bob@remote.test>",
          "To: demo@example.test",
          "Bcc: hidden@example.test",
          "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= from Bob",
          "Date: Mon, 15 Mar 2021 08:00:00 -0700",
          "MIME-Version: 1.0",
          "Content-Type: text/plain; charset=utf-8",
          "Content-Transfer-Encoding: base64"],
         "WmVicmEgY3Jvc3NpbmcgYWhlYWQu\r\n"),  # "Zebra crossing ahead."
     "(\\Flagged \\Answered)", "15-Mar-2021 23:30:00 -0500"),  # 16-Mar-2021 04:30 UTC
    (msg(["From: carol@example.test",
          "To: demo@example.test",
          "Subject: Lunch",
          "Date: Fri, 31 Dec 1999 23:59:59 +0000"],
         "Let us have a sandwich.\r\n" + "filler line for size\r\n" * 250),
     "(\\Deleted \\Draft)", "31-Dec-1999 23:59:59 +0000"),
    (msg(["From: news@lists.example",
          "To: demo@example.test",
          "Subject: Newsletter",
          "Date: 2 Feb 2024 10:00:00 +0100",
          "MIME-Version: 1.0",
          "Content-Type: multipart/mixed; boundary=\"xyz\""],
         "--xyz\r\nContent-Type: text/html; charset=iso-8859-1\r\n"
         "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
         "<p>Caf=E9 opening hours</p>\r\n"
         "--xyz\r\nContent-Type: application/octet-stream\r\n\r\nATTACHEDWORD\r\n"
         "--xyz--\r\n"),
     "($Work)", "02-Feb-2024 09:00:00 +0000"),
    (msg(["From: nodate@example.test",
          "To: demo@example.test",
          "Subject: dateless"],
         "No Date header here.\r\n"),
     "()", "10-Oct-2010 10:10:10 +0000"),
]


@pytest.fixture(scope="module")
def corpus(server):
    """A user with the corpus in INBOX (APPEND, flags and internal dates as given), one
    more message delivered by SMTP, and the RFC822.SIZE of each."""
    user = new_user(server)
    r = Raw(server, user)
    for data, flags, date in CORPUS:
        out = r.cmd(b"APPEND INBOX %s \"%s\" {%d+}\r\n" % (flags.encode(), date.encode(),
                                                           len(data)) + data)
        assert out[-1].startswith(b"OK"), out
    r.close()
    smtp_msg = ("From: smtp@remote.test\r\nTo: %s\r\nSubject: via smtp\r\n\r\n"
                "Delivered by SMTP today.\r\n" % user)
    with smtplib.SMTP(HOST, server.smtp_port, timeout=10, local_hostname="client.test") as s:
        s.sendmail("smtp@remote.test", [user], smtp_msg.encode())
    assert len(server.wait_mail(user, 6)) == 6
    r = Raw(server, user)
    assert r.select() == 6
    out = r.cmd(b"FETCH 1:6 (UID RFC822.SIZE)")
    sizes, uids = {}, {}
    for line in out[:-1]:
        m = re.match(rb"\* (\d+) FETCH \(UID (\d+) RFC822\.SIZE (\d+)\)", line)
        sizes[int(m.group(1))] = int(m.group(3))
        uids[int(m.group(1))] = int(m.group(2))
    r.close()
    return {"user": user, "sizes": sizes, "uids": uids}


@pytest.fixture
def conn(server, corpus):
    r = Raw(server, corpus["user"])
    r.select()
    yield r
    r.close()


def search(r, criteria, uid=False):
    """The numbers of "* SEARCH" for criteria (bytes or str), checking the tagged OK."""
    if isinstance(criteria, str):
        criteria = criteria.encode()
    out = r.cmd((b"UID SEARCH " if uid else b"SEARCH ") + criteria)
    assert out[-1].startswith(b"OK"), out
    lines = [l for l in out[:-1] if l.startswith(b"* SEARCH")]
    assert len(lines) == 1, out
    return [int(x) for x in lines[0].split()[2:]]


def esearch(r, criteria, uid=False):
    """The ESEARCH response line (without "* ESEARCH " and CRLF), or None."""
    if isinstance(criteria, str):
        criteria = criteria.encode()
    tag = b"t%d" % (r.n + 1)
    out = r.cmd((b"UID SEARCH " if uid else b"SEARCH ") + criteria)
    assert out[-1].startswith(b"OK"), out
    lines = [l for l in out[:-1] if l.startswith(b"* ESEARCH")]
    assert len(lines) <= 1 and not any(l.startswith(b"* SEARCH") for l in out), out
    if not lines:
        return None
    line = lines[0].rstrip(b"\r\n")
    prefix = b"* ESEARCH (TAG \"" + tag + b"\")"
    assert line.startswith(prefix), line
    return line[len(prefix):].strip().decode()


def today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def imap_date(d):
    return "%d-%s-%d" % (d.day, d.strftime("%b"), d.year)


# ---------------------------------------------------------------- keys


def test_flag_keys(conn):
    assert search(conn, "ALL") == [1, 2, 3, 4, 5, 6]
    assert search(conn, "SEEN") == [1]
    assert search(conn, "UNSEEN") == [2, 3, 4, 5, 6]
    assert search(conn, "FLAGGED") == [2]
    assert search(conn, "UNFLAGGED") == [1, 3, 4, 5, 6]
    assert search(conn, "ANSWERED") == [2]
    assert search(conn, "UNANSWERED") == [1, 3, 4, 5, 6]
    assert search(conn, "DELETED") == [3]
    assert search(conn, "UNDELETED") == [1, 2, 4, 5, 6]
    assert search(conn, "DRAFT") == [3]
    assert search(conn, "UNDRAFT") == [1, 2, 4, 5, 6]
    assert search(conn, "KEYWORD $Work") == [4]
    assert search(conn, "KEYWORD $work") == [4]
    assert search(conn, "UNKEYWORD $Work") == [1, 2, 3, 5, 6]
    assert search(conn, "KEYWORD $Other") == []
    # IMAP4rev1 keys; this server keeps no \Recent
    assert search(conn, "RECENT") == []
    assert search(conn, "NEW") == []
    assert search(conn, "OLD") == [1, 2, 3, 4, 5, 6]
    assert search(conn, "all seen") == [1]


def test_flags_changed_by_store(server, corpus):
    r = Raw(server, corpus["user"])
    r.select()
    assert r.cmd(b"STORE 5 +FLAGS.SILENT (\\Flagged $Later)")[-1].startswith(b"OK")
    assert search(r, "FLAGGED") == [2, 5]
    assert search(r, "KEYWORD $Later") == [5]
    assert r.cmd(b"STORE 5 -FLAGS.SILENT (\\Flagged $Later)")[-1].startswith(b"OK")
    assert search(r, "FLAGGED") == [2]
    assert search(r, "KEYWORD $Later") == []
    r.close()


def test_header_keys(conn):
    assert search(conn, "FROM alice") == [1]
    assert search(conn, "FROM \"Alice Example\"") == [1]
    assert search(conn, "FROM EXAMPLE.TEST") == [1, 3, 5]
    assert search(conn, "TO carol") == [1]           # on a continuation line
    assert search(conn, "TO demo@example.test") == [1, 2, 3, 4, 5]
    assert search(conn, "CC dave") == [1]
    assert search(conn, "BCC hidden") == [2]
    assert search(conn, "SUBJECT \"report for q3\"") == [1]  # unfolded
    assert search(conn, "SUBJECT lunch") == [3]
    assert search(conn, "SUBJECT \"\"") == [1, 2, 3, 4, 5, 6]
    assert search(conn, "HEADER X-Priority highest") == [1]
    assert search(conn, "HEADER x-priority \"\"") == [1]
    assert search(conn, "HEADER X-Missing \"\"") == []
    assert search(conn, "HEADER Content-Type multipart") == [4]
    assert search(conn, "FROM sandwich") == []       # body words are not headers


def test_encoded_words_and_charset_literal(conn):
    # "Grüße" in the subject is an RFC 2047 word; the search string comes as UTF-8.
    word = "GRÜ".encode()
    conn.send(b"a1 SEARCH CHARSET UTF-8 SUBJECT {%d+}\r\n" % len(word) + word + b"\r\n")
    lines, status = conn.until(b"a1")
    assert status.startswith(b"OK") and lines == [b"* SEARCH 2\r\n"], (lines, status)
    word = "GRÜßE".encode()
    conn.send(b"a2 SEARCH CHARSET UTF-8 SUBJECT {%d}\r\n" % len(word))
    assert conn.line().startswith(b"+")
    conn.send(word + b"\r\n")
    lines, status = conn.until(b"a2")
    assert status.startswith(b"OK") and lines == [b"* SEARCH 2\r\n"], (lines, status)
    # Latin-1 in a quoted-printable HTML part, found with UTF-8
    word = "café".encode()
    conn.send(b"a3 SEARCH BODY {%d+}\r\n" % len(word) + word + b"\r\n")
    lines, status = conn.until(b"a3")
    assert status.startswith(b"OK") and lines == [b"* SEARCH 4\r\n"], (lines, status)


def test_body_and_text(conn):
    assert search(conn, "BODY zebra") == [2]         # base64 decoded
    assert search(conn, "BODY WmVicmE") == []        # not the encoded form
    assert search(conn, "BODY sandwich") == [3]
    assert search(conn, "BODY \"opening hours\"") == [4]
    assert search(conn, "BODY attachedword") == []   # application/octet-stream: skipped
    assert search(conn, "BODY quarterly") == []      # header only
    assert search(conn, "TEXT quarterly") == [1]
    assert search(conn, "TEXT numbers") == [1]
    assert search(conn, "TEXT \"x-priority: 1\"") == [1]
    assert search(conn, "BODY \"by smtp today\"") == [6]
    assert search(conn, "TEXT smtp@remote") == [6]
    assert search(conn, "NOT BODY the") == [2, 3, 4, 5, 6]


def test_dates(conn):
    assert search(conn, "ON 1-Jul-2003") == [1]
    assert search(conn, "ON 16-Mar-2021") == [2]      # the internal date in UTC
    assert search(conn, "ON 15-Mar-2021") == []
    assert search(conn, "BEFORE 1-Jan-2000") == [3]
    assert search(conn, "BEFORE 31-Dec-1999") == []
    assert search(conn, "SINCE 2-Feb-2024") == [4, 6]
    assert search(conn, "SINCE 1-Jan-2010 BEFORE 1-Jan-2011") == [5]
    t = today()
    assert search(conn, "ON %s" % imap_date(t)) == [6]
    assert search(conn, "SINCE %s" % imap_date(t + datetime.timedelta(days=1))) == []
    assert search(conn, "ON \"%s\"" % imap_date(t)) == [6]
    # Date: header, time and zone ignored
    assert search(conn, "SENTON 1-Jul-2003") == [1]
    assert search(conn, "SENTON 15-Mar-2021") == [2]  # as written, though 16 Mar in UTC
    assert search(conn, "SENTON 31-Dec-1999") == [3]
    # no Date: counts as 1 Jan 1970 (as in Dovecot); the SMTP message has one the server
    # or the client added, or none
    assert 5 in search(conn, "SENTBEFORE 1-Jan-1971")
    assert search(conn, "SENTBEFORE 1-Jan-2000 SENTSINCE 2-Jan-1970") == [3]
    assert search(conn, "SENTSINCE 1-Jan-2021 SENTBEFORE 1-Jan-2025") == [2, 4]


def test_sizes(conn, corpus):
    sizes = corpus["sizes"]
    big = max(sizes, key=sizes.get)
    assert big == 3
    n = sizes[3]
    assert search(conn, "LARGER %d" % (n - 1)) == [3]
    assert search(conn, "LARGER %d" % n) == []
    assert search(conn, "SMALLER %d" % (n + 1)) == [1, 2, 3, 4, 5, 6]
    assert search(conn, "SMALLER %d" % n) == [1, 2, 4, 5, 6]
    assert search(conn, "SMALLER %d" % min(sizes.values())) == []


def test_combinations(conn):
    assert search(conn, "OR FROM alice FROM bob") == [1, 2]
    assert search(conn, "OR SEEN FLAGGED") == [1, 2]
    assert search(conn, "NOT SEEN") == [2, 3, 4, 5, 6]
    assert search(conn, "NOT OR SEEN FLAGGED") == [3, 4, 5, 6]
    assert search(conn, "(OR SEEN FLAGGED) (OR ANSWERED FROM alice)") == [1, 2]
    assert search(conn, "OR (SEEN FROM alice) (DELETED BODY sandwich)") == [1, 3]
    assert search(conn, "OR (SEEN FROM bob) (DELETED BODY zebra)") == []
    assert search(conn, "NOT (UNSEEN UNFLAGGED) SUBJECT report") == [1]
    assert search(conn, "OR OR SEEN DELETED KEYWORD $Work") == [1, 3, 4]
    assert search(conn, "((((SEEN))))") == [1]
    assert search(conn, "UNDELETED NOT SUBJECT report TO demo") == [2, 4, 5]


def test_sequence_and_uid_sets(conn, corpus):
    uids = corpus["uids"]
    assert search(conn, "2:3") == [2, 3]
    assert search(conn, "3:2") == [2, 3]
    assert search(conn, "*") == [6]
    assert search(conn, "5:*") == [5, 6]
    assert search(conn, "1,3,5:6 UNSEEN") == [3, 5, 6]
    assert search(conn, "4:100") == [4, 5, 6]
    assert search(conn, "UID %d:%d" % (uids[2], uids[4])) == [2, 3, 4]
    assert search(conn, "UID *") == [6]
    assert search(conn, "UID %d" % (uids[6] + 1000)) == []
    # UID SEARCH answers with UIDs; its plain sets are still sequence numbers
    assert search(conn, "SEEN", uid=True) == [uids[1]]
    assert search(conn, "2:3", uid=True) == [uids[2], uids[3]]
    assert search(conn, "UID %d:*" % uids[5], uid=True) == [uids[5], uids[6]]
    assert search(conn, "ALL", uid=True) == [uids[i] for i in range(1, 7)]


def test_imaplib(server, corpus):
    m = imaplib.IMAP4_SSL(HOST, imap_ports(server)[1], ssl_context=tls_ctx(), timeout=30)
    m.login(corpus["user"], PASSWORD)
    m.select("INBOX", readonly=True)
    typ, data = m.search(None, "OR", "FROM", "alice", "SUBJECT", "lunch")
    assert typ == "OK" and data == [b"1 3"]
    typ, data = m.uid("SEARCH", "FLAGGED")
    assert typ == "OK" and data == [str(corpus["uids"][2]).encode()]
    typ, data = m.search("UTF-8", "BODY", "zebra")
    assert typ == "OK" and data == [b"2"]
    m.logout()


# ---------------------------------------------------------------- ESEARCH


def test_esearch_return_options(conn, corpus):
    uids = corpus["uids"]
    assert esearch(conn, "RETURN (MIN MAX COUNT ALL) UNSEEN") == "MIN 2 MAX 6 COUNT 5 ALL 2:6"
    assert esearch(conn, "RETURN () OR SEEN DELETED") == "ALL 1,3"
    assert esearch(conn, "RETURN (ALL) NOT 4") == "ALL 1:3,5:6"
    assert esearch(conn, "RETURN (COUNT) ALL") == "COUNT 6"
    assert esearch(conn, "RETURN (MIN) UNSEEN") == "MIN 2"
    assert esearch(conn, "RETURN (MAX) SEEN") == "MAX 1"
    assert esearch(conn, "RETURN (max min) FLAGGED") == "MIN 2 MAX 2"
    # nothing found: no MIN, MAX or ALL (RFC 4731 §3.1)
    assert esearch(conn, "RETURN (MIN MAX ALL COUNT) FROM nobody") == "COUNT 0"
    assert esearch(conn, "RETURN (MIN MAX ALL) FROM nobody") == ""
    # UID SEARCH: "UID" and UIDs
    assert esearch(conn, "RETURN (MIN COUNT) FLAGGED", uid=True) == "UID MIN %d COUNT 1" % uids[2]
    assert esearch(conn, "RETURN (ALL) 1:2", uid=True) == "UID ALL %s" % (
        "%d:%d" % (uids[1], uids[2]) if uids[2] == uids[1] + 1 else "%d,%d" % (uids[1], uids[2]))
    assert esearch(conn, "RETURN (COUNT) CHARSET UTF-8 BODY sandwich") == "COUNT 1"


def test_rev2_answers_with_esearch(server, corpus):
    r = Raw(server, corpus["user"])
    out = r.cmd(b"ENABLE IMAP4rev2")
    assert out[0] == b"* ENABLED IMAP4rev2\r\n", out
    r.select()
    assert esearch(r, "UNSEEN") == "ALL 2:6"
    assert esearch(r, "FROM nobody") == ""
    assert esearch(r, "SEEN", uid=True) == "UID ALL %d" % corpus["uids"][1]
    assert esearch(r, "RETURN (COUNT) ALL") == "COUNT 6"
    r.close()


# ---------------------------------------------------------------- CHARSET and errors


def test_charset(conn):
    assert search(conn, "CHARSET UTF-8 FROM alice") == [1]
    assert search(conn, "CHARSET us-ascii FROM alice") == [1]
    assert search(conn, "CHARSET \"utf-8\" FROM alice") == [1]
    out = conn.cmd(b"SEARCH CHARSET ISO-8859-1 FROM alice")
    assert out == [b"NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset"], out
    out = conn.cmd(b"SEARCH RETURN (COUNT) CHARSET KOI8-R ALL")
    assert out[-1].startswith(b"NO [BADCHARSET (UTF-8 US-ASCII)]"), out
    assert len(out) == 1


@pytest.mark.parametrize("criteria", [
    b"", b"FOO", b"BEFORE 1-Foo-2000", b"BEFORE 2000-01-01", b"LARGER x", b"SUBJECT",
    b"HEADER X-Only", b"OR SEEN", b"NOT", b"()", b"UID", b"UID abc", b"0", b"1:x",
    b"RETURN (BOGUS) ALL", b"RETURN ALL", b"CHARSET", b"KEYWORD \"quoted\"",
    b"(SEEN", b"SEEN)", b"RETURN (COUNT)",
])
def test_bad_syntax(server, corpus, criteria):
    r = Raw(server, corpus["user"])
    r.select()
    out = r.cmd(b"SEARCH " + criteria)
    assert out[-1].startswith(b"BAD"), (criteria, out)
    assert len(out) == 1, out
    # the session goes on
    assert search(r, "SEEN") == [1]
    r.close()


def test_search_needs_selected_mailbox(server, corpus):
    r = Raw(server, corpus["user"])
    out = r.cmd(b"SEARCH ALL")
    assert out[-1].startswith(b"BAD"), out
    out = r.cmd(b"UID SEARCH ALL")
    assert out[-1].startswith(b"BAD"), out
    r.close()


def test_examine_read_only_search(server, corpus):
    r = Raw(server, corpus["user"])
    out = r.cmd(b"EXAMINE INBOX")
    assert out[-1].startswith(b"OK [READ-ONLY]"), out
    assert search(r, "BODY zebra") == [2]
    # searching never sets \Seen
    assert search(r, "SEEN") == [1]
    r.close()


# ---------------------------------------------------------------- "$" (RFC 5182)


def searchres(r):
    caps = r.cmd(b"CAPABILITY")[0]
    if b"SEARCHRES" not in caps.split():
        pytest.skip("SEARCHRES not advertised yet")


def test_saved_result(server, corpus):
    uids = corpus["uids"]
    r = Raw(server, corpus["user"])
    searchres(r)
    r.select()
    # SAVE alone: no untagged response
    out = r.cmd(b"SEARCH RETURN (SAVE) OR FROM alice FROM bob")
    assert len(out) == 1 and out[0].startswith(b"OK"), out
    assert search(r, "$") == [1, 2]
    assert search(r, "UID $") == [1, 2]
    assert search(r, "NOT $") == [3, 4, 5, 6]
    assert search(r, "$", uid=True) == [uids[1], uids[2]]
    out = r.cmd(b"FETCH $ (UID)")
    assert out[:-1] == [
        b"* 1 FETCH (UID %d)\r\n" % uids[1], b"* 2 FETCH (UID %d)\r\n" % uids[2]], out
    out = r.cmd(b"UID FETCH $ (FLAGS)")
    assert len([l for l in out if l.startswith(b"* ") and b" FETCH " in l]) == 2, out
    # SAVE with MIN/MAX keeps just those; with COUNT everything
    assert esearch(r, "RETURN (SAVE MIN MAX) UNSEEN") == "MIN 2 MAX 6"
    assert search(r, "$") == [2, 6]
    assert esearch(r, "RETURN (SAVE MIN) UNSEEN") == "MIN 2"
    assert search(r, "$") == [2]
    assert esearch(r, "RETURN (SAVE COUNT MIN) UNSEEN") == "MIN 2 COUNT 5"
    assert search(r, "$") == [2, 3, 4, 5, 6]
    # a search may use the previous result while it saves a new one
    assert esearch(r, "RETURN (SAVE ALL) $ FLAGGED") == "ALL 2"
    assert search(r, "$") == [2]
    # a failed SEARCH with SAVE empties it
    out = r.cmd(b"SEARCH RETURN (SAVE) BOGUS")
    assert out[-1].startswith(b"BAD"), out
    assert search(r, "$") == []
    assert esearch(r, "RETURN (SAVE) SEEN") is None
    out = r.cmd(b"SEARCH RETURN (SAVE) CHARSET X-UNKNOWN ALL")
    assert out[-1].startswith(b"NO [BADCHARSET"), out
    assert search(r, "$") == []
    # SELECT forgets it
    assert esearch(r, "RETURN (SAVE) SEEN") is None
    assert search(r, "$") == [1]
    r.select()
    assert search(r, "$") == []
    r.close()


# ---------------------------------------------------------------- live updates


def test_no_expunge_during_search(server):
    user = new_user(server)
    r = Raw(server, user)
    for i in range(3):
        data = msg(["From: x@example.test", "Subject: expunge test %d" % (i + 1)], "body\r\n")
        assert r.cmd(b"APPEND INBOX {%d+}\r\n" % len(data) + data)[-1].startswith(b"OK")
    assert r.select() == 3
    other = Raw(server, user)
    other.select()
    assert other.cmd(b"STORE 2 +FLAGS.SILENT (\\Deleted)")[-1].startswith(b"OK")
    assert other.cmd(b"EXPUNGE")[-1].startswith(b"OK")
    data = msg(["From: y@example.test", "Subject: expunge test 4"], "body\r\n")
    assert other.cmd(b"APPEND INBOX {%d+}\r\n" % len(data) + data)[-1].startswith(b"OK")
    # SEARCH: new mail is announced, the expunge is not (RFC 9051 §7.5.1); the expunged
    # message keeps its number and is searched as empty
    out = r.cmd(b"SEARCH SUBJECT expunge")
    assert b"* 4 EXISTS\r\n" in out, out
    assert not any(b"EXPUNGE" in l for l in out), out
    assert b"* SEARCH 1 3 4\r\n" in out, out
    assert out.index(b"* 4 EXISTS\r\n") < out.index(b"* SEARCH 1 3 4\r\n")
    out = r.cmd(b"SEARCH ALL")
    assert not any(b"EXPUNGE" in l for l in out) and b"* SEARCH 1 2 3 4\r\n" in out, out
    # UID SEARCH may send it; then the numbers move
    out = r.cmd(b"UID SEARCH ALL")
    assert b"* 2 EXPUNGE\r\n" in out, out
    out = r.cmd(b"SEARCH ALL")
    assert b"* SEARCH 1 2 3\r\n" in out, out
    r.close()
    other.close()


def test_big_mailbox_search_in_slices(server):
    """Enough messages that a body search reads files for longer than one slice: the
    answer is complete and ordered, and a pipelined command after it is answered after
    it. Another session is served meanwhile."""
    user = new_user(server)
    r = Raw(server, user)
    n = 1500
    filler = "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n" * 40
    parts = []
    for i in range(1, n + 1):
        word = "needle%d" % i if i % 7 == 0 else "hay"
        data = msg(["From: bulk@example.test", "Subject: bulk %d" % i],
                   filler + word + "\r\n")
        parts.append(b"{%d+}\r\n" % len(data) + data)
    for k in range(0, n, 500):  # MULTIAPPEND, 500 messages per command
        r.send(b"a%d APPEND INBOX " % k + b" ".join(parts[k:k + 500]) + b"\r\n")
        _, status = r.until(b"a%d" % k)
        assert status.startswith(b"OK"), status
    assert r.select() == n
    expect = [i for i in range(1, n + 1) if i % 7 == 0]
    # pipelined: the SEARCH, then a NOOP; the answers come in that order
    r.send(b"p1 SEARCH BODY needle\r\np2 NOOP\r\n")
    lines, status = r.until(b"p1")
    assert status.startswith(b"OK"), status
    hits = [l for l in lines if l.startswith(b"* SEARCH")]
    assert [int(x) for x in hits[0].split()[2:]] == expect
    _, status = r.until(b"p2")
    assert status.startswith(b"OK")
    # another session gets answers while a long search runs
    r.send(b"q1 SEARCH OR BODY absent TEXT \"bulk 1499\"\r\n")
    other = Raw(server, user)
    t0 = time.monotonic()
    assert other.cmd(b"NOOP")[-1].startswith(b"OK")
    noop_time = time.monotonic() - t0
    lines, status = r.until(b"q1")
    assert status.startswith(b"OK") and lines == [b"* SEARCH 1499\r\n"], (lines, status)
    assert noop_time < 5, noop_time
    # header keys read only the header section
    assert esearch(r, "RETURN (COUNT) SUBJECT \"bulk 1\"") == "COUNT %d" % len(
        [i for i in range(1, n + 1) if str(i).startswith("1")])
    assert esearch(r, "RETURN (MIN MAX COUNT) BODY needle") == "MIN 7 MAX %d COUNT %d" % (
        expect[-1], len(expect))
    other.close()
    r.close()


def test_reads_off_the_loop_batched_in_order(server):
    """This module's reads run on the store's reader threads (SERVER_CONF): FETCH and SEARCH
    open messages by batches of one read each (32 messages). Messages that match without
    their file (\\Seen) are found while a batch is read ahead, yet the answer stays in
    ascending order; FETCH answers every message of 75 (three batches) with its own
    ENVELOPE and text."""
    user = new_user(server)
    r = Raw(server, user)
    n = 75
    parts = []
    for i in range(1, n + 1):
        body = "message %d %s\r\n" % (i, "needle" if i % 3 == 0 else "hay")
        data = msg(["From: a@example.test", "To: %s" % user, "Subject: m%d" % i], body)
        flags = b"(\\Seen)" if i % 5 == 0 else b"()"
        parts.append(flags + b" {%d+}\r\n" % len(data) + data)
    r.send(b"a1 APPEND INBOX " + b" ".join(parts) + b"\r\n")
    _, status = r.until(b"a1")
    assert status.startswith(b"OK"), status
    assert r.select() == n
    expect = [i for i in range(1, n + 1) if i % 3 == 0 or i % 5 == 0]
    assert search(r, "OR SEEN BODY needle") == expect
    assert search(r, "OR BODY needle SEEN") == expect
    out = r.cmd(b"FETCH 1:* (ENVELOPE BODY.PEEK[TEXT] BODY.PEEK[TEXT]<8.3>)")
    assert out[-1].startswith(b"OK"), out[-1]
    assert len(out) == n + 1
    for i, line in enumerate(out[:-1], start=1):
        assert line.startswith(b"* %d FETCH (" % i), line[:40]
        assert b'"m%d"' % i in line, line[:200]
        assert b"message %d " % i in line
        text = b"message %d %s\r\n" % (i, b"needle" if i % 3 == 0 else b"hay")
        assert b"BODY[TEXT]<8> {3}\r\n" + text[8:11] + b")" in line, line[-80:]
    r.close()


def test_pipelined_commands_wait_for_reads(server):
    """Commands sent in one packet on the queued path answer in order, each after the
    previous one's reads: SELECT, FETCH, STATUS, LIST, LIST-STATUS, SEARCH, NOOP,
    EXAMINE (a command running before SELECT's answer would be refused as BAD)."""
    user = new_user(server)
    r = Raw(server, user)
    for i in range(3):
        data = msg(["Subject: p%d" % i], "pipelined %d\r\n" % i)
        assert r.cmd(b"APPEND INBOX {%d+}\r\n" % len(data) + data)[-1].startswith(b"OK")
    cmds = [b"SELECT INBOX", b"FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
            b"STATUS INBOX (MESSAGES UNSEEN)", b"LIST \"\" *",
            b"LIST \"\" \"*\" RETURN (STATUS (MESSAGES))", b"SEARCH BODY pipelined",
            b"NOOP", b"EXAMINE INBOX", b"FETCH 3 (FLAGS)", b"SUBSCRIBE INBOX"]
    r.send(b"".join(b"p%d %s\r\n" % (k, c) for k, c in enumerate(cmds)))
    answers = []
    for k in range(len(cmds)):
        lines, status = r.until(b"p%d" % k)
        assert status.startswith(b"OK"), (cmds[k], status)
        answers.append(lines)
    assert b"* 3 EXISTS\r\n" in answers[0]
    assert len([l for l in answers[1] if b" FETCH " in l]) == 3
    assert answers[2] == [b"* STATUS \"INBOX\" (MESSAGES 3 UNSEEN 3)\r\n"]
    assert b"* STATUS \"INBOX\" (MESSAGES 3)\r\n" in answers[4]
    assert answers[5] == [b"* SEARCH 1 2 3\r\n"]
    r.close()


def test_connections_closed_during_reads(server):
    """Clients that vanish with reads queued or running (SELECT, FETCH, SEARCH, STATUS, LIST,
    APPEND's checks): the server frees every session (ASan checks at the module's end) and
    keeps serving."""
    user = new_user(server)
    r = Raw(server, user)
    for i in range(40):
        data = msg(["Subject: c%d" % i], "closing %d\r\n" % i)
        assert r.cmd(b"APPEND INBOX {%d+}\r\n" % len(data) + data)[-1].startswith(b"OK")
    r.close()
    bursts = [b"x SELECT INBOX\r\ny FETCH 1:* (BODY[] ENVELOPE)\r\n",
              b"x EXAMINE INBOX\r\ny SEARCH TEXT closing\r\nz NOOP\r\n",
              b"x STATUS INBOX (MESSAGES)\r\ny LIST \"\" * RETURN (STATUS (SIZE))\r\n",
              b"x APPEND INBOX {5}\r\n", b"x SELECT INBOX\r\ny IDLE\r\n"]
    for k in range(30):
        c = Raw(server, user)
        c.send(bursts[k % len(bursts)])
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    r = Raw(server, user)
    assert r.select() == 40
    assert search(r, "TEXT closing") == list(range(1, 41))
    r.close()
