"""Score predictions and models against targets, next to classical baselines.

Entry points (each returns the report dict and, given ``report=PATH``, writes the JSON, CSV,
Markdown and comparison images, see :mod:`restorekit.evaluation.report`):

- :func:`evaluate_folders` ``(pred_dir, target_dir, input_dir=None, ...)``: existing outputs;
- :func:`evaluate_pairs` ``([(name, pred, target[, input]), ...])``: in-memory arrays;
- :func:`evaluate_model` ``(model, data, baselines="all", ...)``: runs a model (tiled through
  :func:`restorekit.inference.restore_image`) and the baselines on a folder pair, a dataset
  folder, a training/data config (validation split) or a dataset object;
- :func:`evaluate_samples`: the core over :class:`~restorekit.evaluation.sources.EvalSample`.

Report layout::

    {"protocol": {"name": "rgb", ...}, "primary": "model", "count": N, "metrics": [...],
     "per_image": [...primary...], "mean": {...primary...},
     "methods": {"input": {"kind": "input", "per_image": [{"name", "psnr", "ssim", "mae", "mse"}], "mean": {...}},
                 "model": {...}, "nlm": {...}, ...},
     "gain_db": {"over_input": dB, "over_best_baseline": dB, "best_baseline": "wiener"},
     "ranking": ["model", "wiener", ...], "by_condition": {"iso": {"3200": {"model": {"n", "psnr", "ssim"}}}},
     "psnr_cap_db": 100.0, "notes": [...], "seconds": {...}}
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from restorekit.errors import ConfigError, DataError
from restorekit.evaluation.baselines import BASELINES, resolve_baselines
from restorekit.evaluation.sources import EvalSample, folder_samples, iterable_samples, resolve_data
from restorekit.metrics.image import PSNR_CAP, measure
from restorekit.metrics.protocol import Protocol, resolve_protocol
from restorekit.models.spec import arch_of

log = logging.getLogger(__name__)

DEFAULT_METRICS = ("psnr", "ssim", "mae", "mse")
MethodFn = Callable[[EvalSample], np.ndarray]


class _Keeper:
    """Keeps the images of the best and worst sample of the primary method (by PSNR)."""

    def __init__(self) -> None:
        self.best: tuple[float, dict[str, Any]] | None = None
        self.worst: tuple[float, dict[str, Any]] | None = None

    def offer(self, score: float, make: Callable[[], dict[str, Any]]) -> None:
        if math.isnan(score):
            return
        if self.best is None or score > self.best[0]:
            self.best = (score, make())
        if self.worst is None or score < self.worst[0]:
            self.worst = (score, make())


def _capped_row(name: str, values: dict[str, float]) -> dict[str, Any]:
    row: dict[str, Any] = {"name": name}
    for k, v in values.items():
        if k == "psnr" and (math.isinf(v) or v > PSNR_CAP):
            row[k] = PSNR_CAP
            row["psnr_capped"] = True
        else:
            row[k] = float(v)
    return row


def _mean(rows: list[dict[str, Any]], metrics: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in metrics:
        vals = [r[m] for r in rows if m in r and r[m] is not None and not math.isnan(r[m])]
        out[m] = float(np.mean(vals)) if vals else float("nan")
    return out


def _condition_groups(rows_by_method: dict[str, list[dict[str, Any]]], conditions: list[dict[str, Any]], metrics: Sequence[str]) -> dict[str, Any]:
    """Per-condition means for categorical conditions (strings, booleans, integers, and ``iso``) that
    take 2..20 distinct values with at least one value shared by several samples (continuous sampled
    parameters such as a noise sigma are not broken down)."""
    keys: dict[str, set] = {}
    for c in conditions:
        for k, v in c.items():
            if isinstance(v, float) and k != "iso":
                continue
            keys.setdefault(k, set()).add(v)
    n_samples = len(conditions)
    keys = {k: v for k, v in keys.items() if 2 <= len(v) <= 20 and len(v) < n_samples}
    out: dict[str, Any] = {}
    for key, values in sorted(keys.items()):
        groups: dict[str, Any] = {}
        for value in sorted(values, key=lambda v: (isinstance(v, str), v)):
            idx = [i for i, c in enumerate(conditions) if c.get(key) == value]
            per_method = {}
            for method, rows in rows_by_method.items():
                sel = [rows[i] for i in idx if i < len(rows)]
                if sel:
                    per_method[method] = {"n": len(sel), **_mean(sel, metrics)}
            groups[str(value)] = per_method
        out[key] = groups
    return out


def _lpips_metric(weights: str | Path, vgg_weights: str | Path | None, crop: int) -> Callable[[np.ndarray, np.ndarray], float]:
    """LPIPS-VGG as ``(pred, target) -> float`` on (H, W, 3) [0, 1] arrays (CPU, no grad)."""
    import torch

    from restorekit.losses.lpips import build_lpips

    net = build_lpips(weights, vgg_weights).eval()

    def fn(pred: np.ndarray, target: np.ndarray) -> float:
        def t(a: np.ndarray) -> torch.Tensor:
            x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(2, 0, 1)[None]
            return x[..., crop:-crop, crop:-crop] if crop else x

        with torch.no_grad():
            return float(net(t(pred), t(target))[0])

    return fn


def _check_crop(crop: int, sample: EvalSample) -> None:
    """DataError naming ``--crop-border`` when cropping leaves (almost) nothing of the sample's target."""
    h, w = sample.target.shape[:2]
    if crop and (h - 2 * crop < 8 or w - 2 * crop < 8):
        raise DataError(f"--crop-border {crop}: sample '{sample.name}' is {w}x{h}; cropping {crop} px from each border "
                        f"leaves {max(w - 2 * crop, 0)}x{max(h - 2 * crop, 0)} (need at least 8x8)")


def evaluate_samples(
    samples: Iterable[EvalSample],
    *,
    model_fn: MethodFn | None = None,
    primary: str | None = None,
    baselines: str | Sequence[str] | None = "none",
    protocol: str | Protocol | None = None,
    crop_border: int | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    total: int | None = None,
    progress: bool = False,
    report: str | Path | None = None,
    comparisons: bool = True,
    title: str | None = None,
    extra: dict[str, Any] | None = None,
    lpips_weights: str | Path | None = None,
    vgg_weights: str | Path | None = "imagenet",
) -> dict[str, Any]:
    """Score every sample: the input (when present), the primary method and the baselines.

    ``model_fn(sample) -> (H,W,3)`` runs the model (primary "model"); without it the samples' ``pred``
    images are the primary method ("pred"). ``baselines``: see :func:`resolve_baselines` (they need
    the samples' inputs). ``report``: JSON path; CSV, Markdown and comparison images are written beside.
    ``lpips_weights``: the lpips package's ``v0.1/vgg.pth`` (with torchvision VGG16 weights from
    ``vgg_weights``) adds an ``lpips`` column, measured on RGB after the protocol's border crop.
    """
    proto = resolve_protocol(protocol, crop_border=crop_border)
    lpips_fn = _lpips_metric(lpips_weights, vgg_weights, proto.crop_border) if lpips_weights else None
    if lpips_fn is not None and "lpips" not in metrics:
        metrics = tuple(metrics) + ("lpips",)
    if "lpips" in metrics and lpips_fn is None:
        raise ConfigError("the lpips metric needs lpips_weights (--lpips PATH to the lpips package's v0.1/vgg.pth)")
    base_metrics = tuple(m for m in metrics if m != "lpips")
    baseline_names = resolve_baselines(baselines)
    primary = primary or ("model" if model_fn is not None else "pred")
    rows: dict[str, list[dict[str, Any]]] = {}
    kinds: dict[str, str] = {}
    seconds: dict[str, float] = {}
    conditions: list[dict[str, Any]] = []
    keeper = _Keeper()
    names_seen: list[str] = []
    it: Iterator[EvalSample] = iter(samples)
    if progress:
        from tqdm import tqdm

        it = iter(tqdm(it, total=total, desc="eval", unit="img"))

    for sample in it:
        outputs: dict[str, np.ndarray] = {}
        if sample.input is not None and sample.input.shape == sample.target.shape:
            outputs["input"] = sample.input
            kinds["input"] = "input"
        if model_fn is not None:
            t0 = time.perf_counter()
            out = model_fn(sample)
            seconds[primary] = seconds.get(primary, 0.0) + time.perf_counter() - t0
            if out.shape != sample.target.shape:
                raise DataError(f"sample '{sample.name}': the model returned {out.shape}, the target is {sample.target.shape}")
            outputs[primary] = out
            kinds[primary] = "model"
        elif sample.pred is not None:
            outputs[primary] = sample.pred
            kinds[primary] = "pred"
        else:
            raise DataError(f"sample '{sample.name}' has no prediction and no model was given")
        if baseline_names:
            if sample.input is None:
                raise DataError(f"sample '{sample.name}': baselines need the degraded input (pass --input DIR or --baselines none)")
            for b in baseline_names:
                t0 = time.perf_counter()
                outputs[b] = BASELINES[b](sample.input)
                seconds[b] = seconds.get(b, 0.0) + time.perf_counter() - t0
                kinds[b] = "baseline"
        _check_crop(proto.crop_border, sample)
        values = {m: measure(o, sample.target, proto, metrics=base_metrics) for m, o in outputs.items()}
        if lpips_fn is not None:
            for m, o in outputs.items():
                values[m]["lpips"] = lpips_fn(o, sample.target)
        for m, v in values.items():
            rows.setdefault(m, []).append(_capped_row(sample.name, v))
            if sample.conditions:
                rows[m][-1]["conditions"] = dict(sample.conditions)
        conditions.append(dict(sample.conditions))
        names_seen.append(sample.name)
        if comparisons and "psnr" in values[primary]:
            keeper.offer(
                min(values[primary]["psnr"], PSNR_CAP),
                lambda: {"name": sample.name, "target": sample.target, "outputs": dict(outputs), "scores": {m: v.get("psnr") for m, v in values.items()}},
            )

    if not names_seen:
        raise DataError("nothing to evaluate: no samples")
    order = ["input", primary] + [b for b in baseline_names if b in rows]
    order = [m for m in order if m in rows]
    methods = {m: {"kind": kinds[m], "protocol": proto.name, "per_image": rows[m], "mean": _mean(rows[m], metrics)} for m in order}
    notes = []
    n_capped = sum(1 for m in rows.values() for r in m if r.get("psnr_capped"))
    if n_capped:
        notes.append(f"{n_capped} PSNR value(s) were infinite (identical images) or above {PSNR_CAP:g} dB and are reported as {PSNR_CAP:g} dB")
    if proto.window == "uniform":
        ssim_note = "scikit-image's default SSIM (7x7 uniform window, sample covariance), as the seed projects report"
    else:
        ssim_note = "Gaussian-window SSIM (scikit-image gaussian_weights=True, sigma 1.5, population covariance)"
    notes.append(f"metrics under protocol '{proto.name}'; SSIM = {ssim_note}")
    mean_psnr = {m: methods[m]["mean"].get("psnr", float("nan")) for m in order}
    gain: dict[str, Any] = {"over_input": None, "over_best_baseline": None, "best_baseline": None}
    if "psnr" in metrics:
        if "input" in methods and primary != "input":
            gain["over_input"] = mean_psnr[primary] - mean_psnr["input"]
        classical = [b for b in baseline_names if b in methods]
        if classical:
            best = max(classical, key=lambda b: mean_psnr[b])
            gain["best_baseline"] = best
            gain["over_best_baseline"] = mean_psnr[primary] - mean_psnr[best]
    ranking = sorted(order, key=lambda m: -mean_psnr[m] if not math.isnan(mean_psnr[m]) else math.inf)
    result: dict[str, Any] = {
        "title": title or "restorekit evaluation",
        "protocol": proto.to_dict(),
        "primary": primary,
        "count": len(names_seen),
        "metrics": list(metrics),
        "per_image": methods[primary]["per_image"],
        "mean": methods[primary]["mean"],
        "methods": methods,
        "gain_db": gain,
        "ranking": ranking,
        "by_condition": _condition_groups({m: rows[m] for m in order}, conditions, metrics),
        "psnr_cap_db": PSNR_CAP,
        "notes": notes,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "baselines": baseline_names,
        **(extra or {}),
    }
    if report is not None:
        from restorekit.evaluation.report import write_report

        extremes = {}
        if keeper.best is not None:
            extremes["best"] = keeper.best[1]
        if keeper.worst is not None and (keeper.best is None or keeper.worst[1]["name"] != keeper.best[1]["name"]):
            extremes["worst"] = keeper.worst[1]
        write_report(result, report, extremes if comparisons else {})
    return result


def evaluate_folders(
    pred_dir: str | Path,
    target_dir: str | Path,
    *,
    input_dir: str | Path | None = None,
    protocol: str | Protocol | None = None,
    crop_border: int | None = None,
    baselines: str | Sequence[str] | None = "none",
    report: str | Path | None = None,
    on_missing: str = "fail",
    limit: int | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Score the images in ``pred_dir`` against ``target_dir`` (paired by relative name without extension).

    With ``input_dir``, the degraded inputs are scored too (gain over input) and baselines can run.
    """
    if limit is not None and int(limit) < 1:
        raise ConfigError(f"--limit must be >= 1 (or left out to score every image), got {limit}")
    n, samples = folder_samples(target_dir, input_dir=input_dir, pred_dir=pred_dir, on_missing=on_missing, limit=limit)
    return evaluate_samples(samples, primary="pred", baselines=baselines, protocol=protocol, crop_border=crop_border,
                            total=n, report=report, **kwargs)


def evaluate_pairs(
    pairs: Iterable[Sequence[Any]],
    *,
    protocol: str | Protocol | None = None,
    crop_border: int | None = None,
    baselines: str | Sequence[str] | None = "none",
    report: str | Path | None = None,
    primary: str = "pred",
    **kwargs: Any,
) -> dict[str, Any]:
    """Score in-memory images: ``pairs`` of ``(name, pred, target)`` or ``(name, pred, target, input)``,
    arrays ``(H, W, 3)`` float in [0, 1] (or CHW tensors)."""
    from restorekit.evaluation.sources import _chw_to_hwc

    def gen() -> Iterator[EvalSample]:
        for item in pairs:
            if len(item) not in (3, 4):
                raise DataError("evaluate_pairs expects (name, pred, target) or (name, pred, target, input) tuples")
            inp = _chw_to_hwc(item[3]) if len(item) == 4 and item[3] is not None else None
            yield EvalSample(name=str(item[0]), pred=_chw_to_hwc(item[1]), target=_chw_to_hwc(item[2]), input=inp)

    return evaluate_samples(gen(), primary=primary, baselines=baselines, protocol=protocol, crop_border=crop_border,
                            report=report, **kwargs)


def make_model_fn(
    model: Any,
    *,
    tile: int | str | None = "auto",
    overlap: int | float | str | None = 32,
    device: str | None = None,
    ensemble: bool = False,
    backend: str | None = "auto",
    batch: int | None = 4,
    options: Any = None,
) -> tuple[MethodFn, str]:
    """A ``sample -> (H,W,3)`` function running ``model`` and its display name.

    ``model``: a :class:`~restorekit.inference.restorer.Restorer`, an ``nn.Module``, a runtime or
    any model file :func:`~restorekit.inference.restorer.load_restorer` reads (package, checkpoint,
    ``.onnx``, TorchScript: detected by content, as everywhere). The options are validated once as
    a :class:`~restorekit.inference.options.RestoreOptions` (``options`` given: used as is). Image
    samples go through ``restorer.restore_image``; raw samples (``rggb``/``cond``/``residual``
    batches) through ``restorer(residual, rggb=..., cond=...)`` when the model takes raw inputs.
    """
    import torch

    from restorekit.inference.options import RestoreOptions
    from restorekit.inference.restorer import Restorer

    opts = options if options is not None else RestoreOptions.parse(
        tile=tile, overlap=overlap, device=None if device is None else str(device), ensemble=ensemble,
        backend=backend, batch=batch)
    if isinstance(model, (str, Path)):
        label = Path(model).stem
    elif isinstance(model, torch.nn.Module):
        label = str(arch_of(model) or type(model).__name__)
    else:
        label = "model"
    restorer = Restorer.coerce(model, opts)
    if label == "model":
        label = restorer.arch
    caps = restorer.caps

    def run(sample: EvalSample) -> np.ndarray:
        if sample.batch is not None:
            if "rggb" not in caps.inputs:
                raise DataError(f"sample '{sample.name}' is a raw sample, but model '{restorer.arch}' takes "
                                f"{list(caps.inputs)}; raw data needs a raw model")
            b = sample.batch
            out = restorer(b["residual"].float(), rggb=b["rggb"].float(), cond=b["cond"].float())[0]
            return np.ascontiguousarray(out.permute(1, 2, 0).numpy())
        if sample.input is None:
            raise DataError(f"sample '{sample.name}' has no input image to restore")
        if not caps.rgb:
            raise DataError(f"sample '{sample.name}' is an RGB image, but model '{restorer.arch}' needs inputs "
                            f"{list(caps.inputs)}")
        return restorer.restore_image(sample.input)

    return run, label


def evaluate_model(
    model: Any,
    data: Any,
    *,
    baselines: str | Sequence[str] | None = "all",
    protocol: str | Protocol | None = None,
    crop_border: int | None = None,
    report: str | Path | None = None,
    tile: int | str = "auto",
    overlap: int | float | str = 32,
    device: str | None = None,
    ensemble: bool = False,
    backend: str = "auto",
    limit: int | None = None,
    on_missing: str = "fail",
    **kwargs: Any,
) -> dict[str, Any]:
    """Run ``model`` on ``data`` (see :func:`~restorekit.evaluation.sources.resolve_data`) and score it
    with the input and the classical ``baselines`` under ``protocol``; returns the report dict."""
    if limit is not None and int(limit) < 1:
        raise ConfigError(f"--limit must be >= 1 (or left out to score every image), got {limit}")
    fn, label = make_model_fn(model, tile=tile, overlap=overlap, device=device, ensemble=ensemble, backend=backend)
    n, samples = resolve_data(data, limit=limit, on_missing=on_missing)
    extra = {"model": str(model) if isinstance(model, (str, Path)) else label, **kwargs.pop("extra", {})}
    if isinstance(data, (str, Path)):
        extra.setdefault("data", str(data))
    return evaluate_samples(samples, model_fn=fn, primary="model", baselines=baselines, protocol=protocol,
                            crop_border=crop_border, total=n, report=report, extra=extra, **kwargs)


__all__ = [
    "evaluate_folders",
    "evaluate_model",
    "evaluate_pairs",
    "evaluate_samples",
    "iterable_samples",
    "make_model_fn",
]
