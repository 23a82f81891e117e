"""One smoke contract per registry (losses, degradation ops, baselines), parametrised over
every registered name, so an entry added later is checked without writing a test for it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restorekit.degrade import OPS, OpConfig
from restorekit.degrade.ops import op_name
from restorekit.errors import ConfigError
from restorekit.evaluation.baselines import BASELINE_GROUPS, BASELINES, baseline_groups_of, resolve_baselines
from restorekit.losses import LOSSES, available_losses, build_term
from restorekit.losses.config import LossTerm
from restorekit.metrics.functional import psnr_batch
from restorekit.registry import Registry
from restorekit.utils.seed import sample_rng

#: losses that cannot be built without a weight file; checked for their clear error instead
NEEDS_WEIGHT_FILE = {"lpips": "needs the lpips package's v0.1/vgg.pth linear-layer weights (no download at run time)"}
#: arguments that let a loss run without weight files (the VGG of 'perceptual' randomly initialised)
LOSS_ARGS = {"perceptual": {"weights": "random"}}
#: ops that need arguments to be built
OP_ARGS = {"one_of": {"ops": [{"name": "gaussian_noise"}, {"name": "gaussian_blur"}]}}


def _crops(photo) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
    """(2, 3, 96, 96) pred/target pairs in [0, 1] from two real photos; pred = target + real-ish error."""
    tgt = np.stack([photo("astronaut", 96), photo("coffee", 96)])
    rng = np.random.default_rng(0)
    pred = np.clip(tgt + rng.normal(0, 0.05, tgt.shape).astype(np.float32), 0, 1)
    to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))  # noqa: E731
    return to_t(pred), to_t(tgt)


def test_registry_mapping_protocol():
    reg: Registry[int] = Registry("thing")
    reg.register("a", 1)
    assert reg["a"] == 1 and reg.get("zz", None) is None and "a" in reg and list(reg) == ["a"]
    with pytest.raises(ConfigError, match="unknown thing 'zz'; available: a"):
        reg["zz"]
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("a", 2)


# ----------------------------------------------------------------------------- losses


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_loss_is_a_finite_scalar_with_gradient(name, photo):
    if name in NEEDS_WEIGHT_FILE:
        with pytest.raises(ConfigError, match="weights"):
            build_term(LossTerm(name=name))
        pytest.skip(f"{name}: {NEEDS_WEIGHT_FILE[name]}")
    torch.manual_seed(0)
    loss_fn = build_term(LossTerm(name=name, args=LOSS_ARGS.get(name, {})))
    pred, target = _crops(photo)
    pred = pred.clone().requires_grad_(True)
    value = loss_fn(pred, target)
    assert value.ndim == 0 and torch.isfinite(value), f"{name}: {value}"
    value.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    assert pred.grad.abs().sum() > 0, f"{name}: zero gradient"
    if name != "tv":  # tv ignores the target: every other loss must be smaller for a perfect prediction
        exact = loss_fn(target.clone(), target)
        assert float(exact) < float(value.detach()), f"{name}: perfect prediction not better ({exact} vs {value})"


def test_loss_registry_lists_and_rejects():
    assert set(available_losses()) == set(LOSSES.names())
    with pytest.raises(ConfigError, match="unknown loss"):
        LOSSES["nope"]


# ----------------------------------------------------------------------------- degradation ops


def test_ops_registry_and_config_union_come_from_one_list():
    import typing

    from pydantic import TypeAdapter

    union_members = typing.get_args(typing.get_args(OpConfig)[0])
    assert OPS.names() == sorted(op_name(c) for c in union_members)
    adapter = TypeAdapter(OpConfig)
    for name in OPS.names():
        op = adapter.validate_python({"name": name, **OP_ARGS.get(name, {})})
        assert type(op) is OPS[name]


@pytest.mark.parametrize("name", OPS.names())
def test_every_op_keeps_shape_and_range_and_is_seeded(name, photo):
    img = photo("astronaut", 80)
    op = OPS[name].model_validate({"p": 1.0, **OP_ARGS.get(name, {})})
    out1, params1 = op(img, sample_rng(7, 0, 3))
    out2, params2 = op(img, sample_rng(7, 0, 3))
    assert out1.shape == img.shape and out1.dtype == np.float32
    assert float(out1.min()) >= 0.0 and float(out1.max()) <= 1.0
    assert params1 == params2 and np.array_equal(out1, out2), f"{name}: not deterministic for a seed"
    assert not np.array_equal(out1, img), f"{name}: did nothing at p=1"
    # another seed draws other parameters or another noise realisation (fixed ops aside)
    out3, params3 = op(img, sample_rng(8, 0, 3))
    assert params3 != params1 or not np.array_equal(out3, out1) or name in {"fade", "yellow_tint"}


# ----------------------------------------------------------------------------- baselines


def _degraded(group: str, clean: np.ndarray) -> np.ndarray:
    """A blurred (Gaussian sigma 1.5), noisy (sigma 0.06) or both version of ``clean``."""
    import cv2

    out = clean
    if "blur" in group:
        out = cv2.GaussianBlur(out, (0, 0), 1.5, borderType=cv2.BORDER_REFLECT_101)
    if "noise" in group:
        out = out + np.random.default_rng(1).normal(0, 0.06, out.shape).astype(np.float32)
    return np.clip(out, 0, 1).astype(np.float32)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    t = lambda x: torch.from_numpy(x.transpose(2, 0, 1)[None].copy())  # noqa: E731
    return float(psnr_batch(t(a), t(b))[0])


def test_every_baseline_has_a_degradation_group():
    assert sorted(BASELINE_GROUPS["all"]) == BASELINES.names()
    assert resolve_baselines("noise") == BASELINE_GROUPS["noise"]
    for name in BASELINES.names():
        assert baseline_groups_of(name), f"{name} belongs to no degradation group"


@pytest.mark.parametrize("name", BASELINES.names())
def test_every_baseline_keeps_or_improves_psnr_on_its_group(name, photo):
    clean = photo("camera", 128)
    for group in baseline_groups_of(name):
        noisy = _degraded(group, clean)
        out = BASELINES[name](noisy)
        assert out.shape == clean.shape and out.dtype == np.float32
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
        before, after = _psnr(noisy, clean), _psnr(out, clean)
        assert after >= before, f"{name} on {group}: {after:.2f} dB < input {before:.2f} dB"
