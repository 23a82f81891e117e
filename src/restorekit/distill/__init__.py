"""Knowledge distillation: a large teacher into a small, fast student, with an honest scorecard.

Entry points (imported lazily so that ``import restorekit.distill`` stays light):

* :func:`load_distill_config` / :class:`DistillConfig` - the YAML (a run config + teacher/distill/score)
* :func:`run_distill` - teacher -> cache (or online) -> student training -> scorecard
* :mod:`restorekit.distill.cache` - resumable, fingerprinted teacher-output cache
* :mod:`restorekit.distill.sampler` - chunked epochs (:class:`ChunkedEpochSampler`, :class:`ChunkedDataset`)
* :mod:`restorekit.distill.scorecard` - input vs teacher vs student report
* :class:`DistillationModule` - the LightningModule owning student and teacher (online teacher, feature distillation)

See docs/distillation.md.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "DistillConfig": ("restorekit.distill.config", "DistillConfig"),
    "load_distill_config": ("restorekit.distill.config", "load_distill_config"),
    "run_distill": ("restorekit.distill.pipeline", "run_distill"),
    "DistillResult": ("restorekit.distill.pipeline", "DistillResult"),
    "precompute_teacher": ("restorekit.distill.cache", "precompute_teacher"),
    "CacheItem": ("restorekit.distill.cache", "CacheItem"),
    "cache_fingerprint": ("restorekit.distill.fingerprint", "cache_fingerprint"),
    "ChunkedEpochSampler": ("restorekit.distill.sampler", "ChunkedEpochSampler"),
    "ChunkedDataset": ("restorekit.distill.sampler", "ChunkedDataset"),
    "epoch_indices": ("restorekit.distill.sampler", "epoch_indices"),
    "score_models": ("restorekit.distill.scorecard", "score_models"),
    "DistillationModule": ("restorekit.distill.module", "DistillationModule"),
    "distillation_factory": ("restorekit.distill.module", "distillation_factory"),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'restorekit.distill' has no attribute {name!r}")
