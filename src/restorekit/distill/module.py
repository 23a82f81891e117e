"""``DistillationModule``: the restoration LightningModule that owns a student *and* its teacher.

:func:`restorekit.training.engine.train` builds it through ``module_factory``
(see :func:`distillation_factory`) and fits it like any other run (optimiser,
schedule, EMA, checkpoints, resume, MLflow). What it adds to
:class:`~restorekit.training.module.RestorationModule`:

* online teacher: a training or validation batch without a ``"teacher"``
  tensor (not precomputed, or a validation split the cache does not cover)
  gets the frozen teacher's output ``(B, 3, H, W)`` in [0, 1] under
  ``no_grad`` as ``batch["teacher"]``; the loss terms with ``target: teacher``
  read it;
* feature distillation: the adapters are a submodule (``kd_features``), so
  they are saved in and restored from every checkpoint, and they are a second
  optimiser parameter group following the same LR schedule; the feature term
  is added to the training loss (parts ``feat_<layer>``);
* a per-epoch record (``distill_epochs.json``): the samples each epoch trained
  on (how chunked epochs are audited and a resume checked), the epoch means of
  the loss terms and how many batches got their teacher output online.

The teacher is never a registered submodule: it stays out of the student's
checkpoints, optimiser and ``state_dict``, and is moved to the module's device
when fitting starts. Checkpoint keys depend only on the config (``model.``,
``ema_model.``, and ``kd_features.`` when ``distill.features`` is set).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from restorekit.distill.features import FeaturePair, FeatureTerms
from restorekit.distill.teacher import teacher_batch
from restorekit.training.config import RunConfig
from restorekit.training.module import RestorationModule
from restorekit.utils.atomic import atomic_write_json

EPOCHS_FILE = "distill_epochs.json"


class DistillationModule(RestorationModule):
    """Train ``model`` (the student) against ``cfg.loss`` with a frozen ``teacher``.

    Args:
        cfg, model, total_steps: as :class:`RestorationModule`.
        teacher: the frozen teacher (any device; moved to the module's device on fit start).
        feature_pairs: layer pairs for feature distillation (empty = off).
        feature_criterion: "l1" or "mse".
        record_dir: where ``distill_epochs.json`` is written (rank 0); None = not recorded.
    """

    def __init__(
        self,
        cfg: RunConfig,
        model: nn.Module,
        total_steps: int,
        *,
        teacher: nn.Module,
        feature_pairs: list[FeaturePair] | None = None,
        feature_criterion: str = "l1",
        record_dir: str | Path | None = None,
    ) -> None:
        super().__init__(cfg, model, total_steps)
        self.__dict__["teacher"] = teacher.eval()  # not a submodule: out of checkpoints and the optimiser
        self.feature_pairs = list(feature_pairs or [])
        self.kd_features: FeatureTerms | None = (
            FeatureTerms(self.model, teacher, self.feature_pairs, feature_criterion) if self.feature_pairs else None
        )
        self.record_dir = Path(record_dir) if record_dir is not None else None
        #: batches whose teacher output was computed online (whole fit)
        self.online_batches = 0
        self._epoch_names: list[str] = []
        self._epoch_online = 0
        self._epochs: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ teacher
    def add_teacher(self, batch: dict[str, Any]) -> bool:
        """Put the teacher output into ``batch["teacher"]`` when missing; returns whether it ran online.

        With feature distillation the teacher also runs on batches that carry a cached
        output: the adapters need its activations on this very batch.
        """
        if "teacher" not in batch:
            batch["teacher"] = teacher_batch(self.teacher, batch)
            return True
        if self.kd_features is not None and self.training:
            teacher_batch(self.teacher, batch)
        return False

    def on_fit_start(self) -> None:
        super().on_fit_start()
        self.teacher.to(self.device).eval()

    def on_validation_start(self) -> None:
        super().on_validation_start()
        self.teacher.to(self.device).eval()

    def on_train_start(self) -> None:
        # after a resume the loop state (current_epoch) is restored here, not yet in on_fit_start
        if self.record_dir is not None:
            f = self.record_dir / EPOCHS_FILE
            if f.is_file():
                try:
                    self._epochs = json.loads(f.read_text())
                except (OSError, json.JSONDecodeError):
                    self._epochs = {}
            # a resume restarts at current_epoch: forget what a killed run recorded from there on
            self._epochs = {k: v for k, v in self._epochs.items() if int(k) < self.current_epoch}

    # ------------------------------------------------------------------ loss
    def _loss(self, pred: torch.Tensor, batch: dict[str, Any], *, skip_missing: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total, parts = super()._loss(pred, batch, skip_missing=skip_missing)
        feats = self.kd_features
        if feats is None:
            return total, parts
        if self.training and feats.ready():
            ft, fparts = feats()
            total = total + ft.float()
            parts = {**parts, **fparts}
        feats.clear()
        return total, parts

    def trainable_parameter_groups(self) -> list[dict[str, Any]]:
        groups = super().trainable_parameter_groups()
        if self.kd_features is not None:
            groups.append({"params": [p for p in self.kd_features.parameters() if p.requires_grad]})
        return groups

    # ------------------------------------------------------------------ steps
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        if self.add_teacher(batch):
            self.online_batches += 1
            self._epoch_online += 1
        if self.record_dir is not None:
            self._epoch_names.extend(str(n) for n in batch.get("name", []))
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.add_teacher(batch)
        super().validation_step(batch, batch_idx)

    # ------------------------------------------------------------------ epoch record
    def on_train_epoch_start(self) -> None:
        self._epoch_names = []
        self._epoch_online = 0

    def on_train_epoch_end(self) -> None:
        if self.record_dir is None or not self.trainer.is_global_zero:
            return
        parts: dict[str, float] = {}
        for k, v in self.trainer.callback_metrics.items():
            if not k.startswith("train_") or k.startswith("train_loss") or k.endswith("_step"):
                continue
            name = k[len("train_"):]
            parts[name[: -len("_epoch")] if name.endswith("_epoch") else name] = float(v)
        self._epochs[str(self.current_epoch)] = {
            "samples": list(self._epoch_names),
            "loss_parts": parts,
            "online_teacher_batches": self._epoch_online,
        }
        atomic_write_json(self.record_dir / EPOCHS_FILE, self._epochs)

    def teardown(self, stage: str) -> None:
        if self.kd_features is not None:
            self.kd_features.remove()


def distillation_factory(
    teacher: nn.Module,
    *,
    feature_pairs: list[FeaturePair] | None = None,
    feature_criterion: str = "l1",
    record_dir: str | Path | None = None,
) -> Callable[[RunConfig, nn.Module, int], DistillationModule]:
    """A ``module_factory`` for :func:`restorekit.training.engine.train` that builds a :class:`DistillationModule`."""

    def factory(cfg: RunConfig, model: nn.Module, total_steps: int) -> DistillationModule:
        return DistillationModule(
            cfg, model, total_steps, teacher=teacher, feature_pairs=feature_pairs,
            feature_criterion=feature_criterion, record_dir=record_dir,
        )

    return factory
