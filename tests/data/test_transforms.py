"""Crops, padding, Bayer-safe offsets and synchronized augmentation keep aligned arrays aligned."""

from __future__ import annotations

import numpy as np
import pytest

from restorekit.data import transforms as T
from restorekit.errors import DataError
from restorekit.utils.seed import sample_rng


def coord_arrays(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A uint16 (H, W, 2) map of (row, col) and a 1-channel uint8 map of (row*w+col) % 251."""
    yy, xx = np.mgrid[:h, :w]
    rc = np.stack([yy, xx], axis=2).astype(np.uint16)
    flat = ((yy * w + xx) % 251).astype(np.uint8)
    return rc, flat


def test_random_crop_and_augment_keep_arrays_aligned(photo) -> None:  # noqa: ANN001
    img = (photo("astronaut", 200) * 255).astype(np.uint8)
    rc, flat = coord_arrays(200, 200)
    for i in range(40):
        rng = sample_rng(0, i)
        (a, b, c), crop = T.random_crop([img, rc, flat], 64, rng)
        aug = T.sample_augment(rng)
        a, b, c = T.augment_arrays([a, b, c], aug)
        assert a.shape == (64, 64, 3) and b.shape == (64, 64, 2) and c.shape == (64, 64)
        # every pixel of the photo patch is the photo at the coordinates carried by the coordinate map
        np.testing.assert_array_equal(a, img[b[..., 0], b[..., 1]])
        np.testing.assert_array_equal(c, flat[b[..., 0], b[..., 1]])


def test_augment_transforms_are_the_expected_geometry() -> None:
    x = np.arange(12).reshape(3, 4)
    assert (T.apply_augment(x, T.Augment(hflip=True)) == x[:, ::-1]).all()
    assert (T.apply_augment(x, T.Augment(vflip=True)) == x[::-1]).all()
    assert (T.apply_augment(x, T.Augment(rot90=1)) == np.rot90(x)).all()
    seen = {T.sample_augment(sample_rng(1, i)).as_dict()["rot90"] for i in range(64)}
    assert seen == {0, 1, 2, 3}
    assert T.sample_augment(sample_rng(0), hflip=False, vflip=False, rot90=False) == T.Augment()


def test_reflect_pad_when_smaller() -> None:
    rc, _ = coord_arrays(50, 70)
    (out,), crop = T.random_crop([rc], 96, sample_rng(0))
    assert out.shape == (96, 96, 2)
    assert crop.pad_top + crop.pad_bottom == 46 and crop.pad_left + crop.pad_right == 26
    # the original image sits inside, unchanged; the border mirrors it (reflect: row -1 == row 1)
    inner = out[crop.pad_top - crop.top : crop.pad_top - crop.top + 50, crop.pad_left - crop.left : crop.pad_left - crop.left + 70]
    np.testing.assert_array_equal(inner, rc)
    top, left = crop.pad_top - crop.top, crop.pad_left - crop.left
    np.testing.assert_array_equal(out[top - 1, left : left + 70], rc[1])


def test_crop_is_taken_before_float_conversion() -> None:
    big = np.full((720, 1280, 3), 200, np.uint8)
    (patch,), _ = T.random_crop([big], 256, sample_rng(0))
    assert patch.dtype == np.uint8 and patch.base is not None  # a view: nothing converted yet
    f = T.to_float(patch)
    assert f.dtype == np.float32 and f.shape == (256, 256, 3) and f.flags.c_contiguous
    assert abs(float(f[0, 0, 0]) - 200 / 255) < 1e-7
    assert abs(float(T.to_float(np.array([65535], np.uint16))[0]) - 1.0) < 1e-7


@pytest.mark.parametrize("shape", [(101, 131), (64, 64), (40, 90)])
def test_bayer_safe_offsets_are_even(shape: tuple[int, int]) -> None:
    h, w = shape
    parity = (np.add.outer(np.arange(h) % 2 * 2, np.arange(w) % 2)).astype(np.uint8)  # CFA phase 0..3
    for i in range(30):
        crop = T.plan_random_crop(h, w, 48, sample_rng(2, i), even=True)
        assert crop.top % 2 == 0 and crop.left % 2 == 0 and crop.pad_top % 2 == 0 and crop.pad_left % 2 == 0
        out = T.apply_crop(parity, crop)
        assert out[0, 0] == 0 and out[0, 1] == 1 and out[1, 0] == 2 and out[1, 1] == 3  # R G / G B kept
    c = T.plan_center_crop(h, w, 30, even=True)
    assert c.top % 2 == 0 and c.left % 2 == 0


def test_center_crop_and_full() -> None:
    rc, _ = coord_arrays(100, 120)
    (c,) = T.center_crop([rc], 40)
    assert tuple(c[0, 0]) == (30, 40)
    (full,) = T.center_crop([rc], None)
    assert full.shape == rc.shape


def test_misaligned_arrays_are_reported() -> None:
    with pytest.raises(DataError, match="differ in size"):
        T.random_crop([np.zeros((10, 10)), np.zeros((10, 12))], 8, sample_rng(0))


def test_chw_tensor() -> None:
    t = T.to_chw_tensor(np.zeros((5, 7, 4), np.float32))
    assert tuple(t.shape) == (4, 5, 7)
    assert tuple(T.to_chw_tensor(np.zeros((5, 7), np.float32)).shape) == (1, 5, 7)
