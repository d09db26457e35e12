"""Overlap decoding and preprocessing with the model's forward pass.

Decoding runs in a small thread pool (Pillow releases the GIL while it decodes and
resizes) a few batches ahead of the consumer, which runs the backbone. Results come back
in input order; a failed load is returned as its exception, in its place, so one bad file
never stops a batch or loses the others.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
X = TypeVar("X")


def default_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 2)))


def iter_batches(
    items: Sequence[T], load: Callable[[T], X], batch_size: int, workers: int | None = None, prefetch_batches: int = 2
) -> Iterator[list[tuple[int, X | Exception]]]:
    """Yield lists of ``(index, loaded value or the exception it raised)``, ``batch_size`` at a time."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    window = batch_size * (prefetch_batches + 1)

    def guarded(i: int):
        try:
            return i, load(items[i])
        except Exception as e:  # noqa: BLE001 - handed to the caller in the item's place
            return i, e

    with ThreadPoolExecutor(max_workers=workers or default_workers(), thread_name_prefix="aigi-decode") as pool:
        pending: deque = deque()
        nxt = 0
        while nxt < len(items) and len(pending) < window:
            pending.append(pool.submit(guarded, nxt))
            nxt += 1
        batch: list = []
        while pending:
            batch.append(pending.popleft().result())
            if nxt < len(items):
                pending.append(pool.submit(guarded, nxt))
                nxt += 1
            if len(batch) == batch_size:
                yield batch
                batch = []
        if batch:
            yield batch
