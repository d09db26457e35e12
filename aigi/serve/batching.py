"""Micro-batching: concurrent requests share forward passes of the one loaded model.

Items wait in a bounded queue; a single worker takes the first waiting item, gathers more for at most
``window_s`` (up to ``max_batch``), and runs ``score(items)`` in a worker thread, off the event loop.
A request whose items do not fit in the queue is refused at once (``QueueFull``), which the app turns
into 503 with Retry-After, so a burst never piles up unbounded latency or memory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


class QueueFull(Exception):
    pass


class MicroBatcher:
    def __init__(
        self,
        score: Callable[[list], list],
        max_batch: int = 16,
        window_s: float = 0.01,
        max_queue: int = 256,
        on_batch: Callable[[int, float], None] | None = None,
    ):
        self.score, self.max_batch, self.window_s, self.max_queue = score, max_batch, window_s, max_queue
        self.on_batch = on_batch
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aigi-model")

    @property
    def depth(self) -> int:
        return self._queue.qsize() if self._queue else 0

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._worker:
            self._worker.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def submit(self, items: list) -> list:
        """Score ``items`` (results in order); raises QueueFull when they do not fit in the queue."""
        assert self._queue is not None, "start() first"
        if self._queue.qsize() + len(items) > self.max_queue:
            raise QueueFull(f"{self._queue.qsize()} images are waiting (limit {self.max_queue})")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in items]
        for item, fut in zip(items, futures):
            self._queue.put_nowait((item, fut))
        return list(await asyncio.gather(*futures))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        queue = self._queue
        assert queue is not None, "the batcher runs after start() made its queue"
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + self.window_s
            while len(batch) < self.max_batch:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), left))
                except TimeoutError:
                    break
            live = [(item, fut) for item, fut in batch if not fut.cancelled()]
            if not live:
                continue
            t = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._pool, self.score, [item for item, _ in live])
            except Exception as e:  # noqa: BLE001 - every waiting request gets the error, the worker lives on
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            if self.on_batch:
                self.on_batch(len(live), time.perf_counter() - t)
            for (_, fut), r in zip(live, results):
                if not fut.done():
                    fut.set_result(r)


__all__ = ["MicroBatcher", "QueueFull"]
