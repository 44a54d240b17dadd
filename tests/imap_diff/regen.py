#!/usr/bin/python3
"""Regenerate tests/imap_diff/expected.json: what dovecot-imapd answers for ENVELOPE, BODY and
BODYSTRUCTURE of every message of the MIME corpus (tests/mime_corpus/gen.py).

Usage (as root, on loopback only, nothing system-wide is touched):
    sh bench/peers/install.sh          # installs Debian's dovecot packages, starts nothing
    tests/imap_diff/regen.py

It runs `doveadm` with a private configuration in a temporary directory (Maildir, static
passdb/userdb, no listeners), as user nobody, saves each message and fetches the three items.
The output is committed, so the differential test (tests/integration/
test_imap_dovecot_diff.py) needs no Dovecot in CI.
"""

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "..", "mime_corpus", "gen.py")


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
    version = subprocess.run(["dovecot", "--version"], capture_output=True,
                             text=True).stdout.strip()
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump({"dovecot": version, "messages": out}, f, indent=1, ensure_ascii=False,
                  sort_keys=True)
        f.write("\n")
    shutil.rmtree(tmp, ignore_errors=True)
    print("wrote %d messages from Dovecot %s" % (len(out), version))


if __name__ == "__main__":
    main()
