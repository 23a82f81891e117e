"""nafnet, nafnet_cond and student_unet: parameter counts, odd sizes, gradients, package round trip."""

from __future__ import annotations

import pytest
import torch

from restorekit.errors import ConfigError
import torch.nn.functional as F

from restorekit.models import create_model
from restorekit.models.layers import LayerNorm2d
from restorekit.models.loading import load_model
from restorekit.models.package import save_package
from restorekit.models.spec import ModelCard, card_of, set_card


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _randomise_scales(model: torch.nn.Module, seed: int = 0) -> None:
    """NAF blocks start with beta = gamma = 0 (identity); give them values so every path is exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".beta") or name.endswith(".gamma"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)


@pytest.mark.parametrize(
    "preset,expected",
    [("gopro-w32", 17_111_907), ("gopro-w64", 67_888_835), ("sidd-w64", 115_982_915)],
)
def test_nafnet_param_counts(preset: str, expected: int) -> None:
    # 17.11 M / 67.89 M / 115.98 M as published for the official models
    with torch.device("meta"):  # shapes only: no memory, no initialisation time
        m = create_model("nafnet", preset=preset)
    assert n_params(m) == expected


def test_student_and_deblur_param_counts() -> None:
    torch.set_default_device("meta")
    try:
        _check_counts()
    finally:
        torch.set_default_device(None)


def _check_counts() -> None:
    assert n_params(create_model("student_unet", preset="seed-legacy")) == 7_703_107
    assert n_params(create_model("student_unet", base_filters=64, depth=3)) == 7_703_107
    assert n_params(create_model("student_unet", base_filters=64, depth=4)) == 31_043_651
    assert n_params(create_model("deblur_unet")) == 8_636_451


def test_nafnet_official_key_layout() -> None:
    keys = set(create_model("nafnet", width=8, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1]).state_dict())
    for k in [
        "intro.weight", "ending.bias", "downs.0.weight", "ups.0.0.weight", "middle_blks.0.sca.1.weight",
        "encoders.1.0.conv1.weight", "encoders.0.0.conv5.bias", "decoders.0.0.norm1.weight",
        "decoders.1.0.norm2.bias", "encoders.0.0.beta", "encoders.0.0.gamma",
    ]:
        assert k in keys
    assert "ups.0.0.bias" not in keys  # the official up conv has no bias


def test_layernorm2d_matches_layer_norm() -> None:
    torch.manual_seed(0)
    ln = LayerNorm2d(6)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 6, 5, 7) * 3 + 1
    ref = F.layer_norm(x.permute(0, 2, 3, 1), (6,), ln.weight, ln.bias, eps=1e-6).permute(0, 3, 1, 2)
    assert torch.allclose(ln(x), ref, atol=1e-5)


@pytest.mark.parametrize("size", [(37, 29), (16, 16), (5, 9)])
def test_nafnet_odd_sizes_forward_backward(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    m = create_model("nafnet", width=8, middle_blk_num=1, enc_blk_nums=[1, 1, 1, 1], dec_blk_nums=[1, 1, 1, 1])
    _randomise_scales(m)
    x = torch.rand(2, 3, *size, requires_grad=True)
    y = m(x)
    assert y.shape == x.shape
    y.square().mean().backward()
    grads = [p.grad for p in m.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_nafnet_pads_with_zeros_like_official() -> None:
    """An odd-sized input gives the crop of the output on the zero-padded input (official check_image_size)."""
    torch.manual_seed(0)
    m = create_model("nafnet", width=8, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1]).eval()
    _randomise_scales(m)
    x = torch.rand(1, 3, 18, 21)
    with torch.no_grad():
        y = m(x)
        y_pad = m(F.pad(x, (0, 3, 0, 2)))
    assert torch.allclose(y, y_pad[..., :18, :21], atol=1e-6)


def test_nafnet_cond_shapes_residual_and_condition() -> None:
    torch.manual_seed(0)
    m = create_model("nafnet_cond", preset="small").eval()
    _randomise_scales(m)
    rggb = torch.rand(2, 4, 13, 11)
    res = torch.rand(2, 3, 26, 22)
    cond = torch.tensor([[0.1], [0.1]])
    with torch.no_grad():
        y = m(rggb, cond, res)
        y_shift = m(rggb, cond, res + 0.25)
        y_cond = m(rggb, torch.tensor([[0.9], [0.9]]), res)
    assert y.shape == (2, 3, 26, 22)
    # the output is residual + prediction: shifting the residual shifts the output exactly
    assert torch.allclose(y_shift - y, torch.full_like(y, 0.25), atol=1e-5)
    # the condition changes the prediction
    assert (y_cond - y).abs().max() > 1e-4
    # the first sample equals a batch of one (no cross-sample mixing)
    with torch.no_grad():
        y0 = m(rggb[:1], cond[:1], res[:1])
    assert torch.allclose(y0, y[:1], atol=1e-5)


def test_nafnet_cond_backward_odd() -> None:
    torch.manual_seed(1)
    m = create_model("nafnet_cond", preset="small")
    _randomise_scales(m)
    rggb = torch.rand(1, 4, 9, 15, requires_grad=True)
    out = m(rggb, torch.rand(1, 1), torch.rand(1, 3, 18, 30))
    out.mean().backward()
    assert rggb.grad is not None and rggb.grad.abs().sum() > 0
    assert m.conditioning_gen[0].weight.grad.abs().sum() > 0


def test_nafnet_cond_gamma_clip_wrapper() -> None:
    torch.manual_seed(2)
    m = create_model("nafnet_cond", preset="small", gamma=2.2).eval()
    rggb, res = torch.rand(1, 4, 8, 8), torch.rand(1, 3, 16, 16)
    c = torch.rand(1, 1)
    with torch.no_grad():
        y = m(rggb, c, res)
        pred = m.predict_residual(rggb ** (1 / 2.2), c)
    assert torch.allclose(y, (res ** (1 / 2.2) + pred).clamp(0, 1) ** 2.2, atol=1e-6)


@pytest.mark.parametrize("depth,legacy", [(4, False), (2, False), (4, True), (2, True)])
def test_student_unet_odd_sizes(depth: int, legacy: bool) -> None:
    torch.manual_seed(0)
    m = create_model("student_unet", base_filters=8, depth=depth, legacy_three_levels=legacy)
    levels = (3 if depth >= 3 else 2) if legacy else depth
    assert m.levels == levels
    x = torch.rand(2, 3, 35, 21, requires_grad=True)
    y = m(x)
    assert y.shape == x.shape
    y.mean().backward()
    assert all(p.grad is not None for p in m.parameters())


def test_student_unet_legacy_equals_depth3_on_multiples_of_16() -> None:
    torch.manual_seed(0)
    legacy = create_model("student_unet", base_filters=8, depth=4, legacy_three_levels=True).eval()
    d3 = create_model("student_unet", base_filters=8, depth=3).eval()
    d3.load_state_dict(legacy.state_dict())
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        assert torch.equal(legacy(x), d3(x))


@pytest.mark.parametrize(
    "name,kwargs,inputs",
    [
        ("nafnet", {"width": 8, "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1]}, lambda: (torch.rand(1, 3, 19, 23),)),
        ("student_unet", {"base_filters": 8, "depth": 3}, lambda: (torch.rand(1, 3, 19, 23),)),
        (
            "nafnet_cond",
            {"chans": [8, 16, 32], "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1], "middle_blk_num": 1},
            lambda: (torch.rand(1, 4, 10, 12), torch.rand(1, 1), torch.rand(1, 3, 20, 24)),
        ),
    ],
)
def test_package_round_trip(tmp_path, name, kwargs, inputs) -> None:
    torch.manual_seed(0)
    m = create_model(name, **kwargs).eval()
    _randomise_scales(m)
    if name == "student_unet":  # non-trivial BatchNorm statistics
        m.train()
        with torch.no_grad():
            m(torch.rand(4, 3, 32, 32))
        m.eval()
    path = save_package(m, tmp_path / f"{name}.safetensors", train_size=[64, 64])
    loaded = load_model(path)
    args = inputs()
    with torch.no_grad():
        assert torch.equal(m(*args), loaded(*args))
    assert card_of(loaded).arch == name and not loaded.training
    assert card_of(loaded).train_size == (64, 64)


def test_student_unet_global_residual_starts_from_the_input(photo) -> None:
    """With the head zeroed, a residual student is exactly the identity; the plain one outputs zeros."""
    x = torch.from_numpy(photo("astronaut", 40).transpose(2, 0, 1))[None]
    res = create_model("student_unet", base_filters=8, depth=3, global_residual=True).eval()
    plain = create_model("student_unet", base_filters=8, depth=3).eval()
    for m in (res, plain):
        torch.nn.init.zeros_(m.final.weight)
        torch.nn.init.zeros_(m.final.bias)
    with torch.no_grad():
        assert torch.equal(res(x), x)
        assert torch.count_nonzero(plain(x)) == 0
    assert n_params(res) == n_params(plain)  # same weights, same state-dict keys


def test_deblur_unet_residual_adds_the_input(photo) -> None:
    """``residual=True`` keeps the seed's weights and keys and adds the input to the output."""
    x = torch.from_numpy(photo("coffee", 36).transpose(2, 0, 1))[None] * 2 - 1  # the model's [-1, 1] range
    seed = create_model("deblur_unet", base_ch=8).eval()
    res = create_model("deblur_unet", base_ch=8, residual=True).eval()
    res.load_state_dict(seed.state_dict())  # same keys, same shapes
    with torch.no_grad():
        assert torch.allclose(res(x), seed(x) + x, atol=1e-6)
    with pytest.raises(ConfigError, match="in_ch == out_ch"):
        create_model("deblur_unet", in_ch=4, out_ch=3, residual=True)
