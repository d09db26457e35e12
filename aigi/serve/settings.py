"""The service's settings and API keys."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from aigi.io import DEFAULT_LIMITS, DecodeLimits


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

    @property
    def decode_limits(self) -> DecodeLimits:
        return DecodeLimits(max_bytes=self.max_image_bytes, max_pixels=self.max_pixels)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
