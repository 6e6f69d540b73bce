#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for tests, between the AWS SDK and moto.

    fault_proxy.py --upstream http://127.0.0.1:PORT [--port 0] [--record FILE --forever]

Prints "READY <port>" once listening on 127.0.0.1. Every request is forwarded to the upstream,
except a configurable share answered with Route 53-style errors (Throttling,
PriorRequestNotComplete, HTTP 500) or delayed first. Control endpoints (not forwarded):

    POST /__proxy/config  {"throttle": 0.3, "prior": 0.0, "error500": 0.0, "delay_ms": 0, "seed": 1,
                           "pending_s": 0, "refuse_s": 0, "deny": ["AssumeRole"]}
    GET  /__proxy/stats   {"requests": [{"t": <unix seconds>, "op": "...", "fault": null|"...",
                                         "method": "POST", "status": 200|null, "write": true,
                                         "params": {...}}]}
    POST /__proxy/reset   forget the recorded requests

pending_s > 0 paces Route 53 like AWS does (moto answers every change INSYNC at once): the answer
of each ChangeResourceRecordSets sent afterwards carries an id the proxy mints, Status PENDING,
and GetChange of that id answers PENDING until pending_s seconds after the change was sent, INSYNC
afterwards (other ids are forwarded). refuse_s = S closes the listening socket and every open
connection right after answering the config call, and listens again on the same port S seconds
later: meanwhile connections are refused, the control endpoints included. deny lists operations
answered 403 AccessDenied (fault "deny"), as IAM refuses what a policy does not grant.

"op" names the AWS operation: Route 53's from its REST path, Query-protocol services' (ELBv2,
EC2, STS) from Action=, JSON-protocol ones' (ACM) from X-Amz-Target. "write" is false for
operations named Get*, List*, Describe*. "status" is what the client got (null: no answer).
"params" holds a Query-protocol request's parameters (Action=... form), {} for the others.

--record-own FILE (a test's proxy in front of the environment's, which records what is forwarded)
appends the same lines for the requests it answers itself: faults and paced GetChange.

--record FILE appends a JSON line per request it answers instead of keeping it for /__proxy/stats:
{"key": the signer's access key id, "service": the signing name, "op", "status", "fault"}, and for
each AssumeRole that succeeded {"assumed": the new access key id, "by": the signer's key, "role":
the RoleArn}, so a report can tell whose calls they were (tests/iam_report.py). --forever keeps it
running when its standard input closes (the environment's proxy, started in the background).

Standard library only; stops on SIGTERM or, without --forever, when its standard input closes.
"""
import argparse
import http.client
import json
import random
import re
import socket
import string
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
CONFIG = {"throttle": 0.0, "prior": 0.0, "error500": 0.0, "delay_ms": 0, "pending_s": 0, "deny": []}
RNG = random.Random(1)
REQUESTS = []
# Minted change id -> {"upstream": moto's id, "sent": unix time, "pending_s": seconds}.
CHANGES = {}
# Ids are not drawn from RNG: that would shift the seeded fault sequence.
ID_RNG = random.SystemRandom()
SERVER = None  # the listening server (replaced after a refuse period)
RECORD = None  # the file of --record, open for appending
RECORD_OWN = False  # --record-own: only what this proxy answers without forwarding

ERRORS = {
    "throttle": (400, "Throttling", "Rate exceeded"),
    "prior": (400, "PriorRequestNotComplete", "The request was rejected because Route 53 was still processing a prior request."),
    "error500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "deny": (403, "AccessDenied", "User is not authorized to perform this operation (denied by the fault proxy)"),
}
R53_NS = "https://route53.amazonaws.com/doc/2013-04-01/"


def route53_operation(method, path):
    """The Route 53 operation of a REST path (others: 'other')."""
    p = urllib.parse.unquote(path.split("?")[0]).rstrip("/")
    # Tags first: their paths name the resource type (/tags/healthcheck/<id>, /tags/hostedzone/<id>).
    if re.search(r"/tags/[^/]+/[^/]+$", p):
        return "ChangeTagsForResource" if method == "POST" else "ListTagsForResource"
    if re.search(r"/tags/[^/]+$", p):
        return "ListTagsForResources"
    if "/rrset" in p:
        return "ChangeResourceRecordSets" if method == "POST" else "ListResourceRecordSets"
    if "/change/" in p:
        return "GetChange"
    if p.endswith("/healthcheckcount"):
        return "GetHealthCheckCount"
    if "/healthcheck/" in p:
        if p.endswith("/status"):
            return "GetHealthCheckStatus"
        if p.endswith("/lastfailurereason"):
            return "GetHealthCheckLastFailureReason"
        return {"POST": "UpdateHealthCheck", "DELETE": "DeleteHealthCheck", "GET": "GetHealthCheck"}.get(method, "HealthCheck")
    if p.endswith("/healthcheck"):
        return "CreateHealthCheck" if method == "POST" else "ListHealthChecks"
    if p.endswith("/hostedzone"):
        return "CreateHostedZone" if method == "POST" else "ListHostedZones"
    if p.endswith("/disassociatevpc"):
        return "DisassociateVPCFromHostedZone"
    if p.endswith("/associatevpc"):
        return "AssociateVPCWithHostedZone"
    if p.endswith("/deauthorizevpcassociation"):
        return "DeleteVPCAssociationAuthorization"
    if p.endswith("/authorizevpcassociation"):
        return "CreateVPCAssociationAuthorization" if method == "POST" else "ListVPCAssociationAuthorizations"
    if "/hostedzone/" in p:
        return {"GET": "GetHostedZone", "POST": "UpdateHostedZoneComment", "DELETE": "DeleteHostedZone"}.get(method, "HostedZone")
    return "other"


def operation(method, path, headers, body):
    """The AWS operation of a request, whatever its protocol, and its Query-protocol parameters."""
    target = headers.get("X-Amz-Target")
    if target:  # JSON protocol (ACM): "CertificateManager.RequestCertificate"
        return target.rsplit(".", 1)[-1], {}
    ctype = headers.get("Content-Type") or ""
    form = {}
    if "x-www-form-urlencoded" in ctype and body:
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    action = (form.get("Action") or query.get("Action") or [None])[0]
    if action:  # Query protocol (ELBv2, EC2, STS)
        params = {k: v[0] for k, v in {**query, **form}.items() if v}
        return action, params
    return route53_operation(method, path), {}


def signer(headers):
    """(access key id, signing name) of a SigV4 Authorization header; ("", "") without one."""
    found = re.search(r"Credential=([^/]+)/[^/]+/[^/]+/([^/]+)/", headers.get("Authorization") or "")
    return found.groups() if found else ("", "")


def record_line(line):
    with LOCK:
        RECORD.write(json.dumps(line) + "\n")
        RECORD.flush()


def is_write(op):
    return not op.startswith(("Get", "List", "Describe"))


def mint_change_id():
    """A Route 53-like change id, "C" + 13 upper-case alphanumerics, unused so far."""
    alphabet = string.ascii_uppercase + string.digits
    while True:
        cid = "C" + "".join(ID_RNG.choice(alphabet) for _ in range(13))
        if cid not in CHANGES:
            return cid


def iso(t):
    """Route 53's timestamp format, as moto writes it: 2026-12-01T09:30:16.724003Z."""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def change_info_xml(root, cid, status, submitted):
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<{root} xmlns="{R53_NS}"><ChangeInfo><Id>/change/{cid}</Id><Status>{status}</Status>'
        f"<SubmittedAt>{iso(submitted)}</SubmittedAt></ChangeInfo></{root}>"
    ).encode()


class Server(ThreadingHTTPServer):
    """Tracks its open connections, so a refuse period can close them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args, **kwargs):
        self.open = set()
        super().__init__(*args, **kwargs)

    def get_request(self):
        sock, addr = super().get_request()
        with LOCK:
            self.open.add(sock)
        return sock, addr

    def shutdown_request(self, request):
        with LOCK:
            self.open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        # A client gone, or a connection closed by a refuse period: nothing worth a traceback.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


def serve(port):
    global SERVER
    server = Server(("127.0.0.1", port), Handler)
    with LOCK:
        SERVER = server
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def refuse(seconds, keep=None):
    """Stop listening and drop every connection (but `keep`, whose answer is on its way); listen
    again on the same port after `seconds`, from a thread of its own."""
    with LOCK:
        server = SERVER
        conns = [c for c in server.open if c is not keep]
    port = server.server_address[1]
    # shutdown() of a listening socket makes the kernel refuse new connections at once, before
    # the accept loop has noticed anything.
    try:
        server.socket.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    for sock in conns:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def later():
        server.shutdown()
        server.server_close()
        time.sleep(seconds)
        serve(port)

    threading.Thread(target=later, daemon=True).start()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None

    def log_message(self, *args):
        pass

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status, body, headers=(), record=None):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if record is not None:
            with LOCK:
                record["status"] = status
            if RECORD is not None and (not RECORD_OWN or record.get("own")):
                key, service = signer(self.headers)
                record_line({"key": key, "service": service, "op": record["op"], "status": status,
                             "fault": record["fault"]})

    def _control(self, body):
        global RNG
        if self.path == "/__proxy/config":
            cfg = json.loads(body or b"{}")
            with LOCK:
                for k in ("throttle", "prior", "error500", "delay_ms", "pending_s", "deny"):
                    if k in cfg:
                        CONFIG[k] = cfg[k]
                if "seed" in cfg:
                    RNG = random.Random(cfg["seed"])
                answer = json.dumps(CONFIG).encode()
            refuse_s = float(cfg.get("refuse_s") or 0)
            if refuse_s > 0:
                # Gone for everyone else before the caller has its 200: whatever it sends after
                # the answer finds the port closed.
                refuse(refuse_s, keep=self.connection)
                self.close_connection = True
                return self._send(200, answer, [("Connection", "close")])
            return self._send(200, answer)
        if self.path == "/__proxy/stats":
            with LOCK:
                data = json.dumps({"requests": REQUESTS}).encode()
            return self._send(200, data, [("Content-Type", "application/json")])
        if self.path == "/__proxy/reset":
            with LOCK:
                REQUESTS.clear()
            return self._send(200, b"{}")
        return self._send(404, b"unknown control path")

    def _handle(self):
        body = self._body()
        if self.path.startswith("/__proxy/"):
            return self._control(body)
        op, params = operation(self.command, self.path, self.headers, body)
        now = time.time()
        record = {"t": now, "op": op, "fault": None, "method": self.command, "status": None, "write": is_write(op),
                  "params": params}
        with LOCK:
            roll = RNG.random()
            fault = None
            edge = 0.0
            for kind in ("throttle", "prior", "error500"):
                edge += CONFIG[kind]
                if roll < edge:
                    fault = kind
                    break
            if op in CONFIG["deny"]:
                fault = "deny"
            record["fault"] = fault
            delay = CONFIG["delay_ms"]
            pending_s = float(CONFIG["pending_s"] or 0)
            if RECORD is None or RECORD_OWN:
                REQUESTS.append(record)
        if delay:
            time.sleep(delay / 1000.0)
        if fault:
            status, code, message = ERRORS[fault]
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<ErrorResponse xmlns="{R53_NS}">'
                f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
                "<RequestId>fault-proxy</RequestId></ErrorResponse>"
            ).encode()
            record["own"] = True
            return self._send(status, xml, [("Content-Type", "text/xml"), ("x-amzn-ErrorType", code)], record)
        if op == "GetChange" and self.command == "GET":
            cid = urllib.parse.unquote(self.path.split("?")[0]).rstrip("/").rsplit("/", 1)[-1]
            with LOCK:
                change = CHANGES.get(cid)
            if change is not None:
                done = time.time() >= change["sent"] + change["pending_s"]
                xml = change_info_xml("GetChangeResponse", cid, "INSYNC" if done else "PENDING", change["sent"])
                record["own"] = True
                return self._send(200, xml, [("Content-Type", "application/xml"), ("x-amzn-RequestId", "fault-proxy")], record)
        target = urllib.parse.urlsplit(self.upstream)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        out = [(k, v) for k, v in resp.getheaders() if k.lower() not in ("content-length", "transfer-encoding", "connection")]
        conn.close()
        if RECORD is not None and op == "AssumeRole" and resp.status == 200:
            found = re.search(rb"<AccessKeyId>([^<]+)</AccessKeyId>", data)
            if found:
                record_line({"assumed": found.group(1).decode(), "by": signer(self.headers)[0],
                             "role": params.get("RoleArn", "")})
        if op == "ChangeResourceRecordSets" and self.command == "POST" and resp.status == 200 and pending_s > 0:
            data = self._pend(data, now, pending_s)
        self._send(resp.status, data, out, record)

    @staticmethod
    def _pend(data, sent, pending_s):
        """moto's INSYNC answer, as Route 53 gives it: a fresh change id, PENDING."""
        text = data.decode("utf-8")
        found = re.search(r"<ChangeInfo><Id>(?:/change/)?([^<]*)</Id>", text)
        if not found:
            return data
        with LOCK:
            cid = mint_change_id()
            CHANGES[cid] = {"upstream": found.group(1), "sent": sent, "pending_s": pending_s}
        text = text[: found.start()] + f"<ChangeInfo><Id>/change/{cid}</Id>" + text[found.end():]
        text = re.sub(r"(<ChangeInfo>.*?<Status>)[^<]*(</Status>)", r"\1PENDING\2", text, count=1)
        return text.encode("utf-8")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record", help="append a JSON line per request to this file")
    parser.add_argument("--record-own", help="append a JSON line per request answered without forwarding")
    parser.add_argument("--forever", action="store_true", help="do not stop when stdin closes")
    args = parser.parse_args()
    global RECORD, RECORD_OWN
    if args.record or args.record_own:
        RECORD = open(args.record or args.record_own, "a", encoding="utf-8")
        RECORD_OWN = bool(args.record_own)
    Handler.upstream = args.upstream
    server = serve(args.port)
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        if args.forever:
            threading.Event().wait()
        else:
            sys.stdin.read()  # lifeline: the test holds our stdin
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
