#!/usr/bin/env python3
"""A TCP proxy for tests that can cut the network without closing anything.

    tcp_proxy.py --upstream HOST:PORT [--port 0] [--control-port 0]

Listens on 127.0.0.1 and prints "READY <port> <control_port>" once listening. Every connection
is forwarded to the upstream byte for byte (TLS to a kube-apiserver passes through untouched).
Control, over HTTP on the control port:

    POST /blackhole {"on": true|false}  while on, no byte moves on any connection, existing or new
                                        (new ones are still accepted, and reach the upstream
                                        once it is off); nothing is closed: the proxy just stops
                                        reading both sides, so senders block as in a partition
    POST /close                         close every connection
    GET  /stats                         {"connections": accepted in all, "open": n,
                                         "bytes_up": n, "bytes_down": n, "blackhole": bool}

A control call answers once the forwarding loop has applied it. Standard library only; exits when
its standard input closes or on SIGTERM.
"""
import argparse
import errno
import json
import os
import selectors
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 65536
# Bytes read from one side and not yet written to the other: beyond this, reading pauses (the
# sender feels the upstream's pace, as without a proxy).
HIGH_WATER = 1 << 20


class Pair:
    """One client connection and its upstream connection."""

    def __init__(self, client):
        self.client = client
        self.upstream = None
        self.connecting = False
        self.to_upstream = bytearray()
        self.to_client = bytearray()
        self.client_eof = False  # the client sent FIN
        self.upstream_eof = False
        self.upstream_shut = False  # FIN passed on to the upstream
        self.client_shut = False


class Proxy:
    def __init__(self, upstream, port):
        self.upstream_addr = upstream
        self.sel = selectors.DefaultSelector()
        self.listener = socket.create_server(("127.0.0.1", port), backlog=128)
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, ("accept", None))
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, ("wake", None))
        self.pairs = set()
        self.lock = threading.Lock()
        self.commands = []  # (name, argument, threading.Event) from the control thread
        self.blackhole = False
        self.stats = {"connections": 0, "bytes_up": 0, "bytes_down": 0}
        self.interest = {}  # socket -> registered events

    @property
    def port(self):
        return self.listener.getsockname()[1]

    # --- called from the control thread ---------------------------------------------------

    def command(self, name, arg=None):
        done = threading.Event()
        with self.lock:
            self.commands.append((name, arg, done))
        self.wake_w.send(b"x")
        done.wait(10)

    def snapshot(self):
        with self.lock:
            return dict(self.stats, open=len(self.pairs), blackhole=self.blackhole)

    # --- the forwarding loop ----------------------------------------------------------------

    def run(self):
        while True:
            for key, events in self.sel.select():
                kind, pair = key.data
                if kind == "accept":
                    self._accept()
                elif kind == "wake":
                    self._commands()
                elif pair in self.pairs:
                    self._io(pair, key.fileobj, events)
            for pair in list(self.pairs):
                self._update(pair)

    def _commands(self):
        try:
            while self.wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        with self.lock:
            commands, self.commands = self.commands, []
        for name, arg, done in commands:
            if name == "blackhole":
                with self.lock:
                    self.blackhole = bool(arg)
            elif name == "close":
                for pair in list(self.pairs):
                    self._close(pair)
            for pair in list(self.pairs):
                self._update(pair)
            done.set()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = Pair(client)
            with self.lock:
                self.pairs.add(pair)
                self.stats["connections"] += 1
            self._update(pair)

    def _connect(self, pair):
        host, port = self.upstream_addr
        up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        up.setblocking(False)
        up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = up.connect_ex((host, port))
        pair.upstream = up
        pair.connecting = err in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN)
        if err and not pair.connecting:
            self._close(pair)

    def _io(self, pair, sock, events):
        try:
            if sock is pair.upstream and pair.connecting:
                if events & selectors.EVENT_WRITE:
                    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        return self._close(pair)
                    pair.connecting = False
                return None
            if events & selectors.EVENT_READ:
                data = sock.recv(CHUNK)
                if sock is pair.client:
                    if data:
                        pair.to_upstream += data
                    else:
                        pair.client_eof = True
                else:
                    if data:
                        pair.to_client += data
                    else:
                        pair.upstream_eof = True
            if events & selectors.EVENT_WRITE:
                if sock is pair.upstream and pair.to_upstream:
                    n = sock.send(pair.to_upstream)
                    del pair.to_upstream[:n]
                    with self.lock:
                        self.stats["bytes_up"] += n
                elif sock is pair.client and pair.to_client:
                    n = sock.send(pair.to_client)
                    del pair.to_client[:n]
                    with self.lock:
                        self.stats["bytes_down"] += n
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return self._close(pair)
        return None

    def _update(self, pair):
        """Registers what each socket of the pair waits for; passes FINs on; closes when done."""
        if pair not in self.pairs:
            return
        if self.blackhole:
            # No reads, no writes, no new upstream connection: everything simply waits.
            self._want(pair.client, 0, pair)
            if pair.upstream is not None:
                self._want(pair.upstream, 0, pair)
            return
        if pair.upstream is None:
            self._connect(pair)
            if pair not in self.pairs:
                return
        try:
            if pair.client_eof and not pair.to_upstream and not pair.upstream_shut and not pair.connecting:
                pair.upstream.shutdown(socket.SHUT_WR)
                pair.upstream_shut = True
            if pair.upstream_eof and not pair.to_client and not pair.client_shut:
                pair.client.shutdown(socket.SHUT_WR)
                pair.client_shut = True
        except OSError:
            return self._close(pair)
        if pair.upstream_shut and pair.client_shut:
            return self._close(pair)
        client_events = 0
        if not pair.client_eof and len(pair.to_upstream) < HIGH_WATER:
            client_events |= selectors.EVENT_READ
        if pair.to_client:
            client_events |= selectors.EVENT_WRITE
        if pair.connecting:
            upstream_events = selectors.EVENT_WRITE
        else:
            upstream_events = 0
            if not pair.upstream_eof and len(pair.to_client) < HIGH_WATER:
                upstream_events |= selectors.EVENT_READ
            if pair.to_upstream:
                upstream_events |= selectors.EVENT_WRITE
        self._want(pair.client, client_events, pair)
        self._want(pair.upstream, upstream_events, pair)
        return None

    def _want(self, sock, events, pair):
        current = self.interest.get(sock, 0)
        if events == current:
            return
        if current and events:
            self.sel.modify(sock, events, ("io", pair))
        elif events:
            self.sel.register(sock, events, ("io", pair))
        else:
            self.sel.unregister(sock)
        if events:
            self.interest[sock] = events
        else:
            self.interest.pop(sock, None)

    def _close(self, pair):
        for sock in (pair.client, pair.upstream):
            if sock is None:
                continue
            if self.interest.pop(sock, None):
                self.sel.unregister(sock)
            try:
                sock.close()
            except OSError:
                pass
        with self.lock:
            self.pairs.discard(pair)


def control_server(proxy, port):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _answer(self, status, value):
            body = json.dumps(value).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/stats":
                return self._answer(200, proxy.snapshot())
            return self._answer(404, {"error": "unknown path"})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path == "/blackhole":
                try:
                    on = json.loads(body or b"{}")["on"]
                except (ValueError, KeyError, TypeError):
                    return self._answer(400, {"error": 'expected {"on": true|false}'})
                proxy.command("blackhole", bool(on))
                return self._answer(200, proxy.snapshot())
            if self.path == "/close":
                proxy.command("close")
                return self._answer(200, proxy.snapshot())
            return self._answer(404, {"error": "unknown path"})

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="HOST:PORT")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--control-port", type=int, default=0)
    args = parser.parse_args()
    host, _, port = args.upstream.rpartition(":")
    proxy = Proxy((host or "127.0.0.1", int(port)), args.port)
    control = control_server(proxy, args.control_port)

    # Both ways out end the process at once (os._exit): the kernel closes every socket, and a
    # normal interpreter shutdown would stall on the stdin reader thread.
    def stdin_lifeline():
        try:
            while os.read(sys.stdin.fileno(), 4096):
                pass
        except OSError:
            pass
        os._exit(0)

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    # A signal may land on any thread; this wakes the loop's select so the handler runs at once.
    signal.set_wakeup_fd(proxy.wake_w.fileno())
    threading.Thread(target=stdin_lifeline, daemon=True).start()
    print(f"READY {proxy.port} {control.server_address[1]}", flush=True)
    try:
        proxy.run()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
