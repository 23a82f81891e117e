"""``restorekit demo``: train a small restoration model on scikit-image's photos for a bounded time,
then score it honestly against every classical baseline on held-out photos.

The photos bundled with scikit-image (nothing is downloaded) are degraded on the fly (blur + noise +
JPEG, see :data:`DEMO_CONFIG`); the held-out photos are de-duplicated from the training photos by
content (``restorekit.data.dedup``, recorded in ``split.json``). A short calibration measures the
seconds per training step on this machine (and the baselines' cost), and the number of steps, epochs
and samples per epoch are chosen so that training, validation and the final evaluation fit in
``minutes``. Lightning's ``max_time`` bounds training as a safety net.

Held-out scoring (:func:`heldout_samples`, :func:`evaluate_heldout`): ``DRAWS_PER_PHOTO`` seeded
degraded copies of each held-out photo at full size, together covering every branch of the
degradation (:func:`degradation_branches`: each blur kind, JPEG on and off, ...); the model runs
through :func:`restorekit.inference.restore_image` and everything is scored by
:func:`restorekit.evaluation.evaluate_samples` next to the classical baselines of
:data:`DEMO_BASELINES` on the same inputs.

Outputs in the run folder (default ``runs/demo``): everything ``restorekit train`` writes
(``model.safetensors``, ``training_history.json``, ``training_curves.png``, ``samples/``,
``split.json``) plus ``comparisons/<photo>_<draw>.png`` (input | output | target), ``eval/`` (the
full evaluation report) and ``report.json`` / ``report.md`` (see :func:`summarise`).
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from restorekit.errors import ConfigError

#: the demo recipe (configs/demo.yaml holds the same; a test checks they agree)
DEMO_CONFIG: dict[str, Any] = {
    "name": "demo",
    "seed": 0,
    # chosen by measurement (docs/training.md): the most restored pixels per CPU-second
    "model": {"name": "nafnet", "args": {"width": 16, "enc_blk_nums": [1, 1, 1, 1], "middle_blk_num": 1,
                                         "dec_blk_nums": [1, 1, 1, 1]}},
    "data": {
        "kind": "skimage",
        "names": ["astronaut", "hubble_deep_field", "immunohistochemistry", "motorcycle_left", "motorcycle_right",
                  "retina", "colorwheel", "brick", "grass", "gravel", "moon", "page", "text", "cell"],
        "val_names": ["coffee", "rocket", "chelsea", "camera", "coins", "clock"],
        "patch_size": 96,
        "batch_size": 4,
        "val_patch": 256,
        "repeat": 4,
        "degrade": [
            {
                "name": "one_of",
                "p": 1.0,
                "ops": [
                    {"name": "gaussian_blur", "kernel_sizes": [9, 11, 13], "sigma": [1.0, 2.5]},
                    {"name": "motion_blur", "kind": "line", "length": [5, 15], "angle": [0, 180]},
                    {"name": "motion_blur", "kind": "trajectory", "length": [7, 17], "angle": [0, 360]},
                ],
            },
            {"name": "gaussian_noise", "p": 1.0, "sigma": [0.01, 0.05]},
            {"name": "jpeg", "p": 0.5, "quality": [60, 90]},
        ],
    },
    "loss": [{"name": "l1", "weight": 1.0}],
    "optim": {"name": "adamw", "lr": 2e-3, "weight_decay": 1e-4},
    # cosine over the wall-clock budget (train.max_minutes, set from --minutes): the demo is bounded by time
    "schedule": {"name": "cosine_time", "warmup_steps": 20, "min_lr": 1e-5},
    "train": {
        "epochs": 20,
        "max_minutes": 4,
        "grad_clip": 1.0,
        # the spec's measured choice (benchmarks/memory_format.py: channels_last is the faster format here)
        "channels_last": "auto",
        "early_stopping": {"enabled": False},
        "checkpoint": {"every_n_epochs": 0, "save_best": False, "save_latest": False},
        "n_samples": 2,
        "export": "last",
    },
    "trainer": {"device": "auto", "progress_bar": True},
    "tracking": {"enabled": True, "experiment": "restorekit-demo"},
}

#: the demo's default time budget in minutes, evaluation included (the issue's limit is 10)
DEMO_MINUTES = 9.5
#: degraded samples drawn per held-out photo (each photo gets ``DRAWS_PER_PHOTO`` different branches)
DRAWS_PER_PHOTO = 2
#: the classical baselines scored next to the model (everything that fits blur + noise + JPEG)
DEMO_BASELINES = "blur+noise"
#: marker file telling a later ``restorekit demo`` that it may replace this folder
MARKER = ".restorekit-demo"
#: validations during the demo (one per epoch)
DEMO_EPOCHS = 8


def demo_config(overrides: list[str] | None = None, path: str | Path | None = None) -> Any:
    """The demo :class:`~restorekit.training.config.RunConfig` (from ``path`` or :data:`DEMO_CONFIG`)."""
    from restorekit.config.base import load_yaml
    from restorekit.training.config import parse_run_config

    data = load_yaml(path) if path else copy.deepcopy(DEMO_CONFIG)
    return parse_run_config(data, f"'{path}'" if path else "demo config", overrides)


def prepare_out(out: Path) -> None:
    """Create ``out``; a folder left by an earlier demo is replaced, any other non-empty folder refused."""
    if out.exists():
        if (out / MARKER).is_file():
            shutil.rmtree(out)
        elif out.is_file() or any(out.iterdir()):
            raise ConfigError(f"--out '{out}' exists and was not written by restorekit demo; choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by restorekit demo; the next demo run replaces this folder\n")


def _time_steps(cfg: Any, train_ds: Any, device: Any, steps: int, give_up_s: float = math.inf) -> float:
    """Median seconds of ``steps`` training steps (model, loss, AdamW on real batches) after one warm-up step."""
    import torch
    from torch.utils.data import DataLoader

    from restorekit.data import collate
    from restorekit.losses import build_loss
    from restorekit.training.engine import build_model
    from restorekit.training.forward import predict01
    from restorekit.training.module import wants_channels_last

    model = build_model(cfg).to(device)
    cl = wants_channels_last(model, cfg.train.channels_last)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    loss_fn = build_loss(cfg.loss).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, foreach=True)
    loader = DataLoader(train_ds, batch_size=cfg.data.batch_size, shuffle=True, collate_fn=collate)
    times = []
    it = iter(loader)
    for i in range(steps + 1):
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        t = time.perf_counter()
        batch = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
        pred = predict01(model, batch, channels_last=cl)
        loss, _ = loss_fn(pred, batch["target"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t
        if i > 0:  # the first step pays one-off costs
            times.append(dt)
        if dt > give_up_s:  # already far slower than another setting: stop paying for it
            return max(dt, give_up_s)
    return sorted(times)[len(times) // 2]


def calibrate(cfg: Any, train_ds: Any, val_ds: Any, device: Any, steps: int = 3) -> dict[str, float]:
    """Seconds per training step and per validation pass; on CPU also the fastest thread count.

    On a busy shared CPU, PyTorch's default (one OpenMP thread per core) can be ten times slower than a
    single thread, because spinning threads wait for each other; on an idle machine more threads win. So
    both are measured and the faster one is kept (``threads``).
    """
    import torch

    from restorekit.training.engine import build_model
    from restorekit.training.forward import predict01

    default = torch.get_num_threads()
    candidates = [default] if device.type != "cpu" or default == 1 else [1, default]
    timed = {}
    for n in candidates:
        torch.set_num_threads(n)
        # a candidate whose step takes 3x the best one so far (plus 2 s of one-off costs) is given up at once
        best = min(timed.values(), default=math.inf)
        timed[n] = _time_steps(cfg, train_ds, device, steps, give_up_s=3.0 * best + 2.0)
    threads = min(timed, key=timed.get)
    torch.set_num_threads(threads)
    model = build_model(cfg).to(device).eval()
    t = time.perf_counter()
    px = 0
    with torch.no_grad():
        for j in range(len(val_ds)):
            x = val_ds[j]["input"][None].to(device)
            predict01(model, x)
            px += x.shape[-1] * x.shape[-2]
    val_s = time.perf_counter() - t
    out = {"step_s": timed[threads], "val_s": val_s, "val_s_per_mpx": val_s / max(px / 1e6, 1e-6), "threads": float(threads)}
    out.update({f"step_s_{n}_threads": v for n, v in timed.items()})
    return out


def identity_start(model: Any) -> bool:
    """Zero the output layer of a residual network (NAFNet ``ending``, residual ``deblur_unet`` ``final``),
    so that training starts from the identity (output = input) instead of a random correction.

    Measured in a short demo run: NAFNet's default initialisation starts 5 dB *below* its input
    (11.7 vs 16.9 dB) and spent its first steps recovering. Returns whether a layer was zeroed.
    """
    import torch

    head = None
    if type(model).__name__.startswith("NAFNet"):
        head = getattr(model, "ending", None)
    elif getattr(model, "residual", False):
        head = getattr(model, "final", None)
    if not isinstance(head, torch.nn.Conv2d):
        return False
    with torch.no_grad():
        head.weight.zero_()
        if head.bias is not None:
            head.bias.zero_()
    return True


def time_baselines(sample: Any, baselines: str = DEMO_BASELINES) -> dict[str, float]:
    """Seconds per megapixel of all the classical ``baselines`` together, timed on one held-out sample."""
    from restorekit.evaluation import BASELINES, resolve_baselines

    t = time.perf_counter()
    for b in resolve_baselines(baselines):
        BASELINES[b](sample.input)
    mpx = sample.input.shape[0] * sample.input.shape[1] / 1e6
    return {"baseline_s_per_mpx": (time.perf_counter() - t) / max(mpx, 1e-6)}


def plan_budget(minutes: float, elapsed: float, cal: dict[str, float], n_train_images: int, batch: int,
                full_val_mpx: float, epochs: int = DEMO_EPOCHS) -> dict[str, Any]:
    """Steps, epochs and ``repeat`` (patches per image per epoch) that fit the time left."""
    total = minutes * 60.0
    # full-size evaluation of the model and of every baseline, export, MLflow
    final_eval = (cal["val_s_per_mpx"] * 1.5 + cal.get("baseline_s_per_mpx", 0.0) * 1.2) * full_val_mpx + 8.0
    overhead = 20.0  # trainer start-up, plots, MLflow
    train_budget = total - elapsed - final_eval - overhead - epochs * (cal["val_s"] + 1.0)
    if train_budget < epochs * cal["step_s"]:
        epochs = max(1, int(train_budget // max(cal["step_s"] * 2, 1e-6)))
        train_budget = total - elapsed - final_eval - overhead - epochs * (cal["val_s"] + 1.0)
    steps = max(epochs, int(train_budget / cal["step_s"]))
    per_epoch = max(1, math.ceil(steps / epochs))
    repeat = max(1, math.ceil(per_epoch * batch / n_train_images))
    steps_per_epoch = math.ceil(n_train_images * repeat / batch)
    return {
        "epochs": epochs,
        "max_steps": steps,
        "repeat": repeat,
        "steps_per_epoch": steps_per_epoch,
        "train_budget_s": round(train_budget, 1),
        "final_eval_budget_s": round(final_eval, 1),
        "train_seconds_limit": max(30.0, total - elapsed - final_eval - overhead),
    }


def run_demo(
    minutes: float = DEMO_MINUTES,
    out: str | Path = "runs/demo",
    *,
    overrides: list[str] | None = None,
    config_path: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the demo; returns the report dict (also written to ``<out>/report.json`` and ``report.md``)."""
    from restorekit.data import build_datasets
    from restorekit.device import resolve_device
    from restorekit.inference.restorer import load_restorer
    from restorekit.training.config import parse_run_config, config_to_dict
    from restorekit.training.engine import train

    if minutes <= 0:
        raise ConfigError(f"--minutes must be positive, got {minutes}")
    t_start = time.time()
    out = Path(out)
    cfg = demo_config(overrides, config_path)
    prepare_out(out)
    device = resolve_device(cfg.trainer.device)

    train_ds, val_ds = build_datasets(cfg.data, seed=cfg.seed, run_dir=out)
    samples = heldout_samples(cfg.data, cfg.seed)
    full_mpx = sum(smp.target.shape[0] * smp.target.shape[1] for smp in samples) / 1e6
    n_images = len(train_ds) // max(1, cfg.data.repeat)
    cal = calibrate(cfg, train_ds, val_ds, device)
    cal.update(time_baselines(samples[0]))
    budget = plan_budget(minutes, time.time() - t_start, cal, n_images, cfg.data.batch_size, full_mpx)
    d = config_to_dict(cfg)
    d["data"]["repeat"] = budget["repeat"]
    if not d["model"].get("init"):
        from restorekit.models.package import save_package
        from restorekit.training.engine import build_model

        start = build_model(cfg)
        if identity_start(start):
            save_package(start, out / "init.safetensors")
            d["model"]["init"] = str(out / "init.safetensors")
    # time is the binding limit: planned epochs are a floor for validations, training stops at max_minutes
    d["train"]["epochs"] = max(budget["epochs"], 1000)
    d["train"]["max_steps"] = -1
    d["train"]["max_minutes"] = budget["train_seconds_limit"] / 60.0
    d["trainer"]["progress_bar"] = progress
    if device.type == "cpu":
        d["trainer"]["num_threads"] = int(cal["threads"])
    cfg = parse_run_config(d, "demo config")
    n_photos = len({smp.conditions["photo"] for smp in samples})
    print(
        f"demo: {n_images} training photos, {n_photos} held out ({len(samples)} degraded samples); "
        f"{cal['step_s']:.2f} s/step measured on {device}"
        + (f" with {int(cal['threads'])} thread(s)" if device.type == "cpu" else "") + "; "
        f"training {budget['max_steps']} steps in {budget['epochs']} epochs (~{budget['train_budget_s']:.0f} s)",
        flush=True,
    )
    result = train(cfg, out)
    model = load_restorer(out / "model.safetensors", device=str(device), backend="eager")
    report = evaluate_heldout(model, samples, device, out=out, progress=progress)
    report.update(
        {
            "minutes_requested": minutes,
            "wall_seconds": round(time.time() - t_start, 1),
            "device": str(device),
            "model": {"name": cfg.model.name, "args": cfg.model.args},
            "degradation": d["data"]["degrade"],
            "epochs": len(result.history),
            "steps": result.global_step,
            "calibration": {k: round(v, 4) for k, v in cal.items()},
            "budget": budget,
            "train_photos": n_images,
            "split": json.loads((out / "split.json").read_text()),
            "mlflow_run_id": result.mlflow_run_id,
        }
    )
    write_report(out, report)
    return report


# ------------------------------------------------------------------------------ held-out scoring

def _op_label(op: dict[str, Any]) -> str:
    return f"{op['name']}:{op['kind']}" if op.get("kind") else str(op["name"])


def degradation_branches(spec: Any) -> list[tuple[dict[str, str], list[dict[str, Any]]]]:
    """Every branch of a degradation recipe: ``[(labels, ops), ...]``.

    Each ``one_of`` contributes one branch per member (labelled ``blur`` when all members are blurs,
    else ``one_of``), each op with ``p < 1`` an ``on`` and an ``off`` branch, ops with ``p = 1``
    are always on. ``ops`` is the recipe with every choice fixed (probabilities set to 1), ready
    for :func:`restorekit.degrade.pipeline.build_degrader`. Labels also carry ``branch``, the
    joined name (e.g. ``motion_blur:trajectory+jpeg``).
    """
    from restorekit.degrade.pipeline import expand_spec

    branches: list[tuple[dict[str, str], list[dict[str, Any]]]] = [({}, [])]
    for op in expand_spec(spec):
        op = dict(op)
        if op["name"] == "one_of":
            subs = [dict(o) if isinstance(o, dict) else o.model_dump() for o in op["ops"]]
            key = "blur" if all("blur" in o["name"] for o in subs) else "one_of"
            options: list[tuple[str, dict[str, Any] | None]] = [(_op_label(o), {**o, "p": 1.0}) for o in subs]
            if float(op.get("p", 1.0)) < 1.0:
                options.append(("none", None))
        else:
            key = _op_label(op).replace(":", "_")
            options = [("on", {**op, "p": 1.0})]
            if float(op.get("p", 1.0)) < 1.0:
                options.append(("off", None))
        branches = [({**labels, key: lab}, ops + ([o] if o is not None else []))
                    for labels, ops in branches for lab, o in options]
    out = []
    for labels, ops in branches:
        parts = [v if k in ("blur", "one_of") else k for k, v in labels.items() if v not in ("off", "none")]
        out.append(({**labels, "branch": "+".join(parts) or "clean"}, ops))
    return out


def heldout_samples(data_cfg: Any, seed: int, *, draws: int = DRAWS_PER_PHOTO, eval_seed: int | None = None) -> list[Any]:
    """The demo's held-out evaluation set: ``draws`` degraded copies of every held-out photo at full size.

    Sample ``k`` (photo ``i``, draw ``j``, ``k = i * draws + j``) uses branch ``k mod n_branches``
    of :func:`degradation_branches`, so every blur kind, JPEG on and off, ... is scored once
    there are at least as many samples as branches; its parameters are drawn from
    ``sample_rng(eval_seed, "heldout", photo, j)`` (``eval_seed`` defaults to ``seed``). The held-out
    photos are ``data.val_names``, or the seeded validation split of ``data.names`` when not given.
    Returns :class:`restorekit.evaluation.EvalSample` objects named ``<photo>#<j>`` with the branch
    labels (and ``photo``) as conditions; images (H, W, 3) float32 RGB in [0, 1].
    """
    from restorekit.data import build_datasets
    from restorekit.data.transforms import to_float
    from restorekit.degrade.pipeline import build_degrader
    from restorekit.evaluation import EvalSample
    from restorekit.utils.seed import sample_rng

    if data_cfg.degrade is None:
        raise ConfigError("demo: data.degrade is empty; the held-out set needs a degradation")
    _, val = build_datasets(data_cfg.model_copy(update={"val_patch": None}), seed=seed, run_dir=None)
    branches = degradation_branches(data_cfg.degrade)
    degraders = [build_degrader(ops) for _, ops in branches]
    es = seed if eval_seed is None else eval_seed
    samples = []
    for i, item in enumerate(val.items):
        target = np.ascontiguousarray(to_float(item.target.load()))
        for j in range(draws):
            b = (i * draws + j) % len(branches)
            degraded, params = degraders[b](target, sample_rng(es, "heldout", item.name, j))
            # params as JSON text: unique per sample, so the evaluation does not break results down by it
            cond = {"photo": item.name, **branches[b][0], "params": json.dumps(params, sort_keys=True)}
            samples.append(EvalSample(name=f"{item.name}#{j}", target=target, input=np.clip(degraded, 0.0, 1.0).astype(np.float32),
                                      conditions=cond))
    return samples


def photo_bootstrap_ci(gains: list[float], photos: list[str], *, reps: int = 10000, seed: int = 0) -> list[float]:
    """95 % interval of the mean per-sample ``gains``, resampling whole photos (samples of one photo are
    correlated): percentile bootstrap, ``reps`` seeded resamples. Returns ``[low, high]``."""
    by_photo: dict[str, list[float]] = {}
    for g, p in zip(gains, photos):
        by_photo.setdefault(p, []).append(float(g))
    groups = list(by_photo.values())
    rng = np.random.default_rng(seed)
    sums = np.array([sum(g) for g in groups])
    counts = np.array([len(g) for g in groups])
    idx = rng.integers(0, len(groups), size=(reps, len(groups)))
    means = sums[idx].sum(1) / counts[idx].sum(1)
    return [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))]


def evaluate_heldout(
    model: Any,
    samples: list[Any],
    device: Any,
    *,
    out: Path | None = None,
    progress: bool = True,
    baselines: str = DEMO_BASELINES,
    title: str = "restorekit demo: held-out photos",
) -> dict[str, Any]:
    """Score ``model`` (module or package path) and the classical ``baselines`` on ``samples``.

    Scoring goes through :func:`restorekit.evaluation.evaluate_samples` (protocol ``rgb``,
    scikit-image's PSNR/SSIM conventions), the model runs through a
    :class:`restorekit.inference.restorer.Restorer` (what ``restorekit restore`` uses: tiled, eager
    PyTorch here so that no export is made). With ``out``, the full
    evaluation lands in ``out/eval/`` and ``input | output | target`` strips in
    ``out/comparisons/<photo>_<draw>.png``. Returns the demo report's scoring fields (see
    :func:`summarise`).
    """
    from restorekit.evaluation import evaluate_samples
    from restorekit.inference.options import RestoreOptions
    from restorekit.inference.restorer import Restorer
    from restorekit.training.plots import save_comparison

    restorer = Restorer.coerce(model, RestoreOptions(tile="auto", device=str(device), backend="eager"))

    def run(sample: Any) -> np.ndarray:
        y = restorer.restore_image(sample.input)
        if out is not None:
            save_comparison(sample.input, y, sample.target, out / "comparisons" / f"{sample.name.replace('#', '_')}.png")
        return y

    ev = evaluate_samples(samples, model_fn=run, primary="output", baselines=baselines, total=len(samples), progress=progress,
                          report=(out / "eval" / "report.json") if out is not None else None, title=title)
    return summarise(ev)


def _ms(row: dict[str, Any]) -> dict[str, float]:
    return {m: float(row[m]) for m in ("psnr", "ssim")}


def summarise(ev: dict[str, Any]) -> dict[str, Any]:
    """The demo report's scoring fields from an evaluation report of ``output`` + input + baselines.

    ``input``/``output``/``baselines``: means over all samples; ``images``: one row per distinct
    photo (means over its samples); ``samples``: one row per degraded sample with every method;
    ``by_branch``: means per degradation branch (and per blur kind / JPEG on-off);
    ``best_baseline``: the baseline with the highest mean PSNR, ``gain_over_best_baseline_db`` and
    ``ssim_over_best_baseline`` against it, ``gain_over_best_baseline_ci95_db`` a photo-level bootstrap
    interval; ``best_baseline_per_sample_gain_db`` the mean gain over the best baseline *of each sample*.
    """
    methods = ev["methods"]
    baselines = [b for b in ev["baselines"] if b in methods]
    n = len(methods["output"]["per_image"])
    samples = []
    for k in range(n):
        cond = dict(methods["output"]["per_image"][k].get("conditions", {}))
        row: dict[str, Any] = {"name": methods["output"]["per_image"][k]["name"], "photo": cond.get("photo"),
                               "branch": cond.get("branch"),
                               "params": json.loads(cond["params"]) if cond.get("params") else None}
        for m in ["input", "output", *baselines]:
            row[m] = _ms(methods[m]["per_image"][k])
        samples.append(row)
    rep: dict[str, Any] = {
        "protocol": ev["protocol"]["name"],
        "input": _ms(methods["input"]["mean"]),
        "output": _ms(methods["output"]["mean"]),
        "baselines": {b: _ms(methods[b]["mean"]) for b in baselines},
    }
    photos = list(dict.fromkeys(r["photo"] for r in samples))
    images = []
    for p in photos:
        rows = [r for r in samples if r["photo"] == p]
        img: dict[str, Any] = {"name": p, "n_samples": len(rows), "branches": [r["branch"] for r in rows]}
        for m in ["input", "output", *baselines]:
            img[m] = {q: float(np.mean([r[m][q] for r in rows])) for q in ("psnr", "ssim")}
        images.append(img)
    rep.update({"n_images": len(photos), "n_samples": n, "images": images, "samples": samples})
    rep["gain_db"] = rep["output"]["psnr"] - rep["input"]["psnr"]
    rep["ssim_gain"] = rep["output"]["ssim"] - rep["input"]["ssim"]
    if baselines:
        best = max(baselines, key=lambda b: rep["baselines"][b]["psnr"])
        rep["best_baseline"] = best
        rep["gain_over_best_baseline_db"] = rep["output"]["psnr"] - rep["baselines"][best]["psnr"]
        rep["ssim_over_best_baseline"] = rep["output"]["ssim"] - rep["baselines"][best]["ssim"]
        gains = [r["output"]["psnr"] - r[best]["psnr"] for r in samples]
        rep["gain_over_best_baseline_ci95_db"] = photo_bootstrap_ci(gains, [r["photo"] for r in samples])
        rep["best_baseline_per_sample_gain_db"] = float(np.mean(
            [r["output"]["psnr"] - max(r[b]["psnr"] for b in baselines) for r in samples]))
        rep["samples_beating_every_baseline"] = sum(
            1 for r in samples if all(r["output"]["psnr"] > r[b]["psnr"] and r["output"]["ssim"] > r[b]["ssim"] for b in baselines))
    by_branch: dict[str, Any] = {}
    for key, groups in ev.get("by_condition", {}).items():
        if key in ("photo", "params"):
            continue
        by_branch[key] = {value: {m: {"n": v["n"], "psnr": float(v["psnr"]), "ssim": float(v["ssim"])} for m, v in per.items()}
                          for value, per in groups.items()}
    rep["by_branch"] = by_branch
    return rep


def rescore(
    model_path: str | Path,
    *,
    eval_seed: int,
    config_path: str | Path | None = None,
    overrides: list[str] | None = None,
    draws: int = DRAWS_PER_PHOTO,
    report: str | Path | None = None,
    device: str = "auto",
    progress: bool = False,
) -> dict[str, Any]:
    """Score a trained demo model on the same held-out photos with *other* degradation draws
    (``eval_seed``); writes ``report`` (JSON, atomic) when given and returns the summary."""
    from restorekit.device import resolve_device
    from restorekit.inference.restorer import load_restorer
    from restorekit.utils.atomic import atomic_write_json

    cfg = demo_config(overrides, config_path)
    dev = resolve_device(device)
    samples = heldout_samples(cfg.data, cfg.seed, draws=draws, eval_seed=eval_seed)
    model = load_restorer(Path(model_path), device=str(dev), backend="eager")
    rep = evaluate_heldout(model, samples, dev, out=None, progress=progress, title=f"demo model re-scored, eval_seed {eval_seed}")
    rep.update({"model_path": str(model_path), "eval_seed": eval_seed})
    if report is not None:
        atomic_write_json(Path(report), rep)
    return rep


def _row(label: str, v: dict[str, float]) -> str:
    return f"| {label} | {v['psnr']:.2f} | {v['ssim']:.4f} |"


def report_markdown(report: dict[str, Any]) -> str:
    """The human-readable ``report.md``: overall, per-photo, per-branch and per-sample tables."""
    bl = report.get("baselines", {})
    methods = ["input", "output", *bl]
    lines = [
        "# restorekit demo report",
        "",
        f"Model `{report['model']['name']}` {report['model']['args']} trained {report['steps']} steps "
        f"({report['epochs']} epochs) on {report['train_photos']} scikit-image photos, device {report['device']}, "
        f"{report['wall_seconds']:.0f} s wall time.",
        "",
        f"Held out: {report['n_images']} photos (content-deduplicated from the training photos), "
        f"{report['n_samples']} degraded samples at full size covering every branch of the degradation; "
        "PSNR/SSIM on RGB in [0, 1] (scikit-image conventions). Every classical baseline runs on the same inputs.",
        "",
        "| method | PSNR (dB) | SSIM |",
        "|---|---:|---:|",
        _row("degraded input", report["input"]),
        _row("**model output**", report["output"]),
        *[_row(b, v) for b, v in bl.items()],
        "",
        f"Gain over the input: {report['gain_db']:+.2f} dB, SSIM {report['ssim_gain']:+.4f}.",
    ]
    if "best_baseline" in report:
        lo, hi = report["gain_over_best_baseline_ci95_db"]
        lines += [
            f"Over the best baseline ({report['best_baseline']}): **{report['gain_over_best_baseline_db']:+.2f} dB** "
            f"(95 % interval {lo:+.2f} .. {hi:+.2f} dB, photo-level bootstrap), SSIM {report['ssim_over_best_baseline']:+.4f}; "
            f"over the best baseline of each sample: {report['best_baseline_per_sample_gain_db']:+.2f} dB; "
            f"samples where the model beats every baseline in PSNR and SSIM: "
            f"{report['samples_beating_every_baseline']}/{report['n_samples']}.",
        ]
    head = "| " + " | ".join(["", *methods]) + " |"
    sep = "|---|" + "---:|" * len(methods)
    lines += ["", "## Per photo (PSNR dB / SSIM, mean over its samples)", "", head, sep]
    for r in report["images"]:
        lines.append(f"| {r['name']} | " + " | ".join(f"{r[m]['psnr']:.2f} / {r[m]['ssim']:.3f}" for m in methods) + " |")
    for key, groups in report.get("by_branch", {}).items():
        lines += ["", f"## Per {key.replace('_', ' ')} (PSNR dB / SSIM)", "", head.replace("|  |", f"| {key} |", 1), sep]
        for value, per in groups.items():
            n = per.get("output", {}).get("n", 0)
            lines.append(f"| {value} (n={n}) | " + " | ".join(
                f"{per[m]['psnr']:.2f} / {per[m]['ssim']:.3f}" if m in per else "" for m in methods) + " |")
    lines += ["", "## Per sample (PSNR dB)", "", "| sample | branch | " + " | ".join(methods) + " |",
              "|---|---|" + "---:|" * len(methods)]
    for r in report.get("samples", []):
        lines.append(f"| {r['name']} | {r['branch']} | " + " | ".join(f"{r[m]['psnr']:.2f}" for m in methods) + " |")
    lines += [
        "",
        "Files: `model.safetensors` (restorekit package), `eval/report.{json,csv,md}` (the full evaluation), "
        "`split.json` (train / held-out photos, dropped duplicates), `training_history.json`, `training_curves.png`, "
        "`comparisons/` (input | output | target of every sample), `samples/` (per-epoch validation strips).",
        "",
    ]
    return "\n".join(lines)


def write_report(out: Path, report: dict[str, Any]) -> None:
    """``report.json`` and a human-readable ``report.md`` (atomic writes)."""
    from restorekit.utils.atomic import atomic_write_json, atomic_write_text

    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", report_markdown(report))
