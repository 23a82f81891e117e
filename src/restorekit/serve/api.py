"""FastAPI service: ``POST /v1/restore``, ``GET /healthz``, ``GET /v1/models`` (+ OpenAPI docs at ``/docs``).

``POST /v1/restore`` accepts

* ``multipart/form-data`` with the image in a file field ``image`` (or ``file``),
* a raw body with ``Content-Type: image/*`` or ``application/octet-stream``,

and answers with the restored image bytes; the format is ``?format=png|jpeg|tiff|webp``
or negotiated from ``Accept`` (PNG by default). It also accepts the deblurring seed's
JSON form ``{"image": "<base64>"}`` and answers ``{success, deblurred_image: data-URL,
original_image, processing_time, image_size}`` (JPEG quality 90 unless ``?format=``).
Optional query parameters: ``model``, ``tile``, ``overlap``, ``quality``.

Robustness: request bodies are capped while they stream in (413), uploads are
decoded under byte and pixel limits (413), at most ``max_concurrency`` inferences
run at once in a thread pool (so the event loop keeps answering), further
requests wait up to ``queue_timeout_s`` in a queue of at most ``max_queue``
and otherwise get 503 with ``Retry-After``; an inference that exceeds
``request_timeout_s`` answers 504 (its slot is freed when the thread finishes).
Every error is JSON ``{"success": false, "error": <detail>, "message": <summary>, "code": <code>}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from restorekit.errors import ConfigError, ImageReadError, RestoreKitError
from restorekit.serve.core import (
    OUTPUT_FORMATS,
    Limits,
    ModelStore,
    RestoreResult,
    RestoreSettings,
    UploadTooLargeError,
    decode_base64_image,
    probe_upload,
    format_for_mime,
    normalize_format,
    parse_overlap,
    parse_tile,
    restore_bytes,
    seed_json_response,
    warm_up,
)

log = logging.getLogger("restorekit.serve")


@dataclass
class ServeConfig:
    """Settings of the HTTP service (the ``restorekit serve`` flags)."""

    models: list[str] = field(default_factory=list)
    models_dir: str | None = None
    device: str = "auto"
    settings: RestoreSettings = field(default_factory=RestoreSettings)
    limits: Limits = field(default_factory=Limits)
    max_concurrency: int = 1
    max_queue: int = 32
    queue_timeout_s: float = 30.0
    request_timeout_s: float = 300.0
    retry_after_s: int = 2
    cors_origins: list[str] = field(default_factory=list)
    default_format: str = "png"
    quality: int = 95
    json_format: str = "jpeg"
    json_quality: int = 90
    preload: bool = True

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be >= 1, got {self.max_concurrency}")
        if self.max_queue < 0:
            raise ConfigError(f"max_queue must be >= 0, got {self.max_queue}")
        if self.queue_timeout_s < 0 or self.request_timeout_s <= 0:
            raise ConfigError("queue_timeout_s must be >= 0 and request_timeout_s > 0")
        self.default_format = normalize_format(self.default_format, setting="default_format")
        self.json_format = normalize_format(self.json_format, setting="json_format")


class ApiError(Exception):
    """An error answer: HTTP ``status``, machine ``code``, human ``detail``."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}


_SUMMARY = {
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


def error_body(status: int, code: str, detail: str) -> dict[str, Any]:
    """The JSON body of every error answer."""
    return {"success": False, "error": detail, "message": _SUMMARY.get(status, "Error"), "code": code}


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB."""
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return ru / 1024.0 / (1024.0 if sys.platform == "darwin" else 1.0)


# --------------------------------------------------------------------------- body size cap


class _ModelUnavailable(Exception):
    """The requested model could not be loaded (a server-side problem: 500)."""


class BodyTooLarge(Exception):
    """Raised by the capped ``receive`` when a request body passes the limit."""


class BodyLimitMiddleware:
    """Pure ASGI middleware refusing bodies over ``max_bytes`` with 413 (by Content-Length, or while streaming)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    declared = None
        if declared is not None and declared > self.max_bytes:
            await self._drain(receive)
            await self._reply_413(send, declared)
            return
        seen = 0
        started = False

        async def capped_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, capped_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._reply_413(send, None)

    async def _drain(self, receive: Callable, cap: int = 256 * 1024 * 1024) -> None:
        """Read (and drop) the body so the client can read our answer; give up after ``cap`` bytes."""
        n = 0
        while n < cap:
            message = await receive()
            if message["type"] != "http.request":
                return
            n += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def _reply_413(self, send: Callable, declared: int | None) -> None:
        size = f"{declared:,} bytes" if declared is not None else "the request body"
        body = json.dumps(
            error_body(413, "body_too_large", f"{size} exceeds the request body limit of {self.max_bytes:,} bytes")
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- concurrency gate


class InferenceGate:
    """Bounds concurrent inferences to ``slots``; at most ``max_queue`` requests wait, each up to ``timeout_s``."""

    def __init__(self, slots: int, max_queue: int, timeout_s: float) -> None:
        self.slots = slots
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.running = 0
        self.waiting = 0
        self._sem: asyncio.Semaphore | None = None

    @property
    def sem(self) -> asyncio.Semaphore:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.slots)
        return self._sem

    async def acquire(self) -> bool:
        """Take a slot; False when the queue is full or the wait timed out."""
        if not self.sem.locked():
            await self.sem.acquire()
            self.running += 1
            return True
        if self.waiting >= self.max_queue or self.timeout_s <= 0:
            return False
        self.waiting += 1
        try:
            await asyncio.wait_for(self.sem.acquire(), self.timeout_s)
        except (asyncio.TimeoutError, TimeoutError):
            return False
        finally:
            self.waiting -= 1
        self.running += 1
        return True

    def release(self) -> None:
        self.running -= 1
        self.sem.release()


# --------------------------------------------------------------------------- request parsing


def choose_format(query_format: str | None, accept: str | None, default: str) -> str:
    """Output format from ``?format=`` (wins) or the ``Accept`` header (q-values honoured), else ``default``."""
    if query_format:
        try:
            return normalize_format(query_format)
        except ConfigError as exc:
            raise ApiError(400, "bad_format", str(exc)) from exc
    if not accept:
        return default
    prefs: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept.split(",")):
        bits = [b.strip() for b in part.split(";")]
        mime = bits[0].lower()
        q = 1.0
        for b in bits[1:]:
            if b.startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        if mime and q > 0:
            prefs.append((-q, i, mime))
    for _, _, mime in sorted(prefs):
        if mime in ("*/*", "image/*"):
            return default
        key = format_for_mime(mime)
        if key is not None:
            return key
    if not prefs:
        return default
    raise ApiError(
        406,
        "not_acceptable",
        f"cannot produce any of Accept: {accept}; available: {', '.join(m for _, m, _ in OUTPUT_FORMATS.values())}",
    )


def _int_param(value: str | None, name: str, lo: int, hi: int) -> int | None:
    if value is None or value == "":
        return None
    try:
        n = int(value)
    except ValueError as exc:
        raise ApiError(400, "bad_parameter", f"{name} must be an integer in [{lo}, {hi}], got {value!r}") from exc
    if not lo <= n <= hi:
        raise ApiError(400, "bad_parameter", f"{name} must be an integer in [{lo}, {hi}], got {n}")
    return n


def _settings_from_query(base: RestoreSettings, params: Any) -> RestoreSettings:
    try:
        tile = parse_tile(params.get("tile"))
        overlap = parse_overlap(params.get("overlap"))
    except ConfigError as exc:
        raise ApiError(400, "bad_parameter", str(exc)) from exc
    return base.with_values(tile=tile, overlap=overlap)


_RESTORE_OPENAPI = {
    "parameters": [
        {"name": "model", "in": "query", "required": False, "schema": {"type": "string"}, "description": "model name (GET /v1/models); default: the first"},
        {"name": "format", "in": "query", "required": False, "schema": {"type": "string", "enum": ["png", "jpeg", "tiff", "webp"]}, "description": "output format (else from Accept; PNG by default, JPEG for the JSON form)"},
        {"name": "tile", "in": "query", "required": False, "schema": {"type": "string"}, "description": "'auto', 0 (no tiling) or a tile size in pixels"},
        {"name": "overlap", "in": "query", "required": False, "schema": {"type": "string"}, "description": "tile overlap: pixels or a fraction in (0,1)"},
        {"name": "quality", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 100}, "description": "JPEG/WebP quality"},
    ],
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"image": {"type": "string", "format": "binary"}}, "required": ["image"]}
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"image": {"type": "string", "description": "base64 of the image file (a data: URL is accepted)"}},
                    "required": ["image"],
                }
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    "responses": {
        "200": {
            "description": "restored image bytes (multipart/raw upload) or the seed JSON answer (JSON upload)",
            "content": {
                "image/png": {},
                "image/jpeg": {},
                "image/tiff": {},
                "image/webp": {},
                "application/json": {
                    "example": {
                        "success": True,
                        "deblurred_image": "data:image/jpeg;base64,...",
                        "original_image": "data:image/png;base64,...",
                        "processing_time": "0.4s",
                        "image_size": "640x480",
                    }
                },
            },
        },
        "400": {"description": "not an image, truncated, empty, bad JSON or bad parameter"},
        "404": {"description": "unknown model"},
        "406": {"description": "no acceptable output format"},
        "413": {"description": "upload over the byte or pixel limit"},
        "415": {"description": "unsupported Content-Type"},
        "503": {"description": "all inference slots busy and the queue full or timed out (Retry-After)"},
        "504": {"description": "inference exceeded the request timeout"},
    },
}


# --------------------------------------------------------------------------- the app


def create_app(config: ServeConfig | None = None, *, store: ModelStore | None = None) -> FastAPI:
    """Build the FastAPI application for ``config`` (models from ``store`` when given).

    Raises :class:`~restorekit.errors.RestoreKitError` for a missing model file or
    folder; with ``config.preload`` the default model is loaded here, so a broken
    package fails before the server binds its port.
    """
    from restorekit import __version__

    cfg = config or ServeConfig()
    models = store or ModelStore(cfg.models, cfg.models_dir, device=cfg.device)
    if not models.names():
        raise ConfigError("no model configured: pass --model PATH or --models-dir DIR")
    if cfg.preload:
        warm_up(models.get(), cfg.settings)
    body_limit = int(math.ceil(cfg.limits.max_upload_bytes * 4 / 3)) + 64 * 1024  # base64 / multipart overhead
    gate = InferenceGate(cfg.max_concurrency, cfg.max_queue, cfg.queue_timeout_s)
    state: dict[str, Any] = {"executor": None, "served": 0, "errors": 0, "started": time.time()}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state["executor"] = ThreadPoolExecutor(max_workers=cfg.max_concurrency, thread_name_prefix="restorekit-infer")
        try:
            yield
        finally:
            state["executor"].shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="restorekit",
        version=__version__,
        description="Image restoration service. POST an image to /v1/restore; see GET /v1/models for the models.",
        lifespan=lifespan,
    )
    app.state.config = cfg
    app.state.store = models
    app.state.gate = gate

    def json_error(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
        state["errors"] += 1
        return JSONResponse(error_body(status, code, detail), status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return json_error(exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(RestoreKitError)
    async def _rk_error(request: Request, exc: RestoreKitError) -> JSONResponse:
        return json_error(400, type(exc).__name__, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return json_error(422, "invalid_request", "; ".join(str(e.get("msg", e)) for e in exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return json_error(exc.status_code, "http_error", str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - last resort
        log.exception("unexpected error")
        return json_error(500, "internal_error", f"{type(exc).__name__}: {exc}")

    @app.get("/healthz", summary="liveness and load")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "models": models.names(),
            "default_model": models.default_name,
            "device": models.device,
            "in_flight": gate.running,
            "queued": gate.waiting,
            "max_concurrency": cfg.max_concurrency,
            "served": state["served"],
            "errors": state["errors"],
            "uptime_s": round(time.time() - state["started"], 3),
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }

    @app.get("/v1/models", summary="available models")
    async def list_models() -> dict[str, Any]:
        return {
            "default": models.default_name,
            "models": models.describe(),
            "limits": {"max_upload_bytes": cfg.limits.max_upload_bytes, "max_pixels": cfg.limits.max_pixels},
            "formats": list(OUTPUT_FORMATS),
        }

    async def read_upload(request: Request) -> tuple[bytes, str, bool]:
        """(image bytes, name, is_json_form) from the request body."""
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        try:
            if ctype == "multipart/form-data":
                try:
                    form = await request.form(max_files=4, max_fields=16)
                except BodyTooLarge:
                    raise
                except Exception as exc:  # noqa: BLE001 - malformed multipart
                    raise ApiError(400, "bad_multipart", f"malformed multipart body ({exc})") from exc
                upload = form.get("image") or form.get("file")
                if not isinstance(upload, UploadFile):
                    raise ApiError(400, "missing_image", "multipart body has no file field 'image' (or 'file')")
                data = await upload.read()
                return data, upload.filename or "upload", False
            if ctype == "application/json":
                raw = await request.body()
                try:
                    payload = json.loads(raw)
                except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, absurd nesting
                    raise ApiError(400, "bad_json", f"request body is not valid JSON ({type(exc).__name__}: {exc})") from exc
                if not isinstance(payload, dict):
                    raise ApiError(400, "bad_json", f"JSON body must be an object with an 'image' field, got {type(payload).__name__}")
                if not payload.get("image"):
                    raise ApiError(400, "missing_image", "JSON body has no 'image' field (base64 of the image file)")
                try:
                    data = decode_base64_image(payload["image"], name="image")
                except ImageReadError as exc:
                    raise ApiError(400, "bad_base64", str(exc)) from exc
                return data, str(payload.get("name") or "image"), True
            if ctype.startswith("image/") or ctype == "application/octet-stream":
                return await request.body(), "upload", False
        except BodyTooLarge as exc:
            raise ApiError(413, "body_too_large", f"request body exceeds the limit of {body_limit:,} bytes") from exc
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type '{ctype or '(none)'}' not supported: send multipart/form-data (field 'image'), "
            "application/json {'image': base64} or image/* bytes",
        )

    @app.post("/v1/restore", summary="restore one image", openapi_extra=_RESTORE_OPENAPI)
    async def restore(request: Request) -> Response:
        t0 = time.perf_counter()
        params = request.query_params
        data, name, json_form = await read_upload(request)
        if json_form:
            fmt = choose_format(params.get("format"), None, cfg.json_format)
            quality = _int_param(params.get("quality"), "quality", 1, 100) or cfg.json_quality
        else:
            fmt = choose_format(params.get("format"), request.headers.get("accept"), cfg.default_format)
            quality = _int_param(params.get("quality"), "quality", 1, 100) or cfg.quality
        settings = _settings_from_query(cfg.settings, params)
        model_name = params.get("model") or models.default_name
        if model_name not in models.names():
            raise ApiError(404, "unknown_model", f"unknown model '{model_name}'; available: {', '.join(models.names())}")
        try:  # header only: bad and oversized files are refused before they queue
            await asyncio.to_thread(probe_upload, data, name=name, limits=cfg.limits)
        except UploadTooLargeError as exc:
            raise ApiError(413, f"too_many_{exc.limit}", str(exc)) from exc
        except ImageReadError as exc:
            raise ApiError(400, "bad_image", str(exc)) from exc
        if not await gate.acquire():
            raise ApiError(
                503,
                "busy",
                f"all {cfg.max_concurrency} inference slot(s) busy and {gate.waiting} request(s) queued; retry later",
                {"Retry-After": str(cfg.retry_after_s)},
            )
        released = False

        def release(_: Any = None) -> None:
            nonlocal released
            if not released:
                released = True
                gate.release()

        def work() -> RestoreResult:  # decoding happens here, inside the slot, so memory is bounded by the slots
            try:
                loaded = models.get(model_name)
            except RestoreKitError as exc:
                raise _ModelUnavailable(str(exc)) from exc
            return restore_bytes(loaded, data, name=name, settings=settings, out_format=fmt, quality=quality, limits=cfg.limits)

        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(state["executor"], work)
        try:
            result = await asyncio.wait_for(asyncio.shield(fut), cfg.request_timeout_s)
        except (asyncio.TimeoutError, TimeoutError) as exc:
            fut.add_done_callback(release)  # keep the slot until the thread is really done
            raise ApiError(504, "timeout", f"restoration took longer than {cfg.request_timeout_s:g} s") from exc
        except _ModelUnavailable as exc:
            release()
            raise ApiError(500, "model_unavailable", str(exc)) from exc
        except UploadTooLargeError as exc:
            release()
            raise ApiError(413, f"too_many_{exc.limit}", str(exc)) from exc
        except ImageReadError as exc:
            release()
            raise ApiError(400, "bad_image", str(exc)) from exc
        except RestoreKitError as exc:
            release()
            raise ApiError(400, type(exc).__name__, str(exc)) from exc
        except MemoryError as exc:
            release()
            raise ApiError(500, "out_of_memory", "out of memory while restoring; try a smaller tile or image") from exc
        except Exception as exc:  # noqa: BLE001 - never let a request kill the server
            release()
            log.exception("restoration failed")
            raise ApiError(500, "restore_failed", f"{type(exc).__name__}: {exc}") from exc
        release()
        state["served"] += 1
        elapsed = time.perf_counter() - t0
        headers = {
            "X-Processing-Time": f"{elapsed:.3f}",
            "X-Inference-Time": f"{result.timings.get('restore_s', 0.0):.3f}",
            "X-Image-Size": result.size,
            "X-Model": result.model,
        }
        if json_form:
            return JSONResponse(seed_json_response(result, data, seconds=elapsed), headers=headers)
        ext = OUTPUT_FORMATS[fmt][2]
        stem = name.rsplit(".", 1)[0] if "." in name else name
        headers["Content-Disposition"] = f'inline; filename="{_safe_filename(stem)}_restored{ext}"'
        return Response(content=result.data, media_type=result.mime, headers=headers)

    app.add_middleware(BodyLimitMiddleware, max_bytes=body_limit)
    if cfg.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cfg.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=["X-Processing-Time", "X-Inference-Time", "X-Image-Size", "X-Model", "Retry-After"],
        )
    return app


def _safe_filename(stem: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)
    return keep[:100] or "image"
