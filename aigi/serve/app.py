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

import asyncio
import base64
import hashlib
import hmac
import io
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi_offline import FastAPIOffline
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from aigi.contract import draws_map
from aigi.explain import overlay_for
from aigi.io import DEFAULT_LIMITS, DecodeLimits, ImageDecodeError, decode_bytes
from aigi.records import make_record, with_operating_point
from aigi.serve.batching import MicroBatcher, QueueFull

access_log = logging.getLogger("aigi.access")

ERROR_STATUS = {
    "bad_request": 400,
    "unauthorized": 401,
    "not_found": 404,
    "method_not_allowed": 405,
    "length_required": 411,
    "payload_too_large": 413,
    "too_many_files": 413,
    "unsupported_media_type": 415,
    "request_timeout": 408,
    "no_files": 400,
    "invalid_image": 422,
    "busy": 503,
    "internal": 500,
}


@dataclass
class ServeSettings:
    max_request_bytes: int = 64 * 1024 * 1024
    max_files: int = 64
    max_image_bytes: int = 32 * 1024 * 1024
    max_pixels: int = DEFAULT_LIMITS.max_pixels  # one limit for the service and `aigi detect`
    decode_timeout_s: float = 10.0
    decode_threads: int = 4
    max_batch: int = 16
    batch_window_ms: float = 10.0
    max_queue: int = 256  # images waiting for the model; more gives 503
    api_key_hashes: tuple[str, ...] = ()  # sha256 hex of accepted keys; empty = no key needed
    threshold: float | None = None  # the server's operating point (default: the detector's stored one)
    fpr: float | None = None  # ... or the threshold that flags this fraction of validation reals
    body_timeout_s: float = 30.0  # a client that has not sent its whole body by then gets 408
    provenance: bool = True  # read what uploads declare (C2PA, generator metadata, watermarks)
    cors_origins: tuple[str, ...] = ()
    heatmap_max_side: int = 512


DETECT_OPTIONS = {"heatmap", "threshold", "fpr"}  # the query options /v1/detect takes; any other is a 400


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class APIError(Exception):
    def __init__(self, code: str, message: str, headers: dict | None = None, status: int | None = None):
        self.code, self.message, self.headers = code, message, headers or {}
        self.status = status or ERROR_STATUS[code]


def error_response(
    code: str, message: str, status: int | None = None, headers: dict | None = None, **extra
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}, **extra},
        status_code=status or ERROR_STATUS[code],
        headers=headers,
    )


def create_app(detector, settings: ServeSettings | None = None) -> FastAPI:
    """An app serving ``detector`` (loaded once; every request shares it through the micro-batcher)."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
    from starlette.formparsers import MultiPartParser

    s = settings or ServeSettings()
    # keep every upload in memory: a part larger than the spool limit would roll over to a temp file
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, s.max_request_bytes + 1)
    limits = DecodeLimits(max_bytes=s.max_image_bytes, max_pixels=s.max_pixels)
    registry = CollectorRegistry()
    m_requests = Counter(
        "aigi_requests_total", "HTTP requests by route and status", ["route", "status"], registry=registry
    )
    m_images = Counter("aigi_images_total", "Images answered, by verdict", ["verdict"], registry=registry)
    m_latency = Histogram("aigi_request_seconds", "Request latency", ["route"], registry=registry)
    m_batch = Histogram(
        "aigi_batch_size", "Images per model batch", buckets=(1, 2, 4, 8, 16, 32, 64), registry=registry
    )
    m_batch_s = Histogram("aigi_batch_seconds", "Model time per batch", registry=registry)
    m_queue = Gauge("aigi_queue_depth", "Images waiting for the model", registry=registry)
    decode_pool = ThreadPoolExecutor(max_workers=s.decode_threads, thread_name_prefix="aigi-decode")

    server_threshold = detector.calibration.threshold_for(s.threshold, s.fpr)  # bad settings fail at start
    has_map = draws_map(detector)
    short_side = detector.decode_short_side()  # large JPEGs decoded at reduced scale when the model allows

    def score(items: list) -> list[dict]:
        images, names, want, thresholds = zip(*items)
        # scored at the batch's lowest threshold, then decided at each request's: whatever is fake or unsure at
        # a higher threshold is so at a lower one too, so no request loses a field kept only for those (attribution)
        low = min(thresholds)
        recs = detector.predict_decoded(list(images), list(names), threshold=low, batch_size=s.max_batch)
        band = detector.calibration.unsure_band
        recs = [r if t == low else with_operating_point(r, t, band) for r, t in zip(recs, thresholds)]
        for rec, img, w in zip(recs, images, want):
            if w:
                over = overlay_for(rec, img.image, detector)
                if over is not None:
                    rec["heatmap_png"] = _png_data_url(over, s.heatmap_max_side)
        return recs

    def on_batch(n: int, seconds: float) -> None:
        m_batch.observe(n)
        m_batch_s.observe(seconds)

    batcher = MicroBatcher(score, s.max_batch, s.batch_window_ms / 1000, s.max_queue, on_batch)

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        yield
        await batcher.stop()
        decode_pool.shutdown(wait=False, cancel_futures=True)

    # /docs and /redoc with Swagger UI and ReDoc served from the installed fastapi-offline package: no CDN
    app = FastAPIOffline(
        title="aigi",
        version=_version(),
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

    @app.middleware("http")
    async def count(request: Request, call_next):
        t = time.perf_counter()
        route = (
            request.url.path
            if request.url.path in ("/v1/detect", "/v1/detectors", "/healthz", "/metrics", "/")
            else "other"
        )
        try:
            response = await call_next(request)
        except ClientDisconnect:  # the client went away: nothing to answer, and no server error
            response = Response(status_code=499)
        except Exception:  # noqa: BLE001 - never a crash, always JSON
            response = error_response("internal", "internal error; the server keeps serving")
        ms = (time.perf_counter() - t) * 1000
        m_requests.labels(route, str(response.status_code)).inc()
        m_latency.labels(route).observe(ms / 1000)
        access_log.info(
            "%s %s %d images=%d %.0f ms",
            request.method,
            request.url.path,
            response.status_code,
            getattr(request.state, "images", 0),
            ms,
        )
        return response

    @app.exception_handler(APIError)
    async def api_error(request, e: APIError):
        return error_response(e.code, e.message, e.status, e.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, e: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(e.status_code, "bad_request")
        return error_response(code, str(e.detail), e.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, e: RequestValidationError):
        said = [
            f"{err['loc'][-1]}={err.get('input')}: {str(err.get('msg', 'invalid')).lower()}" for err in e.errors()[:3]
        ]
        return error_response("bad_request", "invalid query: " + "; ".join(said))

    def check_key(request: Request) -> None:
        if not s.api_key_hashes:
            return
        given = hash_api_key(request.headers.get("x-api-key", ""))
        if not any(hmac.compare_digest(given, h) for h in s.api_key_hashes):
            raise APIError("unauthorized", "missing or wrong X-API-Key")

    async def decode(data: bytes, name: str):
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(decode_pool, decode_bytes, data, name, limits, s.provenance, short_side),
                s.decode_timeout_s,
            )
        except TimeoutError:
            return ImageDecodeError(name, f"decoding took over {s.decode_timeout_s:g} s")
        except ImageDecodeError as e:
            return e

    @app.get("/healthz")
    async def healthz():
        return {
            "status": "ok",
            "detector": detector.name,
            "detector_version": detector.version,
            "queue_depth": batcher.depth,
        }

    @app.get("/v1/detectors")
    async def detectors():
        from aigi import DEFAULT_DETECTOR, shipped_detectors
        from aigi.detectors.registry import REGISTRY

        cal = detector.calibration
        return {
            "serving": {
                "name": detector.name,
                "version": detector.version,
                "threshold": cal.threshold,
                "calibration": cal.method,
                "unsure_band": cal.unsure_band,
                "has_mask": detector.has_mask,
                "has_map": has_map,  # ?heatmap=true is accepted only then (a mask head or an evidence map)
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

    @app.get("/metrics")
    async def metrics():
        m_queue.set(batcher.depth)
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.post(
        "/v1/detect",
        summary="Score one or many images (multipart field `files`)",
        # the body is read by hand (limits before parsing); this tells /docs and clients its shape
        openapi_extra={
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
        },
    )
    async def detect(
        request: Request,
        heatmap: bool = False,
        threshold: float | None = Query(None, ge=0.0, le=1.0, description="Flag as fake when p_fake >= this."),
        fpr: float | None = Query(
            None, ge=0.0, le=1.0, description="Use the threshold that flags this fraction of validation reals."
        ),
    ):
        check_key(request)
        unknown = sorted(set(request.query_params) - DETECT_OPTIONS)
        if unknown:
            raise APIError(
                "bad_request",
                f"unknown query option {', '.join(map(repr, unknown))}; /v1/detect takes "
                + ", ".join(sorted(DETECT_OPTIONS)),
            )
        if heatmap and not has_map:
            raise APIError(
                "bad_request",
                f"heatmap=true needs a detector with a mask head or an evidence map; {detector.name} has neither",
            )
        try:
            custom = threshold is not None or fpr is not None
            thr = detector.calibration.threshold_for(threshold, fpr) if custom else server_threshold
        except ValueError as e:
            raise APIError("bad_request", str(e)) from None
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            raise APIError(
                "unsupported_media_type",
                f"send multipart/form-data with one or more `files`, not {ctype or 'no content type'!r}",
            )
        length = request.headers.get("content-length")
        if length is None:
            raise APIError("length_required", "a Content-Length header is required")
        if not length.isdigit() or int(length) > s.max_request_bytes:
            raise APIError("payload_too_large", f"request is {length} bytes, over the limit of {s.max_request_bytes:,}")
        if int(length) == 0:
            raise APIError("no_files", "empty request: send one or more images in the `files` field")
        try:
            form = await asyncio.wait_for(
                request.form(max_files=s.max_files, max_fields=s.max_files + 8), s.body_timeout_s
            )
        except TimeoutError:
            raise APIError(
                "request_timeout", f"the request body did not arrive within {s.body_timeout_s:g} s"
            ) from None
        except StarletteHTTPException as e:
            if "files" in str(e.detail).lower():
                raise APIError("too_many_files", f"{e.detail} (limit {s.max_files} per request)") from None
            raise APIError("bad_request", f"malformed multipart body: {e.detail}") from None
        try:
            uploads = [u for u in form.getlist("files") if isinstance(u, StarletteUpload)]
            if not uploads:
                raise APIError("no_files", "no images: send them as multipart files in the `files` field")
            names = [str(u.filename or f"upload-{i}")[:200] for i, u in enumerate(uploads)]
            data = [await u.read() for u in uploads]
        finally:
            await form.close()
        decoded = await asyncio.gather(*[decode(b, n) for b, n in zip(data, names)])
        shas = [hashlib.sha256(b).hexdigest() for b in data]
        del data
        request.state.images = len(decoded)
        good = [(d, n, heatmap, thr) for d, n in zip(decoded, names) if not isinstance(d, ImageDecodeError)]
        try:
            scored = iter(await batcher.submit(good) if good else [])
        except QueueFull as e:
            raise APIError("busy", f"the model is busy ({e}); retry shortly", {"Retry-After": "1"}) from None
        results = []
        for d, n, sha in zip(decoded, names, shas):
            if isinstance(d, ImageDecodeError):
                results.append(
                    make_record(
                        n,
                        sha256=sha,
                        error=d.reason,
                        threshold=thr,
                        detector=detector.name,
                        detector_version=detector.version,
                        error_code="invalid_image",
                    )
                )
            else:
                results.append(next(scored))
        for r in results:
            m_images.labels(r["verdict"]).inc()
        body = {"detector": detector.name, "detector_version": detector.version, "results": results}
        if not good:
            first = results[0]
            return error_response(
                "invalid_image",
                f"{first['path']}: {first['error']}"
                + (f" (and {len(results) - 1} more files failed)" if len(results) > 1 else ""),
                results=results,
            )
        return body

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse(_static("index.html"))

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return Response(_static("favicon.svg"), media_type="image/svg+xml")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str):
        kinds = {"app.js": "text/javascript", "style.css": "text/css", "favicon.svg": "image/svg+xml"}
        if name not in kinds:  # a fixed allow-list: nothing from the request becomes a path
            raise APIError("not_found", f"no static file {name!r}")
        return Response(_static(name), media_type=kinds[name])

    return app


def _static(name: str) -> str:
    return resources.files("aigi.serve").joinpath("static", name).read_text(encoding="utf-8")


def _version() -> str:
    from aigi import __version__

    return __version__


def _png_data_url(img, max_side: int) -> str:
    img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


__all__ = ["create_app", "ServeSettings", "hash_api_key"]
