"""``run_distill(cfg, out_dir, resume)``: teacher -> (cache) -> student training -> scorecard.

Output folder::

    <out>/teacher/            the teacher's training run (when ``teacher.train`` is configured)
    <out>/data/               fixed degraded copies of synthetic data (precompute mode only)
    <out>/teacher_cache/      teacher outputs + fingerprint.json (precompute mode)
    <out>/student/            the student's training run (model.safetensors, checkpoints, distill_epochs.json)
    <out>/report.json         the scorecard (input / teacher / student)
    <out>/report.md

Every stage resumes: a finished teacher with the same config is reused, the
caches skip what they hold (and rebuild when their fingerprint changed), the
student resumes from ``latest.ckpt`` with ``resume="auto"``.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from restorekit.distill.cache import CacheItem, precompute_teacher
from restorekit.distill.config import DistillConfig
from restorekit.distill.fingerprint import cache_fingerprint, canonical_json, hash_file, sha256_text, teacher_hash
from restorekit.errors import CheckpointError, ConfigError
from restorekit.models.spec import arch_of

log = logging.getLogger(__name__)


@dataclass
class DistillResult:
    """What :func:`run_distill` produced."""

    out_dir: Path
    teacher_path: Path
    student_package: Path | None
    report: dict[str, Any] | None = None
    cache: dict[str, Any] = field(default_factory=dict)


def _say(msg: str, quiet: bool = False) -> None:
    if not quiet:
        print(f"[distill] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------- teacher


def _resolve_file(p: str, base: Path) -> Path:
    cand = Path(p).expanduser()
    if cand.exists() or cand.is_absolute():
        return cand
    alt = base / cand
    return alt if alt.exists() else cand


def ensure_teacher(cfg: DistillConfig, out: Path, resume: str | None, quiet: bool = False) -> Path:
    """The teacher's weight file: ``teacher.path``, or the package of a (re)trained ``teacher.train`` run.

    A finished teacher run in ``<out>/teacher`` whose config equals the current one is reused.
    """
    if cfg.teacher.path is not None:
        path = _resolve_file(cfg.teacher.path, cfg.base_dir)
        if not path.exists():
            raise CheckpointError(f"teacher.path: teacher weights '{path}' do not exist")
        return path
    import yaml

    from restorekit.training.config import config_to_dict, parse_run_config
    from restorekit.training.engine import PACKAGE_FILE, train

    tcfg = parse_run_config(cfg.teacher_run_raw(), f"teacher.train in {cfg.source or 'distill config'}")
    tdir = out / "teacher"
    pkg = tdir / PACKAGE_FILE
    wanted = yaml.safe_dump(config_to_dict(tcfg), sort_keys=False)
    saved = tdir / "config.yaml"
    same = saved.is_file() and saved.read_text(encoding="utf-8") == wanted
    if pkg.is_file() and same:
        _say(f"teacher: reusing the trained teacher {pkg}", quiet)
        return pkg
    fresh = not same
    _say(f"teacher: training {tcfg.model.name} into {tdir}" + ("" if fresh or not resume else " (resuming)"), quiet)
    # only "auto" applies to the teacher (an explicit checkpoint path is the student's)
    res = train(tcfg, tdir, resume="auto" if (resume == "auto" and not fresh) else None, progress_bar=False if quiet else None)
    if res.package is None:
        raise CheckpointError(f"teacher training in '{tdir}' produced no package")
    return res.package


# ----------------------------------------------------------------------------------------- data


def _hwc(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().float().permute(1, 2, 0).numpy())


def _fixed_view(ds: Any) -> Any:
    """A full-image, no-augmentation, fixed-degradation copy of a RestoreDataset (what the teacher sees)."""
    from restorekit.data.dataset import RestoreDataset

    return RestoreDataset(
        ds.items, seed=ds.seed, train=False, patch_size=None, degrader=ds.degrader, augment=(False, False, False),
        bayer_safe=ds.bayer_safe, on_error=ds.on_error, max_pixels=ds.max_pixels, split="fixed",
    )


def _items_listing(ds: Any, mode: str) -> str:
    """Hash of a dataset's sample list: names and, per file, its path plus size/mtime (or content)."""
    import os

    rows = []
    for it in ds.items:
        refs = []
        for role, ref in it.refs():
            disp = ref.display()
            p = Path(disp)
            if p.is_file():
                st = os.stat(p)
                sig = hash_file(p) if mode == "content" else f"{st.st_size}:{st.st_mtime_ns}"
            else:
                sig = "bundled"
            refs.append([role, disp, sig])
        rows.append([it.name, refs])
    import skimage

    rows.append(["skimage", skimage.__version__])
    return sha256_text(canonical_json(rows))


def _cache_items(fixed: Any, key: str) -> list[CacheItem]:
    def loader(i: int) -> Callable[[], np.ndarray]:
        return lambda: _hwc(fixed[i][key])

    return [CacheItem(fixed.items[i].name, loader(i)) for i in range(len(fixed.items))]


def _identity(x: np.ndarray) -> np.ndarray:
    return x


def materialize(ds: Any, folder: Path, fp_parts: dict[str, Any], quiet: bool) -> tuple[Path, Path]:
    """Write fixed degraded inputs and targets of ``ds`` (16-bit PNG) into ``folder/{input,target}``; resumable."""
    fixed = _fixed_view(ds)
    out = []
    for key in ("input", "target"):
        fp = cache_fingerprint(teacher=f"materialize:{key}", teacher_run={}, data=fp_parts["data"],
                               degrade=fp_parts["degrade"], cache_format={"fmt": "png16"})
        res = precompute_teacher(_identity, _cache_items(fixed, key), folder / key, fp, fmt="png16")
        _say(f"data: {folder / key}: {res.computed} written, {res.skipped} kept"
             + (f" (rebuilt: {', '.join(res.changed)} changed)" if res.invalidated else ""), quiet)
        out.append(folder / key)
    return out[0], out[1]


def _paired_dataset(input_dir: Path, target_dir: Path, seed: int) -> Any:
    """The (un-augmented) dataset of a materialized input/target folder pair."""
    from restorekit.data.dataset import RestoreDataset
    from restorekit.data.sources import check_items, paired_items

    items, problems = paired_items(str(input_dir), str(target_dir), None)
    items, _ = check_items(items, problems, mode="header", on_error="fail", source=f"data ({input_dir})")
    return RestoreDataset(items, seed=seed, train=False, patch_size=None)


def _common_data_dict(data_cfg: Any) -> dict[str, Any]:
    from restorekit.data.config import CommonDataConfig

    d = data_cfg.model_dump(mode="json")
    keep = set(CommonDataConfig.model_fields) - {"degrade", "limit", "extra"}
    return {k: v for k, v in d.items() if k in keep}


def prepare_precompute(
    cfg: DistillConfig, teacher: torch.nn.Module, out: Path, quiet: bool = False
) -> tuple[Any, dict[str, Any]]:
    """Fill the teacher cache; return (the student's data config with the cache as extra ``teacher``, cache info).

    File datasets without synthetic degradation are cached as they are. With a
    ``degrade`` recipe, one fixed degraded copy of every training and
    validation image is written first (``<out>/data``) and the student trains
    on those pairs: precomputed teacher outputs only match fixed inputs (use
    ``teacher.mode: online`` for fresh degradations every epoch).
    """
    from restorekit.data import build_datasets
    from restorekit.data.config import parse_data_config
    from restorekit.distill.teacher import teacher_image_fn, teacher_run_settings

    scfg = cfg.student
    data_cfg = scfg.data
    train_ds, val_ds = build_datasets(data_cfg, seed=scfg.seed, run_dir=None)
    val_extra: list[CacheItem] = []
    synthetic = getattr(train_ds, "degrader", None) is not None
    degrade = {"spec": data_cfg.model_dump(mode="json").get("degrade"), "seed": scfg.seed} if synthetic else None
    listing = _items_listing(train_ds, cfg.teacher.data_hash)

    if synthetic:
        dd = out / "data"
        tr_in, tr_tg = materialize(train_ds, dd / "train", {"data": listing, "degrade": degrade}, quiet)
        va_in, va_tg = materialize(val_ds, dd / "val", {"data": _items_listing(val_ds, cfg.teacher.data_hash), "degrade": degrade}, quiet)
        base = _common_data_dict(data_cfg)
        base.update(kind="paired", input_dir=str(tr_in), target_dir=str(tr_tg), val_input_dir=str(va_in), val_target_dir=str(va_tg))
        fixed = _fixed_view(_paired_dataset(tr_in, tr_tg, scfg.seed))
    else:
        base = data_cfg.model_dump(mode="json")
        fixed = _fixed_view(train_ds)
        # a val_fraction split (or val folders) reads the same ``teacher`` extra folder: cache those inputs too
        val_fixed = _fixed_view(val_ds)
        seen = {it.name for it in fixed.items}
        val_extra = [c for c in _cache_items(val_fixed, "input") if c.name not in seen]

    cache_dir = Path(cfg.teacher.cache_dir) if cfg.teacher.cache_dir else out / "teacher_cache"
    run = teacher_run_settings(teacher, tile=cfg.teacher.tile, overlap=cfg.teacher.overlap, backend="eager")
    if val_extra:  # the validation inputs are part of what the cache was computed from
        listing = sha256_text(canonical_json([listing, _items_listing(val_ds, cfg.teacher.data_hash)]))
    fp = cache_fingerprint(teacher=teacher_hash(teacher), teacher_run=run, data=listing, degrade=degrade,
                           cache_format={"fmt": cfg.teacher.cache_format})
    fn = teacher_image_fn(teacher, tile=cfg.teacher.tile, overlap=cfg.teacher.overlap, device=cfg.teacher.device, backend="eager")
    items = _cache_items(fixed, "input") + val_extra
    n = len(items)
    step = max(1, n // 10)
    res = precompute_teacher(
        fn, items, cache_dir, fp, fmt=cfg.teacher.cache_format,
        progress=lambda done, total, name: _say(f"teacher cache: {done}/{total} {name}", quiet) if done % step == 0 or done == total else None,
    )
    _say(f"teacher cache {cache_dir}: {res.computed} computed, {res.skipped} reused"
         + (f" (invalidated: {', '.join(res.changed)} changed)" if res.invalidated else ""), quiet)
    extra = dict(base.get("extra") or {})
    extra["teacher"] = str(cache_dir)
    base["extra"] = extra
    info = {"dir": str(cache_dir), "computed": res.computed, "reused": res.skipped, "invalidated": res.invalidated,
            "changed": res.changed, "fingerprint": fp["digest"], "materialized": synthetic}
    return parse_data_config(base, "data (distill)"), info


# ----------------------------------------------------------------------------------------- main


def make_out_dir(out_dir: str | Path) -> Path:
    """Create the output folder; :class:`ConfigError` naming ``--out`` when it (or a parent) is a plain file."""
    out = Path(out_dir)
    bad = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if bad is not None:
        raise ConfigError(f"--out '{out}': '{bad}' is a file, not a folder; choose another output folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out '{out}': cannot create the folder ({exc.strerror or exc})") from None
    return out


def run_distill(cfg: DistillConfig, out_dir: str | Path, *, resume: str | None = None, quiet: bool = False) -> DistillResult:
    """Run the whole distillation; see the module docstring for the output layout."""
    from restorekit.data import build_datasets
    from restorekit.distill.features import FeaturePair
    from restorekit.distill.module import DistillationModule
    from restorekit.distill.sampler import ChunkedDataset
    from restorekit.distill.teacher import load_teacher
    from restorekit.training.config import parse_run_config
    from restorekit.training.engine import train

    import time

    out = make_out_dir(out_dir)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    teacher_path = ensure_teacher(cfg, out, resume, quiet)
    timings["teacher"] = round(time.perf_counter() - t0, 1)
    teacher = load_teacher(teacher_path, cfg.teacher.arch, **cfg.teacher.load_args)
    _say(f"teacher: {arch_of(teacher)} from {teacher_path} (frozen, eval)", quiet)

    scfg = cfg.student
    cache_info: dict[str, Any] = {"mode": cfg.teacher.mode}
    t0 = time.perf_counter()
    if cfg.teacher.mode == "precompute":
        data_cfg, info = prepare_precompute(cfg, teacher, out, quiet)
        cache_info.update(info)
        raw = scfg.model_dump(mode="json")
        raw["data"] = data_cfg.model_dump(mode="json")
        scfg = parse_run_config(raw, "student config (distill)")
    timings["precompute"] = round(time.perf_counter() - t0, 1)

    sdir = out / "student"
    train_ds, val_ds = build_datasets(scfg.data, seed=scfg.seed, run_dir=sdir)
    if cfg.distill.epoch_samples:
        train_ds = ChunkedDataset(train_ds, cfg.distill.epoch_samples, scfg.seed)
        _say(f"chunked epochs: {cfg.distill.epoch_samples} of {train_ds.n} samples per epoch", quiet)
    modules: list[Any] = []

    def factory(run_cfg: Any, model: torch.nn.Module, total_steps: int) -> DistillationModule:
        m = DistillationModule(
            run_cfg, model, total_steps, teacher=teacher,
            feature_pairs=[FeaturePair(f.student, f.teacher, f.weight) for f in cfg.distill.features],
            feature_criterion=cfg.distill.feature_criterion, record_dir=sdir,
        )
        modules.append(m)
        return m

    _say(f"student: training {scfg.model.name} into {sdir}", quiet)
    t0 = time.perf_counter()
    res = train(scfg, sdir, resume=resume, datasets=(train_ds, val_ds), module_factory=factory,
                progress_bar=False if quiet else None)
    timings["student"] = round(time.perf_counter() - t0, 1)
    result = DistillResult(out, Path(teacher_path), res.package, cache=cache_info)
    cache_info["online_teacher_batches"] = modules[-1].online_batches if modules else 0
    if scfg.tracking.enabled and res.package is not None:
        _nest_runs(out, sdir, scfg.tracking)
    if cfg.score.enabled and res.package is not None:
        result.report = make_scorecard(cfg, teacher, res.package, val_ds, out, extra={
            "teacher_path": str(teacher_path), "student_package": str(res.package), "teacher_outputs": cache_info,
            "student_training": {k: res.final_metrics.get(k) for k in ("weights", "n_images")} | {
                "epochs": len(res.history), "stopped_early": res.stopped_early},
            "loss": [t.model_dump(mode="json") for t in scfg.loss],
            "epoch_samples": cfg.distill.epoch_samples,
            "timings_s": timings,
        }, tracking=scfg.tracking, run_dir=sdir, quiet=quiet)
    return result


def _nest_runs(out: Path, student_dir: Path, tracking: Any) -> str | None:
    """A parent MLflow run ``distill-<out>`` (kept in ``<out>/mlflow_run.json``) with the teacher's and the
    student's training runs nested under it (tag ``mlflow.parentRunId``); returns its id."""
    from restorekit.training.tracking import Tracker, default_tracking_uri

    parent = Tracker(out, uri=default_tracking_uri(student_dir, tracking.uri), experiment=tracking.experiment,
                     run_name=f"distill-{out.resolve().name}", tags={"restorekit.kind": "distill", **tracking.tags})
    try:
        parent.start({})
        for child in (out / "teacher", student_dir):
            parent.adopt(child)
        parent.end("FINISHED")
    except Exception as exc:  # noqa: BLE001 - tracking must not lose a finished distillation
        log.warning("distillation runs not nested in MLflow: %s", exc)
        return None
    return parent.run_id


def make_scorecard(cfg: DistillConfig, teacher: torch.nn.Module, student_package: Path, val_ds: Any, out: Path, *,
                   extra: dict[str, Any], tracking: Any, run_dir: Path, quiet: bool = False) -> dict[str, Any]:
    """Score input/teacher/student on the validation set; write report.json/report.md; log to MLflow when on."""
    from restorekit.distill.scorecard import build_report, log_report_mlflow, probe_note, score_models, write_report
    from restorekit.models.loading import load_model

    student = load_model(student_package)
    n = len(val_ds) if cfg.score.max_images is None else min(len(val_ds), cfg.score.max_images)
    pairs = []
    for i in range(n):
        s = val_ds[i]
        pairs.append((_hwc(s["input"]), _hwc(s["target"])))
    teacher = teacher.to("cpu").eval()
    _say(f"scorecard: {n} validation images, CPU latency on {cfg.score.latency_size}px", quiet)
    scores = score_models(pairs, teacher, student, tile=cfg.score.tile, overlap=cfg.score.overlap,
                          latency_size=cfg.score.latency_size, latency_repeats=cfg.score.latency_repeats,
                          backend=cfg.score.backend)
    report = build_report(scores, n_images=n, extra=extra, latency_size=cfg.score.latency_size,
                          latency_probe=probe_note(pairs[0][0] if pairs else None, cfg.score.latency_size))
    _, md = write_report(out, report)
    if tracking is not None and tracking.enabled:
        try:
            report["mlflow_run_id"] = log_report_mlflow(report, run_dir=run_dir, uri=tracking.uri,
                                                        experiment=tracking.experiment, md_path=md)
            write_report(out, report)
        except ConfigError as exc:
            log.warning("scorecard not logged to MLflow: %s", exc)
    s, t, i = report["student"], report["teacher"], report["input"]
    _say(f"scorecard: input {i['psnr']:.2f} dB | teacher {t['psnr']:.2f} dB | student {s['psnr']:.2f} dB "
         f"({report['student_vs_input']['psnr_gain']:+.2f} dB over input, {report['student_vs_teacher']['psnr_gap']:+.2f} dB to teacher)", quiet)
    if not report["student_beats_input"]:
        _say("WARNING: the student does not beat its input (see report.md)", quiet)
    return report
