"""Helpers shared by the IMAP integration tests: ports, a TLS context that accepts the
self-signed test certificate, and waiting for the listeners."""

import socket
import ssl
import time

from conftest import HOST


def imap_ports(server):
    """(IMAP with STARTTLS, IMAP over TLS) of a server made by `posthorn init --port-base`."""
    return server.base + 143, server.base + 993


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def wait_imap(server):
    """Wait until both IMAP listeners accept connections."""
    for port in imap_ports(server):
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("IMAP port %d not open" % port)
                time.sleep(0.05)
