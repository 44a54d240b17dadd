#!/usr/bin/python3
"""Regenerate tests/imap_diff/expected.json: what dovecot-imapd answers for ENVELOPE, BODY and
BODYSTRUCTURE of every message of the MIME corpus (tests/mime_corpus/gen.py), BODY.PEEK[n.MIME]
for every part n (nested too), BINARY.SIZE[n] for every leaf part, and the sequence numbers
that a fixed list of SEARCH queries (SEARCHES) matches over the whole corpus mailbox, and the
answers of SORT (SORTS) and THREAD (THREADS) over that mailbox and over a second one, "Threads",
holding thread_corpus(): replies, a missing parent, a References loop, a self-reference,
duplicate and missing Message-IDs, broken ids and subject-only threads.

Usage (as root, on loopback only, nothing system-wide is touched):
    sh bench/peers/install.sh          # installs Debian's dovecot packages, starts nothing
    tests/imap_diff/regen.py

It runs `doveadm` with a private configuration in a temporary directory (Maildir, static
passdb/userdb, no listeners), as user nobody, saves each message and fetches the three items,
then runs /usr/lib/dovecot/imap in PREAUTH mode with the other commands on stdin, one at a
time (KEEP=1 keeps the temporary directory for by-hand runs).
Part numbers come from a recursive walk over Dovecot's BODYSTRUCTURE (parts()). MIME header
values are stored decoded as latin-1 (bytes 1:1); a FETCH that Dovecot refuses is stored as
its status and response code only (e.g. "NO [UNKNOWN-CTE]" for an unknown transfer encoding).
The output is committed, so the differential test (tests/integration/
test_imap_dovecot_diff.py) needs no Dovecot in CI.
"""

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "..", "mime_corpus", "gen.py")
IMAP = "/usr/lib/dovecot/imap"

# (name, SEARCH arguments): header decoding (encoded words, raw UTF-8, addresses), body and
# text search (QP/base64 decoding), header presence, sizes and flags. Non-ASCII arguments are
# sent as literals with CHARSET UTF-8.
SEARCHES = [
    ["from-alice", "FROM alice"],
    ["to-bob", "TO bob"],
    ["subject-lunch", "SUBJECT lunch"],
    ["subject-muenchen-ew", "CHARSET UTF-8 SUBJECT \x00M\u00fcnchen"],
    ["subject-cafe-utf8", "CHARSET UTF-8 SUBJECT \x00caf\u00e9"],
    ["from-yamada-utf8", "CHARSET UTF-8 FROM \x00\u5c71\u7530"],
    ["body-lunch", "BODY lunch"],
    ["body-gruesse-qp", "CHARSET UTF-8 BODY \x00Gr\u00fc\u00dfe"],
    ["text-example", "TEXT example"],
    ["text-nested", "TEXT nested"],
    ["header-ct-multipart", "HEADER Content-Type multipart"],
    ["header-mime-version-any", "HEADER MIME-Version \"\""],
    ["larger-2000", "LARGER 2000"],
    ["smaller-500", "SMALLER 500"],
    ["not-seen", "NOT SEEN"],
    ["or-subject-lunch-from-taro", "OR SUBJECT lunch FROM taro"],
]


# (name, SORT arguments after "SORT "), run in both mailboxes: every sort key, REVERSE, several
# keys at once, SORT=DISPLAY, and a SORT with search criteria.
SORTS = [
    ["arrival", "(ARRIVAL) UTF-8 ALL"],
    ["reverse-arrival", "(REVERSE ARRIVAL) UTF-8 ALL"],
    ["date", "(DATE) UTF-8 ALL"],
    ["reverse-date", "(REVERSE DATE) UTF-8 ALL"],
    ["subject", "(SUBJECT) UTF-8 ALL"],
    ["reverse-subject", "(REVERSE SUBJECT) UTF-8 ALL"],
    ["subject-reverse-date", "(SUBJECT REVERSE DATE) UTF-8 ALL"],
    ["from", "(FROM) UTF-8 ALL"],
    ["reverse-from-date", "(REVERSE FROM DATE) UTF-8 ALL"],
    ["to", "(TO) UTF-8 ALL"],
    ["cc-size", "(CC SIZE) UTF-8 ALL"],
    ["size", "(SIZE) UTF-8 ALL"],
    ["reverse-size", "(REVERSE SIZE) US-ASCII ALL"],
    ["displayfrom", "(DISPLAYFROM) UTF-8 ALL"],
    ["displayto-reverse-arrival", "(DISPLAYTO REVERSE ARRIVAL) UTF-8 ALL"],
    ["date-smaller-2000", "(DATE) UTF-8 SMALLER 2000"],
]
# (name, THREAD arguments after "THREAD "), run in both mailboxes.
THREADS = [
    ["orderedsubject", "ORDEREDSUBJECT UTF-8 ALL"],
    ["references", "REFERENCES UTF-8 ALL"],
    ["references-smaller-2000", "REFERENCES UTF-8 SMALLER 2000"],
]


def thread_corpus():
    """The messages of the "Threads" mailbox, as bytes, in mailbox order."""
    def msg(mid, subject, date, refs=None, irt=None, frm="Alice <alice@example.test>",
            to="bob@example.test"):
        h = []
        if mid is not None:
            h.append("Message-ID: %s" % mid)
        if refs is not None:
            h.append("References: %s" % refs)
        if irt is not None:
            h.append("In-Reply-To: %s" % irt)
        if subject is not None:
            h.append("Subject: %s" % subject)
        if date is not None:
            h.append("Date: %s" % date)
        h.append("From: %s" % frm)
        h.append("To: %s" % to)
        return ("\r\n".join(h) + "\r\n\r\nbody of %s\r\n" % (mid or subject)).encode()

    d = "Mon, %d Jan 2024 %02d:00:00 +0000"
    return [
        msg("<t1@x>", "Project plan", d % (1, 9)),
        msg("<t2@x>", "Re: Project plan", d % (2, 9), refs="<t1@x>", frm="bob@example.test"),
        msg("<t3@x>", "Re: Re: Project plan", d % (3, 9), refs="<t1@x> <t2@x>",
            frm='"Carol" <carol@example.test>'),
        msg("<t4@x>", "RE: Project plan", d % (4, 9), irt="<t2@x> (bob's message)"),
        msg("<t5@x>", "Re: Project plan", "Thu, 4 Jan 2024 04:00:00 -0500",
            refs="<t0@missing> <t1@x>", frm="dave@example.test"),
        msg("<t6@x>", "loop one", d % (5, 9), refs="<t7@x>", to="Zed <zed@example.test>"),
        msg("<t7@x>", "Re: loop one", d % (6, 9), refs="<t6@x>"),
        msg("<t8@x>", "self", d % (7, 9), refs="<t8@x>", frm="=?UTF-8?Q?=C3=89ve?= <eve@x>"),
        msg("<t1@x>", "[fwd: Project plan]", d % (8, 9), frm="frank@example.test"),
        msg("<t10@x>", "Orphan", d % (9, 9), refs="<missing1@x>"),
        msg("<t11@x>", "Re: Orphan", d % (10, 9), refs="<missing1@x>", to="a@example.test"),
        msg(None, "Re: self", d % (11, 9)),
        msg("<t13@x>", "Fwd: loop one (fwd)", d % (12, 9), refs="<t12@x junk", irt="<t6@x>"),
        msg("<t14@x>", "[list] Weekly", d % (13, 9)),
        msg("<t15@x>", "Re: [list] Weekly", d % (14, 9), frm="Bob <bob@example.test>"),
        msg("<t16@x>", "weekly", d % (15, 9), to="undisclosed-recipients:;"),
        msg("<t17@x>", "Re: weekly", d % (16, 9), refs="<t16@x> <t15@x> <t14@x> <t17@x>"),
        msg("<t18@x>", "no date", None, frm="Zoe <zoe@example.test>"),
        msg("<t19@x>", "=?UTF-8?Q?Re=3A_Orphan?=", d % (17, 9), refs="<missing1@x> <t10@x>"),
        msg("<t20@x>", None, d % (17, 9)),
        msg("<t21@x>", "", d % (17, 8), refs="<t20@x>"),
        msg("<t22@x>", "Re: loop one", "broken date", refs="<t6@x> <t7@x> <t6@x>"),
    ]


def search_command(args):
    """The SEARCH arguments as bytes; a NUL marks where a UTF-8 literal (LITERAL+) starts."""
    if "\x00" not in args:
        return args.encode()
    head, word = args.split("\x00")
    data = word.encode("utf-8")
    return head.encode() + b"{%d+}\r\n" % len(data) + data


def sexp(text):
    """Parse an IMAP parenthesised list (quoted strings, NIL, atoms, numbers) into lists."""
    pos = 0
    stack = [[]]
    while pos < len(text):
        ch = text[pos]
        if ch == "(":
            stack.append([])
            pos += 1
        elif ch == ")":
            top = stack.pop()
            stack[-1].append(top)
            pos += 1
        elif ch == " ":
            pos += 1
        elif ch == '"':
            end = pos + 1
            val = ""
            while text[end] != '"':
                if text[end] == "\\":
                    end += 1
                val += text[end]
                end += 1
            stack[-1].append(val)
            pos = end + 1
        elif ch == "{":
            close = text.index("}", pos)
            size = int(text[pos + 1:close])
            start = close + 3
            stack[-1].append(text[start:start + size])
            pos = start + size
        else:
            m = re.match(r"[^ ()]+", text[pos:])
            stack[-1].append(None if m.group(0) == "NIL" else m.group(0))
            pos += len(m.group(0))
    return stack[0]


def parts(bodystructure):
    """[(part number, is_leaf)] of a BODYSTRUCTURE text, depth first, nested parts included.

    A multipart's children are n.1, n.2...; a message/rfc822 part n contains its message's
    body: the children of that body if it is multipart, else the body itself as n.1. The top
    level of a non-multipart message is part 1. Leaves are the parts that are neither
    multipart nor an encapsulated message."""
    out = []

    def children(node):
        kids = []
        for k in node:
            if not isinstance(k, list):
                break
            kids.append(k)
        return kids

    def is_message(node):
        return (not isinstance(node[0], list) and (node[0] or "").lower() == "message"
                and len(node) >= 10 and isinstance(node[7], list) and isinstance(node[8], list))

    def emit(num, node):
        if isinstance(node[0], list):
            out.append((num, False))
            for i, k in enumerate(children(node), 1):
                emit("%s.%d" % (num, i), k)
        elif is_message(node):
            out.append((num, False))
            inner = node[8]
            if isinstance(inner[0], list):
                for i, k in enumerate(children(inner), 1):
                    emit("%s.%d" % (num, i), k)
            else:
                emit(num + ".1", inner)
        else:
            out.append((num, True))

    top = sexp(bodystructure)
    if isinstance(top[0], list):
        for i, k in enumerate(children(top), 1):
            emit(str(i), k)
    else:
        emit("1", top)
    return out


def read_response(f):
    """One response line from file f, literals inline, without the final CRLF."""
    out = b""
    while True:
        line = f.readline()
        if not line:
            raise EOFError("connection closed")
        out += line
        m = re.search(rb"\{(\d+)\+?\}\r\n$", line)
        if m:
            out += f.read(int(m.group(1)))
            continue
        return out[:-2] if out.endswith(b"\r\n") else out


def run_command(send, f, tag, text):
    """Send "tag text" (send() takes bytes) and return [untagged..., tagged] response lines.
    Dovecot answers pipelined commands out of order, so commands go one at a time."""
    send(tag.encode() + b" " + text + b"\r\n")
    lines = []
    while True:
        line = read_response(f)
        lines.append(line)
        if line.startswith(tag.encode() + b" "):
            return lines


def status(tagged):
    """ "NO [CODE]" / "BAD" of a failed tagged response: the status and response code only, the
    human-readable text differs between servers."""
    words = tagged.split(b" ", 2)
    m = re.match(rb"\[[^\]]*\]", words[2] if len(words) > 2 else b"")
    return words[1].decode() + (" " + m.group(0).decode("latin-1") if m else "")


def fetch_value(lines, seq, item):
    """What a FETCH of one item answered: the value text (string values as latin-1, NIL as
    None, numbers as int), or status() when the command failed."""
    tagged = lines[-1].split(b" ", 2)
    if tagged[1] != b"OK":
        return status(lines[-1])
    prefix = b"* %d FETCH (" % seq
    key = item.replace(".PEEK", "").encode()
    for line in lines[:-1]:
        if not line.startswith(prefix):
            continue
        rest = line[len(prefix):]
        i = rest.find(key + b" ")
        if i < 0:
            continue
        val = rest[i + len(key) + 1:]
        if val.startswith(b"NIL"):
            return None
        if val.startswith(b"{"):
            close = val.index(b"}")
            size = int(val[1:close])
            return val[close + 3:close + 3 + size].decode("latin-1")
        if val.startswith(b'"'):
            m = re.match(rb'"((?:[^"\\]|\\.)*)"', val)
            return re.sub(rb"\\(.)", rb"\1", m.group(1)).decode("latin-1")
        return int(re.match(rb"\d+", val).group(0))
    return "missing " + repr(lines)


def search_value(lines):
    """Sequence numbers of a SEARCH answer, or status() when it failed."""
    tagged = lines[-1].split(b" ", 2)
    if tagged[1] != b"OK":
        return status(lines[-1])
    nums = []
    for line in lines[:-1]:
        if line.startswith(b"* SEARCH"):
            nums += [int(x) for x in line[8:].split()]
    return sorted(nums)


def sort_mailboxes(corpus_data):
    """[(mailbox, [message bytes])] that SORTS and THREADS run in: "Sorted" the MIME corpus,
    "Threads" thread_corpus(). They are appended with fixed internal dates (append_command()),
    so ARRIVAL and the Date fallback are the same on both servers."""
    return [("Sorted", corpus_data), ("Threads", thread_corpus())]


def append_command(mailbox, i, data):
    """APPEND of the i-th message with its internal date: two messages per minute from 1 Mar
    2024 (pairs tie, so ties are broken by sequence number); in "Threads" message 18 (no
    Date field) has the earliest internal date and message 22 (a broken one) a date between
    the others' Date fields."""
    t = 1709251200 + 60 * (i // 2)
    if mailbox == "Threads" and i == 17:
        t = 1704000000
    elif mailbox == "Threads" and i == 21:
        t = 1704456000
    date = time.strftime("%d-%b-%Y %H:%M:%S +0000", time.gmtime(t))
    return (b'APPEND %s "%s" {%d+}\r\n' % (mailbox.encode(), date.encode(), len(data))) + data


def sort_value(lines):
    """The numbers of a SORT answer in its order, or status() when it failed."""
    tagged = lines[-1].split(b" ", 2)
    if tagged[1] != b"OK":
        return status(lines[-1])
    nums = []
    for line in lines[:-1]:
        if line.startswith(b"* SORT"):
            nums += [int(x) for x in line[6:].split()]
    return nums


def thread_value(lines):
    """The thread list of a THREAD answer as text ("" for none), or status()."""
    tagged = lines[-1].split(b" ", 2)
    if tagged[1] != b"OK":
        return status(lines[-1])
    for line in lines[:-1]:
        if line.startswith(b"* THREAD"):
            return line[8:].strip().decode()
    return "missing"


def sort_thread_answers(run, mailbox):
    """{"MAILBOX sort NAME": [...], "MAILBOX thread NAME": "..."} for SORTS and THREADS, with
    run(bytes) -> response lines, in the selected mailbox."""
    out = {}
    for name, args in SORTS:
        out["%s sort %s" % (mailbox, name)] = sort_value(run(b"SORT " + args.encode()))
    for name, args in THREADS:
        out["%s thread %s" % (mailbox, name)] = thread_value(run(b"THREAD " + args.encode()))
    return out


def main():
    tmp = tempfile.mkdtemp(prefix="posthorn-dovecot-")
    os.chmod(tmp, 0o755)
    corpus = os.path.join(tmp, "corpus")
    subprocess.run([sys.executable, GEN, corpus], check=True)
    conf = os.path.join(tmp, "dovecot.conf")
    with open(conf, "w") as f:
        f.write("base_dir = %s/run\nstate_dir = %s/state\nlog_path = %s/dovecot.log\n"
                "protocols =\nmail_location = maildir:%s/mail\nssl = no\n"
                "passdb {\n  driver = static\n  args = nopassword=y\n}\n"
                "userdb {\n  driver = static\n  args = home=%s/home\n}\n"
                % (tmp, tmp, tmp, tmp, tmp))
    nobody = pwd.getpwnam("nobody")
    for d in ("run", "state", "home", "mail"):
        os.makedirs(os.path.join(tmp, d), exist_ok=True)
        os.chown(os.path.join(tmp, d), nobody.pw_uid, nobody.pw_gid)

    def doveadm(args, data=None):
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "env",
               "HOME=%s/home" % tmp, "USER=nobody", "doveadm", "-c", conf] + args
        return subprocess.run(cmd, input=data, capture_output=True, check=True).stdout

    files = sorted(os.listdir(corpus))
    for name in files:
        with open(os.path.join(corpus, name), "rb") as f:
            doveadm(["save", "-m", "INBOX"], f.read())
    rows = json.loads(doveadm(["-f", "json", "fetch",
                               "uid imap.envelope imap.bodystructure imap.body", "all"]))
    out = {}
    for row in rows:
        out[files[int(row["uid"]) - 1]] = {"ENVELOPE": row["imap.envelope"],
                                           "BODY": row["imap.body"],
                                           "BODYSTRUCTURE": row["imap.bodystructure"]}
    cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "env",
           "HOME=%s/home" % tmp, "USER=nobody", IMAP, "-c", conf]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)

    def send(data):
        proc.stdin.write(data)
        proc.stdin.flush()

    assert read_response(proc.stdout).startswith(b"* PREAUTH")
    run_command(send, proc.stdout, "x", b"EXAMINE INBOX")
    nfetch = 0
    for seq, name in enumerate(files, 1):
        msg = out[name]
        msg["MIME"] = {}
        msg["BINARY.SIZE"] = {}
        for num, leaf in parts(msg["BODYSTRUCTURE"]):
            wanted = [("MIME", "BODY.PEEK[%s.MIME]" % num)]
            if leaf:
                wanted.append(("BINARY.SIZE", "BINARY.SIZE[%s]" % num))
            for kind, item in wanted:
                nfetch += 1
                lines = run_command(send, proc.stdout, "f", b"FETCH %d (%s)" % (seq, item.encode()))
                msg[kind][num] = fetch_value(lines, seq, item)
    searches = {}
    for sname, args in SEARCHES:
        searches[sname] = search_value(run_command(send, proc.stdout, "q",
                                                   b"SEARCH " + search_command(args)))
    sorts = {}
    corpus_data = []
    for name in files:
        with open(os.path.join(corpus, name), "rb") as f:
            corpus_data.append(f.read())
    for mailbox, msgs in sort_mailboxes(corpus_data):
        run_command(send, proc.stdout, "c", b"CREATE " + mailbox.encode())
        for i, data in enumerate(msgs):
            lines = run_command(send, proc.stdout, "a", append_command(mailbox, i, data))
            assert b" OK " in lines[-1], lines
        run_command(send, proc.stdout, "x", b"EXAMINE " + mailbox.encode())
        sorts.update(sort_thread_answers(lambda cmd: run_command(send, proc.stdout, "s", cmd),
                                         mailbox))
    run_command(send, proc.stdout, "z", b"LOGOUT")
    proc.stdin.close()
    proc.wait()
    version = subprocess.run(["dovecot", "--version"], capture_output=True,
                             text=True).stdout.strip()
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump({"dovecot": version, "messages": out, "searches": searches, "sorts": sorts}, f, indent=1, ensure_ascii=False,
                  sort_keys=True)
        f.write("\n")
    if not os.environ.get("KEEP"):
        shutil.rmtree(tmp, ignore_errors=True)
    print("wrote %d messages, %d part fetches, %d searches, %d sorts and threads from Dovecot %s"
          % (len(out), nfetch, len(searches), len(sorts), version))


if __name__ == "__main__":
    main()
