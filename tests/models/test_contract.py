"""Registry-driven contract tests: every registered architecture, automatically (issue #12).

Parametrised over :func:`restorekit.models.list_models` (the way timm tests every
``list_models()`` entry), each architecture built with its ``tiny`` preset gets:

* state-dict detection round trip (a bare state dict is recognised and rebuilt),
* package round trip (card and outputs survive ``save_package``/``load_model``),
* ONNX and TorchScript parity with PyTorch,
* tiled-vs-whole agreement (accounting for ``caps.global_context``),
* ``load_restorer`` on each file kind (package, .pth, training .ckpt, .onnx, TorchScript),
* odd sizes and batch > 1.

A newly registered architecture without a ``tiny`` preset fails here with a message saying so.
Nothing below tests an architecture *name*: behaviour is chosen from the capabilities.
Inputs are crops of scikit-image photos (``astronaut``), values in [0, 1].
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn as nn

from restorekit.inference import Restorer, load_restorer
from restorekit.models import create_model, get_spec, list_models
from restorekit.models.loading import detect_arch, load_model
from restorekit.models.package import save_package
from restorekit.models.spec import Capabilities, arch_of, args_of, caps_of, card_of, set_card

ARCHS = list_models()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.double() - b.double()) ** 2).mean())
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def photo(h: int, w: int, batch: int = 1) -> torch.Tensor:
    """``(B, 3, h, w)`` float32 RGB in [0, 1]: different crops of ``skimage.data.astronaut``."""
    from skimage import data

    img = torch.from_numpy(data.astronaut().astype(np.float32) / 255.0).permute(2, 0, 1)
    assert h <= img.shape[1] and w <= img.shape[2]
    tops = [min(60 + 37 * i, img.shape[1] - h) for i in range(batch)]
    lefts = [min(150 + 23 * i, img.shape[2] - w) for i in range(batch)]
    crops = [img[:, t : t + h, l : l + w] for t, l in zip(tops, lefts)]
    return torch.stack(crops).contiguous()


def raw_extras(x: torch.Tensor, caps: Capabilities) -> dict[str, torch.Tensor]:
    """Extra inputs of a raw model built from the photo: an RGGB mosaic (B, 4, H/2, W/2) and cond (B, K)."""
    if caps.rgb:
        return {}
    extras: dict[str, torch.Tensor] = {}
    if "rggb" in caps.inputs:
        r, g, b = x[:, 0], x[:, 1], x[:, 2]
        extras["rggb"] = torch.stack([r[:, 0::2, 0::2], g[:, 0::2, 1::2], g[:, 1::2, 0::2], b[:, 1::2, 1::2]], dim=1)
    if "cond" in caps.inputs:
        extras["cond"] = torch.full((x.shape[0], 1), 0.3)
    return extras


class Case:
    """One architecture under test: the tiny module (weights perturbed so no block is an identity)."""

    def __init__(self, name: str) -> None:
        spec = get_spec(name)
        if "tiny" not in spec.presets:
            pytest.fail(
                f"architecture '{name}' has no 'tiny' preset: add presets={{'tiny': {{...}}}} (a few thousand to "
                f"~1M parameters) to its register_model(...) call so that the contract tests can build it quickly"
            )
        self.name = name
        torch.manual_seed(0)
        self.module = create_model(name, preset="tiny").eval()
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():  # NAFNet-style zero-initialised scales would make blocks identities
            for p in self.module.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=g))
        if caps_of(self.module).tlc:  # TLC windows are the training size: record one (tiny models, small images)
            set_card(self.module, dataclasses.replace(card_of(self.module), train_size=(32, 32)))
        self.args = args_of(self.module)
        self.caps = caps_of(self.module)
        native = self.caps.native_size
        m = max(self.caps.size_multiple, 2)
        # a size that is not a multiple of anything (odd for RGB models, even but not a multiple for raw ones)
        self.odd = (native - 19, native - 27) if native else ((3 * m + 5) | 1, (4 * m + 3) | 1)
        if not self.caps.rgb:
            self.odd = (self.odd[0] + 1, self.odd[1] + 1)

    def restorer(self, **options: Any) -> Restorer:
        options.setdefault("tlc", "off")  # a bare state dict or an exported graph carries no training size
        return Restorer.from_module(self.module, device="cpu", backend="eager", precision="fp32", **options)

    def run(self, r: Restorer, x: torch.Tensor) -> torch.Tensor:
        return r(x, **raw_extras(x, self.caps))


@pytest.fixture(scope="module", params=ARCHS)
def case(request: pytest.FixtureRequest) -> Case:
    return Case(request.param)


@pytest.fixture(scope="module")
def files(case: Case, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny model written as every file kind restorekit loads."""
    from restorekit.export import export_model

    d = tmp_path_factory.mktemp(f"contract-{case.name}")
    state = {k: v.detach().clone() for k, v in case.module.state_dict().items()}
    out = {"package": save_package(case.module, d / "model.safetensors")}
    torch.save(state, d / "bare.pth")
    out["pth"] = d / "bare.pth"
    torch.save({"state_dict": {f"model.{k}": v for k, v in state.items()}, "epoch": 3,
                "restorekit": {"arch": case.name, "arch_args": dict(case.args), "value_range": case.caps.value_range}},
               d / "train.ckpt")
    out["ckpt"] = d / "train.ckpt"
    if case.caps.exportable:
        onnx = export_model(case.module, d / "model.onnx")
        ts = export_model(case.module, d / "model.pt")
        assert onnx.max_abs_diff is not None and onnx.max_abs_diff < 1e-4, onnx
        assert ts.max_abs_diff is not None and ts.max_abs_diff < 1e-4, ts
        out["onnx"], out["torchscript"] = onnx.path, ts.path
    return out


def test_every_architecture_has_a_tiny_preset() -> None:
    missing = [n for n in ARCHS if "tiny" not in get_spec(n).presets]
    assert not missing, f"architectures without a 'tiny' preset (needed by the contract tests): {missing}"
    assert len(ARCHS) >= 6


def test_state_dict_detection_round_trip(case: Case, files: dict[str, Path]) -> None:
    state = torch.load(files["pth"], weights_only=True)
    assert detect_arch(state) == case.name
    loaded = load_model(files["pth"]).eval()
    assert arch_of(loaded) == case.name
    spec = get_spec(case.name)
    if spec.infer is not None:  # arguments recovered from the tensor shapes alone
        inferred = {k: v for k, v in args_of(loaded).items() if k in case.args}
        full = spec.resolve_args(None, **case.args)
        for k, v in inferred.items():
            assert _same(v, full[k]), f"{case.name}: inferred {k}={v!r}, built with {full[k]!r}"
    _assert_same_outputs(case, case.module, loaded)


def test_package_round_trip(case: Case, files: dict[str, Path]) -> None:
    loaded = load_model(files["package"]).eval()
    assert arch_of(loaded) == case.name
    assert {k: _norm(v) for k, v in args_of(loaded).items()} == {k: _norm(v) for k, v in case.args.items()}
    assert caps_of(loaded) == case.caps
    _assert_same_outputs(case, case.module, loaded)


def test_load_restorer_on_every_file_kind(case: Case, files: dict[str, Path]) -> None:
    x = photo(*case.odd)
    ref = case.run(case.restorer(tile=0), x)
    assert ref.shape == x.shape and torch.isfinite(ref).all()
    for kind, path in files.items():
        r = load_restorer(path, device="cpu", tile=0, precision="fp32", tlc="off")
        assert r.arch == case.name, kind
        assert r.caps.inputs == case.caps.inputs, kind
        got = case.run(r, x)
        assert got.shape == ref.shape, kind
        # exported graphs run in onnxruntime / the TorchScript interpreter: float32 rounding only
        tol = 1e-5 if kind in ("package", "pth", "ckpt") else 2e-4
        diff = float((got - ref).abs().max())
        assert diff < tol, f"{case.name} from {kind}: max abs diff {diff:.3g}"


def test_exported_files_match_on_a_batch_of_odd_size(case: Case, files: dict[str, Path]) -> None:
    if not case.caps.exportable:
        pytest.skip(f"{case.name}: capabilities say this configuration is not exportable")
    x = photo(*case.odd, batch=2)
    ref = case.run(case.restorer(tile=0), x)
    for kind in ("onnx", "torchscript"):
        got = case.run(load_restorer(files[kind], device="cpu", tile=0, tlc="off"), x)
        assert float((got - ref).abs().max()) < 2e-4, kind


def test_odd_sizes_and_batches(case: Case) -> None:
    x = photo(*case.odd, batch=3)
    r = case.restorer(tile=0)
    out = case.run(r, x)
    assert out.shape == x.shape and out.dtype == torch.float32 and out.device.type == "cpu"
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    singles = torch.cat([case.run(r, x[i : i + 1]) for i in range(3)])
    assert float((out - singles).abs().max()) < 1e-5  # batch elements are independent
    assert float((out[0] - out[1]).abs().mean()) > 1e-5  # and not all the same


def test_tiled_matches_whole(case: Case) -> None:
    """Tiling must not change the result beyond what the architecture's receptive field allows.

    Local models (``global_context`` False) must agree closely with the whole-image pass.
    GroupNorm / attention models (``global_context`` True) normalise or attend over the whole
    input, so a tile sees different statistics than the full image: they are compared with a
    large overlap (half the tile) and a looser bound. Models with a ``native_size`` cannot run
    the whole image in one pass above that size; for them the region covered by the first tile
    only must equal the model run on that crop (the stitching is exact there).
    """
    native = case.caps.native_size
    if native:
        # 2 x 2 tiles of exactly the native size, overlapping by 64 px: rows/columns < native - 64 are the
        # first tile's alone
        x = photo(2 * native - 64, 2 * native - 64)
        tiled = case.run(case.restorer(tile=native, overlap=64), x)
        crop = x[..., :native, :native].contiguous()
        whole = case.run(case.restorer(tile=0), crop)
        inner = native - 64 - 1
        assert tiled.shape == x.shape
        diff = float((tiled[..., :inner, :inner] - whole[..., :inner, :inner]).abs().max())
        assert diff < 1e-4, f"{case.name}: first-tile region differs from the model on that crop by {diff:.3g}"
        return
    m = max(case.caps.size_multiple, 2)
    tile = 6 * m if m >= 16 else 48
    x = photo(2 * tile + 10, 2 * tile + 22)
    # channel attention over global pools (caps.tlc) is made local by the test-time local converter,
    # which is what lets such models be tiled at all: both passes use it
    tlc = "on" if case.caps.tlc else "off"
    whole = case.run(case.restorer(tile=0, tlc=tlc), x)
    if case.caps.global_context:
        # GroupNorm statistics / attention span the whole input: a tile cannot reproduce them exactly
        tiled = case.run(case.restorer(tile=tile, overlap=tile // 2, tlc=tlc), x)
        bound = 15.0
    else:
        # overlap half the tile: deep U-Nets (4 downsamplings) see ~100 px, more than a quarter tile
        tiled = case.run(case.restorer(tile=tile, overlap=tile // 2, tlc=tlc), x)
        bound = 30.0
    assert tiled.shape == whole.shape
    value = psnr(tiled, whole)
    print(f"{case.name}: tiled-vs-whole PSNR {value:.1f} dB (global_context={case.caps.global_context})")
    assert value > bound, f"{case.name}: tiled result differs from the whole-image one: {value:.1f} dB <= {bound} dB"
    # and the model does something: its output is not the input
    assert psnr(whole, x) < 60.0


# ---------------------------------------------------------------------------------------------- helpers


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, (tuple, list)) else v


def _same(a: Any, b: Any) -> bool:
    return _norm(a) == _norm(b)


def _assert_same_outputs(case: Case, a: nn.Module, b: nn.Module) -> None:
    x = photo(*case.odd)
    ra = case.run(Restorer.from_module(a, device="cpu", tile=0, backend="eager", tlc="off"), x)
    rb = case.run(Restorer.from_module(b, device="cpu", tile=0, backend="eager", tlc="off"), x)
    assert float((ra - rb).abs().max()) < 1e-6
