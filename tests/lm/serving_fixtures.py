"""A real OpenAI-compatible server for the HTTP tests, and a proxy in front of it that injects faults.

The server is ``transformers serve`` (the ``transformers[serving]`` extra) on 127.0.0.1 with the
bundled model's folder, offline; the proxy is a small threaded HTTP server the test scripts: each
request it receives takes the next fault from its script (``pass`` once the script runs out) and it
counts every request, so a test can assert how many were sent.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

FAULTS = ("pass", "429", "500", "400", "drop", "slow", "garbage", "no_rating")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    model_dir: Path, log: Path, timeout: float = 240.0, batching: bool = True
) -> tuple[subprocess.Popen, str]:
    """``transformers serve`` on a free local port with ``model_dir`` preloaded (continuous batching
    unless ``batching`` is off); returns once it answers."""
    port = free_port()
    serve = Path(sys.executable).parent / "transformers"
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "TOKENIZERS_PARALLELISM": "false"}
    command = [str(serve), "serve", "--host", "127.0.0.1", "--port", str(port), str(model_dir)]
    command.insert(-1, "--continuous-batching" if batching else "--no-continuous-batching")
    process = subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"transformers serve exited: {log.read_text()[-2000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return process, url
        except OSError:
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"transformers serve did not answer in {timeout:.0f} s: {log.read_text()[-2000:]}")


class FaultProxy:
    """Forwards to ``upstream``; request k meets ``script[k]`` (then ``pass``). ``seen`` keeps every
    request's path, headers and body, so a test can look for what must not be sent (a key)."""

    def __init__(self, upstream: str, slow_seconds: float = 3.0):
        self.upstream = urlsplit(upstream)
        self.script: list[str] = []
        self.seen: list[dict] = []
        self.slow_seconds = slow_seconds
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy.lock:
                    fault = proxy.script[len(proxy.seen)] if len(proxy.seen) < len(proxy.script) else "pass"
                    proxy.seen.append({"path": self.path, "headers": dict(self.headers), "body": body.decode()})
                proxy.answer(self, fault, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def requests(self) -> int:
        return len(self.seen)

    def reset(self, script: list[str] = ()) -> None:
        with self.lock:
            self.script, self.seen = list(script), []

    def forward(self, body: bytes) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=300)
        connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()

    def answer(self, handler: BaseHTTPRequestHandler, fault: str, body: bytes) -> None:
        if fault == "drop":
            handler.connection.shutdown(socket.SHUT_RDWR)
            handler.close_connection = True
            return
        if fault in ("429", "500", "400"):
            message = {"429": "slow down", "500": "the server broke", "400": "this prompt is too long"}[fault]
            payload = json.dumps({"error": {"message": message}}).encode()
            self.send(handler, int(fault), payload, {"Retry-After": "0"} if fault == "429" else {})
            return
        if fault == "garbage":
            self.send(handler, 200, b"<html>upstream hiccup</html>", {})
            return
        if fault == "slow":
            time.sleep(self.slow_seconds)
        status, data = self.forward(body)
        if fault == "no_rating" and status == 200:
            answer = json.loads(data)
            answer["choices"][0]["message"]["content"] = "I would rather not say."
            data = json.dumps(answer).encode()
        self.send(handler, status, data, {})

    @staticmethod
    def send(handler: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            pass  # the client gave up (a timeout): nothing to answer

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
