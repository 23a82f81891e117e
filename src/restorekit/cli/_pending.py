"""Placeholder for subcommands whose issue has not landed yet."""

from __future__ import annotations

import argparse
import sys


def register_pending(sub: "argparse._SubParsersAction", name: str, help_text: str, issue: str) -> None:
    p = sub.add_parser(name, help=f"{help_text} (not available yet: {issue})")

    def run(args: argparse.Namespace) -> int:
        print(f"restorekit {name}: not available yet ({issue})", file=sys.stderr)
        return 3

    p.set_defaults(func=run)
