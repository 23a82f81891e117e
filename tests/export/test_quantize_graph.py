"""The int8 graph runs int8 end to end in ONNX Runtime: exact rewrites, what the optimised graph keeps in fp32.

No timing here (docs/benchmarks.md has the measured speed-ups): these check the
structure that makes int8 faster than fp32 and the quality of the result on real photos.
"""

from __future__ import annotations

import collections

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn

from restorekit.export.onnx import onnx_bytes
from restorekit.export.quantize import image_crops, int8_rewrites, psnr01, quantize_int8, skimage_photo, verify_int8
from restorekit.inference.runtime import ORT_DISABLED_OPTIMIZERS_KEY, ort_session


def _student() -> nn.Module:
    """student_unet (base 8, 2 levels, global residual: ConvTranspose up-sampling) with He-initialised convs."""
    import restorekit

    torch.manual_seed(0)
    m = restorekit.create_model("student_unet", base_filters=8, depth=2, global_residual=True).eval()
    for mod in m.modules():
        if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
            nn.init.normal_(mod.bias, std=0.05)
        if isinstance(mod, nn.BatchNorm2d):  # non-trivial running statistics, folded into the convs on export
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 2.0)
    with torch.no_grad():
        m.final.weight.mul_(0.1)
    return m


def _run(source, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    s = ort.InferenceSession(source if isinstance(source, bytes) else str(source), so, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def _optimised_ops(path, tmp_path) -> collections.Counter:
    """Operator counts of the graph ONNX Runtime actually runs (after its QDQ fusions and layout changes)."""
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort_session(str(path), so, ["CPUExecutionProvider"])  # with the optimizers the model's metadata disables
    return collections.Counter(n.op_type for n in onnx.load(str(tmp_path / "optimised.onnx")).graph.node)


@pytest.fixture(scope="module")
def models(tm) -> dict[str, bytes]:
    return {"student": onnx_bytes(_student()), "nafnet": onnx_bytes(tm.tiny_nafnet())}


def test_rewrites_are_exact_on_a_real_photo(models) -> None:
    """ConvTranspose -> 1x1 Conv + DepthToSpace and ReduceMean -> GlobalAveragePool compute the same values."""
    x = np.stack(image_crops([("coffee", skimage_photo("coffee"))], 64, per_image=2))  # (2, 3, 64, 64)
    expected = {"student": {"convtranspose_as_conv1x1_depthtospace": 2, "reducemean_as_globalaveragepool": 0},
                "nafnet": {"convtranspose_as_conv1x1_depthtospace": 0, "reducemean_as_globalaveragepool": 5}}
    for name, data in models.items():
        proto = onnx.load_from_string(data)
        assert int8_rewrites(proto) == expected[name]
        ops = collections.Counter(n.op_type for n in proto.graph.node)
        assert not ops["ConvTranspose"] and ops["ReduceMean"] == 2 * ops["Sqrt"], ops  # left: LayerNorm2d's channel means
        ref, out = _run(data, x), _run(proto.SerializeToString(), x)
        assert float(np.std(ref - x)) > 0.01  # the network does change the photo
        np.testing.assert_allclose(out, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["student", "nafnet"])
def test_int8_graph_has_no_fp32_islands_and_matches_fp32(name, models, tmp_path) -> None:
    data = models[name]
    res = quantize_int8(data, tmp_path / f"{name}.int8.onnx", crop_size=64)
    saved = onnx.load(str(res.path))
    producer = {o: n for n in saved.graph.node for o in n.output}
    shapes = [n for n in saved.graph.node if n.op_type == "Shape"]
    assert shapes and res.rewrites["shape_reads_int8"] == len(shapes)
    assert all(producer.get(n.input[0]) is None or producer[n.input[0]].op_type != "DequantizeLinear" for n in shapes)

    ops = _optimised_ops(res.path, tmp_path)
    n_conv = sum(n.op_type in ("Conv", "ConvTranspose") for n in onnx.load_from_string(data).graph.node)
    assert ops["QLinearConv"] >= n_conv and not ops["Conv"] and not ops["ConvTranspose"], ops  # every conv int8
    if name == "student":  # quantized once at the input, dequantized once at the output: nothing fp32 in between
        assert ops["QuantizeLinear"] == 1 and ops["DequantizeLinear"] == 1, ops
        assert ops["QLinearConcat"] == 2 and ops["NhwcMaxPool"] == 2 and ops["QLinearAdd"] == 1, ops
    else:  # only the LayerNorms (no int8 kernel) and the output are fp32
        n_ln = sum(n.op_type == "Sqrt" for n in onnx.load_from_string(data).graph.node)
        assert n_ln == 10 and res.fp32_norms == n_ln, (n_ln, res.fp32_norms)
        assert ops["QLinearGlobalAveragePool"] == 5 and ops["ReduceMean"] == 2 * n_ln, ops
        # per LayerNorm one DequantizeLinear for each of its two readers of x (ONNX Runtime gives every node unit its
        # own), one QuantizeLinear after it; plus the output
        assert ops["DequantizeLinear"] == 2 * n_ln + 1 and ops["QuantizeLinear"] == n_ln + 1, ops
        for sqrt in (n for n in saved.graph.node if n.op_type == "Sqrt"):  # mean, variance, sqrt: no Q/DQ inside
            add = producer[sqrt.input[0]]
            var = producer[add.input[0]]
            square = producer[var.input[0]]
            assert [add.op_type, var.op_type, square.op_type] == ["Add", "ReduceMean", "Mul"]
            assert producer[square.input[0]].op_type == "Sub"
    hint = {p.key: p.value for p in saved.metadata_props}.get(ORT_DISABLED_OPTIMIZERS_KEY)
    assert hint == (None if name == "student" else "NhwcTransformer")  # fp32 norms: NHWC int8 costs transposes

    # quality: held-out photos (never calibrated on) and one more real photo, against the fp32 graph
    psnr, _ = verify_int8(data, res.path, size=64)
    assert psnr > 40.0, psnr
    x = np.stack(image_crops([("astronaut", skimage_photo("astronaut"))], 96, per_image=1))
    y32, y8 = _run(data, x), _run(str(res.path), x)
    assert psnr01(y8, y32) > 40.0
    assert psnr01(y8, y32) > psnr01(x, y32) + 15  # the int8 error is far below the network's own change
