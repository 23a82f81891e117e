"""FastAPI service: ``POST /v1/restore``, ``GET /healthz``, ``GET /v1/models`` (+ OpenAPI docs at ``/docs``).

The application is assembled here from the pieces beside it:

* :mod:`restorekit.serve.routes`: the :class:`~fastapi.APIRouter` with the endpoints
  and the dependencies (service state, model store, concurrency gate);
* :mod:`restorekit.serve.schemas`: pydantic request/response models (FastAPI
  generates the OpenAPI document from them);
* :mod:`restorekit.serve.errors`: the one error map (every failure is JSON
  ``{"success": false, "error": <detail>, "message": <summary>, "code": <code>}``);
* :mod:`restorekit.serve.gate`: the request-body cap and the inference gate;
* :mod:`restorekit.serve.core`: decoding, the :class:`~restorekit.inference.restorer.Restorer`
  and encoding, shared with the web app and the Azure handler.

``POST /v1/restore`` accepts ``multipart/form-data`` (file field ``image`` or ``file``),
a raw ``image/*``/``application/octet-stream`` body, or the deblurring seed's JSON
``{"image": "<base64>"}`` (answered ``{success, deblurred_image, original_image,
processing_time, image_size}``, JPEG quality 90 unless ``?format=``). Restore options
(``tile``, ``overlap``, ``blend``, ``ensemble``, ``tlc``, ``strength``) come as query or
multipart form fields and are validated as :class:`~restorekit.inference.options.RestoreOptions`,
exactly like the CLI flags.

Robustness: a declared ``Content-Length`` over the cap is answered 413 at once
(the body is not read); streamed bodies are capped while they arrive (413);
uploads are checked under byte and pixel limits from their header before they
queue (413); at most ``max_concurrency`` inferences run at once in a thread pool
(the event loop keeps answering); at most ``max_queue`` requests wait up to
``queue_timeout_s``, others get 503 with ``Retry-After``; an inference over
``request_timeout_s`` answers 504 (its slot is freed when the thread finishes).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from restorekit.errors import ConfigError
from restorekit.inference.options import RestoreOptions
from restorekit.serve.core import Limits, ModelStore, normalize_format, warm_up
from restorekit.serve.errors import ApiError, error_body, install_error_handlers
from restorekit.serve.gate import BodyLimitMiddleware, InferenceGate
from restorekit.serve.routes import ServiceState, choose_format, peak_rss_mb, router

__all__ = ["ApiError", "ServeConfig", "choose_format", "create_app", "error_body", "peak_rss_mb"]


@dataclass
class ServeConfig:
    """Settings of the HTTP service (the ``restorekit serve`` flags).

    ``options`` are the server's :class:`RestoreOptions` (requests may change the
    tiling fields); ``device`` wins over ``options.device``.
    """

    models: list[str] = field(default_factory=list)
    models_dir: str | None = None
    device: str = "auto"
    options: RestoreOptions = field(default_factory=RestoreOptions)
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
        if not 1 <= self.quality <= 100 or not 1 <= self.json_quality <= 100:
            raise ConfigError(f"quality must be in [1, 100], got {self.quality} / {self.json_quality}")
        self.default_format = normalize_format(self.default_format, setting="default_format")
        self.json_format = normalize_format(self.json_format, setting="json_format")
        self.options = self.options.updated(device=self.device)

    @property
    def body_limit(self) -> int:
        """Largest request body in bytes: the upload limit plus base64 / multipart overhead."""
        return int(math.ceil(self.limits.max_upload_bytes * 4 / 3)) + 64 * 1024


def create_app(config: ServeConfig | None = None, *, store: ModelStore | None = None) -> FastAPI:
    """Build the FastAPI application for ``config`` (models from ``store`` when given).

    Raises :class:`~restorekit.errors.RestoreKitError` for a missing model file or
    folder, an empty models folder, or (with ``config.preload``) a default model
    that cannot be loaded, so a broken package fails before the server binds its port.
    """
    from restorekit import __version__

    cfg = config or ServeConfig()
    models = store or ModelStore(cfg.models, cfg.models_dir, device=cfg.device, options=cfg.options)
    if not models.names():
        raise ConfigError("no model configured: pass --model PATH or --models-dir DIR")
    if cfg.preload:
        warm_up(models.get())
    state = ServiceState(config=cfg, store=models, gate=InferenceGate(cfg.max_concurrency, cfg.max_queue, cfg.queue_timeout_s))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.executor = ThreadPoolExecutor(max_workers=cfg.max_concurrency, thread_name_prefix="restorekit-infer")
        try:
            yield
        finally:
            state.executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="restorekit",
        version=__version__,
        description="Image restoration service. POST an image to /v1/restore; see GET /v1/models for the models.",
        lifespan=lifespan,
    )
    app.state.service = state
    app.state.config = cfg
    app.state.store = models
    app.state.gate = state.gate

    def count_error() -> None:
        state.errors += 1

    install_error_handlers(app, count_error)
    app.include_router(router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=cfg.body_limit)
    if cfg.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cfg.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=["X-Processing-Time", "X-Inference-Time", "X-Image-Size", "X-Model", "Retry-After"],
        )
    return app
