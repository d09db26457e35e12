"""The HTTP API and the web page.

Endpoints: ``POST /v1/detect`` (multipart, one or many ``files``), ``GET /v1/detectors``, ``GET /healthz``,
``GET /metrics`` (Prometheus text), ``GET /`` (the page), ``/openapi.json`` and ``/docs``.

Safety, written down:
- Uploads are held in memory only and dropped after the response: the multipart parser's spool limit is
  raised to the upload limit, so no part ever rolls over to a temporary file, and nothing is written
  anywhere. File names from the request are echoed as labels, never used as paths. No URL is fetched.
- Limits: request bytes (from Content-Length, before reading; 411 without it), files per request, bytes
  and pixels per image (``io.decode_bytes``, content sniffed against an allow-list, never the file name),
  and a decode timeout per image. Decoding runs in a thread pool, off the event loop.
- Optional API keys, stored as SHA-256 hashes (``X-API-Key`` header); CORS is off unless origins are given.
- Every error is JSON: ``{"error": {"code": <stable code>, "message": <for humans>}}``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from aigi.contract import draws_map
from aigi.serve.answers import batch_scorer
from aigi.serve.batching import MicroBatcher
from aigi.serve.errors import install_error_handlers
from aigi.serve.limits import Decoder
from aigi.serve.metrics import Metrics, install_access_middleware
from aigi.serve.routes import Service, add_routes
from aigi.serve.settings import ServeSettings, hash_api_key


def create_app(detector, settings: ServeSettings | None = None) -> FastAPI:
    """An app serving ``detector`` (loaded once; every request shares it through the micro-batcher). Bad
    settings (a threshold or --fpr the calibration cannot give) fail here, at start."""
    from starlette.formparsers import MultiPartParser

    from aigi import __version__

    s = settings or ServeSettings()
    # keep every upload in memory: a part larger than the spool limit would roll over to a temp file
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, s.max_request_bytes + 1)
    metrics = Metrics()
    svc = Service(
        detector=detector,
        settings=s,
        threshold=detector.calibration.threshold_for(s.threshold, s.fpr),
        has_map=draws_map(detector),
        batcher=MicroBatcher(
            batch_scorer(detector, s.max_batch, s.heatmap_max_side),
            s.max_batch,
            s.batch_window_ms / 1000,
            s.max_queue,
            metrics.on_batch,
        ),
        # large JPEGs decoded at reduced scale when the model allows
        decoder=Decoder(s, detector.decode_short_side()),
        metrics=metrics,
    )

    @asynccontextmanager
    async def lifespan(app):
        await svc.batcher.start()
        yield
        await svc.batcher.stop()
        svc.decoder.close()

    # /docs and /redoc with Swagger UI and ReDoc served from the installed fastapi-offline package: no CDN
    app = FastAPIOffline(
        title="aigi",
        version=__version__,
        lifespan=lifespan,
        description="Detect AI-generated images. Uploads are scored in memory and never stored.",
    )
    if s.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(s.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["X-API-Key", "Content-Type"],
        )
    install_access_middleware(app, metrics)
    install_error_handlers(app)
    add_routes(app, svc)
    return app


__all__ = ["create_app", "ServeSettings", "hash_api_key"]
