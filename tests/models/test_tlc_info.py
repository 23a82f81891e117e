"""TLC local pooling, MAC counting and the `restorekit models` command."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from restorekit.models import create_model, disable_tlc, enable_tlc
from restorekit.models.info import count_macs, count_params
from restorekit.models.layers import ChannelPool, local_box_mean


def _scales(model: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("beta") or n.endswith("gamma"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model.eval()


def test_local_box_mean_matches_official_definition() -> None:
    """Official TLC: mean over valid k x k windows, replicate-padded back to the input size."""
    x = torch.rand(2, 5, 23, 31) * 10 + 100  # large offset: the integral image must stay accurate
    for kh, kw in [(7, 9), (8, 8), (23, 1), (1, 31)]:
        ref = F.avg_pool2d(x, (kh, kw), stride=1)
        oh, ow = ref.shape[-2:]
        ref = F.pad(ref, ((31 - ow) // 2, (31 - ow + 1) // 2, (23 - oh) // 2, (23 - oh + 1) // 2), mode="replicate")
        assert torch.allclose(local_box_mean(x, kh, kw), ref, atol=2e-4)


def test_channel_pool_falls_back_to_global() -> None:
    pool = ChannelPool()
    x = torch.rand(1, 3, 10, 12)
    pool.kernel = (10, 12)
    assert torch.equal(pool(x), x.mean((2, 3), keepdim=True))
    pool.kernel = (15, 18)
    assert pool(x).shape == (1, 3, 1, 1)
    pool.kernel = (4, 4)
    assert pool(x).shape == (1, 3, 10, 12)


def test_enable_tlc_nafnet_same_at_train_size_local_above() -> None:
    torch.manual_seed(0)
    m = _scales(create_model("nafnet", preset="tiny", width=8))
    x = torch.rand(1, 3, 64, 64)
    big = torch.rand(1, 3, 144, 112)
    with torch.no_grad():
        y_global, big_global = m(x), m(big)
        enable_tlc(m, train_size=(64, 64))
        kernels = [p.kernel for p in m.encoders.modules() if isinstance(p, ChannelPool)]
        assert kernels == [(96, 96), (48, 48), (24, 24), (12, 12)]  # 1.5x the training feature size per level
        # at the training size every window covers the feature map: identical to global pooling
        assert torch.equal(m(x), y_global)
        big_tlc = m(big)
        assert (big_tlc - big_global).abs().max() > 1e-4
        disable_tlc(m)
        assert torch.equal(m(big), big_global)


def test_enable_tlc_nafnet_cond() -> None:
    torch.manual_seed(1)
    m = _scales(create_model("nafnet_cond", preset="small"))
    args = (torch.rand(1, 4, 32, 32), torch.rand(1, 1), torch.rand(1, 3, 64, 64))
    big = (torch.rand(1, 4, 80, 64), torch.rand(1, 1), torch.rand(1, 3, 160, 128))
    with torch.no_grad():
        y, yb = m(*args), m(*big)
        enable_tlc(m, 64)
        assert torch.equal(m(*args), y)
        assert (m(*big) - yb).abs().max() > 1e-5


def test_count_macs_convention() -> None:
    class Toy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
            self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
            self.fc = nn.Linear(4, 6)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.up(self.dw(self.conv(x)))  # (B, 4, 2H, 2W)
            t = self.fc(y.flatten(2).transpose(1, 2))  # (B, N, 6)
            a = t @ t.transpose(1, 2)  # (B, N, N)
            return torch.einsum("bnm,bmc->bnc", a, t)

    b, h, w = 2, 5, 7
    n = 4 * h * w
    expected = (
        b * 8 * h * w * 3 * 9  # conv
        + b * 8 * h * w * 1 * 9  # depthwise
        + b * 8 * h * w * 4 * 4  # transposed conv: every input feeds out * k*k outputs
        + b * n * 4 * 6  # linear
        + b * n * n * 6  # matmul
        + b * n * n * 6  # einsum
    )
    assert count_macs(Toy(), (b, 3, h, w)) == expected


def test_nafnet_gopro_macs_and_params() -> None:
    with torch.device("meta"):  # MACs need shapes only
        m = create_model("nafnet", preset="gopro-w32")
    assert count_params(m) == 17_111_907
    macs = count_macs(m, (1, 3, 256, 256))
    assert 15.5e9 < macs < 16.5e9  # published: 16.1 GMACs
    assert macs == 15_956_027_392


def test_cli_models_list_and_info(tmp_path, capsys) -> None:
    from restorekit.cli.main import main

    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for name in ["nafnet", "nafnet_cond", "student_unet", "restormer", "vit_restorer", "deblur_unet"]:
        assert name in out
    assert main(["models", "info", "nafnet", "--preset", "tiny", "--size", "64", "64", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    tiny = create_model("nafnet", preset="tiny")
    assert info["params"] == count_params(tiny) and info["macs"] == count_macs(tiny, (1, 3, 64, 64))
    small = create_model("student_unet", base_filters=8, depth=2)
    path = tmp_path / "student.pth"
    torch.save({"model_state_dict": small.state_dict()}, path)
    assert main(["models", "info", str(path), "--size", "64", "48"]) == 0
    text = capsys.readouterr().out
    assert f"{count_params(small):,}" in text and "1x64x48" in text
    assert main(["models", "info", "no_such_model"]) == 2
    assert "no_such_model" in capsys.readouterr().err
