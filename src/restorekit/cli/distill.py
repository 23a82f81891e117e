"""`restorekit distill CONFIG --out DIR`: distill a teacher into a small student, with a scorecard.

Stages (each resumes): train the teacher when ``teacher.train`` is configured
(or load ``teacher.path``), precompute its outputs into a fingerprinted cache
(``teacher.mode: precompute``) or run it per batch (``online``), train the
student through the training engine, and write ``DIR/report.json`` /
``DIR/report.md`` comparing input, teacher and student.
"""

from __future__ import annotations

import argparse


def register(sub) -> None:  # noqa: ANN001
    p = sub.add_parser(
        "distill",
        help="distill a teacher into a small student (teacher cache, KD losses, scorecard)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="distillation YAML (a run config plus teacher/distill/score sections)")
    p.add_argument("--out", required=True, help="output folder (teacher/, teacher_cache/, student/, report.json)")
    p.add_argument("--resume", default=None, metavar="auto|CKPT",
                   help="'auto': continue an interrupted run in --out (teacher, caches and student)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set distill.lambda_kd=0.5 (repeatable)")
    p.add_argument("--precompute-only", action="store_true",
                   help="stop after the teacher and its output cache (teacher.mode precompute)")
    p.add_argument("--strict", action="store_true", help="exit with status 1 when the student does not beat its input")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from restorekit.distill.config import load_distill_config
    from restorekit.distill.pipeline import ensure_teacher, prepare_precompute, run_distill
    from restorekit.distill.teacher import load_teacher
    from restorekit.errors import ConfigError

    cfg = load_distill_config(args.config, args.overrides)
    out = Path(args.out)
    if args.precompute_only:
        if cfg.teacher.mode != "precompute":
            raise ConfigError("--precompute-only needs teacher.mode: precompute")
        out.mkdir(parents=True, exist_ok=True)
        path = ensure_teacher(cfg, out, args.resume, args.quiet)
        prepare_precompute(cfg, load_teacher(path, cfg.teacher.arch, **cfg.teacher.load_args), out, args.quiet)
        return 0
    res = run_distill(cfg, out, resume=args.resume, quiet=args.quiet)
    if res.report is not None:
        print(f"report: {out / 'report.md'}")
        return 1 if args.strict and not res.report["student_beats_input"] else 0
    return 0
