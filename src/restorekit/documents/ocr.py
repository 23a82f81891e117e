"""OCR evaluation with Tesseract: character and word error rates of clean, degraded and restored pages.

Tesseract (Debian's ``tesseract-ocr`` with ``tesseract-ocr-eng`` / ``tesseract-ocr-san``) runs through
pytesseract; distances are rapidfuzz's Levenshtein. Texts are compared after Unicode NFC normalisation
with every run of white space (line breaks included) collapsed to one space:

* CER = character edit distance / reference characters,
* WER = word edit distance / reference words (words split on white space).

Both can exceed 1 when the OCR output is much longer than the reference. Each page is read in the
language of its ground-truth script (Latin -> ``eng``, Devanagari -> ``san`` / ``hin`` / ``mar``).
Tesseract runs with one OpenMP thread (``OMP_THREAD_LIMIT=1`` unless already set): on a busy machine
more threads make it slower.
"""

from __future__ import annotations

import difflib
import math
import os
import unicodedata
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from restorekit.documents.text import Script, detect_script
from restorekit.errors import ConfigError, DataError

#: Tesseract language -> the script of the text it reads
LANG_SCRIPT: dict[str, Script] = {"eng": "latin", "san": "devanagari", "hin": "devanagari", "mar": "devanagari"}
#: Debian packages
TESSERACT_PACKAGE = "tesseract-ocr"
#: methods scored on each page, in report order: the clean target, the degraded input, the restored output
METHODS: tuple[str, ...] = ("clean", "input", "output")
#: page segmentation mode: 6 = one uniform block of text (a generated page); 3 = automatic layout
DEFAULT_PSM = 6


class TesseractMissing(ConfigError):
    """pytesseract, the tesseract binary or a language's trained data is not installed."""


def parse_langs(spec: str | Sequence[str]) -> list[str]:
    """``"eng,san"`` -> ``["eng", "san"]``; unknown codes are a :class:`ConfigError`."""
    langs = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not langs:
        raise ConfigError("--ocr: give one or more Tesseract languages, e.g. --ocr eng,san")
    bad = [x for x in langs if x not in LANG_SCRIPT]
    if bad:
        raise ConfigError(f"--ocr: unknown language(s) {bad} (supported: {', '.join(LANG_SCRIPT)})")
    if len({LANG_SCRIPT[x] for x in langs}) != len(langs):
        raise ConfigError(f"--ocr {','.join(langs)}: give one language per script")
    return langs


def check_tesseract(langs: Sequence[str] = ("eng",)) -> str:
    """Tesseract's version when pytesseract, the binary and every language in ``langs`` are installed.

    Raises :class:`TesseractMissing` naming what to install.
    """
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    try:
        import pytesseract
    except ImportError as exc:
        raise TesseractMissing(
            "OCR needs the pytesseract package: pip install -c constraints.txt 'restorekit[documents]'"
        ) from exc
    try:
        version = str(pytesseract.get_tesseract_version())
        installed = set(pytesseract.get_languages(config=""))
    except (pytesseract.TesseractNotFoundError, OSError) as exc:
        raise TesseractMissing(
            f"OCR needs the tesseract program: install Debian's {TESSERACT_PACKAGE} "
            f"(apt-get install {TESSERACT_PACKAGE} {' '.join('tesseract-ocr-' + x for x in langs)}; `make ocr`)"
        ) from exc
    missing = [x for x in langs if x not in installed]
    if missing:
        pk = " ".join(f"tesseract-ocr-{x}" for x in missing)
        raise TesseractMissing(f"Tesseract has no trained data for {', '.join(missing)}: install Debian's {pk} (apt-get install {pk})")
    return version


def tesseract_available(langs: Sequence[str] = ("eng",)) -> bool:
    """True when :func:`check_tesseract` passes for ``langs``."""
    try:
        check_tesseract(langs)
    except TesseractMissing:
        return False
    return True


def available_langs() -> list[str]:
    """The languages of :data:`LANG_SCRIPT` Tesseract can read here (empty without pytesseract or tesseract)."""
    try:
        import pytesseract

        installed = set(pytesseract.get_languages(config=""))
    except (ImportError, OSError, RuntimeError):  # TesseractNotFoundError is an OSError, TesseractError a RuntimeError
        return []
    return [x for x in LANG_SCRIPT if x in installed]


def read_pair(before: Any, after: Any, lang: str, *, psm: int = 3) -> tuple[str, str]:
    """Tesseract's text of an input and its restored output (the web app's side-by-side OCR view).
    ``psm`` 3 (automatic layout) suits pages of unknown layout."""
    return ocr_text(before, lang, psm=psm), ocr_text(after, lang, psm=psm)


def _to_pil(image: Any) -> Any:
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(np.clip(arr.astype(np.float32), 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return Image.fromarray(np.ascontiguousarray(arr[..., :3]), mode="RGB")


def ocr_text(image: Any, lang: str, *, psm: int = DEFAULT_PSM) -> str:
    """Tesseract's text for ``image`` ((H, W, 3) float RGB in [0, 1], uint8, or a PIL image) in ``lang``."""
    import pytesseract

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    try:
        return str(pytesseract.image_to_string(_to_pil(image), lang=lang, config=f"--psm {int(psm)}"))
    except pytesseract.TesseractNotFoundError as exc:
        raise TesseractMissing(f"OCR needs the tesseract program: install Debian's {TESSERACT_PACKAGE}") from exc
    except pytesseract.TesseractError as exc:
        raise TesseractMissing(f"tesseract failed ({lang}): {exc}; is tesseract-ocr-{lang} installed?") from exc


def normalize_text(text: str) -> str:
    """NFC, every white-space run -> one space, stripped."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate of ``hypothesis`` against ``reference`` (both normalised first)."""
    from rapidfuzz.distance import Levenshtein

    ref, hyp = normalize_text(reference), normalize_text(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return Levenshtein.distance(ref, hyp) / len(ref)


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance / reference words."""
    from rapidfuzz.distance import Levenshtein

    ref, hyp = normalize_text(reference).split(), normalize_text(hypothesis).split()
    if not ref:
        return 0.0 if not hyp else 1.0
    return Levenshtein.distance(ref, hyp) / len(ref)


def lang_for_text(text: str, langs: Sequence[str]) -> str | None:
    """The language in ``langs`` that reads ``text``'s script, or None when none does."""
    script = detect_script(text)
    for x in langs:
        if LANG_SCRIPT[x] == script:
            return x
    return None


def text_diff(reference: str, hypothesis: str, *, n_lines: int = 12) -> str:
    """A word-wrapped unified diff (``-`` reference, ``+`` OCR) of the first ``n_lines`` differing lines."""
    ref = [ln.strip() for ln in reference.strip().splitlines() if ln.strip()]
    hyp = [ln.strip() for ln in hypothesis.strip().splitlines() if ln.strip()]
    out = [ln for ln in difflib.unified_diff(ref, hyp, "ground truth", "ocr", n=0, lineterm="")]
    return "\n".join(out[: n_lines + 3])


class OcrEvaluator:
    """Collects per-page OCR scores; :meth:`summary` gives per-language means, :meth:`markdown` the report section."""

    def __init__(self, langs: Sequence[str], *, psm: int = DEFAULT_PSM) -> None:
        self.langs = parse_langs(langs)
        self.psm = psm
        self.pages: list[dict[str, Any]] = []
        self.skipped: list[str] = []

    def add(self, name: str, reference: str, images: dict[str, Any]) -> dict[str, Any] | None:
        """OCR ``images`` (method -> (H, W, 3) image; methods of :data:`METHODS`) of page ``name``; None when skipped."""
        lang = lang_for_text(reference, self.langs)
        if lang is None:
            self.skipped.append(name)
            return None
        row: dict[str, Any] = {"name": name, "lang": lang, "reference": reference}
        for method in METHODS:
            if method in images and images[method] is not None:
                hyp = ocr_text(images[method], lang, psm=self.psm)
                row[method] = {"cer": cer(reference, hyp), "wer": wer(reference, hyp), "text": hyp}
        self.pages.append(row)
        return row

    def summary(self) -> dict[str, Any]:
        """``{lang: {clean_cer, input_cer, output_cer, clean_wer, ..., n_pages, output_over_input_cer}}``."""
        out: dict[str, Any] = {}
        for lang in self.langs:
            rows = [r for r in self.pages if r["lang"] == lang]
            if not rows:
                continue
            s: dict[str, Any] = {"n_pages": len(rows)}
            for method in METHODS:
                vals = [r[method] for r in rows if method in r]
                if vals:
                    s[f"{method}_cer"] = float(np.mean([v["cer"] for v in vals]))
                    s[f"{method}_wer"] = float(np.mean([v["wer"] for v in vals]))
            if "output_cer" in s and "input_cer" in s:
                s["output_over_input_cer"] = s["output_cer"] / s["input_cer"] if s["input_cer"] > 0 else math.nan
            out[lang] = s
        return out

    def per_page(self, *, with_text: bool = False) -> list[dict[str, Any]]:
        """Per-page CER/WER (and the OCR texts when ``with_text``)."""
        rows = []
        for r in self.pages:
            row: dict[str, Any] = {"name": r["name"], "lang": r["lang"]}
            for method in METHODS:
                if method in r:
                    row[method] = {k: v for k, v in r[method].items() if with_text or k != "text"}
            rows.append(row)
        return rows

    def worst(self, n: int = 2, method: str = "output") -> list[dict[str, Any]]:
        """The ``n`` pages with the highest CER of ``method`` (falls back to ``input``)."""
        key = method if any(method in r for r in self.pages) else "input"
        rows = [r for r in self.pages if key in r]
        return sorted(rows, key=lambda r: -r[key]["cer"])[:n]

    def markdown(self, n_worst: int = 2) -> str:
        """The report section: a CER/WER table per language, per-page rows and the diff of the worst pages."""
        s = self.summary()
        lines = ["## OCR (Tesseract)", "",
                 "CER / WER against the ground-truth text (lower is better); clean = the clean page, "
                 "input = the degraded page, output = the restored page.", "",
                 "| lang | pages | clean CER | input CER | output CER | clean WER | input WER | output WER |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|"]

        def f(d: dict[str, Any], k: str) -> str:
            return f"{d[k]:.3f}" if k in d else "-"

        for lang, d in s.items():
            lines.append(f"| {lang} | {d['n_pages']} | {f(d, 'clean_cer')} | {f(d, 'input_cer')} | {f(d, 'output_cer')} | "
                         f"{f(d, 'clean_wer')} | {f(d, 'input_wer')} | {f(d, 'output_wer')} |")
        lines += ["", "| page | lang | clean CER | input CER | output CER |", "|---|---|---:|---:|---:|"]
        for r in self.pages:
            cells = [f"{r[m]['cer']:.3f}" if m in r else "-" for m in METHODS]
            lines.append(f"| {r['name']} | {r['lang']} | " + " | ".join(cells) + " |")
        if self.skipped:
            lines += ["", f"Not read (script not in --ocr {','.join(self.langs)}): {', '.join(self.skipped)}."]
        for r in self.worst(n_worst):
            lines += ["", f"### Worst page: {r['name']} ({r['lang']})", ""]
            for method in ("input", "output"):
                if method in r:
                    lines += [f"{method} (CER {r[method]['cer']:.3f}), diff against the ground truth:", "", "```diff",
                              text_diff(r["reference"], r[method]["text"]) or "(identical)", "```", ""]
        return "\n".join(lines) + "\n"


def find_texts(roots: Iterable[tuple[str, Path]]) -> dict[str, Path]:
    """Ground-truth ``.txt`` files keyed like evaluation sample names: ``prefix + relative path without .txt``."""
    out: dict[str, Path] = {}
    for prefix, root in roots:
        root = Path(root)
        if root.is_dir():
            for p in sorted(root.rglob("*.txt")):
                out[prefix + p.relative_to(root).with_suffix("").as_posix()] = p
    return out


def text_roots(*, data: Any = None, target_dir: str | Path | None = None) -> list[tuple[str, Path]]:
    """Where the ground-truth texts of an evaluation live: beside the target (clean) images."""
    if target_dir is not None:
        return [("", Path(target_dir))]
    if isinstance(data, tuple) and len(data) == 2:
        return [("", Path(data[1]))]
    if isinstance(data, (str, Path)) and Path(data).is_dir():
        from restorekit.evaluation.sources import find_pair_dirs

        root = Path(data)
        return [("" if deg.parent == root else deg.parent.name + "/", clean) for deg, clean in find_pair_dirs(root)]
    raise ConfigError("--ocr needs ground-truth .txt files beside the clean images: use --target DIR or --data FOLDER")


def _reference(texts: dict[str, Path], name: str) -> str:
    p = texts.get(name)
    if p is None:
        raise DataError(f"--ocr: no ground-truth text for page '{name}' (expected {name}.txt beside the clean image)")
    return p.read_text(encoding="utf-8")


def evaluate_with_ocr(
    langs: str | Sequence[str],
    *,
    report: str | Path,
    model: Any = None,
    data: Any = None,
    pred_dir: str | Path | None = None,
    target_dir: str | Path | None = None,
    input_dir: str | Path | None = None,
    baselines: str | Sequence[str] | None = None,
    tile: int | str = "auto",
    overlap: int | float = 32,
    device: str | None = None,
    ensemble: bool = False,
    backend: str = "auto",
    limit: int | None = None,
    on_missing: str = "fail",
    psm: int = DEFAULT_PSM,
    n_worst: int = 2,
    **common: Any,
) -> dict[str, Any]:
    """``restorekit eval ... --ocr``: the usual PSNR/SSIM evaluation plus Tesseract CER/WER of every page.

    Either ``pred_dir`` + ``target_dir`` [+ ``input_dir``] (existing outputs) or ``model`` with ``data`` (a
    dataset folder such as the generator's ``clean/`` + ``degraded/``, or an ``(input_dir, target_dir)`` pair).
    The result gains ``ocr`` (per-language means), ``ocr_pages`` (per page); the JSON report is rewritten
    with them and the Markdown report gains the OCR section with the diffs of the worst pages.
    """
    from restorekit.evaluation import evaluate_samples, make_model_fn
    from restorekit.evaluation.sources import folder_samples, resolve_data
    from restorekit.utils.atomic import atomic_write_json, atomic_write_text

    ev = OcrEvaluator(langs, psm=psm)
    check_tesseract(ev.langs)
    if pred_dir is not None:
        if target_dir is None:
            raise ConfigError("--pred needs --target DIR")
        texts = find_texts(text_roots(target_dir=target_dir))
        n, samples = folder_samples(target_dir, input_dir=input_dir, pred_dir=pred_dir, on_missing=on_missing, limit=limit)

        def with_ocr(it: Iterator[Any]) -> Iterator[Any]:
            for s in it:
                ev.add(s.name, _reference(texts, s.name), {"clean": s.target, "input": s.input, "output": s.pred})
                yield s

        res = evaluate_samples(with_ocr(samples), primary="pred", baselines=baselines or "none", total=n, report=report,
                               **common)
    elif model is not None:
        texts = find_texts(text_roots(data=data))
        n, samples = resolve_data(data, limit=limit, on_missing=on_missing)
        fn, label = make_model_fn(model, tile=tile, overlap=overlap, device=device, ensemble=ensemble, backend=backend)

        def run(sample: Any) -> np.ndarray:
            out = fn(sample)
            ev.add(sample.name, _reference(texts, sample.name), {"clean": sample.target, "input": sample.input, "output": out})
            return out

        extra = {"model": str(model) if isinstance(model, (str, Path)) else label}
        res = evaluate_samples(samples, model_fn=run, primary="model", baselines=baselines or "none", total=n,
                               report=report, extra=extra, **common)
    else:
        raise ConfigError("--ocr needs --pred DIR --target DIR, or --model M with --data/--input/--target")
    res["ocr"] = ev.summary()
    res["ocr_pages"] = ev.per_page()
    res["ocr_texts"] = ev.per_page(with_text=True)
    res["ocr_tesseract"] = {"langs": ev.langs, "psm": psm, "skipped": ev.skipped}
    files = res.get("files", {})
    if files.get("json"):
        atomic_write_json(files["json"], res)
    if files.get("markdown"):
        md = Path(files["markdown"])
        atomic_write_text(md, (md.read_text(encoding="utf-8") if md.is_file() else "") + "\n" + ev.markdown(n_worst))
    return res


