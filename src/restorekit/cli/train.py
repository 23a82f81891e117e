"""`restorekit train CONFIG --out DIR [--resume auto|PATH] [--set key=value ...]`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub) -> None:  # noqa: ANN001
    p = sub.add_parser(
        "train",
        help="train a model from a YAML config (Lightning + MLflow)",
        description=(
            "Train a model from a YAML run config. Writes checkpoints, training_history.json, curves, comparison "
            "images and model.safetensors into --out; MLflow records go to sqlite:///<out parent>/mlflow.db "
            "unless tracking.uri is set."
        ),
    )
    p.add_argument("config", help="run config YAML (see configs/)")
    p.add_argument("--out", default=None, help="run folder (default: runs/<config name>)")
    p.add_argument(
        "--resume",
        default=None,
        metavar="auto|PATH",
        help="continue a run: 'auto' = <out>/checkpoints/latest.ckpt when present, or a checkpoint file",
    )
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=5 --set optim.lr=1e-4 (repeatable)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N or mps (same as --set trainer.device=...)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from restorekit.errors import ConfigError
    from restorekit.training.config import load_run_config
    from restorekit.training.engine import CHECKPOINT_DIR, TrainingInterrupted, train
    from restorekit.training.logs import quiet_lightning

    overrides = list(args.overrides)
    if args.device:
        overrides.append(f"trainer.device={args.device}")
    cfg = load_run_config(args.config, overrides)
    out = Path(args.out) if args.out else Path("runs") / cfg.name
    if args.resume is None and (out / CHECKPOINT_DIR / "latest.ckpt").is_file():
        raise ConfigError(
            f"run folder '{out}' already holds a training run; pass --resume auto to continue it or choose another --out"
        )
    quiet_lightning()
    try:
        result = train(cfg, out, resume=args.resume, progress_bar=False if args.no_progress else None)
    except TrainingInterrupted as exc:
        print(str(exc).replace("restorekit train CONFIG", f"restorekit train {args.config}"), file=sys.stderr)
        return 130
    if result.package is None:  # a non-zero DDP rank
        return 0
    fm = result.final_metrics
    summary = {
        "run_dir": str(result.run_dir),
        "package": str(result.package),
        "epochs": len(result.history),
        "best_checkpoint": str(result.best_checkpoint) if result.best_checkpoint else None,
        "val_input": fm.get("input"),
        "val_output": fm.get("output"),
        "gain_db": fm.get("gain_db"),
        "mlflow_run_id": result.mlflow_run_id,
    }
    print(json.dumps(summary, indent=2))
    return 0
