#!/usr/bin/env python3
"""A stand-in for one region's data plane (app + ingress + load balancer): HTTP 200 on any path.

    dataplane.py IP PORT

Prints `READY IP:PORT` once it listens. Stops on SIGTERM or SIGINT, and, when its standard input
is a pipe, when that pipe closes (so it dies with whoever started it). With stdin from /dev/null
it keeps running until signalled: `make demo` starts it that way and keeps its PID in
.run/env/dataplanes/, where `make env-down` finds it. Standard library only.
"""

import http.server
import os
import signal
import stat
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, body: bool) -> None:
        payload = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's naming)
        self._answer(True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(False)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass  # a probe per second per prober would drown any log


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ip, port = sys.argv[1], int(sys.argv[2])
    http.server.ThreadingHTTPServer.allow_reuse_address = True  # re-bind at once after a stop
    http.server.ThreadingHTTPServer.daemon_threads = True
    server = http.server.ThreadingHTTPServer((ip, port), Handler)

    def stop(*_: object) -> None:
        # At once, like a region that dies: the kernel closes the listener with the process,
        # so "stopped" means connections are refused from this moment.
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode):

        def lifeline() -> None:
            sys.stdin.buffer.read()
            stop()

        threading.Thread(target=lifeline, daemon=True).start()
    print(f"READY {ip}:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
