"""Corpus-scale scoring on Ray Data: ``aigi score --data SOURCE --out DIR``.

The inputs (a folder, a manifest, or a Parquet file with a ``path`` column) are listed once, in a fixed
order, and cut into shards of ``shard_size`` paths. Ray Data maps the shards over ``workers`` actors,
each holding one loaded detector; an actor scores a shard with ``Detector.predict`` (bad files become
records with their error, never a failure) and writes ``shard-NNNNN.parquet`` atomically (a temporary
name, then a rename). A rerun lists the same inputs, finds the shards already on disk and scores only
the others, so an interrupted run resumes where it stopped. ``--ray-address`` joins an existing cluster;
by default Ray starts locally (no cluster needed).

Each row is the ``detect`` record as a flat row (``records.ROW_FIELDS``: the fields, ``reason``, ``note``),
and ``extra``: the method-specific fields (ITEM's caption, GAMMA's mask ...) as a JSON string. ``_run.json`` records the
inputs' fingerprint and the shard size; a rerun with other inputs or another shard size is refused while shards of
the first run are there (a run that died before its first shard blocks nothing).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from aigi.records import FLOAT_FIELDS, INT_FIELDS, ROW_FIELDS, to_row

RUN_FILE = "_run.json"
COLUMNS = list(ROW_FIELDS)


def list_inputs(source: str) -> list[str]:
    """Paths to score: a Parquet file's ``path`` column, a manifest's or a labelled folder's paths, or
    every image under a plain folder."""
    p = Path(source)
    if p.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(p, columns=["path"])
        return [str(x) for x in table.column("path").to_pylist()]
    if p.is_dir():
        from aigi.data.manifest import find_images

        return find_images(p)[0]
    from aigi.data import load_data

    return [s.path for s in load_data(source)]


def signals_during(fn) -> set[int]:
    """Run ``fn`` and return the numbers of the signals delivered meanwhile, whichever Python handler took them
    (the interpreter writes each to the wakeup fd). Outside the main thread: runs ``fn``, returns none."""
    import socket

    if threading.current_thread() is not threading.main_thread():
        fn()
        return set()
    r, w = socket.socketpair()
    r.setblocking(False)
    w.setblocking(False)
    old = signal.set_wakeup_fd(w.fileno(), warn_on_full_buffer=False)
    try:
        fn()
    finally:
        signal.set_wakeup_fd(old)
    got: set[int] = set()
    try:
        while data := r.recv(64):
            got.update(data)
    except BlockingIOError:
        pass
    r.close()
    w.close()
    return got


def raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def shard_name(i: int) -> str:
    return f"shard-{i:05d}.parquet"


def write_shard(records: list[dict], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def kind(c):
        return pa.float64() if c in FLOAT_FIELDS else pa.int64() if c in INT_FIELDS else pa.string()

    schema = pa.schema([(c, kind(c)) for c in COLUMNS])
    table = pa.Table.from_pylist([to_row(r) for r in records], schema=schema)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


class ShardScorer:
    """A Ray actor: one loaded detector, scoring whole shards."""

    def __init__(self, detector: str | None, device: str | None, out_dir: str, threads: int, batch_size: int):
        import torch

        from aigi import load_detector

        torch.set_num_threads(max(1, threads))
        os.environ["AIGI_ONNX_THREADS"] = str(max(1, threads))  # the worker's share of the cores, for onnxruntime too
        self.det = load_detector(detector, device)
        self.out, self.batch_size = Path(out_dir), batch_size

    def __call__(self, batch: dict) -> dict:
        shards, counts, errors, seconds = [], [], [], []
        for i, paths in zip(batch["shard"], batch["paths"]):
            t = time.perf_counter()
            recs = self.det.predict([str(p) for p in paths], batch_size=self.batch_size)
            write_shard(recs, self.out / shard_name(int(i)))
            shards.append(int(i))
            counts.append(len(recs))
            errors.append(sum(r["verdict"] == "error" for r in recs))
            seconds.append(time.perf_counter() - t)
        return {"shard": shards, "n": counts, "errors": errors, "seconds": seconds}


def worker_env() -> dict:
    """The local Ray workers' runtime environment. Ray puts the driver's working directory first on the workers'
    ``sys.path``; a folder named ``aigi`` there (the parent of a clone) would shadow an editable install as an empty
    namespace package. The folder that holds this package goes on ``PYTHONPATH``, where a regular package wins."""
    home = str(Path(__file__).resolve().parent.parent)
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in (home, os.environ.get("PYTHONPATH")) if p)}}


def score(
    source: str,
    out_dir: str | Path,
    detector: str | None = None,
    shard_size: int = 256,
    workers: int = 1,
    ray_address: str | None = None,
    device: str | None = None,
    batch_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Score every input of ``source`` into Parquet shards under ``out_dir``; returns a summary."""
    import ray

    paths = list_inputs(source)
    if not paths:
        raise ValueError(f"{source}: no inputs to score")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = hashlib.sha256("\n".join(paths).encode()).hexdigest()
    from aigi import load_detector

    # the version (weights + calibration hash), so a changed default is never resumed into mixed shards
    version = load_detector(detector, "cpu").version
    run = {
        "source": str(source),
        "n_inputs": len(paths),
        "inputs_sha256": fingerprint,
        "shard_size": shard_size,
        "detector": version,
    }
    run_file = out / RUN_FILE
    # a run that died before its first shard holds nothing: its record never blocks the next run
    if run_file.exists() and any(out.glob("shard-*.parquet")):
        old = json.loads(run_file.read_text())
        same = {k: old.get(k) for k in ("inputs_sha256", "shard_size", "detector")}
        if same != {k: run[k] for k in same}:
            raise ValueError(
                f"{out} holds a run over other inputs or settings ({old.get('source')}, shard size "
                f"{old.get('shard_size')}, detector {old.get('detector')}); use another --out"
            )
    else:
        run_file.write_text(json.dumps(run, indent=1))
    shards = [paths[i : i + shard_size] for i in range(0, len(paths), shard_size)]
    todo = [i for i in range(len(shards)) if not (out / shard_name(i)).exists()]
    done_before = len(shards) - len(todo)
    t0 = time.time()
    summary = {
        "n_inputs": len(paths),
        "n_shards": len(shards),
        "skipped_shards": done_before,
        "scored_shards": 0,
        "scored_images": 0,
        "errors": 0,
        "workers": workers,
    }
    if todo:
        started_here = not ray.is_initialized()
        try:  # a stop while Ray starts must shut down what it started too (it hung at exit otherwise)
            if started_here:
                kw = (
                    {"address": ray_address}
                    if ray_address
                    else {"num_cpus": max(workers, os.cpu_count() or 1), "runtime_env": worker_env()}
                )
                got = signals_during(
                    lambda: ray.init(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True, **kw)
                )
                if signal.SIGTERM in got:  # Ray's start has its own SIGTERM handler, and can swallow its exit
                    raise KeyboardInterrupt
            if threading.current_thread() is threading.main_thread():
                # Ray installs its own SIGTERM handler (a stack dump and exit 15); a SIGTERM here is a stop
                # like Ctrl-C: finished shards stay, the caller says so in one line
                signal.signal(signal.SIGTERM, raise_interrupt)
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = False
            ds = ray.data.from_items([{"shard": i, "paths": shards[i]} for i in todo], override_num_blocks=len(todo))
            threads = max(1, (os.cpu_count() or 1) // workers)
            results = ds.map_batches(
                ShardScorer,
                batch_size=1,
                concurrency=workers,
                num_cpus=1,
                fn_constructor_kwargs=dict(
                    detector=detector, device=device, out_dir=str(out), threads=threads, batch_size=batch_size
                ),
            )
            for row in results.iter_rows():
                summary["scored_shards"] += 1
                summary["scored_images"] += int(row["n"])
                summary["errors"] += int(row["errors"])
                if progress:
                    progress(done_before + summary["scored_shards"], len(shards))
        finally:
            if started_here:
                ray.shutdown()
    summary["seconds"] = round(time.time() - t0, 2)
    summary["images_per_second"] = summary["scored_images"] / summary["seconds"] if summary["seconds"] else None
    return summary


def read_results(out_dir: str | Path):
    """Every row written under ``out_dir`` as one pyarrow Table, in input order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(Path(out_dir).glob("shard-*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]) if files else None


__all__ = ["score", "list_inputs", "read_results", "COLUMNS"]
