"""SEARCH BODY and TEXT answered from the store's search index (text decoded once at
delivery or APPEND, docs/design-notes.md "Search index"), through imaplib: quoted-printable
ISO-8859-1, base64 UTF-8, RFC 2047 headers, substrings inside words, needles of one and two
characters, BODY versus TEXT, combinations with header keys, NOT and OR. The proof that the
index answers: with the message files removed, BODY and TEXT still find what they found
(a search that reads files fails), also for another account searching the shared mailbox;
a message larger than search_index_max_text is searched
from its file, with the same answers. Header keys (FROM, SUBJECT, HEADER) answer from the
header fields kept with the texts, RFC 2047 decoded and unfolded, also without the files."""

import imaplib
import smtplib
import time

import pytest

from conftest import HOST, TEST_STORE, make_server
from imap_helpers import imap_ports, tls_ctx

# Bodies in files (so that removing them shows who reads them); a small cap so that one
# message of the corpus is not indexed.
SERVER_CONF = {"store_inline_max": "0", "search_index_max_text": "4K"}

USER = "idx@example.test"
PASSWORD = "index-Secret-9"


def msg(headers, body):
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode("latin-1")


CORPUS = [
    # 1: quoted-printable ISO-8859-1, a soft line break inside a word
    msg(["From: =?ISO-8859-1?Q?Ren=E9_Dupont?= <rene@example.test>",
         "Subject: Tarif", "MIME-Version: 1.0",
         "Content-Type: text/plain; charset=ISO-8859-1",
         "Content-Transfer-Encoding: quoted-printable"],
        "Le caf=E9 co=FBte tr=E8s cher, Stra=DFe=\r\nnbahn inclus.\r\n"),
    # 2: multipart, base64 UTF-8 text and an attachment
    msg(["From: bob@example.test", "Subject: Quarterly numbers", "MIME-Version: 1.0",
         "Content-Type: multipart/mixed; boundary=\"b1\""],
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        "SGlkZGVuIHRyZWFzdXJlOiDOkc6YzpfOnc6RDQo=\r\n"  # "Hidden treasure: ΑΘΗΝΑ"
        "--b1\r\nContent-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nYmluYXJ5c2VjcmV0\r\n--b1--\r\n"),
    # 3: plain ASCII
    msg(["From: carol@example.test", "Subject: Lunch",
         "X-Note: first part\r\n of a =?utf-8?q?fold=C3=A9d?= field"],
        "A sandwich at noon? xq\r\n"),
    # 4: over the cap: searched from its file
    msg(["From: dave@example.test", "Subject: Big"],
        "Le cafe is large.\r\n" + "filler line of the big message\r\n" * 200 +
        "Hidden treasure at the end\r\n"),
]


GRANTEE = "idx-reader@example.test"


def server_setup(srv):
    srv.add_user(USER, PASSWORD)
    srv.add_user(GRANTEE, PASSWORD)


@pytest.fixture(scope="module")
def box(server):
    m = imaplib.IMAP4_SSL(HOST, imap_ports(server)[1], ssl_context=tls_ctx(), timeout=30)
    m.login(USER, PASSWORD)
    for data in CORPUS[:3]:
        typ, _ = m.append("INBOX", None, None, data)
        assert typ == "OK"
    with smtplib.SMTP(HOST, server.smtp_port, timeout=10, local_hostname="client.test") as s:
        s.sendmail("dave@example.test", [USER], CORPUS[3])
    assert len(server.wait_mail(USER, 4)) == 4
    m.select("INBOX")
    yield m
    m.logout()


CASES = [
    (("BODY", "café coûte"), "1"),
    (("BODY", "STRASSENBAHN"), ""),          # ß is not folded to ss (simple folding)
    (("BODY", "straßenbahn"), "1"),
    (("BODY", "CAF=E9"), ""),                 # decoded, not the raw octets
    (("BODY", "αθηνα"), "2"),
    (("BODY", "idden treas"), "2 4"),         # 4 from its file
    (("BODY", "binarysecret"), ""),           # an attachment is not text
    (("TEXT", "rené dupont"), "1"),           # RFC 2047 header, TEXT only
    (("BODY", "rené dupont"), ""),
    (("TEXT", "octet-stream"), "2"),          # a part's header line
    (("BODY", "xq"), "3"),                    # two characters: no trigram
    (("BODY", "q"), "3"),
    (("TEXT", "q"), "1 2 3"),                 # "quoted-printable", "Quarterly"
    (("BODY", "caf"), "1 4"),
    (("FROM", "carol", "BODY", "noon"), "3"),
    (("FROM", "carol"), "3"),
    (("FROM", "rené dupont <rene@"), "1"),    # RFC 2047, the address list as written back
    (("SUBJECT", "quarterly numb"), "2"),
    (("HEADER", "x-note", "part of a foldéd"), "3"),  # unfolded, decoded
    (("HEADER", "Content-Type", "octet-stream"), ""),  # a part's field is no header key's
    (("NOT", "SUBJECT", "u"), "1 4"),
    (("NOT", "BODY", "caf"), "2 3"),
    (("OR", "BODY", "sandwich", "TEXT", "subject: tarif"), "1 3"),
    (("BODY", "\"quoted\""), ""),
    (("BODY", "caf%"), ""),
]


KEYS = {"BODY", "TEXT", "FROM", "NOT", "OR", "SUBJECT", "HEADER"}


def search(m, *criteria):
    """SEARCH CHARSET UTF-8 criteria: strings quoted, a non-ASCII one (last) as a literal."""
    def quote(c):
        return c if c in KEYS else '"%s"' % c.replace("\\", "\\\\").replace('"', '\\"')
    args = [quote(c) for c in criteria[:-1]]
    if criteria[-1].isascii():
        args.append(quote(criteria[-1]))
    else:
        m.literal = criteria[-1].encode("utf-8")
    typ, data = m.search("UTF-8", *args)
    assert typ == "OK", data
    return data[0].decode()


@pytest.mark.parametrize("criteria,expected", CASES)
def test_search_decoded(box, criteria, expected):
    assert search(box, *criteria) == expected


@pytest.mark.skipif(TEST_STORE == "postgresql", reason="bodies live in the database")
def test_index_answers_without_files(server, box):
    """The files of the indexed messages are gone: BODY and TEXT still answer from the
    index; the message over the cap is still read from its file."""
    removed = 0
    for path in (server.dir / "data" / "messages").rglob("*"):
        if path.is_file() and b"Subject: Big" not in path.read_bytes():
            path.unlink()
            removed += 1
    assert removed == 3
    assert search(box, "BODY", "café coûte") == "1"
    assert search(box, "BODY", "xq") == "3"
    assert search(box, "TEXT", "hidden treasure") == "2 4"
    assert search(box, "NOT", "BODY", "αθηνα") == "1 3 4"
    # header keys answer from the fields kept with the texts (decoded, unfolded), the
    # message over the cap from its file
    assert search(box, "FROM", "carol") == "3"
    assert search(box, "FROM", "rené dupont <rene@") == "1"
    assert search(box, "HEADER", "X-Note", "part of a foldéd") == "3"
    assert search(box, "SUBJECT", "big") == "4"
    assert search(box, "NOT", "SUBJECT", "u") == "1 4"
    # SORT's criteria too (ARRIVAL needs no header section)
    typ, data = box.sort("(ARRIVAL)", "UTF-8", "OR", "FROM", '"carol"', "SUBJECT",
                         '"tarif"')
    assert typ == "OK" and data[0] == b"1 3", data
    # another account's search of the shared mailbox asks the owner's index (RFC 4314)
    typ, _ = box.setacl("INBOX", GRANTEE, "lr")
    assert typ == "OK"
    g = imaplib.IMAP4_SSL(HOST, imap_ports(server)[1], ssl_context=tls_ctx(), timeout=30)
    g.login(GRANTEE, PASSWORD)
    typ, _ = g.select('"Shared/%s/INBOX"' % USER, readonly=True)
    assert typ == "OK"
    assert search(g, "BODY", "café coûte") == "1"
    assert search(g, "TEXT", "hidden treasure") == "2 4"
    assert search(g, "FROM", "carol") == "3"
    g.logout()
    # a header key that leaves under one message in 16 undecided reads their files
    # rather than the mailbox's rows: message 3's file is gone, so it is not found
    for i in range(13):
        typ, _ = box.append("INBOX", None, None, msg(["From: x%d@example.test" % i], "x"))
        assert typ == "OK"
    box.noop()
    assert search(box, "FROM", "carol") == "3"
    typ, data = box.uid("SEARCH", "UID", "3", "FROM", "carol")
    assert typ == "OK" and data == [b""], data


@pytest.mark.skipif(TEST_STORE == "postgresql", reason="bodies live in the database")
def test_backfill_after_upgrade(tmp_path_factory):
    srv = make_server(tmp_path_factory, "search_backfill",
                      {"store_inline_max": "0", "search_index_max_text": "0"})
    srv.add_user(USER, PASSWORD)
    srv.start()
    try:
        with smtplib.SMTP(HOST, srv.smtp_port, timeout=10, local_hostname="client.test") as s:
            s.sendmail("rene@example.test", [USER], CORPUS[0])
        assert len(srv.wait_mail(USER, 1)) == 1
        srv.stop()
        srv.append_conf({"search_index_max_text": "1M"})  # the last value counts
        srv.start()
        for path in (srv.dir / "data" / "messages").rglob("*"):
            if path.is_file():
                path.unlink()
        m = imaplib.IMAP4_SSL(HOST, imap_ports(srv)[1], ssl_context=tls_ctx(), timeout=30)
        m.login(USER, PASSWORD)
        m.select("INBOX")
        deadline = time.monotonic() + 10
        while search(m, "BODY", "café coûte") != "1" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert search(m, "BODY", "café coûte") == "1"
        assert search(m, "TEXT", "rené dupont") == "1"
        assert search(m, "FROM", "rené") == "1"  # the backfill keeps the fields apart
        m.logout()
    finally:
        srv.stop_and_check()
