"""The routes: ``POST /v1/detect``, ``GET /v1/detectors``, ``/healthz``, ``/metrics``, the page and its files.
Each handler reads the :class:`Service` it is given; ``app.create_app`` builds one and mounts these."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response

from aigi.io import ImageDecodeError
from aigi.serve.answers import request_records
from aigi.serve.batching import MicroBatcher, QueueFull
from aigi.serve.errors import APIError, error_response
from aigi.serve.limits import Decoder, check_body_headers, check_key, check_query, read_uploads
from aigi.serve.metrics import Metrics
from aigi.serve.settings import ServeSettings

# the body is read by hand (limits before parsing); this tells /docs and clients its shape
DETECT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "One or more images (JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC, AVIF).",
                        }
                    },
                }
            }
        },
    }
}
STATIC = {"app.js": "text/javascript", "style.css": "text/css", "favicon.svg": "image/svg+xml"}


@dataclass
class Service:
    """What the routes share: the detector (loaded once), the settings, the server's operating point, the
    batcher, the decoder and the metrics."""

    detector: Any
    settings: ServeSettings
    threshold: float
    has_map: bool
    batcher: MicroBatcher
    decoder: Decoder
    metrics: Metrics

    def threshold_for(self, threshold: float | None, fpr: float | None) -> float:
        if threshold is None and fpr is None:
            return self.threshold
        try:
            return self.detector.calibration.threshold_for(threshold, fpr)
        except ValueError as e:
            raise APIError("bad_request", str(e)) from None

    def detectors_info(self) -> dict:
        from aigi import DEFAULT_DETECTOR, shipped_detectors
        from aigi.detectors.registry import REGISTRY

        det, cal, s = self.detector, self.detector.calibration, self.settings
        return {
            "serving": {
                "name": det.name,
                "version": det.version,
                "threshold": cal.threshold,
                "calibration": cal.method,
                "unsure_band": cal.unsure_band,
                "has_mask": det.has_mask,
                "has_map": self.has_map,  # ?heatmap=true is accepted only then (a mask head or an evidence map)
            },
            "registered": sorted(REGISTRY),
            "shipped": shipped_detectors(),
            "default": DEFAULT_DETECTOR,
            "limits": {
                "max_request_bytes": s.max_request_bytes,
                "max_files": s.max_files,
                "max_image_bytes": s.max_image_bytes,
                "max_pixels": s.max_pixels,
            },
        }


def static_text(name: str) -> str:
    return resources.files("aigi.serve").joinpath("static", name).read_text(encoding="utf-8")


def add_routes(app: FastAPI, svc: Service) -> None:
    det, s = svc.detector, svc.settings

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "detector": det.name, "detector_version": det.version, "queue_depth": svc.batcher.depth}

    @app.get("/v1/detectors")
    async def detectors():
        return svc.detectors_info()

    @app.get("/metrics")
    async def metrics():
        return svc.metrics.render(svc.batcher.depth)

    @app.post("/v1/detect", summary="Score one or many images (multipart field `files`)", openapi_extra=DETECT_BODY)
    async def detect(
        request: Request,
        heatmap: bool = False,
        threshold: float | None = Query(None, ge=0.0, le=1.0, description="Flag as fake when p_fake >= this."),
        fpr: float | None = Query(
            None, ge=0.0, le=1.0, description="Use the threshold that flags this fraction of validation reals."
        ),
    ):
        check_key(s, request.headers)
        check_query(request.query_params)
        if heatmap and not svc.has_map:
            raise APIError(
                "bad_request",
                f"heatmap=true needs a detector with a mask head or an evidence map; {det.name} has neither",
            )
        thr = svc.threshold_for(threshold, fpr)
        check_body_headers(s, request.headers)
        names, data = await read_uploads(request, s)
        decoded = await asyncio.gather(*[svc.decoder.decode(b, n) for b, n in zip(data, names)])
        shas = [hashlib.sha256(b).hexdigest() for b in data]
        del data
        request.state.images = len(decoded)
        good = [(d, n, heatmap, thr) for d, n in zip(decoded, names) if not isinstance(d, ImageDecodeError)]
        try:
            scored = await svc.batcher.submit(good) if good else []
        except QueueFull as e:
            raise APIError("busy", f"the model is busy ({e}); retry shortly", {"Retry-After": "1"}) from None
        results = request_records(det, decoded, names, shas, scored, thr)
        for r in results:
            svc.metrics.images.labels(r["verdict"]).inc()
        if not good:
            first = results[0]
            more = f" (and {len(results) - 1} more files failed)" if len(results) > 1 else ""
            return error_response("invalid_image", f"{first['path']}: {first['error']}{more}", results=results)
        return {"detector": det.name, "detector_version": det.version, "results": results}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse(static_text("index.html"))

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return Response(static_text("favicon.svg"), media_type="image/svg+xml")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str):
        if name not in STATIC:  # a fixed allow-list: nothing from the request becomes a path
            raise APIError("not_found", f"no static file {name!r}")
        return Response(static_text(name), media_type=STATIC[name])
