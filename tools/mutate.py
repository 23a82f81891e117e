#!/usr/bin/env python3
"""Mutation check: apply known bugs to a copy of the project and see whether the tests catch them.

Each mutation replaces one exact snippet of ``src/`` (found by content, so it survives files being
moved) in a throw-away copy of the repository (``src/``, ``tests/``, ``configs/``, ``pyproject.toml``),
then runs the tests named for it there (``PYTHONPATH`` points at the copy). A mutation is

- ``killed`` when those tests fail (what we want),
- ``SURVIVED`` when they pass (the suite misses that bug),
- ``n/a`` when its snippet is not found exactly once (the code changed: update the mutation).

The working tree is never modified. Usage::

    .venv/bin/python tools/mutate.py                  # every mutation
    .venv/bin/python tools/mutate.py --list           # ids and what they break
    .venv/bin/python tools/mutate.py ms_ssim_weights_reversed trajectory_is_a_line
    .venv/bin/python tools/mutate.py --report mutation-report.json

Exit status: 0 when every applicable mutation was killed, 1 when one survived, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    """Replace ``old`` (unique in ``src/``, or in ``file`` when given) by ``new``; ``tests``: pytest node ids."""

    id: str
    what: str
    old: str
    new: str
    tests: tuple[str, ...]
    file: str | None = None


MUTATIONS: tuple[Mutation, ...] = (
    # --- the bugs issue #14 found surviving the suite ------------------------------------------
    Mutation("ms_ssim_weights_reversed", "MS-SSIM scale weights in reverse order",
             "MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)",
             "MS_SSIM_WEIGHTS = (0.1333, 0.2363, 0.3001, 0.2856, 0.0448)",
             ("tests/losses/test_ms_ssim_reference.py",)),
    Mutation("motion_blur_ignores_gamma", "motion blur applied in gamma space even with gamma set",
             "        k = self.kernel(params, rng)\n        return _gamma_wrap(img, self.gamma, lambda x: _filter(x, k))",
             "        k = self.kernel(params, rng)\n        return _gamma_wrap(img, None, lambda x: _filter(x, k))",
             ("tests/degrade/test_blur_physics.py",)),
    Mutation("trajectory_is_a_line", "the trajectory kernel replaced by a straight line",
             'return trajectory_kernel(params["length"], params["angle"], rng, curvature=self.curvature)',
             'return line_kernel(params["length"], params["angle"])',
             ("tests/degrade/test_blur_physics.py",)),
    Mutation("gopro_like_length_shrunk", "gopro-like blur length [7, 31] -> [2, 4]",
             '"kind": "trajectory", "length": [7, 31]', '"kind": "trajectory", "length": [2, 4]',
             ("tests/degrade/test_blur_physics.py",)),
    Mutation("demo_deblur_noise_tripled", "demo-deblur noise sigma tripled",
             '{"name": "gaussian_noise", "p": 0.8, "sigma": [0.01, 0.03]}',
             '{"name": "gaussian_noise", "p": 0.8, "sigma": [0.03, 0.09]}',
             ("tests/degrade/test_blur_physics.py",)),
    Mutation("align_without_orb", "alignment with its ORB + RANSAC stage deleted (ECC from the identity)",
             "init = coarse_warp(noisy, gt_m, n_features=n_features, n_matches=n_matches)", "init = None",
             ("tests/raw/test_align_large_motion.py",)),
    Mutation("tile_memory_underestimated_4x", "auto tile memory estimate 4x too low",
             "bpp = max(64.0, 0.5 * total / (probe * probe))", "bpp = max(64.0, 0.125 * total / (probe * probe))",
             ("tests/inference/test_memory.py::test_bytes_per_pixel_is_not_an_underestimate_of_the_real_peak",
              "tests/inference/test_memory.py::test_auto_tile_keeps_the_real_peak_within_the_budget")),
    Mutation("training_gradient_ascent", "training steps climb the loss instead of descending it",
             "            return None\n        self.log(\"train_loss\", total,",
             "            return None\n        total = -total\n        self.log(\"train_loss\", total,",
             ("tests/training/test_descent.py",)),
    Mutation("stream_cap_counts_one_chunk", "the streaming body cap counts only the current chunk (never trips)",
             'seen += len(message.get("body", b""))', 'seen = len(message.get("body", b""))',
             ("tests/serve/test_stream_limit.py",)),
    # --- the modules issue #14 added: content de-duplication, baselines, the demo's scoring --------
    Mutation("dedup_no_near_duplicates", "near-duplicate check disabled (exact hashes only)",
             "(corr >= threshold) & (ratio <= MAX_ASPECT_RATIO)", "(corr >= threshold + 1.0) & (ratio <= MAX_ASPECT_RATIO)",
             ("tests/data/test_dedup.py",)),
    Mutation("dedup_no_known_groups", "the alias / stereo-pair table emptied",
             '    "motorcycle_left": "motorcycle",\n    "motorcycle_right": "motorcycle",\n', "",
             ("tests/data/test_dedup.py",)),
    Mutation("split_not_deduplicated", "build_datasets no longer de-duplicates the split",
             "    train_items, dedup = dedup_train_items(train_items, val_items)",
             '    dedup = {"checked": False, "dropped": []}',
             ("tests/data/test_dedup.py",)),
    Mutation("nlm_wiener_skips_deconvolution", "the denoise-then-deconvolve baseline only denoises",
             "    return _deconv_channels(den, lambda ch, p: sk_wiener(ch, p, balance, clip=False), gaussian_psf(sigma))",
             "    return den",
             ("tests/evaluation/test_demo_scoring.py",)),
    Mutation("heldout_skips_jpeg_off", "held-out branches ignore ops with p < 1 (JPEG never off)",
             '            if float(op.get("p", 1.0)) < 1.0:\n                options.append(("off", None))', "",
             ("tests/evaluation/test_demo_scoring.py",)),
    Mutation("ci_not_photo_level", "the gain interval resamples nothing (zero width)",
             "    idx = rng.integers(0, len(groups), size=(reps, len(groups)))",
             "    idx = np.tile(np.arange(len(groups)), (reps, 1))",
             ("tests/evaluation/test_demo_scoring.py",)),
)


def _copy_tree(dst: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "test-artifacts")
    for name in ("src", "tests", "configs"):
        if (ROOT / name).exists():
            shutil.copytree(ROOT / name, dst / name, ignore=ignore)
    for name in ("pyproject.toml", "constraints.txt"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, dst / name)


def locate(m: Mutation, root: Path) -> tuple[Path | None, str]:
    """The file holding ``m.old`` exactly once under ``root`` (``src/`` or ``m.file``), or (None, why)."""
    files = [root / m.file] if m.file else sorted((root / "src").rglob("*.py"))
    hits = []
    for f in files:
        try:
            n = f.read_text(encoding="utf-8").count(m.old)
        except (OSError, UnicodeDecodeError):
            continue
        if n:
            hits.append((f, n))
    if len(hits) == 1 and hits[0][1] == 1:
        return hits[0][0], ""
    if not hits:
        return None, "snippet not found"
    return None, "snippet not unique: " + ", ".join(f"{f.relative_to(root)} x{n}" for f, n in hits)


def run_one(m: Mutation, work: Path, timeout: float, python: str) -> dict[str, object]:
    """Apply ``m`` in ``work`` (a copy), run its tests, restore the file; the result row."""
    path, why = locate(m, work)
    row: dict[str, object] = {"id": m.id, "what": m.what, "tests": list(m.tests)}
    if path is None:
        return {**row, "status": "n/a", "detail": why}
    original = path.read_text(encoding="utf-8")
    path.write_text(original.replace(m.old, m.new, 1), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(work / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "PYTHONDONTWRITEBYTECODE": "1"}
    t0 = time.perf_counter()
    try:
        res = subprocess.run([python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *m.tests], cwd=work, env=env,
                             capture_output=True, text=True, timeout=timeout)
        rc, out = res.returncode, (res.stdout + res.stderr)
    except subprocess.TimeoutExpired:
        rc, out = -1, "timeout"
    finally:
        path.write_text(original, encoding="utf-8")
    row.update({"file": str(path.relative_to(work)), "seconds": round(time.perf_counter() - t0, 1)})
    if rc == 0:
        return {**row, "status": "SURVIVED", "detail": "tests passed with the bug in place"}
    if rc in (4, 5):  # usage error / no tests collected: the mutation was not really tested
        return {**row, "status": "n/a", "detail": f"pytest exit {rc}: " + out.strip().splitlines()[-1][:200]}
    last = [ln for ln in out.strip().splitlines() if ln.strip()]
    return {**row, "status": "killed", "detail": (last[-1] if last else f"exit {rc}")[:200]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ids", nargs="*", help="mutation ids (default: all)")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    ap.add_argument("--report", help="write the results as JSON here")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per mutation (default 900)")
    args = ap.parse_args(argv)
    by_id = {m.id: m for m in MUTATIONS}
    if args.list:
        for m in MUTATIONS:
            print(f"{m.id:34s} {m.what}")
        return 0
    unknown = [i for i in args.ids if i not in by_id]
    if unknown:
        print(f"error: unknown mutation(s) {', '.join(unknown)} (see --list)", file=sys.stderr)
        return 2
    chosen = [by_id[i] for i in args.ids] if args.ids else list(MUTATIONS)
    rows = []
    with tempfile.TemporaryDirectory(prefix="restorekit-mutate-") as tmp:
        work = Path(tmp)
        _copy_tree(work)
        for m in chosen:
            row = run_one(m, work, args.timeout, sys.executable)
            rows.append(row)
            print(f"{row['status']:9s} {m.id:34s} {row.get('seconds', '')!s:>6}s  {row['detail']}", flush=True)
    survived = [r["id"] for r in rows if r["status"] == "SURVIVED"]
    summary = {"killed": sum(r["status"] == "killed" for r in rows), "survived": survived,
               "not_applicable": [r["id"] for r in rows if r["status"] == "n/a"], "results": rows}
    print(f"\n{summary['killed']} killed, {len(survived)} survived, {len(summary['not_applicable'])} n/a")
    if args.report:
        Path(args.report).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
