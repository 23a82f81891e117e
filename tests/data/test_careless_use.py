"""Issue #18, data side: careless inputs to ``restorekit data`` and the dataset builders give a clear
``error: ...`` (or a listed skip), never a traceback or a silently wrong dataset."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from restorekit.cli.main import main as cli_main
from restorekit.data import build_datasets
from restorekit.data.config import parse_data_config
from restorekit.data.pack import pack_dataset
from restorekit.data.storage import clear_cache
from restorekit.errors import DataError


@pytest.fixture(autouse=True)
def _fresh_storage_cache():
    clear_cache()
    yield
    clear_cache()


def _cli(capsys, *argv: str) -> tuple[int, str, str]:  # noqa: ANN001
    rc = cli_main(list(argv))
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return rc, out.out, out.err


@pytest.fixture
def clean_with_broken_link(clean_dir: Path) -> Path:
    os.symlink(clean_dir / "gone.png", clean_dir / "broken.png")
    return clean_dir


def test_pack_workers_and_shard_size_are_validated(clean_dir: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    rc, _, err = _cli(capsys, "data", "pack", str(clean_dir), "--out", str(tmp_path / "p"), "--workers", "-1")
    assert rc != 0 and err.startswith("error: --workers must be at least 1")
    rc, _, err = _cli(capsys, "data", "pack", str(clean_dir), "--out", str(tmp_path / "p"), "--format", "webdataset", "--shard-mb", "0")
    assert rc != 0 and err.startswith("error: --shard-mb must be at least 1")
    assert not (tmp_path / "p").exists()


def test_pack_output_under_a_plain_file(clean_dir: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    (tmp_path / "afile").write_text("x")
    rc, _, err = _cli(capsys, "data", "pack", str(clean_dir), "--out", str(tmp_path / "afile" / "sub"))
    assert rc != 0 and "lies under the file" in err and str(tmp_path / "afile") in err
    rc, _, err = _cli(capsys, "data", "pack", str(clean_dir), "--out", str(tmp_path / "afile"))
    assert rc != 0 and "is a file" in err
    assert (tmp_path / "afile").read_text() == "x"


def test_broken_symlink_is_listed_as_skipped_by_pack_and_preview(clean_with_broken_link: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    src = clean_with_broken_link
    rc, out, err = _cli(capsys, "data", "pack", str(src), "--out", str(tmp_path / "p"), "--format", "png")
    assert rc == 0, err
    assert "skipped broken.png: broken symbolic link" in err and "packed 5 images" in out
    manifest = json.loads((tmp_path / "p" / "restorekit-pack.json").read_text())
    assert manifest["count"] == 5 and list(manifest["skipped"]) == ["broken.png"]
    with pytest.warns(UserWarning, match=r"\[skipped\] broken: broken symbolic link"):
        rc, out, err = _cli(capsys, "data", "preview", "--images", str(src), "--n", "2", "--out", str(tmp_path / "v.png"))
    assert rc == 0 and (tmp_path / "v.png").is_file()
    # the dataset itself drops it even with on_error: fail (a skip is reported, never fatal)
    with pytest.warns(UserWarning, match="skipped"):
        train, _ = build_datasets(parse_data_config({"kind": "clean", "dir": str(src), "val_fraction": 0, "degrade": "manuscript"}), seed=0)
    assert len(train) == 5 and "broken" not in train.names


def test_pack_into_a_subfolder_of_its_source_does_not_repack_the_pack(clean_dir: Path) -> None:
    out = clean_dir / "packed"
    first = pack_dataset(clean_dir, out, format="png")
    assert first["count"] == 5
    again = pack_dataset(clean_dir, out, format="png", overwrite=True)
    assert again["count"] == 5 and all(not k.startswith("packed/") for k in again["files"])


def test_preview_needs_at_least_one_sample(clean_dir: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    rc, _, err = _cli(capsys, "data", "preview", "--images", str(clean_dir), "--n", "0", "--out", str(tmp_path / "v.png"))
    assert rc != 0 and err.startswith("error: --n must be at least 1")
    assert not (tmp_path / "v.png").exists()


def test_gif_pairs_in_training_folders(tmp_path: Path, photo) -> None:  # noqa: ANN001
    """GIF is in IMAGE_EXTENSIONS: a GIF input pairs with its PNG target and loads as RGB."""
    inp, tgt = tmp_path / "in", tmp_path / "tgt"
    inp.mkdir()
    tgt.mkdir()
    for name in ("astronaut", "coffee"):
        img = np.rint(photo(name, 48) * 255).astype(np.uint8)
        Image.fromarray(img).save(tgt / f"{name}.png")
        Image.fromarray(img).quantize(256).save(inp / f"{name}.gif")
    cfg = {"kind": "paired", "input_dir": str(inp), "target_dir": str(tgt), "patch_size": None, "augment": False, "val_fraction": 0, "check": "full"}
    train, _ = build_datasets(parse_data_config(cfg), seed=0)
    assert sorted(train.names) == ["astronaut", "coffee"]
    s = train[0]
    assert s["input"].shape == s["target"].shape == (3, 48, 48)
    err = (s["input"] - s["target"]).abs().mean().item()
    assert 0.0 < err < 0.03  # a 256-colour palette of the same photo


def test_on_error_skip_drops_a_sample_with_two_ambiguous_targets(paired_dirs, photo, save_image) -> None:  # noqa: ANN001
    inp, tgt = paired_dirs
    save_image(tgt / "coffee.jpg", photo("coffee", 120))  # coffee.png is there already
    cfg = {"kind": "paired", "input_dir": str(inp), "target_dir": str(tgt), "val_fraction": 0, "on_error": "skip"}
    with pytest.warns(UserWarning) as rec:
        train, _ = build_datasets(parse_data_config(cfg), seed=0)
    msg = "\n".join(str(w.message) for w in rec)
    assert "[duplicate] coffee" in msg and "coffee.png" in msg and "coffee.jpg" in msg
    assert "missing" not in msg  # the input is not reported a second time as unpartnered
    assert "coffee" not in train.names and len(train) == 3
    with pytest.raises(DataError, match=r"coffee\.jpg"):
        build_datasets(parse_data_config({**cfg, "on_error": "fail"}), seed=0)


def test_gopro_ambiguous_frames_are_reported_not_overwritten(gopro_root: Path, save_image, photo) -> None:  # noqa: ANN001
    save_image(gopro_root / "GOPR0000" / "sharp" / "000000.jpg", photo("coffee", 96))
    cfg = {"kind": "gopro", "root": str(gopro_root), "val_fraction": 0, "on_error": "skip"}
    with pytest.warns(UserWarning, match=r"\[duplicate\] GOPR0000/000000"):
        train, _ = build_datasets(parse_data_config(cfg), seed=0)
    assert len(train) == 5 and "GOPR0000/000000" not in train.names


def test_data_help_lists_every_subcommand_and_synth_raw_help_is_complete(capsys) -> None:  # noqa: ANN001
    with pytest.raises(SystemExit):
        cli_main(["data", "--help"])
    out = capsys.readouterr().out
    for cmd in ("preview", "pack", "pages", "align", "synth-raw"):
        assert cmd in out.split("positional arguments")[0], cmd  # named in the description too
    with pytest.raises(SystemExit):
        cli_main(["data", "synth-raw", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "Unprocess scikit-image photos" in out
    for text in ("output folder", "(default 100,800,1600,3200,6400)", "(default 256)", "(default astronaut,coffee,chelsea,rocket)", "(default 0)"):
        assert text in out, text
