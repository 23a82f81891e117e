"""`restorekit data preview` renders samples as training sees them, with their parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from restorekit.cli.main import main
from restorekit.data.preview import _fmt_params
from restorekit.io import read_image


def test_preview_of_a_config(clean_dir: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({"seed": 1, "model": {"name": "x"}, "data": {"kind": "clean", "dir": str(clean_dir), "degrade": "manuscript", "patch_size": 64}}))
    out = tmp_path / "grid.png"
    assert main(["data", "preview", str(cfg), "--n", "3", "--out", str(out)]) == 0
    assert "3 train samples, seed 1" in capsys.readouterr().out
    grid = read_image(out)
    # 3 rows of (tiles + caption strip); 64 px patches are shown enlarged 3x (nearest) to 192 px
    assert grid.shape[1] == 192 * 2 + 4
    assert grid.shape[0] > 3 * 192

    # the first tile is exactly the first sample's degraded input
    from restorekit.data import build_datasets
    from restorekit.data.config import parse_data_config

    train, _ = build_datasets(parse_data_config(yaml.safe_load(cfg.read_text())["data"]), seed=1)
    s = train[0]
    tile = grid[:192:3, :192:3]
    ref = s["input"].permute(1, 2, 0).numpy()
    assert np.abs(tile - ref).max() <= 0.5 / 255 + 1e-6
    tgt = grid[:192:3, 196:388:3]
    assert np.abs(tgt - s["target"].permute(1, 2, 0).numpy()).max() <= 0.5 / 255 + 1e-6


def test_preview_of_a_folder_with_a_preset(clean_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.png"
    assert main(["data", "preview", "--images", str(clean_dir), "--degrade", "gopro-like", "--n", "2", "--set", "patch_size=48", "--out", str(out)]) == 0
    assert read_image(out).shape[1] == 192 * 2 + 4


def test_preview_errors(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main(["data", "preview", "--out", str(tmp_path / "x.png")]) == 2
    assert "CONFIG" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {kind: clean, dir: x, patchsize: 3}\n")
    assert main(["data", "preview", str(bad), "--out", str(tmp_path / "x.png")]) == 2
    assert "patchsize: unknown key" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_params_caption_text() -> None:
    lines = _fmt_params({"gaussian_noise": {"sigma": 0.0512345}, "stains": {"stains": [{"x": 1}, {"x": 2}]}})
    assert lines == ["gaussian_noise: sigma=0.05123", "stains: stains=[2]"]
    assert _fmt_params({}) == ["no degradation"]
