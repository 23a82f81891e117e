"""The image dataset: decode -> crop (integers) -> augment -> float -> degrade -> tensors.

Every random choice of sample ``i`` in epoch ``e`` comes from
``sample_rng(seed, e, i)`` (separate sub-streams for the crop, the
augmentation and the degradation), so a sample is identical whichever worker
loads it and in whatever order. ``set_epoch`` and ``patch_size`` are stored in
shared memory, so they reach persistent DataLoader workers too.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from restorekit.data import transforms as T
from restorekit.data.sources import FileRef, Item
from restorekit.data.storage import decode_uint, png_partial_ok
from restorekit.degrade.pipeline import Degrader
from restorekit.errors import DataError, RestoreKitError
from restorekit.utils.seed import sample_rng

log = logging.getLogger(__name__)


class _SharedInt:
    """An int in shared memory (visible to forked/spawned DataLoader workers); -1 encodes None."""

    def __init__(self, value: int | None) -> None:
        self._t = torch.full((1,), -1 if value is None else int(value), dtype=torch.int64).share_memory_()

    def get(self) -> int | None:
        v = int(self._t[0])
        return None if v < 0 else v

    def set(self, value: int | None) -> None:
        self._t[0] = -1 if value is None else int(value)


class RestoreDataset(Dataset):
    """Samples ``{"input", "target", "name", <extras>..., "params"?}`` as (C, H, W) float32 [0, 1].

    Args:
        items: the samples (from :mod:`restorekit.data.sources`).
        train: random crops + augmentation + per-epoch degradation; otherwise
            centre crops (``patch_size``, None = full image) and a fixed degradation.
        patch_size: crop side (int) or None for full images.
        degrader: synthesises the input from the target (items without input)
            or degrades the given input further.
        augment: (hflip, vflip, rot90) flags of the synchronized augmentation.
        repeat: patches per image per epoch (``len = len(items) * repeat``).
        bayer_safe: even crop offsets.
        on_error: "skip" replaces a sample whose file fails to decode by the next one (warning), "fail" raises.
        resize: resize every whole image to ``resize x resize`` (bilinear) right after decoding (None = off).
        degrade_before_crop: degrade the whole (resized) image with the sample's seeded draw, then crop and
            augment input and target together (the manuscript seed's recipe); default: crop, then degrade.
    """

    def __init__(
        self,
        items: list[Item],
        *,
        seed: int,
        train: bool,
        patch_size: int | None = 256,
        degrader: Degrader | None = None,
        augment: tuple[bool, bool, bool] = (True, True, True),
        repeat: int = 1,
        bayer_safe: bool = False,
        on_error: str = "fail",
        max_pixels: int | None = None,
        split: str | None = None,
        cache_mb: int = 0,
        resize: int | None = None,
        degrade_before_crop: bool = False,
    ) -> None:
        if not items:
            raise DataError("dataset has no samples")
        self.items = list(items)
        self.seed = int(seed)
        self.train = bool(train)
        self.degrader = degrader
        self.augment = tuple(bool(a) for a in augment)
        self.repeat = int(repeat) if train else 1
        self.bayer_safe = bool(bayer_safe)
        self.on_error = on_error
        self.max_pixels = max_pixels
        self.split = split or ("train" if train else "val")
        self._epoch = _SharedInt(0)
        self._patch = _SharedInt(patch_size)
        self.cache_mb = int(cache_mb)
        self.resize = None if resize is None else int(resize)
        self.degrade_before_crop = bool(degrade_before_crop)
        self._cache: dict[str, np.ndarray] = {}
        self._cache_full = False
        self._cache_bytes = 0

    def __getstate__(self) -> dict[str, Any]:
        st = dict(self.__dict__)
        st["_cache"], st["_cache_bytes"], st["_cache_full"] = {}, 0, False  # workers build their own cache
        return st

    def _from_cache(self, roles: list[tuple[str, Any]]) -> list[np.ndarray] | None:
        """The fully decoded images of one sample from the per-process cache, decoding and adding
        those missing while the cache has room; None once it is full and an image is missing (the
        caller then decodes as without a cache, 8-bit PNGs only up to the rows the crop needs)."""
        keys = [ref.display() for _, ref in roles]
        if self._cache_full and any(k not in self._cache for k in keys):
            return None
        arrays = []
        for key, (_, ref) in zip(keys, roles):
            arr = self._cache.get(key)
            if arr is None:
                arr = np.ascontiguousarray(ref.load(self.max_pixels))
                if self._cache_bytes + arr.nbytes <= self.cache_mb << 20:
                    arr.setflags(write=False)
                    self._cache[key] = arr
                    self._cache_bytes += arr.nbytes
                else:
                    self._cache_full = True
            arrays.append(arr)
        return arrays

    # -- contract: settable epoch and patch size --------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose crops/augmentations/degradations are drawn (training only)."""
        self._epoch.set(int(epoch))

    @property
    def epoch(self) -> int:
        return int(self._epoch.get() or 0)

    @property
    def patch_size(self) -> int | None:
        return self._patch.get()

    @patch_size.setter
    def patch_size(self, value: int | None) -> None:
        if value is not None and int(value) < 1:
            raise ValueError(f"patch_size must be positive or None, got {value}")
        self._patch.set(value)

    @property
    def names(self) -> list[str]:
        return [it.name for it in self.items]

    def __len__(self) -> int:
        return len(self.items) * self.repeat

    # -- loading ----------------------------------------------------------------------------
    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        tries = len(self.items) if self.on_error == "skip" else 1
        first_err: RestoreKitError | None = None
        for k in range(tries):
            i = (index + k) % len(self)
            try:
                return self.load(i)
            except RestoreKitError as exc:
                if self.on_error != "skip":
                    raise
                first_err = first_err or exc
                warnings.warn(f"skipping sample '{self.items[i % len(self.items)].name}': {exc}", stacklevel=2)
        raise DataError(f"no sample of the dataset could be loaded (first error: {first_err})")

    def load(self, index: int) -> dict[str, Any]:
        """Build sample ``index`` (no error recovery)."""
        item = self.items[index % len(self.items)]
        epoch = self.epoch if self.train else 0
        key = "train" if self.train else "val"
        roles = item.refs()
        names = [ref.display() for _, ref in roles]
        patch = self.patch_size
        cropped = None
        arrays = self._from_cache(roles) if self.cache_mb > 0 else None
        if arrays is None:
            # file bytes are read once; in-memory images (skimage) come as arrays
            blobs = [ref.read_bytes() if isinstance(ref, FileRef) else None for _, ref in roles]
            if self.train and patch is not None and self.resize is None and not self.degrade_before_crop:
                cropped = self._load_png_rows(blobs, names, epoch, index, key, patch)
            if cropped is None:
                arrays = [
                    decode_uint(b, n, max_pixels=self.max_pixels) if b is not None else ref.load(self.max_pixels)
                    for b, n, (_, ref) in zip(blobs, names, roles)
                ]
        sample: dict[str, Any] = {}
        degraded_whole = False
        if cropped is not None:
            arrays = cropped
        else:
            h, w = T.check_aligned(arrays, names)
            if self.resize is not None:
                arrays = [resize_square(a, self.resize) for a in arrays]
                h = w = self.resize
            if self.degrade_before_crop and self.degrader is not None:
                whole = {role: T.to_float(a) for (role, _), a in zip(roles, arrays)}
                src = whole.get("input", whole["target"])
                whole["input"], sample["params"] = self.degrader(src, sample_rng(self.seed, key, epoch, index, "degrade"))
                roles = [("input", None), *[(r, ref) for r, ref in roles if r != "input"]]
                arrays = [whole[r] for r, _ in roles]
                degraded_whole = True
            if self.train and patch is not None:
                crop = T.plan_random_crop(h, w, patch, sample_rng(self.seed, key, epoch, index, "crop"), even=self.bayer_safe)
                arrays = T.crop_arrays(arrays, crop)
            elif patch is not None:
                arrays = T.crop_arrays(arrays, T.plan_center_crop(h, w, patch, even=self.bayer_safe))
        if self.train:
            hf, vf, rot = self.augment
            if hf or vf or rot:
                aug = T.sample_augment(sample_rng(self.seed, key, epoch, index, "aug"), hflip=hf, vflip=vf, rot90=rot)
                arrays = T.augment_arrays(arrays, aug)
        floats = {role: T.to_float(a) for (role, _), a in zip(roles, arrays)}
        if degraded_whole:
            pass
        elif self.degrader is not None:
            src = floats.get("input", floats["target"])
            degraded, params = self.degrader(src, sample_rng(self.seed, key, epoch, index, "degrade"))
            floats["input"] = degraded
            sample["params"] = params
        elif "input" not in floats:
            raise DataError(f"sample '{item.name}' has no input and the dataset has no degradation (set data.degrade)")
        sample["input"] = T.to_chw_tensor(floats.pop("input"))
        sample["target"] = T.to_chw_tensor(floats.pop("target"))
        for role, arr in floats.items():
            sample[role] = T.to_chw_tensor(arr)
        sample["name"] = item.name
        return sample

    def _load_png_rows(
        self, blobs: list[bytes | None], names: list[str], epoch: int, index: int, key: str, patch: int
    ) -> list[np.ndarray] | None:
        """Fast path for 8-bit PNG files: plan the crop from the headers, decode only the rows it needs.

        Returns the cropped arrays, or None when any file is not such a PNG (the
        caller then decodes fully). The crop is drawn from the same random stream,
        so both paths give identical samples.
        """
        if not all(b is not None and png_partial_ok(b) for b in blobs):
            return None
        sizes = {(int.from_bytes(b[20:24], "big"), int.from_bytes(b[16:20], "big")) for b in blobs}
        if len(sizes) != 1:
            return None  # the full path reports the mismatch
        h, w = sizes.pop()
        crop = T.plan_random_crop(h, w, patch, sample_rng(self.seed, key, epoch, index, "crop"), even=self.bayer_safe)
        rows = h if (crop.pad_top or crop.pad_bottom) else crop.top + crop.height
        arrays = [decode_uint(b, n, max_pixels=self.max_pixels, rows=rows) for b, n in zip(blobs, names)]  # type: ignore[arg-type]
        if any(a.shape[1] != w or a.shape[0] < min(rows, h) for a in arrays):
            T.check_aligned(arrays, names)
            return None
        return T.crop_arrays(arrays, crop)

    def __repr__(self) -> str:
        return (
            f"RestoreDataset({self.split}, {len(self.items)} images x{self.repeat}, patch={self.patch_size}, "
            f"degrade={self.degrader!r})"
        )


def resize_square(arr: np.ndarray, size: int) -> np.ndarray:
    """Resize an ``(H, W[, C])`` image (any dtype) to ``(size, size[, C])``, bilinear (``cv2.INTER_LINEAR``)."""
    import cv2

    out = cv2.resize(np.ascontiguousarray(arr), (int(size), int(size)), interpolation=cv2.INTER_LINEAR)
    return out[..., None] if arr.ndim == 3 and out.ndim == 2 else out


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack the tensors of a list of samples; keep everything else (names, params dicts) as lists.

    Tensors of different shapes (full-size validation images) cannot be
    stacked: a :class:`DataError` says so and how to fix it.
    """
    if not batch:
        raise DataError("cannot collate an empty batch")
    out: dict[str, Any] = {}
    keys = list(batch[0].keys())
    for s in batch[1:]:
        for k in s:
            if k not in keys:
                keys.append(k)
    for k in keys:
        vals = [s.get(k) for s in batch]
        if all(isinstance(v, torch.Tensor) for v in vals):
            shapes = {tuple(v.shape) for v in vals}
            if len(shapes) > 1:
                raise DataError(
                    f"cannot batch '{k}' tensors of different shapes {sorted(shapes)}: use a batch size of 1 for "
                    "full-size images or set data.val_patch / data.patch_size"
                )
            out[k] = torch.stack(vals, 0)
        else:
            out[k] = vals
    return out


def make_loader(ds: Dataset, *, batch_size: int, num_workers: int = 0, train: bool = True, seed: int = 0, drop_last: bool | None = None) -> "torch.utils.data.DataLoader":
    """A DataLoader with restorekit's collate, seeded shuffling and persistent workers.

    Shuffling uses a generator seeded from ``seed`` (the order is then reproducible);
    the samples themselves are reproducible regardless (``sample_rng``).
    ``set_epoch`` / ``patch_size`` changes reach the persistent workers (shared memory).
    Note: never call ``cv2.setNumThreads`` in a forked worker (``worker_init_fn``):
    it deadlocks on the thread pool inherited from the parent.
    """
    from torch.utils.data import DataLoader

    g = torch.Generator()
    g.manual_seed(int(seed))
    return DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=train,
        num_workers=num_workers,
        collate_fn=collate,
        drop_last=(train and len(ds) >= batch_size) if drop_last is None else drop_last,
        persistent_workers=num_workers > 0,
        generator=g,
        pin_memory=False,
    )
