"""Determinism from (seed, epoch, index), worker independence, epoch/patch propagation, collate."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from restorekit.data import build_datasets, collate, make_loader
from restorekit.data.config import parse_data_config
from restorekit.errors import ConfigError, DataError


def ds_pair(clean_dir: Path, seed: int = 0, **kw):  # noqa: ANN003, ANN201
    cfg = parse_data_config({"kind": "clean", "dir": str(clean_dir), "degrade": "manuscript", "patch_size": 48, "val_fraction": 0.2, **kw})
    return build_datasets(cfg, seed=seed)


def test_samples_are_reproducible_from_seed_epoch_index(clean_dir: Path) -> None:
    a, _ = ds_pair(clean_dir, seed=3)
    b, _ = ds_pair(clean_dir, seed=3)
    c, _ = ds_pair(clean_dir, seed=4)
    for i in range(len(a)):
        sa, sb = a[i], b[i]
        assert torch.equal(sa["input"], sb["input"]) and torch.equal(sa["target"], sb["target"]) and sa["params"] == sb["params"]
    assert any(not torch.equal(a[i]["input"], c[i]["input"]) for i in range(len(a)))
    first = a[1]
    a.set_epoch(1)
    other = a[1]
    assert not torch.equal(first["target"], other["target"]) or first["params"] != other["params"]
    a.set_epoch(0)
    again = a[1]
    assert torch.equal(first["input"], again["input"])
    # the order of access does not matter
    a2, _ = ds_pair(clean_dir, seed=3)
    rev = [a2[i]["input"] for i in reversed(range(len(a2)))][::-1]
    assert all(torch.equal(rev[i], a[i]["input"]) for i in range(len(a)))


@pytest.mark.slow
def test_two_workers_give_the_same_samples_and_follow_set_epoch(clean_dir: Path) -> None:
    ds, _ = ds_pair(clean_dir, seed=2)
    ref0 = {ds[i]["name"]: ds[i]["input"] for i in range(len(ds))}
    loader = make_loader(ds, batch_size=2, num_workers=2, train=True, seed=0, drop_last=False)  # persistent workers
    got0 = {n: x for b in loader for n, x in zip(b["name"], b["input"])}
    assert set(got0) == set(ref0) and all(torch.equal(got0[n], ref0[n]) for n in ref0)
    # epoch and patch size changed in the main process must reach the already running workers
    ds.set_epoch(5)
    ds.patch_size = 32
    ref5 = {ds[i]["name"]: ds[i]["input"] for i in range(len(ds))}
    got5 = {n: x for b in loader for n, x in zip(b["name"], b["input"])}
    assert all(x.shape == (3, 32, 32) for x in got5.values())
    assert all(torch.equal(got5[n], ref5[n]) for n in ref5)


def test_patch_size_is_settable(clean_dir: Path) -> None:
    ds, val = ds_pair(clean_dir)
    ds.patch_size = 24
    assert ds[0]["input"].shape == (3, 24, 24)
    ds.patch_size = None
    assert ds[0]["input"].shape == (3, 140, 140)
    assert val.patch_size is None and val[0]["input"].shape == (3, 140, 140)


def test_collate_stacks_tensors_and_keeps_lists(clean_dir: Path) -> None:
    ds, _ = ds_pair(clean_dir)
    batch = collate([ds[0], ds[1], ds[2]])
    assert batch["input"].shape == (3, 3, 48, 48) and batch["target"].dtype == torch.float32
    assert isinstance(batch["name"], list) and len(batch["name"]) == 3
    assert isinstance(batch["params"], list) and all(isinstance(p, dict) for p in batch["params"])
    with pytest.raises(DataError, match="different shapes"):
        collate([{"input": torch.zeros(3, 4, 4)}, {"input": torch.zeros(3, 5, 4)}])


def test_values_are_float_rgb_in_unit_range(clean_dir: Path, photo) -> None:  # noqa: ANN001
    ds, _ = ds_pair(clean_dir, augment=False, patch_size=None, degrade=[{"name": "fade", "p": 0.0}])
    s = ds[ds.names.index("astronaut")]
    ref = torch.from_numpy(photo("astronaut", 140)).permute(2, 0, 1)
    assert (s["target"] - ref).abs().max().item() <= 0.5 / 255 + 1e-6  # PNG round trip of the photo, RGB order
    assert torch.equal(s["input"], s["target"]) and s["params"] == {}


def test_partial_png_decoding_gives_identical_samples(gopro_root: Path, monkeypatch) -> None:  # noqa: ANN001
    import restorekit.data.dataset as dsmod

    cfg = parse_data_config({"kind": "gopro", "root": str(gopro_root), "patch_size": 40, "val_fraction": 0.0})
    fast, _ = build_datasets(cfg, seed=9)
    got = [fast[i] for i in range(len(fast))]
    monkeypatch.setattr(dsmod, "png_partial_ok", lambda data: False)  # force full decoding
    slow, _ = build_datasets(cfg, seed=9)
    for i, s in enumerate(got):
        r = slow[i]
        assert torch.equal(s["input"], r["input"]) and torch.equal(s["target"], r["target"])


def test_decode_png_rows_modes(photo, tmp_path: Path) -> None:  # noqa: ANN001
    import io

    import numpy as np
    from PIL import Image

    from restorekit.data.storage import decode_png_rows, decode_uint

    rgb = (photo("coffee", 64) * 255).astype(np.uint8)
    for mode in ("RGB", "RGBA", "L", "P", "LA"):
        im = Image.fromarray(rgb).convert(mode)
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        data = buf.getvalue()
        full = decode_uint(data, mode)
        part = decode_png_rows(data, 21)
        assert part is not None and part.shape == (21, 64, 3), mode
        np.testing.assert_array_equal(part, full[:21])
    import cv2

    ok, b16 = cv2.imencode(".png", (photo("coffee", 32) * 65535).astype(np.uint16))
    assert decode_png_rows(b16.tobytes(), 10) is None  # 16-bit: decoded fully elsewhere
    assert decode_uint(b16.tobytes(), "x", rows=10).dtype == np.uint16


def test_decoded_cache_gives_the_same_samples_and_reads_once(gopro_root: Path, monkeypatch) -> None:  # noqa: ANN001
    from restorekit.data import storage

    base = {"kind": "gopro", "root": str(gopro_root), "patch_size": 40, "val_fraction": 0.0}
    plain, _ = build_datasets(parse_data_config({**base, "cache_mb": 0}), seed=4)
    cached, _ = build_datasets(parse_data_config({**base, "cache_mb": 64}), seed=4)
    reads: list[str] = []
    orig = storage.DirStorage.read_bytes
    monkeypatch.setattr(storage.DirStorage, "read_bytes", lambda self, rel: reads.append(rel) or orig(self, rel))
    for epoch in (0, 1):
        plain.set_epoch(epoch)
        cached.set_epoch(epoch)
        for i in range(len(plain)):
            a, b = plain[i], cached[i]
            assert torch.equal(a["input"], b["input"]) and torch.equal(a["target"], b["target"])
    assert len(reads) == 2 * 6 * 2 + 12  # plain: 2 epochs x 6 pairs x 2 files; cached: each of the 12 files once
    tiny, _ = build_datasets(parse_data_config({**base, "cache_mb": 0}), seed=4)
    assert tiny._cache_bytes == 0


def test_cache_auto_shares_a_quarter_of_the_ram_among_workers(monkeypatch) -> None:
    from restorekit.data import build

    monkeypatch.setattr("restorekit.utils.system.available_ram", lambda: 16 << 30)
    assert build.resolve_cache_mb("auto", 0) == build.AUTO_CACHE_MAX_MB  # 4 GB for one process: capped
    assert build.resolve_cache_mb("auto", 4) == 1024
    assert build.resolve_cache_mb(0, 4) == 0 and build.resolve_cache_mb(300, 2) == 300
    assert parse_data_config({"kind": "skimage"}).cache_mb == "auto"
    with pytest.raises(ConfigError, match="cache_mb"):
        parse_data_config({"kind": "skimage", "cache_mb": -1})


def test_full_cache_falls_back_to_partial_png_decoding_with_the_same_samples(gopro_root: Path, monkeypatch) -> None:  # noqa: ANN001
    """A cache with room for two pairs keeps them; the other pairs take the partial-row PNG path
    (still read every time), and every sample equals the uncached one."""
    from restorekit.data import dataset as dsmod

    base = {"kind": "gopro", "root": str(gopro_root), "patch_size": 40, "val_fraction": 0.0}
    plain, _ = build_datasets(parse_data_config({**base, "cache_mb": 0}), seed=4)
    pair_bytes = sum(ref.load(None).nbytes for _, ref in plain.items[0].refs())
    small, _ = build_datasets(parse_data_config({**base, "cache_mb": 1}), seed=4)
    small._cache_bytes = (1 << 20) - int(2.4 * pair_bytes)  # room for 2.4 of these small pairs: 4 files
    partial: list[int] = []
    orig = dsmod.RestoreDataset._load_png_rows
    monkeypatch.setattr(dsmod.RestoreDataset, "_load_png_rows",
                        lambda self, *a, **k: partial.append(1) or orig(self, *a, **k))
    for epoch in (0, 1):
        plain.set_epoch(epoch)
        small.set_epoch(epoch)
        for i in range(len(small)):
            a, b = plain[i], small[i]
            assert torch.equal(a["input"], b["input"]) and torch.equal(a["target"], b["target"])
    n_pairs = len(small.items)
    assert len(small._cache) == 4 and small._cache_full  # two pairs (4 files) fit
    assert small._cache_bytes <= 1 << 20
    assert len(small) == n_pairs >= 4
    # plain: every sample; small: epoch 0 pairs 3.. (pair 2 was decoded whole, found no room), epoch 1 pairs 2..
    assert len(partial) == 2 * n_pairs + (n_pairs - 3) + (n_pairs - 2)
