"""Teacher cache: resume after a real kill, invalidation by fingerprint, formats."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from restorekit.distill.cache import (
    FINGERPRINT_FILE,
    cache_status,
    folder_items,
    list_images,
    precompute_teacher,
    read_cached,
    read_fingerprint,
)
from restorekit.errors import DataError
from restorekit.io import write_image

JOB = Path(__file__).with_name("_precompute_job.py")
NAMES = ["astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "cat", "horse"]


def _job():
    spec = importlib.util.spec_from_file_location("_precompute_job", JOB)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture()
def input_dir(tmp_path: Path, photo) -> Path:
    d = tmp_path / "inputs"
    for i, n in enumerate(NAMES):
        sub = d / ("a" if i % 2 else "b")
        write_image(sub / f"{n}.png", photo(n, 64))
    return d


def _files(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()
            and p.name != FINGERPRINT_FILE}


def test_precompute_resumes_after_kill(input_dir: Path, tmp_path: Path) -> None:
    killed, fresh = tmp_path / "killed", tmp_path / "fresh"
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.Popen([sys.executable, str(JOB), str(input_dir), str(killed), "0.4"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline:
        done = [p for p in killed.rglob("*.png") if not p.name.startswith(".")] if killed.exists() else []
        if len(done) >= 3 or proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    partial = [p for p in killed.rglob("*.png") if not p.name.startswith(".")]
    assert 3 <= len(partial) < len(NAMES)
    assert read_fingerprint(killed)["complete"] is False
    job = _job()
    net = job.make_teacher()
    fp = job.fingerprint_for(net, input_dir)
    assert cache_status(killed, fp) == "partial"

    items = folder_items(list_images(input_dir))
    res = precompute_teacher(job.teacher_fn(net, 0.0), items, killed, fp)
    assert res.skipped == len(partial) and res.computed == len(NAMES) - len(partial) and not res.invalidated
    assert cache_status(killed, fp) == "complete"
    assert not [p for p in killed.rglob(".*")], "temporary files left behind"

    res2 = precompute_teacher(job.teacher_fn(net, 0.0), items, fresh, fp)
    assert res2.computed == len(NAMES)
    assert _files(killed) == _files(fresh)  # byte-identical cache
    # the cache mirrors the input tree and reads back at 16-bit precision
    out = read_cached(fresh / "a" / "coffee.png")
    ref = job.teacher_fn(net, 0.0)(items[[i.name for i in items].index("a/coffee.png")].load())
    assert out.shape == (64, 64, 3)
    assert np.abs(out - ref).max() <= 0.5 / 65535 + 1e-6


def test_cache_invalidated_when_teacher_data_or_recipe_change(input_dir: Path, tmp_path: Path) -> None:
    job = _job()
    net = job.make_teacher()
    cache = tmp_path / "cache"
    items = folder_items(list_images(input_dir))
    fp = job.fingerprint_for(net, input_dir)
    assert cache_status(cache, fp) == "missing"
    precompute_teacher(job.teacher_fn(net, 0.0), items, cache, fp)
    before = _files(cache)

    again = precompute_teacher(job.teacher_fn(net, 0.0), items, cache, fp)
    assert again.computed == 0 and again.skipped == len(NAMES) and not again.invalidated

    # 1) new degradation recipe
    fp_deg = job.fingerprint_for(net, input_dir, degrade={"recipe": "blur", "sigma": 2.0})
    assert cache_status(cache, fp_deg) == "stale"
    r = precompute_teacher(job.teacher_fn(net, 0.0), items, cache, fp_deg)
    assert r.invalidated and r.changed == ["degrade"] and r.computed == len(NAMES)

    # 2) new teacher weights: outputs really change
    import torch

    with torch.no_grad():
        net[0].bias.add_(0.5)
    fp_t = job.fingerprint_for(net, input_dir, degrade={"recipe": "blur", "sigma": 2.0})
    r = precompute_teacher(job.teacher_fn(net, 0.0), items, cache, fp_t)
    assert r.invalidated and r.changed == ["teacher"] and r.computed == len(NAMES)
    assert _files(cache) != before

    # 3) data changed: one input rewritten
    time.sleep(0.01)
    target = input_dir / "a" / "coffee.png"
    img = read_cached(target)
    write_image(target, img[::-1].copy())
    fp_d = job.fingerprint_for(net, input_dir, degrade={"recipe": "blur", "sigma": 2.0})
    assert cache_status(cache, fp_d) == "stale"
    r = precompute_teacher(job.teacher_fn(net, 0.0), folder_items(list_images(input_dir)), cache, fp_d)
    assert r.invalidated and r.changed == ["data"]


def test_npy_format_and_duplicate_stems(input_dir: Path, tmp_path: Path) -> None:
    job = _job()
    net = job.make_teacher()
    items = folder_items(list_images(input_dir))[:2]
    fp = job.fingerprint_for(net, input_dir)
    res = precompute_teacher(job.teacher_fn(net, 0.0), items, tmp_path / "npy", fp, fmt="npy")
    assert res.computed == 2
    arr = read_cached(tmp_path / "npy" / Path(items[0].name).with_suffix(".npy"))
    ref = job.teacher_fn(net, 0.0)(items[0].load())
    np.testing.assert_array_equal(arr, np.clip(ref, 0, 1))  # float cache: exact

    write_image(input_dir / "a" / "coffee.jpg", items[0].load())
    with pytest.raises(DataError, match="same cache file"):
        precompute_teacher(job.teacher_fn(net, 0.0), folder_items(list_images(input_dir)), tmp_path / "dup", fp)
