import json

import numpy as np
import pytest

from restorekit.cli.main import main
from restorekit.documents import pages
from restorekit.documents.pages import PageStyle, generate_pages, render_page
from restorekit.errors import ConfigError
from restorekit.io import read_image


def test_generator_writes_pages_text_and_degraded_copies(small_pages):
    m = json.loads((small_pages / "pages.json").read_text())
    assert [p["script"] for p in m["pages"]] == ["latin", "devanagari", "latin", "devanagari"]
    for p in m["pages"]:
        clean = read_image(small_pages / "clean" / f"{p['name']}.png")
        deg = read_image(small_pages / "degraded" / f"{p['name']}.png")
        txt = (small_pages / "clean" / f"{p['name']}.txt").read_text(encoding="utf-8")
        assert clean.shape == deg.shape == (256, 384, 3)
        # one rendered line per non-empty text line; ink covers a plausible fraction of the page
        assert len([ln for ln in txt.splitlines() if ln.strip()]) == p["lines"] >= 3
        ink = (clean.mean(axis=2) < 0.5).mean()
        assert 0.02 < ink < 0.4
        assert np.abs(clean - deg).mean() > 0.01
        if p["script"] == "devanagari":
            assert any("\u0900" <= ch <= "\u097f" for ch in txt)
            assert p["font"].startswith("Noto")
        else:
            assert txt.isascii()
        assert p["degradation"]  # the sampled parameters are recorded


def test_rendering_is_reproducible_and_varies_with_the_seed():
    style = PageStyle(width=256, height=160, font_size=(16, 20))
    a = render_page("latin", "dejavu-sans", style, np.random.default_rng(1))
    b = render_page("latin", "dejavu-sans", style, np.random.default_rng(1))
    c = render_page("latin", "dejavu-sans", style, np.random.default_rng(2))
    assert np.array_equal(a.image, b.image) and a.text == b.text
    assert a.text != c.text


def test_missing_font_names_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.setattr(pages, "FONT_DIRS", (str(tmp_path),))
    with pytest.raises(ConfigError, match="fonts-lohit-deva"):
        pages.find_font("lohit-devanagari")
    with pytest.raises(ConfigError, match="unknown font"):
        pages.find_font("comic-sans")


def test_cli_pages_and_refusal_to_overwrite(tmp_path, capsys):
    out = tmp_path / "p"
    argv = ["data", "pages", "--out", str(out), "--n", "2", "--script", "devanagari", "--size", "256", "192",
            "--font-size", "16", "20", "--degrade", "blur-noise-yellow"]
    assert main(argv) == 0
    assert sorted(x.name for x in (out / "clean").iterdir()) == ["page_0000.png", "page_0000.txt", "page_0001.png", "page_0001.txt"]
    deg = read_image(out / "degraded" / "page_0000.png")
    assert deg[..., 2].mean() < deg[..., 0].mean() - 0.05  # yellowed paper: less blue than red
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(argv + ["--overwrite", "--degrade", "no-such-preset"]) == 2
    assert main(["data", "pages", "--out", str(tmp_path / "q"), "--fonts", "/nope.ttf"]) == 2
