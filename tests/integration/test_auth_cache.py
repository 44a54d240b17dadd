"""The authentication cache (issue 8 §5) on a running server with the defaults `posthorn init`
writes (auth_cache_ttl = 1h): a repeat login with the same password is answered from the
cache (logged cached=yes) in IMAP, POP3 and SMTP; a password change made with
`posthorn user passwd` (another process) is honoured at once: the old password fails and the
new one works; a removed account cannot log in with a cached password; a wrong password is
never answered from the cache."""

import base64
import imaplib
import poplib
import re
import time

import pytest

from conftest import HOST, RawSMTP
from imap_helpers import imap_ports, tls_ctx, wait_imap
from pop3_helpers import pop3s_port, wait_pop3


@pytest.fixture(scope="module", autouse=True)
def ready(server):
    wait_imap(server)
    wait_pop3(server)


def imap_login(server, user, password):
    m = imaplib.IMAP4_SSL(HOST, imap_ports(server)[1], ssl_context=tls_ctx(), timeout=30)
    try:
        m.login(user, password)
        m.logout()
        return True
    except imaplib.IMAP4.error:
        return False


def pop3_login(server, user, password):
    p = poplib.POP3_SSL(HOST, pop3s_port(server), context=tls_ctx(), timeout=30)
    try:
        p.user(user)
        p.pass_(password)
        p.quit()
        return True
    except poplib.error_proto:
        return False


def smtp_login(server, user, password):
    with RawSMTP(server.submissions_port, tls=True) as c:
        c.ehlo()
        token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        return c.cmd("AUTH PLAIN " + token, timeout=30).code == 235


def login_logs(server, user):
    """The cached=yes/no field of every successful login of user, in log order."""
    deadline = time.monotonic() + 5
    text = ""
    while time.monotonic() < deadline:
        text = server.log_path.read_text(errors="replace")
        if text.endswith("\n"):
            break
        time.sleep(0.05)
    return re.findall(r"result=ok user=%s mech=\S+ cached=(yes|no)" % re.escape(user), text,
                      flags=re.IGNORECASE)


def test_repeat_logins_hit_the_cache(server):
    user = "cache1@example.test"
    server.add_user(user, "first-pass")
    assert imap_login(server, user, "first-pass")
    assert imap_login(server, user, "first-pass")
    assert pop3_login(server, user, "first-pass")
    assert smtp_login(server, user, "first-pass")
    assert login_logs(server, user) == ["no", "yes", "yes", "yes"]
    # a wrong password is never a hit, and does not disturb the cached right one
    assert not imap_login(server, user, "first-pass-x")
    assert imap_login(server, user, "first-pass")
    assert login_logs(server, user)[-1] == "yes"


def test_password_change_by_the_cli_is_honoured_at_once(server):
    user = "cache2@example.test"
    server.add_user(user, "old-pass")
    assert imap_login(server, user, "old-pass")
    assert imap_login(server, user, "old-pass")          # now cached
    server.cli("user", "passwd", user, input="new-pass\n")
    assert not imap_login(server, user, "old-pass")
    assert not pop3_login(server, user, "old-pass")
    assert not smtp_login(server, user, "old-pass")
    assert imap_login(server, user, "new-pass")
    assert pop3_login(server, user, "new-pass")


def test_removed_account_cannot_use_a_cached_password(server):
    user = "cache3@example.test"
    server.add_user(user, "gone-pass")
    assert imap_login(server, user, "gone-pass")
    assert imap_login(server, user, "gone-pass")
    assert login_logs(server, user) == ["no", "yes"]
    server.cli("user", "del", user)
    assert not imap_login(server, user, "gone-pass")
    assert not smtp_login(server, user, "gone-pass")
    # clear the per-IP penalty for the other modules' sake
    server.add_user(user, "gone-pass")
    assert imap_login(server, user, "gone-pass")
