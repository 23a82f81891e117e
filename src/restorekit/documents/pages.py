"""Synthetic document pages: clean pages rendered from text with system fonts, degraded copies, ground-truth text.

``generate_pages(out, n, script="both")`` writes::

    out/clean/page_0000.png     clean page, RGB 8-bit (dark ink on near-white paper)
    out/clean/page_0000.txt     the text on it, UTF-8, one line per rendered line
    out/degraded/page_0000.png  the same page degraded (``degrade``; default :data:`DOCUMENT_DEGRADE`)
    out/pages.json              per page: script, font, size, layout, ink, degradation parameters

``clean/`` + ``degraded/`` is a dataset folder ``restorekit eval --data`` recognises, and ``clean/`` a
``kind: clean`` training folder. Fonts are looked up on the system (Debian's ``fonts-dejavu-core``,
``fonts-noto-core``, ``fonts-lohit-deva``); a missing font is a :class:`~restorekit.errors.ConfigError`
naming the package to install. Complex Devanagari shaping needs Pillow's raqm layout engine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from restorekit.documents.text import Script, make_words
from restorekit.errors import ConfigError

#: where fonts are searched (recursively)
FONT_DIRS: tuple[str, ...] = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")

#: font name -> (file name, Debian package)
FONTS: dict[str, tuple[str, str]] = {
    "dejavu-sans": ("DejaVuSans.ttf", "fonts-dejavu-core"),
    "dejavu-serif": ("DejaVuSerif.ttf", "fonts-dejavu-core"),
    "noto-serif": ("NotoSerif-Regular.ttf", "fonts-noto-core"),
    "noto-sans": ("NotoSans-Regular.ttf", "fonts-noto-core"),
    "noto-sans-devanagari": ("NotoSansDevanagari-Regular.ttf", "fonts-noto-core"),
    "noto-serif-devanagari": ("NotoSerifDevanagari-Regular.ttf", "fonts-noto-core"),
    "lohit-devanagari": ("Lohit-Devanagari.ttf", "fonts-lohit-deva"),
}
#: fonts each script uses by default (the generator draws one per page)
SCRIPT_FONTS: dict[str, tuple[str, ...]] = {
    "latin": ("dejavu-sans", "dejavu-serif"),
    "devanagari": ("noto-sans-devanagari", "noto-serif-devanagari"),
}
#: fonts kept out of training, for the "another font" check (also rendered by ``--fonts``)
HELD_OUT_FONTS: dict[str, tuple[str, ...]] = {"latin": ("noto-serif",), "devanagari": ("lohit-devanagari",)}

#: how pages are degraded by default: the paper's ageing (bleed-through, soft brown stains), the manuscript
#: seed's six techniques (noise, blur, fading, yellowing, salt and pepper, JPEG), then a worn scan (more blur
#: and noise) so that Tesseract's reading clearly suffers (measured: docs/documents.md)
DOCUMENT_DEGRADE: list[Any] = [
    {"name": "bleed_through", "p": 0.5, "strength": [0.15, 0.4]},
    {"name": "stains", "p": 0.5, "count": [1, 3], "radius": [20, 60], "darkness": [0.4, 0.75], "softness": 0.6,
     "color": [1.0, 0.92, 0.78]},
    "manuscript",
    {"name": "gaussian_blur", "p": 0.5, "kernel_sizes": [5, 7], "sigma": [1.0, 1.6]},
    {"name": "gaussian_noise", "p": 0.8, "sigma": [0.05, 0.12]},
]
#: a different degradation for the generalisation check: stronger blur, noise and yellowed paper only
BLUR_NOISE_YELLOW: list[Any] = [
    {"name": "gaussian_blur", "p": 1.0, "kernel_sizes": [5], "sigma": [1.1, 1.3]},
    {"name": "gaussian_noise", "p": 1.0, "sigma": [0.10, 0.12]},
    {"name": "yellow_tint", "p": 1.0, "green": [0.85, 0.9], "blue": [0.6, 0.7]},
]

#: ink colours (RGB 0-255): black, iron-gall brown, blue-black, sepia
INKS: tuple[tuple[int, int, int], ...] = ((20, 20, 20), (60, 35, 20), (25, 30, 70), (45, 30, 25), (0, 0, 0))


@dataclass
class PageStyle:
    """Ranges the generator draws each page's look from (pixels unless said otherwise)."""

    width: int = 512
    height: int = 384
    font_size: tuple[int, int] = (20, 28)
    line_spacing: tuple[float, float] = (1.3, 1.8)  #: line pitch / font size
    margin: tuple[float, float] = (0.04, 0.09)  #: fraction of the width
    indent_p: float = 0.3  #: probability that a paragraph starts indented
    paragraph_p: float = 0.15  #: probability of a paragraph break after a line
    paper: tuple[int, int] = (242, 255)

    def check(self) -> None:
        """Raise :class:`ConfigError` for sizes that cannot hold text."""
        if self.width < 64 or self.height < 64:
            raise ConfigError(f"page size {self.width}x{self.height}: both sides must be at least 64 px")
        lo, hi = self.font_size
        if not 6 <= lo <= hi:
            raise ConfigError(f"font size range {self.font_size}: expected 6 <= min <= max")
        if hi * 2 > self.height:
            raise ConfigError(f"font size {hi} px does not fit a page {self.height} px high")


@dataclass
class Page:
    """One rendered page: ``image`` (H, W, 3) uint8 RGB, its ``text`` and how it was drawn."""

    image: np.ndarray
    text: str
    meta: dict[str, Any] = field(default_factory=dict)


def find_font(name: str) -> Path:
    """The file of font ``name`` (a key of :data:`FONTS`, or a path to a .ttf/.otf)."""
    p = Path(name).expanduser()
    if p.suffix.lower() in (".ttf", ".otf", ".ttc"):
        if not p.is_file():
            raise ConfigError(f"font file '{p}' does not exist")
        return p
    if name not in FONTS:
        raise ConfigError(f"unknown font '{name}' (known: {', '.join(sorted(FONTS))}, or a path to a .ttf file)")
    file, package = FONTS[name]
    for d in FONT_DIRS:
        root = Path(d).expanduser()
        if root.is_dir():
            hits = sorted(root.rglob(file))
            if hits:
                return hits[0]
    raise ConfigError(
        f"font '{name}' ({file}) not found under {', '.join(FONT_DIRS)}: install Debian's {package} "
        f"(apt-get install {package}) or pass a font file"
    )


def _load_font(path: Path, size: int) -> Any:
    from PIL import ImageFont, features

    engine = ImageFont.Layout.RAQM if features.check("raqm") else ImageFont.Layout.BASIC
    return ImageFont.truetype(str(path), size, layout_engine=engine)


def _check_shaping(script: Script) -> None:
    from PIL import features

    if script == "devanagari" and not features.check("raqm"):
        raise ConfigError("Devanagari pages need Pillow with the raqm layout engine (libraqm: apt-get install libraqm0)")


def render_page(script: Script, font: str | Path, style: PageStyle, rng: np.random.Generator) -> Page:
    """Render one clean page of ``script`` text with ``font``; lines are filled word by word until the page is full.

    Returns the page image (H, W, 3) uint8 RGB, near-white paper, antialiased ink, and its text
    (lines joined by ``\\n``, paragraphs by a blank line).
    """
    from PIL import Image, ImageDraw

    style.check()
    _check_shaping(script)
    path = find_font(str(font))
    size = int(rng.integers(style.font_size[0], style.font_size[1] + 1))
    pitch = max(size + 2, int(round(size * float(rng.uniform(*style.line_spacing)))))
    margin = int(round(style.width * float(rng.uniform(*style.margin))))
    top = max(margin, size // 2)
    pil_font = _load_font(path, size)
    mask = Image.new("L", (style.width, style.height), 0)
    draw = ImageDraw.Draw(mask)
    words, source = make_words(script, 4000, rng)
    ascent, descent = pil_font.getmetrics()
    space = pil_font.getlength(" ")
    x0, x1 = margin, style.width - margin
    y = top
    lines: list[str] = []
    cur: list[str] = []
    indent = 0
    wi = 0
    new_para = True
    while y + ascent + descent <= style.height - max(margin // 2, 4) and wi < len(words):
        if new_para:
            indent = int(2 * space * 2) if rng.random() < style.indent_p else 0
            new_para = False
        x = x0 + indent
        cur = []
        while wi < len(words):
            wlen = pil_font.getlength(words[wi])
            if x + wlen > x1:
                break
            cur.append(words[wi])
            x += wlen + space
            wi += 1
        if not cur:  # a single word wider than the line: skip it
            wi += 1
            continue
        draw.text((x0 + indent, y), " ".join(cur), font=pil_font, fill=255)
        lines.append(" ".join(cur))
        indent = 0
        y += pitch
        if rng.random() < style.paragraph_p:
            y += pitch // 2
            new_para = True
            lines.append("")
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise ConfigError(f"no text fits a {style.width}x{style.height} page at {size} px with margin {margin} px")
    alpha = np.asarray(mask, dtype=np.float32)[..., None] / 255.0
    paper = float(rng.integers(style.paper[0], style.paper[1] + 1))
    ink = np.asarray(INKS[int(rng.integers(len(INKS)))], dtype=np.float32)
    img = paper * (1.0 - alpha) + ink * alpha
    meta = {
        "script": script,
        "font": path.name,
        "font_size": size,
        "line_pitch": pitch,
        "margin": margin,
        "paper": paper,
        "ink": [int(v) for v in ink],
        "lines": len([ln for ln in lines if ln]),
        "text_source": source,
    }
    return Page(image=np.clip(np.rint(img), 0, 255).astype(np.uint8), text="\n".join(lines) + "\n", meta=meta)


def page_scripts(script: Literal["latin", "devanagari", "both"], n: int) -> list[Script]:
    """The script of each of ``n`` pages; ``both`` alternates latin, devanagari."""
    if script == "both":
        return ["latin" if i % 2 == 0 else "devanagari" for i in range(n)]
    if script not in ("latin", "devanagari"):
        raise ConfigError(f"--script must be latin, devanagari or both, got {script!r}")
    return [script] * n


def degrade_page(image: np.ndarray, spec: Any, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """Degrade a uint8 page with a degradation spec (preset name or op list); returns (uint8 image, params)."""
    from restorekit.degrade.pipeline import build_degrader

    deg = build_degrader(spec)
    x = image.astype(np.float32) / 255.0
    if deg is None:
        return image.copy(), {}
    y, params = deg(x, rng)
    return np.clip(np.rint(np.clip(y, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8), params


def _json_safe(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    return v


def generate_pages(
    out: str | Path,
    n: int,
    *,
    script: Literal["latin", "devanagari", "both"] = "both",
    style: PageStyle | None = None,
    fonts: dict[str, Sequence[str]] | None = None,
    degrade: Any = "document",
    seed: int = 0,
    prefix: str = "page",
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write ``n`` pages into ``out`` (layout in the module docstring); returns the manifest.

    ``fonts``: script -> font names/paths drawn from (default :data:`SCRIPT_FONTS`). ``degrade``: ``"document"``
    (:data:`DOCUMENT_DEGRADE`), ``"blur-noise-yellow"`` (:data:`BLUR_NOISE_YELLOW`), any preset name or op list,
    or ``None`` / ``"none"`` for clean pages only. Page ``i`` is reproducible from ``(seed, i)``.
    """
    from restorekit.io import write_image
    from restorekit.utils.atomic import atomic_write_json, atomic_write_text

    if n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}")
    style = style or PageStyle()
    style.check()
    fonts = {**SCRIPT_FONTS, **(fonts or {})}
    spec = resolve_degrade(degrade)
    out = Path(out)
    clean_dir, deg_dir = out / "clean", out / "degraded"
    if clean_dir.is_dir() and any(clean_dir.iterdir()) and not overwrite:
        raise ConfigError(f"--out '{out}' already holds pages (clean/); pass --overwrite to replace them")
    clean_dir.mkdir(parents=True, exist_ok=True)
    if spec is not None:
        deg_dir.mkdir(parents=True, exist_ok=True)
    scripts = page_scripts(script, n)
    for s in set(scripts):  # fail early on a missing font, before any page is written
        for f in fonts[s]:
            find_font(f)
    items = []
    for i, s in enumerate(scripts):
        rng = np.random.default_rng([seed, i])
        font_list = list(fonts[s])
        font = font_list[int(rng.integers(len(font_list)))]
        page = render_page(s, font, style, rng)
        name = f"{prefix}_{i:04d}"
        write_image(clean_dir / f"{name}.png", page.image)
        atomic_write_text(clean_dir / f"{name}.txt", page.text)
        item = {"name": name, **page.meta}
        if spec is not None:
            degraded, params = degrade_page(page.image, spec, np.random.default_rng([seed, i, 1]))
            write_image(deg_dir / f"{name}.png", degraded)
            item["degradation"] = _json_safe(params)
        items.append(item)
    manifest = {
        "n": n,
        "seed": seed,
        "script": script,
        "size": [style.width, style.height],
        "style": _json_safe(asdict(style)),
        "degrade": _json_safe(spec),
        "pages": items,
    }
    atomic_write_json(out / "pages.json", manifest)
    return manifest


def resolve_degrade(degrade: Any) -> Any:
    """A degradation spec from a generator name (``document``, ``blur-noise-yellow``, ``none``) or a preset/op list."""
    if degrade is None or degrade == "none":
        return None
    if degrade == "document":
        return list(DOCUMENT_DEGRADE)
    if degrade == "blur-noise-yellow":
        return list(BLUR_NOISE_YELLOW)
    from restorekit.degrade.pipeline import build_degrader

    build_degrader(degrade)  # validates (ConfigError naming the preset or op key)
    return degrade
