"""BasicSR/NAFNet LMDBs (``X.lmdb/`` with ``data.mdb`` + ``meta_info.txt``) as paired training and eval data.

The LMDBs are written here exactly as ``basicsr.utils.lmdb_util.make_lmdb_from_imgs`` writes them
(keys without extension, ``cv2.imencode('.png', img, [IMWRITE_PNG_COMPRESSION, level])`` values of
the BGR array, ``{key}.png ({h},{w},{c}) {level}`` lines, a commit every ``batch`` images).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from restorekit.data import build_datasets
from restorekit.data.config import parse_data_config
from restorekit.data.storage import BasicSRLmdbStorage, clear_cache, parse_basicsr_meta, resolve
from restorekit.errors import DataError

lmdb = pytest.importorskip("lmdb", reason="the 'lmdb' package (restorekit[data]) is needed for LMDB datasets")


def make_lmdb_from_imgs(data_path: Path, lmdb_path: Path, img_path_list: list[str], keys: list[str], batch: int = 2, compress_level: int = 1) -> None:
    """BasicSR's writer (basicsr/utils/lmdb_util.py), single-process branch."""
    assert str(lmdb_path).endswith(".lmdb")
    img = cv2.imread(str(data_path / img_path_list[0]), cv2.IMREAD_UNCHANGED)
    _, img_byte = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, compress_level])
    map_size = img_byte.nbytes * len(img_path_list) * 10
    env = lmdb.open(str(lmdb_path), map_size=map_size)
    txn = env.begin(write=True)
    with open(lmdb_path / "meta_info.txt", "w") as txt_file:
        for idx, (path, key) in enumerate(zip(img_path_list, keys)):
            img = cv2.imread(str(data_path / path), cv2.IMREAD_UNCHANGED)
            h, w = img.shape[:2]
            c = 1 if img.ndim == 2 else img.shape[2]
            _, img_byte = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, compress_level])
            txn.put(key.encode("ascii"), img_byte)
            txt_file.write(f"{key}.png ({h},{w},{c}) {compress_level}\n")
            if idx % batch == 0:
                txn.commit()
                txn = env.begin(write=True)
    txn.commit()
    env.close()


def folder_to_lmdb(folder: Path, lmdb_path: Path) -> list[str]:
    """``prepare_keys`` as in BasicSR: sorted file names, key = name without extension."""
    names = sorted(p.name for p in folder.iterdir())
    keys = [n.split(".png")[0].split(".jpg")[0] for n in names]
    make_lmdb_from_imgs(folder, lmdb_path, names, keys)
    return keys


@pytest.fixture
def sidd_lmdbs(tmp_path: Path, photo, save_image) -> tuple[Path, Path, dict[str, np.ndarray]]:  # noqa: ANN001
    """NAFNet SIDD-style ``input_crops.lmdb`` / ``gt_crops.lmdb`` with keys like ``0_0``."""
    clean: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(0)
    for i, name in enumerate(["astronaut", "coffee", "chelsea", "rocket"]):
        key = f"{i}_{i % 2}"
        gt = photo(name, 64)
        noisy = np.clip(gt + rng.normal(0, 0.05, gt.shape), 0, 1).astype(np.float32)
        save_image(tmp_path / "gt" / f"{key}.png", gt)
        save_image(tmp_path / "input" / f"{key}.png", noisy)
        clean[key] = np.rint(gt * 255).astype(np.uint8)
    folder_to_lmdb(tmp_path / "gt", tmp_path / "gt_crops.lmdb")
    folder_to_lmdb(tmp_path / "input", tmp_path / "input_crops.lmdb")
    clear_cache()
    return tmp_path / "input_crops.lmdb", tmp_path / "gt_crops.lmdb", clean


def test_basicsr_lmdb_is_listed_by_key_with_sizes_from_meta_info(sidd_lmdbs) -> None:  # noqa: ANN001
    _, gt, clean = sidd_lmdbs
    loc = resolve(gt)
    assert isinstance(loc.storage, BasicSRLmdbStorage) and loc.rel == ""
    assert loc.storage.list_files() == [f"{k}.png" for k in sorted(clean)]
    assert loc.storage.known_size("0_0.png") == (64, 64)
    assert (gt / "meta_info.txt").read_text().splitlines()[0] == "0_0.png (64,64,3) 1"


def test_paired_training_data_from_two_lmdbs_gives_the_original_pixels(sidd_lmdbs) -> None:  # noqa: ANN001
    inp, gt, clean = sidd_lmdbs
    cfg = {"kind": "paired", "input_dir": str(inp), "target_dir": str(gt), "patch_size": None, "augment": False, "val_fraction": 0.25}
    train, val = build_datasets(parse_data_config(cfg), seed=0)
    assert len(train) == 3 and len(val) == 1
    assert sorted(train.names + val.names) == sorted(clean)
    for ds in (train, val):
        for i in range(len(ds)):
            s = ds[i]
            target = np.rint(s["target"].numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
            assert np.array_equal(target, clean[s["name"]])  # lossless PNG values, RGB order
            noise = (s["input"] - s["target"]).std().item()
            assert 0.03 < noise < 0.07


def test_training_crops_from_lmdb(sidd_lmdbs) -> None:  # noqa: ANN001
    inp, gt, _ = sidd_lmdbs
    cfg = {"kind": "paired", "input_dir": str(inp), "target_dir": str(gt), "patch_size": 32, "val_fraction": 0, "check": "full"}
    train, _ = build_datasets(parse_data_config(cfg), seed=0)
    s = train[0]
    assert tuple(s["input"].shape) == (3, 32, 32) and tuple(s["target"].shape) == (3, 32, 32)


def test_eval_reads_lmdb_pairs_through_a_data_config(sidd_lmdbs, tmp_path: Path) -> None:  # noqa: ANN001
    from restorekit.evaluation.sources import config_samples

    inp, gt, clean = sidd_lmdbs
    cfg = tmp_path / "sidd.yaml"
    cfg.write_text(f"kind: paired\ninput_dir: {inp}\ntarget_dir: {gt}\nval_fraction: 0.5\n")
    n, samples = config_samples(cfg)
    got = list(samples)
    assert n == 2 and len(got) == 2
    s = got[0]
    assert s.input.shape == (64, 64, 3) and s.target.shape == (64, 64, 3)
    assert float(np.abs(s.input - s.target).mean()) > 0.01


def test_missing_key_and_bad_meta_info_are_clear_errors(sidd_lmdbs) -> None:  # noqa: ANN001
    inp, gt, _ = sidd_lmdbs
    with open(gt / "meta_info.txt", "a") as fh:
        fh.write("9_9.png (64,64,3) 1\n")
    clear_cache()
    cfg = {"kind": "paired", "input_dir": str(inp), "target_dir": str(gt), "check": "full", "val_fraction": 0}
    with pytest.raises(DataError, match=r"9_9"):
        build_datasets(parse_data_config(cfg), seed=0)
    (gt / "meta_info.txt").write_text("0_0.png (64,x,3) 1\n")
    with pytest.raises(DataError, match=r"meta_info.txt:1"):
        parse_basicsr_meta(gt / "meta_info.txt")
    # keys-only meta files (no shape) are accepted too; sizes then come from the PNG header
    (gt / "meta_info.txt").write_text("0_0.png\n1_1.png\n")
    assert parse_basicsr_meta(gt / "meta_info.txt") == {"0_0": None, "1_1": None}
