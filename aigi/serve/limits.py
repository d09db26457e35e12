"""What a request must be before anything is read or decoded: the key, the query, the content type and
length, the number of files; then the body within its time limit and each image decoded with limits in a thread
pool, within its own. Every refusal is an :class:`~aigi.serve.errors.APIError` with a stable code."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from aigi.io import ImageDecodeError, decode_bytes
from aigi.serve.errors import APIError
from aigi.serve.settings import ServeSettings, hash_api_key

DETECT_OPTIONS = {"heatmap", "threshold", "fpr"}  # the query options /v1/detect takes; any other is a 400


def check_key(s: ServeSettings, headers: Mapping[str, str]) -> None:
    """With API keys configured, ``X-API-Key`` must hash to one of them (compared in constant time)."""
    if not s.api_key_hashes:
        return
    given = hash_api_key(headers.get("x-api-key", ""))
    if not any(hmac.compare_digest(given, h) for h in s.api_key_hashes):
        raise APIError("unauthorized", "missing or wrong X-API-Key")


def check_query(query: Mapping[str, str]) -> None:
    unknown = sorted(set(query) - DETECT_OPTIONS)
    if unknown:
        raise APIError(
            "bad_request",
            f"unknown query option {', '.join(map(repr, unknown))}; /v1/detect takes "
            + ", ".join(sorted(DETECT_OPTIONS)),
        )


def check_body_headers(s: ServeSettings, headers: Mapping[str, str]) -> None:
    """Multipart, with a Content-Length within the request limit and above 0 (checked before reading a byte)."""
    ctype = headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise APIError(
            "unsupported_media_type",
            f"send multipart/form-data with one or more `files`, not {ctype or 'no content type'!r}",
        )
    length = headers.get("content-length")
    if length is None:
        raise APIError("length_required", "a Content-Length header is required")
    if not length.isdigit() or int(length) > s.max_request_bytes:
        raise APIError("payload_too_large", f"request is {length} bytes, over the limit of {s.max_request_bytes:,}")
    if int(length) == 0:
        raise APIError("no_files", "empty request: send one or more images in the `files` field")


async def read_uploads(request, s: ServeSettings) -> tuple[list[str], list[bytes]]:
    """The ``files`` parts' names (labels only, never paths; 200 characters at most) and bytes, in memory."""
    try:
        form = await asyncio.wait_for(request.form(max_files=s.max_files, max_fields=s.max_files + 8), s.body_timeout_s)
    except TimeoutError:
        raise APIError("request_timeout", f"the request body did not arrive within {s.body_timeout_s:g} s") from None
    except StarletteHTTPException as e:
        if "files" in str(e.detail).lower():
            raise APIError("too_many_files", f"{e.detail} (limit {s.max_files} per request)") from None
        raise APIError("bad_request", f"malformed multipart body: {e.detail}") from None
    try:
        uploads = [u for u in form.getlist("files") if isinstance(u, UploadFile)]
        if not uploads:
            raise APIError("no_files", "no images: send them as multipart files in the `files` field")
        names = [str(u.filename or f"upload-{i}")[:200] for i, u in enumerate(uploads)]
        return names, [await u.read() for u in uploads]
    finally:
        await form.close()


class Decoder:
    """Decodes uploads off the event loop (``io.decode_bytes``: sniffed formats, byte and pixel limits), each
    within ``decode_timeout_s``; a bad image comes back as its ImageDecodeError, never raised."""

    def __init__(self, s: ServeSettings, short_side: int = 0):
        self.s, self.short_side = s, short_side
        self.limits = s.decode_limits
        self.pool = ThreadPoolExecutor(max_workers=s.decode_threads, thread_name_prefix="aigi-decode")

    async def decode(self, data: bytes, name: str):
        loop = asyncio.get_running_loop()
        s = self.s
        try:
            job = loop.run_in_executor(self.pool, decode_bytes, data, name, self.limits, s.provenance, self.short_side)
            return await asyncio.wait_for(job, s.decode_timeout_s)
        except TimeoutError:
            return ImageDecodeError(name, f"decoding took over {s.decode_timeout_s:g} s")
        except ImageDecodeError as e:
            return e

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
