"""Presets reproduce the seed recipes; the pipeline is reproducible and validates its config."""

from __future__ import annotations

import numpy as np
import pytest

from restorekit.degrade import PRESETS, build_degrader, list_presets
from restorekit.errors import ConfigError
from restorekit.utils.seed import sample_rng


def test_manuscript_preset_is_the_seed_recipe() -> None:
    d = build_degrader("manuscript")
    assert [op.name for op in d.ops] == ["gaussian_noise", "gaussian_blur", "fade", "yellow_tint", "salt_pepper", "jpeg"]
    noise, blur, fade, tint, sp, jpeg = d.ops
    assert (noise.p, noise.sigma) == (0.8, (0.02, 0.10))
    assert (blur.p, blur.kernel_sizes, blur.sigma) == (0.8, [3, 5, 7], None)
    assert (fade.p, fade.contrast, fade.brightness) == (0.7, (0.5, 0.9), (0.05, 0.20))
    assert (tint.p, tint.green, tint.blue) == (0.7, (0.90, 0.98), (0.75, 0.90))
    assert (sp.p, sp.amount) == (0.5, (0.001, 0.01))
    assert (jpeg.p, jpeg.quality) == (0.5, (60.0, 90.0))


def test_manuscript_stains_replaces_jpeg_by_stains() -> None:
    d = build_degrader("manuscript-stains")
    assert [op.name for op in d.ops][-1] == "stains" and "jpeg" not in [op.name for op in d.ops]
    st = d.ops[-1]
    assert (st.count, st.radius, st.darkness) == ((1, 5), (10, 50), (0.3, 0.7))


def test_manuscript_frequencies_and_ranges(photo) -> None:  # noqa: ANN001
    d = build_degrader("manuscript")
    img = photo("astronaut", 32)
    counts: dict[str, int] = {}
    n = 600
    for i in range(n):
        _, params = d(img, sample_rng(0, 0, i))
        for k, v in params.items():
            counts[k] = counts.get(k, 0) + 1
            if k == "gaussian_noise":
                assert 0.02 <= v["sigma"] <= 0.10
            if k == "jpeg":
                assert 60 <= v["quality"] <= 90
            if k == "gaussian_blur":
                assert v["kernel"] in (3, 5, 7)
    for name, p in [("gaussian_noise", 0.8), ("gaussian_blur", 0.8), ("fade", 0.7), ("yellow_tint", 0.7), ("salt_pepper", 0.5), ("jpeg", 0.5)]:
        sd = np.sqrt(n * p * (1 - p))
        assert abs(counts[name] - n * p) < 4 * sd, (name, counts[name])


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_runs_and_is_reproducible(name: str, photo) -> None:  # noqa: ANN001
    d = build_degrader(name)
    img = photo("coffee", 96)
    a, pa = d(img, sample_rng(3, 1, 4))
    b, pb = d(img, sample_rng(3, 1, 4))
    c, pc = d(img, sample_rng(3, 2, 4))
    np.testing.assert_array_equal(a, b)
    assert pa == pb
    assert a.shape == img.shape and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    if name != "div2k-bicubic-x4":  # the only deterministic recipe
        assert not np.array_equal(a, c)


def test_demo_deblur_is_moderate(photo) -> None:  # noqa: ANN001
    """demo-deblur must leave a learnable gap: degraded PSNR in a moderate band."""
    from skimage.metrics import peak_signal_noise_ratio

    d = build_degrader("demo-deblur")
    img = photo("astronaut", 256)
    psnrs = [peak_signal_noise_ratio(img, d(img, sample_rng(0, i))[0], data_range=1.0) for i in range(12)]
    assert 20 < float(np.mean(psnrs)) < 32


def test_gopro_like_and_div2k() -> None:
    g = build_degrader("gopro-like")
    assert g.ops[0].name == "motion_blur" and g.ops[0].kind == "trajectory" and g.ops[0].gamma == 2.2
    x4 = build_degrader("div2k-bicubic-x4")
    assert x4.ops[0].scale == (0.25, 0.25) and x4.ops[0].down == ["bicubic"]


def test_spec_mixes_presets_and_ops_and_names_bad_keys() -> None:
    d = build_degrader(["div2k-bicubic-x4", {"name": "gaussian_noise", "p": 1.0, "sigma": 0.01}])
    assert [o.name for o in d.ops] == ["resample", "gaussian_noise"]
    with pytest.raises(ConfigError, match="sigma"):
        build_degrader([{"name": "gaussian_noise", "sigma": [0.2, 0.1]}])
    with pytest.raises(ConfigError, match="bogus"):
        build_degrader([{"name": "fade", "bogus": 1}])
    with pytest.raises(ConfigError, match="unknown degradation preset 'nope'"):
        build_degrader("nope")
    assert set(PRESETS) >= {"manuscript", "manuscript-stains", "gopro-like", "div2k-bicubic-x4", "demo-deblur"}


def test_one_of_picks_one_and_reports_it(photo) -> None:  # noqa: ANN001
    d = build_degrader("demo-deblur")
    chosen = {d(photo("chelsea", 32), sample_rng(1, i))[1]["one_of"]["chosen"] for i in range(40)}
    assert chosen == {"gaussian_blur", "motion_blur"}


def test_repeated_op_names_get_suffixes(photo) -> None:  # noqa: ANN001
    d = build_degrader([{"name": "fade"}, {"name": "fade"}])
    _, params = d(photo("chelsea", 16), sample_rng(0))
    assert set(params) == {"fade", "fade#2"}
