"""Fixtures of the data tests: small real-photo datasets in the supported layouts."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from restorekit.degrade import build_degrader
from restorekit.utils.seed import sample_rng

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field"]


def save(path: Path, img: np.ndarray, quality: int = 95) -> Path:
    """Write float [0,1] RGB (or uint8/uint16) to PNG/JPEG with OpenCV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if img.dtype == np.float32 or img.dtype == np.float64:
        img = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    params = [int(cv2.IMWRITE_JPEG_QUALITY), quality] if path.suffix.lower() in (".jpg", ".jpeg") else []
    ok = cv2.imwrite(str(path), np.ascontiguousarray(img[..., ::-1]), params)
    assert ok
    return path


def blurred(img: np.ndarray, i: int) -> np.ndarray:
    return build_degrader("gopro-like")(img, sample_rng(0, i))[0]


@pytest.fixture
def gopro_root(tmp_path: Path, photo) -> Path:  # noqa: ANN001
    """Two scenes x 3 frames (96x128 crops of real photos), blur/ + sharp/ PNGs."""
    root = tmp_path / "gopro"
    for i, name in enumerate(PHOTOS):
        scene = f"GOPR000{i // 3}"
        sharp = photo(name, 160)[:96, :128]
        save(root / scene / "sharp" / f"{i:06d}.png", sharp)
        save(root / scene / "blur" / f"{i:06d}.png", blurred(sharp, i))
    return root


@pytest.fixture
def paired_dirs(tmp_path: Path, photo) -> tuple[Path, Path]:  # noqa: ANN001
    """input/ as JPEG, target/ as PNG, same stems (extensions differ)."""
    inp, tgt = tmp_path / "input", tmp_path / "target"
    for i, name in enumerate(PHOTOS[:4]):
        sharp = photo(name, 120)
        save(tgt / f"{name}.png", sharp)
        save(inp / f"{name}.jpg", blurred(sharp, i), quality=98)
    return inp, tgt


@pytest.fixture
def clean_dir(tmp_path: Path, photo) -> Path:  # noqa: ANN001
    d = tmp_path / "clean"
    for name in PHOTOS[:5]:
        save(d / f"{name}.png", photo(name, 140))
    return d


@pytest.fixture
def save_image():  # noqa: ANN201
    """The ``save(path, img, quality=95)`` helper."""
    return save
