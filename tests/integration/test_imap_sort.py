"""IMAP SORT and THREAD (RFC 5256) through a live server: a real client (imaplib's sort() and
thread()), a mailbox of several hundred messages (many batches of store reads on the
store's reader threads, the path PostgreSQL takes) checked against a sort computed here, a
message larger than a PostgreSQL body chunk whose header alone is read for SORT while a BODY
criterion still reads all of it, and pipelined commands answered in order."""

import imaplib
import itertools
import random
import re

from imap_helpers import Raw, imap_ports, tls_ctx, wait_imap
from conftest import HOST

# Store reads run on the store's reader threads (store_read(), the path PostgreSQL takes).
SERVER_CONF = {"store_read_threads": "2"}

PASSWORD = "sort-Secret-5"
_counter = itertools.count(1)


def fresh_user(server):
    addr = "sort%d@example.test" % next(_counter)
    server.add_user(addr, PASSWORD)
    return addr


def msg(subject, date, frm="a@example.test", extra="", body="body\r\n"):
    return ("From: %s\r\nSubject: %s\r\nDate: %s\r\n%s\r\n%s"
            % (frm, subject, date, extra, body)).encode()


def numbers(lines, prefix):
    line = [l for l in lines if l.startswith(prefix)]
    assert len(line) == 1, lines
    return [int(x) for x in line[0][len(prefix):].split()]


def test_imaplib_sort_and_thread(server):
    user = fresh_user(server)
    c = Raw(server, user, PASSWORD)
    c.append(b"INBOX", msg("Re: beta", "Tue, 2 Jan 2024 10:00:00 +0000",
                           extra="Message-ID: <b@x>\r\nReferences: <a@x>\r\n"))
    c.append(b"INBOX", msg("alpha", "Mon, 1 Jan 2024 10:00:00 +0000", frm="z@example.test",
                           extra="Message-ID: <a@x>\r\n"))
    c.append(b"INBOX", msg("[list] Gamma", "Wed, 3 Jan 2024 10:00:00 +0000",
                           extra="Message-ID: <c@x>\r\nIn-Reply-To: <b@x>\r\n"))
    c.close()
    m = imaplib.IMAP4_SSL(HOST, imap_ports(server)[1], ssl_context=tls_ctx())
    m.login(user, PASSWORD)
    m.select("INBOX")
    assert m.sort("(SUBJECT)", "UTF-8", "ALL") == ("OK", [b"2 1 3"])
    assert m.sort("(REVERSE DATE)", "UTF-8", "ALL") == ("OK", [b"3 1 2"])
    assert m.sort("(FROM SUBJECT)", "US-ASCII", "NOT", "SUBJECT", "alpha") == ("OK", [b"1 3"])
    assert m.uid("SORT", "(REVERSE SUBJECT)", "UTF-8", "ALL") == ("OK", [b"3 1 2"])
    assert m.thread("REFERENCES", "UTF-8", "ALL") == ("OK", [b"(2 1 3)"])
    assert m.thread("ORDEREDSUBJECT", "UTF-8", "ALL") == ("OK", [b"(2)(1)(3)"])
    typ, data = m.sort("(SUBJECT)", "ISO-8859-1", "ALL")
    assert typ == "NO" and b"BADCHARSET" in data[0]
    m.logout()


def test_sort_many_messages(server):
    """Several hundred messages: the result equals a sort computed here (base subject, then
    sequence number), for SORT, UID SORT, REVERSE and ESORT."""
    user = fresh_user(server)
    c = Raw(server, user, PASSWORD)
    rnd = random.Random(11)
    subjects = []
    for i in range(300):
        base = "topic %02d" % rnd.randrange(40)
        prefix = rnd.choice(["", "Re: ", "Fwd: ", "[list] ", "Re: [list] Re: "])
        subjects.append(base)
        assert c.append(b"INBOX", msg(prefix + base, "Mon, 1 Jan 2024 10:%02d:00 +0000"
                                      % (i % 60))).startswith(b"OK")
    c.cmd(b"SELECT INBOX")
    want = sorted(range(1, 301), key=lambda n: (subjects[n - 1].upper(), n))
    out = c.cmd(b"SORT (SUBJECT) UTF-8 ALL")
    assert out[-1].startswith(b"OK"), out
    assert numbers(out, b"* SORT ") == want
    out = c.cmd(b"SORT (REVERSE SUBJECT) UTF-8 ALL")
    assert numbers(out, b"* SORT ") == sorted(range(1, 301),
                                              key=lambda n: (-ord_key(subjects[n - 1]), n))
    out = c.cmd(b"UID SORT (SUBJECT) UTF-8 UID 1:*")
    assert numbers(out, b"* SORT ") == want  # UIDs are the sequence numbers here
    out = c.cmd(b"SORT RETURN (MIN MAX COUNT) (SUBJECT DATE) UTF-8 ALL")
    esearch = [l for l in out if l.startswith(b"* ESEARCH")][0]
    min_, max_ = re.search(rb"MIN (\d+) MAX (\d+) COUNT 300", esearch).groups()
    full = numbers(c.cmd(b"SORT (SUBJECT DATE) UTF-8 ALL"), b"* SORT ")
    assert (int(min_), int(max_)) == (full[0], full[-1])
    out = c.cmd(b"THREAD ORDEREDSUBJECT UTF-8 ALL")
    thread = [l for l in out if l.startswith(b"* THREAD ")][0]
    assert thread.count(b"(") == thread.count(b")")
    assert sorted(int(x) for x in re.findall(rb"\d+", thread)) == list(range(1, 301))
    assert len(re.findall(rb"\(\d+", thread)) >= len(set(subjects))
    c.close()


def ord_key(subject):
    """A number that orders the test's ASCII subjects as their upper-case strings."""
    return int.from_bytes(subject.upper().encode().ljust(16, b"\0"), "big")


def test_sort_large_message_and_pipelining(server):
    """A message larger than a PostgreSQL body chunk (256 KiB): SORT reads its header only
    and still sorts it right; a BODY criterion reads all of it. Pipelined SORT, THREAD and
    NOOP are answered in order."""
    user = fresh_user(server)
    c = Raw(server, user, PASSWORD)
    big = msg("middle", "Tue, 2 Jan 2024 10:00:00 +0000", extra="Message-ID: <big@x>\r\n",
              body="x" * 700000 + "\r\nneedle-at-the-end\r\n")
    c.append(b"INBOX", msg("zulu", "Wed, 3 Jan 2024 10:00:00 +0000",
                           extra="References: <big@x>\r\n"))
    c.append(b"INBOX", big)
    c.append(b"INBOX", msg("alpha", "Mon, 1 Jan 2024 10:00:00 +0000"))
    c.cmd(b"SELECT INBOX")
    assert numbers(c.cmd(b"SORT (SUBJECT) UTF-8 ALL"), b"* SORT ") == [3, 2, 1]
    assert numbers(c.cmd(b"SORT (REVERSE SIZE) UTF-8 ALL"), b"* SORT ")[0] == 2
    assert numbers(c.cmd(b"SORT (DATE) UTF-8 BODY needle-at-the-end"), b"* SORT ") == [2]
    c.send(b"p1 SORT (DATE) UTF-8 ALL\r\np2 THREAD REFERENCES UTF-8 ALL\r\np3 NOOP\r\n")
    lines, status = c.until(b"p3")
    assert status.startswith(b"OK")
    text = b"".join(lines)
    assert b"* SORT 3 2 1\r\np1 OK SORT completed\r\n" in text
    assert b"* THREAD (3)(2 1)\r\np2 OK THREAD completed\r\n" in text
    assert text.index(b"p1 OK") < text.index(b"p2 OK")
    c.close()
