"""``restorekit`` entry point.

Each subcommand lives in ``restorekit.cli.<name>`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a
callable ``(args) -> int``. Heavy imports (torch, Lightning) happen inside the
command functions so that ``restorekit --help`` is instant.

User errors (:class:`~restorekit.errors.RestoreKitError`) print ``error: ...``
to stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from restorekit import __version__
from restorekit.errors import RestoreKitError

COMMANDS = ["demo", "train", "eval", "restore", "export", "models", "data", "distill", "serve", "ui"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="restorekit",
        description="Train, distill, evaluate, export and serve image-restoration models.",
    )
    parser.add_argument("--version", action="version", version=f"restorekit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"restorekit.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except RestoreKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
