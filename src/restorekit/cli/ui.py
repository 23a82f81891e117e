"""`restorekit ui`: Streamlit web app for restoring images with a model.

Runs ``streamlit run restorekit/serve/app.py`` on loopback (headless, no usage
statistics) with the app's settings passed in environment variables.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys


def register(sub) -> None:  # noqa: ANN001
    p = sub.add_parser(
        "ui",
        help="Streamlit web app: upload, restore, compare, download",
        description="Start the restorekit Streamlit app (upload images, choose a model and tiling, compare, download).",
    )
    p.add_argument("--model", "-m", action="append", default=[], metavar="PATH",
                   help="model package (.safetensors) or a folder of them; repeatable; the first is preselected")
    p.add_argument("--models-dir", metavar="DIR", help="offer every model package in DIR")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    p.add_argument("--device", default="auto", help="default device: auto | cpu | cuda | cuda:N | mps")
    p.add_argument("--max-upload-mb", type=float, default=50.0, help="largest accepted file in MB (default 50)")
    p.add_argument("--max-pixels", type=int, default=40_000_000, help="largest accepted width*height (default 40e6)")
    p.set_defaults(func=run)


def ui_environment(args: argparse.Namespace, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for the Streamlit process carrying the app's settings (validated)."""
    from pathlib import Path

    from restorekit.errors import ConfigError

    for m in args.model:
        if not Path(m).expanduser().exists():
            raise ConfigError(f"--model '{m}' does not exist")
    if args.models_dir and not Path(args.models_dir).expanduser().is_dir():
        raise ConfigError(f"--models-dir '{args.models_dir}' is not a folder")
    if args.max_upload_mb <= 0 or args.max_pixels <= 0:
        raise ConfigError("--max-upload-mb and --max-pixels must be > 0")
    env = dict(os.environ if base is None else base)
    env["RESTOREKIT_UI_MODELS"] = os.pathsep.join(str(Path(m).expanduser().resolve()) for m in args.model)
    if args.models_dir:
        env["RESTOREKIT_UI_MODELS_DIR"] = str(Path(args.models_dir).expanduser().resolve())
    env["RESTOREKIT_UI_DEVICE"] = args.device
    env["RESTOREKIT_UI_MAX_UPLOAD_MB"] = str(args.max_upload_mb)
    env["RESTOREKIT_UI_MAX_PIXELS"] = str(args.max_pixels)
    return env


def streamlit_command(args: argparse.Namespace) -> list[str]:
    """The ``python -m streamlit run`` command line for ``args``."""
    import importlib.util
    import math

    spec = importlib.util.find_spec("restorekit.serve.app")  # locate without importing streamlit
    if spec is None or spec.origin is None:  # pragma: no cover - part of the package
        raise RuntimeError("restorekit.serve.app not found")
    return [
        sys.executable, "-m", "streamlit", "run", spec.origin,
        "--server.address", args.host,
        "--server.port", str(int(args.port)),
        "--server.headless", "true",
        "--server.maxUploadSize", str(max(1, int(math.ceil(args.max_upload_mb)))),
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",
        "--global.developmentMode", "false",
    ]


def run(args: argparse.Namespace) -> int:
    env = ui_environment(args)
    cmd = streamlit_command(args)
    print(f"restorekit ui: http://{args.host}:{args.port}", file=sys.stderr)
    sys.stderr.flush()
    if os.name == "posix":  # become the Streamlit process: signals (Ctrl-C, SIGTERM) reach it directly
        os.execve(sys.executable, cmd, env)
    proc = subprocess.Popen(cmd, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            return 130
