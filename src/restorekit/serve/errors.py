"""The service's one error map: every failure becomes JSON ``{success: false, error, message, code}`` with a 4xx/5xx.

:func:`error_response` is the only place that decides status and code; the
exception handlers installed by :func:`install_error_handlers` and the body-size
middleware all call it.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from restorekit.errors import ImageReadError, RestoreKitError

log = logging.getLogger("restorekit.serve")

SUMMARY = {
    400: "Bad request",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid request",
    500: "Restoration failed",
    503: "Server busy",
    504: "Restoration timed out",
}


class ApiError(Exception):
    """An error answer: HTTP ``status``, machine ``code``, human ``detail``."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}


class BodyTooLarge(Exception):
    """Raised by the capped ``receive`` when a streamed request body passes the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body exceeds the limit of {limit:,} bytes")
        self.limit = limit


class ModelUnavailable(Exception):
    """The requested model could not be loaded (a server-side problem: 500)."""


def unsupported_media(content_type: str | None) -> ApiError | None:
    """415 for a ``Content-Type`` ``POST /v1/restore`` does not take (None when it is supported)."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in ("multipart/form-data", "application/json", "application/octet-stream") or ctype.startswith("image/"):
        return None
    return ApiError(
        415,
        "unsupported_media_type",
        f"Content-Type '{ctype or '(none)'}' not supported: send multipart/form-data (field 'image'), "
        "application/json {'image': base64} or image/* bytes",
    )


def error_body(status: int, code: str, detail: str) -> dict[str, Any]:
    """The JSON body of every error answer."""
    return {"success": False, "error": detail, "message": SUMMARY.get(status, "Error"), "code": code}


def classify(exc: BaseException) -> ApiError:
    """The :class:`ApiError` (status, code, detail) for any exception a request can raise."""
    from restorekit.serve.core import UploadTooLargeError

    if isinstance(exc, ApiError):
        return exc
    cause = exc.__cause__
    if isinstance(exc, BodyTooLarge) or isinstance(cause, BodyTooLarge):
        big = exc if isinstance(exc, BodyTooLarge) else cause
        return ApiError(413, "body_too_large", str(big))
    if isinstance(exc, UploadTooLargeError):
        return ApiError(413, f"too_many_{exc.limit}", str(exc))
    if isinstance(exc, ImageReadError):
        return ApiError(400, "bad_image", str(exc))
    if isinstance(exc, ModelUnavailable):
        return ApiError(500, "model_unavailable", str(exc))
    if isinstance(exc, RestoreKitError):
        return ApiError(400, type(exc).__name__, str(exc))
    if isinstance(exc, RequestValidationError):
        parts = []
        for e in exc.errors():
            loc = [str(p) for p in e.get("loc", ()) if p not in ("query", "body")]
            msg = str(e.get("msg", e)).removeprefix("Value error, ")
            if e.get("type") == "extra_forbidden":
                msg = "unknown parameter"
            parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
        return ApiError(400, "bad_parameter", "; ".join(parts) or "invalid request")
    if isinstance(exc, StarletteHTTPException):
        code = "bad_multipart" if exc.status_code == 400 and "parsing the body" in str(exc.detail) else "http_error"
        detail = f"malformed multipart body ({cause})" if code == "bad_multipart" and cause else str(exc.detail)
        return ApiError(exc.status_code, code, detail, dict(exc.headers or {}))
    if isinstance(exc, MemoryError):
        return ApiError(500, "out_of_memory", "out of memory while restoring; try a smaller tile or image")
    return ApiError(500, "restore_failed", f"{type(exc).__name__}: {exc}")


def error_response(exc: BaseException) -> JSONResponse:
    """The JSON answer for ``exc`` (see :func:`classify`)."""
    err = classify(exc)
    if err.status >= 500 and not isinstance(exc, ApiError):
        log.error("request failed: %s", err.detail, exc_info=exc)
    return JSONResponse(error_body(err.status, err.code, err.detail), status_code=err.status, headers=err.headers or None)


def install_error_handlers(app: FastAPI, on_error: Callable[[], None]) -> None:
    """Route every exception a request can raise through :func:`error_response`; ``on_error`` counts them."""

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        on_error()
        if isinstance(exc, RequestValidationError) and request.method == "POST":
            wrong_type = unsupported_media(request.headers.get("content-type"))
            if wrong_type is not None:  # e.g. a urlencoded form whose fields did not validate
                return error_response(wrong_type)
        return error_response(exc)

    for kind in (ApiError, BodyTooLarge, RestoreKitError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(kind, handler)
