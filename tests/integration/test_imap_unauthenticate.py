"""IMAP UNAUTHENTICATE (RFC 8437): advertised only after login; the session goes back to the
not-authenticated state, drops the selected mailbox and its change notifications and the
ENABLEd extensions, is no longer counted against the account's sessions per address, and
can log in again, also as another user."""

import itertools

from imap_helpers import Raw as RawClient

PASSWORD = "unauth-Secret-3"
# One session per account and address: a released count lets a second session in.
SERVER_CONF = {"limit_sessions_per_user_ip": "1"}
_counter = itertools.count(1)


def fresh_user(server):
    addr = "ua%d@example.test" % next(_counter)
    server.add_user(addr, PASSWORD)
    return addr


def msg(subject):
    return b"From: a@example.test\r\nSubject: %s\r\n\r\nbody\r\n" % subject


class Raw(RawClient):
    def __init__(self, server, user=None):
        super().__init__(server, user, PASSWORD)

    def login(self, user):
        return self.cmd(b"LOGIN %s \"%s\"" % (user.encode(), PASSWORD.encode()))[-1]


def test_capability_only_after_login(server):
    user = fresh_user(server)
    r = Raw(server)
    assert b"UNAUTHENTICATE" not in r.cmd(b"CAPABILITY")[0].split()
    # Not valid before login.
    assert r.cmd(b"UNAUTHENTICATE")[-1].startswith(b"BAD")
    assert r.login(user).startswith(b"OK")
    assert b"UNAUTHENTICATE" in r.cmd(b"CAPABILITY")[0].split()
    assert r.cmd(b"UNAUTHENTICATE extra")[-1].startswith(b"BAD")
    r.close()


def test_back_to_not_authenticated_and_login_as_another_user(server):
    a, b = fresh_user(server), fresh_user(server)
    other = Raw(server, b)
    assert other.append(b"INBOX", msg(b"one")).startswith(b"OK")
    assert other.append(b"INBOX", msg(b"two")).startswith(b"OK")
    other.close()
    r = Raw(server, a)
    assert b"* 0 EXISTS\r\n" in r.cmd(b"SELECT INBOX")
    assert r.cmd(b"UNAUTHENTICATE") == [b"OK Not authenticated now"]
    # Not authenticated: no mailbox commands, the pre-login capabilities again.
    assert r.cmd(b"SELECT INBOX")[-1] == b"BAD Not logged in"
    assert r.cmd(b"NOOP")[-1].startswith(b"OK")
    caps = r.cmd(b"CAPABILITY")[0].split()
    assert b"AUTH=PLAIN" in caps and b"UNAUTHENTICATE" not in caps, caps
    assert r.login(b).startswith(b"OK")
    out = r.cmd(b"SELECT INBOX")
    assert b"* 2 EXISTS\r\n" in out, out
    # and back to the first user.
    assert r.cmd(b"UNAUTHENTICATE")[-1].startswith(b"OK")
    assert r.login(a).startswith(b"OK")
    assert b"* 0 EXISTS\r\n" in r.cmd(b"SELECT INBOX")
    r.close()


def test_selected_mailbox_released(server):
    user = fresh_user(server)
    r = Raw(server, user)
    assert r.append(b"INBOX", msg(b"x")).startswith(b"OK")
    assert r.cmd(b"SELECT INBOX")[-1].startswith(b"OK")
    assert r.cmd(b"FETCH 1 UID")[-1].startswith(b"OK")
    assert r.cmd(b"UNAUTHENTICATE")[-1].startswith(b"OK")
    assert r.login(user).startswith(b"OK")
    # Logged in again, nothing is selected.
    assert r.cmd(b"FETCH 1 UID")[-1] == b"BAD No mailbox selected"
    r.close()


def test_enabled_extensions_are_reset(server):
    user = fresh_user(server)
    r = Raw(server, user)
    assert r.cmd(b"ENABLE QRESYNC")[0] == b"* ENABLED QRESYNC\r\n"
    assert r.cmd(b"ENABLE QRESYNC")[0] == b"* ENABLED\r\n"
    assert r.cmd(b"UNAUTHENTICATE")[-1].startswith(b"OK")
    assert r.login(user).startswith(b"OK")
    assert r.cmd(b"ENABLE QRESYNC")[0] == b"* ENABLED QRESYNC\r\n"
    r.close()


def test_session_count_released(server):
    # limit_sessions_per_user_ip = 1: a second session of the account is refused while the
    # first is logged in, and admitted once the first has unauthenticated.
    user = fresh_user(server)
    first = Raw(server, user)
    second = Raw(server)
    assert second.login(user).startswith(b"NO [LIMIT]")
    assert first.cmd(b"UNAUTHENTICATE")[-1].startswith(b"OK")
    assert second.login(user).startswith(b"OK")
    # and the first cannot log in again as that user now.
    assert first.login(user).startswith(b"NO [LIMIT]")
    first.close()
    second.close()
