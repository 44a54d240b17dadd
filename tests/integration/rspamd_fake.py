"""A stand-in for rspamd's normal worker in tests: POST /checkv2 answers by the message's
Subject (the first word after "Subject: "), and remembers each request (its fields and body)
for GET /requests (JSON list, the newest last). Run with start() in a thread.

  clean        no action, with a milter block that adds X-Rspamd-Server and removes every
               X-Remove-Me field
  addheader    add header (score 7.5)
  rewrite      rewrite subject ("*** SPAM *** " + the old Subject)
  greylist     greylist
  softreject   soft reject with an SMTP message
  reject       reject with an SMTP message
  plainreject  reject without one
  hang         waits 4 s before answering (beyond the server's rspamd_timeout)
  malformed    a 200 response whose body is not JSON
  close        closes the connection without a response
  manyedits    add header, removing X-Spam under two spellings, with 64 additions
  emptysubject rewrite subject with an empty "subject"
  bigadds      no action with 28 added fields of 8000 octets each
  smtpmsg      reject with an SMTP message holding 8-bit octets and control characters
"""

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SYMBOLS = {"R_SPF_ALLOW": {"name": "R_SPF_ALLOW", "score": -0.2},
           "FAKE_TEST": {"name": "FAKE_TEST", "score": 1.5, "options": ["x"]}}


def verdict(word, subject):
    if word == "clean":
        return {"action": "no action", "score": 1.3, "required_score": 15.0,
                "symbols": SYMBOLS,
                "milter": {"add_headers": {"X-Rspamd-Server": {"value": "fake", "order": 0}},
                           "remove_headers": {"X-Remove-Me": 0}}}
    if word == "addheader":
        return {"action": "add header", "score": 7.5, "required_score": 15.0,
                "symbols": SYMBOLS}
    if word == "rewrite":
        return {"action": "rewrite subject", "score": 9.0, "required_score": 15.0,
                "subject": "*** SPAM *** " + subject, "symbols": SYMBOLS}
    if word == "greylist":
        return {"action": "greylist", "score": 4.0, "required_score": 15.0}
    if word == "softreject":
        return {"action": "soft reject", "score": 0.0, "required_score": 15.0,
                "messages": {"smtp_message": "Ratelimit exceeded, says the fake"}}
    if word == "reject":
        return {"action": "reject", "score": 20.0, "required_score": 15.0,
                "messages": {"smtp_message": "Gtube pattern, says the fake"}}
    if word == "plainreject":
        return {"action": "reject", "score": 20.0, "required_score": 15.0}
    if word == "manyedits":
        return {"action": "add header", "score": 8.0, "required_score": 15.0,
                "milter": {"remove_headers": {"X-Spam": 0, "x-spam": 0},
                           "add_headers": {"X-Add-%02d" % i: "v" for i in range(64)}}}
    if word == "bigadds":
        return {"action": "no action", "score": 0.5, "required_score": 15.0,
                "milter": {"add_headers": {"X-Big-%02d" % i: "word " * 1600
                                           for i in range(28)}}}
    if word == "emptysubject":
        return {"action": "rewrite subject", "score": 9.0, "required_score": 15.0,
                "subject": ""}
    if word == "smtpmsg":
        return {"action": "reject", "score": 20.0, "required_score": 15.0,
                "messages": {"smtp_message": "Spam \u00e9t\u00e9\u0007 here\tx"}}
    return {"action": "no action", "score": 0.0, "required_score": 15.0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = json.dumps(self.server.requests).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        msg = self.rfile.read(n)
        fields = [[k, v] for k, v in self.headers.items()]
        self.server.requests.append({"path": self.path, "fields": fields,
                                     "version": self.request_version,
                                     "body": msg.decode("utf-8", "replace")})
        m = re.search(rb"^Subject: ?(.*?)\r?$", msg, re.M)
        subject = m.group(1).decode() if m else ""
        word = subject.split(" ", 1)[0]
        if word == "close":
            self.close_connection = True
            return
        if word == "hang":
            time.sleep(4)
        if word == "malformed":
            body = b"this is not JSON"
        else:
            body = json.dumps(verdict(word, subject)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True


def start():
    """A running fake on 127.0.0.1 (a free port): (server, port)."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.requests = []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, srv.server_address[1]
