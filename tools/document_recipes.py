#!/usr/bin/env python3
"""Compare training recipes for ``restorekit demo --task document`` at a fixed number of optimizer steps.

Usage::

    nice -n 15 .venv/bin/python tools/document_recipes.py base16 --steps 1500
    nice -n 15 .venv/bin/python tools/document_recipes.py base16 w32 --steps 1500 --threads 1
    .venv/bin/python tools/document_recipes.py --markdown        # the table of docs/documents.md

Every recipe trains through the engine on the demo's own pages (:func:`restorekit.documents.demo.make_demo_pages`
with the demo's seed, so the 48 training pages, the 8 held-out pages and the 4 other-font pages are the ones
``restorekit demo --task document`` makes) plus, for a steadier estimate, 16 more held-out pages (8 per script,
another seed, the same document degradation). Training is bounded by steps (``train.max_steps``; cosine over those
steps instead of the demo's cosine over time), not by time, because the machine is shared: the step counts are
converted to the demo's time budget with idle step rates measured separately. Each recipe's result is merged into
``docs/results/document-recipes.json`` (keyed by recipe name and steps), with the wall seconds it took as a
rough indication only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

#: recipe name -> (what it changes, --set overrides on the demo config)
RECIPES: dict[str, tuple[str, list[str]]] = {
    "base16": ("16 filters: the previous demo recipe (student_unet, 96 px patches, L1, AdamW 1e-3)",
               ["model.args.base_filters=16"]),
    "w32": ("32 filters, otherwise the same (the demo recipe now)", ["model.args.base_filters=32"]),
    # untried levers, each on top of the demo recipe
    "p128": ("demo recipe with 128 px patches", ["data.patch_size=128"]),
    "charb": ("demo recipe with Charbonnier instead of L1", ["loss=[{name: charbonnier, weight: 1.0, args: {eps: 1.0e-3}}]"]),
    "l1_msssim": ("demo recipe with 0.84 MS-SSIM + 0.16 L1", ["loss=[{name: ms_ssim, weight: 0.84}, {name: l1, weight: 0.16}]"]),
    "lr2e-3": ("demo recipe with lr 2e-3", ["optim.lr=2.0e-3"]),
    "d4": ("demo recipe with 4 levels (larger receptive field)", ["model.args.depth=4"]),
}

#: extra held-out pages per script (another seed) for a steadier CER estimate than the demo's 4 per script
N_EXTRA_PER_SCRIPT = 8


def _ocr_block(ev: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for lang, s in ev["ocr"].items():
        out[lang] = {k: round(float(s[k]), 4) for k in ("clean_cer", "input_cer", "output_cer", "output_over_input_cer")}
    methods = ev["methods"]
    out["psnr_in"] = round(float(methods["input"]["mean"]["psnr"]), 2)
    out["psnr_out"] = round(float(methods[ev["primary"]]["mean"]["psnr"]), 2)
    # per page: language, CER of the clean, degraded and restored page
    out["per_page"] = {p["name"]: [p["lang"], *(round(float(p[k]["cer"]), 4) for k in ("clean", "input", "output"))]
                       for p in ev["ocr_pages"]}
    return out


def make_pages(root: Path, seed: int) -> None:
    """The demo's pages plus the extra held-out set (once; reused by every recipe)."""
    from restorekit.documents.demo import make_demo_pages
    from restorekit.documents.pages import DOCUMENT_DEGRADE, PageStyle, generate_pages

    if (root / "done").is_file():
        return
    if root.exists():
        shutil.rmtree(root)
    make_demo_pages(root, seed=seed, style=PageStyle())
    generate_pages(root / "extra", 2 * N_EXTRA_PER_SCRIPT, script="both", style=PageStyle(), degrade=DOCUMENT_DEGRADE,
                   seed=seed * 1000 + 7, prefix="extra")
    (root / "done").write_text("ok\n")


def run_recipe(name: str, steps: int, work: Path, threads: int, extra_sets: list[str]) -> dict[str, Any]:
    import torch

    from restorekit.documents.demo import document_demo_config
    from restorekit.training.engine import resolve_precision
    from restorekit.documents.ocr import evaluate_with_ocr
    from restorekit.training.config import config_to_dict, parse_run_config
    from restorekit.training.engine import train

    what, overrides = RECIPES[name]
    cfg = document_demo_config(overrides)
    pages = work / "pages"
    make_pages(pages, cfg.seed)
    d = config_to_dict(cfg)
    d["data"]["dir"] = str(pages / "train" / "clean")
    d["data"]["val_dir"] = str(pages / "val" / "clean")
    # about 6 validations, like the demo: repeat = steps / 6 * batch / pages
    d["data"]["repeat"] = max(1, round(steps / 6 * d["data"]["batch_size"] / 48))
    d["train"].update({"epochs": 1000, "max_steps": steps, "max_minutes": 600})
    d["schedule"]["name"] = "cosine"
    d["trainer"].update({"progress_bar": False, "num_threads": threads})
    d["tracking"]["enabled"] = False
    cfg = parse_run_config(d, f"recipe {name}")
    torch.set_num_threads(threads)
    run_dir = work / f"{name}-{steps}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    t0 = time.time()
    result = train(cfg, run_dir)
    train_s = time.time() - t0
    model = run_dir / "model.safetensors"
    row: dict[str, Any] = {
        "recipe": name, "what": what, "overrides": overrides, "steps": steps, "steps_done": int(result.global_step),
        "train_wall_s": round(train_s, 1), "s_per_step_shared": round(train_s / max(1, result.global_step), 4),
        "precision": resolve_precision(cfg, "cpu"), "threads": threads,
    }
    for key, sub in [("demo_val", "val"), ("other_font", "other-font")] + [(s, s) for s in extra_sets]:
        ev = evaluate_with_ocr(["eng", "san"], model=model, data=pages / sub, report=run_dir / f"eval-{sub}" / "report.json",
                               device="cpu", progress=False, comparisons=False, title=f"{name} {sub}")
        row[key] = _ocr_block(ev)
    # the demo's 8 pages and the 16 extra pages together (24 pages, 12 per script): the steadier number
    from restorekit.documents.demo import N_VAL_PER_SCRIPT

    if "extra" in extra_sets:
        both = {}
        for lang in ("eng", "san"):
            a, b = row["demo_val"][lang], row["extra"][lang]
            na, nb = N_VAL_PER_SCRIPT, N_EXTRA_PER_SCRIPT
            inp = (na * a["input_cer"] + nb * b["input_cer"]) / (na + nb)
            out = (na * a["output_cer"] + nb * b["output_cer"]) / (na + nb)
            both[lang] = {"input_cer": round(inp, 4), "output_cer": round(out, 4), "ratio": round(out / inp, 3)}
        row["all_24"] = both
    row["demo_goal_met"] = all(row["demo_val"][lang]["output_over_input_cer"] <= 0.5 for lang in ("eng", "san"))
    return row


def markdown(log: dict[str, Any]) -> str:
    """The table docs/documents.md copies (demo's 8 held-out pages; 24 pages; other fonts)."""
    rows = ["| recipe | steps | eng CER in -> out (ratio) | san CER in -> out (ratio) | 24 pages eng / san ratio "
            "| other fonts eng / san CER | PSNR out (in) | goal |",
            "|---|---:|---|---|---|---|---|---|"]
    for r in sorted(log["runs"], key=lambda r: (r["recipe"], r["steps"])):
        v, o, a = r["demo_val"], r["other_font"], r.get("all_24", {})
        cell = lambda s: f"{s['input_cer']:.3f} -> {s['output_cer']:.3f} ({s['output_over_input_cer']:.3f})"  # noqa: E731
        both = f"{a['eng']['ratio']:.3f} / {a['san']['ratio']:.3f}" if a else "-"
        rows.append(f"| `{r['recipe']}`: {r['what']} | {r['steps']} | {cell(v['eng'])} | {cell(v['san'])} | {both} "
                    f"| {o['eng']['output_cer']:.3f} / {o['san']['output_cer']:.3f} | {v['psnr_out']:.2f} ({v['psnr_in']:.2f}) "
                    f"| {'met' if r['demo_goal_met'] else 'missed'} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("recipes", nargs="*", help=f"recipes to run: {', '.join(RECIPES)}")
    ap.add_argument("--markdown", action="store_true", help="print the table of the JSON log and exit")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default="runs/document-recipes")
    ap.add_argument("--json", default="docs/results/document-recipes.json")
    ap.add_argument("--no-extra", action="store_true", help="score only the demo's own held-out pages")
    args = ap.parse_args()
    work = Path(args.work)
    out = Path(args.json)
    if args.markdown:
        print(markdown(json.loads(out.read_text())))
        return
    if not args.recipes:
        ap.error("name at least one recipe (or --markdown)")
    unknown = [r for r in args.recipes if r not in RECIPES]
    if unknown:
        ap.error(f"unknown recipe(s) {', '.join(unknown)}; known: {', '.join(RECIPES)}")
    for name in args.recipes:
        row = run_recipe(name, args.steps, work, args.threads, [] if args.no_extra else ["extra"])
        log = json.loads(out.read_text()) if out.is_file() else {"about": __doc__.strip().split("\n\n")[0], "runs": []}
        log["runs"] = [r for r in log["runs"] if (r["recipe"], r["steps"]) != (row["recipe"], row["steps"])] + [row]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(log, indent=2, ensure_ascii=False) + "\n")
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
