"""Parameter and MAC counting, torch only.

Convention: 1 MAC = one multiply-add (so FLOPs ~= 2 x MACs). Counted: convolutions
(``conv1d/2d/3d``, transposed convs), ``linear``, matrix products (``matmul``,
``@``, ``bmm``, ``baddbmm``, ``addmm``, ``mm``), ``einsum`` and
``scaled_dot_product_attention`` (QK^T and AV). Not counted: element-wise ops,
normalisation, activations, pooling, softmax, interpolation, biases. Counts are
for the whole batch of the example input.

Counting intercepts torch functions with a ``TorchFunctionMode`` while the
model runs once under ``torch.no_grad()``, so attention written with ``@`` or
``einsum`` is included, not only ``nn.Conv2d``/``nn.Linear`` modules.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from restorekit.models.spec import arch_of, caps_of


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared tensors counted once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def _conv_macs(args: tuple, kwargs: dict, out: torch.Tensor, transposed: bool) -> int:
    x = args[0]
    weight = args[1] if len(args) > 1 else kwargs["weight"]
    k = math.prod(weight.shape[2:])
    if transposed:
        # weight: (in, out/groups, k...): every input element feeds out/groups * k outputs
        return x.numel() * weight.shape[1] * k
    # weight: (out, in/groups, k...)
    return out.numel() * weight.shape[1] * k


def _matmul_macs(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> int:
    k = a.shape[-1] if a.dim() > 0 else 1
    return out.numel() * k


def _einsum_macs(args: tuple) -> int:
    eq = args[0]
    ops = args[1] if len(args) == 2 and isinstance(args[1], (list, tuple)) else args[1:]
    lhs = eq.replace(" ", "").split("->")[0]
    if len(ops) < 2 or "..." in lhs:
        return 0
    sizes: dict[str, int] = {}
    for term, t in zip(lhs.split(","), ops):
        for ch, n in zip(term, t.shape):
            sizes[ch] = n
    return math.prod(sizes.values())


def _sdpa_macs(args: tuple, kwargs: dict) -> int:
    q, k = args[0], args[1]
    v = args[2] if len(args) > 2 else kwargs["value"]
    lq, d, lk, dv = q.shape[-2], q.shape[-1], k.shape[-2], v.shape[-1]
    batch = math.prod(q.shape[:-2])
    return batch * lq * lk * (d + dv)


class _MacCounter(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.macs = 0
        self.by_op: dict[str, int] = {}

    def _add(self, name: str, n: int) -> None:
        self.macs += int(n)
        self.by_op[name] = self.by_op.get(name, 0) + int(n)

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        try:
            if func in (F.conv1d, F.conv2d, F.conv3d, torch.conv1d, torch.conv2d, torch.conv3d):
                self._add("conv", _conv_macs(args, kwargs, out, False))
            elif func in (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d):
                self._add("conv_transpose", _conv_macs(args, kwargs, out, True))
            elif func is F.linear:
                self._add("linear", out.numel() * args[0].shape[-1])
            elif func in (torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.bmm, torch.mm,
                          torch.Tensor.bmm, torch.Tensor.mm):
                self._add("matmul", _matmul_macs(args[0], args[1], out))
            elif func in (torch.baddbmm, torch.addmm, torch.addbmm):
                self._add("matmul", _matmul_macs(args[1], args[2], out))
            elif func is torch.einsum:
                self._add("einsum", _einsum_macs(args))
            elif func is F.scaled_dot_product_attention:
                self._add("attention", _sdpa_macs(args, kwargs))
        except Exception:  # noqa: BLE001 - counting must never break a forward pass
            pass
        return out


def count_macs(
    model: nn.Module,
    inputs: Sequence[int] | torch.Tensor | tuple[torch.Tensor, ...],
    *,
    return_breakdown: bool = False,
) -> int | tuple[int, dict[str, int]]:
    """Multiply-accumulates of one forward pass.

    ``inputs``: an input shape such as ``(1, 3, 256, 256)`` (a zero tensor is
    built on the model's device), one example tensor, or a tuple of example
    tensors passed positionally (e.g. ``(rggb, cond, residual)``).
    For ``nafnet_cond`` a shape ``(B, 3, H, W)`` means a full-resolution RGB
    image of that size and the three inputs are built from it.
    """
    args = _example_inputs(model, inputs)
    counter = _MacCounter()
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), counter:
            model(*args)
    finally:
        model.train(was_training)
    return (counter.macs, dict(counter.by_op)) if return_breakdown else counter.macs


def _example_inputs(model: nn.Module, inputs: Any) -> tuple[torch.Tensor, ...]:
    if isinstance(inputs, torch.Tensor):
        return (inputs,)
    if isinstance(inputs, (tuple, list)) and inputs and all(isinstance(t, torch.Tensor) for t in inputs):
        return tuple(inputs)
    shape = tuple(int(s) for s in inputs)
    try:
        p = next(model.parameters())
        kw: dict[str, Any] = {"device": p.device, "dtype": p.dtype}
    except StopIteration:
        kw = {}
    from restorekit.models.nafnet_cond import CondNAFNet

    if isinstance(model, CondNAFNet):
        b, _, h, w = shape
        return (torch.zeros(b, 4, h // 2, w // 2, **kw), torch.zeros(b, 1, **kw), torch.zeros(b, 3, h // 2 * 2, w // 2 * 2, **kw))
    return (torch.zeros(shape, **kw),)


def model_summary(model: nn.Module, size: tuple[int, int] = (256, 256)) -> dict[str, Any]:
    """Parameters and GMACs of ``model`` on a ``(1, C, H, W)`` input (C from the first conv)."""
    in_ch = 3
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            in_ch = m.in_channels
            break
    macs, parts = count_macs(model, (1, in_ch, size[0], size[1]), return_breakdown=True)  # type: ignore[misc]
    return {
        "arch": arch_of(model),
        "params": count_params(model),
        "macs": macs,
        "gmacs": macs / 1e9,
        "macs_by_op": parts,
        "size": list(size),
        "value_range": caps_of(model).value_range,
    }
