"""Evaluation: score outputs or models under a named metric protocol, next to classical baselines.

Python entry points: :func:`evaluate_folders`, :func:`evaluate_pairs`, :func:`evaluate_model`,
:func:`evaluate_samples` (each returns the report dict; ``report=PATH`` also writes JSON, CSV,
Markdown and comparison images). CLI: ``restorekit eval``.
"""

from restorekit.evaluation.baselines import BASELINES, estimate_blur_sigma, estimate_noise_sigma, resolve_baselines
from restorekit.evaluation.report import to_csv, to_markdown, write_report
from restorekit.evaluation.runner import (
    evaluate_folders,
    evaluate_model,
    evaluate_pairs,
    evaluate_samples,
    make_model_fn,
)
from restorekit.evaluation.sources import EvalSample, resolve_data

__all__ = [
    "BASELINES",
    "EvalSample",
    "estimate_blur_sigma",
    "estimate_noise_sigma",
    "evaluate_folders",
    "evaluate_model",
    "evaluate_pairs",
    "evaluate_samples",
    "make_model_fn",
    "resolve_baselines",
    "resolve_data",
    "to_csv",
    "to_markdown",
    "write_report",
]
