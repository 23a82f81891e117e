"""Raw datasets from synthetic DNG scenes and from the packed JPEG proxy."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch

from restorekit.data.config import parse_data_config
from restorekit.errors import ConfigError, DataError
from restorekit.raw.bayer import mosaic_rgb, unpack_rggb
from restorekit.raw.config import RawDataConfig
from restorekit.raw.dataset import (
    bayer_safe_window,
    build_raw_datasets,
    discover_raw_pairs,
    iso_from_name,
    per_iso_summary,
)
from restorekit.raw.pack import pack_raw_dataset
from restorekit.raw.unprocess import make_synthetic_scenes

ISOS = (100, 800, 3200, 6400)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory, photo):
    root = tmp_path_factory.mktemp("raw_scenes")
    photos = [("astronaut", photo("astronaut", 96)), ("coffee", photo("coffee", 96)), ("chelsea", photo("chelsea", 96))]
    make_synthetic_scenes(root, photos, isos=ISOS, seed=0)
    return root


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


def test_iso_from_name():
    assert iso_from_name("Bark_ISO3200_capture.dng") == 3200
    assert iso_from_name("scene-a_iso100.nef") == 100
    assert iso_from_name("DSC_0001.nef") is None


def test_flat_layout_lowest_iso_is_ground_truth(scenes):
    pairs = discover_raw_pairs(scenes)
    assert len(pairs) == 3 * 3
    assert {p.iso for p in pairs} == {800, 3200, 6400}
    assert all(p.gt.name == f"{p.scene}_ISO100_synthetic.dng" for p in pairs)


def test_gt_folder_layout(tmp_path, scenes):
    for scene in ("astronaut", "coffee"):
        (tmp_path / scene / "gt").mkdir(parents=True)
        shutil.copy(scenes / f"{scene}_ISO100_synthetic.dng", tmp_path / scene / "gt" / "clean.dng")
        for iso in (800, 6400):
            shutil.copy(scenes / f"{scene}_ISO{iso}_synthetic.dng", tmp_path / scene / f"shot{iso}.dng")
    pairs = discover_raw_pairs(tmp_path)
    assert [p.name for p in pairs] == ["astronaut__shot6400", "astronaut__shot800", "coffee__shot6400", "coffee__shot800"]
    assert {p.iso for p in pairs} == {800, 6400}  # ISO from metadata: no _ISO in these names
    assert all(p.gt.name == "clean.dng" for p in pairs)


def test_samples_shapes_condition_and_noise_order(scenes, tmp_path):
    cfg = RawDataConfig(root=str(scenes), patch_size=64, val_patch=64, val_fraction=0.34)
    train, val = build_raw_datasets(cfg, seed=0, run_dir=tmp_path)
    split = json.loads((tmp_path / "raw_split.json").read_text())
    assert len(train) + len(val) == 9 and len(val) == 3
    assert {r["scene"] for r in split["val"]}.isdisjoint({r["scene"] for r in split["train"]})
    s = train[0]
    assert s["rggb"].shape == (4, 32, 32) and s["residual"].shape == (3, 64, 64) and s["target"].shape == (3, 64, 64)
    assert s["input"] is s["residual"] and s["cond"].shape == (1,)
    assert float(s["cond"][0]) == pytest.approx(s["iso"] / 6400)
    assert all(float(s[k].min()) >= 0 and float(s[k].max()) <= 1 for k in ("rggb", "residual", "target"))
    # PSNR of the noisy input falls with ISO (per-ISO validation rows)
    rows = [{"iso": v["iso"], "psnr_in": _psnr(v["input"], v["target"])} for v in (val[i] for i in range(len(val)))]
    summary = per_iso_summary(rows, keys=("psnr_in",))
    assert sorted(summary) == [800, 3200, 6400]
    assert summary[800]["psnr_in"] > summary[3200]["psnr_in"] > summary[6400]["psnr_in"]


def test_crops_are_bayer_safe_with_flips(photo):
    img = photo("astronaut", 64)
    m = mosaic_rgb(img)
    rng = np.random.default_rng(0)
    for hf in (False, True):
        for vf in (False, True):
            mos, rgb = bayer_safe_window([m, img], 32, rng, hflip=hf, vflip=vf)
            # the cropped, flipped mosaic is the RGGB mosaic of the cropped, flipped image
            np.testing.assert_array_equal(mos, mosaic_rgb(rgb))
    full = bayer_safe_window([m], None, None)[0]
    np.testing.assert_array_equal(full, m)


def test_epochs_change_crops_deterministically(scenes):
    cfg = RawDataConfig(root=str(scenes), patch_size=32)
    a, _ = build_raw_datasets(cfg, seed=1)
    b, _ = build_raw_datasets(cfg, seed=1)
    assert torch.equal(a[0]["rggb"], b[0]["rggb"])
    a.set_epoch(1)
    assert not torch.equal(a[0]["rggb"], b[0]["rggb"])
    a.patch_size = 48
    assert a[0]["target"].shape == (3, 48, 48)
    assert unpack_rggb(a[0]["rggb"]).shape == (48, 48)


def test_iso_filter_and_errors(scenes, tmp_path):
    train, val = build_raw_datasets(RawDataConfig(root=str(scenes), isos=[6400], patch_size=32), seed=0)
    assert {p.iso for p in train.pairs} | {p.iso for p in val.pairs} == {6400}
    with pytest.raises(DataError, match="does not exist"):
        build_raw_datasets(RawDataConfig(root=str(tmp_path / "nope")), seed=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no raw scenes"):
        build_raw_datasets(RawDataConfig(root=str(tmp_path / "empty")), seed=0)
    with pytest.raises(ConfigError, match="patch_size"):
        parse_data_config({"kind": "raw", "root": "x", "patch_size": 255})
    assert isinstance(parse_data_config({"kind": "raw", "root": "x"}), RawDataConfig)


def test_packed_proxy_round_trip(scenes, tmp_path):
    out = tmp_path / "packed"
    res = pack_raw_dataset(scenes, out, quality=95, crop=64, seed=0, split=0.34)
    assert res["written"] == 9 and res["val"] == 3 and res["train"] == 6
    rows = list(csv.DictReader(open(out / "metadata.csv")))
    assert {"name", "iso", "cc", "m00", "m12", "split"} <= set(rows[0])
    assert all(float(r["cc"]) > 0.9 and abs(float(r["m02"])) < 0.2 for r in rows)  # synthetic pairs are aligned
    train, val = build_raw_datasets(RawDataConfig(root=str(out), patch_size=32), seed=0)
    assert len(train) == 6 and len(val) == 3
    assert {p.split for p in val.pairs} == {"val"}
    v = val[0]
    assert v["rggb"].shape == (4, 32, 32) and v["target"].shape == (3, 64, 64)
    # the proxy decodes close to the original raw sample (8-bit gamma JPEG of linear data)
    raw_val = build_raw_datasets(RawDataConfig(root=str(scenes), patch_size=32, val_patch=64, val_fraction=0.34), seed=0)[1]
    by_name = {raw_val.pairs[i].name: raw_val[i] for i in range(len(raw_val))}
    ref = by_name[v["name"]]
    assert _psnr(v["target"], ref["target"]) > 38
    assert _psnr(unpack_rggb(v["rggb"]), unpack_rggb(ref["rggb"])) > 30


def test_cli_pack_raw_and_synth(tmp_path):
    from restorekit.cli.main import main

    assert main(["data", "synth-raw", "--out", str(tmp_path / "scenes"), "--size", "64", "--isos", "100,3200",
                 "--photos", "astronaut,coffee"]) == 0
    assert sorted(p.name for p in (tmp_path / "scenes").iterdir()) == [
        "astronaut_ISO100_synthetic.dng", "astronaut_ISO3200_synthetic.dng",
        "coffee_ISO100_synthetic.dng", "coffee_ISO3200_synthetic.dng"]
    assert main(["data", "pack", "--raw", str(tmp_path / "scenes"), "--out", str(tmp_path / "packed"), "--crop", "32"]) == 0
    info = json.loads((tmp_path / "packed" / "pack.json").read_text())
    assert info["written"] == 2 and info["crop"] == 32
    train, val = build_raw_datasets(RawDataConfig(root=str(tmp_path / "packed"), patch_size=16), seed=0)
    assert len(train) == 1 and len(val) == 1 and val[0]["target"].shape == (3, 32, 32)
