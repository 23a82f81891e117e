"""The service's routes (:data:`router`) and their dependencies (the service state, the model store, the gate)."""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from restorekit.errors import ConfigError, ImageReadError, RestoreKitError
from restorekit.inference.options import RestoreOptions
from restorekit.serve.core import (
    OUTPUT_FORMATS,
    REQUEST_OPTIONS,
    ModelStore,
    RestoreResult,
    check_rgb,
    decode_base64_image,
    format_for_mime,
    normalize_format,
    probe_upload,
    request_options,
    restore_bytes,
    seed_json_response,
)
from restorekit.serve.errors import ApiError, ModelUnavailable, classify, unsupported_media
from restorekit.serve.gate import InferenceGate
from restorekit.utils.names import safe_filename
from restorekit.serve.schemas import ErrorResponse, Health, ModelsResponse, RestoreQuery, SeedJsonRequest, SeedJsonResponse

if TYPE_CHECKING:  # pragma: no cover
    from concurrent.futures import ThreadPoolExecutor

    from restorekit.serve.api import ServeConfig


@dataclass
class ServiceState:
    """What the routes share: settings, models, the gate, the inference threads and counters."""

    config: "ServeConfig"
    store: ModelStore
    gate: InferenceGate
    executor: "ThreadPoolExecutor | None" = None
    served: int = 0
    errors: int = 0
    started: float = field(default_factory=time.time)


def get_state(request: Request) -> ServiceState:
    """Dependency: the service state of this app."""
    return request.app.state.service


def get_store(state: Annotated[ServiceState, Depends(get_state)]) -> ModelStore:
    """Dependency: the model store."""
    return state.store


def get_gate(state: Annotated[ServiceState, Depends(get_state)]) -> InferenceGate:
    """Dependency: the concurrency gate."""
    return state.gate


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB."""
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return ru / 1024.0 / (1024.0 if sys.platform == "darwin" else 1.0)


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


def options_for(base: RestoreOptions, query: RestoreQuery, form: Any) -> RestoreOptions:
    """The server's options with the request's (query, then multipart form fields) applied; 400 when invalid."""
    values: dict[str, Any] = query.option_values()
    if form is not None:
        for k in REQUEST_OPTIONS:
            v = form.get(k)
            if isinstance(v, str) and v != "":
                values[k] = v
    try:
        return request_options(base, values)
    except ConfigError as exc:
        raise ApiError(400, "bad_parameter", str(exc)) from exc


@dataclass
class Upload:
    """The image of a request: bytes, a name, and whether it came in the seed's JSON form."""

    data: bytes
    name: str
    json_form: bool
    form: Any = None


async def read_upload(request: Request, image: UploadFile | None, file: UploadFile | None) -> Upload:
    """The image of ``request``: a multipart file field ``image``/``file``, the seed's JSON, or a raw ``image/*`` body."""
    import json

    ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        upload = image or file
        if upload is None:
            raise ApiError(400, "missing_image", "multipart body has no file field 'image' (or 'file')")
        return Upload(await upload.read(), upload.filename or "upload", False, await request.form())
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
        return Upload(data, str(payload.get("name") or "image"), True)
    if ctype.startswith("image/") or ctype == "application/octet-stream":
        return Upload(await request.body(), "upload", False)
    raise unsupported_media(ctype) or ApiError(415, "unsupported_media_type", f"Content-Type '{ctype}' not supported")


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        400: "not an image, truncated, empty, bad JSON or bad parameter",
        404: "unknown model",
        406: "no acceptable output format",
        413: "upload over the byte or pixel limit",
        415: "unsupported Content-Type",
        500: "the model could not be loaded or failed",
        503: "all inference slots busy and the queue full or timed out (Retry-After)",
        504: "inference exceeded the request timeout",
    }.items()
}

#: FastAPI generates the multipart/form-data body from the UploadFile fields; these are the other two.
_RESTORE_BODY_EXTRA = {
    "requestBody": {
        "content": {
            "application/json": {"schema": SeedJsonRequest.model_json_schema()},
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        }
    }
}

router = APIRouter()


@router.get("/healthz", summary="liveness and load", response_model=Health)
async def healthz(state: Annotated[ServiceState, Depends(get_state)]) -> Health:
    from restorekit import __version__

    store, gate = state.store, state.gate
    return Health(
        version=__version__,
        models=store.names(),
        default_model=store.default_name,
        device=store.device,
        in_flight=gate.running,
        queued=gate.waiting,
        max_concurrency=state.config.max_concurrency,
        served=state.served,
        errors=state.errors,
        uptime_s=round(time.time() - state.started, 3),
        peak_rss_mb=round(peak_rss_mb(), 1),
    )


@router.get("/v1/models", summary="available models", response_model=ModelsResponse)
async def list_models(state: Annotated[ServiceState, Depends(get_state)],
                      store: Annotated[ModelStore, Depends(get_store)]) -> dict[str, Any]:
    lim = state.config.limits
    return {
        "default": store.default_name,
        "models": store.describe(),
        "limits": {"max_upload_bytes": lim.max_upload_bytes, "max_pixels": lim.max_pixels},
        "formats": list(OUTPUT_FORMATS),
        "options": store.options.model_dump(),
    }


@router.post(
    "/v1/restore",
    summary="restore one image",
    description="Multipart file field `image` (or `file`), the seed's JSON `{\"image\": base64}` or a raw `image/*` body. "
    "Answers the restored image bytes (format from `?format=` or `Accept`), or the seed's JSON for a JSON upload.",
    responses={200: {"content": {m: {} for _, m, _ in OUTPUT_FORMATS.values()}, "model": SeedJsonResponse,
                     "description": "restored image bytes, or the seed's JSON answer for a JSON upload"}, **_ERRORS},
    response_class=Response,
    openapi_extra=_RESTORE_BODY_EXTRA,
)
async def restore(
    request: Request,
    query: Annotated[RestoreQuery, Query()],
    state: Annotated[ServiceState, Depends(get_state)],
    store: Annotated[ModelStore, Depends(get_store)],
    gate: Annotated[InferenceGate, Depends(get_gate)],
    image: Annotated[UploadFile | None, File(description="the image file")] = None,
    file: Annotated[UploadFile | None, File(description="alternative name of the image field")] = None,
) -> Response:
    cfg = state.config
    t0 = time.perf_counter()
    up = await read_upload(request, image, file)
    if up.json_form:
        fmt = choose_format(query.format, None, cfg.json_format)
        quality = query.quality or cfg.json_quality
    else:
        fmt = choose_format(query.format, request.headers.get("accept"), cfg.default_format)
        quality = query.quality or cfg.quality
    options = options_for(store.options, query, up.form)
    model_name = query.model or store.default_name
    if model_name not in store.names():
        raise ApiError(404, "unknown_model", f"unknown model '{model_name}'; available: {', '.join(store.names())}")
    # header only: bad and oversized files are refused before they queue
    await asyncio.to_thread(probe_upload, up.data, name=up.name, limits=cfg.limits)
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
            loaded = store.get(model_name)
        except RestoreKitError as exc:
            raise ModelUnavailable(str(exc)) from exc
        check_rgb(loaded)
        return restore_bytes(loaded, up.data, name=up.name, options=options, out_format=fmt, quality=quality,
                             limits=cfg.limits)

    fut = asyncio.get_running_loop().run_in_executor(state.executor, work)
    try:
        result = await asyncio.wait_for(asyncio.shield(fut), cfg.request_timeout_s)
    except (asyncio.TimeoutError, TimeoutError) as exc:
        fut.add_done_callback(release)  # keep the slot until the thread is really done
        raise ApiError(504, "timeout", f"restoration took longer than {cfg.request_timeout_s:g} s") from exc
    except Exception as exc:  # noqa: BLE001 - one error map; never let a request kill the server
        err = classify(exc)
        if err.status >= 500:
            import logging

            logging.getLogger("restorekit.serve").error("restoration failed: %s", err.detail, exc_info=exc)
        raise err from exc
    finally:
        if fut.done():
            release()
    state.served += 1
    elapsed = time.perf_counter() - t0
    headers = {
        "X-Processing-Time": f"{elapsed:.3f}",
        "X-Inference-Time": f"{result.timings.get('restore_s', 0.0):.3f}",
        "X-Image-Size": result.size,
        "X-Model": result.model,
    }
    if up.json_form:
        return JSONResponse(seed_json_response(result, up.data, seconds=elapsed), headers=headers)
    ext = OUTPUT_FORMATS[fmt][2]
    stem = up.name.rsplit(".", 1)[0] if "." in up.name else up.name
    headers["Content-Disposition"] = f'inline; filename="{safe_filename(stem, max_len=100)}_restored{ext}"'
    return Response(content=result.data, media_type=result.mime, headers=headers)



