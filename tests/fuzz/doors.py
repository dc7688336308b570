"""Clients that send fuzz cases to the real doors over loopback sockets, the doors themselves
started in-process, and a log handler that catches what the servers log as errors. Shared by
tests/fuzz (short mode) and benchmarks/fuzz_doors.py (long mode); `judges.py` judges the answers.
"""

from __future__ import annotations

import http.client
import logging
import threading
import traceback
import urllib.parse
from pathlib import Path

import grpc

from wattwise.models.scenario import load_scenario
from wattwise.runtime import StaticPlanSource
from wattwise.scaler.app import ThreadedScaler, build_demo
from wattwise.scheduler.node_cache import StaticNodeCache
from wattwise.scheduler.server import start_extender

from tests.fuzz.cases import GrpcCase, HttpCase
from tests.fuzz.judges import REQUESTS, RESPONSES, SERVICE, UNARY_TIMEOUT_S
from tests.scaler.helpers import LOOPBACK, NEVER, snapshot
from tests.scheduler.helpers import SCENARIO, recorded_node_list

OPEN_STREAM_S = 0.05     # a valid stream with nothing to send yet stays open: wait this long for it


# -- errors logged by the servers (a handler that raised) ------------------------------------------

class ErrorLog(logging.Handler):
    """Counts ERROR records (and any with a traceback) while installed on the root logger."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[str] = []
        self._records_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            where = ""
            if record.exc_info and record.exc_info[2] is not None:
                frames = traceback.extract_tb(record.exc_info[2])[-2:]
                where = " | " + " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.line}" for f in reversed(frames))
                where += f" | {record.exc_info[0].__name__}: {str(record.exc_info[1])[:200]}"
            with self._records_lock:
                self.records.append(f"{record.name}: {record.getMessage()[:300]}{where}")

    def __enter__(self) -> "ErrorLog":
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *_exc) -> None:
        logging.getLogger().removeHandler(self)

    def since(self, mark: int) -> list[str]:
        with self._records_lock:
            return self.records[mark:]


# -- clients ---------------------------------------------------------------------------------------

class HttpClient:
    """One keep-alive connection to the extender; a dropped connection is reported, then reopened."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.conn = http.client.HTTPConnection(host, port, timeout=UNARY_TIMEOUT_S)
        self.reconnects = 0

    def send(self, case: HttpCase) -> tuple[int | None, bytes, str]:
        """(status, body, transport problem or "")."""
        headers = {"Content-Type": case.content_type} if case.content_type is not None else {}
        path = urllib.parse.quote(case.path, safe="/?=&%")
        try:
            self.conn.request(case.method, path, body=case.body, headers=headers)
            resp = self.conn.getresponse()
            return resp.status, resp.read(), ""
        except (http.client.HTTPException, OSError) as e:
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=UNARY_TIMEOUT_S)
            self.reconnects += 1
            return None, b"", f"connection dropped: {type(e).__name__}: {e}"

    def close(self) -> None:
        self.conn.close()


class GrpcClient:
    """One channel to the scaler, a multi-callable per method for messages and for raw bytes."""

    def __init__(self, port: int):
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.calls = {}
        for method, response in RESPONSES.items():
            make = self.channel.unary_stream if method.startswith("Stream") else self.channel.unary_unary
            self.calls[method, False] = make(SERVICE + method, request_serializer=REQUESTS[method].SerializeToString,
                                             response_deserializer=response.FromString)
            self.calls[method, True] = make(SERVICE + method, request_serializer=None, response_deserializer=None)

    def send(self, case: GrpcCase, valid: bool) -> tuple[grpc.StatusCode, str, object]:
        """(code, details, reply). A valid stream is read for its first message or OPEN_STREAM_S."""
        raw = case.raw is not None
        call = self.calls[case.method, raw]
        payload = case.raw if raw else case.request()
        try:
            if not case.method.startswith("Stream"):
                return grpc.StatusCode.OK, "", call(payload, timeout=UNARY_TIMEOUT_S)
            stream = call(payload, timeout=OPEN_STREAM_S if valid else UNARY_TIMEOUT_S)
            try:
                first = next(stream)
            finally:
                stream.cancel()
            return grpc.StatusCode.OK, "", first
        except grpc.RpcError as e:
            return e.code(), e.details() or "", None

    def close(self) -> None:
        self.channel.close()


# -- the doors on loopback ----------------------------------------------------------------------------

def start_extender_door():
    """The extender as in tests/scheduler: the bundled scenario's plan, the recorded nodes cached."""
    return start_extender(StaticPlanSource(load_scenario(SCENARIO).snapshot), "127.0.0.1", 0,
                          StaticNodeCache.from_node_json(recorded_node_list()["items"]))


def start_scaler_door() -> ThreadedScaler:
    """`wattwise serve --demo`'s scaler, its refresher off: every answer comes from the demo's
    first plan, so the inputs, not the timing of re-plans, decide each answer."""
    return ThreadedScaler(build_demo(snapshot(), interval_s=NEVER, config=LOOPBACK), start_refresher=False)
