"""Content de-duplication of splits: exact copies, near duplicates, aliases and stereo pairs stay on one side."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from restorekit.data import build_datasets
from restorekit.data.dedup import NEAR_DUP_THRESHOLD, content_groups, dedup_split, pixel_hash, similarity
from restorekit.data.sources import SKIMAGE_LOADERS, SkimageRef


def _photo(name: str) -> np.ndarray:
    return SkimageRef(name).load()


def test_cat_is_chelsea_pixel_for_pixel_and_hashes_agree() -> None:
    assert pixel_hash(_photo("cat")) == pixel_hash(_photo("chelsea"))
    assert pixel_hash(_photo("coffee")) != pixel_hash(_photo("chelsea"))
    # float [0, 1] and uint8 views of the same pixels hash alike
    assert pixel_hash(_photo("coffee").astype(np.float32) / 255.0) == pixel_hash(_photo("coffee"))


def test_threshold_separates_every_bundled_photo_pair() -> None:
    """The calibration behind NEAR_DUP_THRESHOLD: the stereo pair is above it, every distinct photo pair well below."""
    names = [n for n in sorted(SKIMAGE_LOADERS) if n not in ("cat",)]
    imgs = {n: _photo(n) for n in names}
    pairs = {(a, b): similarity(imgs[a], imgs[b]) for i, a in enumerate(names) for b in names[i + 1:]}
    stereo = pairs[("motorcycle_left", "motorcycle_right")]
    others = max(v for k, v in pairs.items() if k != ("motorcycle_left", "motorcycle_right"))
    assert stereo >= NEAR_DUP_THRESHOLD > others + 0.1, (stereo, others)


def test_near_duplicates_of_a_photo_are_found() -> None:
    img = _photo("coffee")
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 60])
    jpeg = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    half = cv2.resize(img, (300, 200), interpolation=cv2.INTER_AREA)
    shifted = np.roll(img, 12, axis=1)
    brighter = np.clip(img.astype(np.int16) + 25, 0, 255).astype(np.uint8)
    g = content_groups({"coffee": img, "jpeg": jpeg, "half": half, "shifted": shifted, "brighter": brighter,
                        "rocket": _photo("rocket"), "astronaut": _photo("astronaut")}, known={})
    assert len({g.group[n] for n in ("coffee", "jpeg", "half", "shifted", "brighter")}) == 1
    assert g.group["rocket"] != g.group["coffee"] and g.group["astronaut"] not in (g.group["coffee"], g.group["rocket"])
    assert g.members() == {g.group["coffee"]: sorted(["coffee", "jpeg", "half", "shifted", "brighter"])}


def test_known_groups_join_even_dissimilar_images() -> None:
    a, b = _photo("coffee"), _photo("astronaut")
    g = content_groups({"x": a, "y": b}, known={"x": "scene", "y": "scene"})
    assert g.group["x"] == g.group["y"] == "scene"
    assert any("known group" in r["why"] for r in g.reasons)


def test_dedup_split_drops_training_copies_only() -> None:
    items = {n: _photo(n) for n in ("astronaut", "cat", "chelsea", "motorcycle_left", "motorcycle_right", "rocket")}
    train = ["astronaut", "cat", "motorcycle_left", "rocket"]
    kept, dropped = dedup_split(train, ["chelsea", "motorcycle_right"], load=lambda n: items[n], name=lambda n: n)
    assert kept == ["astronaut", "rocket"]
    assert {d["name"]: d["matches"] for d in dropped} == {"cat": ["chelsea"], "motorcycle_left": ["motorcycle_right"]}


def test_skimage_split_keeps_aliases_and_stereo_partners_on_one_side(tmp_path) -> None:
    train, val = build_datasets({"kind": "skimage", "names": ["astronaut", "cat", "motorcycle_left", "rocket"],
                                 "val_names": ["chelsea", "motorcycle_right"], "degrade": None}, seed=0, run_dir=tmp_path)
    assert [it.name for it in train.items] == ["astronaut", "rocket"]
    split = json.loads((tmp_path / "split.json").read_text())
    assert split["train"] == ["astronaut", "rocket"] and split["dedup"]["checked"] is True
    assert sorted(d["name"] for d in split["dedup"]["dropped"]) == ["cat", "motorcycle_left"]


def test_seeded_folder_split_drops_a_renamed_copy(tmp_path) -> None:
    """A plain folder (data.kind clean) with the same photo under two names: never on both sides."""
    from restorekit.io import write_image

    folder = tmp_path / "clean"
    names = ["astronaut", "coffee", "rocket", "camera", "coins", "chelsea"]
    for n in names:
        write_image(folder / f"{n}.png", _photo(n))
    write_image(folder / "zz_copy_of_chelsea.png", _photo("chelsea"))
    leaks = 0
    for seed in range(6):
        train, val = build_datasets({"kind": "clean", "dir": str(folder), "val_fraction": 0.3, "degrade": None}, seed=seed)
        tr, va = {it.name for it in train.items}, {it.name for it in val.items}
        both = {"chelsea", "zz_copy_of_chelsea"}
        leaks += bool(both & tr) and bool(both & va)
    assert leaks == 0


@pytest.mark.parametrize("config", ["demo.yaml", "distill-demo.yaml"])
def test_shipped_demo_configs_hold_out_distinct_content(config) -> None:
    """Every held-out photo of the shipped skimage configs differs by content from every training photo."""
    from pathlib import Path

    from restorekit.config.base import load_yaml

    data = load_yaml(Path(__file__).resolve().parents[2] / "configs" / config)["data"]
    train = [n for n in data["names"] if n not in data["val_names"]]
    kept, dropped = dedup_split(train, data["val_names"], load=_photo, name=lambda n: n)
    assert dropped == [] and kept == train


def test_default_table_groups_the_stereo_pair_even_without_the_pixel_checks() -> None:
    """KNOWN_GROUPS alone (near-duplicate check switched off) keeps the motorcycle views and the cat alias together."""
    imgs = {n: _photo(n) for n in ("motorcycle_left", "motorcycle_right", "chelsea", "cat", "coffee")}
    g = content_groups({n: np.roll(a, 7 * i, axis=1) for i, (n, a) in enumerate(imgs.items())}, threshold=1.1)
    assert g.group["motorcycle_left"] == g.group["motorcycle_right"] == "motorcycle"
    assert g.group["cat"] == g.group["chelsea"] == "chelsea"
    assert g.group["coffee"] not in ("motorcycle", "chelsea")
