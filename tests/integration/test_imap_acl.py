"""IMAP ACL (RFC 4314) and shared folders through a live server, one server for the module:
capabilities and NAMESPACE, an owner granting rights on a folder that the grantee then sees in
LIST (under "Shared/owner/", with RETURN (MYRIGHTS), RFC 8440), SELECTs and reads; SETACL with
+/- and DELETEACL, GETACL, LISTRIGHTS, MYRIGHTS; every right denied with [NOPERM] when it is
missing and allowed once granted; no existence leak (a grantee without l is answered exactly as
for a mailbox that does not exist); @domain and anyone identifiers; changes reaching both sides
live (IDLE); APPEND and COPY into a shared folder counting against the owner's quota; RENAME and
DELETE taking the rights along; and `posthorn share grant|revoke|list`."""

import re
import select

from conftest import USERS
from imap_helpers import Raw as RawClient

PASSWORD = "acl-Secret-7"
MSG = b"From: a@example.test\r\nSubject: shared hello\r\n\r\nbody of the shared message\r\n"
# Five accounts for the whole module (creating one costs a password hash, so the server's
# own three are used too): owners A and D, grantee B, C who is never granted anything but
# through @example.test and anyone (that test cleans up), X of the other domain. Each test
# works on folders of its own.
A, B, X = "demo@example.test", "alice@example.test", "bob@other.test"
C, D = "acl-c@example.test", "acl-d@example.test"


def server_setup(server):
    for who in (C, D):
        server.add_user(who, PASSWORD)


class Raw(RawClient):
    def __init__(self, server, user):
        super().__init__(server, user, USERS.get(user, PASSWORD))


def owner_with(server, owner, box, rights=None, grantee=B):
    """owner's new folder box holding one message; rights granted to grantee (SETACL)."""
    o = Raw(server, owner)
    assert o.cmd(b"CREATE " + box.encode())[-1].startswith(b"OK")
    assert o.append(box.encode(), MSG).startswith(b"OK")
    if rights is not None:
        assert o.cmd(b'SETACL %s %s "%s"' % (box.encode(), grantee.encode(),
                                             rights.encode()))[-1] == b"OK SETACL completed"
    return o


def shared(owner, box="Team"):
    return b'"Shared/%s/%s"' % (owner.encode(), box.encode())


def test_capability_and_namespace(server):
    r = Raw(server, C)
    caps = r.cmd(b"CAPABILITY")[0].split()
    for c in (b"ACL", b"RIGHTS=texk", b"LIST-MYRIGHTS"):
        assert c in caps
    assert r.cmd(b"NAMESPACE")[0] == b'* NAMESPACE (("" "/")) (("Shared/" "/")) NIL\r\n'


def test_grant_list_select_read(server):
    owner, grantee, T = D, B, "Team"
    o = owner_with(server, owner, T, "lr")
    g = Raw(server, grantee)
    out = g.cmd(b'LIST "" "Shared/%s*"' % owner.encode())
    assert out[-1] == b"OK LIST completed"
    assert out[:-1] == [
        b'* LIST (\\Noselect \\HasChildren) "/" "Shared/%s"\r\n' % owner.encode(),
        b'* LIST (\\HasNoChildren) "/" %s\r\n' % shared(owner)]  # not the owner's INBOX
    assert b'* LIST (\\Noselect \\HasChildren) "/" "Shared"\r\n' in g.cmd(b'LIST "" "%"')
    # LIST-MYRIGHTS (RFC 8440) for shared and own mailboxes.
    out = g.cmd(b'LIST "" ("Shared/%s/*" "INBOX") RETURN (MYRIGHTS)' % owner.encode())
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
    owner, grantee = A, B
    o = owner_with(server, owner, "Team", "lr")
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
    owner, grantee, stranger = A, B, C
    owner_with(server, owner, "Secret", "r")  # r without l: nothing to learn either
    for who in (grantee, stranger):
        c = Raw(server, who)
        real, missing = shared(owner, "Secret"), shared(owner, "Nosuch")
        nobody = b'"Shared/nobody@example.test/Team"'
        for cmd in (b"SELECT %s", b"EXAMINE %s", b"MYRIGHTS %s", b"GETACL %s",
                    b"STATUS %s (MESSAGES)", b"DELETE %s", b"SUBSCRIBE %s",
                    b'SETACL %s anyone "l"', b"LISTRIGHTS %s anyone"):
            answers = {c.cmd(cmd % box)[-1] for box in (real, missing, nobody)}
            assert len(answers) == 1, (cmd, answers)
            assert answers.pop().startswith(b"NO [NONEXISTENT]"), cmd
        answers = {c.append(box, MSG) for box in (real, missing)}
        assert answers == {b"NO [TRYCREATE] The mailbox does not exist"}
        assert shared(owner, "Secret") not in b"".join(c.cmd(b'LIST "" "Shared/*"'))
    assert Raw(server, stranger).cmd(b'LIST "" "Shared/*"') == [b"OK LIST completed"]


def test_each_right_denied_then_granted(server):
    owner, grantee = A, B
    o = owner_with(server, owner, "Rights", "l")
    g = Raw(server, grantee)
    box = shared(owner, "Rights")
    grant = lambda r: o.cmd(b'SETACL Rights %s "+%s"' % (grantee.encode(), r.encode()))
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
    assert g.cmd(b'CREATE "Shared/%s/Rights/Sub"' % owner.encode())[-1] == \
        b"NO [NOPERM] Permission denied (right k needed)"
    assert g.cmd(b"DELETE " + box)[-1] == b"NO [NOPERM] Permission denied (right x needed)"
    grant("r")
    out = g.cmd(b"SELECT " + box)
    assert out[-1].startswith(b"OK [READ-ONLY]"), out
    # s, w, t in a read-write session: each flag needs its right.
    grant("i")
    out = g.cmd(b"SELECT " + box)
    assert out[-1].startswith(b"OK [READ-WRITE]"), out
    assert b"* OK [PERMANENTFLAGS ()] Flags permitted\r\n" in out  # i alone: no flags
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
    assert b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen \\*)] " \
        b"Flags permitted\r\n" in g.cmd(b"SELECT " + box)
    o.cmd(b'SETACL Rights %s "-w"' % grantee.encode())
    assert b"* OK [PERMANENTFLAGS (\\Deleted \\Seen)] Flags permitted\r\n" in \
        g.cmd(b"SELECT " + box)
    grant("w")
    g.cmd(b"SELECT " + box)
    assert g.cmd(b"STORE 1 +FLAGS (\\Seen $Work \\Deleted)")[-1].startswith(b"OK")
    assert g.cmd(b"EXPUNGE")[-2:] == [b"* 1 EXPUNGE\r\n", b"OK EXPUNGE completed"]
    # i granted: APPEND and COPY work, with APPENDUID/COPYUID.
    assert g.append(box, MSG).startswith(b"OK [APPENDUID")
    g.cmd(b"SELECT INBOX")
    assert g.cmd(b"COPY 1 " + box)[-1].startswith(b"OK [COPYUID")
    assert o.cmd(b"STATUS Rights (MESSAGES)")[0] == b'* STATUS "Rights" (MESSAGES 2)\r\n'
    # k, x, a.
    grant("kxa")
    assert g.cmd(b'CREATE "Shared/%s/Rights/Sub"' % owner.encode())[-1].startswith(b"OK")
    assert o.cmd(b'LIST "" "Rights/*"')[0] == b'* LIST (\\HasNoChildren) "/" "Rights/Sub"\r\n'
    assert g.cmd(b'SETACL %s anyone "l"' % box)[-1] == b"OK SETACL completed"
    assert g.cmd(b"GETACL " + box)[0].startswith(b'* ACL %s "%s"' % (box, owner.encode()))
    assert g.cmd(b"DELETE " + box)[-1] == b"OK DELETE completed"
    assert o.cmd(b"STATUS Rights (MESSAGES)")[-1].startswith(b"NO [NONEXISTENT]")


def test_domain_and_anyone(server):
    owner, box = A, shared(A, "Everyone")
    o = owner_with(server, owner, "Everyone")
    assert o.cmd(b'SETACL Everyone @example.test "lr"')[-1] == b"OK SETACL completed"
    s, x = Raw(server, C), Raw(server, X)
    assert s.cmd(b"MYRIGHTS " + box)[0].endswith(b' "lr"\r\n')
    assert x.cmd(b"MYRIGHTS " + box)[-1].startswith(b"NO [NONEXISTENT]")
    assert o.cmd(b'SETACL Everyone anyone "l"')[-1] == b"OK SETACL completed"
    assert x.cmd(b"MYRIGHTS " + box)[0].endswith(b' "l"\r\n')
    assert box in b"".join(x.cmd(b'LIST "" "Shared/*"'))
    assert s.cmd(b"MYRIGHTS " + box)[0].endswith(b' "lr"\r\n')
    # C and X are strangers again for the other tests.
    assert o.cmd(b"DELETE Everyone")[-1].startswith(b"OK")


def idle_wait(c, want, timeout=5):
    """Lines from an IDLE session until one ends with want."""
    c.sock.settimeout(timeout)
    while True:
        line = c.line()
        if line.rstrip(b"\r\n").endswith(want):
            return line


def test_live_both_sides_and_quota(server):
    owner, grantee = D, B
    o = owner_with(server, owner, "Live", "lrswi")
    server.cli("user", "quota", owner, "10M")
    g = Raw(server, grantee)
    box = shared(owner, "Live")
    used = lambda: int(re.search(rb"STORAGE (\d+)", o.cmd(b"GETQUOTAROOT INBOX")[1]).group(1))
    before = used()
    # The owner idles on Team; the grantee appends into it.
    o.select(b"Live")
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
    assert o.append(b"Live", MSG).startswith(b"OK")
    assert idle_wait(g, b"EXISTS") == b"* 3 EXISTS\r\n"
    g.send(b"DONE\r\n")
    g.until(b"i2")


def test_rights_change_reaches_a_selected_session(server):
    owner, grantee = A, B
    o = owner_with(server, owner, "Revoke", "lrs")
    g = Raw(server, grantee)
    box = shared(owner, "Revoke")
    assert g.cmd(b"SELECT " + box)[-1].startswith(b"OK [READ-WRITE]")
    assert o.cmd(b'SETACL Revoke %s "-s"' % grantee.encode())[-1] == b"OK SETACL completed"
    assert g.cmd(b"STORE 1 +FLAGS (\\Seen)")[-1] == \
        b"NO [NOPERM] Permission denied (right s needed)"
    assert o.cmd(b"DELETEACL Revoke " + grantee.encode())[-1] == b"OK DELETEACL completed"
    out = g.cmd(b"FETCH 1 FLAGS")
    assert out == [b"* OK [CLOSED] Access to the selected mailbox was withdrawn\r\n",
                   b"BAD No mailbox selected"], out


def test_rename_and_delete_take_the_rights(server):
    owner, grantee = A, B
    o = owner_with(server, owner, "Ren", "lr")
    g = Raw(server, grantee)
    assert o.cmd(b"RENAME Ren Group")[-1].startswith(b"OK")
    assert g.cmd(b"MYRIGHTS " + shared(owner, "Group"))[0].endswith(b' "lr"\r\n')
    assert g.cmd(b"MYRIGHTS " + shared(owner, "Ren"))[-1].startswith(b"NO [NONEXISTENT]")
    assert g.cmd(b'RENAME %s Mine' % shared(owner, "Group"))[-1].startswith(b"NO [CANNOT]")
    # RENAME inside the owner's folders: x on the old name, k on the new one's parent.
    assert o.cmd(b"CREATE Proj/Old")[-1].startswith(b"OK")
    old, new = shared(owner, "Proj/Old"), shared(owner, "Proj/New")
    assert o.cmd(b'SETACL Proj/Old %s "l"' % grantee.encode())[-1].startswith(b"OK")
    assert g.cmd(b"RENAME %s %s" % (old, new))[-1] == \
        b"NO [NOPERM] Permission denied (right x needed)"
    assert o.cmd(b'SETACL Proj/Old %s "+x"' % grantee.encode())[-1].startswith(b"OK")
    assert g.cmd(b"RENAME %s %s" % (old, new))[-1] == \
        b"NO [NOPERM] Permission denied (right k needed)"
    assert o.cmd(b'SETACL Proj %s "lk"' % grantee.encode())[-1].startswith(b"OK")
    assert g.cmd(b"RENAME %s %s" % (old, new))[-1] == b"OK RENAME completed"
    assert o.cmd(b'LIST "" "Proj/*"')[:-1] == [b'* LIST (\\HasNoChildren) "/" "Proj/New"\r\n']
    assert g.cmd(b"MYRIGHTS " + new)[0].endswith(b' "lx"\r\n')
    assert o.cmd(b"DELETE Group")[-1].startswith(b"OK")
    assert o.cmd(b"CREATE Group")[-1].startswith(b"OK")
    assert g.cmd(b"MYRIGHTS " + shared(owner, "Group"))[-1].startswith(b"NO [NONEXISTENT]")
    # "Shared" is the namespace, not a personal folder.
    assert o.cmd(b"CREATE Shared")[-1].startswith(b"NO [NOPERM]")


def test_share_cli(server):
    owner, grantee = D, B
    owner_with(server, owner, "Cli")
    server.cli("share", "grant", owner, "Cli", grantee, "lrs")
    g = Raw(server, grantee)
    assert g.cmd(b"MYRIGHTS " + shared(owner, "Cli"))[0].endswith(b' "lrs"\r\n')
    server.cli("share", "grant", owner, "Cli", "@other.test", "+l")
    out = server.cli("share", "list", owner, "Cli").stdout
    assert out == "Cli\t@other.test\tl\nCli\t%s\tlrs\n" % grantee
    server.cli("share", "revoke", owner, "Cli", grantee)
    server.cli("share", "revoke", owner, "Cli", "@other.test")
    assert g.cmd(b"MYRIGHTS " + shared(owner, "Cli"))[-1].startswith(b"NO [NONEXISTENT]")
    assert server.cli("share", "list", owner, "Cli").stdout == ""
    bad = server.cli("share", "grant", owner, "Nosuch", grantee, "l", check=False)
    assert bad.returncode != 0 and "no such mailbox" in bad.stderr
    bad = server.cli("share", "grant", owner, "Cli", grantee, "lz", check=False)
    assert bad.returncode != 0 and "bad rights" in bad.stderr


def test_quota_and_metadata_of_shared_folders(server):
    """GETQUOTAROOT of a shared folder names the owner's root (by the owner's address) for
    a grantee with r (RFC 9208, RFC 4314); GETMETADATA and SETMETADATA of its /shared/
    entries with l and any of r s w i p (RFC 5464 §3.2); its /private/ entries stay the
    owner's. Without l it does not exist, for all three."""
    owner, grantee = D, B
    o = owner_with(server, owner, "Meta", "l")
    server.cli("user", "quota", owner, "10M")
    assert o.cmd(b'SETMETADATA Meta (/shared/comment "team" /private/comment "mine")')[-1] \
        == b"OK SETMETADATA completed"
    g = Raw(server, grantee)
    box = shared(owner, "Meta")
    assert g.cmd(b"GETQUOTAROOT " + box)[-1] == b"NO [NOPERM] Permission denied (right r needed)"
    assert g.cmd(b"GETMETADATA %s /shared/comment" % box)[-1] == \
        b"NO [NOPERM] Permission denied (right r needed)"
    c = Raw(server, C)  # no rights at all: as a folder that does not exist
    assert c.cmd(b"GETQUOTAROOT " + box)[-1] == b"NO [NONEXISTENT] Mailbox does not exist"
    assert c.cmd(b"GETMETADATA %s /shared/comment" % box)[-1] == \
        b"NO [NONEXISTENT] No such mailbox"
    assert c.cmd(b'SETMETADATA %s (/shared/comment "x")' % box)[-1] == \
        b"NO [NONEXISTENT] No such mailbox"
    # i alone: metadata yes, quota no
    assert o.cmd(b'SETACL Meta %s "li"' % grantee.encode())[-1] == b"OK SETACL completed"
    out = b"".join(g.cmd(b"GETMETADATA %s (/shared/comment /private/comment)" % box))
    assert out.startswith(b'* METADATA "Shared/%s/Meta" ("/shared/comment" {4}\r\nteam '
                          b'"/private/comment" NIL)' % owner.encode()), out
    assert out.endswith(b"OK GETMETADATA completed")
    assert g.cmd(b"GETQUOTAROOT " + box)[-1] == b"NO [NOPERM] Permission denied (right r needed)"
    assert g.cmd(b'SETMETADATA %s (/shared/comment "ours")' % box)[-1] == \
        b"OK SETMETADATA completed"
    assert g.cmd(b'SETMETADATA %s (/private/comment "x")' % box)[-1] == \
        b"NO [CANNOT] Private entries of another user's mailbox are not kept"
    out = b"".join(o.cmd(b"GETMETADATA Meta (/shared/comment /private/comment)"))
    assert b'"/shared/comment" {4}\r\nours "/private/comment" {4}\r\nmine)' in out, out
    # r: the owner's quota root, by the owner's address
    assert o.cmd(b'SETACL Meta %s "lr"' % grantee.encode())[-1] == b"OK SETACL completed"
    out = g.cmd(b"GETQUOTAROOT " + box)
    assert out[0] == b'* QUOTAROOT "Shared/%s/Meta" "%s"\r\n' % (owner.encode(),
                                                                  owner.encode()), out
    assert re.match(rb'\* QUOTA "%s" \(STORAGE \d+ 10240\)\r\n' % re.escape(owner.encode()),
                    out[1]), out
    assert out[2] == b"OK GETQUOTAROOT completed"
    assert g.cmd(b'GETQUOTA "%s"' % owner.encode())[-1] == \
        b"NO [NONEXISTENT] No such quota root"
    assert o.cmd(b"GETQUOTAROOT Meta")[0] == b'* QUOTAROOT "Meta" ""\r\n'


def test_notify_shared_folders(server):
    """NOTIFY (RFC 5465) MAILBOXES / SUBTREE naming shared folders: STATUS for the owner's
    changes while the grantee has l and r, nothing once r is withdrawn, nothing for an
    account the folder is not shared with."""
    owner, grantee = D, B
    o = owner_with(server, owner, "Note", "lr")
    g = Raw(server, grantee)
    box = shared(owner, "Note")
    out = g.cmd(b"NOTIFY SET STATUS (MAILBOXES %s (MessageNew MessageExpunge))" % box)
    assert out[-1] == b"OK NOTIFY completed", out
    assert len(out) == 2 and out[0].startswith(b"* STATUS %s (MESSAGES 1 UIDNEXT 2 " % box), out
    c = Raw(server, C)  # nothing is shared with C: the SUBTREE names nothing it may see
    assert c.cmd(b'NOTIFY SET (SUBTREE "Shared" (MessageNew))') == [b"OK NOTIFY completed"]
    s = Raw(server, X)  # a SUBTREE over the owner's shared folders
    assert o.cmd(b'SETACL Note %s "lr"' % X.encode())[-1] == b"OK SETACL completed"
    assert s.cmd(b'NOTIFY SET (SUBTREE "Shared/%s" (MessageNew))' % owner.upper().encode()) \
        == [b"OK NOTIFY completed"]
    assert o.append(b"Note", MSG).startswith(b"OK")
    g.sock.settimeout(5)
    assert g.line().startswith(b"* STATUS %s (MESSAGES 2 UIDNEXT 3 " % box)
    s.sock.settimeout(5)
    assert s.line().startswith(b"* STATUS %s (MESSAGES 2 UIDNEXT 3 " % box)
    assert c.cmd(b"NOOP") == [b"OK NOOP completed"]
    # r withdrawn: the owner's next message is not told
    assert o.cmd(b'SETACL Note %s "l"' % grantee.encode())[-1] == b"OK SETACL completed"
    assert o.append(b"Note", MSG).startswith(b"OK")
    assert s.line().startswith(b"* STATUS %s (MESSAGES 3 UIDNEXT 4 " % box)
    assert g.cmd(b"NOOP") == [b"OK NOOP completed"]
    assert g.cmd(b"NOOP") == [b"OK NOOP completed"]
