"""Write an evaluation report: JSON (the dict), CSV (one row per method and image), Markdown summary,
and side-by-side comparison images of the best and worst samples of the primary method.

Given ``report.json`` the files are ``report.json``, ``report.csv``, ``report.md`` and
``report_images/{best,worst}_<name>.png``. All writes are atomic. JSON holds no NaN/inf
(NaN -> null; PSNR is already capped at ``psnr_cap_db``).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from restorekit.utils.atomic import atomic_write_json, atomic_write_text
from restorekit.utils.names import safe_filename


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def report_paths(path: str | Path) -> dict[str, Path]:
    """The files written for a report path (``.json`` added when it has no suffix)."""
    p = Path(path)
    if p.suffix.lower() != ".json":
        p = p.with_name(p.name + ".json") if not p.suffix else p.with_suffix(".json")
    return {"json": p, "csv": p.with_suffix(".csv"), "markdown": p.with_suffix(".md"), "images": p.with_name(p.stem + "_images")}


def write_json(result: dict[str, Any], path: str | Path) -> Path:
    """Write the report dict as JSON (NaN/inf -> null)."""
    p = report_paths(path)["json"]
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(p, _clean(result))
    return p


def to_csv(result: dict[str, Any]) -> str:
    """CSV text: protocol, method, kind, name, metrics, condition columns; then a ``mean`` row per method."""
    metrics = list(result.get("metrics", []))
    cond_keys = sorted({k for m in result["methods"].values() for r in m["per_image"] for k in r.get("conditions", {})})
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["protocol", "method", "kind", "name", *metrics, "psnr_capped", *cond_keys])
    proto = result["protocol"]["name"]
    for method, m in result["methods"].items():
        for r in m["per_image"]:
            cond = r.get("conditions", {})
            w.writerow([proto, method, m["kind"], r["name"], *[_fmt(r.get(k)) for k in metrics],
                        int(bool(r.get("psnr_capped"))), *[cond.get(k, "") for k in cond_keys]])
        w.writerow([proto, method, m["kind"], "mean", *[_fmt(m["mean"].get(k)) for k in metrics], "", *["" for _ in cond_keys]])
    return buf.getvalue()


def _fmt(v: Any, digits: int = 6) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _db(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.2f} dB"


def to_markdown(result: dict[str, Any], images: dict[str, str] | None = None) -> str:
    """A Markdown summary: means per method, gains, per-condition table, notes, comparison images."""
    proto = result["protocol"]["name"]
    metrics = [m for m in result.get("metrics", []) if m in ("psnr", "ssim", "ms_ssim", "mae", "lpips")]
    lines = [f"# {result.get('title', 'restorekit evaluation')}", ""]
    if result.get("model"):
        lines.append(f"- model: `{result['model']}`")
    if result.get("data"):
        lines.append(f"- data: `{result['data']}`")
    lines += [f"- images: {result['count']}", f"- protocol: `{proto}`", ""]
    head = "| method | kind | " + " | ".join(f"{m.upper()} ({proto})" if m in ("psnr", "ssim") else m for m in metrics) + " |"
    lines += [head, "|" + "---|" * (len(metrics) + 2)]
    for method in result["ranking"]:
        m = result["methods"][method]
        vals = []
        for k in metrics:
            v = m["mean"].get(k)
            vals.append(_fmt(v, 2 if k == "psnr" else 4))
        star = " **(primary)**" if method == result["primary"] else ""
        lines.append(f"| {method}{star} | {m['kind']} | " + " | ".join(vals) + " |")
    g = result.get("gain_db", {})
    lines += ["", f"- {result['primary']} vs input: {_db(g.get('over_input'))}"]
    if g.get("best_baseline"):
        lines.append(f"- {result['primary']} vs best classical baseline ({g['best_baseline']}): {_db(g.get('over_best_baseline'))}")
    for key, groups in (result.get("by_condition") or {}).items():
        methods = list(result["ranking"])
        lines += ["", f"## PSNR by {key} ({proto})", "", f"| {key} | n | " + " | ".join(methods) + " |", "|" + "---|" * (len(methods) + 2)]
        for value, per in groups.items():
            n = next(iter(per.values()))["n"] if per else 0
            lines.append(f"| {value} | {n} | " + " | ".join(_fmt(per.get(m, {}).get("psnr"), 2) for m in methods) + " |")
    if images:
        lines += ["", "## Comparisons (input | best baseline | " + result["primary"] + " | target)", ""]
        for label, rel in images.items():
            lines.append(f"**{label}**: ![{label}]({rel})")
            lines.append("")
    if result.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in result["notes"]]
    return "\n".join(lines) + "\n"


def _panel(img: np.ndarray, label: str, max_side: int) -> np.ndarray:
    import cv2

    x = np.clip(np.asarray(img, dtype=np.float32), 0, 1)
    h, w = x.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        x = cv2.resize(x, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    elif max(h, w) < 192:  # small crops: enlarge by an integer factor (pixel-exact) so they can be inspected
        f = int(np.ceil(192 / max(h, w)))
        x = np.repeat(np.repeat(x, f, axis=0), f, axis=1)
    bar = np.full((22, x.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(bar, label[:48], (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar.astype(np.float32) / 255.0, x], axis=0)


def comparison_strip(item: dict[str, Any], primary: str, max_side: int = 384) -> np.ndarray:
    """(input | best baseline | primary | target) side by side with labels; ``(h, W, 3)`` float32 [0,1]."""
    outputs: dict[str, np.ndarray] = item["outputs"]
    scores: dict[str, float] = item.get("scores", {})
    panels = []

    def lab(m: str) -> str:
        s = scores.get(m)
        return m if s is None else (f"{m} {min(s, 100.0):.2f} dB")

    if "input" in outputs:
        panels.append(_panel(outputs["input"], lab("input"), max_side))
    others = [m for m in outputs if m not in ("input", primary)]
    if others:
        best = max(others, key=lambda m: scores.get(m) or -1.0)
        panels.append(_panel(outputs[best], lab(best), max_side))
    panels.append(_panel(outputs[primary], lab(primary), max_side))
    panels.append(_panel(item["target"], "target", max_side))
    gap = np.ones((panels[0].shape[0], 4, 3), dtype=np.float32)
    row: list[np.ndarray] = []
    for p in panels:
        row += [p, gap]
    return np.concatenate(row[:-1], axis=1)


def _safe(name: str) -> str:
    return safe_filename(name, max_len=80)


def write_report(result: dict[str, Any], path: str | Path, extremes: dict[str, dict[str, Any]] | None = None) -> dict[str, Path]:
    """Write JSON, CSV, Markdown and comparison images; records the file paths in ``result["files"]``."""
    from restorekit.io import write_image

    paths = report_paths(path)
    paths["json"].parent.mkdir(parents=True, exist_ok=True)
    rel_images: dict[str, str] = {}
    written: dict[str, str] = {}
    for label, item in (extremes or {}).items():
        strip = comparison_strip(item, result["primary"])
        dest = paths["images"] / f"{label}_{_safe(item['name'])}.png"
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_image(dest, strip, bit_depth=8)
        rel_images[f"{label} ({item['name']})"] = f"{paths['images'].name}/{dest.name}"
        written[label] = str(dest)
    result["files"] = {"json": str(paths["json"]), "csv": str(paths["csv"]), "markdown": str(paths["markdown"]),
                       "comparisons": written}
    atomic_write_text(paths["csv"], to_csv(result))
    atomic_write_text(paths["markdown"], to_markdown(result, rel_images))
    write_json(result, paths["json"])
    return paths
