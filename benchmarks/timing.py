"""Best-of-N wall time, shared by the benchmarks (imported as a sibling module when a benchmark runs as a script)."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_of(run: Callable[[], object], repeats: int = 3, warmup: Callable[[], object] | None = None):
    """Run ``warmup`` once (not timed), then ``run`` ``repeats`` times; return (best seconds, all seconds,
    the last result)."""
    if warmup is not None:
        warmup()
    times, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - t)
    return min(times), times, result
