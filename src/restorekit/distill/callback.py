"""The distillation hook into the training engine: a Lightning callback, not a second training loop.

:func:`restorekit.training.engine.train` runs the student exactly like any
other model (optimiser, schedule, EMA, checkpoints, resume, MLflow). This
callback adds what distillation needs:

* online teacher: before each training (and validation) batch whose batch has
  no ``"teacher"`` tensor (i.e. not precomputed), the frozen teacher is run on
  it under ``no_grad`` and the result stored as ``batch["teacher"]``
  ``(B, 3, H, W)`` in [0, 1]; the loss terms with ``target: teacher`` read it;
* feature distillation: the adapters are attached to the LightningModule
  (``kd_features``: saved in and restored from checkpoints), their parameters
  added to the optimiser as a second group following the same LR schedule,
  and the feature term added to the training loss;
* a per-epoch record (``distill_epochs.json``): the samples the epoch trained
  on (how chunked epochs are audited and a resume checked), the epoch means of
  the loss terms (``l1``, ``kd_output``, ``feat_*``...) and how many batches
  got their teacher output online.

The teacher is never registered as a submodule: it stays out of the student's
checkpoints and optimiser.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn as nn

from restorekit.distill.features import FeaturePair, FeatureTerms
from restorekit.distill.teacher import teacher_batch
from restorekit.utils.atomic import atomic_write_json

EPOCHS_FILE = "distill_epochs.json"


class _LossWithFeatures(nn.Module):
    """``CombinedLoss`` plus the feature-distillation term while training (the parts dict gains ``feat_*``)."""

    def __init__(self, base: nn.Module, features: FeatureTerms, owner: pl.LightningModule) -> None:
        super().__init__()
        self.base = base
        self.__dict__["features"] = features  # owned (and checkpointed) by the LightningModule
        self.__dict__["owner"] = owner

    def forward(self, pred: torch.Tensor, target: torch.Tensor, **extras: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total, parts = self.base(pred, target, **extras)
        if self.owner.training and self.features.ready():
            ft, fparts = self.features()
            total = total + ft.float()
            parts = {**parts, **fparts}
        else:
            self.features.clear()
        return total, parts


class DistillCallback(pl.Callback):
    """Runs the teacher online when the batch has no cached output, and adds feature distillation.

    Args:
        teacher: the frozen teacher (any device; moved to the module's device).
        feature_pairs: layer pairs for feature distillation (empty = off).
        feature_criterion: "l1" or "mse".
        record_dir: where ``distill_epochs.json`` is written; None = not recorded.
    """

    def __init__(
        self,
        teacher: nn.Module,
        *,
        feature_pairs: list[FeaturePair] | None = None,
        feature_criterion: str = "l1",
        record_dir: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.teacher = teacher
        self.feature_pairs = list(feature_pairs or [])
        self.feature_criterion = feature_criterion
        self.record_dir = Path(record_dir) if record_dir is not None else None
        self.online_batches = 0
        self._epoch_names: list[str] = []
        self._epoch_online = 0
        self._epochs: dict[str, dict[str, Any]] = {}

    # ---------------------------------------------------------------- set-up
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or not self.feature_pairs or hasattr(pl_module, "kd_features"):
            return
        feats = FeatureTerms(pl_module.model, self.teacher, self.feature_pairs, self.feature_criterion)
        pl_module.kd_features = feats  # a submodule: moved to the device, saved in checkpoints
        pl_module.__dict__["loss_fn"] = _LossWithFeatures(pl_module.loss_fn, feats, pl_module)
        original = pl_module.configure_optimizers

        def configure_optimizers() -> Any:
            conf = original()
            opt = conf["optimizer"] if isinstance(conf, dict) else conf
            group0 = opt.param_groups[0]
            opt.add_param_group({"params": [p for p in feats.parameters() if p.requires_grad], "lr": group0["lr"]})
            sched = conf.get("lr_scheduler", {}).get("scheduler") if isinstance(conf, dict) else None
            if sched is not None and hasattr(sched, "lr_lambdas"):
                # the adapters follow the student's schedule (LambdaLR keeps one lambda and base lr per group)
                sched.lr_lambdas.append(sched.lr_lambdas[0])
                sched.base_lrs.append(sched.base_lrs[0])
                opt.param_groups[-1]["initial_lr"] = sched.base_lrs[0]
            return conf

        pl_module.configure_optimizers = configure_optimizers  # type: ignore[method-assign]

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.teacher.to(pl_module.device).eval()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # (after a resume the loop state is restored here, not yet in on_fit_start)
        if self.record_dir is not None:
            f = self.record_dir / EPOCHS_FILE
            if f.is_file():
                try:
                    self._epochs = json.loads(f.read_text())
                except (OSError, json.JSONDecodeError):
                    self._epochs = {}
            # a resume restarts at ``current_epoch``: forget whatever a killed run recorded from there on
            self._epochs = {k: v for k, v in self._epochs.items() if int(k) < trainer.current_epoch}

    # ---------------------------------------------------------------- batches
    def _add_teacher(self, batch: Any, pl_module: pl.LightningModule) -> None:
        if not isinstance(batch, dict):
            return
        if "teacher" not in batch:
            batch["teacher"] = teacher_batch(self.teacher, batch)
            self.online_batches += 1
            self._epoch_online += 1
        elif self.feature_pairs:
            # features need the teacher's activations on this very batch
            teacher_batch(self.teacher, batch)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self._add_teacher(batch, pl_module)
        if self.record_dir is not None and isinstance(batch, dict):
            self._epoch_names.extend(str(n) for n in batch.get("name", []))

    def on_validation_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if isinstance(batch, dict) and "teacher" not in batch:
            batch["teacher"] = teacher_batch(self.teacher, batch)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_names = []
        self._epoch_online = 0

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.record_dir is None or not trainer.is_global_zero:
            return
        parts = {
            k[len("train_"):]: float(v)
            for k, v in trainer.callback_metrics.items()
            if k.startswith("train_") and not k.startswith("train_loss") and not k.endswith("_step")
        }
        parts = {k[: -len("_epoch")] if k.endswith("_epoch") else k: v for k, v in parts.items()}
        self._epochs[str(trainer.current_epoch)] = {
            "samples": list(self._epoch_names),
            "loss_parts": parts,
            "online_teacher_batches": self._epoch_online,
        }
        atomic_write_json(self.record_dir / EPOCHS_FILE, self._epochs)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        feats = getattr(pl_module, "kd_features", None)
        if isinstance(feats, FeatureTerms):
            feats.remove()
