"""Loss values on hand-computable cases, gradients, and the builder."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from skimage.metrics import structural_similarity as sk_ssim

from restorekit.errors import ConfigError, RestoreKitError
from restorekit.losses import (
    LOSS_PRESETS,
    FeatureDistillation,
    LossTerm,
    NonFiniteLossError,
    build_loss,
    check_finite,
    loss_preset,
)
from restorekit.losses.pixel import CharbonnierLoss, FFTLoss, PSNRLoss, TVLoss
from restorekit.losses.structural import MSSSIMLoss, ShadowAwareLoss, SSIMLoss, shadow_weight
from restorekit.metrics.functional import MS_SSIM_WEIGHTS

# values of losses that carry gradients are read with float(): harmless here
pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")


def _const(v: float, shape=(2, 3, 16, 16), grad: bool = False) -> torch.Tensor:
    t = torch.full(shape, float(v), dtype=torch.float64)
    return t.requires_grad_(grad)


def _single(name: str, **args) -> nn.Module:
    return build_loss([LossTerm(name=name, args=args)])


def test_pixel_losses_on_constant_offset() -> None:
    p, t = _const(0.5, grad=True), _const(0.25)
    for name, expected in [("l1", 0.25), ("mse", 0.0625), ("charbonnier", math.sqrt(0.0625 + 1e-6))]:
        total, parts = _single(name)(p, t)
        assert float(total.detach()) == pytest.approx(expected, rel=1e-6)
        assert float(parts[name]) == pytest.approx(expected, rel=1e-6)
    # eps configurable
    assert float(CharbonnierLoss(eps=0.1)(p, t).detach()) == pytest.approx(math.sqrt(0.0625 + 0.01))


def test_pixel_loss_gradients_match_formulas() -> None:
    torch.manual_seed(0)
    p = torch.rand(1, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    t = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    n = p.numel()
    d = (p - t).detach()
    for name, grad in [
        ("l1", torch.sign(d) / n),
        ("mse", 2 * d / n),
        ("charbonnier", d / torch.sqrt(d**2 + 1e-6) / n),
    ]:
        p.grad = None
        total, _ = _single(name)(p, t)
        total.backward()
        assert torch.allclose(p.grad, grad, atol=1e-12), name


def test_psnr_loss_is_minus_psnr() -> None:
    p, t = _const(0.6, grad=True), _const(0.5)  # mse = 0.01 -> 20 dB
    loss = PSNRLoss()(p, t)
    assert float(loss) == pytest.approx(-20.0, abs=1e-5)
    loss.backward()
    # d/dp [10/ln10 * ln(mean d^2)] = 10/ln10 * 2 d / (n * mse)
    n = p[0].numel()
    expected = 10 / math.log(10) * 2 * 0.1 / (n * 0.01) / 2  # batch of 2 averaged
    assert float(p.grad[0, 0, 0, 0]) == pytest.approx(expected, rel=1e-4)
    # Y variant: equal offsets on all channels -> Y offset = 0.1 * (65.481+128.553+24.966)/255
    dy = 0.1 * 219.0 / 255.0
    assert float(PSNRLoss(to_y=True)(p, t)) == pytest.approx(10 * math.log10(dy**2), abs=1e-4)


def test_tv_on_stripes() -> None:
    x = torch.zeros(1, 1, 4, 6, dtype=torch.float64)
    x[..., 1::2] = 1.0  # vertical stripes: every horizontal step changes by 1, vertical steps by 0
    x.requires_grad_(True)
    loss = TVLoss()(x)
    assert float(loss) == pytest.approx(1.0)
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_fft_loss_constant_offset_hits_only_dc() -> None:
    h, w, c = 8, 8, 0.1
    p, t = _const(0.5 + c, (1, 3, h, w), grad=True), _const(0.5, (1, 3, h, w))
    loss = FFTLoss()(p, t)
    # only DC differs, by c*sqrt(HW) (real part); mean over 3*H*(W//2+1)*2 values
    expected = 3 * c * math.sqrt(h * w) / (3 * h * (w // 2 + 1) * 2)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert torch.isfinite(p.grad).all()


def test_ssim_loss_matches_skimage_and_value_ranges(photo) -> None:
    t = photo("astronaut", 64)
    p = np.clip(t + np.random.default_rng(0).normal(0, 0.05, t.shape), 0, 1).astype(np.float32)
    ref = sk_ssim(p, t, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
    tp = torch.from_numpy(p).permute(2, 0, 1)[None].double().requires_grad_(True)
    tt = torch.from_numpy(t).permute(2, 0, 1)[None].double()
    loss = SSIMLoss()(tp, tt)
    assert float(loss) == pytest.approx(1 - ref, abs=1e-6)
    loss.backward()
    assert torch.isfinite(tp.grad).all() and tp.grad.abs().sum() > 0
    # [-1,1] inputs give the same value
    loss_pm = SSIMLoss(value_range="-1,1")(tp.detach() * 2 - 1, tt * 2 - 1)
    assert float(loss_pm) == pytest.approx(float(loss), abs=1e-9)
    assert float(SSIMLoss()(tt, tt)) == pytest.approx(0.0, abs=1e-9)


def test_ms_ssim_loss_256_and_small_patches(photo) -> None:
    t = torch.from_numpy(photo("astronaut", 256)).permute(2, 0, 1)[None]
    torch.manual_seed(0)
    p = (t + 0.05 * torch.randn_like(t)).clamp(0, 1).requires_grad_(True)
    loss = MSSSIMLoss()(p, t)
    assert 0.0 < float(loss) < 0.5
    loss.backward()
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    assert float(MSSSIMLoss()(t, t)) == pytest.approx(0.0, abs=1e-5)
    for size in (64, 32, 12, 6):  # fewer scales, then a shrunken window
        ps = p.detach()[..., :size, :size].clone().requires_grad_(True)
        v = MSSSIMLoss()(ps, t[..., :size, :size])
        v.backward()
        assert 0.0 < float(v) < 1.0 and torch.isfinite(ps.grad).all(), size
    pm = MSSSIMLoss(value_range="-1,1")(p.detach() * 2 - 1, t * 2 - 1)
    assert float(pm) == pytest.approx(float(loss), abs=1e-5)


def test_shadow_loss_hand_computed_on_flat_images() -> None:
    a, b = 0.5, 0.25  # pred, target (linear)
    p, t = _const(a, (1, 3, 256, 256), grad=True), _const(b, (1, 3, 256, 256))
    ga, gb = a ** (1 / 2.2), b ** (1 / 2.2)
    w = 0.2 + 0.8 * math.exp(-5 * gb)  # luminance of a grey = its value
    c1 = 0.01**2
    lum = (2 * ga * gb + c1) / (ga**2 + gb**2 + c1)  # flat images: contrast-structure = 1
    weights = np.array(MS_SSIM_WEIGHTS) / sum(MS_SSIM_WEIGHTS)
    ms = lum ** weights[-1]
    expected = 0.16 * w * abs(ga - gb) + 0.84 * (1 - ms)
    loss = ShadowAwareLoss()(p, t)
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert torch.isfinite(p.grad).all()
    # weight: 1 in black, 0.2 + 0.8 e^-5 in white
    wt = shadow_weight(torch.stack([torch.zeros(3, 1, 1), torch.ones(3, 1, 1)]))
    assert wt.flatten().tolist() == pytest.approx([1.0, 0.2 + 0.8 * math.exp(-5)])


def test_perceptual_loss_random_weights_and_torchvision_file(tmp_path, monkeypatch) -> None:
    from restorekit.losses.vgg import build_vgg_features, layer_names

    torch.manual_seed(0)
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    y = torch.rand(1, 3, 32, 32)
    loss_mod = _single("perceptual", weights="random", layers=["relu1_2", "relu2_2"])
    total, parts = loss_mod(x, y)
    assert float(total) > 0
    total.backward()
    assert x.grad.abs().sum() > 0
    assert float(loss_mod(y, y)[0]) == 0.0
    assert not any(p.requires_grad for p in loss_mod.terms[0].extractor.parameters())
    # torchvision-format file (features.* + classifier.*) loads through a path and through TORCH_HOME's hub cache
    net = build_vgg_features("vgg16", ["relu2_2"], "random")
    state = {k: v.clone() + 0.01 for k, v in net.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    state["features.28.weight"] = torch.zeros(512, 512, 3, 3)  # beyond relu2_2: ignored
    path = tmp_path / "vgg16-397923af.pth"
    torch.save(state, path)
    loaded = build_vgg_features("vgg16", ["relu2_2"], str(path))
    assert torch.equal(loaded.features[0].weight, state["features.0.weight"])
    assert list(loaded.state_dict()) == ["features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias",
                                          "features.5.weight", "features.5.bias", "features.7.weight", "features.7.bias"]
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    with pytest.raises(ConfigError, match="vgg16-397923af.pth.*download|download.*vgg16-397923af.pth"):
        _single("perceptual")
    hub = tmp_path / "th" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(state, hub / "vgg16-397923af.pth")
    from_hub = _single("perceptual")
    assert torch.equal(from_hub.terms[0].extractor.features[0].weight, state["features.0.weight"])
    assert "relu5_4" in layer_names("vgg19") and "relu5_4" not in layer_names("vgg16")
    with pytest.raises(ConfigError, match="relu9_9"):
        _single("perceptual", weights="random", layers=["relu9_9"])


def test_lpips_with_local_weight_files(tmp_path) -> None:
    torch.manual_seed(0)
    lin = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate((64, 128, 256, 512, 512))}
    path = tmp_path / "vgg.pth"
    torch.save(lin, path)
    mod = _single("lpips", weights=str(path), backbone_weights="random")
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert float(mod(x, x)[0]) == pytest.approx(0.0, abs=1e-7)
    assert float(mod(x, y)[0]) > 0
    with pytest.raises(ConfigError, match="weights"):
        _single("lpips")
    with pytest.raises(ConfigError, match="not found"):
        _single("lpips", weights=str(tmp_path / "missing.pth"))


def test_teacher_terms_and_parts() -> None:
    p, t, teacher = _const(0.5, grad=True), _const(0.25), _const(0.4)
    loss = build_loss(
        [
            {"name": "l1", "weight": 1.0},
            {"name": "kd_output", "weight": 2.0},
            {"name": "mse", "weight": 0.5, "target": "teacher"},
            {"name": "l1", "weight": 1.0},
        ]
    )
    total, parts = loss(p, t, teacher=teacher)
    assert set(parts) == {"l1", "kd_output", "mse@teacher", "l1#2"}
    assert float(parts["kd_output"]) == pytest.approx(0.1)
    assert float(total) == pytest.approx(0.25 + 2 * 0.1 + 0.5 * 0.01 + 0.25)
    total.backward()
    with pytest.raises(RestoreKitError, match="teacher"):
        loss(p, t)


def test_presets_and_config_errors() -> None:
    assert set(LOSS_PRESETS) >= {"deblur", "raw", "distill", "manuscript"}
    deblur = build_loss(loss_preset("deblur"))
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    total, parts = deblur(x, x.detach())
    assert float(total) == pytest.approx(0.16 * 1e-3, abs=1e-5)  # MS-SSIM 1, Charbonnier = eps
    assert set(parts) == {"ms_ssim", "charbonnier"}
    with pytest.raises(ConfigError, match="epz"):
        build_loss([{"name": "charbonnier", "args": {"epz": 1}}])
    with pytest.raises(ConfigError, match="nope"):
        build_loss([{"name": "nope"}])
    with pytest.raises(ConfigError):
        build_loss([])
    with pytest.raises(ConfigError, match="value_range"):
        build_loss([{"name": "ssim", "args": {"value_range": "0,255"}}])


def test_check_finite_names_step_and_batch() -> None:
    check_finite(torch.tensor(1.5), step=3, batch_idx=1)
    with pytest.raises(NonFiniteLossError, match=r"step 12, batch 4.*ms_ssim=nan"):
        check_finite(torch.tensor(float("nan")), 12, 4, parts={"ms_ssim": torch.tensor(float("nan")), "l1": torch.tensor(0.1)})
    with pytest.raises(RestoreKitError, match="inf at step 0, batch 0"):
        check_finite(float("inf"), 0, 0)


class _Tiny(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.enc = nn.Conv2d(3, ch, 3, padding=1)
        self.down = nn.Conv2d(ch, ch, 3, stride=2, padding=1)
        self.out = nn.Conv2d(ch, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.down(self.enc(x)))


def test_feature_distillation_hooks_and_adapter() -> None:
    torch.manual_seed(0)
    student, teacher = _Tiny(4), _Tiny(8)
    fd = FeatureDistillation(student, teacher, "enc", "down", 4, 8)
    x = torch.rand(2, 3, 16, 16)
    student(x)
    with torch.no_grad():
        teacher(x)
    loss = fd()  # student enc is 16x16, teacher down 8x8: resized
    assert float(loss) > 0
    loss.backward()
    assert fd.adapter.weight.grad.abs().sum() > 0
    assert student.enc.weight.grad.abs().sum() > 0
    with pytest.raises(RuntimeError):
        fd()
    fd.remove()
    with pytest.raises(ConfigError, match="missing"):
        FeatureDistillation(student, teacher, "missing", "down", 4, 8)
