"""UIDONLY (RFC 9586), MESSAGELIMIT (RFC 9738), CATENATE (RFC 4469) and URLAUTH/BURL (RFC
4467, RFC 4468) against one live server: what another session changes reaches a UIDONLY
session as UIDFETCH and VANISHED; the conversation script 17-uidonly.conv covers the
commands refused with [UIDREQUIRED]."""

import itertools
import re
import smtplib

from conftest import HOST, tls_client_context
from imap_helpers import Raw

PASSWORD = "late-Secret-7"
LIMIT = 4
MSG_MAX = 100000
SERVER_CONF = {"imap_message_limit": str(LIMIT), "limit_message_size": str(MSG_MAX)}
_counter = itertools.count(1)


def fresh_user(server):
    addr = "lx%d@example.test" % next(_counter)
    server.add_user(addr, PASSWORD)
    return addr


def msg(subject, body=b"body\r\n"):
    return b"From: a@example.test\r\nSubject: %s\r\n\r\n" % subject + body


def test_uidonly_unsolicited_changes(server):
    user = fresh_user(server)
    a = Raw(server, user, PASSWORD)
    for i in range(3):
        assert a.append(b"INBOX", msg(b"m%d" % i)).startswith(b"OK")
    assert a.cmd(b"ENABLE UIDONLY")[0] == b"* ENABLED UIDONLY\r\n"
    a.cmd(b"SELECT INBOX")
    b = Raw(server, user, PASSWORD)
    b.cmd(b"SELECT INBOX")
    b.cmd(b"STORE 2 +FLAGS (\\Flagged)")
    b.cmd(b"STORE 1 +FLAGS (\\Deleted)")
    b.cmd(b"EXPUNGE")
    out = a.cmd(b"NOOP")
    assert out[-1].startswith(b"OK"), out
    assert b"* VANISHED 1\r\n" in out, out
    assert any(l.startswith(b"* 2 UIDFETCH (FLAGS (") and b"\\Flagged" in l for l in out), out
    assert not any(b" FETCH " in l or l.endswith(b" EXPUNGE\r\n") for l in out), out
    # with CONDSTORE the unsolicited UIDFETCH carries MODSEQ, still no UID item
    a.cmd(b"ENABLE CONDSTORE")
    b.cmd(b"STORE 1 +FLAGS (\\Seen)")  # UID 2 is number 1 for b now
    out = a.cmd(b"NOOP")
    line = [l for l in out if b"UIDFETCH" in l]
    assert len(line) == 1 and line[0].startswith(b"* 2 UIDFETCH (FLAGS (") and \
        b"MODSEQ (" in line[0] and b"UID " not in line[0], out
    # "$" is no message number: a saved result is usable
    assert a.cmd(b"UID SEARCH RETURN (SAVE) ALL")[-1].startswith(b"OK")
    out = a.cmd(b"UID FETCH $ (FLAGS)")
    assert [l.split()[1] for l in out[:-1]] == [b"2", b"3"], out
    assert a.cmd(b"UID SEARCH $")[0] == b"* SEARCH 2 3\r\n"
    a.close()
    b.close()


def test_messagelimit(server):
    user = fresh_user(server)
    a = Raw(server, user, PASSWORD)
    assert b"MESSAGELIMIT=%d" % LIMIT in a.cmd(b"CAPABILITY")[0].split()
    for i in range(6):
        assert a.append(b"INBOX", msg(b"m%d" % i)).startswith(b"OK")
    assert a.cmd(b"CREATE Other")[-1].startswith(b"OK")
    a.cmd(b"SELECT INBOX")
    # by message number: NO, nothing done
    assert a.cmd(b"FETCH 1:* (FLAGS)") == [b"NO [MESSAGELIMIT 4] Too many messages at once"]
    assert a.cmd(b"STORE 1:5 +FLAGS (\\Seen)")[-1].startswith(b"NO [MESSAGELIMIT 4]")
    assert a.cmd(b"COPY 1:* Other")[-1].startswith(b"NO [MESSAGELIMIT 4]")
    assert a.cmd(b"UID SEARCH SEEN")[0] == b"* SEARCH\r\n"
    assert len(a.cmd(b"FETCH 1:4 (FLAGS)")) == 5
    # UID forms: the lowest UIDs, then OK [MESSAGELIMIT n]
    out = a.cmd(b"UID FETCH 2:* (FLAGS)")
    assert [l.split()[4] for l in out[:-1]] == [b"2", b"3", b"4", b"5"], out
    assert out[-1].startswith(b"OK [MESSAGELIMIT 4] UID FETCH completed"), out
    out = a.cmd(b"UID STORE 1:* +FLAGS.SILENT (\\Seen)")
    assert out[-1].startswith(b"OK [MESSAGELIMIT 4]"), out
    assert a.cmd(b"UID SEARCH SEEN")[0] == b"* SEARCH 1 2 3 4\r\n"
    out = a.cmd(b"UID COPY 1:* Other")  # COPYUID keeps the tagged code
    assert out[-2].startswith(b"* OK [MESSAGELIMIT 4]"), out
    assert re.match(rb"OK \[COPYUID \d+ 1:4 1:4\]", out[-1]), out
    out = a.cmd(b"UID MOVE 2:* Other")
    assert out[-1].startswith(b"OK [MESSAGELIMIT 4]"), out
    assert any(re.match(rb"\* OK \[COPYUID \d+ 2:5 5:8\]", l) for l in out), out
    assert a.cmd(b"UID SEARCH ALL")[0] == b"* SEARCH 1 6\r\n"
    a.close()


SOURCE = (b"From: a@example.test\r\nSubject: source\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
          b"--XX\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n"
          b"--XX\r\nContent-Type: application/octet-stream\r\n\r\n" + b"A" * 60000 +
          b"\r\n--XX--\r\n")


def uidvalidity(r, box):
    out = r.cmd(b"STATUS %s (UIDVALIDITY)" % box)
    return int(re.search(rb"UIDVALIDITY (\d+)", out[0]).group(1))


def catenate(r, box, *parts):
    """APPEND box CATENATE (...) with TEXT parts as non-synchronizing literals."""
    items = []
    for kind, value in parts:
        if kind == "TEXT":
            items.append(b"TEXT {%d+}\r\n" % len(value) + value)
        else:
            items.append(b"URL \"%s\"" % value)
    return r.cmd(b"APPEND %s CATENATE (%s)" % (box, b" ".join(items)))


def body(r, box, uid):
    r.cmd(b"SELECT " + box)
    out = r.cmd(b"UID FETCH %d BODY.PEEK[]" % uid)
    return out[0].split(b"}\r\n", 1)[1].rsplit(b")\r\n", 1)[0]


def test_catenate(server):
    user = fresh_user(server)
    r = Raw(server, user, PASSWORD)
    assert b"CATENATE" in r.cmd(b"CAPABILITY")[0].split()
    assert r.append(b"INBOX", SOURCE).startswith(b"OK")
    assert r.cmd(b"CREATE Cat")[-1].startswith(b"OK")
    v = uidvalidity(r, b"INBOX")
    head = b"From: b@example.test\r\nSubject: fwd\nMIME-Version: 1.0\r\n" \
           b"Content-Type: multipart/mixed; boundary=YY\r\n\r\n--YY\r\n"
    out = catenate(r, b"Cat", ("TEXT", head),
                   ("URL", b"/INBOX;UIDVALIDITY=%d/;UID=1/;SECTION=2.MIME" % v),
                   ("URL", b"/INBOX;UIDVALIDITY=%d/;UID=1/;SECTION=2" % v),
                   ("TEXT", b"\r\n--YY--\r\n"))
    assert re.match(rb"OK \[APPENDUID \d+ 1\]", out[-1]), out
    want = (head.replace(b"fwd\n", b"fwd\r\n") +
            b"Content-Type: application/octet-stream\r\n\r\n" + b"A" * 60000 +
            b"\r\n--YY--\r\n")
    assert body(r, b"Cat", 1) == want
    # the whole message, a partial range, the absolute form with the user's own name
    out = catenate(r, b"Cat", ("URL", b"/INBOX/;UID=1/;SECTION=HEADER"),
                   ("URL", b"imap://%s@h/INBOX/;UID=1/;SECTION=1/;PARTIAL=0.5"
                    % user.replace("@", "%40").encode()), ("TEXT", b"\r\n"))
    assert out[-1].startswith(b"OK [APPENDUID"), out
    assert body(r, b"Cat", 2) == SOURCE.split(b"\r\n\r\n")[0] + b"\r\n\r\nfirst\r\n"
    # MULTIAPPEND mixing a literal and a CATENATE message
    lit = msg(b"plain")
    out = r.cmd(b"APPEND Cat {%d+}\r\n%s CATENATE (URL \"/INBOX/;UID=1\")" % (len(lit), lit))
    assert re.match(rb"OK \[APPENDUID \d+ 3:4\]", out[-1]), out
    assert body(r, b"Cat", 3) == lit and body(r, b"Cat", 4) == SOURCE
    # refusals: nothing is appended
    out = catenate(r, b"Cat", ("TEXT", b"x: y\r\n\r\n"), ("URL", b"/INBOX/;UID=99"))
    assert out[-1].startswith(b"NO [BADURL /INBOX/;UID=99]"), out
    out = catenate(r, b"Cat", ("URL", b"/INBOX;UIDVALIDITY=%d/;UID=1" % (v + 1)))
    assert out[-1].startswith(b"NO [BADURL"), out
    out = catenate(r, b"Cat", ("URL", b"/INBOX/;UID=1/;SECTION=7"))
    assert out[-1].startswith(b"NO [BADURL"), out
    out = catenate(r, b"Cat", ("URL", b"http://x/y"))
    assert out[-1].startswith(b"NO [BADURL http://x/y]"), out
    out = catenate(r, b"Cat", ("URL", b"imap://other%40example.test@h/INBOX/;UID=1"))
    assert out[-1].startswith(b"NO [BADURL"), out
    out = catenate(r, b"Cat", ("URL", b"/INBOX/;UID=1"), ("URL", b"/INBOX/;UID=1"))
    assert out[-1].startswith(b"NO [TOOBIG]"), out  # 2 x 60 KB > limit_message_size
    assert r.cmd(b"APPEND Cat CATENATE ()")[-1].startswith(b"BAD")
    assert r.cmd(b"APPEND Cat CATENATE (TEXT \"x\")")[-1].startswith(b"BAD")
    out = r.cmd(b"STATUS Cat (MESSAGES)")
    assert b"MESSAGES 4" in out[0], out
    # the session goes on: a plain APPEND after the refusals
    assert r.append(b"Cat", msg(b"after")).startswith(b"OK [APPENDUID")
    r.close()


def genurlauth(r, rump):
    out = r.cmd(b"GENURLAUTH \"%s\" INTERNAL" % rump)
    assert out[-1].startswith(b"OK"), out
    m = re.match(rb'\* GENURLAUTH "([^"]+)"\r\n', out[0])
    assert m and m.group(1).startswith(rump + b":INTERNAL:"), out
    return m.group(1)


def urlfetch(r, url):
    out = r.cmd(b"URLFETCH \"%s\"" % url)
    assert out[-1].startswith(b"OK"), out
    if out[0].endswith(b" NIL\r\n"):
        return None
    return out[0].split(b"}\r\n", 1)[1][:-2]


def test_urlauth(server):
    user = fresh_user(server)
    other = fresh_user(server)
    r = Raw(server, user, PASSWORD)
    assert b"URLAUTH" in r.cmd(b"CAPABILITY")[0].split()
    assert r.append(b"INBOX", SOURCE).startswith(b"OK")
    v = uidvalidity(r, b"INBOX")
    enc = user.replace("@", "%40").encode()
    base = b"imap://%s@mx.example.test/INBOX;UIDVALIDITY=%d/;UID=1" % (enc, v)
    url = genurlauth(r, base + b";URLAUTH=authuser")
    assert urlfetch(r, url) == SOURCE
    part = genurlauth(r, base + b"/;SECTION=1;URLAUTH=anonymous")
    assert urlfetch(r, part) == b"first part"
    # another user: authuser and anonymous URLs work, user+ only for that user, a tampered
    # token or URL never
    o = Raw(server, other, PASSWORD)
    assert urlfetch(o, url) == SOURCE
    mine = genurlauth(r, base + b";URLAUTH=user+" + enc)
    assert urlfetch(o, mine) is None and urlfetch(r, mine) == SOURCE
    theirs = genurlauth(r, base + b";URLAUTH=user+" + other.replace("@", "%40").encode())
    assert urlfetch(o, theirs) == SOURCE
    assert urlfetch(o, url[:-1] + (b"0" if url[-1:] != b"0" else b"1")) is None
    assert urlfetch(o, url.replace(b";UID=1;", b";UID=2;")) is None
    # CATENATE takes a URLAUTH URL of another user's message (RFC 4469 §5)
    out = o.cmd(b"APPEND INBOX CATENATE (URL \"%s\")" % url)
    assert out[-1].startswith(b"OK [APPENDUID"), out
    assert body(o, b"INBOX", 1) == SOURCE
    out = o.cmd(b"APPEND INBOX CATENATE (URL \"%s\")" % mine)  # user+ someone else
    assert out[-1].startswith(b"NO [BADURL"), out
    sub = genurlauth(r, base + b";URLAUTH=submit+" + enc)
    out = r.cmd(b"APPEND INBOX CATENATE (URL \"%s\")" % sub)  # for submission only
    assert out[-1].startswith(b"NO [BADURL"), out
    assert urlfetch(r, sub) is None  # for the submission server only
    past = genurlauth(r, base + b";EXPIRE=2001-01-01T00:00:00Z;URLAUTH=authuser")
    assert urlfetch(r, past) is None
    # GENURLAUTH refuses what is not the user's own rump
    bad = b"imap://%s@h/INBOX/;UID=1;URLAUTH=authuser" % other.replace("@", "%40").encode()
    assert r.cmd(b"GENURLAUTH \"%s\" INTERNAL" % bad)[-1].startswith(b"NO [BADURL")
    assert r.cmd(b"GENURLAUTH \"%s\" INTERNAL" % url)[-1].startswith(b"NO [BADURL")
    assert r.cmd(b"GENURLAUTH \"%s;URLAUTH=authuser\" XYZ" % base)[-1].startswith(b"NO")
    # RESETKEY: of the mailbox, then of the account
    assert r.cmd(b"RESETKEY INBOX INTERNAL")[-1].startswith(b"OK")
    assert urlfetch(r, url) is None and urlfetch(r, part) is None
    url = genurlauth(r, base + b";URLAUTH=authuser")
    assert urlfetch(r, url) == SOURCE
    assert r.cmd(b"RESETKEY")[-1].startswith(b"OK")
    assert urlfetch(r, url) is None
    assert r.cmd(b"RESETKEY Nowhere")[-1].startswith(b"NO [NONEXISTENT]")
    r.close()
    o.close()


def submission(server, user):
    s = smtplib.SMTP(HOST, server.submission_port, timeout=15, local_hostname="client.test")
    s.ehlo("client.test")
    s.starttls(context=tls_client_context())
    code, text = s.ehlo("client.test")
    assert b"BURL" not in text  # only once authenticated (RFC 4468 §3.3)
    s.login(user, PASSWORD)
    code, text = s.ehlo("client.test")
    assert b"\nBURL imap" in text, text
    return s


def test_burl(server):
    sender, rcpt = fresh_user(server), fresh_user(server)
    r = Raw(server, sender, PASSWORD)
    assert r.append(b"INBOX", SOURCE).startswith(b"OK")
    v = uidvalidity(r, b"INBOX")
    enc = sender.replace("@", "%40").encode()
    base = b"imap://%s@mx.example.test/INBOX;UIDVALIDITY=%d/;UID=1" % (enc, v)
    part = genurlauth(r, base + b"/;SECTION=2;URLAUTH=submit+" + enc).decode()
    whole = genurlauth(r, base + b";URLAUTH=submit+" + enc).decode()
    foreign = genurlauth(r, base + b";URLAUTH=authuser").decode()
    r.close()
    head = ("From: <%s>\r\nTo: <%s>\r\nSubject: forwarded\r\n\r\nThe attachment: "
            % (sender, rcpt)).encode()
    s = submission(server, sender)
    assert s.mail(sender)[0] == 250 and s.rcpt(rcpt)[0] == 250
    s.send(b"BDAT %d\r\n" % len(head) + head)
    assert s.getreply()[0] == 250
    code, text = s.docmd("BURL", part)
    assert code == 250, text
    s.send(b"BDAT 2 LAST\r\n\r\n")
    assert s.getreply()[0] == 250
    # a whole message with BURL ... LAST alone
    assert s.mail(sender)[0] == 250 and s.rcpt(rcpt)[0] == 250
    code, text = s.docmd("BURL", whole + " LAST")
    assert code == 250, text
    # refusals: a URL not for submission, a tampered token, another message; the
    # transaction is gone after each
    for bad in (foreign, whole[:-4] + "0000", whole.replace(";UID=1;", ";UID=7;"),
                "imap://h/INBOX/;UID=1"):
        assert s.mail(sender)[0] == 250 and s.rcpt(rcpt)[0] == 250
        code, text = s.docmd("BURL", bad + " LAST")
        assert code == 554 and text.startswith(b"5.6.6"), (bad, code, text)
        s.rset()
    s.quit()
    msgs = server.wait_mail(rcpt, 2)
    assert len(msgs) == 2, msgs
    first = server.mail_cat(rcpt, msgs[0]["uid"])
    assert first.endswith(head + b"A" * 60000 + b"\r\n"), first[-200:]
    second = server.mail_cat(rcpt, msgs[1]["uid"])
    assert second.endswith(SOURCE), second[-200:]
    # port 25 knows no BURL
    with smtplib.SMTP(HOST, server.smtp_port, timeout=10, local_hostname="client.test") as p:
        p.ehlo("client.test")
        assert p.docmd("BURL", whole + " LAST")[0] == 502
