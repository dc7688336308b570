"""A scriptable stand-in for a third-party HTTP API, served on 127.0.0.1 for adapter tests."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-encoded unless it is str or bytes (sent as is)
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Seen:
    path: str
    params: dict[str, str]
    headers: dict[str, str]


class FakeApi:
    """`on(path, *replies)` scripts answers for a path: one per request, the last repeats.
    `seen` records each request (path, query params, headers). Unknown paths answer 404."""

    def __init__(self) -> None:
        self._routes: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.seen: list[Seen] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (stdlib name)
                api._serve(self)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def on(self, path: str, *replies: Reply) -> FakeApi:
        with self._lock:
            self._routes[path] = list(replies)
        return self

    def calls(self, path: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path == path]

    def start(self) -> FakeApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # wake handlers that are "hanging"
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.seen.append(Seen(parts.path, params, {k.lower(): v for k, v in handler.headers.items()}))
            replies = self._routes.get(parts.path)
            if replies is None:
                reply = Reply(404, {"error": f"no route {parts.path}"})
            else:
                reply = replies.pop(0) if len(replies) > 1 else replies[0]
        if reply.delay_s:
            self._release.wait(reply.delay_s)
        body = reply.body
        if isinstance(body, str):
            payload = body.encode()
        elif isinstance(body, bytes):
            payload = body
        else:
            payload = json.dumps(body).encode()
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.headers.get("Content-Type", "application/json"))
            for key, value in reply.headers.items():
                if key != "Content-Type":
                    handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout tests): nothing to answer to


def iso(at_s: float, fmt: str = "%Y-%m-%dT%H:%M:%S.000Z") -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(at_s, tz=timezone.utc).strftime(fmt)
