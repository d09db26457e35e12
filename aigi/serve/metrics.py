"""Prometheus metrics and the access log, one instance per app."""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from aigi.serve.errors import error_response

access_log = logging.getLogger("aigi.access")
ROUTES = ("/v1/detect", "/v1/detectors", "/healthz", "/metrics", "/")


class Metrics:
    """Requests by route and status, latency, images by verdict, batch sizes and times, queue depth."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = r = CollectorRegistry()
        self.requests = Counter(
            "aigi_requests_total", "HTTP requests by route and status", ["route", "status"], registry=r
        )
        self.images = Counter("aigi_images_total", "Images answered, by verdict", ["verdict"], registry=r)
        self.latency = Histogram("aigi_request_seconds", "Request latency", ["route"], registry=r)
        self.batch = Histogram(
            "aigi_batch_size", "Images per model batch", buckets=(1, 2, 4, 8, 16, 32, 64), registry=r
        )
        self.batch_s = Histogram("aigi_batch_seconds", "Model time per batch", registry=r)
        self.queue = Gauge("aigi_queue_depth", "Images waiting for the model", registry=r)

    def on_batch(self, n: int, seconds: float) -> None:
        self.batch.observe(n)
        self.batch_s.observe(seconds)

    def on_request(self, path: str, status: int, seconds: float) -> None:
        route = path if path in ROUTES else "other"
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self, queue_depth: int) -> Response:
        from prometheus_client import generate_latest

        self.queue.set(queue_depth)
        return Response(generate_latest(self.registry), media_type="text/plain; version=0.0.4; charset=utf-8")


def install_access_middleware(app: FastAPI, metrics: Metrics) -> None:
    """Count and log every request; an exception becomes a JSON 500 (the server keeps serving), a client that
    went away a 499."""

    @app.middleware("http")
    async def count(request: Request, call_next):
        t = time.perf_counter()
        try:
            response = await call_next(request)
        except ClientDisconnect:  # the client went away: nothing to answer, and no server error
            response = Response(status_code=499)
        except Exception:  # noqa: BLE001 - never a crash, always JSON
            response = error_response("internal", "internal error; the server keeps serving")
        seconds = time.perf_counter() - t
        metrics.on_request(request.url.path, response.status_code, seconds)
        images = getattr(request.state, "images", 0)
        access_log.info(
            "%s %s %d images=%d %.0f ms", request.method, request.url.path, response.status_code, images, seconds * 1000
        )
        return response
