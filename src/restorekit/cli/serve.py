"""`restorekit serve`: HTTP service for a model (FastAPI + uvicorn).

``restorekit serve --model M.safetensors --host 127.0.0.1 --port 8000`` answers
``POST /v1/restore`` (multipart, raw image or the seed's base64 JSON),
``GET /healthz``, ``GET /v1/models`` and OpenAPI docs at ``/docs``.
See docs/serving.md.
"""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:  # noqa: ANN001
    p = sub.add_parser(
        "serve",
        help="HTTP service for a model (FastAPI + uvicorn)",
        description="Serve restorekit models over HTTP: POST /v1/restore, GET /healthz, GET /v1/models, docs at /docs.",
    )
    p.add_argument("--model", "-m", action="append", default=[], metavar="PATH",
                   help="model file (.safetensors package, .ckpt, .pth, .onnx, TorchScript .pt) or a folder of them; "
                        "repeatable; the first is the default")
    p.add_argument("--models-dir", metavar="DIR", help="serve every model file in DIR as well")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1; use 0.0.0.0 to expose)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (default auto)")
    p.add_argument("--tile", default=None, help="tile size: auto (default), 0 for no tiling, or pixels")
    p.add_argument("--overlap", default=None, help="tile overlap in pixels or a fraction in (0,1) (default: restore's)")
    p.add_argument("--blend", choices=["linear", "cosine"], default=None, help="tile blending window")
    p.add_argument("--batch", type=int, default=None, help="tiles per forward pass (default: restore's)")
    p.add_argument("--backend", default=None, help="auto | eager | compile | onnxruntime | torchscript (default auto)")
    p.add_argument("--precision", default=None, help="auto | fp32 | fp16 | bf16 (default auto)")
    p.add_argument("--memory-budget-mb", type=int, default=None, help="memory budget of --tile auto")
    p.add_argument("--max-upload-mb", type=float, default=50.0, help="largest accepted upload in MB (default 50)")
    p.add_argument("--max-pixels", type=int, default=40_000_000, help="largest accepted width*height (default 40e6)")
    p.add_argument("--max-concurrency", type=int, default=1, help="inferences running at once (default 1)")
    p.add_argument("--max-queue", type=int, default=32, help="requests allowed to wait for a slot (default 32)")
    p.add_argument("--queue-timeout", type=float, default=30.0, help="seconds a request may wait for a slot before 503 (default 30)")
    p.add_argument("--request-timeout", type=float, default=300.0, help="seconds an inference may take before 504 (default 300)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow browser calls from ORIGIN (repeatable; '*' for any)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> "ServeConfig":  # noqa: F821
    """A :class:`~restorekit.serve.api.ServeConfig` from parsed arguments (validates every flag, loads nothing)."""
    from restorekit.errors import ConfigError
    from restorekit.inference.options import RestoreOptions
    from restorekit.serve.api import ServeConfig
    from restorekit.serve.core import Limits

    if not args.model and not args.models_dir:
        raise ConfigError("--model PATH (or --models-dir DIR) is required")
    if not 0 <= int(args.port) <= 65535:
        raise ConfigError(f"--port must be in [0, 65535], got {args.port}")
    if args.max_upload_mb <= 0:
        raise ConfigError(f"--max-upload-mb must be > 0, got {args.max_upload_mb}")
    if args.max_pixels <= 0:
        raise ConfigError(f"--max-pixels must be > 0, got {args.max_pixels}")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    options = RestoreOptions.parse(
        tile=args.tile, overlap=args.overlap, blend=args.blend, batch=args.batch, backend=args.backend,
        precision=args.precision, memory_budget_mb=args.memory_budget_mb, device=args.device,
    )
    return ServeConfig(
        models=list(args.model),
        models_dir=args.models_dir,
        device=options.device,
        options=options,
        limits=Limits(max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_pixels=int(args.max_pixels)),
        max_concurrency=args.max_concurrency,
        max_queue=args.max_queue,
        queue_timeout_s=args.queue_timeout,
        request_timeout_s=args.request_timeout,
        cors_origins=list(args.cors_origin),
    )


def run(args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    from restorekit.serve.api import create_app

    cfg = build_config(args)  # every flag is checked before a model is loaded
    if args.threads:
        torch.set_num_threads(int(args.threads))
    app = create_app(cfg)  # loads and warms up the default model: a bad package fails here, exit 2
    names = app.state.store.names()
    print(f"restorekit serve: {len(names)} model(s) ({', '.join(names)}), device {app.state.store.device}; "
          f"http://{args.host}:{args.port}/docs", file=sys.stderr)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host}: the service has no authentication", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=int(args.port), log_level=args.log_level, timeout_keep_alive=5)
    return 0
