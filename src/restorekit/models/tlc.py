"""TLC, the test-time local converter (Chu et al., 2022) for NAFNet-style channel attention.

A network trained on ``train_size`` crops pools its channel-attention statistics
over the whole crop; on a large test image the global mean covers far more
content than in training. TLC replaces each global average pool by the local
box mean over a window 1.5x the feature size seen in training at that level
(e.g. 384 px at full resolution for 256 px crops), and keeps the global pool
whenever the window covers the whole feature map. Weights are unchanged.

Works on every :class:`~restorekit.models.layers.ChannelPool` in a model:
``nafnet`` (SCA) and ``nafnet_cond`` (conditioned channel attention and skip
merges). The local mean uses an integral image (cumsum), which traces and
exports to ONNX.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from restorekit.errors import ConfigError
from restorekit.models.layers import ChannelPool


def _pools(model: nn.Module) -> list[ChannelPool]:
    return [m for m in model.modules() if isinstance(m, ChannelPool)]


def _dummy_inputs(model: nn.Module, h: int, w: int) -> tuple[torch.Tensor, ...]:
    from restorekit.models.nafnet_cond import CondNAFNet

    p = next(model.parameters())
    kw = {"device": p.device, "dtype": p.dtype}
    if isinstance(model, CondNAFNet):
        if h % 2 or w % 2:
            raise ConfigError(f"enable_tlc: train_size {(h, w)} must be even for nafnet_cond (packed RGGB)")
        return (torch.zeros(1, 4, h // 2, w // 2, **kw), torch.zeros(1, 1, **kw), torch.zeros(1, 3, h, w, **kw))
    in_ch = next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
    return (torch.zeros(1, in_ch, h, w, **kw),)


def enable_tlc(model: nn.Module, train_size: int | Sequence[int], factor: float = 1.5) -> nn.Module:
    """Switch every channel-attention pool of ``model`` to TLC local pooling (in place; returns ``model``).

    ``train_size``: the (h, w) training crop in input pixels (for ``nafnet_cond``:
    full-resolution RGB pixels). The window at each level is the training feature
    size times ``factor``, computed like the official code
    (``feat * int(train * factor) // train``) by one dry run at ``train_size``.
    """
    th, tw = (int(train_size), int(train_size)) if isinstance(train_size, int) else (int(train_size[0]), int(train_size[1]))
    pools = _pools(model)
    if not pools:
        raise ConfigError(f"enable_tlc: model {type(model).__name__} has no channel-attention pooling to convert")
    for pool in pools:
        pool.kernel = None
    shapes: dict[int, tuple[int, int]] = {}

    def recorder(i: int):  # noqa: ANN202
        def hook(_mod: nn.Module, args: tuple) -> None:
            shapes.setdefault(i, (int(args[0].shape[-2]), int(args[0].shape[-1])))

        return hook

    hooks = [pool.register_forward_pre_hook(recorder(i)) for i, pool in enumerate(pools)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(*_dummy_inputs(model, th, tw))
    finally:
        for hk in hooks:
            hk.remove()
        model.train(was_training)
    base_h, base_w = int(th * factor), int(tw * factor)
    for i, pool in enumerate(pools):
        fh, fw = shapes[i]
        pool.kernel = (max(1, fh * base_h // th), max(1, fw * base_w // tw))
    model.restorekit_tlc = [th, tw]  # type: ignore[attr-defined]
    return model


def disable_tlc(model: nn.Module) -> nn.Module:
    """Restore global average pooling everywhere (in place; returns ``model``)."""
    for pool in _pools(model):
        pool.kernel = None
    if hasattr(model, "restorekit_tlc"):
        del model.restorekit_tlc
    return model
