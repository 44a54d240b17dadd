"""The outbound queue from the outside: DSN (RFC 3461) offered on the submission ports only,
its parameters carried per recipient into queue entries (one per message and destination
domain), and `posthorn queue list/show/hold/release/flush/retry/delete` on a running
server's store. Nothing here delivers (outbound delivery is off in tests unless a test sets
up its own DNS; see test_outbound.py): entries stay queued, so every effect is visible
through the CLI."""

import base64
import email
import email.policy
import os

import pytest

from conftest import USERS, RawSMTP, has_enhanced_code, make_server, unique

DEMO = "demo@example.test"
ALICE = "alice@example.test"

# These tests follow message files through the queue: every body goes to a file.
# test_small_body_lives_in_the_database covers the default, bodies in the database.
SERVER_CONF = {"store_inline_max": "0"}


def plain(user, password):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()


def caps(reply):
    return {l.split()[0].upper() for l in reply.lines[1:]}


def authed587(server, user=DEMO):
    c = RawSMTP(server.submission_port)
    c.ehlo()
    c.starttls()
    c.ehlo()
    r = c.cmd("AUTH PLAIN " + plain(user, USERS[user]))
    assert r.code == 235, r
    return c


def submit(c, mail_from, rcpts, subject):
    """MAIL (with its parameters) + RCPTs (each "<addr> params") + DATA on an open session."""
    r = c.cmd("MAIL FROM:" + mail_from)
    assert r.code == 250, r
    for rcpt in rcpts:
        r = c.cmd("RCPT TO:" + rcpt)
        assert r.code == 250, (rcpt, r)
    assert c.cmd("DATA").code == 354
    body = ("From: <%s>\r\nTo: <x@far.test>\r\nSubject: %s\r\n\r\nqueued body\r\n.\r\n"
            % (DEMO, subject))
    c.send(body)
    r = c.read_reply()
    assert r.code == 250, r


# --- the empty queue (first: nothing has been submitted yet) ------------------------


def test_list_empty_prints_nothing(server):
    p = server.cli("queue", "list")
    assert p.returncode == 0
    assert p.stdout == "", repr(p.stdout)
    p = server.cli("queue", "list", "--domain", "far.test")
    assert p.stdout == ""


# --- DSN on the submission ports only -----------------------------------------------


def test_dsn_advertised_on_submission_only(server):
    with RawSMTP(server.submission_port) as c:
        c.ehlo()
        c.starttls()
        assert "DSN" in caps(c.ehlo())
    with RawSMTP(server.submissions_port, tls=True) as c:
        assert "DSN" in caps(c.ehlo())
    with RawSMTP(server.smtp_port) as c:
        assert "DSN" not in caps(c.ehlo())


def test_dsn_parameters_refused_on_port_25(server):
    with RawSMTP(server.smtp_port) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<s@remote.test> RET=HDRS")
        assert r.code == 555 and has_enhanced_code(r), r
        r = c.cmd("MAIL FROM:<s@remote.test> ENVID=x")
        assert r.code == 555, r
        assert c.cmd("MAIL FROM:<s@remote.test>").code == 250
        r = c.cmd("RCPT TO:<%s> NOTIFY=NEVER" % DEMO)
        assert r.code == 555 and "RCPT" in r.text, r
        r = c.cmd("RCPT TO:<%s> ORCPT=rfc822;x@y" % DEMO)
        assert r.code == 555, r
        assert c.cmd("RCPT TO:<%s>" % DEMO).code == 250


def test_bad_dsn_syntax_501_and_session_survives(server):
    with authed587(server) as c:
        for line, what in [("MAIL FROM:<%s> RET=BODY" % DEMO, "RET"),
                           ("MAIL FROM:<%s> ENVID=%s" % (DEMO, "e" * 101), "ENVID"),
                           ("MAIL FROM:<%s> ENVID=a+0Db" % DEMO, "ENVID")]:
            r = c.cmd(line)
            assert r.code == 501 and r.lines[0].startswith("5.5.4 "), (line, r)
            assert what in r.text
        assert c.cmd("MAIL FROM:<%s>" % DEMO).code == 250
        for line in ["RCPT TO:<x@far.test> NOTIFY=NEVER,SUCCESS",
                     "RCPT TO:<x@far.test> NOTIFY=SOMETIMES",
                     "RCPT TO:<x@far.test> NOTIFY=",
                     "RCPT TO:<x@far.test> ORCPT=x@far.test",
                     "RCPT TO:<x@far.test> ORCPT=rfc822;" + "a" * 494]:
            r = c.cmd(line)
            assert r.code == 501 and r.lines[0].startswith("5.5.4 "), (line, r)
        assert c.cmd("RCPT TO:<x@far.test> NOTIFY=DELAY").code == 250
        assert c.cmd("RSET").code == 250
    assert server.queue_entries() == []


# --- submission into the queue, then the CLI ----------------------------------------


def submit_dsn_message(server, subject):
    """One message to two far.test recipients, one away.test recipient and one local one;
    returns the entries it made, by domain."""
    before = {e["id"] for e in server.queue_entries()}
    with authed587(server) as c:
        submit(c, "<%s> RET=HDRS ENVID=env+2Bid-%s BODY=8BITMIME" % (DEMO, subject),
               ["<x@far.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Orig+2Bx@far.test",
                "<y@FAR.test> NOTIFY=NEVER",
                "<z@away.test>",
                "<%s> NOTIFY=NEVER" % ALICE], subject)
    new = [e for e in server.queue_entries() if e["id"] not in before]
    return {e["domain"]: e for e in new}


@pytest.mark.sqlite_only("expects the body in a message file")
def test_submission_makes_one_entry_per_domain_with_dsn(server):
    subject = unique("dsn")
    by_domain = submit_dsn_message(server, subject)
    assert sorted(by_domain) == ["away.test", "far.test"], by_domain
    far, away = by_domain["far.test"], by_domain["away.test"]
    assert far["from"] == DEMO and far["state"] == "queued"
    assert (far["pending"], far["rcpts"]) == (2, 2)
    assert (away["pending"], away["rcpts"]) == (1, 1)
    assert far["attempts"] == 0 and far["last_error"] == ""
    assert far["size"] > 0

    show = server.queue_show(far["id"])
    assert show["id"] == far["id"]
    assert show["ret"] == "HDRS"
    assert show["envid"] == "env+2Bid-" + subject  # xtext as sent (RFC 3461 §4.4)
    assert show["from"] == "<%s>" % DEMO
    assert show["domain"] == "far.test"
    assert show["delay-warning-sent"] == "no"
    assert (show["body"], show["smtputf8"]) == ("8BITMIME", "no")
    assert os.path.exists(show["file"])
    assert b"Subject: " + subject.encode() in open(show["file"], "rb").read()
    x, y = show["recipients"]
    assert (x["address"], x["status"], x["notify"], x["orcpt"]) == \
        ("x@far.test", "pending", "SUCCESS,FAILURE", "rfc822;Orig+2Bx@far.test")
    assert (y["address"], y["notify"], y["orcpt"]) == ("y@far.test", "NEVER", "-")
    z = server.queue_show(away["id"])["recipients"]
    assert [(r["address"], r["notify"]) for r in z] == [("z@away.test", "-")]

    # The local recipient got the message at once, as before.
    assert any(m["subject"] == subject for m in server.wait_mail(ALICE, 1))
    # --domain selects, in any case.
    listed = server.queue_entries(domain="FAR.TEST")
    assert far["id"] in [e["id"] for e in listed]
    assert all(e["domain"] == "far.test" for e in listed)


def test_hold_release_flush_retry(server):
    far = submit_dsn_message(server, unique("hold"))["far.test"]
    qid = far["id"]
    p = server.cli("queue", "hold", qid)
    assert p.stdout.strip() == "held " + qid
    entry = {e["id"]: e for e in server.queue_entries()}[qid]
    assert entry["state"] == "held"
    assert server.queue_show(qid)["state"] == "held"

    p = server.cli("queue", "flush")
    assert p.stdout.startswith("flushed ")
    assert {e["id"]: e for e in server.queue_entries()}[qid]["state"] == "held"

    server.cli("queue", "release", qid)
    entry = {e["id"]: e for e in server.queue_entries()}[qid]
    assert entry["state"] == "queued"
    assert server.cli("queue", "retry", qid).stdout.strip() == "retrying " + qid
    assert server.cli("queue", "flush", qid).stdout.strip() == "flushed " + qid


def test_unknown_ids_and_bad_usage(server):
    for verb in ["show", "hold", "release", "retry", "flush"]:
        p = server.cli("queue", verb, "999999", check=False)
        assert p.returncode == 1, (verb, p)
        assert "no queue entry 999999" in p.stderr, (verb, p.stderr)
    for args in [["999999", "--silent"], ["--silent", "999999"], ["999999"]]:
        p = server.cli("queue", "delete", *args, check=False)
        assert p.returncode == 1 and "no queue entry 999999" in p.stderr, (args, p.stderr)
    for args in [["queue", "hold"], ["queue", "frob", "1"], ["queue", "list", "--domain"],
                 ["queue", "delete", "1", "--loud"]]:
        p = server.cli(*args, check=False)
        assert p.returncode == 2 and p.stderr.startswith("usage:"), (args, p)
    p = server.cli("queue", "hold", "12x", check=False)
    assert p.returncode == 1 and "bad queue id" in p.stderr


def test_delete_bounces_to_the_sender(server):
    """Without --silent the sender gets a failure report for each pending recipient that
    wants one (y@far.test said NOTIFY=NEVER), quoting only the header (RET=HDRS)."""
    subject = unique("del")
    far = submit_dsn_message(server, subject)["far.test"]
    p = server.cli("queue", "delete", far["id"])
    assert p.stdout.splitlines() == ["bounced %s to its sender" % far["id"],
                                     "deleted %s" % far["id"]], p.stdout
    assert far["id"] not in [e["id"] for e in server.queue_entries()]
    reports = [m for m in server.mail_list(DEMO) if m["sender"] == ""
               and m["subject"] == "Undelivered Mail Returned to Sender"]
    raw = [server.mail_cat(DEMO, m["uid"]) for m in reports]
    raw = [r for r in raw if subject.encode() in r]
    assert len(raw) == 1, raw
    report = email.message_from_bytes(raw[0].split(b"\r\n", 1)[1], policy=email.policy.default)
    parts = list(report.iter_parts())
    status = parts[1].get_payload()
    assert status[0]["Original-Envelope-Id"] == "env+id-%s" % subject
    assert len(status) == 2  # the per-message block and x@far.test only
    assert status[1]["Final-Recipient"] == "rfc822; x@far.test"
    assert status[1]["Original-Recipient"] == "rfc822;Orig+x@far.test"
    assert status[1]["Action"] == "failed" and status[1]["Status"] == "5.0.0"
    assert "deleted from the queue by the postmaster" in status[1]["Diagnostic-Code"]
    assert parts[2].get_content_type() == "text/rfc822-headers"


@pytest.mark.sqlite_only("expects the body in a message file")
def test_delete_silent_removes_entry_and_file(server):
    subject = unique("delsilent")
    by_domain = submit_dsn_message(server, subject)
    far, away = by_domain["far.test"], by_domain["away.test"]
    path = server.queue_show(far["id"])["file"]
    assert server.cli("queue", "delete", far["id"], "--silent").stdout.strip() == \
        "deleted " + far["id"]
    ids = [e["id"] for e in server.queue_entries()]
    assert far["id"] not in ids and away["id"] in ids
    p = server.cli("queue", "show", far["id"], check=False)
    assert p.returncode == 1
    # The other entry and alice's copy still hold the message file.
    assert os.path.exists(path)
    server.cli("queue", "delete", "--silent", away["id"])
    assert away["id"] not in [e["id"] for e in server.queue_entries()]
    assert os.path.exists(path)  # alice's INBOX copy
    alice = [m for m in server.mail_list(ALICE) if m["subject"] == subject]
    assert len(alice) == 1
    server.cli("mail", "del", ALICE, "INBOX", str(alice[0]["uid"]))
    assert not os.path.exists(path)


@pytest.mark.sqlite_only("expects the body in a message file")
def test_remote_only_message_file_goes_with_its_last_entry(server):
    before = {e["id"] for e in server.queue_entries()}
    with authed587(server) as c:
        submit(c, "<%s> SMTPUTF8" % DEMO, ["<solo@far.test>"], unique("solo"))
    (entry,) = [e for e in server.queue_entries() if e["id"] not in before]
    show = server.queue_show(entry["id"])
    assert (show["smtputf8"], show["body"], show["ret"], show["envid"]) == ("yes", "-", "-", "-")
    path = show["file"]
    assert os.path.exists(path)
    server.cli("queue", "delete", entry["id"], "--silent")
    assert not os.path.exists(path)


def test_small_body_lives_in_the_database(tmp_path_factory):
    """With the default store_inline_max a queued body has no file: `queue show` says so,
    the local copy reads the same bytes, and nothing appears under data/messages."""
    srv = make_server(tmp_path_factory, "inline")
    srv.start()
    try:
        subject = unique("inline")
        with authed587(srv) as c:
            submit(c, "<%s>" % DEMO, ["<x@far.test>", "<%s>" % ALICE], subject)
        (entry,) = srv.queue_entries()
        show = srv.queue_show(entry["id"])
        assert show["file"] == "(in the database)"
        (m,) = [m for m in srv.mail_list(ALICE) if m["subject"] == subject]
        assert ("Subject: " + subject).encode() in srv.mail_cat(ALICE, m["uid"])
        files = [f for _, _, fs in os.walk(srv.dir / "data" / "messages") for f in fs]
        assert files == []
        srv.cli("queue", "delete", entry["id"], "--silent")
        assert srv.queue_entries() == []
    finally:
        srv.stop_and_check()
