"""Packed datasets (JPEG folder, LMDB, WebDataset shards) read transparently and identically."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import torch

from restorekit.cli.main import main
from restorekit.data import build_datasets
from restorekit.data.config import parse_data_config
from restorekit.data.pack import pack_dataset
from restorekit.errors import DataError


def samples(root: Path, **kw) -> dict:  # noqa: ANN003
    cfg = parse_data_config({"kind": "gopro", "root": str(root), "patch_size": 64, "val_fraction": 0.0, **kw})
    train, _ = build_datasets(cfg, seed=7)
    return {train[i]["name"]: train[i] for i in range(len(train))}


@pytest.mark.parametrize("fmt", ["lmdb", "webdataset"])
def test_lossless_packs_give_identical_samples(gopro_root: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"packed_{fmt}"
    m = pack_dataset(gopro_root, out, format=fmt, workers=1)
    assert m["count"] == 12 and (out / "restorekit-pack.json").is_file()
    ref, got = samples(gopro_root), samples(out)
    assert set(ref) == set(got)
    for n in ref:
        assert torch.equal(ref[n]["input"], got[n]["input"]) and torch.equal(ref[n]["target"], got[n]["target"])
    # a sub-folder of the pack resolves inside it, as it did on disk
    cfg = parse_data_config({"kind": "gopro", "root": str(out / "GOPR0001"), "val_fraction": 0.0, "patch_size": 32})
    assert len(build_datasets(cfg, seed=0)[0]) == 3


def test_webdataset_shards_are_plain_tars(gopro_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "wds"
    pack_dataset(gopro_root, out, format="webdataset", shard_mb=1)
    shards = sorted(out.glob("shard-*.tar"))
    assert len(shards) >= 1
    names = [n for s in shards for n in tarfile.open(s).getnames()]
    assert len(names) == 12 and "GOPR0000/blur/000000.png" in names
    # the webdataset library reads the shards: one sample per file, keyed by its path
    import webdataset as wds

    samples = list(wds.WebDataset([str(s) for s in shards], shardshuffle=False, empty_check=False))
    keys = {s["__key__"] for s in samples}
    assert "GOPR0000/blur/000000" in keys and len(samples) == 12
    assert samples[0]["png"][:8] == b"\x89PNG\r\n\x1a\n"


def test_jpeg_pack_is_close_and_smaller(gopro_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "jpg"
    m = pack_dataset(gopro_root, out, format="jpeg", quality=95, crop=64)
    assert m["quality"] == 95 and m["crop"] == 64
    assert (out / "GOPR0000" / "sharp" / "000000.jpg").is_file()
    src_bytes = sum(p.stat().st_size for p in gopro_root.rglob("*.png"))
    assert m["bytes"] < src_bytes / 2
    got = samples(out, patch_size=None, augment=False)
    assert all(s["input"].shape == (3, 64, 64) for s in got.values())
    ref = samples(gopro_root, patch_size=None, augment=False)
    for n, s in got.items():
        r = ref[n]["target"][:, 16:80, 32:96]  # centre 64 of 96x128
        mse = torch.mean((s["target"] - r) ** 2).item()
        assert 10 * torch.log10(torch.tensor(1.0 / mse)).item() > 35


def test_pack_cli_and_errors(gopro_root: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "cli"
    assert main(["data", "pack", str(gopro_root), "--out", str(out), "--format", "lmdb", "--quality", "90"]) == 0
    man = json.loads((out / "restorekit-pack.json").read_text())
    assert man["format"] == "lmdb" and man["encode"] == "jpeg" and man["quality"] == 90
    assert "GOPR0001/blur/000003.jpg" in man["files"]
    assert main(["data", "pack", str(gopro_root), "--out", str(out)]) == 2  # not empty
    assert "exists and is not empty" in capsys.readouterr().err
    with pytest.raises(DataError, match="holds no images"):
        (tmp_path / "empty").mkdir()
        pack_dataset(tmp_path / "empty", tmp_path / "o")
    assert main(["data", "pack", str(gopro_root), "--out", str(out), "--format", "png", "--overwrite"]) == 0
    assert json.loads((out / "restorekit-pack.json").read_text())["format"] == "png"


def test_pack_raw_dispatches_to_the_raw_pipeline(monkeypatch, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    import restorekit.raw.pack as rp

    seen = {}

    def fake(src, out, **kw):  # noqa: ANN001, ANN003, ANN202
        seen.update(src=src, out=out, **kw)
        return {"written": 3}

    monkeypatch.setattr(rp, "pack_raw_dataset", fake)
    assert main(["data", "pack", str(tmp_path / "raw"), "--out", str(tmp_path / "o"), "--raw", "--quality", "97", "--crop", "512"]) == 0
    assert seen["src"] == tmp_path / "raw" and seen["quality"] == 97 and seen["crop"] == 512
    assert "written" in capsys.readouterr().out
