"""Every error the service answers is JSON: ``{"error": {"code": <stable code>, "message": <for humans>}}``."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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


def http_error_code(status: int) -> str:
    """The stable code of a framework error (an unknown route or method, a body over a limit)."""
    return {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(status, "bad_request")


def validation_message(errors: list[dict]) -> str:
    """A bad query's first three problems, one line."""
    said = [f"{e['loc'][-1]}={e.get('input')}: {str(e.get('msg', 'invalid')).lower()}" for e in errors[:3]]
    return "invalid query: " + "; ".join(said)


def install_error_handlers(app: FastAPI) -> None:
    """APIError, the framework's HTTP errors and query validation errors, all as JSON with a stable code."""

    @app.exception_handler(APIError)
    async def api_error(request, e: APIError):
        return error_response(e.code, e.message, e.status, e.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, e: StarletteHTTPException):
        return error_response(http_error_code(e.status_code), str(e.detail), e.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, e: RequestValidationError):
        return error_response("bad_request", validation_message(list(e.errors())))
