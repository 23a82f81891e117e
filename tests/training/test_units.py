"""Schedules, epoch plans (accumulation, progressive patches), EMA and the forward dispatch."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from restorekit.training.ema import ema_update, make_ema_copy
from restorekit.training.forward import predict01, run_model
from restorekit.training.plan import Stage, accumulation_schedule, make_plan, total_steps
from restorekit.training.schedules import LRMultiplier, build_scheduler
from restorekit.models.spec import ModelCard, card_of, set_card


def test_cosine_with_warmup_endpoints():
    m = LRMultiplier("cosine", total_steps=110, warmup_steps=10, warmup_start_factor=0.1, min_factor=0.01)
    assert m(0) == pytest.approx(0.1)
    assert m(5) == pytest.approx(0.55)
    assert m(10) == pytest.approx(1.0)
    assert m(60) == pytest.approx(0.01 + 0.99 * 0.5)
    assert m(110) == pytest.approx(0.01)
    assert m(500) == pytest.approx(0.01)
    values = [m(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_constant_schedule_and_scheduler_state_roundtrip():
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=2e-4)
    sched = build_scheduler(opt, "constant", 100, base_lr=2e-4, warmup_steps=4, warmup_start_factor=0.25)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(5e-5) and lrs[4] == pytest.approx(2e-4) and lrs[5] == pytest.approx(2e-4)
    # the multiplier's settings travel in the scheduler's state (resume continues the same curve)
    state = sched.state_dict()
    opt2 = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=2e-4)
    sched2 = build_scheduler(opt2, "cosine", 5, base_lr=2e-4)
    sched2.load_state_dict(state)
    assert sched2.lr_lambdas[0].name == "constant" and sched2.last_epoch == 6


def test_plan_accumulation_reaches_effective_batch():
    plan = make_plan(n_samples=40, epochs=3, batch_size=4, patch_size=64, effective_batch_size=16)
    assert [p.accumulate for p in plan] == [4, 4, 4]
    assert [p.batches for p in plan] == [10, 10, 10]
    assert [p.steps for p in plan] == [3, 3, 3]  # ceil(10 / 4): Lightning steps on the epoch's last batch
    two_gpus = make_plan(n_samples=40, epochs=1, batch_size=4, patch_size=64, world_size=2, effective_batch_size=16)
    assert two_gpus[0].accumulate == 2 and two_gpus[0].batches == 5


def test_plan_progressive_stages_by_epoch_and_step():
    stages = [Stage(0, 32, 8), Stage(2, 48, 4), Stage(3, 64, 2)]
    plan = make_plan(n_samples=16, epochs=5, batch_size=8, patch_size=64, stages=stages, effective_batch_size=8)
    assert [(p.patch_size, p.batch_size, p.accumulate) for p in plan] == [
        (32, 8, 1), (32, 8, 1), (48, 4, 2), (64, 2, 4), (64, 2, 4)
    ]
    assert accumulation_schedule(plan) == {0: 1, 2: 2, 3: 4}
    by_step = make_plan(n_samples=16, epochs=4, batch_size=8, patch_size=64, unit="step",
                        stages=[Stage(0, 32, 8), Stage(3, 64, 4)])
    # 2 steps per epoch at batch 8: step 3 is first reached at the start of epoch 2
    assert [p.patch_size for p in by_step] == [32, 32, 64, 64]


def test_plan_max_steps_truncates():
    plan = make_plan(n_samples=20, epochs=10, batch_size=4, patch_size=32, max_steps=12)
    assert total_steps(plan) == 12 and len(plan) == 3


def test_ema_update_matches_formula():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    ema = make_ema_copy(net)
    assert all(not p.requires_grad for p in ema.parameters())
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
        net[1].running_mean.fill_(3.0)
    ema_update(ema, net, decay=0.9)
    for k, v in net.named_parameters():
        expected = 0.9 * before[k] + 0.1 * v
        assert torch.allclose(dict(ema.named_parameters())[k], expected, atol=1e-6)
    assert torch.all(ema[1].running_mean == 3.0)
    ema_update(ema, net, decay=0.0)
    assert torch.allclose(ema[0].weight, net[0].weight)


class _RawNet(nn.Module):
    def forward(self, rggb, cond, residual):  # noqa: ANN001, ANN201
        return residual + cond.view(-1, 1, 1, 1) * 0 + rggb.mean() * 0


def test_run_model_dispatch_and_value_range(photo):
    from restorekit.models import create_model

    img = torch.from_numpy(photo("astronaut", 32)).permute(2, 0, 1)[None]
    ident = nn.Identity()
    set_card(ident, ModelCard(arch="foreign", args={}, value_range="-1,1"))
    assert torch.equal(run_model(ident, img), img)
    # [0,1] in -> model sees [-1,1] -> back to [0,1]
    assert torch.allclose(predict01(ident, {"input": img}), img, atol=1e-6)
    seen = {}

    class Probe(nn.Module):
        def forward(self, x):  # noqa: ANN001, ANN201
            seen["min"], seen["max"] = float(x.min()), float(x.max())
            return x

    probe = Probe()
    set_card(probe, ModelCard(arch="foreign", args={}, value_range="-1,1"))
    predict01(probe, img)
    assert seen["min"] < -0.5 and seen["max"] > 0.5
    raw = {"rggb": torch.rand(1, 4, 16, 16), "cond": torch.ones(1, 1), "residual": img}
    assert torch.allclose(run_model(_RawNet(), raw), img)
    m = create_model("deblur_unet", base_ch=8)
    assert card_of(m).value_range == "-1,1"
    assert predict01(m, img).shape == img.shape
    with pytest.raises(KeyError):
        run_model(m, {"target": img})
    with torch.no_grad():
        assert math.isfinite(float(predict01(m, img).mean()))
