"""Callbacks and plugins of the training engine.

* :class:`AtomicCheckpointIO` - Lightning's ``TorchCheckpointIO`` writes the
  checkpoint bytes straight into the destination (its fsspec "transaction" on a
  local disk stages through the system temp folder and then copies, which is
  not atomic across filesystems). This plugin writes a temporary file beside
  the destination, fsyncs it and renames it (``restorekit.utils.atomic``), so a
  killed run never leaves a half-written ``.ckpt`` under a real name.
* :class:`LatestCheckpoint` - ``latest.ckpt`` saved at the end of *every*
  training epoch, after the best/periodic checkpoints and early stopping have
  updated their state (Lightning's ``save_last`` only refreshes when its own
  monitored callback saves, so it can be stale). After saving it lets the
  :class:`RunRecorder` flush files and MLflow records.
* :class:`RunRecorder` - per-epoch history (kept in the checkpoint, so a
  resumed run neither repeats nor skips an epoch in ``training_history.json``),
  the loss/PSNR plot, ``input | output | target`` comparison images and MLflow
  metrics/artefacts (rank 0).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from restorekit.training.plan import EpochPlan
from restorekit.training.plots import plot_history, save_comparison
from restorekit.training.tracking import Tracker
from restorekit.utils.atomic import atomic_path, atomic_write_json
from restorekit.utils.names import safe_filename

HISTORY_FILE = "training_history.json"
CURVES_FILE = "training_curves.png"
LATEST_NAME = "latest"

#: metrics copied from trainer.callback_metrics into each history entry (history key -> metric name)
EPOCH_METRICS = {
    "train_loss": "train_loss_epoch",
    "val_loss": "val_loss",
    "val_psnr": "val_psnr",
    "val_ssim": "val_ssim",
    "val_input_psnr": "val_input_psnr",
    "val_input_ssim": "val_input_ssim",
}


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` into a sibling temporary file, fsync, then ``os.replace`` onto the checkpoint path."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")
        with atomic_path(Path(path)) as tmp:
            torch.save(checkpoint, tmp)


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete temporary files a killed writer left behind (``.<name>.*.tmp.<ext>``); returns them."""
    removed = []
    if folder.is_dir():
        for p in folder.glob(".*.tmp*"):
            if p.is_file():
                p.unlink()
                removed.append(p)
    return removed


class LatestCheckpoint(ModelCheckpoint):
    """Save ``<dir>/latest.ckpt`` at every training epoch end (the resume point), then run ``after_save`` hooks."""

    def __init__(
        self, dirpath: str | Path, after_save: list[Callable[[pl.Trainer], None]] | None = None, enabled: bool = True
    ) -> None:
        super().__init__(
            dirpath=str(dirpath),
            filename=LATEST_NAME,
            monitor=None,
            save_top_k=1,
            save_last=False,
            every_n_epochs=1,
            save_on_train_epoch_end=True,
            enable_version_counter=False,
            auto_insert_metric_name=False,
        )
        self.after_save = list(after_save or [])
        self.enabled = enabled

    @property
    def state_key(self) -> str:
        return "LatestCheckpoint"

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.enabled and not (trainer.fast_dev_run or trainer.sanity_checking):
            # save unconditionally (monitor=None): the resume point must never be stale
            filepath = self.format_checkpoint_name({}, ver=None)
            self._save_checkpoint(trainer, filepath)
            self.best_model_path = self.last_model_path = filepath
        for hook in self.after_save:
            hook(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        return None


class RunRecorder(Callback):
    """History, plots, comparison images and MLflow records of a run (files written on rank 0)."""

    def __init__(
        self,
        run_dir: Path,
        *,
        tracker: Tracker | None,
        params: dict[str, str],
        plan: list[EpochPlan] | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.tracker = tracker
        self.params = params
        self.plan = plan or []
        self.history: list[dict[str, Any]] = []
        self._pending: dict[str, Any] | None = None
        self._t0 = time.time()
        self.mlflow_resumed = False
        self._last_step_logged = -1

    # -- state saved in checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {"history": [dict(h) for h in self.history]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [dict(h) for h in state_dict.get("history", [])]

    # -- lifecycle
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit" and trainer.is_global_zero and self.tracker is not None and self.tracker.run_id is None:
            _, self.mlflow_resumed = self.tracker.start(self.params)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._t0 = time.time() - (self.history[-1].get("elapsed_s", 0.0) if self.history else 0.0)
        if not trainer.is_global_zero:
            return
        # After a resume the restored history is the truth: rewrite the file (drops an epoch the killed run wrote
        # after its last checkpoint) and log to MLflow whatever epochs it had not recorded.
        self._write_files()
        if self.tracker is not None and self.history:
            done = self.tracker.logged_steps("train_loss")
            for h in self.history:
                if int(h["epoch"]) not in done:
                    self.tracker.log_metrics(self._metric_items(h), step=int(h["epoch"]))

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        """Per-step ``train_loss_step`` to MLflow every ``trainer.log_every_n_steps`` optimizer steps."""
        if self.tracker is None or not trainer.is_global_zero:
            return
        step = int(trainer.global_step)
        every = max(1, int(trainer.log_every_n_steps))
        if step == 0 or step % every or step == self._last_step_logged:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) and bool(torch.isfinite(loss.detach())):
            self._last_step_logged = step
            self.tracker.log_metrics({"train_loss_step": float(loss.detach())}, step=step)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = trainer.callback_metrics
        epoch = int(trainer.current_epoch)
        entry: dict[str, Any] = {"epoch": epoch, "global_step": int(trainer.global_step)}
        for key, name in EPOCH_METRICS.items():
            v = metrics.get(name)
            entry[key] = float(v) if v is not None and bool(torch.isfinite(torch.as_tensor(v))) else None
        opt = trainer.optimizers[0] if trainer.optimizers else None
        entry["lr"] = float(opt.param_groups[0]["lr"]) if opt is not None else None
        if self.plan:
            ep = self.plan[min(epoch, len(self.plan) - 1)]
            entry["patch_size"], entry["batch_size"], entry["accumulate"] = ep.patch_size, ep.batch_size, ep.accumulate
        entry["skipped_batches"] = int(getattr(pl_module, "skipped_batches", 0))
        entry["elapsed_s"] = round(time.time() - self._t0, 2)
        # a validation that did not run this epoch leaves the previous values in callback_metrics
        if getattr(pl_module, "last_val_epoch", epoch) != epoch:
            for k in ("val_loss", "val_psnr", "val_ssim", "val_input_psnr", "val_input_ssim"):
                entry[k] = None
        self.history.append(entry)
        samples = list(getattr(pl_module, "val_samples", []))
        pl_module.val_samples = []
        self._pending = {"entry": entry, "samples": samples}

    def flush(self, trainer: pl.Trainer) -> None:
        """Write history/plot/comparisons and log to MLflow (called right after latest.ckpt is saved)."""
        pending, self._pending = self._pending, None
        if pending is None or not trainer.is_global_zero:
            return
        entry = pending["entry"]
        self._write_files()
        sample_paths = []
        for name, inp, out, tgt in pending["samples"]:
            safe = safe_filename(Path(name).stem, max_len=60)
            p = self.run_dir / "samples" / f"epoch{entry['epoch']:04d}_{safe}.png"
            save_comparison(_hwc(inp), _hwc(out), _hwc(tgt), p)
            sample_paths.append(p)
        if self.tracker is not None:
            self.tracker.log_metrics(self._metric_items(entry), step=int(entry["epoch"]))
            for p in sample_paths:
                self.tracker.log_artifact(p, "samples")

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if trainer.is_global_zero and self.tracker is not None and self.tracker.run_id is not None:
            status = "KILLED" if isinstance(exception, KeyboardInterrupt) else "FAILED"
            try:
                self.tracker.end(status)
            except Exception:  # noqa: BLE001 - never hide the original error
                pass

    # -- helpers
    def _metric_items(self, entry: dict[str, Any]) -> dict[str, float]:
        """MLflow metrics of a history entry, plus ``tracking.metric_aliases`` copies (read from the run's params)."""
        keys = ("train_loss", "val_loss", "val_psnr", "val_ssim", "val_input_psnr", "val_input_ssim", "lr")
        out = {}
        for k in keys:
            if entry.get(k) is not None:
                out["learning_rate" if k == "lr" else k] = float(entry[k])
        prefix = "tracking.metric_aliases."
        for key, alias in (getattr(self, "params", None) or {}).items():
            if key.startswith(prefix) and key[len(prefix):] in out:
                out[alias] = out[key[len(prefix):]]
        return out

    def _write_files(self) -> None:
        hist = [{k: v for k, v in h.items() if not k.startswith("_")} for h in self.history]
        atomic_write_json(self.run_dir / HISTORY_FILE, {"epochs": hist})
        if hist:
            plot_history(hist, self.run_dir / CURVES_FILE)


def _hwc(t: torch.Tensor) -> Any:
    """(3,H,W) tensor -> (H,W,3) float32 numpy."""
    return t.detach().float().permute(1, 2, 0).cpu().numpy()
