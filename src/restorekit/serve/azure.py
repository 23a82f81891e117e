"""Azure Functions handlers (Python v2 programming model) with the deblurring seed's JSON contract.

``deploy/azure_functions/function_app.py`` only registers routes and calls
:func:`handle_image_deblur` and :func:`handle_test`; everything here is
importable and testable without the Functions host (tests build
``azure.functions.HttpRequest`` objects directly).

Route ``imageDeblur`` (GET / POST / OPTIONS, anonymous, CORS ``*``):

* ``OPTIONS`` -> 204 with the CORS headers (browser pre-flight);
* ``GET`` -> 200 ``{"success": true, "message": ..., "model_loaded": ...}`` (usage);
* ``POST`` with JSON ``{"image": "<base64 of the image file>"}`` -> 200
  ``{"success": true, "deblurred_image": "data:image/jpeg;base64,...",
  "original_image": "data:<mime>;base64,<the upload>", "processing_time": "X.Xs",
  "image_size": "WxH"}``;
* a missing body, bad JSON, a missing or undecodable image, or an image over the
  limits -> 400 ``{"success": false, "error": "<what is wrong>"}``;
* anything failing on the server (model missing, inference error) -> 500
  ``{"success": false, "error": "<detail>", "message": "Deblurring failed"}``.

Route ``test`` (GET) -> 200 ``{"status": "ok", "message": ..., "model_path": ...,
"model_loaded": ..., "device": "cpu"}``.

The model is loaded lazily on the first POST, once per worker process, on the
CPU, from the app setting ``RESTOREKIT_MODEL_PATH`` (any file ``load_restorer`` reads: package, .ckpt, .pth, .onnx, TorchScript) (relative paths are resolved
against the function app folder; default ``model/model.safetensors``). Optional
settings: ``RESTOREKIT_TILE``, ``RESTOREKIT_OVERLAP``, ``RESTOREKIT_MAX_UPLOAD_MB``,
``RESTOREKIT_MAX_PIXELS``, ``RESTOREKIT_JPEG_QUALITY`` (default 90, as the seed).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import azure.functions as func

from restorekit.errors import ConfigError, ImageReadError, RestoreKitError
from restorekit.inference.options import RestoreOptions
from restorekit.serve.core import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_UPLOAD_BYTES,
    Limits,
    LoadedModel,
    decode_base64_image,
    decode_upload,
    load_for_inference,
    restore_bytes,
    seed_json_response,
)

log = logging.getLogger("restorekit.azure")

#: App setting naming the model package.
MODEL_SETTING = "RESTOREKIT_MODEL_PATH"
DEFAULT_MODEL_PATH = "model/model.safetensors"

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type,Authorization,X-Requested-With",
}


class DeblurService:
    """The model behind the handlers: resolved from settings, loaded once (thread-safe), CPU only."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        base_dir: str | Path | None = None,
        options: RestoreOptions | None = None,
        limits: Limits | None = None,
        jpeg_quality: int | None = None,
    ) -> None:
        env = os.environ
        self.base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
        raw = model_path if model_path is not None else env.get(MODEL_SETTING, DEFAULT_MODEL_PATH)
        p = Path(raw).expanduser()
        self.model_path = p if p.is_absolute() else self.base_dir / p
        if options is None:
            try:
                options = RestoreOptions.parse(tile=env.get("RESTOREKIT_TILE") or None,
                                               overlap=env.get("RESTOREKIT_OVERLAP") or None, device="cpu")
            except ConfigError as exc:
                raise ConfigError(f"app settings RESTOREKIT_TILE/RESTOREKIT_OVERLAP: {exc}") from None
        self.options = options.updated(device="cpu")
        self.limits = limits or Limits(
            max_upload_bytes=int(float(env.get("RESTOREKIT_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_BYTES / 2**20)) * 2**20),
            max_pixels=int(float(env.get("RESTOREKIT_MAX_PIXELS", DEFAULT_MAX_PIXELS))),
        )
        self.jpeg_quality = int(jpeg_quality if jpeg_quality is not None else env.get("RESTOREKIT_JPEG_QUALITY", 90))
        self._loaded: LoadedModel | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def model(self) -> LoadedModel:
        """The model on the CPU, loaded on first use (raises CheckpointError when the file is missing or bad)."""
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    t0 = time.perf_counter()
                    self._loaded = load_for_inference(self.model_path, device="cpu", options=self.options)
                    log.info("model %s loaded in %.1fs", self.model_path, time.perf_counter() - t0)
        return self._loaded


_default_service: DeblurService | None = None
_default_lock = threading.Lock()


def default_service() -> DeblurService:
    """The process-wide service (created on first use from the app settings)."""
    global _default_service
    if _default_service is None:
        with _default_lock:
            if _default_service is None:
                _default_service = DeblurService(base_dir=os.environ.get("RESTOREKIT_APP_DIR") or Path.cwd())
    return _default_service


def set_default_service(service: DeblurService | None) -> None:
    """Replace the process-wide service (function_app.py sets its folder; tests inject their own)."""
    global _default_service
    with _default_lock:
        _default_service = service


def _json(body: dict[str, Any], status: int) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, headers=dict(CORS_HEADERS), mimetype="application/json")


def _bad_request(error: str) -> func.HttpResponse:
    return _json({"success": False, "error": error}, 400)


def _server_error(error: str) -> func.HttpResponse:
    return _json({"success": False, "error": error, "message": "Deblurring failed"}, 500)


def handle_image_deblur(req: func.HttpRequest, service: DeblurService | None = None) -> func.HttpResponse:
    """The ``imageDeblur`` route (see the module docstring for the contract)."""
    method = (req.method or "").upper()
    if method == "OPTIONS":
        return func.HttpResponse(status_code=204, headers=dict(CORS_HEADERS))
    svc = service or default_service()
    if method == "GET":
        return _json(
            {
                "success": True,
                "message": "POST a JSON body {\"image\": \"<base64 of an image file>\"} to restore it",
                "model_loaded": svc.loaded,
            },
            200,
        )
    if method != "POST":
        return _json({"success": False, "error": f"method {method} not allowed (use GET, POST or OPTIONS)"}, 405)
    start = time.perf_counter()
    try:
        body = req.get_body() or b""
        if not body.strip():
            return _bad_request("Request body is required")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, absurd nesting
            return _bad_request(f"Request body must be JSON {{\"image\": \"<base64>\"}} ({exc})")
        if not isinstance(payload, dict):
            return _bad_request("Request body must be a JSON object with an 'image' field")
        image_b64 = payload.get("image")
        if not image_b64:
            return _bad_request("Image data is required in the 'image' field (base64 of the image file)")
        try:
            data = decode_base64_image(image_b64, name="image")
            decoded = decode_upload(data, name="image", limits=svc.limits)
        except ImageReadError as exc:
            return _bad_request(f"Invalid image data: {exc}")
        loaded = svc.model()
        result = restore_bytes(
            loaded, data, name="image", options=svc.options, out_format="jpeg", quality=svc.jpeg_quality, decoded=decoded
        )
        return _json(seed_json_response(result, data, seconds=time.perf_counter() - start), 200)
    except RestoreKitError as exc:  # a missing/bad model file is a server-side problem here
        log.error("imageDeblur failed: %s", exc)
        return _server_error(str(exc))
    except Exception as exc:  # noqa: BLE001 - the contract answers 500 JSON, never a crash
        log.exception("imageDeblur failed")
        return _server_error(f"{type(exc).__name__}: {exc}")


def handle_test(req: func.HttpRequest, service: DeblurService | None = None) -> func.HttpResponse:
    """The ``test`` route: is the app up, where is the model, is it loaded."""
    svc = service or default_service()
    return _json(
        {
            "status": "ok",
            "message": "restorekit Azure Functions app is running",
            "model_path": str(svc.model_path),
            "model_exists": svc.model_path.is_file(),
            "model_loaded": svc.loaded,
            "device": "cpu",
            "timestamp": time.time(),
        },
        200,
    )
