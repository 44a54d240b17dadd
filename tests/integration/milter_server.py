"""A mail filter for tests, on Debian's python3-milter (pymilter, over Sendmail's libmilter):
run as `milter_server.py PORT`, it listens on 127.0.0.1:PORT (`milter_server.py /PATH`: on
a UNIX-domain socket) and decides by the Subject:
  reject      -> 550 5.7.1 with its own text (SMFIR_REPLYCODE)
  tempfail    -> 451 4.7.1 with its own text
  plainreject -> a bare reject (the MTA's own text)
  discard     -> discard
  quarantine  -> quarantine ("held by test"), accept
  skip        -> SMFIR_SKIP on the first body chunk
  anything else: accept, with X-Milter-Seen (what it saw: HELO, sender, recipients, the
  header count, the body's octets and first line, the connect host name, macros i and _)
  appended, X-Milter-Top inserted first,
  the Subject changed to "[filtered] ..." and every X-Remove-Me field deleted."""

import sys

import Milter


class TestFilter(Milter.Base):
    def __init__(self):
        self.helo = ""
        self.client = ""
        self.rcpts = []
        self.headers = []
        self.body_bytes = b""
        self.chunks = 0

    def connect(self, hostname, family, hostaddr):
        self.client = hostname
        return Milter.CONTINUE

    def hello(self, hostname):
        self.helo = hostname
        return Milter.CONTINUE

    def envfrom(self, mailfrom, *params):
        self.sender = mailfrom
        return Milter.CONTINUE

    def envrcpt(self, to, *params):
        self.rcpts.append(to)
        return Milter.CONTINUE

    def header(self, name, value):
        self.headers.append((name, value))
        return Milter.CONTINUE

    def body(self, chunk):
        self.body_bytes += chunk
        self.chunks += 1
        if self.subject() == "skip":
            return Milter.SKIP
        return Milter.CONTINUE

    def subject(self):
        for name, value in self.headers:
            if name.lower() == "subject":
                return value
        return ""

    def eom(self):
        subject = self.subject()
        if subject == "reject":
            self.setreply("550", "5.7.1", "Rejected by the test filter")
            return Milter.REJECT
        if subject == "tempfail":
            self.setreply("451", "4.7.1", "Try again, says the test filter")
            return Milter.TEMPFAIL
        if subject == "plainreject":
            return Milter.REJECT
        if subject == "discard":
            return Milter.DISCARD
        if subject == "quarantine":
            self.quarantine("held by test")
            return Milter.ACCEPT
        first = self.body_bytes.split(b"\r\n", 1)[0].decode(errors="replace")
        self.addheader("X-Milter-Seen", "helo=%s from=%s rcpts=%s headers=%d body=%d chunks=%d "
                       "first=%s macro_i=%s host=%s macro__=%s" % (
                           self.helo, self.sender, ",".join(self.rcpts), len(self.headers),
                           len(self.body_bytes), self.chunks, first, self.getsymval("i"),
                           self.client, self.getsymval("_")))
        self.addheader("X-Milter-Top", "inserted", 0)
        self.chgheader("Subject", 1, "[filtered] " + subject)
        count = sum(1 for n, _ in self.headers if n.lower() == "x-remove-me")
        for i in range(count, 0, -1):
            self.chgheader("X-Remove-Me", i, "")
        return Milter.ACCEPT


def main():
    # A port number (127.0.0.1:PORT), or the path of a UNIX-domain socket.
    where = sys.argv[1]
    address = "unix:" + where if where.startswith("/") else "inet:%d@127.0.0.1" % int(where)
    Milter.factory = TestFilter
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.QUARANTINE)
    print("ready", flush=True)
    Milter.runmilter("posthorn-test", address, timeout=30)


if __name__ == "__main__":
    main()
