"""IMAP OBJECTID (RFC 8474): MAILBOXID in CREATE's OK, SELECT/EXAMINE's untagged OK and
STATUS, kept across RENAME and server restarts, new for a mailbox deleted and created again
under the same name, unique; EMAILID ("M" and the content address: a COPY or MOVE keeps it,
the same octets stored twice share it, other octets do not) and THREADID (always NIL) as
FETCH items; SEARCH EMAILID and THREADID, with BAD for a malformed object id."""

import itertools
import re

from imap_helpers import Raw as RawClient

PASSWORD = "objectid-Secret-7"
SERVER_CONF = {"store_read_threads": "2"}
_counter = itertools.count(1)
OBJECTID = rb"[A-Za-z0-9_-]{1,255}"


def fresh_user(server):
    addr = "oi%d@example.test" % next(_counter)
    server.add_user(addr, PASSWORD)
    return addr


def msg(subject, body=b"body"):
    return b"From: a@example.test\r\nSubject: %s\r\n\r\n%s\r\n" % (subject, body)


class Raw(RawClient):
    def __init__(self, server, user):
        super().__init__(server, user, PASSWORD)

    def mailboxid(self, box):
        out = b"".join(self.cmd(b"STATUS %s (MAILBOXID MESSAGES)" % box))
        m = re.search(rb"MAILBOXID \((" + OBJECTID + rb")\)\)", out)
        assert m, out
        return m.group(1)

    def emailids(self):
        out = self.cmd(b"FETCH 1:* (UID EMAILID)")
        assert out[-1].startswith(b"OK"), out
        return [re.search(rb"EMAILID \((" + OBJECTID + rb")\)", l).group(1) for l in out[:-1]]


def test_capability(server):
    r = Raw(server, fresh_user(server))
    caps = r.cmd(b"CAPABILITY")[0].split()
    assert b"OBJECTID" in caps, caps
    r.close()


def test_mailboxid_create_select_status_rename_delete(server):
    r = Raw(server, fresh_user(server))
    out = r.cmd(b"CREATE Projects")
    m = re.match(rb"OK \[MAILBOXID \((" + OBJECTID + rb")\)\] CREATE completed", out[-1])
    assert m, out
    mid = m.group(1)
    assert r.mailboxid(b"Projects") == mid
    ls = b"".join(r.cmd(b'LIST "" Projects RETURN (STATUS (MAILBOXID))'))
    assert b"(MAILBOXID (" + mid + b"))" in ls, ls
    sel = b"".join(r.cmd(b"SELECT Projects"))
    assert b"* OK [MAILBOXID (" + mid + b")]" in sel, sel
    ex = b"".join(r.cmd(b"EXAMINE Projects"))
    assert b"* OK [MAILBOXID (" + mid + b")]" in ex, ex
    r.cmd(b"UNSELECT")
    # Kept across a rename ...
    assert r.cmd(b"RENAME Projects Work")[-1].startswith(b"OK")
    assert r.mailboxid(b"Work") == mid
    # ... not given again to a new mailbox of the old name, nor after delete and create.
    assert r.cmd(b"CREATE Projects")[-1].startswith(b"OK")
    assert r.mailboxid(b"Projects") != mid
    assert r.cmd(b"DELETE Work")[-1].startswith(b"OK")
    out = r.cmd(b"CREATE Work")
    assert out[-1].startswith(b"OK [MAILBOXID ("), out
    assert r.mailboxid(b"Work") != mid
    # Unique among the account's mailboxes (and another account's).
    ids = [r.mailboxid(b) for b in (b"INBOX", b"Sent", b"Drafts", b"Trash", b"Work", b"Projects")]
    other = Raw(server, fresh_user(server))
    ids.append(other.mailboxid(b"INBOX"))
    assert len(set(ids)) == len(ids), ids
    # A STATUS of a mailbox that does not exist.
    assert r.cmd(b"STATUS Nowhere (MAILBOXID)")[-1].startswith(b"NO")
    r.close()
    other.close()


def test_ids_survive_a_restart(server):
    user = fresh_user(server)
    r = Raw(server, user)
    assert r.cmd(b"CREATE Keep")[-1].startswith(b"OK")
    assert r.append(b"Keep", msg(b"kept")).startswith(b"OK")
    mid = r.mailboxid(b"Keep")
    r.select(b"Keep")
    eid = r.emailids()
    r.close()
    server.stop()
    server.start()
    r = Raw(server, user)
    assert r.mailboxid(b"Keep") == mid
    r.select(b"Keep")
    assert r.emailids() == eid
    r.close()


def test_emailid_copy_move_and_shared_content(server):
    r = Raw(server, fresh_user(server))
    assert r.append(b"INBOX", msg(b"one")).startswith(b"OK")
    assert r.append(b"INBOX", msg(b"two")).startswith(b"OK")
    assert r.append(b"INBOX", msg(b"one")).startswith(b"OK")  # the same octets again
    r.select()
    ids = r.emailids()
    assert len(ids) == 3
    assert ids[0] != ids[1]
    assert ids[0] == ids[2]  # the store keeps them once: one EMAILID
    assert all(re.fullmatch(rb"M[0-9a-f]{64}", i) for i in ids), ids
    assert r.cmd(b"COPY 2 Archive")[-1].startswith(b"OK")
    assert r.cmd(b"MOVE 1 Trash")[-1].startswith(b"OK")
    r.select(b"Archive")
    assert r.emailids() == [ids[1]]
    r.select(b"Trash")
    assert r.emailids() == [ids[0]]
    out = r.cmd(b"FETCH 1 (THREADID EMAILID)")
    assert re.match(rb"\* 1 FETCH \(THREADID NIL EMAILID \(M[0-9a-f]{64}\)\)\r\n", out[0]), out
    r.close()


def test_search_emailid_and_threadid(server):
    r = Raw(server, fresh_user(server))
    for s in (b"a", b"b", b"a"):
        assert r.append(b"INBOX", msg(s)).startswith(b"OK")
    r.select()
    ids = r.emailids()
    assert r.cmd(b"UID SEARCH EMAILID " + ids[0]) == [b"* SEARCH 1 3\r\n", b"OK UID SEARCH completed"]
    assert r.cmd(b"SEARCH EMAILID " + ids[1])[0] == b"* SEARCH 2\r\n"
    assert r.cmd(b"SEARCH NOT EMAILID " + ids[1])[0] == b"* SEARCH 1 3\r\n"
    assert r.cmd(b"SEARCH OR EMAILID %s EMAILID %s" % (ids[0], ids[1]))[0] == b"* SEARCH 1 2 3\r\n"
    # A well-formed id of nothing here, and THREADID (no thread ids): no match.
    assert r.cmd(b"SEARCH EMAILID M" + b"0" * 64)[0] == b"* SEARCH\r\n"
    assert r.cmd(b"SEARCH EMAILID Mnothing")[0] == b"* SEARCH\r\n"
    assert r.cmd(b"SEARCH THREADID T123")[0] == b"* SEARCH\r\n"
    # Malformed object ids.
    assert r.cmd(b"SEARCH EMAILID bad!id")[-1].startswith(b"BAD")
    assert r.cmd(b"SEARCH EMAILID")[-1].startswith(b"BAD")
    assert r.cmd(b"SEARCH THREADID " + b"x" * 256)[-1].startswith(b"BAD")
    r.close()
