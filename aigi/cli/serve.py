"""``aigi serve``, ``aigi export`` and ``aigi score``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from aigi.cli.common import (
    DETECTOR_HELP,
    app,
    err_console,
    error_line,
    fail,
    load,
    out_console,
)
from aigi.io import DEFAULT_LIMITS


@app.command()
def serve(
    detector: Optional[str] = typer.Option(None, "--detector", "-d", help=DETECTOR_HELP),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (127.0.0.1: this machine only)."),
    port: int = typer.Option(8000),
    device: Optional[str] = typer.Option(None),
    api_key_hash: list[str] = typer.Option(
        [], "--api-key-hash", help="SHA-256 hex of an accepted X-API-Key (repeatable); none: open."
    ),
    cors_origin: list[str] = typer.Option(
        [], "--cors-origin", help="Allow this browser origin (repeatable); none: CORS off."
    ),
    max_request_mb: float = typer.Option(64.0, help="Largest request body, MB."),
    max_files: int = typer.Option(64, help="Most images per request."),
    max_pixels: int = typer.Option(
        DEFAULT_LIMITS.max_pixels, help="Most pixels per image (decompression-bomb guard; the same as aigi detect's)."
    ),
    decode_timeout: float = typer.Option(10.0, help="Seconds allowed to decode one image."),
    max_batch: int = typer.Option(16, help="Most images per model batch."),
    batch_window_ms: float = typer.Option(10.0, help="How long the first waiting image waits for others."),
    max_queue: int = typer.Option(256, help="Most images waiting for the model; beyond it: 503 + Retry-After."),
    threshold: Optional[float] = typer.Option(
        None, help="The server's threshold (default: the detector's); a request may pass its own ?threshold=."
    ),
    fpr: Optional[float] = typer.Option(
        None, help="The server's threshold as the fraction of validation reals it flags (e.g. 0.01); or ?fpr=."
    ),
    body_timeout: float = typer.Option(30.0, help="Seconds a client may take to send its request body."),
    no_provenance: bool = typer.Option(
        False, "--no-provenance", metavar="", help="Do not read what uploads declare; the pixels alone decide."
    ),
):
    """Serve the HTTP API (/v1/detect, /v1/detectors, /healthz, /metrics, /docs) and the web page (/)."""
    try:
        import uvicorn

        from aigi.serve.app import ServeSettings, create_app
    except ImportError as e:
        fail(
            "aigi serve needs the serve extra: bash scripts/install.sh serve "
            f"(or pip install -e '.[serve]' in a clone) ({e})"
        )
    bad = [h for h in api_key_hash if len(h) != 64 or any(c not in "0123456789abcdef" for c in h.lower())]
    if bad:
        fail(f"--api-key-hash takes the SHA-256 hex of a key (64 hex digits), not {bad[0]!r}")
    det = load(detector, device)
    settings = ServeSettings(
        max_request_bytes=int(max_request_mb * 1024 * 1024),
        max_files=max_files,
        max_pixels=max_pixels,
        decode_timeout_s=decode_timeout,
        max_batch=max_batch,
        batch_window_ms=batch_window_ms,
        max_queue=max_queue,
        api_key_hashes=tuple(h.lower() for h in api_key_hash),
        cors_origins=tuple(cors_origin),
        threshold=threshold,
        fpr=fpr,
        body_timeout_s=body_timeout,
        provenance=not no_provenance,
    )
    try:
        thr = det.calibration.threshold_for(threshold, fpr)
        served = create_app(det, settings)
    except ValueError as e:
        fail(str(e))
    if not api_key_hash and not is_loopback(host):
        error_line(
            f"serving on {host}, reachable from other machines, with no API key: anyone who can reach it can use it "
            "(pass --api-key-hash)",
            "warning",
        )
    import logging

    access = logging.getLogger("aigi.access")  # one line per request: method, path, status, images, ms
    access.setLevel(logging.INFO)
    if not access.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        access.addHandler(handler)

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)
            if self.started:  # said only once the port is bound
                err_console.print(
                    f"serving {det.name} {det.version} (threshold {thr:.3f}) on http://{host}:{port}/", highlight=False
                )

    server = Server(uvicorn.Config(served, host=host, port=port, log_level="warning"))
    server.run()
    if not server.started:
        raise typer.Exit(2)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command("export")
def export_cmd(
    detector: Optional[str] = typer.Option(None, "--detector", "-d", help=DETECTOR_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for the detector's files plus model.onnx."),
    onnx: bool = typer.Option(
        True, "--onnx/--no-onnx", metavar="", help="Write the ONNX graph (the only format for now)."
    ),
):
    """Export a trained detector (backbone + head) to one ONNX graph; check onnxruntime against torch."""
    from aigi import WEIGHTS_DIR
    from aigi.export import ExportError, export_onnx

    if not onnx:
        fail("nothing to export: --onnx is the only format")
    det = load(detector, "cpu")
    src = (
        Path(detector).expanduser()
        if detector and Path(detector).expanduser().is_dir()
        else WEIGHTS_DIR / (detector or det.name)
    )
    try:
        r = export_onnx(det, out, source_dir=src)
    except ExportError as e:
        fail(str(e))
    status = "ok" if r["max_abs_diff"] <= 1e-4 else "MISMATCH"
    out_console.print(
        f"wrote {r['path']} (outputs {', '.join(r['outputs'])}); onnxruntime vs torch max |diff| "
        f"{r['max_abs_diff']:.2e} ({status}). Use: aigi detect --detector {out} --runtime onnx IMAGES",
        highlight=False,
    )
    if status != "ok":
        raise typer.Exit(1)


@app.command("score")
def score_cmd(
    data: str = typer.Option(..., "--data", help="A folder, a manifest CSV, or a Parquet file with a `path` column."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for the Parquet shards (a rerun resumes here)."),
    detector: Optional[str] = typer.Option(None, "--detector", "-d", help=DETECTOR_HELP),
    workers: int = typer.Option(1, help="Ray actors, each holding one loaded detector."),
    shard_size: int = typer.Option(256, help="Images per shard (one Parquet file each)."),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address", help="Join this Ray cluster (default: a local one)."
    ),
    batch_size: int = typer.Option(16, help="Images per forward pass within a shard."),
    device: Optional[str] = typer.Option(None),
):
    """Score a corpus with Ray Data into sharded Parquet (the detect record per row); resumable.

    SIGTERM or Ctrl-C stops it with one line; finished shards are kept and a rerun resumes."""
    import signal

    try:
        import pyarrow  # noqa: F401
        import ray  # noqa: F401
    except ImportError:
        fail(
            "aigi score needs Ray Data, which is not installed: bash scripts/install.sh scale "
            "(or pip install -e '.[scale]' in a clone)"
        )
    from aigi.scale import score

    def progress(done, total):
        err_console.print(f"shards done: {done}/{total}", highlight=False)

    from aigi.scale import raise_interrupt

    signal.signal(signal.SIGTERM, raise_interrupt)  # scale.score sets it again after Ray's start
    try:
        summary = score(data, out, detector, shard_size, workers, ray_address, device, batch_size, progress)
    except (ValueError, FileNotFoundError) as e:
        fail(str(e))
    except KeyboardInterrupt:
        done = len(list(Path(out).glob("shard-*.parquet")))
        fail(f"stopped: {done} finished shards are kept in {out}; run the same command again to resume", 130)
    out_console.print(
        f"{summary['n_inputs']} inputs in {summary['n_shards']} shards under {out}: "
        f"{summary['scored_shards']} scored now ({summary['scored_images']} images, {summary['errors']} "
        f"errors, {summary['seconds']} s), {summary['skipped_shards']} already done",
        highlight=False,
    )
