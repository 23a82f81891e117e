"""Each dataset layout, its pairing checks (missing partner, size mismatch, unreadable) and splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from restorekit.data import build_datasets
from restorekit.data.config import parse_data_config
from restorekit.errors import ConfigError, DataError, ImageReadError


def build(cfg: dict, **kw):  # noqa: ANN001, ANN201
    return build_datasets(parse_data_config(cfg), seed=kw.pop("seed", 0), **kw)


def test_gopro_layout_pairs_by_name_and_splits_by_scene(gopro_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train, val = build({"kind": "gopro", "root": str(gopro_root), "patch_size": 64, "val_fraction": 0.5}, run_dir=run)
    assert len(train) == 3 and len(val) == 3
    split = json.loads((run / "split.json").read_text())
    scenes = lambda names: {n.split("/")[0] for n in names}  # noqa: E731
    assert scenes(split["train"]).isdisjoint(scenes(split["val"]))  # a scene never straddles the split
    s = train[0]
    assert s["input"].shape == (3, 64, 64) and s["target"].shape == (3, 64, 64)
    assert s["name"].startswith("GOPR000") and "params" not in s
    v = val[0]
    assert v["input"].shape == (3, 96, 128)  # full image for validation by default


def test_gopro_blur_gamma_and_missing_scene_dirs(gopro_root: Path) -> None:
    with pytest.raises(DataError, match="blur_gamma"):
        build({"kind": "gopro", "root": str(gopro_root), "blur_dir": "blur_gamma"})
    with pytest.raises(DataError, match="not a folder"):
        build({"kind": "gopro", "root": str(gopro_root / "nope")})


def test_gopro_val_dir_is_used_as_is(gopro_root: Path, tmp_path: Path) -> None:
    train, val = build({"kind": "gopro", "root": str(gopro_root), "val_dir": str(gopro_root / "GOPR0001"), "val_patch": 48})
    # val_dir lies inside root: its 3 frames are held out by content, not trained on as well
    assert len(val) == 3 and len(train) == 3
    assert not set(train.names) & {n.split("/")[-1] for n in val.names}
    assert val[0]["input"].shape == (3, 48, 48)


def test_paired_folders_match_stems_across_extensions(paired_dirs: tuple[Path, Path]) -> None:
    inp, tgt = paired_dirs
    train, val = build({"kind": "paired", "input_dir": str(inp), "target_dir": str(tgt), "patch_size": 32, "val_fraction": 0.25})
    assert len(train) == 3 and len(val) == 1
    assert sorted(train.names + val.names) == ["astronaut", "chelsea", "coffee", "rocket"]
    s = val[0]
    # the JPEG input is the blurred target: close, but not equal
    diff = (s["input"] - s["target"]).abs().mean().item()
    assert 0.003 < diff < 0.2


def test_missing_partner_size_mismatch_and_unreadable_are_listed_together(paired_dirs, photo, save_image) -> None:  # noqa: ANN001
    inp, tgt = paired_dirs
    save_image(inp / "orphan.png", photo("camera", 64))  # no target
    save_image(tgt / "lonely.png", photo("camera", 64))  # no input
    save_image(inp / "small.png", photo("coins", 64))
    save_image(tgt / "small.png", photo("coins", 80))  # size mismatch
    (inp / "broken.png").write_bytes(b"this is not a png")
    save_image(tgt / "broken.png", photo("camera", 64))
    cfg = {"kind": "paired", "input_dir": str(inp), "target_dir": str(tgt)}
    with pytest.raises(DataError) as ei:
        build(cfg)
    msg = str(ei.value)
    assert "4 problem(s)" in msg
    for needle in ("orphan.png", "lonely.png", "small.png", "64x64", "80x80", "broken.png", "not a recognised image", "on_error"):
        assert needle in msg, needle
    with pytest.warns(UserWarning, match="skipping them: 4 samples remain"):
        train, val = build({**cfg, "on_error": "skip", "val_fraction": 0.25})
    assert sorted(train.names + val.names) == ["astronaut", "chelsea", "coffee", "rocket"]


def test_truncated_file_found_by_full_check(paired_dirs, tmp_path: Path) -> None:  # noqa: ANN001
    inp, tgt = paired_dirs
    data = (tgt / "coffee.png").read_bytes()
    (tgt / "coffee.png").write_bytes(data[: len(data) // 2])  # header intact, pixels cut
    cfg = {"kind": "paired", "input_dir": str(inp), "target_dir": str(tgt), "check": "full"}
    with pytest.raises(DataError, match="coffee.png"):
        build(cfg)
    # header-only check lets it through; the loader then fails (or skips) when it meets it
    train, val = build({**cfg, "check": "header", "val_fraction": 0.0, "patch_size": 32})
    idx = train.names.index("coffee")
    with pytest.raises(ImageReadError, match="coffee.png"):
        train[idx]
    train_skip, _ = build({**cfg, "check": "header", "val_fraction": 0.0, "patch_size": 32, "on_error": "skip"})
    with pytest.warns(UserWarning, match="skipping sample 'coffee'"):
        s = train_skip[idx]
    assert s["name"] != "coffee"


def test_pairs_list_csv_and_json_with_teacher(paired_dirs, tmp_path: Path) -> None:  # noqa: ANN001
    inp, tgt = paired_dirs
    names = ["astronaut", "chelsea", "coffee", "rocket"]
    csv_path = tmp_path / "pairs.csv"
    lines = ["input,target,teacher"] + [f"input/{n}.jpg,target/{n}.png,{tgt / n}.png" for n in names]
    csv_path.write_text("\n".join(lines) + "\n")
    train, val = build({"kind": "pairs_list", "file": str(csv_path), "patch_size": 48, "val_fraction": 0.25})
    s = train[0]
    assert set(s) >= {"input", "target", "teacher", "name"}
    assert torch.equal(s["teacher"], s["target"])  # cropped and augmented in sync
    js = tmp_path / "pairs.json"
    js.write_text(json.dumps([{"input": f"input/{n}.jpg", "target": f"target/{n}.png"} for n in names]))
    train2, _ = build({"kind": "pairs_list", "file": str(js), "val_fraction": 0.0})
    assert len(train2) == 4
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"input": "input/astronaut.jpg", "target": "target/missing.png"}, {"input": "input/coffee.jpg", "target": "target/coffee.png"}]))
    with pytest.raises(DataError, match="missing.png"):
        build({"kind": "pairs_list", "file": str(bad)})
    with pytest.raises(DataError, match="'input' and 'target'"):
        (tmp_path / "nohead.csv").write_text("a,b\n1,2\n")
        build({"kind": "pairs_list", "file": str(tmp_path / "nohead.csv")})


def test_extra_folder_is_aligned_and_missing_extras_reported(paired_dirs, tmp_path: Path, save_image, photo) -> None:  # noqa: ANN001
    inp, tgt = paired_dirs
    teacher = tmp_path / "teacher"
    for p in tgt.iterdir():
        (teacher / p.name).parent.mkdir(exist_ok=True)
        (teacher / p.name).write_bytes(p.read_bytes())
    cfg = {"kind": "paired", "input_dir": str(inp), "target_dir": str(tgt), "extra": {"teacher": str(teacher)}, "patch_size": 40}
    train, _ = build({**cfg, "val_fraction": 0.0})
    for i in range(len(train)):
        s = train[i]
        assert torch.equal(s["teacher"], s["target"])
    (teacher / "rocket.png").unlink()
    with pytest.raises(DataError, match="no 'teacher' file"):
        build(cfg)


def test_clean_folder_is_degraded_on_the_fly(clean_dir: Path, tmp_path: Path) -> None:
    train, val = build({"kind": "clean", "dir": str(clean_dir), "degrade": "manuscript", "patch_size": 64}, run_dir=tmp_path / "r")
    assert len(train) == 4 and len(val) == 1
    s = train[0]
    assert isinstance(s["params"], dict) and s["input"].shape == s["target"].shape == (3, 64, 64)
    assert not torch.equal(s["input"], s["target"])
    v1, v2 = val[0], val[0]
    assert torch.equal(v1["input"], v2["input"])  # validation degradation is fixed


def test_skimage_default_photos(tmp_path: Path) -> None:
    train, val = build({"kind": "skimage", "patch_size": 96, "repeat": 2}, run_dir=tmp_path)
    split = json.loads((tmp_path / "split.json").read_text())
    assert not set(split["train"]) & set(split["val"]) and len(val) == 2
    # a stereo partner of a held-out photo never trains: content de-duplication drops it and records why
    dropped = {d["name"] for d in split["dedup"]["dropped"]}
    pairs = [{"motorcycle_left", "motorcycle_right"}]
    for pair in pairs:
        assert not (pair & set(split["train"]) and pair & set(split["val"]))
    assert len(train) == 2 * len(split["train"]) and len(split["train"]) + len(dropped) + 2 == 8
    train2, val2 = build({"kind": "skimage", "val_names": ["coffee"], "names": ["astronaut", "coffee", "rocket"]})
    assert train2.names == ["astronaut", "rocket"] and val2.names == ["coffee"]
    with pytest.raises(ConfigError, match="unknown scikit-image photos"):
        parse_data_config({"kind": "skimage", "names": ["lena"]})


def test_split_is_seeded(clean_dir: Path) -> None:
    cfg = {"kind": "clean", "dir": str(clean_dir), "val_fraction": 0.4}
    a = build(cfg, seed=1)[1].names
    b = build(cfg, seed=1)[1].names
    splits = {tuple(build(cfg, seed=s)[1].names) for s in range(8)}
    assert a == b and len(a) == 2 and len(splits) > 1


def test_limit_and_config_errors(clean_dir: Path) -> None:
    train, val = build({"kind": "clean", "dir": str(clean_dir), "limit": 2, "val_fraction": 0.5})
    assert len(train) + len(val) == 2
    with pytest.raises(ConfigError, match="unknown key"):
        parse_data_config({"kind": "clean", "dir": "x", "patchsize": 3})
    with pytest.raises(ConfigError, match="kind"):
        parse_data_config({"dir": "x"})
    with pytest.raises(ConfigError, match="unknown degradation preset"):
        parse_data_config({"kind": "clean", "dir": "x", "degrade": "blurry"})
    cfg = parse_data_config({"kind": "clean", "dir": "x", "augment": False})
    assert (cfg.augment.hflip, cfg.augment.vflip, cfg.augment.rot90) == (False, False, False)


def test_sixteen_bit_png_is_scaled_correctly(tmp_path: Path, photo, save_image) -> None:  # noqa: ANN001
    img16 = np.rint(photo("coffee", 64) * 65535).astype(np.uint16)
    save_image(tmp_path / "t" / "a.png", img16)
    save_image(tmp_path / "i" / "a.png", img16)
    train, _ = build({"kind": "paired", "input_dir": str(tmp_path / "i"), "target_dir": str(tmp_path / "t"), "patch_size": None, "augment": False, "val_fraction": 0})
    t = train[0]["target"].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(t, img16.astype(np.float32) / 65535, atol=1e-6)


def test_raw_kind_dispatches_to_the_raw_pipeline(monkeypatch, tmp_path: Path) -> None:  # noqa: ANN001
    import restorekit.raw.dataset as rd

    seen = {}

    def fake(cfg, *, seed, run_dir):  # noqa: ANN001, ANN202
        seen.update(cfg=cfg, seed=seed, run_dir=run_dir)
        return "train", "val"

    monkeypatch.setattr(rd, "build_raw_datasets", fake)
    cfg = parse_data_config({"kind": "raw", "root": str(tmp_path)})
    assert build_datasets(cfg, seed=5, run_dir=tmp_path) == ("train", "val")
    assert seen["seed"] == 5 and seen["cfg"] is cfg


def test_exif_rotated_jpeg_pairs_with_upright_target(tmp_path: Path, photo, save_image) -> None:  # noqa: ANN001
    from PIL import Image

    upright = photo("rocket", None)[:120, :200]  # (120, 200): landscape
    save_image(tmp_path / "t" / "r.png", upright)
    stored = np.rot90(upright, 1)  # stored as portrait; EXIF orientation 6 rotates it back (90 deg clockwise)
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp_path / "i").mkdir()
    Image.fromarray((stored * 255 + 0.5).astype(np.uint8)).save(tmp_path / "i" / "r.jpg", quality=98, exif=exif.tobytes())
    train, _ = build({"kind": "paired", "input_dir": str(tmp_path / "i"), "target_dir": str(tmp_path / "t"), "patch_size": None, "augment": False, "val_fraction": 0})
    s = train[0]
    assert s["input"].shape == s["target"].shape == (3, 120, 200)
    assert (s["input"] - s["target"]).abs().mean().item() < 0.02
