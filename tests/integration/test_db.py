"""`posthorn db migrate | export | import`: a whole store moves to a new one (another engine,
another machine) without a client noticing: same UIDVALIDITY, UIDs, flags, folders, bodies,
POP3 UIDLs, passwords and quotas. An import refuses a store that is not new and a damaged
dump, and then imports nothing."""

import imaplib
import os
import poplib
import re

import pytest

import smtplib

from conftest import HOST, USERS, make_server, unique
from imap_helpers import Raw, imap_ports, tls_ctx, wait_imap
from pop3_helpers import pop3s_port

ALICE = "alice@example.test"
DEMO = "demo@example.test"


def deliver(server, rcpts, msg):
    with smtplib.SMTP(HOST, server.smtp_port, timeout=30, local_hostname="client.test") as s:
        assert not s.sendmail("s@remote.test", rcpts, msg)


def imap_login(server, user):
    _, port = imap_ports(server)
    c = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=tls_ctx(), timeout=30)
    c.login(user, USERS[user])
    return c


def imap_view(server, user):
    """Everything a syncing client keeps: per folder UIDVALIDITY, UIDNEXT and per UID the
    flags and the full message."""
    c = imap_login(server, user)
    view = {}
    _, folders = c.list()
    for line in folders:
        name = line.decode().rsplit(' "/" ', 1)[1].strip('"')
        typ, _ = c.select('"%s"' % name, readonly=True)
        assert typ == "OK"
        _, st = c.status('"%s"' % name, "(UIDVALIDITY UIDNEXT MESSAGES)")
        msgs = {}
        _, data = c.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
        for item in data:
            if isinstance(item, tuple):
                uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
                flags = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1)
                # \Recent belongs to a session, not to the store.
                msgs[uid] = (sorted(f for f in flags.split() if f != rb"\Recent"), item[1])
        view[name] = (st[0].split(b"(", 1)[1], msgs)
    c.logout()
    return view


def metadata(server, user):
    """The raw answers to GETMETADATA of the Archive and server entries."""
    r = Raw(server, user, USERS[user])
    out = r.cmd(b"GETMETADATA (DEPTH infinity) Archive /private")
    out += r.cmd(b'GETMETADATA (DEPTH infinity) "" /shared')
    r.close()
    assert all(l.startswith((b"* METADATA", b"OK")) for l in out), out
    return b"".join(out)


def pop3_uidls(server, user):
    p = poplib.POP3_SSL("127.0.0.1", pop3s_port(server), context=tls_ctx(), timeout=30)
    p.user(user)
    p.pass_(USERS[user])
    _, lines, _ = p.uidl()
    p.quit()
    return sorted(lines)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A store with mail in files and in rows, flags, a folder, a copy, an expunge, a
    quota, an alias and a queued message."""
    srv = make_server(tmp_path_factory, "dbsrc", {"allow_plaintext_auth": "yes"})
    srv.cli("user", "quota", DEMO, "50M", "--messages", "1000")
    srv.cli("alias", "add", "info@example.test", ALICE)
    srv.start()
    wait_imap(srv)
    # Above store_inline_max (a file on SQLite) and STORE_CHUNK_SIZE (chunk rows on
    # PostgreSQL).
    big = b"".join(b"line %06d of the big one\r\n" % i for i in range(24000))
    for i, body in enumerate([b"small one", big, b"third"]):
        msg = (b"From: s@remote.test\r\nTo: %s\r\nSubject: move %d %s\r\n\r\n%s\r\n"
               % (ALICE.encode(), i, unique().encode(), body))
        deliver(srv, [ALICE, "info@example.test"] if i == 0 else [ALICE], msg)
    c = imap_login(srv, ALICE)
    c.create("Archive")
    c.select("INBOX")
    c.uid("STORE", "1", "+FLAGS", r"(\Seen \Flagged $Important)")
    c.uid("COPY", "1:2", "Archive")
    c.uid("STORE", "3", "+FLAGS", r"(\Deleted)")
    c.expunge()
    c.logout()
    # METADATA (RFC 5464): a mailbox entry with a binary value, and a server entry.
    r = Raw(srv, ALICE, USERS[ALICE])
    assert r.cmd(b"SETMETADATA Archive (/private/comment ~{7+}\r\nbin\x00ary)")[-1] \
        .startswith(b"OK")
    assert r.cmd(b'SETMETADATA "" (/shared/comment "server note")')[-1].startswith(b"OK")
    r.close()
    yield srv
    srv.stop_and_check()


def test_export_import_keeps_what_clients_see(source, tmp_path_factory, tmp_path):
    before = imap_view(source, ALICE)
    uidls = pop3_uidls(source, ALICE)
    dump = tmp_path / "store.dump"
    source.cli("db", "export", dump)  # while the server runs: one read snapshot
    text = dump.read_bytes()
    assert text.startswith(b"posthorn-dump 1\n") and text.endswith(b"\nend\n")

    target = make_server(tmp_path_factory, "dbdst", {"allow_plaintext_auth": "yes"},
                         accounts=False)
    p = target.cli("db", "import", dump)
    assert "imported" in p.stderr
    target.start()
    try:
        wait_imap(target)
        after = imap_view(target, ALICE)
        assert after == before
        assert "Archive" in after and len(after["Archive"][1]) == 2
        assert pop3_uidls(target, ALICE) == uidls
        users = target.cli("user", "list").stdout
        assert re.search(r"^%s quota=52428800 .* message_limit=1000$" % re.escape(DEMO), users,
                         re.M), users
        assert "info@example.test" in target.cli("alias", "list").stdout
        assert metadata(target, ALICE) == metadata(source, ALICE)
        assert b"~{7}\r\nbin\x00ary" in metadata(target, ALICE)
        # New mail continues the UIDs; the big body was moved into the database.
        deliver(target, [ALICE], b"Subject: after the move\r\n\r\nnew\r\n")
        c = imap_login(target, ALICE)
        c.select("INBOX")
        _, data = c.uid("SEARCH", "ALL")
        uids = [int(u) for u in data[0].split()]
        assert uids[-1] == max(before["INBOX"][1]) + 2  # UID 3 was expunged, UIDNEXT was 4
        c.logout()
        files = [f for _, _, fs in os.walk(target.dir / "data" / "messages") for f in fs]
        assert files == []
    finally:
        target.stop_and_check()


def test_import_refuses_a_store_in_use(source, tmp_path):
    dump = tmp_path / "d"
    source.cli("db", "export", dump)
    p = source.cli("db", "import", dump, check=False)
    assert p.returncode == 1 and "not empty" in p.stderr


@pytest.mark.parametrize("damage", ["truncate", "column", "table", "size"])
def test_import_refuses_a_damaged_dump(source, tmp_path_factory, tmp_path, damage):
    dump = tmp_path / "d"
    source.cli("db", "export", dump)
    text = dump.read_text()
    if damage == "truncate":
        text = text[: len(text) // 2]
    elif damage == "column":
        text = text.replace("table domains id name created", "table domains id name", 1)
    elif damage == "table":
        text = text.replace("table aliases", "table aliasez", 1)
    else:  # a message's size that is not its content's (readers go by the size)
        head, rest = text.split("\ntable messages ", 1)
        cols, row, tail = rest.split("\n", 2)
        fields = row.split("\t")
        fields[2] = str(int(fields[2]) + 1)
        text = head + "\ntable messages " + cols + "\n" + "\t".join(fields) + "\n" + tail
    dump.write_text(text)
    target = make_server(tmp_path_factory, "dbbad", accounts=False)
    p = target.cli("db", "import", dump, check=False)
    assert p.returncode == 1 and "import:" in p.stderr
    if damage == "size":
        assert "size is not that of its content" in p.stderr
    # Nothing of it stayed: the store is still new, and a good dump goes in.
    assert target.cli("domain", "list").stdout.strip() == ""
    source.cli("db", "export", tmp_path / "good")
    target.cli("db", "import", tmp_path / "good")
    assert "example.test" in target.cli("domain", "list").stdout


def test_migrate_prints_the_version(source):
    out = source.cli("db", "migrate").stdout
    assert re.match(r"^schema version \d+$", out.strip())


def test_db_usage(source):
    p = source.cli("db", "frobnicate", check=False)
    assert p.returncode == 2 and "usage: posthorn db" in p.stderr


def test_check_passes_on_a_consistent_store(source):
    p = source.cli("db", "check", check=False)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stdout + p.stderr


@pytest.mark.sqlite_only("message files exist on SQLite only")
def test_check_finds_a_damaged_message_file(source):
    files = [f for fan in (source.dir / "data" / "messages").iterdir() for f in fan.iterdir()]
    assert files
    f = files[0]
    data = f.read_bytes()
    try:
        f.write_bytes(data[:len(data) // 2])
        p = source.cli("db", "check", check=False)
        assert p.returncode == 1, p.stdout + p.stderr
        assert "message file %s" % f.name in p.stdout and "1 problems" in p.stdout, p.stdout
        f.unlink()
        p = source.cli("db", "check", check=False)
        assert p.returncode == 1 and "message file %s is missing" % f.name in p.stdout
    finally:
        f.write_bytes(data)
    assert source.cli("db", "check").stdout.strip() == "ok"
