"""The distillation config: a training run config (the student) plus ``teacher``, ``distill`` and ``score``.

A distill YAML is a :class:`~restorekit.training.config.RunConfig` for the
student (``model``, ``data``, ``optim``, ``train``, ``tracking``, ...) with
three more sections::

    teacher:
      path: runs/teacher/model.safetensors   # any file load_model reads; or omit and give `train`
      train: {model: {name: nafnet, ...}, loss: [...], train: {epochs: 10}}   # train it first (RunConfig keys)
      mode: precompute            # or online (teacher run per batch; needed for synthetic degradation variety)
      cache_format: png16         # or npy (float32)
    distill:
      lambda_l1: 1.0              # L1(student, target)
      lambda_kd: 1.0              # L1(student, teacher)
      lambda_perc: 0.1            # Perceptual(student, teacher or target), VGG16 relu2_2
      epoch_samples: 2500         # chunked epochs (null = whole dataset per epoch)
      features: [{student: enc2, teacher: encoders.1, weight: 0.1}]
    score: {latency_size: 512}

``loss`` may be given explicitly (a list of LossTerm); otherwise it is built
from the lambdas.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from restorekit.config.base import StrictModel, apply_overrides, load_yaml, validate_config
from restorekit.errors import ConfigError

DISTILL_KEYS = ("teacher", "distill", "score")


class TeacherSection(StrictModel):
    """Where the teacher comes from and how its outputs are produced."""

    #: a weight file load_model reads (restorekit package, BasicSR/official checkpoint, seed checkpoint)
    path: str | None = None
    #: architecture name for foreign checkpoints that do not say (passed to load_model)
    arch: str | None = None
    #: extra keyword arguments for load_model (e.g. architecture arguments of a foreign checkpoint)
    load_args: dict[str, Any] = Field(default_factory=dict)
    #: train the teacher first: RunConfig keys merged over the student's shared sections (data, seed, trainer, tracking)
    train: dict[str, Any] | None = None
    #: precompute: run once over the training inputs into a cache; online: run on every training batch
    mode: Literal["precompute", "online"] = "precompute"
    #: cache folder (default <out>/teacher_cache)
    cache_dir: str | None = None
    cache_format: Literal["png16", "npy"] = "png16"
    #: how the data listing is fingerprinted: stat (name, size, mtime) or content (file hashes)
    data_hash: Literal["stat", "content"] = "stat"
    #: whole-image teacher inference (precompute, scorecard): tile size ("auto", pixels, 0 = whole) and overlap
    tile: int | Literal["auto"] = "auto"
    overlap: int = Field(32, ge=0)
    device: str = "auto"


class FeatureSection(StrictModel):
    """One feature-distillation pair: layer names as in ``model.named_modules()``."""

    student: str
    teacher: str
    weight: float = Field(1.0, ge=0)


class DistillSection(StrictModel):
    """Loss weights (reference.md defaults), feature distillation and chunked epochs."""

    lambda_l1: float = Field(1.0, ge=0)
    lambda_kd: float = Field(1.0, ge=0)
    lambda_perc: float = Field(0.1, ge=0)
    #: what the perceptual term compares the student with
    perceptual_target: Literal["teacher", "target"] = "teacher"
    #: arguments of the ``perceptual`` loss (network, layers, weights: a file, imagenet or random)
    perceptual_args: dict[str, Any] = Field(default_factory=lambda: {"network": "vgg16", "layers": ["relu2_2"]})
    features: list[FeatureSection] = Field(default_factory=list)
    feature_criterion: Literal["l1", "mse"] = "l1"
    #: chunked epochs: samples per epoch, cycling through the dataset in seeded passes (null = full epochs)
    epoch_samples: int | None = Field(None, ge=1)


class ScoreSection(StrictModel):
    """The final scorecard (input vs teacher vs student on the validation set)."""

    enabled: bool = True
    #: score at most this many validation images (null = all)
    max_images: int | None = Field(None, ge=1)
    #: side of the square crop used for CPU latency
    latency_size: int = Field(512, ge=16)
    latency_repeats: int = Field(3, ge=1)
    tile: int | Literal["auto"] = "auto"
    overlap: int = Field(32, ge=0)
    #: inference backend for quality and latency (restore_image's backend: auto, eager, onnxruntime, compile)
    backend: str = "eager"


class DistillSections(StrictModel):
    teacher: TeacherSection = Field(default_factory=TeacherSection)
    distill: DistillSection = Field(default_factory=DistillSection)
    score: ScoreSection = Field(default_factory=ScoreSection)


class DistillConfig:
    """The parsed config: ``student`` (a RunConfig), ``teacher``/``distill``/``score`` sections, raw mapping."""

    def __init__(self, raw: dict[str, Any], source: str = "") -> None:
        from restorekit.training.config import parse_run_config

        self.raw = copy.deepcopy(raw)
        self.source = source
        self.base_dir = Path(source).parent if source and Path(source).exists() else Path.cwd()
        sections = validate_config(DistillSections, {k: raw[k] for k in DISTILL_KEYS if k in raw}, source or "distill config")
        self.teacher: TeacherSection = sections.teacher
        self.distill: DistillSection = sections.distill
        self.score: ScoreSection = sections.score
        student = {k: v for k, v in raw.items() if k not in DISTILL_KEYS}
        if not student.get("loss"):
            student["loss"] = default_loss_terms(self.distill)
        self.student_raw = student
        self.student = parse_run_config(student, source or "distill config")
        if self.teacher.path is None and self.teacher.train is None:
            raise ConfigError(f"teacher in {source or 'distill config'}: give teacher.path (a weight file) or teacher.train")
        if self.distill.features and self.teacher.mode != "online":
            raise ConfigError(
                "distill.features: feature distillation needs the teacher's activations on every batch; "
                "set teacher.mode: online"
            )
        if getattr(self.student.data, "kind", None) == "raw" and self.teacher.mode == "precompute":
            raise ConfigError("teacher.mode: precompute does not support data.kind raw; use teacher.mode: online")

    def teacher_run_raw(self) -> dict[str, Any]:
        """The teacher's RunConfig mapping: shared sections of the student config overlaid with ``teacher.train``."""
        assert self.teacher.train is not None
        base = {k: copy.deepcopy(v) for k, v in self.student_raw.items() if k in ("name", "seed", "data", "trainer", "tracking")}
        base["name"] = f"{self.student.name}-teacher"
        merged = _deep_merge(base, copy.deepcopy(self.teacher.train))
        if "loss" not in merged:
            merged["loss"] = [{"name": "l1", "weight": 1.0}]
        return merged


def default_loss_terms(d: DistillSection) -> list[dict[str, Any]]:
    """``L1(student, target) + lambda_kd L1(student, teacher) + lambda_perc Perceptual(student, teacher|target)``.

    Terms whose weight is 0 are left out.
    """
    terms: list[dict[str, Any]] = []
    if d.lambda_l1 > 0:
        terms.append({"name": "l1", "weight": d.lambda_l1})
    if d.lambda_kd > 0:
        terms.append({"name": "kd_output", "weight": d.lambda_kd, "target": "teacher"})
    if d.lambda_perc > 0:
        terms.append({"name": "perceptual", "weight": d.lambda_perc, "args": dict(d.perceptual_args), "target": d.perceptual_target})
    if not terms:
        raise ConfigError("distill: lambda_l1, lambda_kd and lambda_perc are all 0: nothing to train on")
    return terms


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "data":
            out[k] = _deep_merge(out[k], v)
        elif isinstance(v, dict) and k == "data" and isinstance(out.get(k), dict) and v.get("kind", out[k].get("kind")) == out[k].get("kind"):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def load_distill_config(path: str | Path, overrides: list[str] | None = None) -> DistillConfig:
    """Read a distill YAML, apply ``--set`` overrides, validate every section (errors name file and key)."""
    raw = apply_overrides(load_yaml(path), overrides)
    return DistillConfig(raw, str(path))
