"""Raw datasets from synthetic DNG scenes and from the packed JPEG proxy."""

from __future__ import annotations

import csv
import dataclasses
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


# ------------------------------------------------------------------ the Raw Restorer seed's JPEG dataset layout
SEED_SHIFT = (3.0, 2.0)  # the noisy frames see the scene shifted by (dx, dy) pixels


def write_seed_dataset(root, photo, *, isos=(800, 3200), size=96, shift=SEED_SHIFT, seed=0):
    """Write what the seed's ``0_produce_small_dataset.ipynb`` writes, from real photos.

    Per scene: ``<gt>.jpg`` (the clean image); per noisy frame ``<noisy>.jpg`` (its
    demosaic) and ``<noisy>_bayer.jpg`` (the mosaic, one channel); all gamma 1/2.2,
    8-bit, JPEG quality 100; ``align_data.csv`` with the seed's pandas columns
    (index, cc, noisy_image, gt_image, gt_mean, noisy_mean, noise_level, m00..m12, iso).
    The noisy frames are the clean scene shifted by ``shift``: the CSV's matrix undoes it.
    """
    import cv2
    from PIL import Image

    from restorekit.raw.bayer import demosaic_malvar, gamma_encode

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    dx, dy = shift
    m = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    for name in ("astronaut", "coffee", "chelsea"):
        clean = photo(name, size + 16) ** 2.2  # linear light
        gt = clean[8:-8, 8:-8]
        # noisy(x) = clean(x + shift): warping the ground truth with m (inverse map) aligns it
        moved = cv2.warpAffine(clean, m, (size + 16, size + 16), flags=cv2.INTER_LINEAR + cv2.WARP_INVERSE_MAP)[8:-8, 8:-8]
        gt_name = f"Bayer_{name}_ISO100_sha1.arw"
        Image.fromarray((gamma_encode(gt) * 255).astype(np.uint8)).save(root / f"{gt_name}.jpg", quality=100)
        for iso in isos:
            sigma = 0.01 * iso / 800
            noisy_mosaic = np.clip(mosaic_rgb(moved) + rng.normal(0, sigma, moved.shape[:2]), 0, 1).astype(np.float32)
            noisy_name = f"Bayer_{name}_ISO{iso}_sha{iso}.arw"
            Image.fromarray((gamma_encode(noisy_mosaic) * 255).astype(np.uint8)).save(root / f"{noisy_name}_bayer.jpg", quality=100)
            demosaiced = np.clip(demosaic_malvar(gamma_encode(noisy_mosaic)), 0, 1)
            Image.fromarray((demosaiced * 255).astype(np.uint8)).save(root / f"{noisy_name}.jpg", quality=100)
            rows.append({"cc": 0.97, "noisy_image": noisy_name, "gt_image": gt_name, "gt_mean": float(gt.mean()),
                         "noisy_mean": float(noisy_mosaic.mean()), "noise_level": f"[{sigma} {sigma} {sigma}]",
                         **{f"m{i}{j}": float(m[i, j]) for i in range(2) for j in range(3)}, "iso": float(iso)})
    rows[-1]["cc"] = 0.5  # a badly aligned pair (min_cc drops it)
    with open(root / "align_data.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["", *rows[0]])
        w.writeheader()
        for i, r in enumerate(rows):
            w.writerow({"": i, **r})
    return root


@pytest.fixture(scope="module")
def seed_set(tmp_path_factory, photo):
    return write_seed_dataset(tmp_path_factory.mktemp("seed_raw"), photo)


def test_seed_layout_reader_yields_aligned_pairs_with_the_csv_iso(seed_set):
    from restorekit.raw.dataset import is_seed_layout, load_raw_pair, read_seed_index

    assert is_seed_layout(seed_set) and not is_seed_layout(seed_set, "other.csv")
    pairs = read_seed_index(seed_set)
    assert [p.iso for p in pairs] == [800, 3200] * 3
    assert pairs[0].name == "Bayer_astronaut_ISO800_sha800.arw" and pairs[0].scene == "Bayer_astronaut"
    assert pairs[0].mosaic.name == "Bayer_astronaut_ISO800_sha800.arw_bayer.jpg"
    assert pairs[0].gt.name == "Bayer_astronaut_ISO100_sha1.arw.jpg" and pairs[0].warp == (1, 0, 3, 0, 1, 2)
    assert pairs[-1].cc == 0.5
    aligned = load_raw_pair(pairs[0], demosaic="malvar")
    unaligned = load_raw_pair(dataclasses.replace(pairs[0], warp=None), demosaic="malvar")
    res = aligned["residual"]
    assert aligned["mosaic"].shape == (96, 96) and res.shape == aligned["target"].shape == (96, 96, 3)

    def psnr(a, b):
        a, b = a[8:-8, 8:-8], b[8:-8, 8:-8]
        return float(10 * np.log10(1 / np.mean((a - b) ** 2)))

    # the CSV's warp puts the ground truth onto the noisy frame: far closer than without it
    assert psnr(res, aligned["target"]) > psnr(res, unaligned["target"]) + 5
    assert psnr(res, aligned["target"]) > 25
    # the ground truth was scaled to the residual's mean (the seed's exposure match)
    assert abs(aligned["target"].mean() - res.mean()) < 2e-3
    # Malvar beats bilinear on this real-photo mosaic against the ground truth
    bil = load_raw_pair(pairs[0], demosaic="bilinear")
    assert psnr(res, aligned["target"]) > psnr(bil["residual"], aligned["target"])


def test_seed_layout_in_a_config_trains_on_crops(seed_set):
    cfg = parse_data_config({"kind": "raw", "root": str(seed_set), "patch_size": 32, "val_patch": 64, "demosaic": "malvar",
                             "min_cc": 0.9})
    assert isinstance(cfg, RawDataConfig) and cfg.format == "auto"
    train, val = build_raw_datasets(cfg, seed=42)
    names = [p.name for p in train.pairs + val.pairs]
    assert len(names) == 5 and "Bayer_chelsea_ISO3200_sha3200.arw" not in names  # cc 0.5 dropped
    assert {p.scene for p in val.pairs}.isdisjoint({p.scene for p in train.pairs})
    s = train[0]
    assert s["rggb"].shape == (4, 16, 16) and s["residual"].shape == s["target"].shape == (3, 32, 32)
    pair = train.pairs[0]
    assert s["iso"] == pair.iso and abs(float(s["cond"][0]) - pair.iso / 6400) < 1e-7
    v = val[0]
    assert _psnr(v["residual"], v["target"]) > 20
    forced = parse_data_config({"kind": "raw", "root": str(seed_set), "format": "seed", "csv": "align_data.csv"})
    assert len(build_raw_datasets(forced, seed=0)[0].pairs) >= 3


def test_seed_layout_errors_name_the_file(seed_set, tmp_path):
    from restorekit.raw.dataset import read_seed_index

    with pytest.raises(ConfigError, match="csv"):
        parse_data_config({"kind": "raw", "root": str(seed_set), "csv": "align.txt"})
    with pytest.raises(ConfigError, match="color_space"):
        parse_data_config({"kind": "raw", "root": str(seed_set), "color_space": "srgb"})
    bad = tmp_path / "bad"
    shutil.copytree(seed_set, bad)
    (bad / "Bayer_coffee_ISO800_sha800.arw_bayer.jpg").unlink()
    with pytest.raises(DataError, match="Bayer_coffee_ISO800_sha800.arw_bayer.jpg"):
        read_seed_index(bad)
    with pytest.raises(DataError, match="no 'missing.csv'"):
        build_raw_datasets(RawDataConfig(root=str(bad), format="seed", csv="missing.csv"), seed=0)
    text = (seed_set / "align_data.csv").read_text().replace(",800.0\n", ",loud\n", 1)
    (bad / "align_data.csv").write_text(text)
    with pytest.raises(DataError, match="row 2"):
        read_seed_index(bad)


def test_raw_files_in_lin_rec2020(scenes):
    from restorekit.raw.bayer import camera_to_space_matrix, demosaic_malvar, mosaic_to_space, xyz_to_cam_matrix
    from restorekit.raw.dataset import load_raw_pair
    from restorekit.raw.io import read_raw

    pair = discover_raw_pairs(scenes)[0]
    cam = load_raw_pair(pair, demosaic="malvar", match_exposure=False)
    rec = load_raw_pair(pair, demosaic="malvar", match_exposure=False, color_space="lin_rec2020")
    raw = read_raw(pair.noisy)
    t = camera_to_space_matrix(xyz_to_cam_matrix(raw), "lin_rec2020")
    np.testing.assert_allclose(rec["mosaic"], mosaic_to_space(raw.mosaic(), t), atol=1e-6)
    np.testing.assert_allclose(rec["residual"], np.clip(demosaic_malvar(rec["mosaic"]), 0, 1), atol=1e-6)
    assert np.abs(rec["residual"] - cam["residual"]).mean() > 1e-3


def test_min_cc_refuses_raw_pairs_whose_alignment_is_rejected(tmp_path, photo):
    """With ``align: true`` and ``min_cc``, a raw pair whose ground truth does not match its noisy frame
    (here: another photo's ground truth under the scene's name) is skipped with a warning instead of
    training on an unaligned target; the well-aligned pairs are served."""
    from restorekit.raw.dataset import MisalignedPairError, RawDenoiseDataset, load_raw_pair

    good, other = tmp_path / "good", tmp_path / "other"
    make_synthetic_scenes(good, [("astronaut", photo("astronaut", 96)), ("rocket", photo("rocket", 96))], isos=(100, 3200), seed=0)
    make_synthetic_scenes(other, [("rocket", photo("coffee", 96))], isos=(100, 3200), seed=1)
    gt = next(good.glob("rocket_ISO100*"))
    shutil.copyfile(next(other.glob("rocket_ISO100*")), gt)  # rocket's noisy frame now meets coffee's ground truth
    cfg = parse_data_config({"kind": "raw", "root": str(good), "align": True, "min_cc": 0.9, "patch_size": 32})
    pairs = sorted(discover_raw_pairs(good), key=lambda p: p.name)
    bad = next(p for p in pairs if "rocket" in p.name)
    with pytest.raises(MisalignedPairError, match="rocket"):
        load_raw_pair(bad, align=True, min_cc=0.9)
    assert load_raw_pair(bad, align=True, min_cc=None)["target"].shape[:2] == (96, 96)  # no threshold: kept as before
    ds = RawDenoiseDataset(pairs, cfg, train=True)
    with pytest.warns(UserWarning, match="skipping raw pair .*rocket"):
        samples = [ds[i] for i in range(len(ds))]
    assert {s["name"] for s in samples} == {p.name for p in pairs if "astronaut" in p.name}
    for s in samples:
        assert _psnr(s["residual"], s["target"]) > 15  # a noisy frame against its own aligned ground truth
    only_bad = RawDenoiseDataset([bad], cfg, train=True)
    with pytest.raises(DataError, match="every pair failed alignment at min_cc=0.9"), pytest.warns(UserWarning):
        only_bad[0]
