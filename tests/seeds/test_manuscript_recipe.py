"""The manuscript seed's training recipe: whole page resized to 256, degraded, then cropped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from restorekit.data import transforms as T
from restorekit.data.dataset import RestoreDataset, resize_square
from restorekit.data.sources import clean_items
from restorekit.degrade.pipeline import build_degrader
from restorekit.errors import ConfigError
from restorekit.utils.seed import sample_rng

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(scope="module")
def pages(tmp_path_factory, photo):
    from PIL import Image

    root = tmp_path_factory.mktemp("pages")
    for name, (h, w) in (("astronaut", (300, 220)), ("coffee", (200, 330))):
        img = photo(name, 400)[:h, :w]
        Image.fromarray((img * 255).round().astype(np.uint8)).save(root / f"{name}.png")
    return root


@pytest.mark.parametrize("preset", ["manuscript-kaggle", "manuscript-repo"])
def test_sample_is_resize_degrade_then_crop(pages, preset):
    from PIL import Image

    items, _ = clean_items(str(pages))
    degrader = build_degrader(preset)
    ds = RestoreDataset(items, seed=7, train=True, patch_size=128, degrader=degrader, augment=(False, False, False),
                        resize=256, degrade_before_crop=True)
    ds.set_epoch(3)
    for index, item in enumerate(ds.items):
        s = ds[index]
        page = np.asarray(Image.open(pages / f"{item.name}.png").convert("RGB"))
        whole = T.to_float(resize_square(page, 256))  # 1. the whole page at 256 x 256
        deg, _ = degrader(whole, sample_rng(7, "train", 3, index, "degrade"))  # 2. the seeded draw on the whole page
        crop = T.plan_random_crop(256, 256, 128, sample_rng(7, "train", 3, index, "crop"), even=False)  # 3. the crop
        np.testing.assert_allclose(s["target"].permute(1, 2, 0).numpy(), T.crop_arrays([whole], crop)[0], atol=1e-6)
        np.testing.assert_allclose(s["input"].permute(1, 2, 0).numpy(), T.crop_arrays([deg], crop)[0], atol=1e-6)
        # the default order (crop, then degrade the patch) gives a different input for the same target crop
        plain = RestoreDataset(items, seed=7, train=True, patch_size=128, degrader=degrader,
                               augment=(False, False, False), resize=256)
        plain.set_epoch(3)
        p = plain[index]
        np.testing.assert_allclose(p["target"], s["target"], atol=1e-6)
        assert float((p["input"] - s["input"]).abs().mean()) > 1e-3


def test_validation_is_resized_whole_page(pages):
    items, _ = clean_items(str(pages))
    ds = RestoreDataset(items, seed=0, train=False, patch_size=None, degrader=build_degrader("manuscript-kaggle"),
                        resize=256, degrade_before_crop=True)
    a, b = ds[0], ds[0]
    assert a["input"].shape == a["target"].shape == (3, 256, 256)
    np.testing.assert_array_equal(a["input"].numpy(), b["input"].numpy())  # fixed draw for validation


def test_config_options_are_validated_and_used_by_the_seed_config():
    from restorekit.training.config import load_run_config

    cfg = load_run_config(CONFIGS / "manuscript-vit.yaml")
    assert cfg.data.resize == 256 and cfg.data.degrade_before_crop is True
    assert cfg.data.degrade == "manuscript-kaggle"
    with pytest.raises(ConfigError, match="resize"):
        load_run_config(CONFIGS / "manuscript-vit.yaml", ["data.resize=4"])
    with pytest.raises(ConfigError, match="degrade_before_crop"):
        load_run_config(CONFIGS / "manuscript-vit.yaml", ["data.degrade_before_crop=maybe"])


def test_the_seed_config_builds_datasets_with_the_recipe(pages, tmp_path):
    """The shipped config's data section reaches the datasets: validation pages come out at 256 x 256."""
    from restorekit.data.build import build_datasets
    from restorekit.training.config import load_run_config

    cfg = load_run_config(CONFIGS / "manuscript-vit.yaml", [f"data.dir={pages}", "data.num_workers=0",
                                                            "data.val_fraction=0.5"])
    train_ds, val_ds = build_datasets(cfg.data, seed=0, run_dir=tmp_path)
    v = val_ds[0]
    assert v["input"].shape == v["target"].shape == (3, 256, 256)
    assert train_ds.resize == 256 and train_ds.degrade_before_crop is True
