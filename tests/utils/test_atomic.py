"""Atomic writes leave either the old file or the complete new one, never a temp file."""

from __future__ import annotations

import json

import pytest

from restorekit.utils.atomic import atomic_path, atomic_write_json, atomic_write_text
from restorekit.utils.seed import sample_rng


def test_atomic_replace_and_cleanup(tmp_path):
    dest = tmp_path / "sub" / "f.json"
    atomic_write_json(dest, {"a": 1})
    assert json.loads(dest.read_text()) == {"a": 1}
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("crash mid-write")
    assert json.loads(dest.read_text()) == {"a": 1}
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.json"]
    atomic_write_text(dest, "new")
    assert dest.read_text() == "new"


def test_sample_rng_is_keyed():
    a = sample_rng(1, 2, 3).random(4)
    assert (a == sample_rng(1, 2, 3).random(4)).all()
    assert not (a == sample_rng(1, 2, 4).random(4)).all()
    assert not (a == sample_rng(2, 2, 3).random(4)).all()


def test_atomic_file_gets_normal_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        dest = atomic_write_text(tmp_path / "out.txt", "x")
        assert dest.stat().st_mode & 0o777 == 0o644
        os.chmod(dest, 0o600)
        atomic_write_text(dest, "y")  # replacing keeps the existing file's mode
        assert dest.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(umask)
