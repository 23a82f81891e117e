"""restormer and vit_restorer: parameter counts, key layout, odd sizes, size handling."""

from __future__ import annotations

import pytest
import torch

from restorekit.models import create_model
from restorekit.models.info import count_params


def test_restormer_defaults_param_count_and_keys() -> None:
    with torch.device("meta"):  # shapes only: fast, no memory
        m = create_model("restormer")
        bf = create_model("restormer", preset="denoising")
    assert count_params(m) == 26_126_644  # 26.13 M as published
    keys = set(m.state_dict())
    for k in ["patch_embed.proj.weight", "encoder_level1.0.norm1.body.weight", "encoder_level1.0.norm1.body.bias",
              "latent.7.attn.temperature", "decoder_level1.3.ffn.project_in.weight", "reduce_chan_level3.weight",
              "refinement.3.attn.qkv_dwconv.weight", "down1_2.body.0.weight", "up4_3.body.0.weight", "output.weight"]:
        assert k in keys
    assert tuple(m.state_dict()["latent.0.attn.temperature"].shape) == (8, 1, 1)
    assert "encoder_level1.0.norm1.body.bias" not in bf.state_dict()
    assert count_params(bf) < count_params(m)


@pytest.mark.parametrize("ln", ["WithBias", "BiasFree"])
def test_restormer_odd_sizes(ln: str) -> None:
    torch.manual_seed(0)
    m = create_model("restormer", preset="tiny", LayerNorm_type=ln)
    x = torch.rand(1, 3, 21, 13, requires_grad=True)
    y = m(x)
    assert y.shape == x.shape
    y.mean().backward()
    assert all(p.grad is not None for p in m.parameters())


def test_biasfree_norm_does_not_subtract_mean() -> None:
    from restorekit.models.restormer import BiasFreeLayerNorm, WithBiasLayerNorm

    x = torch.randn(4, 10) + 3.0
    bf, wb = BiasFreeLayerNorm(10), WithBiasLayerNorm(10)
    assert torch.allclose(bf(x), x / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + 1e-5), atol=1e-6)
    assert torch.allclose(wb(x), torch.nn.functional.layer_norm(x, (10,), eps=1e-5), atol=1e-5)


@pytest.mark.parametrize("preset,expected", [("base", 86_433_813), ("small", None), ("tiny", None)])
def test_vit_param_counts(preset: str, expected: int | None) -> None:
    with torch.device("meta"):
        m = create_model("vit_restorer", preset=preset)
    n = count_params(m)
    if expected is not None:
        assert n == expected
    dim = {"base": 768, "small": 384, "tiny": 192}[preset]
    # 12 blocks of 12 d^2 + 13 d params each, patch embed, pos embed, norm, decoder, skip fusion
    blocks = 12 * (12 * dim * dim + 13 * dim)
    assert n == blocks + (3 * 256 * dim + dim) + 256 * dim + 2 * dim + (dim * 768 + 768) + (6 * 3 + 3)


def test_vit_heads_and_sizes() -> None:
    torch.manual_seed(0)
    kw = {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 4, "dropout": 0.0}
    repo = create_model("vit_restorer", **kw).eval()
    kaggle = create_model("vit_restorer", use_simple_head=True, **kw).eval()
    assert "head.weight" in kaggle.state_dict() and "patch_recon.proj.weight" in repo.state_dict()
    sd = {k.replace("patch_recon.proj.", "head."): v for k, v in repo.state_dict().items()}
    kaggle.load_state_dict(sd)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(repo(x), kaggle(x))
        odd = torch.rand(1, 3, 45, 40)
        y_int = repo(odd)
        repo.size_mode = "tile"
        y_tile = repo(odd)
        # pixels covered by the top-left tile only equal the native forward on that crop (weights cancel)
        crop = repo.forward_native(odd[:, :, :32, :32])
        small = repo(torch.rand(1, 3, 20, 17))
    assert y_int.shape == y_tile.shape == (1, 3, 45, 40) and small.shape == (1, 3, 20, 17)
    assert torch.allclose(y_tile[:, :, :8, :8], crop[:, :, :8, :8], atol=1e-5)
    # patch-aligned 16x16 pixels lie in one position-embedding cell: both modes are finite and differ from input
    assert torch.isfinite(y_int).all() and torch.isfinite(y_tile).all()


def test_vit_backward_odd() -> None:
    m = create_model("vit_restorer", img_size=32, patch_size=8, embed_dim=48, depth=1, num_heads=2)
    x = torch.rand(1, 3, 37, 29, requires_grad=True)
    m(x).mean().backward()
    assert x.grad is not None and m.pos_embed.grad is not None and m.pos_embed.grad.abs().sum() > 0
