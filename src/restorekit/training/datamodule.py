"""LightningDataModule around ``restorekit.data.build_datasets``.

The training loader is rebuilt every epoch (``reload_dataloaders_every_n_epochs=1``)
so that the epoch's planned patch and batch size (progressive training) and the
dataset's ``set_epoch`` take effect, also in worker processes. Shuffling uses a
generator seeded by (seed, epoch), so a resumed run draws the same order.
Batches are dicts built by ``restorekit.data.collate``: ``"input"``/``"target"``
``(B,3,H,W)`` float32 RGB in [0, 1], ``"name"`` list of str, ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from restorekit.training.plan import EpochPlan, drop_last_for


def data_setting(data_cfg: Any, name: str, default: Any) -> Any:
    """A setting of the data section, or ``default`` when that kind of dataset has no such key."""
    value = getattr(data_cfg, name, None)
    return default if value is None else value


class RestorationDataModule(pl.LightningDataModule):
    """Train/val loaders for (input, target) restoration; datasets built once per process."""

    def __init__(
        self,
        data_cfg: Any,
        *,
        seed: int,
        run_dir: Path | None,
        plan: list[EpochPlan] | None = None,
        datasets: tuple[Dataset, Dataset] | None = None,
    ) -> None:
        super().__init__()
        self.data_cfg = data_cfg
        self.seed = int(seed)
        self.run_dir = run_dir
        self.plan = plan or []
        self.train_ds, self.val_ds = datasets if datasets is not None else (None, None)
        self.num_workers = int(data_setting(data_cfg, "num_workers", 0))
        self.batch_size = int(data_setting(data_cfg, "batch_size", 4))
        self.val_batch_size = int(data_setting(data_cfg, "val_batch_size", 1))

    def build(self) -> tuple[Dataset, Dataset]:
        """Build (or return) the (train, val) datasets."""
        if self.train_ds is None:
            from restorekit.data import build_datasets

            self.train_ds, self.val_ds = build_datasets(self.data_cfg, seed=self.seed, run_dir=self.run_dir)
        return self.train_ds, self.val_ds

    def setup(self, stage: str) -> None:
        self.build()

    def epoch_plan(self, epoch: int) -> EpochPlan | None:
        if not self.plan:
            return None
        return self.plan[min(epoch, len(self.plan) - 1)]

    def _collate(self):  # noqa: ANN202
        from restorekit.data import collate

        return collate

    def train_dataloader(self) -> DataLoader:
        ds = self.build()[0]
        epoch = int(self.trainer.current_epoch) if self.trainer is not None else 0
        ep = self.epoch_plan(epoch)
        batch = ep.batch_size if ep else self.batch_size
        if ep and ep.patch_size and hasattr(ds, "patch_size"):
            ds.patch_size = ep.patch_size
        if hasattr(ds, "set_epoch"):
            ds.set_epoch(epoch)
        world = self.trainer.world_size if self.trainer is not None else 1
        gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        return DataLoader(
            ds,
            batch_size=batch,
            shuffle=True,
            generator=gen,
            drop_last=drop_last_for(len(ds), batch, world),
            num_workers=self.num_workers,
            collate_fn=self._collate(),
            pin_memory=torch.cuda.is_available(),
            persistent_workers=False,
        )

    def val_dataloader(self) -> DataLoader:
        ds = self.build()[1]
        if hasattr(ds, "set_epoch"):
            ds.set_epoch(0)
        return DataLoader(
            ds,
            batch_size=self.val_batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=self._collate(),
            pin_memory=torch.cuda.is_available(),
        )
