"""``restorekit demo``: train the seed deblurring U-Net on scikit-image's photos for a bounded time.

The photos bundled with scikit-image (nothing is downloaded) are degraded on
the fly (blur + noise + JPEG, see :data:`DEMO_CONFIG`); a seeded split holds
images out for validation. A short calibration measures the seconds per
training step on this machine, and the number of steps, epochs and samples per
epoch are chosen so that training, validation and the final evaluation fit in
``minutes``. Lightning's ``max_time`` bounds training as a safety net.

Outputs in the run folder (default ``runs/demo``): everything ``restorekit
train`` writes (``model.safetensors``, ``training_history.json``,
``training_curves.png``, ``samples/``, ``checkpoints/``) plus
``comparisons/<photo>.png`` (input | output | target of every held-out photo at
full size) and ``report.json`` / ``report.md``: mean PSNR/SSIM (scikit-image
conventions, RGB in [0, 1]) of the degraded inputs and of the model outputs
over the held-out photos, and the gain in dB.
"""

from __future__ import annotations

import copy
import math
import shutil
import time
from pathlib import Path
from typing import Any

from restorekit.errors import ConfigError

#: the demo recipe (configs/demo.yaml holds the same; a test checks they agree)
DEMO_CONFIG: dict[str, Any] = {
    "name": "demo",
    "seed": 0,
    "model": {"name": "deblur_unet", "args": {"base_ch": 32, "norm": "group", "residual": True}},
    "data": {
        "kind": "skimage",
        "names": ["astronaut", "chelsea", "hubble_deep_field", "immunohistochemistry", "motorcycle_left",
                  "retina", "camera", "gravel", "brick", "grass"],
        "val_names": ["coffee", "rocket"],
        "patch_size": 64,
        "batch_size": 4,
        "val_patch": 256,
        "repeat": 4,
        "degrade": [
            {
                "name": "one_of",
                "p": 1.0,
                "ops": [
                    {"name": "gaussian_blur", "kernel_sizes": [5, 7], "sigma": [1.0, 2.0]},
                    {"name": "motion_blur", "kind": "line", "length": [5, 11], "angle": [0, 180]},
                ],
            },
            {"name": "gaussian_noise", "p": 1.0, "sigma": [0.06, 0.12]},
            {"name": "jpeg", "p": 0.5, "quality": [60, 90]},
        ],
    },
    "loss": [{"name": "l1", "weight": 1.0}],
    "optim": {"name": "adamw", "lr": 1e-3, "weight_decay": 1e-4},
    # cosine over the wall-clock budget (train.max_minutes, set from --minutes): the demo is bounded by time
    "schedule": {"name": "cosine_time", "warmup_steps": 10, "min_lr": 1e-5},
    "train": {
        "epochs": 20,
        "max_minutes": 4,
        "grad_clip": 1.0,
        "early_stopping": {"enabled": False},
        "checkpoint": {"every_n_epochs": 0, "save_best": False, "save_latest": False},
        "n_samples": 2,
        "export": "last",
    },
    "trainer": {"device": "auto", "progress_bar": True},
    "tracking": {"enabled": True, "experiment": "restorekit-demo"},
}

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


def _time_steps(cfg: Any, train_ds: Any, device: Any, steps: int) -> float:
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
        if i > 0:  # the first step pays one-off costs
            times.append(time.perf_counter() - t)
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
        timed[n] = _time_steps(cfg, train_ds, device, steps)
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


def plan_budget(minutes: float, elapsed: float, cal: dict[str, float], n_train_images: int, batch: int,
                full_val_mpx: float, epochs: int = DEMO_EPOCHS) -> dict[str, Any]:
    """Steps, epochs and ``repeat`` (patches per image per epoch) that fit the time left."""
    total = minutes * 60.0
    final_eval = cal["val_s_per_mpx"] * full_val_mpx * 1.5 + 8.0  # full-size evaluation, export, MLflow
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
    minutes: float = 5.0,
    out: str | Path = "runs/demo",
    *,
    overrides: list[str] | None = None,
    config_path: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the demo; returns the report dict (also written to ``<out>/report.json`` and ``report.md``)."""
    import torch

    from restorekit.data import build_datasets
    from restorekit.device import resolve_device
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
    full_cfg = cfg.data.model_copy(update={"val_patch": None})
    _, full_val = build_datasets(full_cfg, seed=cfg.seed, run_dir=None)
    full_mpx = sum(full_val[i]["target"].shape[-1] * full_val[i]["target"].shape[-2] for i in range(len(full_val))) / 1e6
    n_images = len(train_ds) // max(1, cfg.data.repeat)
    cal = calibrate(cfg, train_ds, val_ds, device)
    budget = plan_budget(minutes, time.time() - t_start, cal, n_images, cfg.data.batch_size, full_mpx)
    d = config_to_dict(cfg)
    d["data"]["repeat"] = budget["repeat"]
    # time is the binding limit: planned epochs are a floor for validations, training stops at max_minutes
    d["train"]["epochs"] = max(budget["epochs"], 1000)
    d["train"]["max_steps"] = -1
    d["train"]["max_minutes"] = budget["train_seconds_limit"] / 60.0
    d["trainer"]["progress_bar"] = progress
    if device.type == "cpu":
        d["trainer"]["num_threads"] = int(cal["threads"])
    cfg = parse_run_config(d, "demo config")
    print(
        f"demo: {n_images} training photos, {len(val_ds)} held out; {cal['step_s']:.2f} s/step measured on {device}"
        + (f" with {int(cal['threads'])} thread(s)" if device.type == "cpu" else "") + "; "
        f"training {budget['max_steps']} steps in {budget['epochs']} epochs (~{budget['train_budget_s']:.0f} s)",
        flush=True,
    )
    result = train(cfg, out)
    report = evaluate_full(out, full_val, device, progress=progress)
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
            "mlflow_run_id": result.mlflow_run_id,
        }
    )
    write_report(out, report)
    return report


def evaluate_full(out: Path, full_val: Any, device: Any, progress: bool = True) -> dict[str, Any]:
    """Load ``<out>/model.safetensors`` and score it on the full-size held-out photos.

    Scoring goes through :func:`restorekit.evaluation.evaluate_pairs` (protocol ``rgb``: scikit-image's
    PSNR/SSIM conventions) together with the classical deblurring baselines (Wiener, Richardson-Lucy,
    unsharp masking), so the report says what the model gains over the input and over the best
    classical method; the full evaluation report lands in ``<out>/eval/``.
    """
    import torch
    from tqdm import tqdm

    from restorekit.evaluation import evaluate_pairs
    from restorekit.models.package import load_package
    from restorekit.training.forward import predict01
    from restorekit.training.plots import save_comparison

    model = load_package(out / "model.safetensors", map_location=device)
    pairs = []
    for i in tqdm(range(len(full_val)), desc="evaluating held-out photos", disable=not progress):
        s = full_val[i]
        with torch.no_grad():
            y = predict01(model, s["input"][None].to(device)).clamp(0, 1)[0].cpu()
        inp, tgt = s["input"].permute(1, 2, 0).numpy(), s["target"].permute(1, 2, 0).numpy()
        outp = y.permute(1, 2, 0).numpy()
        name = str(s.get("name", i))
        pairs.append((name, outp, tgt, inp))
        save_comparison(inp, outp, tgt, out / "comparisons" / f"{Path(name).stem}.png")
    ev = evaluate_pairs(pairs, baselines="blur", primary="output", report=out / "eval" / "report.json",
                        title="restorekit demo: held-out photos")
    methods = ev["methods"]
    rows = []
    for k, (name, outp, tgt, _) in enumerate(pairs):
        rows.append(
            {
                "name": name,
                "size": [int(tgt.shape[1]), int(tgt.shape[0])],
                "input": {m: float(methods["input"]["per_image"][k][m]) for m in ("psnr", "ssim")},
                "output": {m: float(methods["output"]["per_image"][k][m]) for m in ("psnr", "ssim")},
            }
        )
    rep: dict[str, Any] = {
        "protocol": ev["protocol"]["name"],
        "input": {m: float(methods["input"]["mean"][m]) for m in ("psnr", "ssim")},
        "output": {m: float(methods["output"]["mean"][m]) for m in ("psnr", "ssim")},
        "baselines": {b: {m: float(methods[b]["mean"][m]) for m in ("psnr", "ssim")} for b in ev["baselines"]},
        "n_images": len(rows),
        "images": rows,
    }
    rep["gain_db"] = rep["output"]["psnr"] - rep["input"]["psnr"]
    rep["ssim_gain"] = rep["output"]["ssim"] - rep["input"]["ssim"]
    best = ev["gain_db"].get("best_baseline")
    if best:
        rep["best_baseline"] = best
        rep["gain_over_best_baseline_db"] = rep["output"]["psnr"] - rep["baselines"][best]["psnr"]
    return rep


def write_report(out: Path, report: dict[str, Any]) -> None:
    """``report.json`` and a human-readable ``report.md`` (atomic writes)."""
    from restorekit.utils.atomic import atomic_write_json, atomic_write_text

    atomic_write_json(out / "report.json", report)
    lines = [
        "# restorekit demo report",
        "",
        f"Model `{report['model']['name']}` {report['model']['args']} trained {report['steps']} steps "
        f"({report['epochs']} epochs) on {report['train_photos']} scikit-image photos, device {report['device']}, "
        f"{report['wall_seconds']:.0f} s wall time.",
        "",
        f"Held-out photos ({report['n_images']}), full size, PSNR/SSIM on RGB in [0, 1] (scikit-image conventions):",
        "",
        "| | PSNR (dB) | SSIM |",
        "|---|---:|---:|",
        f"| degraded input | {report['input']['psnr']:.2f} | {report['input']['ssim']:.4f} |",
        f"| model output | {report['output']['psnr']:.2f} | {report['output']['ssim']:.4f} |",
        f"| gain | {report['gain_db']:+.2f} | {report['ssim_gain']:+.4f} |",
        "",
    ]
    if report.get("baselines"):
        lines += ["Classical deblurring baselines on the same photos (estimated Gaussian PSF):", "",
                  "| baseline | PSNR (dB) | SSIM |", "|---|---:|---:|"]
        lines += [f"| {b} | {v['psnr']:.2f} | {v['ssim']:.4f} |" for b, v in report["baselines"].items()]
        if "best_baseline" in report:
            lines += ["", f"Model over the best baseline ({report['best_baseline']}): "
                          f"{report['gain_over_best_baseline_db']:+.2f} dB. Full evaluation: `eval/report.md`."]
        lines.append("")
    lines += [
        "| photo | input PSNR | output PSNR | input SSIM | output SSIM |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in report["images"]:
        lines.append(
            f"| {r['name']} | {r['input']['psnr']:.2f} | {r['output']['psnr']:.2f} | "
            f"{r['input']['ssim']:.4f} | {r['output']['ssim']:.4f} |"
        )
    lines += [
        "",
        "Files: `model.safetensors` (restorekit package), `training_history.json`, `training_curves.png`, "
        "`comparisons/` (input | output | target), `samples/` (per-epoch validation strips).",
        "",
    ]
    atomic_write_text(out / "report.md", "\n".join(lines))
