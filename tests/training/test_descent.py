"""A few optimiser steps of the real training module must reduce the loss on a fixed batch.

Guards against a sign error anywhere between the loss and the update (gradient ascent, a
negated loss, ``maximize=True``): the Lightning module, its optimizer and scheduler are
driven by a real ``pl.Trainer`` on the same batch every step.
"""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader

from restorekit.data import build_datasets, collate
from restorekit.training.config import parse_run_config
from restorekit.training.engine import build_model
from restorekit.training.module import RestorationModule

STEPS = 25


class _Same(torch.utils.data.Dataset):
    def __init__(self, batch: dict, n: int) -> None:
        self.batch, self.n = batch, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        return self.batch


@pytest.mark.slow  # ~15 s on an idle machine (a real Trainer), minutes on a loaded one
def test_training_steps_reduce_the_loss_on_a_fixed_batch(tiny_config):
    tiny_config["schedule"] = {"name": "constant"}
    tiny_config["train"]["grad_clip"] = 1.0
    cfg = parse_run_config(tiny_config, "tiny")
    torch.manual_seed(0)
    train_ds, _ = build_datasets(cfg.data, seed=0)
    batch = collate([train_ds[i] for i in range(cfg.data.batch_size)])
    module = RestorationModule(cfg, build_model(cfg), total_steps=STEPS)

    def loss_now() -> float:
        module.model.eval()
        with torch.no_grad():
            loss, _ = module._loss(module.predict(module.model, batch), batch)
        module.model.train()
        return float(loss)

    before = loss_now()
    loader = DataLoader(_Same(batch, STEPS), batch_size=None, collate_fn=None)
    trainer = pl.Trainer(max_steps=STEPS, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(module, train_dataloaders=loader)
    after = loss_now()
    assert trainer.global_step == STEPS
    assert after < 0.8 * before, (before, after)
