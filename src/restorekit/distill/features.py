"""Feature distillation set-up: probe channel counts, then one adapter term per (student, teacher) layer pair.

The term itself is :class:`restorekit.losses.distill.FeatureDistillation`
(forward hooks on both networks, a learned 1x1 adapter from the student's
``C_s`` channels to the teacher's ``C_t``, bilinear resize, L1/MSE to the
detached teacher features). This module finds ``C_s`` and ``C_t`` by one dry
forward pass of both networks on a small input, so the adapters exist before
the optimiser is built, and sums several pairs with their weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from restorekit.errors import ConfigError


@dataclass(frozen=True)
class FeaturePair:
    """One distilled activation: module names (as in ``named_modules()``) and the term's weight."""

    student: str
    teacher: str
    weight: float = 1.0


def _module(model: nn.Module, name: str, role: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        sample = ", ".join(n for n in list(modules)[1:25] if n)
        raise ConfigError(f"distill.features: {role} layer '{name}' not found; some layers: {sample}")
    return modules[name]


def _channels(out: Any, where: str) -> int:
    t = out[0] if isinstance(out, (tuple, list)) else out
    if not isinstance(t, torch.Tensor) or t.ndim != 4:
        raise ConfigError(f"distill.features: layer '{where}' does not output a (B, C, H, W) tensor")
    return int(t.shape[1])


@torch.no_grad()
def probe_channels(student: nn.Module, teacher: nn.Module, pairs: list[FeaturePair], size: int = 64) -> list[tuple[int, int]]:
    """``[(C_student, C_teacher)]`` per pair, from one eval-mode forward of each network on a ``size``² input."""
    seen: dict[str, int] = {}
    handles = []
    for i, p in enumerate(pairs):
        for role, net, name in (("s", student, p.student), ("t", teacher, p.teacher)):
            key = f"{role}{i}"
            handles.append(
                _module(net, name, "student" if role == "s" else "teacher").register_forward_hook(
                    lambda _m, _i, out, key=key, name=name: seen.__setitem__(key, _channels(out, name))
                )
            )
    modes = student.training, teacher.training
    try:
        for net in (student, teacher):
            net.eval()
            dev = next((q.device for q in net.parameters()), torch.device("cpu"))
            net(torch.rand(1, 3, size, size, device=dev))
    finally:
        student.train(modes[0])
        teacher.train(modes[1])
        for h in handles:
            h.remove()
    return [(seen[f"s{i}"], seen[f"t{i}"]) for i in range(len(pairs))]


class FeatureTerms(nn.Module):
    """The weighted sum of several :class:`~restorekit.losses.distill.FeatureDistillation` terms.

    ``forward()`` -> ``(total, {"feat_<student layer>": value})`` from the features
    captured during the most recent student and teacher forwards.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, pairs: list[FeaturePair], criterion: str = "l1") -> None:
        super().__init__()
        from restorekit.losses.distill import FeatureDistillation

        if not pairs:
            raise ConfigError("distill.features: at least one (student, teacher) pair is needed")
        self.pairs = list(pairs)
        chans = probe_channels(student, teacher, self.pairs)
        self.terms = nn.ModuleList(
            FeatureDistillation(student, teacher, p.student, p.teacher, cs, ct, criterion=criterion)
            for p, (cs, ct) in zip(self.pairs, chans)
        )

    def forward(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        parts: dict[str, torch.Tensor] = {}
        total: torch.Tensor | None = None
        for p, term in zip(self.pairs, self.terms):
            v = term()
            parts[f"feat_{p.student}"] = v.detach()
            total = p.weight * v if total is None else total + p.weight * v
        assert total is not None
        return total, parts

    def ready(self) -> bool:
        """True when every term has captured both the student's and the teacher's features."""
        return all(t._student_feat is not None and t._teacher_feat is not None for t in self.terms)

    def clear(self) -> None:
        """Forget captured features (e.g. after a validation forward)."""
        for t in self.terms:
            t._student_feat = t._teacher_feat = None

    def remove(self) -> None:
        """Remove every forward hook."""
        for t in self.terms:
            t.remove()
