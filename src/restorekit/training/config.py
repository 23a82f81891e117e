"""The top-level run configuration (``RunConfig``) and its training sections.

A run YAML has the sections ``name``, ``seed``, ``model``, ``data``, ``loss``,
``optim``, ``schedule``, ``train``, ``trainer`` and ``tracking``. Every section
is a :class:`~restorekit.config.base.StrictModel`, so an unknown key or a wrong
type fails on load with the key's dotted path (``train.ema.decay: ...``).

``data`` is the data area's discriminated union (``restorekit.data.config.DataConfig``,
keyed on ``kind``) and ``loss`` a list of ``restorekit.losses.config.LossTerm``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from restorekit.config.base import StrictModel, apply_overrides, load_yaml, validate_config
from restorekit.data.config import DataConfig
from restorekit.errors import ConfigError
from restorekit.losses.config import LossTerm


class ModelSection(StrictModel):
    """Which registered architecture to train: ``create_model(name, preset, **args)``."""

    name: str = "deblur_unet"
    preset: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    #: initial weights for fine-tuning: any file ``restorekit.load_model`` reads (a restorekit package,
    #: a Lightning/BasicSR/seed checkpoint); its architecture must match ``name``/``args``.
    #: Unlike ``--resume``, optimizer, schedule and epoch counter start fresh.
    init: str | None = None


class OptimSection(StrictModel):
    """Optimizer: AdamW (decoupled weight decay) or Adam (L2 penalty)."""

    name: Literal["adamw", "adam"] = "adamw"
    lr: float = Field(2e-4, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)


class ScheduleSection(StrictModel):
    """Learning-rate schedule, stepped once per optimizer step.

    ``constant`` keeps ``optim.lr``; ``cosine`` anneals from ``optim.lr`` to
    ``min_lr`` over the run's optimizer steps; ``cosine_time`` anneals over the
    wall-clock budget ``train.max_minutes`` instead (time-boxed runs such as the
    demo; not reproducible across a resume). All start with a linear warm-up
    of ``warmup_steps`` steps from ``warmup_start_factor * lr`` (0 = none).
    """

    name: Literal["constant", "cosine", "cosine_time"] = "cosine"
    min_lr: float = Field(1e-6, ge=0)
    warmup_steps: int = Field(0, ge=0)
    warmup_start_factor: float = Field(0.01, gt=0, le=1)


class ProgressiveStage(StrictModel):
    """From ``at`` (epoch or optimizer step, see ``ProgressiveSection.unit``) train with this patch and batch size."""

    at: int = Field(ge=0)
    patch_size: int = Field(gt=0)
    batch_size: int = Field(gt=0)


class ProgressiveSection(StrictModel):
    """Restormer-style progressive patch sizes: a list of stages (empty = off).

    With ``unit: step`` a stage starts at the first epoch that begins at or after
    that optimizer step (the patch and batch size change at epoch boundaries).
    """

    unit: Literal["epoch", "step"] = "epoch"
    stages: list[ProgressiveStage] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ordered(self) -> "ProgressiveSection":
        ats = [s.at for s in self.stages]
        if ats and ats != sorted(set(ats)):
            raise ValueError("stages must have strictly increasing 'at'")
        return self


class EMASection(StrictModel):
    """Exponential moving average of the weights (BasicSR ``params_ema``)."""

    enabled: bool = False
    decay: float = Field(0.999, gt=0, lt=1)
    #: optimizer steps during which the average just copies the weights
    start_step: int = Field(0, ge=0)


class EarlyStoppingSection(StrictModel):
    """Stop when validation PSNR has not improved by ``min_delta`` dB for ``patience`` validations."""

    enabled: bool = True
    patience: int = Field(10, ge=1)
    min_delta: float = Field(0.0, ge=0)


class CheckpointSection(StrictModel):
    """Checkpoints in ``<run>/checkpoints``: best by val PSNR, ``latest.ckpt`` every epoch, and every N epochs."""

    every_n_epochs: int = Field(10, ge=0)
    save_best: bool = True
    #: latest.ckpt, the resume point (switch off only for throw-away runs such as the time-boxed demo)
    save_latest: bool = True


class TrainSection(StrictModel):
    """What one run does: epochs, clipping, accumulation, EMA, early stopping, checkpoints."""

    epochs: int = Field(100, ge=1)
    #: stop after this many optimizer steps (-1 = no limit); the cosine schedule ends there
    max_steps: int = Field(-1, ge=-1)
    #: wall-clock bound (Lightning's max_time); None = none
    max_minutes: float | None = Field(None, gt=0)
    grad_clip: float | None = Field(1.0, gt=0)
    #: samples per optimizer step over all devices; accumulation = effective / (batch * world size)
    effective_batch_size: int | None = Field(None, ge=1)
    ema: EMASection = Field(default_factory=EMASection)
    early_stopping: EarlyStoppingSection = Field(default_factory=EarlyStoppingSection)
    checkpoint: CheckpointSection = Field(default_factory=CheckpointSection)
    progressive: ProgressiveSection = Field(default_factory=ProgressiveSection)
    #: skip optimizer steps whose loss is NaN/Inf instead of stopping the run
    skip_nonfinite: bool = False
    #: memory format: auto = the architecture's measured preference for the training device (ArchSpec capabilities)
    channels_last: bool | Literal["auto"] = "auto"
    val_every_n_epochs: int = Field(1, ge=1)
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    #: validation images saved as input | output | target comparisons each epoch
    n_samples: int = Field(4, ge=0)
    #: which weights go into model.safetensors: the best checkpoint's or the last epoch's
    export: Literal["best", "last"] = "best"


class TrainerSection(StrictModel):
    """Hardware: device, DDP (devices, num_nodes, strategy), precision."""

    device: str = "auto"
    devices: int | Literal["auto"] = 1
    num_nodes: int = Field(1, ge=1)
    strategy: str = "auto"
    #: auto = bf16-mixed on CUDA with bf16 support, else 16-mixed on CUDA; 32-true elsewhere
    precision: Literal["auto", "32", "32-true", "16-mixed", "bf16-mixed"] = "auto"
    deterministic: bool = False
    progress_bar: bool = True
    log_every_n_steps: int = Field(10, ge=1)
    num_sanity_val_steps: int = Field(0, ge=0)
    #: torch.compile the model for training: auto = on CUDA only (on CPU the inductor build takes minutes and
    #: measured no faster per step than eager for these nets: benchmarks/training.py); true/false force it
    compile: bool | Literal["auto"] = "auto"
    #: CPU intra-op threads (torch.set_num_threads); None = PyTorch's default. On a busy shared machine 1 thread
    #: can be several times faster than oversubscribed OpenMP threads (restorekit demo measures and picks).
    num_threads: int | None = Field(None, ge=1)


#: MLflow metric names of each epoch (what ``tracking.metric_aliases`` may rename)
ALIASABLE_METRICS = ("train_loss", "val_loss", "val_psnr", "val_ssim", "val_input_psnr", "val_input_ssim", "learning_rate")


class TrackingSection(StrictModel):
    """MLflow: default store ``sqlite:///<run folder parent>/mlflow.db``."""

    enabled: bool = True
    uri: str | None = None
    experiment: str = "restorekit"
    run_name: str | None = None
    log_model: bool = True
    registered_model_name: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    #: extra MLflow names for epoch metrics, e.g. the seeds' ``{val_psnr: epoch_psnr, val_ssim: epoch_ssim}``
    #: (logged as well as the restorekit name; keys are the metrics of :data:`ALIASABLE_METRICS`)
    metric_aliases: dict[str, str] = Field(default_factory=dict)

    @field_validator("metric_aliases")
    @classmethod
    def _check_aliases(cls, v: dict[str, str]) -> dict[str, str]:
        import re

        for key, alias in v.items():
            if key not in ALIASABLE_METRICS:
                raise ValueError(f"unknown metric '{key}'; aliases can be given for {', '.join(ALIASABLE_METRICS)}")
            if not re.fullmatch(r"[A-Za-z0-9_.\-/ ]{1,250}", alias) or alias in ALIASABLE_METRICS:
                raise ValueError(f"alias of '{key}' must be a new MLflow metric name (letters, digits, _ - . / space), "
                                 f"got {alias!r}")
        if len(set(v.values())) != len(v):
            raise ValueError(f"two metrics share an alias: {v}")
        return v


class RunConfig(StrictModel):
    """A whole training run."""

    name: str = "run"
    seed: int = 0
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataConfig
    loss: list[LossTerm] = Field(min_length=1)
    optim: OptimSection = Field(default_factory=OptimSection)
    schedule: ScheduleSection = Field(default_factory=ScheduleSection)
    train: TrainSection = Field(default_factory=TrainSection)
    trainer: TrainerSection = Field(default_factory=TrainerSection)
    tracking: TrackingSection = Field(default_factory=TrackingSection)


def resolve_compile(setting: bool | str, device: Any) -> bool:
    """``trainer.compile``: ``True``/``False`` as given; ``auto`` = compile on CUDA devices only."""
    if isinstance(setting, bool):
        return setting
    return getattr(device, "type", str(device)) == "cuda"


def check_run_config(cfg: RunConfig, source: str = "") -> RunConfig:
    """Checks that need the registries (model name and preset); raise :class:`ConfigError` naming the key."""
    from restorekit.models.registry import get_spec

    where = f" in {source}" if source else ""
    try:
        spec = get_spec(cfg.model.name)
    except ConfigError as exc:
        raise ConfigError(f"model.name{where}: {exc}") from exc
    if cfg.model.preset is not None and cfg.model.preset not in spec.presets:
        raise ConfigError(
            f"model.preset{where}: model '{cfg.model.name}' has no preset '{cfg.model.preset}' "
            f"(presets: {', '.join(sorted(spec.presets)) or 'none'})"
        )
    try:
        spec.validate_args(cfg.model.args, where="model.args")
    except ConfigError as exc:
        raise ConfigError(f"{exc}{where}") from None
    if cfg.schedule.name == "cosine_time" and cfg.train.max_minutes is None:
        raise ConfigError(f"schedule.name{where}: cosine_time needs train.max_minutes (the time budget it anneals over)")
    stages = cfg.train.progressive.stages
    if stages and stages[0].at != 0:
        raise ConfigError(f"train.progressive.stages{where}: the first stage must start at 0")
    return cfg


def parse_run_config(data: dict[str, Any], source: str = "", overrides: list[str] | None = None) -> RunConfig:
    """Validate a mapping (plus ``key.path=value`` overrides) into a :class:`RunConfig`."""
    data = apply_overrides(data, overrides)
    cfg = validate_config(RunConfig, data, source or "RunConfig")
    return check_run_config(cfg, source)


def load_run_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Load ``path`` (YAML), apply ``--set`` overrides, validate; errors name the file and key."""
    return parse_run_config(load_yaml(path), f"'{path}'", overrides)


def config_to_dict(cfg: RunConfig) -> dict[str, Any]:
    """A JSON/YAML-able dict of ``cfg`` (round-trips through :func:`parse_run_config`)."""
    return cfg.model_dump(mode="json")


def flatten_config(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten nested dicts/lists to ``a.b.c -> str(value)`` (MLflow params)."""
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten_config(v, key + "."))
        elif isinstance(v, list) and v and all(isinstance(i, dict) for i in v):
            for i, item in enumerate(v):
                out.update(flatten_config(item, f"{key}.{i}."))
        else:
            out[key] = str(v)
    return out
