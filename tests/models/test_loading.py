"""load_model on every foreign layout: BasicSR, Lightning, seed files, bare/prefixed state dicts, safetensors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from restorekit.errors import CheckpointError
from restorekit.models import create_model
from restorekit.models.loading import load_model
from restorekit.models.package import save_package
from restorekit.models.spec import ModelCard, card_of, set_card


def _perturb(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random non-trivial weights (NAF beta/gamma, BatchNorm statistics) so equality tests mean something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.randn(t.shape, generator=g) * 0.05)
            if t.is_floating_point() and t.dim() == 1 and t.numel() and (t > 0).all():
                t.abs_()
    return model.eval()


SMALL = {
    "nafnet": {"width": 8, "enc_blk_nums": [1, 2], "middle_blk_num": 3, "dec_blk_nums": [2, 1]},
    "nafnet_cond": {"chans": [8, 16, 16], "enc_blk_nums": [1, 2], "middle_blk_num": 1, "dec_blk_nums": [1, 1], "cond_output": 8},
    "restormer": {"dim": 16, "num_blocks": [1, 2, 1, 2], "num_refinement_blocks": 2, "heads": [2, 2, 4, 8],
                  "LayerNorm_type": "BiasFree"},
    "vit_restorer": {"img_size": 32, "patch_size": 8, "embed_dim": 192, "depth": 2, "num_heads": 3},
    "student_unet": {"base_filters": 8, "depth": 2},
    "deblur_unet": {"base_ch": 8},
}


def _inputs(name: str) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(7)
    if name == "nafnet_cond":
        return (torch.rand(1, 4, 12, 10, generator=g), torch.rand(1, 1, generator=g), torch.rand(1, 3, 24, 20, generator=g))
    if name == "vit_restorer":
        return (torch.rand(1, 3, 32, 32, generator=g),)
    return (torch.rand(1, 3, 24, 20, generator=g),)


def _same(a: torch.nn.Module, b: torch.nn.Module, name: str) -> None:
    x = _inputs(name)
    with torch.no_grad():
        assert torch.equal(a(*x), b(*x))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_arch_inference_from_basicsr_file(tmp_path: Path, name: str) -> None:
    """Official/BasicSR layout {'params': ...}: architecture and hyperparameters recognised from shapes."""
    m = _perturb(create_model(name, **SMALL[name]), 0)
    path = tmp_path / "net_g_latest.pth"
    torch.save({"params": m.state_dict()}, path)
    loaded = load_model(path, **({"num_heads": 3} if name == "vit_restorer" else {}))
    assert card_of(loaded).arch == name and not loaded.training
    for k, v in SMALL[name].items():
        assert card_of(loaded).args[k] == v, k
    _same(m, loaded, name)
    # the loaded module can be re-packaged and loads back identically
    pkg = save_package(loaded, tmp_path / "re.safetensors")
    _same(m, load_model(pkg), name)


def test_params_ema_is_preferred(tmp_path: Path) -> None:
    plain = _perturb(create_model("nafnet", **SMALL["nafnet"]), 1)
    ema = _perturb(create_model("nafnet", **SMALL["nafnet"]), 2)
    path = tmp_path / "ema.pth"
    torch.save({"params": plain.state_dict(), "params_ema": ema.state_dict()}, path)
    _same(ema, load_model(path), "nafnet")


def test_restormer_inference_details(tmp_path: Path) -> None:
    """Heads from temperature shapes, WithBias vs BiasFree, bias flag, the non-integer 2.66 FFN factor."""
    m = _perturb(create_model("restormer", dim=24, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1,
                              heads=[1, 3, 3, 6], bias=True), 3)
    path = tmp_path / "motion_deblurring.pth"
    torch.save({"params": m.state_dict()}, path)
    loaded = load_model(path)
    a = card_of(loaded).args
    assert a["heads"] == [1, 3, 3, 6] and a["bias"] is True and a["LayerNorm_type"] == "WithBias"
    assert a["ffn_expansion_factor"] == 2.66
    _same(m, loaded, "restormer")


def test_lightning_checkpoint(tmp_path: Path) -> None:
    m = _perturb(create_model("student_unet", base_filters=8, depth=3), 4)
    teacher = create_model("nafnet", width=8, enc_blk_nums=[1], dec_blk_nums=[1])
    sd = {f"model.{k}": v for k, v in m.state_dict().items()}
    sd.update({f"teacher.{k}": v for k, v in teacher.state_dict().items()})
    sd["loss_fn.vgg.0.weight"] = torch.zeros(4, 3, 3, 3)
    ckpt = {
        "epoch": 3, "global_step": 120, "pytorch-lightning_version": "2.6.0", "state_dict": sd,
        "hyper_parameters": {"model": {"name": "student_unet", "args": {"base_filters": 8, "depth": 3}}},
        "optimizer_states": [], "lr_schedulers": [],
    }
    path = tmp_path / "last.ckpt"
    torch.save(ckpt, path)
    loaded = load_model(path)
    # hyper_parameters win over the shape-based guess (which would say legacy 3 levels)
    assert card_of(loaded).arch == "student_unet"
    assert {k: card_of(loaded).args[k] for k in ("base_filters", "depth")} == {"base_filters": 8, "depth": 3}
    assert loaded.pad_multiple == 8
    _same(m, loaded, "student_unet")


def test_seed_files_and_prefixes(tmp_path: Path) -> None:
    # deblurring / manuscript seeds: {'model_state_dict', 'optimizer_state_dict', ...} with DataParallel prefix
    m = _perturb(create_model("deblur_unet", base_ch=8), 5)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    m(torch.rand(1, 3, 16, 16)).mean().backward()
    opt.step()
    m.eval()
    path = tmp_path / "best_model_epoch_3_psnr_27.10.pth"
    torch.save({"epoch": 3, "model_state_dict": {f"module.{k}": v for k, v in m.state_dict().items()},
                "optimizer_state_dict": opt.state_dict(), "psnr": 27.1, "ssim": 0.85, "train_loss": 0.1,
                "val_loss": 0.2}, path)
    loaded = load_model(path)
    assert card_of(loaded).value_range == "-1,1"
    _same(m, loaded, "deblur_unet")
    # raw seed: ModelWrapper's bare state dict, keys prefixed "model."
    c = _perturb(create_model("nafnet_cond", **SMALL["nafnet_cond"]), 6)
    path = tmp_path / "NAF_deep.pt"
    torch.save({f"model.{k}": v for k, v in c.state_dict().items()}, path)
    _same(c, load_model(path), "nafnet_cond")


def test_distillation_seed_three_level_checkpoint(tmp_path: Path) -> None:
    """The seed's UNet(depth=4) really has 3 levels (7,703,107 params at base 64): imported in legacy mode."""
    m = _perturb(create_model("student_unet", base_filters=8, depth=4, legacy_three_levels=True), 7)
    path = tmp_path / "student_model_v2.pth"
    torch.save(m.state_dict(), path)
    loaded = load_model(path)
    assert card_of(loaded).args["legacy_three_levels"] is True and loaded.levels == 3
    _same(m, loaded, "student_unet")


def test_vit_kaggle_head_and_repo_head(tmp_path: Path) -> None:
    repo = _perturb(create_model("vit_restorer", **SMALL["vit_restorer"]), 8)
    sd = {("head." + k[len("patch_recon.proj."):] if k.startswith("patch_recon.proj.") else k): v
          for k, v in repo.state_dict().items()}
    path = tmp_path / "best_psnr.pth"
    torch.save({"epoch": 10, "model_state_dict": sd, "best_val_psnr": 24.0, "config": {"img_size": 32}}, path)
    kaggle = load_model(path, preset="tiny")
    assert card_of(kaggle).args["use_simple_head"] is True and card_of(kaggle).args["img_size"] == 32
    assert card_of(kaggle).args["num_heads"] == 3
    _same(repo, kaggle, "vit_restorer")


def test_safetensors_without_metadata(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    m = _perturb(create_model("nafnet", **SMALL["nafnet"]), 9)
    path = tmp_path / "NAFNet-GoPro-width32.safetensors"
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(path))
    _same(m, load_model(path), "nafnet")


def test_unsafe_pickle_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):  # noqa: ANN204
            return (open, (str(marker), "w"))

    m = create_model("nafnet", **SMALL["nafnet"])
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": m.state_dict(), "payload": Evil()}, path)
    with pytest.raises(CheckpointError, match="weights_only") as info:
        load_model(path)
    assert "evil.pth" in str(info.value)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_torchscript_archive_is_named(tmp_path: Path) -> None:
    m = create_model("student_unet", base_filters=4, depth=1).eval()
    path = tmp_path / "traced.pt"
    torch.jit.save(torch.jit.trace(m, torch.rand(1, 3, 8, 8)), str(path))
    with pytest.raises(CheckpointError, match="TorchScript"):
        load_model(path)


def test_unknown_and_incomplete_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"backbone.conv.weight": torch.zeros(2, 3, 3, 3), "fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(CheckpointError, match="backbone.conv.weight"):
        load_model(path)
    sd = create_model("nafnet", **SMALL["nafnet"]).state_dict()
    del sd["encoders.1.1.conv4.bias"]
    path = tmp_path / "broken.pth"
    torch.save({"params": sd}, path)
    with pytest.raises(CheckpointError, match=r"encoders\.1\.1\.conv4\.bias"):
        load_model(path)
    # an explicit arch that does not fit names the missing key
    with pytest.raises(CheckpointError, match="restormer"):
        load_model(path, arch="restormer")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pth"):
        load_model(tmp_path / "junk.pth")
