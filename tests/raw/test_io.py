"""Raw file reading and DNG writing, end to end through rawpy (LibRaw)."""

from __future__ import annotations

import numpy as np
import pytest
import rawpy

from restorekit.errors import ImageReadError, ImageWriteError
from restorekit.raw.io import (
    is_raw_path,
    read_iso,
    read_linear_dng,
    read_raw,
    read_tiff_tags,
    write_dng,
    write_linear_dng,
)
from restorekit.raw.unprocess import default_cam_to_srgb

XTRANS = "GGRGGB" "GGBGGR" "BRGRBG" "GGBGGR" "GGRGGB" "RBGBRG"


@pytest.mark.parametrize("pattern,offset", [("RGGB", (0, 0)), ("GRBG", (0, 1)), ("GBRG", (1, 0)), ("BGGR", (1, 1))])
def test_dng_written_and_read_back_exactly(tmp_path, pattern, offset):
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 16384, (66, 98)).astype(np.uint16)
    path = tmp_path / f"x_{pattern}.dng"
    write_dng(path, raw, black_level=[512, 510, 514, 516], white_level=16383, pattern=pattern, wb=(2.0, 1.0, 1.5),
              cam_to_srgb=default_cam_to_srgb(), iso=3200, exposure_time=1 / 250)
    # what LibRaw sees: exactly our mosaic, levels and pattern
    with rawpy.imread(str(path)) as r:
        np.testing.assert_array_equal(r.raw_image_visible, raw)
        desc = r.color_desc.decode()
        assert "".join(desc[c] for c in np.asarray(r.raw_pattern).ravel()) == pattern
        assert r.white_level == 16383
        assert r.other.iso_speed == 3200
    img = read_raw(path)
    oy, ox = offset
    assert img.pattern == pattern and img.offset == offset
    assert img.shape == ((66 - oy) // 2 * 2, (98 - ox) // 2 * 2)
    np.testing.assert_array_equal(img.raw, raw[oy : oy + img.shape[0], ox : ox + img.shape[1]])
    # black levels come back in R, G1, G2, B order of the RGGB-normalised mosaic
    blacks = np.array([512, 510, 514, 516]).reshape(2, 2)
    expect = [blacks[(oy + dy) % 2, (ox + dx) % 2] for dy in (0, 1) for dx in (0, 1)]
    np.testing.assert_array_equal(img.black_level, expect)
    assert img.white_level == 16383
    assert img.iso == 3200 and abs(img.exposure_time - 1 / 250) < 1e-6
    np.testing.assert_allclose(img.wb, [2.0, 1.0, 1.5], atol=1e-4)
    np.testing.assert_allclose(img.cam_to_srgb, default_cam_to_srgb(), atol=2e-3)


def test_mosaic_normalisation(tmp_path):
    raw = np.full((32, 32), 512, np.uint16)
    raw[0, 0] = 16383
    raw[1, 1] = 8447  # half way between black 512 and white 16383 (+ 0.5 rounding)
    raw[0, 1] = 100  # below black: clipped to 0
    write_dng(tmp_path / "n.dng", raw, black_level=512, white_level=16383)
    m = read_raw(tmp_path / "n.dng").mosaic()
    assert m[0, 0] == 1.0 and m[0, 1] == 0.0 and abs(m[1, 1] - 0.5) < 1e-4 and m[2, 2] == 0.0
    assert read_raw(tmp_path / "n.dng").mosaic(clip=False)[0, 1] < 0


def test_iso_from_tags_and_names(tmp_path):
    write_dng(tmp_path / "a.dng", np.zeros((32, 32), np.uint16), iso=12800)
    assert read_tiff_tags(tmp_path / "a.dng")["iso"] == 12800
    assert read_iso(tmp_path / "a.dng") == 12800
    write_dng(tmp_path / "b.dng", np.zeros((32, 32), np.uint16))
    assert read_iso(tmp_path / "b.dng") is None and read_raw(tmp_path / "b.dng").iso is None
    assert read_tiff_tags(tmp_path / "missing.dng") == {}
    assert is_raw_path("x.NEF") and is_raw_path("y.dng") and not is_raw_path("z.png")


def test_xtrans_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "fuji.dng"
    write_dng(path, np.full((48, 48), 1000, np.uint16), pattern=XTRANS, black_level=256, white_level=16383)
    with rawpy.imread(str(path)) as r:
        assert np.asarray(r.raw_pattern).shape == (6, 6)
    with pytest.raises(ImageReadError, match="X-Trans") as exc:
        read_raw(path)
    assert "fuji.dng" in str(exc.value)


def test_unreadable_files_named(tmp_path):
    with pytest.raises(ImageReadError, match="does not exist"):
        read_raw(tmp_path / "nope.dng")
    bad = tmp_path / "bad.nef"
    bad.write_bytes(b"this is not a raw file at all" * 10)
    with pytest.raises(ImageReadError, match="bad.nef"):
        read_raw(bad)
    with pytest.raises(ImageWriteError, match="uint16"):
        write_dng(tmp_path / "f.dng", np.zeros((4, 4), np.float32))
    with pytest.raises(ImageWriteError, match="pattern"):
        write_dng(tmp_path / "f.dng", np.zeros((4, 4), np.uint16), pattern="RRGB")


def test_linear_dng_round_trip_and_refused_as_bayer(tmp_path, photo):
    img = photo("chelsea", 64)
    path = tmp_path / "lin.dng"
    write_linear_dng(path, img, wb=(2.0, 1.0, 1.6), iso=800)
    back = read_linear_dng(path)
    assert back.shape == (64, 64, 3)
    assert np.abs(back - img).max() <= 0.5 / 65535 + 1e-7
    assert read_iso(path) == 800
    with pytest.raises(ImageReadError, match="not a Bayer mosaic"):
        read_raw(path)
