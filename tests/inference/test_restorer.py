"""The Restorer: one object for every model file restorekit reads, with one set of validated options."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from restorekit.errors import CheckpointError, ConfigError
from restorekit.export import export_model
from restorekit.inference import RestoreOptions, Restorer, load_restorer, restore_image
from restorekit.models import create_model
from restorekit.models.package import save_package
from restorekit.models.spec import card_of


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return 100.0 if mse == 0 else 10 * math.log10(1.0 / mse)


def _perturbed(model: torch.nn.Module, seed: int = 0, scale: float = 0.05) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return model.eval()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A residual deblur U-Net (the demo's architecture, small) written as every file kind restorekit reads."""
    d = tmp_path_factory.mktemp("restorer")
    model = _perturbed(create_model("deblur_unet", base_ch=8, residual=True))
    out = {"package": save_package(model, d / "model.safetensors", train_size=(64, 64))}
    out["onnx"] = export_model(model, d / "model.onnx", "onnx").path
    out["torchscript"] = export_model(model, d / "model.pt", "torchscript").path
    # a training checkpoint as restorekit's Lightning module writes it: weights under "model.", arguments recorded
    sd = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"epoch": 2, "state_dict": sd, "restorekit": {"arch": "deblur_unet", "arch_args": card_of(model).args,
                                                             "value_range": "-1,1", "ema": False}}, d / "last.ckpt")
    out["ckpt"] = d / "last.ckpt"
    torch.save({"model_state_dict": model.state_dict(), "epoch": 3}, d / "seed_style.pth")
    out["pth"] = d / "seed_style.pth"
    return model, out


@pytest.fixture(scope="module")
def batch(photo):
    """Two real photos, 67x91, as a (2, 3, 67, 91) batch in [0, 1]."""
    a = photo("astronaut", 128)[:67, :91]
    b = photo("coffee", 128)[30:97, 10:101]
    return torch.from_numpy(np.stack([a, b])).permute(0, 3, 1, 2).contiguous()


def test_every_file_kind_restores_a_batch_alike(files, batch):
    model, paths = files
    ref = load_restorer(paths["package"], tile=0)
    y_ref = ref(batch)
    assert y_ref.shape == (2, 3, 67, 91) and y_ref.dtype == torch.float32
    assert float(y_ref.min()) >= 0.0 and float(y_ref.max()) <= 1.0
    assert _psnr(y_ref, batch) < 40  # the model changes the image: agreement below is not trivial
    for kind in ("onnx", "torchscript", "ckpt"):
        r = load_restorer(paths[kind], tile=0)
        assert r.spec is not None and r.spec.name == "deblur_unet"
        assert r.caps.value_range == "-1,1" and r.caps.size_multiple == 16
        assert (r.module is None) == (kind in ("onnx", "torchscript"))
        y = r(batch)
        assert y.shape == y_ref.shape
        assert _psnr(y, y_ref) >= 45, kind
    # each image of the batch equals restoring it alone
    for i in range(2):
        assert torch.allclose(ref(batch[i : i + 1])[0], y_ref[i], atol=1e-5)


def test_checkpoint_arguments_are_always_used(files, batch):
    """The .ckpt records residual=True; without it the output is ~10 dB off (issue #18, item 1)."""
    _, paths = files
    r = load_restorer(paths["ckpt"], tile=0)
    assert r.args["residual"] is True and r.args["base_ch"] == 8
    pkg = load_restorer(paths["package"], tile=0)
    assert _psnr(r(batch), pkg(batch)) >= 60
    # the same weights read as a plain state dict (no recorded arguments) are the non-residual network
    plain = load_restorer(paths["pth"], tile=0)
    assert plain.args.get("residual", False) is False
    wrong = plain(batch)
    assert _psnr(wrong, pkg(batch)) < 30
    fixed = load_restorer(paths["pth"], tile=0, overrides={"residual": True})
    assert _psnr(fixed(batch), pkg(batch)) >= 60


def test_restorer_matches_the_module_on_whole_images(photo):
    """tile=0 on a size multiple: exactly the module's forward (value range handled), clipped to [0, 1]."""
    net = _perturbed(create_model("nafnet", width=8, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1]), scale=0.1)
    x = torch.from_numpy(photo("astronaut", 64)).permute(2, 0, 1)[None]
    r = Restorer.from_module(net, tile=0, backend="eager")
    with torch.no_grad():
        ref = net(x).clamp(0, 1)
    assert torch.allclose(r(x), ref, atol=1e-5)
    # the caller's module is not changed (no copies converted in place, still in eval mode, same weights)
    assert not net.training


def test_tiles_agree_with_the_whole_image_for_a_local_model(tm, photo):
    x = torch.from_numpy(photo("chelsea", 96)).permute(2, 0, 1)[None]
    m = tm.ShallowConv()
    whole = Restorer.from_module(m, tile=0, backend="eager")(x)
    tiled = Restorer.from_module(m, tile=48, overlap=16, backend="eager")(x)
    assert _psnr(tiled, whole) > 50
    cos = Restorer.from_module(m, tile=48, overlap=0.4, blend="cosine", backend="eager")(x)
    assert _psnr(cos, whole) > 50


def test_strength_blends_with_the_input(tm, photo):
    x = torch.from_numpy(photo("astronaut", 64)).permute(2, 0, 1)[None]
    m = tm.ShallowConv()
    full = Restorer.from_module(m, tile=0, backend="eager", clip=False)(x)
    half = Restorer.from_module(m, tile=0, backend="eager", strength=0.5)(x)
    assert torch.allclose(half, (x + 0.5 * (full - x)).clamp(0, 1), atol=1e-5)


def test_raw_model_gets_its_extra_inputs_tiled_consistently(photo):
    net = _perturbed(create_model("nafnet_cond", preset="small"), scale=0.02)
    rgb = torch.from_numpy(photo("astronaut", 64)).permute(2, 0, 1)[None]
    rggb = torch.rand(1, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    cond = torch.tensor([[0.25]])
    r = Restorer.from_module(net, tile=0, backend="eager")
    assert r.caps.inputs == ("rggb", "cond", "residual")
    with torch.no_grad():
        ref = net(rggb, cond, rgb).clamp(0, 1)
    assert torch.allclose(r(rgb, rggb=rggb, cond=cond), ref, atol=1e-5)
    tiled = Restorer.from_module(net, tile=32, overlap=8, backend="eager", tlc="off")(rgb, rggb=rggb, cond=cond)
    assert tiled.shape == ref.shape and _psnr(tiled, ref) > 25  # channel attention pools per tile
    with pytest.raises(ConfigError, match="missing"):
        r(rgb)
    with pytest.raises(ConfigError, match="rggb must be"):
        r(rgb, rggb=rggb[..., :16], cond=cond)


@pytest.mark.parametrize(
    ("values", "flag"),
    [
        ({"tile": 256, "overlap": 300}, "--overlap"),
        ({"tile": 256, "overlap": 256}, "--overlap"),
        ({"tile": -1}, "--tile"),
        ({"tile": "big"}, "--tile"),
        ({"overlap": float("nan")}, "--overlap"),
        ({"overlap": -0.5}, "--overlap"),
        ({"overlap": 12.5}, "--overlap"),
        ({"batch": 0}, "--batch"),
        ({"blend": "gauss"}, "--blend"),
        ({"strength": 1.5}, "--strength"),
        ({"device": "tpu"}, "--device"),
        ({"memory_budget_mb": 0}, "--memory-budget-mb"),
        ({"backend": "tensorrt"}, "--backend"),
    ],
)
def test_options_are_validated_once_naming_the_option(values, flag):
    with pytest.raises(ConfigError) as exc:
        RestoreOptions.parse(**values)
    assert flag in str(exc.value)


def test_valid_options_and_their_normal_forms():
    o = RestoreOptions.parse(tile="512", overlap="0.125", device="CPU")
    assert o.tile == 512 and o.overlap_value == 0.125 and o.device == "cpu"
    assert RestoreOptions.parse(overlap=32).overlap_value == 32
    assert RestoreOptions.parse(tile="auto").tile == "auto"
    with pytest.raises(ConfigError, match="unknown restore option"):
        RestoreOptions.parse(tiles=3)


def test_half_precision_on_cpu_is_refused(tm):
    with pytest.raises(ConfigError, match="--precision fp16"):
        Restorer.from_module(tm.ShallowConv(), device="cpu", precision="fp16")


def test_bf16_on_cpu_runs_eager_autocast_close_to_fp32(files, batch):
    """``precision=bf16`` on the CPU: eager PyTorch under bf16 autocast (never ONNX Runtime, whose CPU
    kernels are fp32), float32 output within bf16 rounding of the fp32 result, and not bit-equal to it."""
    _, paths = files
    ref = load_restorer(paths["package"], tile=0, device="cpu", precision="fp32", backend="eager")(batch)
    r = load_restorer(paths["package"], tile=0, device="cpu", precision="bf16")
    got = r(batch)
    rt = r.runtime_for(tuple(batch.shape[-2:]))
    assert rt.name.startswith("eager") and rt.autocast_dtype == torch.bfloat16
    assert got.dtype == torch.float32 and got.shape == ref.shape
    assert 0 < float((got - ref).abs().max()) < 0.05
    assert _psnr(got, ref) > 40.0, _psnr(got, ref)


def test_load_restorer_errors_name_the_file(tmp_path, photo):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_restorer(tmp_path / "nope.safetensors")
    img = tmp_path / "photo.png"
    from restorekit.io.image import write_image

    write_image(img, photo("astronaut", 32))
    with pytest.raises(CheckpointError, match="is an image"):
        load_restorer(img)
    with pytest.raises(CheckpointError, match="folder"):
        load_restorer(tmp_path)


def test_restore_image_is_a_thin_call(files, photo):
    _, paths = files
    img = photo("astronaut", 80)[:67, :91]
    r = load_restorer(paths["package"], tile=0)
    assert np.array_equal(restore_image(r, img), r.restore_image(img))
    via_module = restore_image(r.module, img, tile=0)
    assert np.abs(via_module - r.restore_image(img)).max() < 1e-3  # auto backend (ONNX Runtime) vs eager
