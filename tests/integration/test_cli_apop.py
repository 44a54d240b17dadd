"""`posthorn user apop ADDRESS [--clear]`: setting and clearing an account's APOP secret
(RFC 1939 §7) from the command line while the server runs, the help text that warns about
APOP, and the errors. The stored secret is read straight from the database (read-only):
the CLI never prints it, and POP3 is not needed to see it."""

import base64
import sqlite3

import pytest

from conftest import USERS, RawSMTP, run_cli

DEMO = "demo@example.test"
ALICE = "alice@example.test"


def apop_secret(server, address):
    """The account's stored APOP secret, None when it has none."""
    db = server.dir / "data" / "posthorn.db"
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        row = con.execute("SELECT apop_secret FROM accounts WHERE address = ?",
                          (address,)).fetchone()
    finally:
        con.close()
    assert row is not None, "no account %s" % address
    return row[0]


def auth_code(server, user, password):
    with RawSMTP(server.submissions_port, tls=True) as c:
        c.ehlo()
        token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        return c.cmd("AUTH PLAIN " + token, timeout=30).code


def test_help_warns_about_apop():
    for args in (["user", "--help"], ["user", "apop", "--help"]):
        p = run_cli(args)
        assert p.returncode == 0, p.stderr
        assert p.stdout.startswith("usage:"), p.stdout
        assert "user apop ADDRESS" in p.stdout
        assert "--clear" in p.stdout
        assert "MD5" in p.stdout
        assert "pop3_apop" in p.stdout


@pytest.mark.sqlite_only("reads the APOP secret from posthorn.db with sqlite3")
def test_set_replace_and_clear(server):
    assert apop_secret(server, DEMO) is None
    p = server.cli("user", "apop", DEMO, input="apop-Secret-9\n")
    assert p.returncode == 0
    assert "apop-Secret-9" not in p.stdout + p.stderr
    assert apop_secret(server, DEMO) == "apop-Secret-9"
    assert apop_secret(server, ALICE) is None

    # Addresses are case-insensitive; only the first line is the secret.
    server.cli("user", "apop", "Demo@Example.TEST", input="second secret\nignored\n")
    assert apop_secret(server, DEMO) == "second secret"
    # The password is a different thing and stays as it was.
    assert auth_code(server, DEMO, USERS[DEMO]) == 235

    server.cli("user", "apop", DEMO, "--clear")
    assert apop_secret(server, DEMO) is None
    # Clearing again is not an error.
    server.cli("user", "apop", DEMO, "--clear")
    assert apop_secret(server, DEMO) is None


def test_unknown_account_fails(server):
    for args, stdin in ((["user", "apop", "nobody@example.test"], "secret\n"),
                        (["user", "apop", "nobody@example.test", "--clear"], None),
                        (["user", "apop", "bob@elsewhere.example"], "secret\n"),
                        (["user", "apop", "not-an-address"], "secret\n")):
        p = server.cli(*args, input=stdin, check=False)
        assert p.returncode != 0, args
        assert args[2] in p.stderr, p.stderr
        assert "no such account" in p.stderr, p.stderr


@pytest.mark.sqlite_only("reads the APOP secret from posthorn.db with sqlite3")
def test_empty_secret_refused(server):
    p = server.cli("user", "apop", ALICE, input="", check=False)
    assert p.returncode != 0
    assert p.stderr.strip()
    p = server.cli("user", "apop", ALICE, input="\n", check=False)
    assert p.returncode != 0
    assert apop_secret(server, ALICE) is None


def test_usage_errors(server):
    for args in (["user", "apop"], ["user", "apop", DEMO, "--bogus"],
                 ["user", "apop", DEMO, "--clear", "extra"]):
        p = server.cli(*args, input="x\n", check=False)
        assert p.returncode == 2, args
        assert "usage:" in p.stderr
