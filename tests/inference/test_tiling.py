"""Tile grid and blending windows: coverage, full-size tiles, partition of unity."""

from __future__ import annotations

import numpy as np
import pytest

from restorekit.errors import ConfigError
from restorekit.inference.tiling import axis_plan, fit_tile, resolve_overlap, tile_starts, tile_window


@pytest.mark.parametrize("length,tile,overlap", [(2048, 256, 64), (1000, 256, 32), (300, 128, 0), (257, 256, 64), (97, 32, 8)])
def test_tiles_full_size_cover_and_snap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] == length - tile  # last tile snapped to the border
    covered = np.zeros(length, bool)
    for s in starts:
        assert 0 <= s and s + tile <= length  # full size everywhere
        covered[s : s + tile] = True
    assert covered.all()
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


def test_seed_grid_2048():
    # the seed's tiling: 256 tiles, 64 overlap -> stride 192, 11 tiles per side
    assert len(tile_starts(2048, 256, 64)) == 11


def test_small_image_single_tile():
    assert tile_starts(100, 256, 32) == [0]


@pytest.mark.parametrize("blend", ["linear", "cosine"])
def test_windows_partition_of_unity(blend):
    starts, windows, total = axis_plan(1000, 256, 64, blend)
    assert np.all(total > 0)
    # regular overlaps (two tiles) sum to exactly 1 thanks to complementary ramps
    assert np.allclose(total[: starts[-2] + 256], 1.0, atol=1e-6)
    assert windows[0][0] == 1.0 and windows[-1][-1] == 1.0  # flat against the image border


def test_window_ramps_over_overlap():
    starts = [0, 192, 384]
    w = tile_window(starts, 1, 256, "linear")
    assert w[0] < 0.01 and w[63] > 0.99 and np.all(w[64:192] == 1.0)
    assert np.all(np.diff(w[:64]) > 0)


def test_overlap_fraction_and_limits():
    assert resolve_overlap(0.25, 256) == 64
    assert resolve_overlap(32, 256) == 32
    assert resolve_overlap(500, 256) == 128  # clipped to half a tile
    with pytest.raises(ConfigError):
        resolve_overlap(-1, 256)


def test_fit_tile_reduces_waste():
    t = fit_tile(2048, 512, 32, 16)
    assert t == 448
    assert len(tile_starts(2048, t, 32)) == len(tile_starts(2048, 512, 32)) == 5


def test_bad_blend():
    with pytest.raises(ConfigError, match="blend"):
        tile_window([0], 0, 10, "gauss")
