"""INPROGRESS (RFC 9585): a SEARCH, SORT or THREAD that pauses reports how far it got,
`* OK [INPROGRESS ("tag" done total)]`, before its answer; nothing for a quick command.
This server reports at every pause (imap_progress_interval = 0), reads the store off the
loop (store_read_threads) and has no search index (search_index_max_text = 0: BODY would
answer from it at once), so a search over a few MB reads message files and pauses several
times."""

import itertools
import re

from imap_helpers import Raw

SERVER_CONF = {"imap_progress_interval": "0", "store_read_threads": "2",
               "search_index_max_text": "0"}

PASSWORD = "progress-Secret-3"
N = 200
_counter = itertools.count(1)
PROGRESS = re.compile(rb'^\* OK \[INPROGRESS \("([^"]*)" (\d+) (\d+)\)\]')


def filled_user(server):
    user = "prog%d@example.test" % next(_counter)
    server.add_user(user, PASSWORD)
    r = Raw(server, user, PASSWORD)
    parts = []
    for i in range(N):
        body = (b"line of text %d\r\n" % i) * 2000  # ~36 KB each
        if i % 50 == 7:
            body += b"the needle\r\n"
        msg = b"Subject: s%03d\r\nFrom: a%d@x.test\r\n\r\n" % (N - i, i % 7) + body
        parts.append(b" {%d+}\r\n%s" % (len(msg), msg))
    assert r.cmd(b"APPEND INBOX" + b"".join(parts))[-1].startswith(b"OK")
    assert r.cmd(b"SELECT INBOX")[-1].startswith(b"OK")
    return r


def progress_of(lines, tag):
    """The INPROGRESS reports among lines: (done, total) each, all for tag."""
    found = []
    for line in lines:
        m = PROGRESS.match(line)
        if m:
            assert m.group(1) == tag, line
            found.append((int(m.group(2)), int(m.group(3))))
    return found


def test_search_reports_progress(server):
    r = filled_user(server)
    tag = r.tag()
    r.send(tag + b" SEARCH BODY needle\r\n")
    lines, status = r.until(tag)
    assert status.startswith(b"OK"), status
    assert [l for l in lines if l.startswith(b"* SEARCH")] == [b"* SEARCH 8 58 108 158\r\n"]
    found = progress_of(lines, tag)
    assert found, lines[:5]
    assert all(total == N and 0 <= done <= N for done, total in found), found
    assert [d for d, _ in found] == sorted(d for d, _ in found), found
    # The reports come before the answer.
    assert lines.index([l for l in lines if l.startswith(b"* SEARCH")][0]) == len(lines) - 1


def test_sort_reports_progress(server):
    r = filled_user(server)
    tag = r.tag()
    r.send(tag + b" SORT (SUBJECT) UTF-8 BODY needle\r\n")
    lines, status = r.until(tag)
    assert status.startswith(b"OK"), status
    assert lines[-1] == b"* SORT 158 108 58 8\r\n", lines[-1]
    assert progress_of(lines, tag), lines[:5]


def test_quick_commands_report_nothing(server):
    r = filled_user(server)
    out = r.cmd(b"SEARCH UID 1:5")
    assert out[-1].startswith(b"OK") and not progress_of(out[:-1], b"t0"), out
    assert not any(l.startswith(b"* OK [INPROGRESS") for l in r.cmd(b"NOOP"))
