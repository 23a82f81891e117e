"""`restorekit eval` / `export`: options validated once, bad paths named up front, the model run by a Restorer (#18)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from restorekit.cli.main import main
from restorekit.io import write_image


@pytest.fixture(scope="module")
def pairs(tmp_path_factory, photo) -> Path:
    root = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(0)
    for name in ("astronaut", "coffee"):
        clean = photo(name, 48)
        write_image(root / "target" / f"{name}.png", clean)
        write_image(root / "input" / f"{name}.png", np.clip(clean + rng.normal(0, 0.08, clean.shape), 0, 1))
    return root


@pytest.fixture(scope="module")
def identity(tmp_path_factory) -> Path:
    import restorekit
    from restorekit.models.package import save_package

    m = restorekit.create_model("nafnet", width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1]).eval()
    with torch.no_grad():
        m.ending.weight.zero_()
        m.ending.bias.zero_()
    path = tmp_path_factory.mktemp("m") / "identity.safetensors"
    save_package(m, path)
    return path


def _eval(pairs: Path, model: Path, report: Path, *extra: str) -> int:
    return main(["eval", "--model", str(model), "--input", str(pairs / "input"), "--target", str(pairs / "target"),
                 "--report", str(report), "--baselines", "none", "--no-images", *extra])


def test_fraction_overlap_accepted_and_scores_are_the_input(tmp_path, pairs, identity):
    """eval takes the same --overlap values as restore; an identity model scores exactly the input's PSNR."""
    import json

    assert _eval(pairs, identity, tmp_path / "r.json", "--tile", "32", "--overlap", "0.25") == 0
    res = json.loads((tmp_path / "r.json").read_text())
    model, inp = res["methods"]["model"]["mean"]["psnr"], res["methods"]["input"]["mean"]["psnr"]
    assert 15 < inp < 30 and abs(model - inp) < 0.05  # 8-bit rounding only


@pytest.mark.parametrize("extra,flag", [(["--limit", "0"], "--limit"), (["--overlap", "-1"], "--overlap"),
                                        (["--tile", "32", "--overlap", "40"], "--overlap"),
                                        (["--crop-border", "-2"], "--crop-border")])
def test_bad_numbers_named(tmp_path, pairs, identity, capsys, extra, flag):
    assert _eval(pairs, identity, tmp_path / "r.json", *extra) == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err and not (tmp_path / "r.json").exists()


def test_crop_border_larger_than_the_image(tmp_path, pairs, identity, capsys):
    assert _eval(pairs, identity, tmp_path / "r.json", "--crop-border", "30") == 2
    err = capsys.readouterr().err
    assert "--crop-border 30" in err and "48x48" in err


def test_report_under_a_plain_file(tmp_path, pairs, identity, capsys):
    (tmp_path / "f").write_text("x")
    assert _eval(pairs, identity, tmp_path / "f" / "r.json") == 2
    err = capsys.readouterr().err
    assert "--report" in err and "is a file" in err


def test_exported_onnx_detected_like_the_runtime(tmp_path, pairs, identity):
    """eval --model runs an ONNX export through load_restorer (the runtime's own detection), scoring like PyTorch."""
    import json

    pytest.importorskip("onnxruntime")
    assert main(["export", "-m", str(identity), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    assert _eval(pairs, tmp_path / "m.onnx", tmp_path / "r.json") == 0
    res = json.loads((tmp_path / "r.json").read_text())
    assert abs(res["methods"]["model"]["mean"]["psnr"] - res["methods"]["input"]["mean"]["psnr"]) < 0.05


def test_export_refuses_mismatched_suffix_and_bad_folder(tmp_path, identity, capsys):
    assert main(["export", "-m", str(identity), "--format", "onnx", "--out", str(tmp_path / "x.pt")]) == 2
    assert "onnx export must be named .onnx" in capsys.readouterr().err and not (tmp_path / "x.pt").exists()
    (tmp_path / "plain").write_text("x")
    assert main(["export", "-m", str(identity), "--out", str(tmp_path / "plain" / "m.onnx")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_image_given_as_model_says_so(tmp_path, photo, capsys):
    write_image(tmp_path / "oops.png", photo("astronaut", 16))
    (tmp_path / "oops.png").rename(tmp_path / "oops.pth")  # a PNG with a checkpoint name
    assert main(["export", "-m", str(tmp_path / "oops.pth"), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "an image, not a model" in err and "pickled" not in err
