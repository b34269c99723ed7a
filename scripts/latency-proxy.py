#!/usr/bin/env python3
"""A loopback HTTP/1.1 proxy that delays every request by a fixed time: a registry "in the
same region" for benchmarks (scripts/bench-fleet-registry.sh).

    latency-proxy.py LISTEN_PORT UPSTREAM_HOST:PORT [DELAY_MS]

Each request waits DELAY_MS (default 20) before it is forwarded, so every request costs one
simulated round trip, whatever else it costs. Connections are kept alive on both sides; the
Host header is passed on unchanged, so the registry's Location headers point back here.
Prints "ready" on stdout once listening. Stop it by its PID.
"""
import http.client
import http.server
import socketserver
import sys
import threading
import time

listen_port = int(sys.argv[1])
upstream_host, upstream_port = sys.argv[2].rsplit(":", 1)
delay = (int(sys.argv[3]) if len(sys.argv) > 3 else 20) / 1000.0
local = threading.local()
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


def upstream():
    conn = getattr(local, "conn", None)
    if conn is None:
        conn = http.client.HTTPConnection(upstream_host, int(upstream_port), timeout=600)
        local.conn = conn
    return conn


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def forward(self):
        time.sleep(delay)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        for attempt in (0, 1):
            conn = upstream()
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (http.client.HTTPException, OSError):
                # A kept-alive upstream connection the registry closed: one fresh try.
                conn.close()
                local.conn = None
                if attempt:
                    raise
        self.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        if self.command == "HEAD":
            self.send_header("Content-Length", resp.getheader("Content-Length", "0"))
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = forward


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 256


server = Server(("127.0.0.1", listen_port), Handler)
print("ready", flush=True)
server.serve_forever()
