"""The LightningModule for (input, target) restoration.

Batches are dicts of [0, 1] float32 RGB tensors (``"input"``, ``"target"``
``(B,3,H,W)``; raw batches add ``"rggb"``, ``"cond"``, ``"residual"``; distillation
batches ``"teacher"``). The module converts to the model's value range at the
boundary (:func:`restorekit.training.forward.predict01`), so losses and
metrics always see [0, 1].

Logged metric names have no ``/`` (they are used in checkpoint file names):
``train_loss`` (step and epoch), ``val_loss``, ``val_psnr``, ``val_ssim``,
``val_input_psnr``, ``val_input_ssim``, ``lr``.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn as nn

from restorekit.losses import NonFiniteLossError, check_finite
from restorekit.models.value_range import model_value_range
from restorekit.training.config import RunConfig
from restorekit.training.ema import ema_update, make_ema_copy
from restorekit.training.forward import predict01
from restorekit.training.schedules import build_scheduler
from restorekit.models.spec import arch_of, args_of

#: batch keys a loss term may compare against (LossTerm.target)
_LOSS_EXTRAS = ("teacher",)


def wants_channels_last(model: nn.Module, setting: bool | str, device: torch.device | str = "cpu") -> bool:
    """Whether to train ``model`` in ``torch.channels_last`` on ``device``.

    ``True``/``False`` force it; ``auto`` asks the architecture's spec
    (``Capabilities.channels_last``): a training-specific entry ``"train:<device type>"``
    when the spec has one (training and inference can differ: backward kernels have
    other layouts), else the device type's entry. Foreign modules use the default
    capabilities. ``benchmarks/training.py`` measures both formats per architecture.
    """
    if isinstance(setting, bool):
        return setting
    from restorekit.device import resolve_device
    from restorekit.models.spec import caps_of

    kind = resolve_device(device).type
    caps = caps_of(model)
    train_key = f"train:{kind}"
    if train_key in caps.channels_last:
        return bool(caps.channels_last[train_key])
    return caps.prefers_channels_last(kind)


class RestorationModule(pl.LightningModule):
    """Train ``model`` with ``cfg.loss``; validate (optionally with the EMA weights) on PSNR/SSIM."""

    def __init__(self, cfg: RunConfig, model: nn.Module, total_steps: int) -> None:
        super().__init__()
        from restorekit.losses import build_loss

        self.cfg = cfg
        self.model = model
        self.value_range = model_value_range(model)
        # The loss is kept out of the state_dict (fixed weights such as VGG features do not belong in checkpoints).
        self.__dict__["loss_fn"] = build_loss(cfg.loss)
        self.total_steps = max(1, int(total_steps))
        self.use_channels_last = wants_channels_last(model, cfg.train.channels_last, cfg.trainer.device)
        if self.use_channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.ema_model: nn.Module | None = make_ema_copy(model) if cfg.train.ema.enabled else None
        #: (input, output, target) [0,1] CPU tensors of the first validation images of the epoch
        self.val_samples: list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.skipped_batches = 0
        self.last_val_epoch = -1

    # ------------------------------------------------------------------ helpers
    def eval_model(self) -> nn.Module:
        """The network used for validation and export: the EMA copy when enabled."""
        return self.ema_model if self.ema_model is not None else self.model

    def predict(self, net: nn.Module, batch: Any) -> torch.Tensor:
        """Model output for a [0, 1] batch, back in [0, 1] (unclipped), ``(B,3,H,W)``."""
        return predict01(net, batch, value_range=self.value_range, channels_last=self.use_channels_last)

    def on_fit_start(self) -> None:
        self.loss_fn.to(self.device)

    def on_validation_start(self) -> None:
        self.loss_fn.to(self.device)

    def _loss(self, pred: torch.Tensor, batch: dict[str, Any], *, skip_missing: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``cfg.loss`` of ``pred`` against the batch; ``skip_missing``: leave out terms whose reference
        (e.g. ``teacher``) the batch lacks (validation) instead of raising."""
        extras = {k: batch[k] for k in _LOSS_EXTRAS if k in batch}
        with self.full_precision():
            return self.loss_fn(pred.float(), batch["target"].float(), skip_missing=skip_missing, **extras)

    def full_precision(self) -> Any:
        """A context in which autocast is off: losses (MS-SSIM's local variances, VGG features compared
        to 1e-3) and metrics lose their meaning in bf16/fp16, so under ``bf16-mixed``/``16-mixed`` only
        the network's forward (and its backward) runs in half precision."""
        return torch.autocast(device_type=self.device.type, enabled=False)

    def trainable_parameter_groups(self) -> list[dict[str, Any]]:
        """Optimizer parameter groups (all follow ``optim.lr`` and the schedule); subclasses add their own."""
        return [{"params": [p for p in self.model.parameters() if p.requires_grad]}]

    # ------------------------------------------------------------------ training
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        pred = self.predict(self.model, batch)
        total, parts = self._loss(pred, batch)
        bsz = batch["target"].shape[0]
        try:
            check_finite(total, self.global_step, batch_idx, parts)
        except NonFiniteLossError as exc:
            names = batch.get("name", [])
            where = f"epoch {self.current_epoch}: {exc}" + (f" [samples: {', '.join(map(str, names[:8]))}]" if names else "")
            if not self.cfg.train.skip_nonfinite:
                raise NonFiniteLossError(where) from None
            self.skipped_batches += 1
            self.print(f"warning: skipping batch: {where}")
            return None
        self.log("train_loss", total, on_step=True, on_epoch=True, prog_bar=True, batch_size=bsz, sync_dist=True)
        for k, v in parts.items():
            self.log(f"train_{k}", v, on_step=False, on_epoch=True, batch_size=bsz, sync_dist=True)
        return total

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None) -> None:  # type: ignore[override]
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        if self.ema_model is not None:
            step = self.global_step  # not yet incremented for this step
            decay = 0.0 if step < self.cfg.train.ema.start_step else self.cfg.train.ema.decay
            ema_update(self.ema_model, self.model, decay)

    # ------------------------------------------------------------------ validation
    def on_validation_epoch_start(self) -> None:
        self.val_samples = []

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self.last_val_epoch = int(self.current_epoch)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        net = self.eval_model()
        with self.full_precision():  # validation scores the fp32 network, as inference runs it by default
            self._validation_scores(net, batch, batch_idx)

    def _validation_scores(self, net: nn.Module, batch: dict[str, Any], batch_idx: int) -> None:
        """Loss, PSNR and SSIM of ``net`` on one validation batch (logged), and the sample images kept."""
        from restorekit.metrics import psnr_batch, ssim_batch

        pred = self.predict(net, batch)
        loss, _ = self._loss(pred, batch, skip_missing=True)
        out = pred.float().clamp(0.0, 1.0)
        tgt = batch["target"].float()
        inp = batch["input"].float() if "input" in batch else None
        bsz = tgt.shape[0]
        self.log("val_loss", loss, on_epoch=True, batch_size=bsz, sync_dist=True)
        self.log("val_psnr", psnr_batch(out, tgt).mean(), on_epoch=True, prog_bar=True, batch_size=bsz, sync_dist=True)
        self.log("val_ssim", ssim_batch(out, tgt).mean(), on_epoch=True, batch_size=bsz, sync_dist=True)
        if inp is not None and inp.shape == tgt.shape:
            self.log("val_input_psnr", psnr_batch(inp.clamp(0, 1), tgt).mean(), on_epoch=True, batch_size=bsz, sync_dist=True)
            self.log("val_input_ssim", ssim_batch(inp.clamp(0, 1), tgt).mean(), on_epoch=True, batch_size=bsz, sync_dist=True)
        n_keep = self.cfg.train.n_samples
        if len(self.val_samples) < n_keep and inp is not None and self.trainer.is_global_zero:
            names = batch.get("name", [f"val{batch_idx}_{i}" for i in range(bsz)])
            for i in range(bsz):
                if len(self.val_samples) >= n_keep:
                    break
                self.val_samples.append((str(names[i]), inp[i].cpu(), out[i].cpu(), tgt[i].cpu()))

    # ------------------------------------------------------------------ optimizers
    def configure_optimizers(self) -> Any:
        o = self.cfg.optim
        groups = [g for g in self.trainable_parameter_groups() if g["params"]]
        cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
        # foreach: the multi-tensor update (torch uses it by default only on CUDA); faster on CPU too
        # (one LambdaLR multiplier applies to every group, so added groups follow the same schedule)
        optimizer = cls(groups, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay, foreach=True)
        s = self.cfg.schedule
        scheduler = build_scheduler(
            optimizer,
            s.name,
            self.total_steps,
            base_lr=o.lr,
            min_lr=s.min_lr,
            warmup_steps=s.warmup_steps,
            warmup_start_factor=s.warmup_start_factor,
            seconds=self.cfg.train.max_minutes * 60.0 if self.cfg.train.max_minutes else None,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["restorekit"] = {
            "arch": arch_of(self.model),
            "arch_args": args_of(self.model),
            "value_range": self.value_range,
            "ema": self.ema_model is not None,
            "skipped_batches": self.skipped_batches,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        info = checkpoint.get("restorekit", {})
        self.skipped_batches = int(info.get("skipped_batches", 0))
        has_ema = any(k.startswith("ema_model.") for k in checkpoint.get("state_dict", {}))
        if self.ema_model is not None and not has_ema:
            # resuming an EMA run from a checkpoint without EMA weights: start the average from the weights
            sd = {k[len("model."):]: v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}
            checkpoint["state_dict"].update({f"ema_model.{k}": v for k, v in sd.items()})
        if self.ema_model is None and has_ema:
            for k in [k for k in checkpoint["state_dict"] if k.startswith("ema_model.")]:
                del checkpoint["state_dict"][k]
