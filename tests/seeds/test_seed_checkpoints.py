"""Checkpoints written exactly as each seed project writes them load with ``restorekit.load_model`` and reproduce
the seed model's output; ``export --format seed`` writes files the seeds' own modules load strictly."""

from __future__ import annotations

import importlib.util
import os
import pathlib

import numpy as np
import pytest
import torch

import restorekit
from restorekit.errors import CheckpointError
from restorekit.export import export_model
from restorekit.export.seed import SeedExportError
from restorekit.models.loading import read_checkpoint
from restorekit.models.package import save_package
from restorekit.models.registry import create_model
from restorekit.models.spec import args_of, card_of

_spec = importlib.util.spec_from_file_location("seed_modules", pathlib.Path(__file__).with_name("seed_modules.py"))
sm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sm)  # type: ignore[union-attr]


def _photo_tensor(photo, h: int, w: int, lo: float = 0.0) -> torch.Tensor:
    """A crop of scikit-image's astronaut photo as (1, 3, h, w), scaled to [lo, 1]."""
    photo = photo("astronaut", 128)
    x = torch.from_numpy(np.ascontiguousarray(photo[:h, :w])).permute(2, 0, 1)[None].float()
    return lo + (1 - lo) * x


def _optimizer_state(model: torch.nn.Module) -> dict:
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=1e-4)
    model(torch.rand(1, 3, 32, 32)).mean().backward() if not isinstance(model, sm.SeedModelWrapper) else None
    if not isinstance(model, sm.SeedModelWrapper):
        opt.step()
    return opt.state_dict()


# ----------------------------------------------------------------------------- deblurring U-Net


@pytest.fixture()
def seed_deblur():
    torch.manual_seed(0)
    m = sm.SeedDeblurUNet(base_ch=8)
    sm.randomize_norm_stats(m)
    return m.eval()


def test_deblur_seed_best_checkpoint_loads_and_matches(tmp_path, seed_deblur, photo):
    state = seed_deblur.state_dict()
    assert "enc1.conv1.weight" in state and "up1.conv.norm2.bias" in state  # the seed's own key names
    path = tmp_path / "best_model_epoch_7_psnr_27.41.pth"
    torch.save({"epoch": 7, "model_state_dict": state, "optimizer_state_dict": _optimizer_state(seed_deblur),
                "psnr": np.float64(27.41), "ssim": np.float64(0.8743), "train_loss": 0.061, "val_loss": 0.058}, path)
    seed_deblur.eval()
    model = restorekit.load_model(path)
    assert card_of(model).arch == "deblur_unet" and args_of(model)["base_ch"] == 8
    x = _photo_tensor(photo, 64, 96) * 2 - 1  # the seed normalises to [-1, 1]
    with torch.no_grad():
        ref, got = seed_deblur(x), model(x)
    assert float((ref - got).abs().max()) < 1e-4
    ck = read_checkpoint(path)
    assert isinstance(ck.extras["psnr"], np.floating) and float(ck.extras["psnr"]) == pytest.approx(27.41)


def test_deblur_block_layout_packages_still_load(tmp_path, photo):
    torch.manual_seed(1)
    m = create_model("deblur_unet", base_ch=8).eval()
    assert "enc1.block.0.weight" in m.state_dict()
    save_package(m, tmp_path / "m.safetensors")
    back = restorekit.load_model(tmp_path / "m.safetensors")
    x = _photo_tensor(photo, 48, 48) * 2 - 1
    with torch.no_grad():
        assert float((m(x) - back(x)).abs().max()) == 0.0


def test_deblur_export_seed_roundtrip(tmp_path, photo):
    torch.manual_seed(2)
    m = create_model("deblur_unet", base_ch=8).eval()
    sm.randomize_norm_stats(m)
    res = export_model(m, tmp_path / "for_seed.pth", "seed")
    assert res.max_abs_diff is not None and res.max_abs_diff < 1e-4
    obj = torch.load(tmp_path / "for_seed.pth", weights_only=True)
    seed = sm.SeedDeblurUNet(base_ch=8).eval()
    seed.load_state_dict(obj["model_state_dict"], strict=True)  # the seed's inference script does exactly this
    x = _photo_tensor(photo, 64, 64) * 2 - 1
    with torch.no_grad():
        assert float((seed(x) - m(x)).abs().max()) < 1e-4
    with pytest.raises(SeedExportError, match="residual"):
        export_model(create_model("deblur_unet", base_ch=8, residual=True), tmp_path / "r.pth", "seed")


# ----------------------------------------------------------------------------- manuscript ViT


@pytest.mark.parametrize("kaggle,heads_key", [(False, "heads"), (True, "num_heads")])
def test_vit_seed_checkpoint_uses_its_config_heads(tmp_path, photo, kaggle, heads_key):
    torch.manual_seed(3)
    seed = sm.SeedViTRestorer(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4, kaggle=kaggle)
    sm.randomize_norm_stats(seed)
    seed.eval()
    path = tmp_path / "best_psnr.pth"
    opt = torch.optim.AdamW(seed.parameters(), lr=1e-4, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 100)
    cfg = {"img_size": 32, "embed_dim": 32, "depth": 2, heads_key: 4, "use_skip": True}
    torch.save({"epoch": 12, "model_state_dict": seed.state_dict(), "optimizer_state_dict": opt.state_dict(),
                "scheduler_state_dict": sched.state_dict(), "best_val_psnr": np.float64(24.8), "config": cfg}, path)
    model = restorekit.load_model(path)
    assert args_of(model)["num_heads"] == 4 and args_of(model)["use_simple_head"] is kaggle
    x = _photo_tensor(photo, 32, 32)
    with torch.no_grad():
        ref = seed(x)
        assert float((ref - model(x)).abs().max()) < 1e-4
        # the head count matters: a wrong guess (the old width rule) changes the output
        wrong = restorekit.load_model(path, num_heads=1)
        assert float((ref - wrong(x)).abs().max()) > 1e-3


@pytest.mark.parametrize("kaggle", [False, True])
def test_vit_export_seed_loads_in_the_seed_module(tmp_path, photo, kaggle):
    """``export --format seed`` of a vit_restorer writes ``{'epoch', 'model_state_dict', 'config'}`` that the
    manuscript seed's ViTRestorer, built from that config, loads strictly and runs to the same output."""
    torch.manual_seed(4)
    m = create_model("vit_restorer", img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4,
                     use_simple_head=kaggle).eval()
    sm.randomize_norm_stats(m)
    res = export_model(m, tmp_path / "desti.pth", "seed")
    assert res.max_abs_diff is not None and res.max_abs_diff < 1e-4
    obj = torch.load(tmp_path / "desti.pth", weights_only=True)
    cfg = obj["config"]
    assert cfg["heads"] == cfg["num_heads"] == 4 and cfg["img_size"] == 32 and cfg["embed_dim"] == 32
    seed = sm.SeedViTRestorer(img_size=cfg["img_size"], patch_size=cfg["patch_size"], embed_dim=cfg["embed_dim"],
                              depth=cfg["depth"], num_heads=cfg["heads"], mlp_ratio=cfg["mlp_ratio"],
                              use_skip=cfg["use_skip"], kaggle=kaggle).eval()
    seed.load_state_dict(obj["model_state_dict"], strict=True)
    x = _photo_tensor(photo, 32, 32)
    with torch.no_grad():
        assert float((seed(x) - m(x)).abs().max()) < 1e-4
    again = restorekit.load_model(tmp_path / "desti.pth")  # and restorekit reads its own seed-format file back
    with torch.no_grad():
        assert float((again(x) - m(x)).abs().max()) < 1e-5


def test_vit_seed_size_mode_and_native_tiles(tmp_path, photo, monkeypatch):
    torch.manual_seed(4)
    seed = sm.SeedViTRestorer(img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2).eval()
    path = tmp_path / "final.pth"
    torch.save({"model_state_dict": seed.state_dict(), "config": {"heads": 2}}, path)
    # the seed's inference on a small page: resize to img_size, restore, resize back (cv2 INTER_LINEAR)
    m = restorekit.load_model(path, size_mode="seed")
    x = _photo_tensor(photo, 40, 56)
    with torch.no_grad():
        small = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
        ref = torch.nn.functional.interpolate(seed(small), size=(40, 56), mode="bilinear", align_corners=False)
        assert float((m(x) - ref).abs().max()) < 1e-4
    # default restorers run the ViT on tiles of exactly img_size
    from restorekit.models.vit_restorer import ViTRestorer

    calls: list[tuple[int, ...]] = []
    orig = ViTRestorer.forward

    def spy(self, x):  # noqa: ANN001, ANN202
        calls.append(tuple(int(v) for v in x.shape))
        return orig(self, x)

    monkeypatch.setattr(ViTRestorer, "forward", spy)
    r = restorekit.load_restorer(path, backend="eager")
    out = r(_photo_tensor(photo, 72, 80))
    assert out.shape == (1, 3, 72, 80)
    tiles = [c for c in calls if c[-2:] == (32, 32)]
    assert sum(c[0] for c in tiles) >= 9  # 3 x 3 tiles of exactly img_size cover 72 x 80
    assert not any(c[-2:] == (72, 80) for c in calls)


# ----------------------------------------------------------------------------- KD student


def test_student_seed_checkpoint_loads_and_matches(tmp_path, photo):
    torch.manual_seed(5)
    seed = sm.SeedStudentUNet(base_filters=8, depth=4)  # the seed's training used depth=4: 3 levels are built
    sm.randomize_norm_stats(seed)
    seed.eval()
    path = tmp_path / "student_model_v2.pth"
    torch.save(seed.state_dict(), path)
    model = restorekit.load_model(path)
    assert args_of(model)["legacy_three_levels"] is True
    x = _photo_tensor(photo, 40, 56)  # not a multiple of 16: the seed's reflect padding
    with torch.no_grad():
        assert float((seed(x) - model(x)).abs().max()) < 1e-4
    export_model(model, tmp_path / "back.pth", "seed")
    again = sm.SeedStudentUNet(base_filters=8, depth=4).eval()
    again.load_state_dict(torch.load(tmp_path / "back.pth", weights_only=True), strict=True)
    with torch.no_grad():
        assert float((again(x) - seed(x)).abs().max()) < 1e-4


# ----------------------------------------------------------------------------- raw Restorer


RAW_ARGS = {"chans": [8, 16, 32], "enc_blk_nums": [1, 1], "middle_blk_num": 1, "dec_blk_nums": [1, 1]}


def _raw_inputs(photo, h: int = 40, w: int = 48):
    g = torch.Generator().manual_seed(0)
    rgb = _photo_tensor(photo, h, w)
    rggb = torch.stack([rgb[0, 0, 0::2, 0::2], rgb[0, 1, 0::2, 1::2], rgb[0, 1, 1::2, 0::2], rgb[0, 2, 1::2, 1::2]])[None]
    rggb = (rggb + 0.05 * torch.randn(rggb.shape, generator=g)).clamp(0, 1)
    return rggb, torch.tensor([[0.25]]), rgb


@pytest.mark.parametrize("new_fuser", [True, False])
def test_raw_model_wrapper_state_dict_with_gamma(tmp_path, photo, new_fuser):
    torch.manual_seed(6)
    seed = sm.SeedModelWrapper(gamma=2.2, new_fuser=new_fuser, **RAW_ARGS)
    sm.randomize_norm_stats(seed)
    seed.eval()
    path = tmp_path / "NAF_deep.pt"
    torch.save(seed.state_dict(), path)  # what the seed saves: gamma is not in it
    assert all(k.startswith("model.") for k in seed.state_dict())
    assert any(".sa.0." in k for k in seed.state_dict()) is new_fuser
    model = restorekit.load_model(path, gamma=2.2)
    assert args_of(model)["fuser"] == ("sa" if new_fuser else "cca") and args_of(model)["gamma"] == 2.2
    rggb, cond, residual = _raw_inputs(photo)
    with torch.no_grad():
        assert float((seed(rggb, cond, residual) - model(rggb, cond, residual)).abs().max()) < 1e-4
    # gamma from the seed's config.yaml beside the weights
    (tmp_path / "config.yaml").write_text("run_name: NAF_deep\nmodel_params:\n  chans: [8, 16, 32]\n  gamma: 2.2\n")
    beside = restorekit.load_model(path)
    assert args_of(beside)["gamma"] == 2.2
    with torch.no_grad():
        assert float((seed(rggb, cond, residual) - beside(rggb, cond, residual)).abs().max()) < 1e-4
    # the seed wrapper's state dict written back
    res = export_model(beside, tmp_path / "wrapper_back.pt", "seed")
    assert res.max_abs_diff is not None and res.max_abs_diff < 1e-4
    again = sm.SeedModelWrapper(gamma=2.2, new_fuser=new_fuser, **RAW_ARGS).eval()
    again.load_state_dict(torch.load(tmp_path / "wrapper_back.pt", weights_only=True), strict=True)
    with torch.no_grad():
        assert float((again(rggb, cond, residual) - seed(rggb, cond, residual)).abs().max()) < 1e-4


def test_raw_current_fuser_parameter_count():
    m = create_model("nafnet_cond", preset="rawnind-deep", fuser="sa")
    assert sum(p.numel() for p in m.parameters()) == 16_072_323  # 16.07 M, the seed's config


# ----------------------------------------------------------------------------- safe loading


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.marker}",))


def test_pickled_os_system_refused_without_running(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "best_psnr.pth"
    torch.save({"model_state_dict": {"w": torch.zeros(2)}, "psnr": np.float64(30.0), "hook": _Evil(str(marker))}, path)
    with pytest.raises(CheckpointError, match="refused"):
        restorekit.load_model(path)
    assert not marker.exists()


def test_numpy_metrics_and_dtypes_accepted(tmp_path):
    path = tmp_path / "desti.pth"
    state = sm.SeedStudentUNet(base_filters=8, depth=3).state_dict()
    torch.save({"model_state_dict": state, "best_psnr": np.float64(25.1), "epoch": np.int64(3),
                "ssim": np.float32(0.8), "dtype": np.dtype("float64"), "arr": np.arange(3)[0]}, path)
    ck = read_checkpoint(path)
    assert float(ck.extras["best_psnr"]) == pytest.approx(25.1) and ck.extras["dtype"] == np.dtype("float64")
    assert set(ck.tensors) == set(state)
