"""IMAP METADATA (RFC 5464): server and mailbox entries, /private and /shared, names
case-insensitive, NIL for a named entry that does not exist, DEPTH 0/1/infinity, MAXSIZE
with [METADATA LONGENTRIES], NIL removing, empty and binary (literal8) values, the limits
([METADATA MAXSIZE], [METADATA TOOMANY], all of a SETMETADATA or nothing), bad entry names,
missing mailboxes, entries following RENAME and gone with DELETE, other accounts seeing
nothing, and entries surviving a restart."""

import itertools
import re

from imap_helpers import Raw as RawClient

# Store reads on the reader threads (the path PostgreSQL takes); small limits to reach.
SERVER_CONF = {"store_read_threads": "2", "limit_metadata_size": "1024",
               "limit_metadata_entries": "10"}

PASSWORD = "meta-Secret-5"
_counter = itertools.count(1)


def fresh_user(server):
    addr = "md%d@example.test" % next(_counter)
    server.add_user(addr, PASSWORD)
    return addr


class Raw(RawClient):
    def __init__(self, server, user):
        super().__init__(server, user, PASSWORD)


def parse_metadata(line):
    """One "* METADATA mailbox (name value ...)" line: (mailbox, [(name, value or None)])."""
    m = re.match(rb'\* METADATA ("(?:[^"\\]|\\.)*"|\S+) \((.*)\)\r\n$', line, re.S)
    assert m, line
    mailbox, rest = m.group(1), m.group(2)
    items = []
    pos = 0
    while pos < len(rest):
        n = re.match(rb' ?("(?:[^"\\]|\\.)*"|[^ ]+) ', rest[pos:])
        assert n, rest[pos:]
        name = n.group(1).strip(b'"')
        pos += n.end()
        if rest.startswith(b"NIL", pos):
            items.append((name, None))
            pos += 3
            continue
        lit = re.match(rb"(~?)\{(\d+)\}\r\n", rest[pos:])
        assert lit, rest[pos:]
        size = int(lit.group(2))
        start = pos + lit.end()
        items.append((name, rest[start:start + size]))
        pos = start + size
    return mailbox, items


def get(r, args):
    """GETMETADATA args: (the METADATA lines parsed, tagged status)."""
    out = r.cmd(b"GETMETADATA " + args)
    return [parse_metadata(l) for l in out[:-1] if l.startswith(b"* METADATA")], out[-1]


def test_capability(server):
    r = Raw(server, fresh_user(server))
    assert b"METADATA" in r.cmd(b"CAPABILITY")[0].split()


def test_server_entries_and_nil(server):
    r = Raw(server, fresh_user(server))
    assert r.cmd(b'SETMETADATA "" (/shared/comment "hello server")')[-1] == \
        b"OK SETMETADATA completed"
    got, status = get(r, b'"" (/shared/comment /private/nothing)')
    assert status == b"OK GETMETADATA completed"
    assert got == [(b'""', [(b"/shared/comment", b"hello server"),
                            (b"/private/nothing", None)])]
    # A single entry without parentheses.
    got, _ = get(r, b'"" /shared/comment')
    assert got == [(b'""', [(b"/shared/comment", b"hello server")])]


def test_mailbox_entries_private_shared_and_case(server):
    r = Raw(server, fresh_user(server))
    assert r.cmd(b'SETMETADATA INBOX (/Private/Comment "mine" /shared/comment "ours")')[-1] \
        == b"OK SETMETADATA completed"
    got, _ = get(r, b"INBOX (/private/comment /SHARED/COMMENT)")
    assert got == [(b'"INBOX"', [(b"/private/comment", b"mine"),
                                 (b"/shared/comment", b"ours")])]
    # The server entries are apart from the mailbox's.
    got, _ = get(r, b'"" (/private/comment)')
    assert got == [(b'""', [(b"/private/comment", None)])]


def test_depth(server):
    r = Raw(server, fresh_user(server))
    assert r.cmd(b'SETMETADATA INBOX (/private/a "1" /private/a/b "2" /private/a/b/c "3"'
                 b' /private/ab "other")')[-1].startswith(b"OK")
    got, _ = get(r, b"(DEPTH 0) INBOX (/private/a)")
    assert got[0][1] == [(b"/private/a", b"1")]
    got, _ = get(r, b"(DEPTH 1) INBOX (/private/a)")
    assert got[0][1] == [(b"/private/a", b"1"), (b"/private/a/b", b"2")]
    got, _ = get(r, b"(DEPTH infinity) INBOX (/private/a)")
    assert got[0][1] == [(b"/private/a", b"1"), (b"/private/a/b", b"2"),
                         (b"/private/a/b/c", b"3")]
    # A parent without a value of its own: NIL, then its children.
    got, _ = get(r, b"(DEPTH infinity) INBOX (/private)")
    assert got[0][1] == [(b"/private", None), (b"/private/a", b"1"), (b"/private/a/b", b"2"),
                         (b"/private/a/b/c", b"3"), (b"/private/ab", b"other")]
    assert r.cmd(b"GETMETADATA (DEPTH 2) INBOX (/private/a)")[-1].startswith(b"BAD")


def test_maxsize_longentries(server):
    r = Raw(server, fresh_user(server))
    assert r.cmd(b'SETMETADATA INBOX (/private/small "abc" /private/big "%s")'
                 % (b"x" * 500))[-1].startswith(b"OK")
    got, status = get(r, b"(MAXSIZE 100) INBOX (/private/small /private/big)")
    assert got[0][1] == [(b"/private/small", b"abc")]
    assert status == b"OK [METADATA LONGENTRIES 500] GETMETADATA completed"
    got, status = get(r, b"(MAXSIZE 500 DEPTH 1) INBOX (/private/big)")
    assert got[0][1] == [(b"/private/big", b"x" * 500)]
    assert status == b"OK GETMETADATA completed"


def test_nil_removes_empty_and_binary_values(server):
    r = Raw(server, fresh_user(server))
    blob = b"a\x00b\xffc"
    assert r.cmd(b"SETMETADATA INBOX (/private/bin ~{%d+}\r\n%s /private/empty \"\")"
                 % (len(blob), blob))[-1] == b"OK SETMETADATA completed"
    out = r.cmd(b"GETMETADATA INBOX (/private/bin /private/empty)")
    assert b"~{%d}\r\n" % len(blob) in out[0], out  # a NUL goes out as literal8
    assert parse_metadata(out[0])[1] == [(b"/private/bin", blob), (b"/private/empty", b"")]
    assert r.cmd(b"SETMETADATA INBOX (/private/bin NIL)")[-1].startswith(b"OK")
    got, _ = get(r, b"INBOX (/private/bin /private/empty)")
    assert got[0][1] == [(b"/private/bin", None), (b"/private/empty", b"")]
    # Removing what does not exist is fine; the last value of a name given twice counts.
    assert r.cmd(b"SETMETADATA INBOX (/private/never NIL)")[-1].startswith(b"OK")
    assert r.cmd(b'SETMETADATA INBOX (/private/twice "1" /private/twice "2")')[-1] \
        .startswith(b"OK")
    assert get(r, b"INBOX /private/twice")[0][0][1] == [(b"/private/twice", b"2")]


def test_limits(server):
    r = Raw(server, fresh_user(server))
    out = r.cmd(b'SETMETADATA INBOX (/private/v "%s")' % (b"y" * 1025))
    assert out[-1].startswith(b"NO [METADATA MAXSIZE 1024]"), out
    assert r.cmd(b'SETMETADATA INBOX (/private/v "%s")' % (b"y" * 1024))[-1].startswith(b"OK")
    # 10 entries per account, server and mailbox entries together.
    names = b" ".join(b'/private/n%d "v"' % i for i in range(8))
    assert r.cmd(b"SETMETADATA INBOX (%s)" % names)[-1].startswith(b"OK")
    assert r.cmd(b'SETMETADATA "" (/private/s "v")')[-1].startswith(b"OK")  # the 10th
    out = r.cmd(b'SETMETADATA Drafts (/private/x "v" /private/y "v")')
    assert out[-1].startswith(b"NO [METADATA TOOMANY]"), out
    # Nothing of the refused command was kept; replacing and removing still work.
    assert get(r, b"Drafts (/private/x)")[0][0][1] == [(b"/private/x", None)]
    assert r.cmd(b'SETMETADATA INBOX (/private/n0 "new" /private/n1 NIL)')[-1].startswith(b"OK")
    assert r.cmd(b'SETMETADATA Drafts (/private/x "v")')[-1].startswith(b"OK")


def test_bad_names_and_syntax(server):
    user = fresh_user(server)
    r = Raw(server, user)
    for name in (b"/comment", b"private/x", b"/private/a*", b"/private/a%", b"/private//a",
                 b"/private/a/", b"/other/a", b"/private"):
        out = r.cmd(b'SETMETADATA INBOX (%s "v")' % name)
        assert out[-1].startswith(b"BAD"), (name, out)
        if name != b"/private":  # a root may be read, not written
            out = r.cmd(b"GETMETADATA INBOX (%s)" % name)
            assert out[-1].startswith(b"BAD"), (name, out)
    r = Raw(server, user)  # a fresh session: limit_errors counts BAD answers
    for cmd in (b"GETMETADATA", b"GETMETADATA INBOX", b"GETMETADATA INBOX ()",
                b"GETMETADATA (FOO 1) INBOX (/private/a)",
                b"GETMETADATA (MAXSIZE x) INBOX /private/a",
                b"SETMETADATA INBOX", b"SETMETADATA INBOX (/private/a)",
                b"SETMETADATA INBOX (/private/a atom)", b"SETMETADATA INBOX ()"):
        assert r.cmd(cmd)[-1].startswith(b"BAD"), cmd
    # The session goes on.
    assert r.cmd(b"NOOP")[-1].startswith(b"OK")


def test_missing_mailbox(server):
    r = Raw(server, fresh_user(server))
    assert r.cmd(b"GETMETADATA nosuch (/private/a)")[-1].startswith(b"NO [NONEXISTENT]")
    assert r.cmd(b'SETMETADATA nosuch (/private/a "v")')[-1].startswith(b"NO [NONEXISTENT]")


def test_rename_delete_and_other_accounts(server):
    user = fresh_user(server)
    r = Raw(server, user)
    assert r.cmd(b"CREATE Project")[-1].startswith(b"OK")
    assert r.cmd(b'SETMETADATA Project (/shared/comment "plans")')[-1].startswith(b"OK")
    assert r.cmd(b"RENAME Project Archive/Project")[-1].startswith(b"OK")
    got, _ = get(r, b"Archive/Project (/shared/comment)")
    assert got == [(b'"Archive/Project"', [(b"/shared/comment", b"plans")])]
    # Another account's mailbox of the same name has none of it.
    other = Raw(server, fresh_user(server))
    assert other.cmd(b"CREATE Archive/Project")[-1].startswith(b"OK")
    assert get(other, b"Archive/Project /shared/comment")[0][0][1] == \
        [(b"/shared/comment", None)]
    # DELETE takes the entries along: a new mailbox of the name starts empty.
    assert r.cmd(b"DELETE Archive/Project")[-1].startswith(b"OK")
    assert r.cmd(b"CREATE Archive/Project")[-1].startswith(b"OK")
    assert get(r, b"Archive/Project /shared/comment")[0][0][1] == [(b"/shared/comment", None)]


def test_entries_survive_restart(server):
    user = fresh_user(server)
    r = Raw(server, user)
    assert r.cmd(b'SETMETADATA INBOX (/private/keep "kept")')[-1].startswith(b"OK")
    assert r.cmd(b'SETMETADATA "" (/private/keep "server kept")')[-1].startswith(b"OK")
    r.close()
    server.stop()
    server.start()
    r = Raw(server, user)
    assert get(r, b"INBOX /private/keep")[0][0][1] == [(b"/private/keep", b"kept")]
    assert get(r, b'"" /private/keep')[0][0][1] == [(b"/private/keep", b"server kept")]
