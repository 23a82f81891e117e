"""Export round trips: ONNX (dynamic batch/height/width) and TorchScript, verified against PyTorch; metadata."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from restorekit.cli.main import main
from restorekit.errors import ConfigError
from restorekit.export import ExportError, export_model
from restorekit.inference import OnnxRuntime, TorchScriptRuntime, make_runtime, restore_image
from restorekit.inference.runtime import META_KEY
from restorekit.models.spec import ModelCard, card_of, caps_of, set_card


@pytest.fixture(scope="module")
def unet(tm):
    return tm.signal_unet()


@pytest.fixture(scope="module")
def nafnet(tm):
    return tm.tiny_nafnet()


@pytest.mark.parametrize("fmt,suffix", [("onnx", ".onnx"), ("torchscript", ".pt")])
@pytest.mark.parametrize("which", ["unet", "nafnet"])
def test_round_trip(tmp_path, photo, request, fmt, suffix, which):
    model = request.getfixturevalue(which)
    res = export_model(model, tmp_path / f"m{suffix}", fmt)
    assert res.max_abs_diff is not None and res.max_abs_diff < 1e-4
    assert res.verify_shapes[0][0] == 2  # verified with batch 2 at another size than the export example
    rt = make_runtime(tmp_path / f"m{suffix}", "cpu")
    assert isinstance(rt, OnnxRuntime if fmt == "onnx" else TorchScriptRuntime)
    assert rt.info.arch == card_of(model).arch and rt.info.value_range == card_of(model).value_range
    assert rt.info.size_multiple == caps_of(model).size_multiple  # the spec's multiple travels with the file
    # dynamic height/width and batch: odd-sized image, tiled with batch 3, equals the eager module
    img = photo("astronaut", 128)[:101, :77]
    a = restore_image(model, img, tile=64, overlap=16, batch=3, backend="eager")
    b = restore_image(rt, img, tile=64, overlap=16, batch=3)
    assert np.abs(a - b).max() < 1e-4
    c = restore_image(str(tmp_path / f"m{suffix}"), img, tile=0)
    assert np.abs(restore_image(model, img, tile=0, backend="eager") - c).max() < 1e-4


def test_metadata_in_files(tmp_path, unet):
    import onnx

    export_model(unet, tmp_path / "m.onnx", verify=False)  # verification is covered by test_round_trip
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    meta = json.loads(props[META_KEY])
    assert meta["arch"] == "deblur_unet" and meta["value_range"] == "-1,1" and meta["size_multiple"] == 16
    assert meta["arch_args"]["base_ch"] == 8 and props["value_range"] == "-1,1"
    graph_inputs = onnx.load(str(tmp_path / "m.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in graph_inputs] == ["batch", 3, "height", "width"]
    export_model(unet, tmp_path / "m.pt", verify=False)
    extra = {META_KEY: ""}
    torch.jit.load(str(tmp_path / "m.pt"), _extra_files=extra)
    assert json.loads(extra[META_KEY])["value_range"] == "-1,1"


def test_nafnet_cond_extra_inputs(tmp_path):
    import restorekit

    torch.manual_seed(0)
    m = restorekit.create_model("nafnet_cond", chans=[8, 16, 32], enc_blk_nums=[1, 1], middle_blk_num=1, dec_blk_nums=[1, 1]).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("beta") or name.endswith("gamma"):
                p.copy_(torch.randn(p.shape) * 0.2)
    for fmt, suffix in (("onnx", ".onnx"), ("torchscript", ".pt")):
        res = export_model(m, tmp_path / f"c{suffix}", fmt)
        assert res.max_abs_diff < 1e-4
        assert [s[1] for s in res.verify_shapes] == [4, 1, 3]  # rggb, cond, residual
        rt = make_runtime(tmp_path / f"c{suffix}", "cpu")
        assert rt.info.inputs == ["rggb", "cond", "residual"]
        g = torch.Generator().manual_seed(3)
        rggb, cond, res_img = torch.rand(1, 4, 40, 56, generator=g), torch.tensor([[0.3]]), torch.rand(1, 3, 80, 112, generator=g)
        with torch.no_grad():
            ref = m(rggb, cond, res_img)
        assert float((rt.run_raw(rggb, cond, res_img) - ref).abs().max()) < 1e-4
    import onnx

    names = [i.name for i in onnx.load(str(tmp_path / "c.onnx")).graph.input]
    assert names == ["rggb", "cond", "residual"]


def test_safetensors_package_and_cli(tmp_path, unet, capsys):
    from restorekit.models.package import save_package

    save_package(unet, tmp_path / "src.safetensors")
    assert main(["export", "-m", str(tmp_path / "src.safetensors"), "--format", "safetensors", "--out", str(tmp_path / "p.safetensors")]) == 0
    from restorekit.models.loading import load_model

    back = load_model(tmp_path / "p.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(unet.state_dict().values(), back.state_dict().values()))
    assert main(["export", "-m", str(tmp_path / "src.safetensors"), "--format", "onnx", "--out", str(tmp_path / "p.onnx")]) == 0
    out = capsys.readouterr().out
    assert "max abs diff vs PyTorch" in out
    diff = float(out.split("max abs diff vs PyTorch ")[1].split()[0])
    assert diff < 1e-4


def test_failed_verification_leaves_no_file(tmp_path):
    class ShapeDependent(torch.nn.Module):
        """Branches on the input width: tracing bakes the branch in, verification at another size catches it."""

        def forward(self, x):
            if x.shape[-2] == 64:
                return x * 2.0
            return x

    with pytest.raises(ExportError, match="does not match PyTorch"):
        export_model(ShapeDependent(), tmp_path / "bad.pt", "torchscript")
    assert list(tmp_path.iterdir()) == []


def test_unknown_format(tmp_path, unet):
    with pytest.raises(ConfigError):
        export_model(unet, tmp_path / "m.xyz")


def test_cli_export_seed_format_round_trips(tmp_path, capsys):
    """`restorekit export --format seed` writes the seed's checkpoint layout; restorekit reads it back identically."""
    from restorekit.cli.main import main
    from restorekit.models import create_model
    from restorekit.models.loading import load_model
    from restorekit.models.package import save_package

    m = create_model("deblur_unet", base_ch=8).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_package(m, tmp_path / "m.safetensors")
    assert main(["export", "-m", str(tmp_path / "m.safetensors"), "--format", "seed", "--out", str(tmp_path / "s.pth")]) == 0
    ckpt = torch.load(tmp_path / "s.pth", weights_only=True)
    assert "model_state_dict" in ckpt and any(k.startswith("enc1.conv1.") for k in ckpt["model_state_dict"])
    back = load_model(tmp_path / "s.pth")
    x = torch.rand(1, 3, 48, 64) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(back(x), m(x), atol=1e-6)
    assert main(["export", "-m", str(tmp_path / "m.safetensors"), "--format", "seed", "--out", str(tmp_path / "s.onnx")]) == 2
    assert "--out" in capsys.readouterr().err
