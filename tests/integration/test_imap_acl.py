"""IMAP ACL (RFC 4314) and shared folders through a live server, one server for the module:
capabilities and NAMESPACE, an owner granting rights on a folder that the grantee then sees in
LIST (under "Shared/owner/", with RETURN (MYRIGHTS), RFC 8440), SELECTs and reads; SETACL with
+/- and DELETEACL, GETACL, LISTRIGHTS, MYRIGHTS; every right denied with [NOPERM] when it is
missing and allowed once granted; no existence leak (a grantee without l is answered exactly as
for a mailbox that does not exist); @domain and anyone identifiers; changes reaching both sides
live (IDLE); APPEND and COPY into a shared folder counting against the owner's quota; RENAME and
DELETE taking the rights along; and `posthorn share grant|revoke|list`."""

import itertools
import re
import select

from imap_helpers import Raw as RawClient

PASSWORD = "acl-Secret-7"
_counter = itertools.count(1)
MSG = b"From: a@example.test\r\nSubject: shared hello\r\n\r\nbody of the shared message\r\n"


def fresh_user(server, domain="example.test"):
    addr = "acl%d@%s" % (next(_counter), domain)
    server.add_user(addr, PASSWORD)
    return addr


class Raw(RawClient):
    def __init__(self, server, user):
        super().__init__(server, user, PASSWORD)


def owner_with_team(server, rights=None, grantee=None):
    """A fresh owner with "Team" holding one message; rights granted to grantee (SETACL)."""
    owner = fresh_user(server)
    o = Raw(server, owner)
    assert o.cmd(b"CREATE Team")[-1].startswith(b"OK")
    assert o.append(b"Team", MSG).startswith(b"OK")
    if rights is not None:
        assert o.cmd(b'SETACL Team %s "%s"' % (grantee.encode(), rights.encode()))[-1] == \
            b"OK SETACL completed"
    return owner, o


def shared(owner, box="Team"):
    return b'"Shared/%s/%s"' % (owner.encode(), box.encode())


def test_capability_and_namespace(server):
    r = Raw(server, fresh_user(server))
    caps = r.cmd(b"CAPABILITY")[0].split()
    for c in (b"ACL", b"RIGHTS=texk", b"LIST-MYRIGHTS"):
        assert c in caps
    assert r.cmd(b"NAMESPACE")[0] == b'* NAMESPACE (("" "/")) (("Shared/" "/")) NIL\r\n'


def test_grant_list_select_read(server):
    grantee = fresh_user(server)
    owner, o = owner_with_team(server, "lr", grantee)
    g = Raw(server, grantee)
    out = g.cmd(b'LIST "" "Shared/*"')
    assert out[-1] == b"OK LIST completed"
    assert out[:-1] == [
        b'* LIST (\\Noselect \\HasChildren) "/" "Shared/%s"\r\n' % owner.encode(),
        b'* LIST (\\HasNoChildren) "/" %s\r\n' % shared(owner)]  # not the owner's INBOX
    assert b'* LIST (\\Noselect \\HasChildren) "/" "Shared"\r\n' in g.cmd(b'LIST "" "%"')
    # LIST-MYRIGHTS (RFC 8440) for shared and own mailboxes.
    out = g.cmd(b'LIST "" ("Shared/*" "INBOX") RETURN (MYRIGHTS)')
    assert b'* MYRIGHTS %s "lr"\r\n' % shared(owner) in out
    assert b'* MYRIGHTS "INBOX" "lrswipkxtea"\r\n' in out
    assert g.cmd(b"MYRIGHTS " + shared(owner))[0] == b'* MYRIGHTS %s "lr"\r\n' % shared(owner)
    # l and r only: SELECT is read-only, reading works, \Seen is not set (no s).
    out = g.cmd(b"SELECT " + shared(owner))
    assert out[-1].startswith(b"OK [READ-ONLY]"), out
    assert b"* 1 EXISTS\r\n" in out
    out = g.cmd(b"FETCH 1 (BODY[TEXT])")
    assert b"body of the shared message" in out[0]
    assert b"\\Seen" not in g.cmd(b"FETCH 1 FLAGS")[0]
    assert g.cmd(b"SEARCH SUBJECT shared")[0] == b"* SEARCH 1\r\n"
    out = g.cmd(b"STATUS %s (MESSAGES)" % shared(owner))
    assert out[0] == b"* STATUS %s (MESSAGES 1)\r\n" % shared(owner)
    # The owner's view: GETACL, LISTRIGHTS.
    out = o.cmd(b"GETACL Team")
    assert out[0] == b'* ACL "Team" "%s" "lrswipkxtea" "%s" "lr"\r\n' % (
        owner.encode(), grantee.encode())
    out = o.cmd(b"LISTRIGHTS Team " + grantee.encode())
    assert out[0] == b'* LISTRIGHTS "Team" "%s" "" l r s w i p k x t e a\r\n' % grantee.encode()
    out = o.cmd(b"LISTRIGHTS Team " + owner.encode())
    assert out[0] == b'* LISTRIGHTS "Team" "%s" "lrswipkxtea"\r\n' % owner.encode()


def test_setacl_modifiers_and_deleteacl(server):
    grantee = fresh_user(server)
    owner, o = owner_with_team(server, "lr", grantee)
    g = Raw(server, grantee)
    assert o.cmd(b'SETACL Team %s "+si"' % grantee.encode())[-1] == b"OK SETACL completed"
    assert o.cmd(b'SETACL Team %s "-r"' % grantee.encode())[-1] == b"OK SETACL completed"
    assert g.cmd(b"MYRIGHTS " + shared(owner))[0].endswith(b' "lsi"\r\n')
    # Obsolete c and d (RFC 4314 §2.1.1), case of the identifier.
    assert o.cmd(b'SETACL Team %s "+cd"' % grantee.upper().encode())[-1] == \
        b"OK SETACL completed"
    assert g.cmd(b"MYRIGHTS " + shared(owner))[0].endswith(b' "lsikxte"\r\n')
    assert o.cmd(b'SETACL Team %s "lz"' % grantee.encode())[-1].startswith(b"BAD")
    assert o.cmd(b'SETACL Team %s "l"' % owner.encode())[-1].startswith(b"NO [CANNOT]")
    assert o.cmd(b'SETACL Team nobody "l"')[-1].startswith(b"NO [CANNOT]")
    assert o.cmd(b'SETACL Nosuch %s "l"' % grantee.encode())[-1].startswith(b"NO [NONEXISTENT]")
    assert o.cmd(b"DELETEACL Team " + grantee.encode())[-1] == b"OK DELETEACL completed"
    assert o.cmd(b"GETACL Team")[0] == b'* ACL "Team" "%s" "lrswipkxtea"\r\n' % owner.encode()
    assert g.cmd(b"MYRIGHTS " + shared(owner))[-1].startswith(b"NO [NONEXISTENT]")


def test_no_existence_leak(server):
    grantee = fresh_user(server)
    stranger = fresh_user(server)
    owner, o = owner_with_team(server, "r", grantee)  # r without l: nothing to learn either
    for who in (grantee, stranger):
        c = Raw(server, who)
        real, missing = shared(owner), shared(owner, "Nosuch")
        nobody = b'"Shared/nobody@example.test/Team"'
        for cmd in (b"SELECT %s", b"EXAMINE %s", b"MYRIGHTS %s", b"GETACL %s",
                    b"STATUS %s (MESSAGES)", b"DELETE %s", b"SUBSCRIBE %s",
                    b'SETACL %s anyone "l"', b"LISTRIGHTS %s anyone"):
            answers = {c.cmd(cmd % box)[-1] for box in (real, missing, nobody)}
            assert len(answers) == 1, (cmd, answers)
            assert answers.pop().startswith(b"NO [NONEXISTENT]"), cmd
        answers = {c.append(box, MSG) for box in (real, missing)}
        assert answers == {b"NO [TRYCREATE] The mailbox does not exist"}
        assert c.cmd(b'LIST "" "Shared/*"') == [b"OK LIST completed"]


def test_each_right_denied_then_granted(server):
    grantee = fresh_user(server)
    owner, o = owner_with_team(server, "l", grantee)
    g = Raw(server, grantee)
    box = shared(owner)
    grant = lambda r: o.cmd(b'SETACL Team %s "+%s"' % (grantee.encode(), r.encode()))
    # r: SELECT, EXAMINE, STATUS.
    assert g.cmd(b"SELECT " + box)[-1] == b"NO [NOPERM] Permission denied (right r needed)"
    assert g.cmd(b"STATUS %s (MESSAGES)" % box)[-1].startswith(b"NO [NOPERM]")
    # a: GETACL, SETACL, DELETEACL, LISTRIGHTS.
    for cmd in (b"GETACL %s", b'SETACL %s anyone "l"', b"DELETEACL %s anyone",
                b"LISTRIGHTS %s anyone"):
        assert g.cmd(cmd % box)[-1] == b"NO [NOPERM] Permission denied (right a needed)", cmd
    # i: APPEND and COPY into it.
    assert g.append(box, MSG) == b"NO [NOPERM] Permission denied (right i needed)"
    assert g.append(b"INBOX", MSG).startswith(b"OK")
    g.cmd(b"SELECT INBOX")
    assert g.cmd(b"COPY 1 " + box)[-1] == b"NO [NOPERM] Permission denied (right i needed)"
    # k and x: CREATE below it, DELETE it.
    assert g.cmd(b'CREATE "Shared/%s/Team/Sub"' % owner.encode())[-1] == \
        b"NO [NOPERM] Permission denied (right k needed)"
    assert g.cmd(b"DELETE " + box)[-1] == b"NO [NOPERM] Permission denied (right x needed)"
    grant("r")
    out = g.cmd(b"SELECT " + box)
    assert out[-1].startswith(b"OK [READ-ONLY]"), out
    # s, w, t in a read-write session: each flag needs its right.
    grant("i")
    out = g.cmd(b"SELECT " + box)
    assert out[-1].startswith(b"OK [READ-WRITE]"), out
    assert g.cmd(b"STORE 1 +FLAGS (\\Seen)")[-1] == \
        b"NO [NOPERM] Permission denied (right s needed)"
    assert g.cmd(b"STORE 1 +FLAGS ($Work)")[-1] == \
        b"NO [NOPERM] Permission denied (right w needed)"
    assert g.cmd(b"STORE 1 +FLAGS (\\Deleted)")[-1] == \
        b"NO [NOPERM] Permission denied (right t needed)"
    assert g.cmd(b"EXPUNGE")[-1] == b"NO [NOPERM] Permission denied (right e needed)"
    assert g.cmd(b"FETCH 1 BODY[]")[-1].startswith(b"OK")
    assert b"\\Seen" not in g.cmd(b"FETCH 1 FLAGS")[0]  # no s: reading leaves it unseen
    grant("swte")
    g.cmd(b"SELECT " + box)
    assert g.cmd(b"STORE 1 +FLAGS (\\Seen $Work \\Deleted)")[-1].startswith(b"OK")
    assert g.cmd(b"EXPUNGE")[-2:] == [b"* 1 EXPUNGE\r\n", b"OK EXPUNGE completed"]
    # i granted: APPEND and COPY work, with APPENDUID/COPYUID.
    assert g.append(box, MSG).startswith(b"OK [APPENDUID")
    g.cmd(b"SELECT INBOX")
    assert g.cmd(b"COPY 1 " + box)[-1].startswith(b"OK [COPYUID")
    assert o.cmd(b"STATUS Team (MESSAGES)")[0] == b'* STATUS "Team" (MESSAGES 2)\r\n'
    # k, x, a.
    grant("kxa")
    assert g.cmd(b'CREATE "Shared/%s/Team/Sub"' % owner.encode())[-1].startswith(b"OK")
    assert o.cmd(b'LIST "" "Team/*"')[0] == b'* LIST (\\HasNoChildren) "/" "Team/Sub"\r\n'
    assert g.cmd(b'SETACL %s anyone "l"' % box)[-1] == b"OK SETACL completed"
    assert g.cmd(b"GETACL " + box)[0].startswith(b'* ACL %s "%s"' % (box, owner.encode()))
    assert g.cmd(b"DELETE " + box)[-1] == b"OK DELETE completed"
    assert o.cmd(b"STATUS Team (MESSAGES)")[-1].startswith(b"NO [NONEXISTENT]")


def test_domain_and_anyone(server):
    owner, o = owner_with_team(server)
    same, other = fresh_user(server), fresh_user(server, "other.test")
    assert o.cmd(b'SETACL Team @example.test "lr"')[-1] == b"OK SETACL completed"
    s, x = Raw(server, same), Raw(server, other)
    assert s.cmd(b"MYRIGHTS " + shared(owner))[0].endswith(b' "lr"\r\n')
    assert x.cmd(b"MYRIGHTS " + shared(owner))[-1].startswith(b"NO [NONEXISTENT]")
    assert o.cmd(b'SETACL Team anyone "l"')[-1] == b"OK SETACL completed"
    assert x.cmd(b"MYRIGHTS " + shared(owner))[0].endswith(b' "l"\r\n')
    assert s.cmd(b"MYRIGHTS " + shared(owner))[0].endswith(b' "lr"\r\n')


def idle_wait(c, want, timeout=5):
    """Lines from an IDLE session until one ends with want."""
    c.sock.settimeout(timeout)
    while True:
        line = c.line()
        if line.rstrip(b"\r\n").endswith(want):
            return line


def test_live_both_sides_and_quota(server):
    grantee = fresh_user(server)
    owner, o = owner_with_team(server, "lrswi", grantee)
    server.cli("user", "quota", owner, "10M")
    g = Raw(server, grantee)
    box = shared(owner)
    used = lambda: int(re.search(rb"STORAGE (\d+)", o.cmd(b"GETQUOTAROOT INBOX")[1]).group(1))
    before = used()
    # The owner idles on Team; the grantee appends into it.
    o.select(b"Team")
    o.send(b"i1 IDLE\r\n")
    assert o.line().startswith(b"+")
    assert g.append(box, MSG + b"x" * 5000 + b"\r\n").startswith(b"OK")
    assert idle_wait(o, b"EXISTS") == b"* 2 EXISTS\r\n"
    o.send(b"DONE\r\n")
    o.until(b"i1")
    # The grantee's APPEND counts against the owner's quota (RFC 9208: the owner's root).
    assert used() > before
    # The grantee idles on it; the owner flags and appends.
    g.cmd(b"SELECT " + box)
    g.send(b"i2 IDLE\r\n")
    assert g.line().startswith(b"+")
    o.cmd(b"STORE 1 +FLAGS (\\Flagged)")
    assert b"\\Flagged" in idle_wait(g, b")")
    assert o.append(b"Team", MSG).startswith(b"OK")
    assert idle_wait(g, b"EXISTS") == b"* 3 EXISTS\r\n"
    g.send(b"DONE\r\n")
    g.until(b"i2")


def test_rename_and_delete_take_the_rights(server):
    grantee = fresh_user(server)
    owner, o = owner_with_team(server, "lr", grantee)
    g = Raw(server, grantee)
    assert o.cmd(b"RENAME Team Group")[-1].startswith(b"OK")
    assert g.cmd(b"MYRIGHTS " + shared(owner, "Group"))[0].endswith(b' "lr"\r\n')
    assert g.cmd(b"MYRIGHTS " + shared(owner))[-1].startswith(b"NO [NONEXISTENT]")
    assert g.cmd(b'RENAME %s Mine' % shared(owner, "Group"))[-1].startswith(b"NO [CANNOT]")
    assert o.cmd(b"DELETE Group")[-1].startswith(b"OK")
    assert o.cmd(b"CREATE Group")[-1].startswith(b"OK")
    assert g.cmd(b"MYRIGHTS " + shared(owner, "Group"))[-1].startswith(b"NO [NONEXISTENT]")
    # "Shared" is the namespace, not a personal folder.
    assert o.cmd(b"CREATE Shared")[-1].startswith(b"NO [NOPERM]")


def test_share_cli(server):
    grantee = fresh_user(server)
    owner, o = owner_with_team(server)
    server.cli("share", "grant", owner, "Team", grantee, "lrs")
    g = Raw(server, grantee)
    assert g.cmd(b"MYRIGHTS " + shared(owner))[0].endswith(b' "lrs"\r\n')
    server.cli("share", "grant", owner, "Team", "@other.test", "+l")
    out = server.cli("share", "list", owner).stdout
    assert "Team\t%s\tlrs\n" % grantee in out
    assert "Team\t@other.test\tl\n" in out
    server.cli("share", "revoke", owner, "Team", grantee)
    assert g.cmd(b"MYRIGHTS " + shared(owner))[-1].startswith(b"NO [NONEXISTENT]")
    assert "Team\t%s" % grantee not in server.cli("share", "list", owner).stdout
    bad = server.cli("share", "grant", owner, "Nosuch", grantee, "l", check=False)
    assert bad.returncode != 0 and "no such mailbox" in bad.stderr
    bad = server.cli("share", "grant", owner, "Team", grantee, "lz", check=False)
    assert bad.returncode != 0
