"""Where the extender's verbs run (`scheduler.app._Dispatch`): a small body on the event loop, a
large one on the worker thread, one call deciding at a time, and a small call never overtaking a
large one still in flight."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from wattwise.scheduler.app import INLINE_MAX_BYTES, _Dispatch


def test_small_bodies_on_the_loop_large_ones_on_the_worker_and_one_at_a_time():
    runs: list[tuple[str, bytes, str]] = []
    busy = threading.Lock()

    def call(body: bytes) -> bytes:
        assert busy.acquire(blocking=False), "two calls deciding at once"
        try:
            runs.append(("start", body[:5], threading.current_thread().name))
            if body.startswith(b"large"):
                time.sleep(0.05)
            runs.append(("end", body[:5], threading.current_thread().name))
            return body[:5]
        finally:
            busy.release()

    async def main():
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="verbs")
        dispatch = _Dispatch(worker)
        try:
            assert await dispatch.run(call, b"small") == b"small"
            large = asyncio.ensure_future(dispatch.run(call, b"large" + b" " * INLINE_MAX_BYTES))
            await asyncio.sleep(0)                      # the large call is on the worker now
            after = asyncio.ensure_future(dispatch.run(call, b"after"))
            assert await asyncio.gather(large, after) == [b"large", b"after"]
            assert dispatch.on_worker == 0
            assert await dispatch.run(call, b"again") == b"again"
        finally:
            worker.shutdown()

    asyncio.run(main())
    loop_thread = threading.current_thread().name
    assert runs == [("start", b"small", loop_thread), ("end", b"small", loop_thread),
                    ("start", b"large", "verbs_0"), ("end", b"large", "verbs_0"),
                    ("start", b"after", "verbs_0"), ("end", b"after", "verbs_0"),
                    ("start", b"again", loop_thread), ("end", b"again", loop_thread)]


def test_an_error_in_either_place_reaches_the_handler_and_the_count_recovers():
    def call(body: bytes):
        raise ValueError(body[:3].decode())

    async def main():
        worker = ThreadPoolExecutor(max_workers=1)
        dispatch = _Dispatch(worker)
        try:
            for body in (b"abc", b"xyz" * INLINE_MAX_BYTES):
                try:
                    await dispatch.run(call, body)
                except ValueError as e:
                    assert str(e) == body[:3].decode()
                else:
                    raise AssertionError("no error")
            assert dispatch.on_worker == 0
        finally:
            worker.shutdown()

    asyncio.run(main())
