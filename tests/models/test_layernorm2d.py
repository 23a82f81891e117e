"""LayerNorm2d: the fused autograd function against the element-wise reference formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restorekit.models.layers import LayerNorm2d, LayerNorm2dFunction, layer_norm_2d_reference


def _inputs(channels_last: bool, dtype: torch.dtype = torch.float64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 5, 4, 3, generator=g, dtype=dtype) * 3 + 1
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(5, generator=g, dtype=dtype)
    b = torch.randn(5, generator=g, dtype=dtype)
    return x.requires_grad_(), w.requires_grad_(), b.requires_grad_()


@pytest.mark.parametrize("channels_last", [False, True])
def test_gradcheck_float64(channels_last: bool) -> None:
    x, w, b = _inputs(channels_last)
    assert torch.autograd.gradcheck(lambda x, w, b: LayerNorm2dFunction.apply(x, w, b, 1e-6), (x, w, b))


@pytest.mark.parametrize("channels_last", [False, True])
def test_matches_reference_formula(channels_last: bool) -> None:
    x, w, b = _inputs(channels_last, seed=1)
    dy = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(2))
    y = LayerNorm2dFunction.apply(x, w, b, 1e-6)
    grads = torch.autograd.grad(y, (x, w, b), dy)
    y_ref = layer_norm_2d_reference(x, w, b, 1e-6)
    grads_ref = torch.autograd.grad(y_ref, (x, w, b), dy)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    for got, want in zip(grads, grads_ref):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
    # per-pixel statistics of the output: zero mean, unit variance before the affine part
    xhat = (y - b.view(1, -1, 1, 1)) / w.view(1, -1, 1, 1)
    assert xhat.mean(1).abs().max().item() < 1e-9
    assert abs(xhat.var(1, unbiased=False).mean().item() - 1.0) < 1e-5


def test_module_training_and_inference_paths_agree(photo) -> None:
    img = torch.from_numpy(photo("astronaut", 32)).permute(2, 0, 1)[None]
    x = torch.cat([img, img.flip(1), img * 0.5], 1)  # (1, 9, 32, 32), real image statistics
    ln = LayerNorm2d(9)
    with torch.no_grad():
        ln.weight.copy_(torch.linspace(0.5, 1.5, 9))
        ln.bias.copy_(torch.linspace(-0.2, 0.2, 9))
    assert sorted(ln.state_dict()) == ["bias", "weight"]
    xg = x.clone().requires_grad_()
    y_train = ln(xg)
    assert y_train.grad_fn is not None and "LayerNorm2dFunction" in type(y_train.grad_fn).__name__
    with torch.no_grad():
        y_inf = ln(x)
    np.testing.assert_allclose(y_train.detach().numpy(), y_inf.numpy(), atol=1e-6)
    ref = layer_norm_2d_reference(x.double(), ln.weight.double(), ln.bias.double())
    np.testing.assert_allclose(y_inf.double().numpy(), ref.detach().numpy(), atol=2e-5)
    y_train.square().sum().backward()
    assert xg.grad is not None and ln.weight.grad is not None and torch.isfinite(xg.grad).all()
    assert ln.weight.grad.abs().sum().item() > 0


def test_traced_graph_has_no_custom_function() -> None:
    ln = LayerNorm2d(4).eval()
    x = torch.randn(1, 4, 8, 8, requires_grad=True)
    traced = torch.jit.trace(ln, (x,))
    assert "LayerNorm2dFunction" not in str(traced.graph)
    torch.testing.assert_close(traced(x), ln(x))

