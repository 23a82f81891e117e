"""LayerNorm2d in ONNX: the NCHW reduction form ONNX Runtime runs fast, equal to the eager module."""

from __future__ import annotations

import collections

import numpy as np
import onnx
import onnxruntime as ort
import torch

from restorekit.export.onnx import onnx_bytes
from restorekit.models.layers import LayerNorm2d


def test_onnx_export_is_the_nchw_form_and_matches_eager(photo, tm) -> None:
    """ONNX export writes channel reductions on NCHW data (no Transpose / LayerNormalization; ONNX Runtime runs it
    faster) computing what the eager module computes, on a real photo through a whole NAFNet."""
    net = tm.tiny_nafnet().eval()
    n_ln = sum(isinstance(m, LayerNorm2d) for m in net.modules())
    with torch.no_grad():  # non-trivial affine parameters, so that weight/bias are exported in the right place
        for k, m in enumerate(m for m in net.modules() if isinstance(m, LayerNorm2d)):
            m.weight.copy_(torch.linspace(0.5, 1.5, m.channels) * (1 + 0.1 * k))
            m.bias.copy_(torch.linspace(-0.2, 0.2, m.channels))
    data = onnx_bytes(net)
    ops = collections.Counter(n.op_type for n in onnx.load_from_string(data).graph.node)
    assert n_ln > 0 and not ops["LayerNormalization"] and not ops["Transpose"], ops
    assert ops["Sqrt"] == n_ln and ops["ReduceMean"] >= 2 * n_ln, ops
    x = torch.from_numpy(photo("astronaut", 64)).permute(2, 0, 1)[None].contiguous()
    with torch.no_grad():
        want = net(x).numpy()
    s = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = s.run(None, {s.get_inputs()[0].name: x.numpy()})[0]
    assert float(np.abs(want - x.numpy()).mean()) > 1e-3  # the network changes the photo
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=0)
