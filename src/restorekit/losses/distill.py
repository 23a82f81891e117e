"""Distillation helpers: output distillation (L1 to the teacher's output) and feature distillation.

:class:`FeatureDistillation` hooks one layer of the student and one of the teacher, maps the
student's feature map to the teacher's channels with a learned 1x1 convolution (the adapter; put
its parameters in the optimizer), resizes it bilinearly when the spatial sizes differ, and returns
the L1 (or MSE) distance to the teacher's (detached) features.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from restorekit.errors import ConfigError


def _find_module(model: nn.Module, name: str, role: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        sample = [n for n in modules if n][:12]
        raise ConfigError(f"{role} layer {name!r} not found; some layers: {', '.join(sample)}")
    return modules[name]


class FeatureDistillation(nn.Module):
    """Feature-map distillation between ``student_layer`` and ``teacher_layer``.

    Usage::

        fd = FeatureDistillation(student, teacher, "enc2", "encoders.1", 64, 96)
        out = student(x); with torch.no_grad(): teacher(x)
        loss = fd()        # uses the features captured by the hooks during the two forwards
        fd.remove()        # detach the hooks when done

    Captured features: ``(B, Cs, h, w)`` and ``(B, Ct, h', w')``; adapter: Conv2d(Cs, Ct, 1).
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        student_layer: str,
        teacher_layer: str,
        student_channels: int,
        teacher_channels: int,
        criterion: str = "l1",
    ) -> None:
        super().__init__()
        if criterion not in ("l1", "mse"):
            raise ConfigError(f"feature distillation criterion must be 'l1' or 'mse', got {criterion!r}")
        self.criterion = criterion
        self.adapter = nn.Conv2d(student_channels, teacher_channels, 1)
        self._student_feat: torch.Tensor | None = None
        self._teacher_feat: torch.Tensor | None = None
        s_mod = _find_module(student, student_layer, "student")
        t_mod = _find_module(teacher, teacher_layer, "teacher")
        self._handles = [
            s_mod.register_forward_hook(self._capture_student),
            t_mod.register_forward_hook(self._capture_teacher),
        ]

    def _capture_student(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        self._student_feat = output

    def _capture_teacher(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        self._teacher_feat = output.detach()

    def forward(self) -> torch.Tensor:
        if self._student_feat is None or self._teacher_feat is None:
            raise RuntimeError("run the student and the teacher forward before computing the feature loss")
        s = self.adapter(self._student_feat)
        t = self._teacher_feat.to(s.dtype)
        if s.shape[-2:] != t.shape[-2:]:
            s = F.interpolate(s, size=t.shape[-2:], mode="bilinear", align_corners=False)
        loss = (s - t).abs().mean() if self.criterion == "l1" else ((s - t) ** 2).mean()
        self._student_feat = self._teacher_feat = None
        return loss

    def remove(self) -> None:
        """Remove the forward hooks."""
        for h in self._handles:
            h.remove()
        self._handles = []
