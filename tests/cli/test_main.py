"""The CLI lists every subcommand and turns user errors into exit code 2 with the reason."""

from __future__ import annotations

import subprocess
import sys

from restorekit.cli.main import COMMANDS, main


def test_help_lists_subcommands(capsys):
    code = main([])
    out = capsys.readouterr().out
    assert code == 1
    for name in COMMANDS:
        assert name in out


def test_console_script_help_runs():
    proc = subprocess.run([sys.executable, "-m", "restorekit", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "restore" in proc.stdout and "distill" in proc.stdout
