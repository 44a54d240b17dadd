"""POP3 RFC 2449 policies set in the configuration: pop3_expire = 0 (EXPIRE 0: retrieved
messages are removed at QUIT, others stay; a dropped connection removes nothing) and
pop3_login_delay = 2 (LOGIN-DELAY 2 in CAPA, -ERR [LOGIN-DELAY] for an earlier login)."""

import time

import pytest

from conftest import unique
from pop3_helpers import DEMO, RawPOP3, deliver_all, message, pop3s_port, wait_pop3

SERVER_CONF = {"pop3_expire": "0", "pop3_login_delay": "2"}
DELAY = 2


@pytest.fixture(scope="module", autouse=True)
def pop3_ready(server):
    wait_pop3(server)


def login_after_delay(server, user=DEMO):
    """Log in, waiting out LOGIN-DELAY if a previous test logged in recently."""
    deadline = time.monotonic() + DELAY + 3
    while True:
        c = RawPOP3(pop3s_port(server), tls=True)
        r = c.user_pass(user)
        if r.startswith(b"+OK Logged in"):
            return c
        c.close()
        assert r.startswith(b"-ERR [LOGIN-DELAY] ") and time.monotonic() < deadline, r
        time.sleep(0.25)


def test_capa_advertises_policies(server):
    with RawPOP3(pop3s_port(server), tls=True) as c:
        caps = c.capa()
        assert "EXPIRE 0" in caps and "LOGIN-DELAY 2" in caps, caps
        assert "EXPIRE NEVER" not in caps


def test_expire_zero_and_login_delay(server):
    listing = deliver_all(server, [message(unique("exp")), message(unique("exp")),
                                   message(unique("exp"))])
    uids = [m["uid"] for m in listing]
    # 1. RETR then a dropped connection: nothing is removed
    c = login_after_delay(server)
    t = time.monotonic()
    assert c.cmd("RETR 1").startswith(b"+OK")
    c.read_multi()
    c.close()
    time.sleep(0.3)
    assert [m["uid"] for m in server.mail_list(DEMO)] == uids
    # 2. a login within LOGIN-DELAY seconds of the last one is refused
    with RawPOP3(pop3s_port(server), tls=True) as c:
        r = c.user_pass(DEMO)
        assert r == b"-ERR [LOGIN-DELAY] Login delay not expired, try again later", r
    # 3. after the delay: RETR 1 and TOP 2 0, QUIT removes only the retrieved message
    time.sleep(max(0, DELAY + 0.3 - (time.monotonic() - t)))
    with RawPOP3(pop3s_port(server), tls=True) as c:
        r = c.user_pass(DEMO)
        assert r.startswith(b"+OK Logged in, 3 messages"), r
        assert c.cmd("RETR 1").startswith(b"+OK")
        c.read_multi()
        status, _ = c.multi("TOP 2 0")          # TOP is not a retrieval
        assert status.startswith(b"+OK")
        assert c.cmd("QUIT") == b"+OK Logging out, 1 messages deleted"
    assert [m["uid"] for m in server.mail_list(DEMO)] == uids[1:]
