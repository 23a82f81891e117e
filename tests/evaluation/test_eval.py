"""`restorekit eval` and the evaluation API on small sets of real photos."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from skimage.filters import gaussian

from restorekit.cli.main import main
from restorekit.errors import ConfigError, DataError
from restorekit.evaluation import (
    EvalSample,
    estimate_blur_sigma,
    estimate_noise_sigma,
    evaluate_folders,
    evaluate_model,
    evaluate_pairs,
    evaluate_samples,
    resolve_baselines,
)
from restorekit.evaluation.baselines import nlm, wiener
from restorekit.io import read_image, write_image
from restorekit.metrics import psnr

NAMES = ("astronaut", "coffee", "chelsea")


def _noisy(img: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    return np.clip(img + np.random.default_rng(seed).normal(0, sigma, img.shape), 0, 1).astype(np.float32)


@pytest.fixture()
def noisy_set(tmp_path: Path, photo) -> Path:
    """tmp/input (noise sigma 0.08, 8-bit PNG) and tmp/target, 3 photos of 96x96."""
    for i, n in enumerate(NAMES):
        t = photo(n, 96)
        write_image(tmp_path / "input" / f"{n}.png", _noisy(t, 0.08, i))
        write_image(tmp_path / "target" / f"{n}.png", t)
    return tmp_path


def test_identical_images_report_capped_psnr_and_ssim_one(noisy_set: Path) -> None:
    rep = noisy_set / "out" / "ident.json"
    res = evaluate_folders(noisy_set / "target", noisy_set / "target", report=rep)
    assert res["protocol"]["name"] == "rgb"
    assert res["count"] == 3
    assert [r["name"] for r in res["per_image"]] == sorted(NAMES)
    for r in res["per_image"]:
        assert r["psnr"] == 100.0 and r["psnr_capped"] is True
        assert r["ssim"] == pytest.approx(1.0, abs=1e-12)
        assert r["mae"] == 0.0
    assert res["mean"]["psnr"] == 100.0
    assert any("infinite" in n for n in res["notes"])
    text = rep.read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text)["mean"]["ssim"] == pytest.approx(1.0)


def test_noisy_input_scores_below_its_nlm_denoised_version(noisy_set: Path) -> None:
    # write NLM-denoised images as "predictions" and score them together with the input
    for n in NAMES:
        write_image(noisy_set / "pred" / f"{n}.png", nlm(read_image(noisy_set / "input" / f"{n}.png")))
    res = evaluate_folders(noisy_set / "pred", noisy_set / "target", input_dir=noisy_set / "input", baselines="noise",
                           report=noisy_set / "nlm.json")
    inp, pred = res["methods"]["input"]["mean"], res["methods"]["pred"]["mean"]
    assert 20.0 < inp["psnr"] < 24.0  # sigma 0.08 -> about 22 dB
    assert pred["psnr"] > inp["psnr"] + 3.0
    assert pred["ssim"] > inp["ssim"] + 0.1
    assert res["gain_db"]["over_input"] == pytest.approx(pred["psnr"] - inp["psnr"])
    # the baseline run inside eval is the same NLM as the written predictions (8-bit PNG round trip aside)
    assert res["methods"]["nlm"]["mean"]["psnr"] == pytest.approx(pred["psnr"], abs=0.05)
    best = res["gain_db"]["best_baseline"]
    assert best in ("nlm", "bilateral")
    assert res["gain_db"]["over_best_baseline"] == pytest.approx(pred["psnr"] - res["methods"][best]["mean"]["psnr"])
    # per-image values are the metrics module's
    for row in res["methods"]["input"]["per_image"]:
        ref = psnr(read_image(noisy_set / "input" / f"{row['name']}.png"), read_image(noisy_set / "target" / f"{row['name']}.png"))
        assert row["psnr"] == pytest.approx(ref, abs=1e-9)
    # CSV: one row per method and image plus a mean row per method
    rows = list(csv.DictReader((noisy_set / "nlm.csv").open()))
    assert len(rows) == 4 * (3 + 1)
    assert {r["protocol"] for r in rows} == {"rgb"}
    md = (noisy_set / "nlm.md").read_text()
    assert "PSNR (rgb)" in md and "vs input" in md
    images = sorted((noisy_set / "nlm_images").iterdir())
    assert [p.name.split("_")[0] for p in images] == ["best", "worst"]
    strip = read_image(images[0])
    assert strip.shape[1] > 4 * 96  # input | best baseline | pred | target


class _Smooth(nn.Module):
    """A fixed 5x5 Gaussian smoother: a stand-in denoising model."""


    def __init__(self) -> None:
        super().__init__()
        k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
        k = torch.outer(k, k) / 256.0
        self.conv = nn.Conv2d(3, 3, 5, padding=2, groups=3, bias=False, padding_mode="reflect")
        with torch.no_grad():
            self.conv.weight.copy_(k.expand(3, 1, 5, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_evaluate_model_on_folder_pair_with_baselines(noisy_set: Path) -> None:
    res = evaluate_model(_Smooth(), (noisy_set / "input", noisy_set / "target"), baselines="noise", tile=0,
                         device="cpu", backend="eager", protocol="y", crop_border=2)
    assert res["protocol"]["name"] == "y+crop2"
    assert res["primary"] == "model" and res["methods"]["model"]["kind"] == "model"
    assert set(res["methods"]) == {"input", "model", "nlm", "bilateral"}
    assert res["gain_db"]["over_input"] > 2.0  # smoothing helps at sigma 0.08
    assert res["ranking"][-1] == "input"


def test_cli_eval_model_package_and_pred_modes(noisy_set: Path, capsys) -> None:
    from restorekit.models.package import save_package
    from restorekit.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("nafnet", width=8, enc_blk_nums=[1, 1], middle_blk_num=1, dec_blk_nums=[1, 1])
    pkg = noisy_set / "tiny.safetensors"
    save_package(model, pkg, train_size=(64, 64))
    rep = noisy_set / "cli" / "model.json"
    rc = main(["eval", "--model", str(pkg), "--input", str(noisy_set / "input"), "--target", str(noisy_set / "target"),
               "--report", str(rep), "--baselines", "nlm", "--tile", "0", "--device", "cpu", "--backend", "eager"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "protocol rgb" in out and "gain over input" in out
    data = json.loads(rep.read_text())
    assert data["model"] == str(pkg)
    assert set(data["methods"]) == {"input", "model", "nlm"}
    assert len(data["per_image"]) == 3 and all(math.isfinite(r["psnr"]) for r in data["per_image"])
    assert rep.with_suffix(".csv").is_file() and rep.with_suffix(".md").is_file()
    # pred mode with the Y protocol and crop border
    rc = main(["eval", "--pred", str(noisy_set / "input"), "--target", str(noisy_set / "target"), "--protocol", "y",
               "--crop-border", "4", "--report", str(noisy_set / "cli" / "pred.json"), "--no-images"])
    assert rc == 0
    data = json.loads((noisy_set / "cli" / "pred.json").read_text())
    assert data["protocol"]["name"] == "y+crop4"
    assert not (noisy_set / "cli" / "pred_images").exists()


def test_cli_errors_name_the_problem(noisy_set: Path, capsys) -> None:
    assert main(["eval", "--report", str(noisy_set / "x.json")]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err
    assert main(["eval", "--pred", str(noisy_set / "missing"), "--target", str(noisy_set / "target"), "--report", str(noisy_set / "x.json")]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["eval", "--pred", str(noisy_set / "input"), "--target", str(noisy_set / "target"), "--protocol", "lab",
                 "--report", str(noisy_set / "x.json")]) == 2
    assert "protocol" in capsys.readouterr().err


def test_unpaired_and_mismatched_files(noisy_set: Path, photo) -> None:
    write_image(noisy_set / "input" / "extra.png", photo("rocket", 96))
    with pytest.raises(DataError, match="extra"):
        evaluate_folders(noisy_set / "input", noisy_set / "target")
    res = evaluate_folders(noisy_set / "input", noisy_set / "target", on_missing="skip")
    assert res["count"] == 3
    write_image(noisy_set / "target" / "extra.png", photo("rocket", 64))
    with pytest.raises(DataError, match="sizes differ"):
        evaluate_folders(noisy_set / "input", noisy_set / "target")


def test_gopro_layout_folder_and_conditions(tmp_path: Path, photo) -> None:
    for scene, names in (("GOPR0001_01", ["astronaut", "coffee"]), ("GOPR0002_02", ["chelsea", "rocket"])):
        for n in names:
            t = photo(n, 64)
            write_image(tmp_path / scene / "sharp" / f"{n}.png", t)
            write_image(tmp_path / scene / "blur" / f"{n}.png", gaussian(t, sigma=1.5, channel_axis=-1).astype(np.float32))
    res = evaluate_model(nn.Identity(), tmp_path, baselines="blur", tile=0, device="cpu", backend="eager")
    assert [r["name"] for r in res["per_image"]] == ["GOPR0001_01/astronaut", "GOPR0001_01/coffee", "GOPR0002_02/chelsea", "GOPR0002_02/rocket"]
    assert res["gain_db"]["over_input"] == pytest.approx(0.0, abs=1e-9)  # identity model = the input
    assert set(res["by_condition"]["scene"]) == {"GOPR0001_01", "GOPR0002_02"}
    assert res["by_condition"]["scene"]["GOPR0001_01"]["input"]["n"] == 2
    # deconvolution helps on Gaussian blur
    assert res["methods"]["wiener"]["mean"]["psnr"] > res["methods"]["input"]["mean"]["psnr"]


def test_per_condition_breakdown_and_pairs_api(photo) -> None:
    samples = []
    for i, n in enumerate(NAMES + ("rocket",)):
        t = photo(n, 64)
        iso = 800 if i % 2 == 0 else 3200
        noisy = _noisy(t, 0.02 if iso == 800 else 0.08, i)
        samples.append(EvalSample(name=n, target=t, input=noisy, pred=noisy, conditions={"iso": iso, "sigma": 0.1 * i}))
    res = evaluate_samples(samples, baselines="none")
    groups = res["by_condition"]["iso"]
    assert set(groups) == {"800", "3200"}
    assert groups["800"]["pred"]["n"] == 2
    assert groups["800"]["pred"]["psnr"] > groups["3200"]["pred"]["psnr"] + 8
    assert "sigma" not in res["by_condition"]  # continuous parameters are not broken down
    # tensors in CHW layout through evaluate_pairs
    t = torch.from_numpy(photo("coffee", 48)).permute(2, 0, 1)
    res2 = evaluate_pairs([("c", t, t, t)], metrics=("psnr", "ssim", "ms_ssim"))
    assert res2["mean"]["ssim"] == pytest.approx(1.0) and res2["mean"]["ms_ssim"] == pytest.approx(1.0)


def test_config_validation_split(tmp_path: Path) -> None:
    import yaml

    cfg = tmp_path / "data.yaml"
    cfg.write_text(yaml.safe_dump({"kind": "skimage", "names": ["astronaut", "coffee", "chelsea", "rocket"],
                                   "val_fraction": 0.5, "degrade": "demo-deblur", "val_patch": 64}))
    res = evaluate_model(nn.Identity(), cfg, baselines="none", tile=0, device="cpu", backend="eager")
    assert res["count"] == 2 and res["data"] == str(cfg)
    assert res["gain_db"]["over_input"] == pytest.approx(0.0, abs=1e-9)
    assert all(r.get("conditions") for r in res["per_image"])  # sampled degradation parameters travel along


def test_baseline_estimators_on_real_photos(photo) -> None:
    t = photo("astronaut", 128)
    for sigma in (0.03, 0.08):
        assert estimate_noise_sigma(_noisy(t, sigma, 0)) == pytest.approx(sigma, abs=0.012)
    for s in (1.0, 2.0, 3.0):
        blurred = gaussian(photo("coffee", 192), sigma=s, channel_axis=-1).astype(np.float32)
        assert estimate_blur_sigma(blurred) == pytest.approx(s, abs=0.5)
    blurred = gaussian(t, sigma=2.0, channel_axis=-1).astype(np.float32)
    assert psnr(wiener(blurred), t) > psnr(blurred, t) + 0.5
    assert resolve_baselines("noise,wiener") == ["nlm", "bilateral", "wiener"]
    assert resolve_baselines("none") == []
    with pytest.raises(ConfigError, match="nope"):
        resolve_baselines("nope")


def test_raw_config_per_iso_breakdown(tmp_path: Path, photo) -> None:
    """Raw samples (rggb/cond/residual) run through the conditional model; results broken down by ISO."""
    import yaml

    from restorekit.models.registry import create_model
    from restorekit.raw.unprocess import make_synthetic_scenes

    root = tmp_path / "scenes"
    make_synthetic_scenes(root, [(n, photo(n, 64)) for n in ("astronaut", "coffee", "chelsea", "rocket")],
                          isos=(100, 800, 6400), seed=0)
    cfg = tmp_path / "raw.yaml"
    cfg.write_text(yaml.safe_dump({"kind": "raw", "root": str(root), "val_fraction": 0.5}))
    torch.manual_seed(0)
    model = create_model("nafnet_cond", chans=[8, 16], enc_blk_nums=[1], middle_blk_num=1, dec_blk_nums=[1])
    res = evaluate_model(model, cfg, baselines="nlm", device="cpu", report=tmp_path / "raw.json")
    assert res["count"] == 4  # 2 validation scenes x 2 noisy ISOs
    assert set(res["by_condition"]["iso"]) == {"800", "6400"}
    iso = res["by_condition"]["iso"]
    assert iso["800"]["input"]["psnr"] > iso["6400"]["input"]["psnr"]  # more noise at the higher ISO
    assert iso["6400"]["nlm"]["psnr"] > iso["6400"]["input"]["psnr"]
    assert "PSNR by iso" in (tmp_path / "raw.md").read_text()


def test_optional_lpips_column(tmp_path: Path, photo) -> None:
    torch.manual_seed(0)
    lin = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate((64, 128, 256, 512, 512))}
    torch.save(lin, tmp_path / "vgg.pth")
    t = photo("chelsea", 48)
    noisy = _noisy(t, 0.1, 0)
    res = evaluate_pairs([("c", noisy, t, noisy), ("d", t, t, noisy)], lpips_weights=tmp_path / "vgg.pth", vgg_weights="random")
    assert "lpips" in res["metrics"]
    lp = {r["name"]: r["lpips"] for r in res["per_image"]}
    assert lp["d"] == pytest.approx(0.0, abs=1e-7) and lp["c"] > 0
    with pytest.raises(ConfigError, match="lpips"):
        evaluate_pairs([("c", noisy, t)], metrics=("psnr", "lpips"))
