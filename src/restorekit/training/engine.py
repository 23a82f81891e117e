"""``train(cfg, run_dir, resume=...)``: one Lightning training run and all its artefacts.

Run folder layout::

    <run>/config.yaml               the validated config of the run
    <run>/checkpoints/latest.ckpt   resume point, refreshed at every epoch end
    <run>/checkpoints/best-epochNNNN-psnrXX.XX.ckpt   best validation PSNR
    <run>/checkpoints/epochNNNN.ckpt                  every ``train.checkpoint.every_n_epochs`` epochs
    <run>/training_history.json     per-epoch train/val loss, PSNR, SSIM, learning rate, ...
    <run>/training_curves.png       loss and PSNR curves
    <run>/samples/                  input | output | target strips of validation images, per epoch
    <run>/comparisons/              the same for the exported model on the validation set
    <run>/final_metrics.json        PSNR/SSIM of the degraded inputs and of the exported model's outputs
    <run>/model.safetensors         the model package (EMA weights when enabled)
    <run>/../mlflow.db              the MLflow store (unless tracking.uri says otherwise)

Epoch numbers are 0-based, like Lightning's ``current_epoch``. Every checkpoint
and output file is written atomically.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from restorekit.errors import CheckpointError, ConfigError, RestoreKitError
from restorekit.training.config import RunConfig, config_to_dict, flatten_config
from restorekit.training.plan import EpochPlan, Stage, accumulation_schedule, make_plan, total_steps
from restorekit.utils.atomic import atomic_write_json, atomic_write_text
from restorekit.utils.names import safe_filename
from restorekit.models.spec import arch_of, args_of

CHECKPOINT_DIR = "checkpoints"
PACKAGE_FILE = "model.safetensors"
FINAL_METRICS_FILE = "final_metrics.json"


class TrainingInterrupted(RestoreKitError):
    """Training was stopped (Ctrl+C / SIGINT); the message says where the resume point is."""

    def __init__(self, message: str, run_dir: Path, latest: Path | None) -> None:
        super().__init__(message)
        self.run_dir = run_dir
        self.latest = latest


#: ``module_factory(cfg, model, total_steps)`` -> a RestorationModule (or subclass) to fit
ModuleFactory = Callable[[RunConfig, nn.Module, int], Any]


@dataclass
class TrainResult:
    """What a finished run produced (on rank 0; other ranks get ``package=None``)."""

    run_dir: Path
    package: Path | None
    history: list[dict[str, Any]]
    best_checkpoint: Path | None
    final_metrics: dict[str, Any] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    stopped_early: bool = False
    global_step: int = 0


def resolve_resume(run_dir: Path, resume: str | Path | None) -> Path | None:
    """``None``/"never" -> fresh run; ``"auto"`` -> ``<run>/checkpoints/latest.ckpt`` if present; else that file."""
    if resume is None or str(resume) in ("", "never", "none"):
        return None
    if str(resume) == "auto":
        p = run_dir / CHECKPOINT_DIR / "latest.ckpt"
        return p if p.is_file() else None
    p = Path(resume)
    if not p.is_file():
        raise CheckpointError(f"--resume: checkpoint '{p}' does not exist")
    return p


def check_resume_checkpoint(path: Path, cfg: RunConfig) -> dict[str, Any]:
    """Read ``path`` (safely) and check that ``cfg`` can continue it; returns its ``restorekit`` entry plus
    ``epoch``/``global_step``.

    Raises :class:`CheckpointError` for a truncated/unreadable file or one of another architecture
    (name or arguments), :class:`ConfigError` when ``train.epochs``/``train.max_steps`` are already reached.
    """
    from restorekit.models.registry import get_spec

    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated, not a checkpoint, unsafe pickle...
        raise CheckpointError(f"--resume: cannot read checkpoint '{path}' (truncated or not a training checkpoint: {exc})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "loops" not in ckpt:
        raise CheckpointError(f"--resume: '{path}' is not a restorekit training checkpoint (no Lightning state)")
    info = dict(ckpt.get("restorekit") or {})
    arch = info.get("arch")
    if arch is not None and arch != cfg.model.name:
        raise CheckpointError(
            f"--resume: checkpoint '{path}' is a '{arch}' model but model.name is '{cfg.model.name}'; "
            "resume with the config it was trained with or start a new run folder"
        )
    if arch is not None:
        want = get_spec(cfg.model.name).resolve_args(cfg.model.preset, **cfg.model.args)
        have = dict(info.get("arch_args") or {})
        diff = sorted(k for k in set(want) | set(have) if k in want and k in have and want[k] != have[k])
        if diff:
            raise CheckpointError(
                f"--resume: checkpoint '{path}' has other model arguments than the config: "
                + ", ".join(f"{k}={have[k]!r} (config: {want[k]!r})" for k in diff)
            )
    epoch = int(ckpt.get("epoch", 0))
    step = int(ckpt.get("global_step", 0))
    if epoch + 1 > cfg.train.epochs:
        raise ConfigError(
            f"train.epochs: checkpoint '{path}' has already trained {epoch + 1} epoch(s) but train.epochs is "
            f"{cfg.train.epochs}; resume with at least --set train.epochs={epoch + 1}"
        )
    if cfg.train.max_steps >= 0 and step > cfg.train.max_steps:
        raise ConfigError(
            f"train.max_steps: checkpoint '{path}' is at optimizer step {step} and train.max_steps is "
            f"{cfg.train.max_steps}; resume with at least --set train.max_steps={step} (or -1)"
        )
    info.update(epoch=epoch, global_step=step)
    return info


def world_size(cfg: RunConfig, accelerator: str) -> int:
    """Number of training processes: devices x num_nodes."""
    devices = cfg.trainer.devices
    if devices == "auto":
        devices = torch.cuda.device_count() if accelerator == "gpu" else 1
    return max(1, int(devices)) * cfg.trainer.num_nodes


def resolve_precision(cfg: RunConfig, accelerator: str) -> str:
    """``auto``: bf16-mixed (or 16-mixed) on CUDA; on the CPU bf16-mixed where it has AMX-BF16
    (:func:`restorekit.device.cpu_has_fast_bf16`), else 32-true; MPS 32-true. fp16 on CPU is refused.

    Mixed precision covers the network's forward and backward only: losses, metrics and validation
    run in fp32 (:class:`restorekit.training.module.RestorationModule`), the weights stay fp32.
    """
    from restorekit.device import cpu_has_fast_bf16

    p = cfg.trainer.precision
    if p == "auto":
        if accelerator == "gpu":
            return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
        if accelerator == "cpu" and cpu_has_fast_bf16():
            return "bf16-mixed"
        return "32-true"
    if p == "32":
        return "32-true"
    if p == "16-mixed" and accelerator != "gpu":
        raise ConfigError(f"trainer.precision: 16-mixed needs CUDA (device is {accelerator}); use 32 or bf16-mixed")
    return p


def build_model(cfg: RunConfig) -> nn.Module:
    """``create_model(cfg.model.name, cfg.model.preset, **cfg.model.args)``."""
    from restorekit.models.registry import create_model

    model = create_model(cfg.model.name, cfg.model.preset, **cfg.model.args)
    if cfg.model.init:
        load_initial_weights(model, cfg.model.init)
    return model


def load_initial_weights(model: nn.Module, path: str) -> None:
    """Copy the weights of the file at ``path`` (read safely by ``load_model``) into ``model``.

    Raises :class:`ConfigError` naming ``model.init`` when the file's architecture or shapes differ.
    """
    from restorekit.errors import CheckpointError, ConfigError
    from restorekit.models.loading import load_model

    try:
        src = load_model(path, arch=arch_of(model), **args_of(model))
        model.load_state_dict(src.state_dict(), strict=True)
    except (CheckpointError, RuntimeError) as exc:
        raise ConfigError(f"model.init '{path}': cannot initialise {arch_of(model)} from it: {exc}") from exc


def build_plan(cfg: RunConfig, n_train: int, world: int) -> list[EpochPlan]:
    """The epoch plan (patch/batch per epoch, accumulation, optimizer steps)."""
    prog = cfg.train.progressive
    return make_plan(
        n_samples=n_train,
        epochs=cfg.train.epochs,
        batch_size=int(getattr(cfg.data, "batch_size", 4) or 4),
        patch_size=getattr(cfg.data, "patch_size", None),
        world_size=world,
        stages=[Stage(s.at, s.patch_size, s.batch_size) for s in prog.stages],
        unit=prog.unit,
        effective_batch_size=cfg.train.effective_batch_size,
        limit_batches=cfg.train.limit_train_batches,
        max_steps=cfg.train.max_steps,
    )


def _is_rank_zero() -> bool:
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def train(
    cfg: RunConfig,
    run_dir: str | Path,
    *,
    resume: str | Path | None = None,
    datasets: tuple[Any, Any] | None = None,
    progress_bar: bool | None = None,
    callbacks: list[Any] | None = None,
    module_factory: ModuleFactory | None = None,
) -> TrainResult:
    """Train ``cfg`` into ``run_dir`` (``resume``: None, "auto" or a checkpoint path).

    ``datasets`` replaces ``build_datasets(cfg.data)`` (tests, demo). ``module_factory(cfg, model,
    total_steps)`` builds the LightningModule to fit (default :class:`RestorationModule`; distillation
    passes one building a ``DistillationModule``). Raises
    :class:`~restorekit.errors.RestoreKitError` subclasses for bad settings, :class:`TrainingInterrupted`
    on Ctrl+C. A run that fails before its first checkpoint removes the run folder it created.
    """
    run_dir = Path(run_dir)
    created = _is_rank_zero() and not (run_dir.exists() and any(run_dir.iterdir()))
    try:
        return _train(cfg, run_dir, resume=resume, datasets=datasets, progress_bar=progress_bar,
                      callbacks=callbacks, module_factory=module_factory)
    except BaseException:
        if created and _is_rank_zero():
            _remove_failed_run(run_dir)
        raise


def _remove_failed_run(run_dir: Path) -> None:
    """Remove a run folder this call created when it holds no checkpoint (nothing to resume)."""
    ckpts = run_dir / CHECKPOINT_DIR
    if ckpts.is_dir() and any(p.suffix == ".ckpt" and not p.name.startswith(".") for p in ckpts.iterdir()):
        return
    shutil.rmtree(run_dir, ignore_errors=True)


def _train(
    cfg: RunConfig,
    run_dir: Path,
    *,
    resume: str | Path | None,
    datasets: tuple[Any, Any] | None,
    progress_bar: bool | None,
    callbacks: list[Any] | None,
    module_factory: ModuleFactory | None,
) -> TrainResult:
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import EarlyStopping, GradientAccumulationScheduler, ModelCheckpoint, TQDMProgressBar

    from restorekit.device import lightning_accelerator, resolve_device
    from restorekit.training.callbacks import AtomicCheckpointIO, LatestCheckpoint, RunRecorder, remove_stale_temp_files
    from restorekit.training.datamodule import RestorationDataModule
    from restorekit.training.logs import quiet_lightning
    from restorekit.training.module import RestorationModule
    from restorekit.training.tracking import Tracker

    quiet_lightning()
    ckpt_dir = run_dir / CHECKPOINT_DIR
    rank0 = _is_rank_zero()
    resume_path = resolve_resume(run_dir, resume)
    if resume_path is not None:
        check_resume_checkpoint(resume_path, cfg)
    if rank0:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--out '{run_dir}': cannot create the run folder ({exc.strerror or exc})") from None
        remove_stale_temp_files(ckpt_dir)
        remove_stale_temp_files(run_dir)

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.trainer.num_threads:
        torch.set_num_threads(cfg.trainer.num_threads)
    device = resolve_device(cfg.trainer.device)
    accelerator = lightning_accelerator(cfg.trainer.device)
    precision = resolve_precision(cfg, accelerator)
    world = world_size(cfg, accelerator)

    dm = RestorationDataModule(cfg.data, seed=cfg.seed, run_dir=run_dir, datasets=datasets)
    train_ds, _ = dm.build()
    plan = build_plan(cfg, len(train_ds), world)
    dm.plan = plan
    steps = total_steps(plan)
    model = build_model(cfg)
    module = (module_factory or RestorationModule)(cfg, model, steps)

    cfg_dict = config_to_dict(cfg)
    if rank0:
        import yaml

        atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(cfg_dict, sort_keys=False))
        atomic_write_json(run_dir / "plan.json", {"total_steps": steps, "world_size": world, "epochs": [p.to_dict() for p in plan]})

    tracker = None
    if cfg.tracking.enabled and rank0:
        tracker = Tracker(
            run_dir,
            uri=cfg.tracking.uri,
            experiment=cfg.tracking.experiment,
            run_name=cfg.tracking.run_name or f"{cfg.name}-{run_dir.name}",
            tags={"restorekit.model": cfg.model.name, "restorekit.run_dir": str(run_dir.resolve()), **cfg.tracking.tags},
        )
    params = flatten_config(cfg_dict)
    params.update({"derived.total_steps": str(steps), "derived.world_size": str(world), "derived.precision": precision,
                   "derived.n_train": str(len(train_ds))})
    recorder = RunRecorder(run_dir, tracker=tracker, params=params, plan=plan)
    cbs: list[Any] = [recorder]
    if cfg.train.early_stopping.enabled:
        es = cfg.train.early_stopping
        cbs.append(EarlyStopping(monitor="val_psnr", mode="max", patience=es.patience, min_delta=es.min_delta, check_finite=True))
    acc = accumulation_schedule(plan)
    if acc != {0: 1}:
        cbs.append(GradientAccumulationScheduler(scheduling=acc))
    show_bar = cfg.trainer.progress_bar if progress_bar is None else progress_bar
    if show_bar:
        cbs.append(TQDMProgressBar(refresh_rate=1))
    if cfg.train.checkpoint.save_best:
        cbs.append(
            ModelCheckpoint(
                dirpath=str(ckpt_dir),
                filename="best-epoch{epoch:04d}-psnr{val_psnr:.2f}",
                monitor="val_psnr",
                mode="max",
                save_top_k=1,
                auto_insert_metric_name=False,
                save_on_train_epoch_end=True,
                enable_version_counter=False,
            )
        )
    if cfg.train.checkpoint.every_n_epochs > 0:
        cbs.append(
            ModelCheckpoint(
                dirpath=str(ckpt_dir),
                filename="epoch{epoch:04d}",
                monitor=None,
                save_top_k=-1,
                every_n_epochs=cfg.train.checkpoint.every_n_epochs,
                auto_insert_metric_name=False,
                save_on_train_epoch_end=True,
                enable_version_counter=False,
            )
        )
    cbs.extend(callbacks or [])
    cbs.append(LatestCheckpoint(ckpt_dir, after_save=[recorder.flush], enabled=cfg.train.checkpoint.save_latest))

    devices: Any = cfg.trainer.devices
    if device.type == "cuda" and device.index is not None and devices in (1, "auto"):
        devices = [device.index]
    max_time = None
    if cfg.train.max_minutes is not None:
        max_time = {"seconds": int(math.ceil(cfg.train.max_minutes * 60))}
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=devices,
        num_nodes=cfg.trainer.num_nodes,
        strategy=cfg.trainer.strategy,
        precision=precision,
        max_epochs=cfg.train.epochs,
        max_steps=cfg.train.max_steps,
        max_time=max_time,
        gradient_clip_val=cfg.train.grad_clip,
        gradient_clip_algorithm="norm",
        check_val_every_n_epoch=cfg.train.val_every_n_epochs,
        limit_train_batches=cfg.train.limit_train_batches,
        limit_val_batches=cfg.train.limit_val_batches,
        num_sanity_val_steps=cfg.trainer.num_sanity_val_steps,
        reload_dataloaders_every_n_epochs=1,
        deterministic=cfg.trainer.deterministic,
        log_every_n_steps=cfg.trainer.log_every_n_steps,
        callbacks=cbs,
        plugins=[AtomicCheckpointIO()],
        logger=False,
        enable_progress_bar=bool(show_bar),
        enable_model_summary=False,
        default_root_dir=str(run_dir),
    )
    from restorekit.training.config import resolve_compile

    if resolve_compile(cfg.trainer.compile, device):
        module.model = torch.compile(module.model)  # type: ignore[assignment]

    try:
        trainer.fit(module, datamodule=dm, ckpt_path=str(resume_path) if resume_path else None, weights_only=True)
    except SystemExit as exc:
        # Lightning turns Ctrl+C into a silent sys.exit(1) after its own clean-up
        if not trainer.interrupted:
            raise
        if tracker is not None:
            tracker.end("KILLED")
        latest = ckpt_dir / "latest.ckpt"
        where = (f"the last complete checkpoint is '{latest}'; continue with: restorekit train CONFIG --out {run_dir} --resume auto"
                 if latest.is_file() else "no epoch finished, so there is no checkpoint to resume from")
        raise TrainingInterrupted(
            f"training stopped by Ctrl+C (SIGINT) at epoch {trainer.current_epoch}, step {trainer.global_step}; {where}",
            run_dir, latest if latest.is_file() else None,
        ) from exc

    result = TrainResult(run_dir, None, list(recorder.history), None, mlflow_run_id=tracker.run_id if tracker else None)
    result.global_step = int(trainer.global_step)
    result.stopped_early = any(isinstance(c, EarlyStopping) and c.stopped_epoch > 0 for c in trainer.callbacks)
    best = next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and c.monitor == "val_psnr"), None)
    if best is not None and best.best_model_path and Path(best.best_model_path).is_file():
        result.best_checkpoint = Path(best.best_model_path)
    if not trainer.is_global_zero:
        return result
    finalize(cfg, module, dm, run_dir, result, tracker, device=device, plan=plan)
    return result


def weights_from_checkpoint(path: Path, prefix: str) -> dict[str, torch.Tensor]:
    """The ``prefix``-ed sub-state-dict of a Lightning checkpoint (safe load)."""
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"'{path}': cannot load checkpoint ({exc})") from exc
    sd = ckpt.get("state_dict", {})
    # "_orig_mod." appears when trainer.compile wrapped the model in torch.compile
    out = {k[len(prefix):].replace("_orig_mod.", ""): v for k, v in sd.items() if k.startswith(prefix)}
    if not out:
        raise CheckpointError(f"'{path}': no '{prefix}*' weights in checkpoint")
    return out


def export_network(cfg: RunConfig, module: Any, best: Path | None) -> tuple[nn.Module, str]:
    """The network to export: best checkpoint's (EMA) weights or the final ones; returns (net, description)."""
    use_ema = module.ema_model is not None
    if cfg.train.export == "best" and best is not None:
        net = build_model(cfg)
        net.load_state_dict(weights_from_checkpoint(best, "ema_model." if use_ema else "model."))
        return net.eval(), f"best checkpoint {best.name}" + (" (EMA)" if use_ema else "")
    src = module.eval_model()
    net = build_model(cfg)
    net.load_state_dict({k: v.detach().cpu() for k, v in _plain_state(src).items()})
    return net.eval(), "last epoch" + (" (EMA)" if use_ema else "")


def _plain_state(m: nn.Module) -> dict[str, torch.Tensor]:
    m = getattr(m, "_orig_mod", m)  # torch.compile wrapper
    return m.state_dict()


@torch.no_grad()
def evaluate_pairs(net: nn.Module, loader: Any, device: torch.device, max_images: int | None = None) -> list[dict[str, Any]]:
    """PSNR/SSIM (scikit-image conventions, RGB, [0,1]) of the degraded input and the model output per image.

    Returns ``[{name, input_psnr, input_ssim, output_psnr, output_ssim}]``;
    also keeps ``(input, output, target)`` ``(3,H,W)`` tensors under ``"_images"`` for comparison strips.
    """
    from restorekit.metrics import psnr_batch, ssim_batch
    from restorekit.training.forward import predict01

    net = net.to(device).eval()
    rows: list[dict[str, Any]] = []
    for batch in loader:
        batch = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
        out = predict01(net, batch).clamp(0, 1)
        tgt, inp = batch["target"], batch.get("input")
        names = batch.get("name", [str(len(rows) + i) for i in range(tgt.shape[0])])
        op, os_ = psnr_batch(out, tgt), ssim_batch(out, tgt)
        if inp is not None and inp.shape == tgt.shape:
            ip, is_ = psnr_batch(inp.clamp(0, 1), tgt), ssim_batch(inp.clamp(0, 1), tgt)
        else:
            ip = is_ = None
        for i in range(tgt.shape[0]):
            rows.append(
                {
                    "name": str(names[i]),
                    "input_psnr": float(ip[i]) if ip is not None else None,
                    "input_ssim": float(is_[i]) if is_ is not None else None,
                    "output_psnr": float(op[i]),
                    "output_ssim": float(os_[i]),
                    "_images": (
                        inp[i].cpu() if inp is not None else None,
                        out[i].cpu(),
                        tgt[i].cpu(),
                    ),
                }
            )
            if max_images is not None and len(rows) >= max_images:
                return rows
    return rows


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over images: ``{"input": {psnr, ssim}, "output": {psnr, ssim}, "gain_db", "n_images"}``."""

    def mean(key: str) -> float | None:
        vals = [r[key] for r in rows if r.get(key) is not None]
        return float(sum(vals) / len(vals)) if vals else None

    out = {
        "n_images": len(rows),
        "input": {"psnr": mean("input_psnr"), "ssim": mean("input_ssim")},
        "output": {"psnr": mean("output_psnr"), "ssim": mean("output_ssim")},
    }
    if out["input"]["psnr"] is not None:
        out["gain_db"] = out["output"]["psnr"] - out["input"]["psnr"]
        out["ssim_gain"] = out["output"]["ssim"] - out["input"]["ssim"]
    out["images"] = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    return out


def finalize(
    cfg: RunConfig,
    module: Any,
    dm: Any,
    run_dir: Path,
    result: TrainResult,
    tracker: Any,
    *,
    device: torch.device,
    plan: list[EpochPlan],
) -> None:
    """Export the package, evaluate it on the validation set, write comparisons, close the MLflow run."""
    from restorekit.models.package import save_package
    from restorekit.training.callbacks import CURVES_FILE, HISTORY_FILE, _hwc
    from restorekit.training.plots import save_comparison

    t0 = time.time()
    net, source = export_network(cfg, module, result.best_checkpoint)
    rows = evaluate_pairs(net, dm.val_dataloader(), device)
    final = summarize(rows)
    final["weights"] = source
    comps = []
    for r in rows[: max(cfg.train.n_samples, 0)]:
        inp, out, tgt = r["_images"]
        if inp is None:
            continue
        safe = safe_filename(Path(r["name"]).stem, max_len=60)
        p = run_dir / "comparisons" / f"{safe}.png"
        save_comparison(_hwc(inp), _hwc(out), _hwc(tgt), p)
        comps.append(p)
    hist = result.history
    best_entry = max((h for h in hist if h.get("val_psnr") is not None), key=lambda h: h["val_psnr"], default=None)
    patch = plan[min(len(hist), len(plan)) - 1].patch_size if plan else None
    training = {
        "run": cfg.name,
        "epochs": len(hist),
        "global_step": hist[-1]["global_step"] if hist else 0,
        "best_epoch": best_entry["epoch"] if best_entry else None,
        "best_val_psnr": best_entry["val_psnr"] if best_entry else None,
        "best_val_ssim": best_entry["val_ssim"] if best_entry else None,
        "final_val": {"input": final["input"], "output": final["output"]},
        "weights": source,
        "ema": module.ema_model is not None,
        "loss": [t.model_dump(mode="json") for t in cfg.loss],
        "optim": cfg.optim.model_dump(mode="json"),
        "data_kind": getattr(cfg.data, "kind", None),
        "stopped_early": result.stopped_early,
    }
    pkg = save_package(net.cpu(), run_dir / PACKAGE_FILE, train_size=[patch, patch] if patch else None, training=training)
    result.package = pkg
    final["export_seconds"] = round(time.time() - t0, 2)
    result.final_metrics = final
    atomic_write_json(run_dir / FINAL_METRICS_FILE, final)
    if tracker is not None:
        if final["output"]["psnr"] is not None:
            tracker.log_metrics(
                {f"final_{k}_{m}": v for k in ("input", "output") for m, v in final[k].items() if v is not None},
                step=len(hist),
            )
        for f in (HISTORY_FILE, CURVES_FILE, FINAL_METRICS_FILE, "config.yaml"):
            if (run_dir / f).is_file():
                tracker.log_artifact(run_dir / f)
        for p in comps:
            tracker.log_artifact(p, "comparisons")
        if cfg.tracking.log_model:
            from restorekit.training.mlflow_model import log_pyfunc_model

            version = log_pyfunc_model(tracker, pkg, registered_model_name=cfg.tracking.registered_model_name)
            if version is not None:
                final["registered_model"] = {"name": cfg.tracking.registered_model_name, "version": version}
                atomic_write_json(run_dir / FINAL_METRICS_FILE, final)
        tracker.end("FINISHED")
