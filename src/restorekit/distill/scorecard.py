"""The distillation scorecard: input vs teacher vs student on the validation set.

For each of the three "models" (the degraded input itself, the teacher, the
student) it records PSNR and SSIM on the validation pairs, parameters, MACs
at 256x256 and CPU latency per megapixel, then the student's gap to the
teacher and gain over the input. ``report.json`` holds the numbers;
``report.md`` a table, with a bold warning when the student does not beat its
input (the failure the seed project never noticed).
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

from restorekit.utils.atomic import atomic_write_json, atomic_write_text
from restorekit.models.spec import arch_of

log = logging.getLogger(__name__)

ImageFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class Score:
    """One row of the scorecard. Quality on [0, 1] RGB images; latency in ms per megapixel on CPU."""

    psnr: float
    ssim: float
    params: int
    gmacs_256: float
    ms_per_megapixel: float
    name: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def quality(fn: ImageFn | None, pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float, int]:
    """Mean PSNR (dB) and SSIM of ``fn(input)`` against target over ``pairs``; ``fn=None`` scores the input.

    Arrays are ``(H, W, 3)`` float32 RGB in [0, 1]; metrics come from
    :mod:`restorekit.metrics` (default protocol: scikit-image, data range 1).
    Returns (psnr, ssim, number of images).
    """
    from restorekit.metrics import psnr, ssim

    ps: list[float] = []
    ss: list[float] = []
    for x, y in pairs:
        pred = x if fn is None else fn(x)
        pred = np.clip(pred, 0.0, 1.0).astype(np.float32)
        ps.append(float(psnr(pred, y)))
        ss.append(float(ssim(pred, y)))
    if not ps:
        return float("nan"), float("nan"), 0
    return float(np.mean(ps)), float(np.mean(ss)), len(ps)


def latency_ms_per_megapixel(fn: ImageFn, image: np.ndarray, *, repeats: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``fn(image)`` divided by the image's megapixels (ms/MP)."""
    for _ in range(max(0, warmup)):
        fn(image)
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn(image)
        times.append(time.perf_counter() - t0)
    mp = image.shape[0] * image.shape[1] / 1e6
    return float(statistics.median(times) * 1000.0 / mp)


def model_cost(model: torch.nn.Module) -> tuple[int, float]:
    """(parameters, GMACs for one 1x3x256x256 input) from :mod:`restorekit.models.info`."""
    from restorekit.models.info import count_macs, count_params

    params = int(count_params(model))
    try:
        macs = float(count_macs(model, (1, 3, 256, 256)))
    except Exception as exc:  # noqa: BLE001 - a counting failure must not lose the scorecard
        log.warning("could not count MACs of %s: %s", type(model).__name__, exc)
        macs = float("nan")
    return params, macs / 1e9


def model_fn(model: torch.nn.Module, *, tile: int | str = "auto", overlap: int = 32, device: str | None = "cpu",
             backend: str = "eager") -> ImageFn:
    """An image function running ``model`` through :func:`restorekit.inference.restore_image` (tiling, TLC)."""
    from restorekit.inference import restore_image

    def fn(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return restore_image(model, x, tile=tile, overlap=overlap, device=device, backend=backend)

    return fn


def score_models(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    teacher: torch.nn.Module,
    student: torch.nn.Module,
    *,
    tile: int | str = "auto",
    overlap: int = 32,
    latency_size: int = 512,
    latency_repeats: int = 3,
    backend: str = "eager",
) -> dict[str, Score]:
    """Score input, teacher and student on ``pairs`` (``(input, target)`` float32 (H, W, 3) in [0, 1]).

    Quality is measured on the evaluation device the inference core picks
    (CPU here); latency always on CPU, on a ``latency_size`` square crop (or
    reflect-padded tile) of the first input.
    """
    if not pairs:
        from restorekit.errors import DataError

        raise DataError("scorecard: the validation set is empty")
    probe = _latency_image(pairs[0][0], latency_size)
    scores: dict[str, Score] = {}
    p, s, _ = quality(None, pairs)
    scores["input"] = Score(p, s, 0, 0.0, 0.0, name="input")
    for key, model in (("teacher", teacher), ("student", student)):
        fn = model_fn(model.eval(), tile=tile, overlap=overlap, device="cpu", backend=backend)
        p, s, _ = quality(fn, pairs)
        params, gmacs = model_cost(model)
        ms = latency_ms_per_megapixel(fn, probe, repeats=latency_repeats)
        scores[key] = Score(p, s, params, gmacs, ms, name=str(arch_of(model)))
    return scores


def probe_note(img: np.ndarray | None, size: int) -> str:
    """How the latency probe is made from the first validation input ``(H, W, 3)``: a crop, or reflect padding."""
    if img is None:
        return f"{size}x{size}"
    h, w = img.shape[:2]
    if h < size or w < size:
        return f"{size}x{size} (the {h}x{w} validation image reflect-padded; set score.latency_size <= {min(h, w)} for a real crop)"
    return f"{size}x{size} crop"


def _latency_image(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    if h < size or w < size:
        log.warning("scorecard: latency probe %s", probe_note(img, size))
        img = np.pad(img, ((0, max(0, size - h)), (0, max(0, size - w)), (0, 0)), mode="reflect")
    return np.ascontiguousarray(img[:size, :size])


def build_report(scores: dict[str, Score], *, n_images: int, extra: dict[str, Any] | None = None,
                 latency_size: int = 512, latency_probe: str | None = None) -> dict[str, Any]:
    """The ``report.json`` object: ``input``/``teacher``/``student`` plus gaps, ratios and a verdict."""
    inp, tea, stu = scores["input"], scores["teacher"], scores["student"]
    report: dict[str, Any] = {
        "input": inp.to_json(),
        "teacher": tea.to_json(),
        "student": stu.to_json(),
        "student_vs_teacher": {
            "psnr_gap": stu.psnr - tea.psnr,
            "ssim_gap": stu.ssim - tea.ssim,
            "params_ratio": _ratio(stu.params, tea.params),
            "gmacs_ratio": _ratio(stu.gmacs_256, tea.gmacs_256),
            "speedup": _ratio(tea.ms_per_megapixel, stu.ms_per_megapixel),
        },
        "student_vs_input": {"psnr_gain": stu.psnr - inp.psnr, "ssim_gain": stu.ssim - inp.ssim},
        "teacher_vs_input": {"psnr_gain": tea.psnr - inp.psnr, "ssim_gain": tea.ssim - inp.ssim},
        "student_beats_input": bool(stu.psnr > inp.psnr),
        "teacher_beats_student": bool(tea.psnr > stu.psnr),
        "n_images": int(n_images),
        "protocol": "mean over validation images; PSNR/SSIM of RGB [0,1] (scikit-image, data_range 1); "
        f"latency: median CPU wall time of tiled inference on a {latency_probe or f'{latency_size}x{latency_size} crop'}",
        "latency_size": int(latency_size),
    }
    if extra:
        report.update(extra)
    return report


def _ratio(a: float, b: float) -> float | None:
    return float(a) / float(b) if b else None


def render_markdown(report: dict[str, Any]) -> str:
    """``report.md``: a table of the three rows, the gaps, and the warning when the student does not beat the input."""
    lines = ["# Distillation scorecard", ""]
    if not report["student_beats_input"]:
        lines += [
            f"**WARNING: the student does not beat its input: student PSNR {report['student']['psnr']:.2f} dB "
            f"vs input {report['input']['psnr']:.2f} dB ({report['student_vs_input']['psnr_gain']:+.2f} dB). "
            "The student makes images worse; do not ship it.**",
            "",
        ]
    if not report["teacher_beats_student"]:
        lines += ["Note: the student scores at or above the teacher on this validation set.", ""]
    lines += [
        "| | model | PSNR (dB) | SSIM | params | GMACs @256 | CPU ms/MP |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for key in ("input", "teacher", "student"):
        r = report[key]
        lines.append(
            f"| {key} | {r.get('name', '')} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['params']:,} | "
            f"{r['gmacs_256']:.2f} | {r['ms_per_megapixel']:.0f} |"
        )
    st, si = report["student_vs_teacher"], report["student_vs_input"]
    lines += [
        "",
        f"- student vs teacher: {st['psnr_gap']:+.2f} dB PSNR, {st['ssim_gap']:+.4f} SSIM; "
        f"{_fmt_ratio(st['params_ratio'])} of the parameters, {_fmt_ratio(st['gmacs_ratio'])} of the MACs, "
        f"{_fmt_x(st['speedup'])} faster on CPU",
        f"- student vs input: {si['psnr_gain']:+.2f} dB PSNR, {si['ssim_gain']:+.4f} SSIM",
        f"- teacher vs input: {report['teacher_vs_input']['psnr_gain']:+.2f} dB PSNR",
        f"- {report['n_images']} validation images; {report['protocol']}",
        "",
    ]
    return "\n".join(lines)


def _fmt_ratio(r: float | None) -> str:
    return "n/a" if r is None else f"{r:.3f}x"


def _fmt_x(r: float | None) -> str:
    return "n/a" if r is None else f"{r:.2f}x"


def write_report(out_dir: str | Path, report: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``out_dir`` atomically."""
    d = Path(out_dir)
    j = atomic_write_json(d / "report.json", report)
    m = atomic_write_text(d / "report.md", render_markdown(report))
    return j, m


def log_report_mlflow(report: dict[str, Any], *, run_dir: Path, uri: str | None, experiment: str,
                      md_path: Path | None = None) -> str | None:
    """Log the scorecard to the student's MLflow run (reopened from ``run_dir``): ``<row>_<metric>`` metrics,
    ``student_psnr_gap``/``student_psnr_gain``, a ``student_beats_input`` tag, report.json and report.md."""
    from restorekit.training.tracking import Tracker

    tr = Tracker(Path(run_dir), uri=uri, experiment=experiment, run_name=f"distill-{Path(run_dir).parent.name}")
    tr.start({})
    metrics: dict[str, float] = {}
    for key in ("input", "teacher", "student"):
        for m in ("psnr", "ssim", "params", "gmacs_256", "ms_per_megapixel"):
            v = report[key][m]
            if v is not None and np.isfinite(float(v)):
                metrics[f"score_{key}_{m}"] = float(v)
    metrics["score_student_psnr_gap"] = float(report["student_vs_teacher"]["psnr_gap"])
    metrics["score_student_psnr_gain"] = float(report["student_vs_input"]["psnr_gain"])
    tr.log_metrics(metrics, step=0)
    tr.client.set_tag(tr.run_id, "student_beats_input", str(report["student_beats_input"]).lower())
    d = Path(run_dir).parent
    for f in (d / "report.json", md_path):
        if f is not None and Path(f).is_file():
            tr.log_artifact(f, "scorecard")
    tr.end("FINISHED")
    return tr.run_id
