#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for tests, between the AWS SDK and moto.

    fault_proxy.py --upstream http://127.0.0.1:PORT [--port 0]

Prints "READY <port>" once listening on 127.0.0.1. Every request is forwarded to the upstream,
except a configurable share answered with Route 53-style errors (Throttling,
PriorRequestNotComplete, HTTP 500) or delayed first. Control endpoints (not forwarded):

    POST /__proxy/config  {"throttle": 0.3, "prior": 0.0, "error500": 0.0, "delay_ms": 0, "seed": 1}
    GET  /__proxy/stats   {"requests": [{"t": <unix seconds>, "op": "...", "fault": null|"..."}]}
    POST /__proxy/reset   forget the recorded requests

Standard library only; stops on SIGTERM or when its standard input closes.
"""
import argparse
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
CONFIG = {"throttle": 0.0, "prior": 0.0, "error500": 0.0, "delay_ms": 0}
RNG = random.Random(1)
REQUESTS = []

ERRORS = {
    "throttle": (400, "Throttling", "Rate exceeded"),
    "prior": (400, "PriorRequestNotComplete", "The request was rejected because Route 53 was still processing a prior request."),
    "error500": (500, "InternalError", "We encountered an internal error. Please try again."),
}


def operation(method, path):
    """The Route 53 operation of a REST path (others: 'other')."""
    p = path.split("?")[0].rstrip("/")
    if "/rrset" in p:
        return "ChangeResourceRecordSets" if method == "POST" else "ListResourceRecordSets"
    if "/change/" in p:
        return "GetChange"
    if "/healthcheck" in p:
        return {"POST": "CreateHealthCheck", "DELETE": "DeleteHealthCheck"}.get(method, "HealthCheck")
    if p.endswith("/hostedzone"):
        return "CreateHostedZone" if method == "POST" else "ListHostedZones"
    if "/hostedzone/" in p:
        return "GetHostedZone" if method == "GET" else "HostedZone"
    return "other"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None

    def log_message(self, *args):
        pass

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _control(self, body):
        global RNG
        if self.path == "/__proxy/config":
            cfg = json.loads(body or b"{}")
            with LOCK:
                for k in ("throttle", "prior", "error500", "delay_ms"):
                    if k in cfg:
                        CONFIG[k] = cfg[k]
                if "seed" in cfg:
                    RNG = random.Random(cfg["seed"])
            return self._send(200, json.dumps(CONFIG).encode())
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
        op = operation(self.command, self.path)
        with LOCK:
            roll = RNG.random()
            fault = None
            edge = 0.0
            for kind in ("throttle", "prior", "error500"):
                edge += CONFIG[kind]
                if roll < edge:
                    fault = kind
                    break
            delay = CONFIG["delay_ms"]
            REQUESTS.append({"t": time.time(), "op": op, "fault": fault})
        if delay:
            time.sleep(delay / 1000.0)
        if fault:
            status, code, message = ERRORS[fault]
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                '<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">'
                f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
                "<RequestId>fault-proxy</RequestId></ErrorResponse>"
            ).encode()
            return self._send(status, xml, [("Content-Type", "text/xml"), ("x-amzn-ErrorType", code)])
        target = urllib.parse.urlsplit(self.upstream)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        out = [(k, v) for k, v in resp.getheaders() if k.lower() not in ("content-length", "transfer-encoding", "connection")]
        conn.close()
        self._send(resp.status, data, out)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    Handler.upstream = args.upstream
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        sys.stdin.read()  # lifeline: the test holds our stdin
    except KeyboardInterrupt:
        pass
    server.shutdown()


if __name__ == "__main__":
    main()
