#!/usr/bin/python3
"""A real SMTP server for tests/unit/test_smtp_client.c: aiosmtpd (Debian's python3-aiosmtpd)
with STARTTLS, recording each message it accepts. Usage: aiosmtpd_sink.py PORT CERT KEY OUTDIR.
It writes OUTDIR/ready once it listens; for the n-th message OUTDIR/msg-n (the content as
received, un-dot-stuffed) and OUTDIR/env-n (JSON: mail_from, mail_options, rcpt_tos, tls).
A recipient whose local part starts with "reject" gets 550 5.1.1. Runs until SIGTERM."""
import json
import os
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller

port, cert, key, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]


class Sink:
    def __init__(self):
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject"):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        with open(os.path.join(out, "msg-%d" % self.count), "wb") as f:
            f.write(envelope.original_content)
        with open(os.path.join(out, "env-%d" % self.count), "w") as f:
            json.dump({"mail_from": envelope.mail_from,
                       "mail_options": envelope.mail_options,
                       "rcpt_tos": envelope.rcpt_tos,
                       "tls": session.ssl is not None}, f)
        return "250 2.0.0 OK queued as sink-%d" % self.count


ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
controller = Controller(Sink(), hostname="127.0.0.1", port=port, tls_context=ctx,
                        require_starttls=False, enable_SMTPUTF8=True,
                        decode_data=False, ready_timeout=10)
controller.start()
with open(os.path.join(out, "ready"), "w") as f:
    f.write("ok")
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
stop.wait()
controller.stop()
