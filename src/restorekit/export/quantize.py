"""int8 ONNX export: ONNX Runtime static quantization (QDQ, per-channel weights) calibrated on real images.

:func:`quantize_int8` takes the fp32 ONNX graph of an RGB restoration model (as
written by :func:`restorekit.export.onnx.onnx_bytes`), rewrites the few patterns that
would keep ONNX Runtime's int8 kernels from chaining (:func:`int8_rewrites`: exact,
the fp32 values do not change), runs ONNX Runtime's shape inference / pre-processing,
calibrates activation ranges on crops of real photos (a folder given with
``--calibration DIR``, default: photos bundled with scikit-image), and writes a QDQ
model: int8 weights quantized per output channel, uint8 activations (the u8s8
combination x86 VNNI kernels run fastest), the fp32 model's restorekit metadata copied
over (so ``restorekit restore`` runs it like any export). :func:`verify_int8` then
runs both graphs on held-out photos (never the calibration ones) and reports the PSNR
of the int8 output against the fp32 output.

Why int8 was not faster before (ONNX Runtime 1.32, 2-core Sapphire Rapids, 4 tiles of
256 px): with only the convolutions quantized, every Concat, MaxPool, ReLU and skip Add
ran in fp32 between a DequantizeLinear and a QuantizeLinear (plus NCHW/NHWC
transposes); the student U-Net's ConvTranspose has no int8 kernel on the CPU provider;
NAFNet's channel-attention ReduceMean ran on the NHWC layout of the int8 graph an order
of magnitude slower than on NCHW; and NAFNet's ``chunk`` reads the shape of each gated
tensor, which kept a full-size fp32 DequantizeLinear alive just for a Shape node. Now
the data-moving and element-wise operators are quantized too (:data:`QUANTIZED_OPS`),
ConvTranspose (kernel = stride) becomes a 1x1 Conv + DepthToSpace, ReduceMean over
H, W becomes GlobalAveragePool, and Shape reads the int8 tensor. What stays fp32:
normalisations (LayerNorm; GroupNorm, exported as InstanceNorm), which have no int8
kernel, so each one costs a DequantizeLinear, a QuantizeLinear and two transposes; and
int8 convolutions with 8 output channels run no faster than fp32 ones here (MLAS's
int8 kernels need wider layers), which caps the speed-up of very narrow networks.

Inputs and outputs of both graphs are in the model's own value range (the metadata's
``value_range``), ``(B, 3, H, W)`` float32 RGB; H and W multiples of ``size_multiple``.
"""

from __future__ import annotations

import io
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from restorekit.errors import ConfigError, RestoreKitError
from restorekit.io.image import IMAGE_EXTENSIONS, is_image_name

#: scikit-image photos used for calibration when no folder is given
CALIBRATION_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "motorcycle_left")
#: held-out photos for verification (disjoint from CALIBRATION_PHOTOS)
VERIFY_PHOTOS = ("hubble_deep_field", "motorcycle_right", "retina")
#: operators given int8 inputs/outputs: those ONNX Runtime's CPU provider runs on int8 data (convolutions,
#: matrix products, Add/Mul, Concat, pooling, ReLU/Clip, Resize) and pure data movement (DepthToSpace, Slice,
#: Reshape, Transpose...), whose Q/DQ pairs it removes. Anything else, normalisations included, stays fp32
#: between a DequantizeLinear and a QuantizeLinear (with only convolutions quantized, every Concat, pool, ReLU
#: and skip Add did, and int8 was slower than fp32).
QUANTIZED_OPS = (
    "Conv", "ConvTranspose", "MatMul", "Gemm", "Add", "Mul", "Concat", "MaxPool", "AveragePool", "GlobalAveragePool",
    "Relu", "Clip", "Resize", "DepthToSpace", "SpaceToDepth", "Slice", "Split", "Reshape", "Transpose", "Squeeze",
    "Unsqueeze", "Flatten",
)

#: normalisation operators without an int8 kernel (GroupNorm is exported as InstanceNormalization)
FP32_NORM_OPS = ("InstanceNormalization", "LayerNormalization", "GroupNormalization", "BatchNormalization")


class QuantizeError(RestoreKitError):
    """int8 quantization failed or its result is too far from the fp32 model."""


@dataclass
class QuantizeResult:
    """What :func:`quantize_int8` wrote and how it compares with the fp32 graph."""

    path: Path
    size_bytes: int
    fp32_size_bytes: int
    calibration: list[str]
    n_calibration_crops: int
    psnr_vs_fp32_db: float | None = None
    verify_images: list[str] = field(default_factory=list)
    #: exact graph rewrites applied before quantizing (:func:`int8_rewrites`), count per kind
    rewrites: dict[str, int] = field(default_factory=dict)
    #: normalisations left in fp32: LayerNorm2d (:func:`channel_norm_nodes`) and :data:`FP32_NORM_OPS` nodes
    fp32_norms: int = 0


def skimage_photo(name: str) -> np.ndarray:
    """A bundled scikit-image photo (``restorekit.data.sources.SKIMAGE_LOADERS``) as ``(H, W, 3)`` float32 RGB [0, 1]."""
    from restorekit.data.sources import SKIMAGE_LOADERS

    if name not in SKIMAGE_LOADERS:
        raise ConfigError(f"unknown scikit-image photo '{name}' (known: {', '.join(sorted(SKIMAGE_LOADERS))})")
    img = np.asarray(SKIMAGE_LOADERS[name]())
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    scale = 65535.0 if img.dtype == np.uint16 else (1.0 if img.dtype.kind == "f" else 255.0)
    return np.ascontiguousarray(img.astype(np.float32) / scale)


def calibration_images(source: str | Path | None = None, limit: int = 32) -> list[tuple[str, np.ndarray]]:
    """``(name, (H, W, 3) float32 RGB [0, 1])`` images for calibration.

    ``source`` None: :data:`CALIBRATION_PHOTOS` from scikit-image; a folder: its image
    files (sorted, at most ``limit``). A missing or empty folder, or an unreadable
    file, raises an error naming it.
    """
    if source is None:
        return [(f"skimage:{n}", skimage_photo(n)) for n in CALIBRATION_PHOTOS]
    from restorekit.io import read_image

    folder = Path(source)
    if not folder.is_dir():
        raise ConfigError(f"--calibration '{folder}': not a folder of images")
    files = sorted(p for p in folder.iterdir() if is_image_name(p.name))[:limit]
    if not files:
        raise ConfigError(f"--calibration '{folder}': no image files ({', '.join(IMAGE_EXTENSIONS)})")
    out = []
    for p in files:
        arr = np.asarray(read_image(p), dtype=np.float32)  # (H, W, 3) RGB [0, 1]; ImageReadError names the file
        out.append((str(p), np.ascontiguousarray(arr[..., :3])))
    return out


def image_crops(images: list[tuple[str, np.ndarray]], size: int, per_image: int = 2, seed: int = 0) -> list[np.ndarray]:
    """Up to ``per_image`` ``size x size`` crops per image (centre, then seeded random), ``(3, size, size)`` float32."""
    rng = np.random.default_rng(seed)
    crops = []
    for _, img in images:
        h, w = img.shape[:2]
        if h < size or w < size:
            pad = ((0, max(0, size - h)), (0, max(0, size - w)), (0, 0))
            img = np.pad(img, pad, mode="reflect")
            h, w = img.shape[:2]
        spots = [((h - size) // 2, (w - size) // 2)]
        spots += [(int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))) for _ in range(per_image - 1)]
        for top, left in spots:
            crops.append(np.ascontiguousarray(img[top : top + size, left : left + size].transpose(2, 0, 1)))
    return crops


def to_value_range(x01: np.ndarray, value_range: str) -> np.ndarray:
    """[0, 1] -> the model's range (``"-1,1"`` or ``"0,1"``)."""
    return (x01 * 2.0 - 1.0).astype(np.float32) if value_range == "-1,1" else x01.astype(np.float32)


class _CropReader:
    """ONNX Runtime ``CalibrationDataReader`` over image crops (one ``(1, 3, s, s)`` feed per crop)."""

    def __init__(self, input_name: str, crops: list[np.ndarray], value_range: str) -> None:
        self.input_name = input_name
        self._feeds = (to_value_range(c[None], value_range) for c in crops)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._feeds, None)
        return None if x is None else {self.input_name: x}


def _metadata(model: Any) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def _read_info(model: Any) -> tuple[str, int, list[str]]:
    """(value_range, size_multiple, input names) from the restorekit metadata of an ONNX model proto."""
    import json

    from restorekit.inference.runtime import META_KEY

    meta = json.loads(_metadata(model).get(META_KEY, "{}") or "{}")
    caps = meta.get("caps") or meta
    inputs = [i.name for i in model.graph.input]
    return str(caps.get("value_range", "0,1")), int(caps.get("size_multiple", 1) or 1), inputs


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _convtranspose_as_conv(model: Any) -> int:
    """ConvTranspose with kernel == stride (no padding, groups or dilation) -> 1x1 Conv to ``Cout*k*k`` channels +
    DepthToSpace (CRD): the same values, and both have int8 kernels (ConvTranspose has none on ONNX Runtime's CPU
    provider, so it ran fp32 between a DequantizeLinear and a QuantizeLinear). Returns the number rewritten."""
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    nodes, done = [], 0
    for node in g.node:
        a = _attrs(node)
        w = inits.get(node.input[1]) if node.op_type == "ConvTranspose" and len(node.input) > 1 else None
        ok = (
            w is not None and len(w.dims) == 4 and a.get("group", 1) == 1 and not any(a.get("pads", [0]))
            and not any(a.get("output_padding", [0])) and all(d == 1 for d in a.get("dilations", [1]))
            and "output_shape" not in a and a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
            and (len(node.input) < 3 or not node.input[2] or node.input[2] in inits)
        )
        if ok:
            cin, cout, kh, kw = (int(d) for d in w.dims)
            ok = kh == kw and list(a.get("strides", [1, 1])) == [kh, kw] and list(a.get("kernel_shape", [kh, kw])) == [kh, kw]
        if not ok:
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(w)  # (Cin, Cout, k, k) -> (Cout*k*k, Cin, 1, 1), channel co*k*k + a*k + b
        conv_w = np.ascontiguousarray(weight.transpose(1, 2, 3, 0).reshape(cout * kh * kw, cin, 1, 1))
        name = node.name or f"convtranspose_{done}"
        ins = [node.input[0], f"{name}_as_conv1x1.weight"]
        g.initializer.append(numpy_helper.from_array(conv_w.astype(weight.dtype), ins[1]))
        if len(node.input) > 2 and node.input[2]:
            bias = numpy_helper.to_array(inits[node.input[2]])
            ins.append(f"{name}_as_conv1x1.bias")
            g.initializer.append(numpy_helper.from_array(np.repeat(bias, kh * kw).astype(bias.dtype), ins[2]))
        mid = f"{name}_as_conv1x1_output"
        nodes.append(helper.make_node("Conv", ins, [mid], name=f"{name}_as_conv1x1", kernel_shape=[1, 1]))
        nodes.append(helper.make_node("DepthToSpace", [mid], [node.output[0]], name=f"{name}_d2s", blocksize=kh, mode="CRD"))
        done += 1
    if done:
        del g.node[:]
        g.node.extend(nodes)
        used = {i for n in g.node for i in n.input}
        keep = [i for i in g.initializer if i.name in used]
        del g.initializer[:]
        g.initializer.extend(keep)
    return done


def _reducemean_as_gap(model: Any) -> int:
    """ReduceMean over axes (2, 3) with keepdims -> GlobalAveragePool (same values). On the NHWC int8 data of the
    quantized graph ReduceMean ran an order of magnitude slower than on NCHW; GlobalAveragePool runs int8. Returns the count."""
    import onnx
    from onnx import numpy_helper

    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    consts.update({n.output[0]: numpy_helper.to_array(_attrs(n)["value"]) for n in model.graph.node
                   if n.op_type == "Constant" and "value" in _attrs(n)})
    try:  # GlobalAveragePool averages every spatial axis: only 4-D inputs qualify
        typed = onnx.shape_inference.infer_shapes(model).graph
        rank = {v.name: len(v.type.tensor_type.shape.dim) for v in [*typed.value_info, *typed.input]
                if v.type.tensor_type.HasField("shape")}
    except Exception:  # noqa: BLE001 - no shape information: rewrite nothing
        rank = {}
    done = 0
    for node in model.graph.node:
        if node.op_type != "ReduceMean" or rank.get(node.input[0]) != 4:
            continue
        axes = _reduce_axes(node, consts)
        if sorted(axes or []) not in ([2, 3], [-2, -1]) or _attrs(node).get("keepdims", 1) != 1:
            continue
        node.op_type = "GlobalAveragePool"
        del node.attribute[:]
        del node.input[1:]
        done += 1
    return done


def _reduce_axes(node: Any, consts: dict[str, np.ndarray]) -> list[int] | None:
    """The ``axes`` of a ReduceMean node (attribute before opset 18, constant input since), None if unknown."""
    axes = _attrs(node).get("axes")
    if axes is None and len(node.input) > 1 and node.input[1] in consts:
        axes = consts[node.input[1]].tolist()
    return None if axes is None else [int(a) for a in axes]


def channel_norm_nodes(model: Any) -> list[Any]:
    """The nodes of every per-pixel channel normalisation in the ONNX model proto ``model``, to keep in fp32.

    Finds the NCHW form LayerNorm2d exports (``restorekit.models.layers``): ``mu =
    ReduceMean(x, axes=[1])``, ``d = Sub(x, mu)``, ``Mul(d, d)``, ``ReduceMean(axes=[1])``,
    ``Add(eps)``, ``Sqrt``, ``Div(d, .)``; the affine ``Mul``/``Add`` after it are not included
    (int8 kernels run them). Quantizing the variance to uint8 would round small variances to
    zero and divide by ``sqrt(eps)``: these stay fp32, as a LayerNormalization node would.
    """
    from onnx import numpy_helper

    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    consts.update({n.output[0]: numpy_helper.to_array(_attrs(n)["value"]) for n in model.graph.node
                   if n.op_type == "Constant" and "value" in _attrs(n)})
    users: dict[str, list[Any]] = {}
    for n in model.graph.node:
        for i in dict.fromkeys(n.input):  # Mul(d, d) uses d once
            users.setdefault(i, []).append(n)

    def only(out: str, op: str) -> Any | None:
        found = [n for n in users.get(out, []) if n.op_type == op]
        return found[0] if len(found) == 1 else None

    def channel_mean(n: Any | None) -> bool:
        return n is not None and n.op_type == "ReduceMean" and _reduce_axes(n, consts) == [1] and _attrs(n).get("keepdims", 1) == 1

    keep: list[Any] = []
    for r1 in model.graph.node:
        if not channel_mean(r1):
            continue
        sub = only(r1.output[0], "Sub")
        if sub is None or list(sub.input) != [r1.input[0], r1.output[0]]:
            continue
        sq = only(sub.output[0], "Mul")
        if sq is None or list(sq.input) != [sub.output[0], sub.output[0]]:
            continue
        r2 = only(sq.output[0], "ReduceMean")
        add = only(r2.output[0], "Add") if channel_mean(r2) else None
        sqrt = only(add.output[0], "Sqrt") if add is not None else None
        div = only(sqrt.output[0], "Div") if sqrt is not None else None
        if div is None or list(div.input) != [sub.output[0], sqrt.output[0]]:
            continue
        keep += [r1, sub, sq, r2, add, sqrt, div]
    return keep


def int8_rewrites(model: Any) -> dict[str, int]:
    """Rewrite the ONNX model proto ``model`` in place so that its quantized graph runs int8 end to end; exact
    (the fp32 graph computes the same values). Returns the count per rewrite."""
    return {"convtranspose_as_conv1x1_depthtospace": _convtranspose_as_conv(model),
            "reducemean_as_globalaveragepool": _reducemean_as_gap(model)}


def _shapes_from_int8(model: Any) -> int:
    """Shape nodes reading a DequantizeLinear output read its int8 input instead (the same shape), and
    DequantizeLinear nodes left unused are removed: NAFNet's ``chunk`` takes the shape of every gated tensor, which
    otherwise kept a full-size fp32 copy alive for each. Returns the number of Shape nodes rewired."""
    producer = {o: n for n in model.graph.node for o in n.output}
    done = 0
    for node in model.graph.node:
        src = producer.get(node.input[0]) if node.op_type == "Shape" else None
        if src is not None and src.op_type == "DequantizeLinear":
            node.input[0] = src.input[0]
            done += 1
    while True:
        used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
        dead = [n for n in model.graph.node if n.op_type == "DequantizeLinear" and not any(o in used for o in n.output)]
        if not dead:
            return done
        for n in dead:
            model.graph.node.remove(n)


def quantize_int8(
    fp32: bytes | str | Path,
    out: str | Path,
    *,
    calibration: str | Path | None = None,
    crop_size: int = 128,
    crops_per_image: int = 2,
    per_channel: bool = True,
    method: str = "minmax",
) -> QuantizeResult:
    """Statically quantize the fp32 ONNX model ``fp32`` (bytes or a file) to ``out`` (QDQ, int8 weights, uint8 activations).

    The graph is first rewritten by :func:`int8_rewrites` (exact); the operators in
    :data:`QUANTIZED_OPS` get int8 inputs and outputs, and Shape nodes read the int8
    tensors. ``calibration``: folder of images (None: scikit-image photos); ``crop_size`` is
    rounded up to the model's size multiple. ``method``: ``minmax`` or ``percentile``
    (99.999 %, clips outliers) activation ranges. Only single-input RGB models are
    supported (raises :class:`ConfigError` otherwise). ``out`` is written atomically.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from restorekit.inference.runtime import ORT_DISABLED_OPTIMIZERS_KEY
    from restorekit.utils.atomic import atomic_path

    data = fp32 if isinstance(fp32, (bytes, bytearray)) else Path(fp32).read_bytes()
    model = onnx.load_from_string(bytes(data))
    value_range, multiple, inputs = _read_info(model)
    if len(inputs) != 1:
        raise ConfigError(f"--quantize int8: only single-input RGB models are supported (this graph takes {inputs})")
    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile}
    if method not in methods:
        raise ConfigError(f"quantize method '{method}': choose {', '.join(methods)}")
    size = ((max(crop_size, multiple) + multiple - 1) // multiple) * multiple
    images = calibration_images(calibration)
    crops = image_crops(images, size, crops_per_image)
    extra = {"ActivationSymmetric": False, "WeightSymmetric": True}
    if method == "percentile":
        extra["CalibPercentile"] = 99.999
    rewrites = int8_rewrites(model)
    with tempfile.TemporaryDirectory(prefix="rk-quant-") as tmp:
        src, pre, q = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, str(src))
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        except Exception:  # noqa: BLE001 - pre-processing is an optimisation; quantize the plain graph then
            pre = src
        pre_model = onnx.load(str(pre))
        ops = [op for op in QUANTIZED_OPS if op in {n.op_type for n in pre_model.graph.node}]
        norms = channel_norm_nodes(pre_model)
        fp32_norms = len(norms) // 7 + sum(n.op_type in FP32_NORM_OPS for n in pre_model.graph.node)
        for k, node in enumerate(norms):  # nodes_to_exclude goes by name
            node.name = node.name or f"rk_channel_norm_{k}"
        if norms:
            onnx.save(pre_model, str(pre))
        if not ops:
            raise ConfigError(f"--quantize int8: the graph has no operator with an int8 kernel ({', '.join(QUANTIZED_OPS[:4])}...)")
        quiet = logging.getLogger()  # ORT's quantizer logs per-tensor warnings on the root logger
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            quantize_static(
                str(pre), str(q), _CropReader(inputs[0], crops, value_range),
                quant_format=QuantFormat.QDQ, per_channel=per_channel,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                calibrate_method=methods[method], extra_options=extra,
                op_types_to_quantize=ops, nodes_to_exclude=[n.name for n in norms],
            )
        except Exception as exc:  # noqa: BLE001 - ORT's quantizer raises many types
            raise QuantizeError(f"int8 quantization failed: {exc}") from exc
        finally:
            quiet.setLevel(level)
        qmodel = onnx.load(str(q))
        rewrites["shape_reads_int8"] = _shapes_from_int8(qmodel)
        del qmodel.metadata_props[:]
        for k, v in _metadata(model).items():
            qmodel.metadata_props.add(key=k, value=v)
        qmodel.metadata_props.add(key="restorekit.quantization", value=(
            f"int8 static QDQ, per_channel={per_channel}, u8 activations / s8 weights, {method} calibration on "
            f"{len(crops)} crops of {size}px from {len(images)} images; rewrites "
            + ", ".join(f"{k}={v}" for k, v in rewrites.items()) + f"; {fp32_norms} normalisations in fp32"))
        if fp32_norms:
            # ONNX Runtime's NhwcTransformer turns the int8 convolutions to NHWC, and every fp32 normalisation
            # then sits between two transposes: without it NAFNet's int8 graph ran 1.27x instead of 1.05x the
            # fp32 one (the GroupNorm U-Net 1.69x / 1.64x, the norm-free student 0.88x / 1.09x: it keeps it)
            qmodel.metadata_props.add(key=ORT_DISABLED_OPTIMIZERS_KEY, value="NhwcTransformer")
        buf = io.BytesIO()
        onnx.save(qmodel, buf)
    out = Path(out)
    with atomic_path(out) as tmp_out:
        tmp_out.write_bytes(buf.getvalue())
    return QuantizeResult(out, out.stat().st_size, len(data), [n for n, _ in images], len(crops), rewrites=rewrites,
                          fp32_norms=fp32_norms)


def _session(source: bytes | str | Path, threads: int | None = None) -> Any:
    import onnxruntime as ort

    from restorekit.inference.runtime import ort_session

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    data = bytes(source) if isinstance(source, (bytes, bytearray)) else str(source)
    return ort_session(data, so, ["CPUExecutionProvider"])


def psnr01(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) of two arrays in [0, 1] (clipped), capped at 100 dB."""
    mse = float(np.mean((np.clip(a, 0, 1).astype(np.float64) - np.clip(b, 0, 1).astype(np.float64)) ** 2))
    return 100.0 if mse <= 1e-10 else float(10 * np.log10(1.0 / mse))


def run_onnx01(session: Any, x01: np.ndarray, value_range: str) -> np.ndarray:
    """Run a single-input session on ``(B, 3, H, W)`` [0, 1] input; output back in [0, 1] (not clipped)."""
    name = session.get_inputs()[0].name
    y = session.run(None, {name: to_value_range(x01, value_range)})[0]
    return (y + 1.0) / 2.0 if value_range == "-1,1" else y


def verify_int8(
    fp32: bytes | str | Path,
    int8: bytes | str | Path,
    images: list[tuple[str, np.ndarray]] | None = None,
    *,
    size: int = 128,
    min_psnr_db: float | None = None,
) -> tuple[float, list[str]]:
    """Mean PSNR (dB) of the int8 graph's output against the fp32 graph's, on held-out images.

    ``images``: ``(name, (H, W, 3) [0, 1])``; default :data:`VERIFY_PHOTOS` (disjoint
    from the calibration photos), centre crops of ``size`` (rounded up to the size
    multiple). Raises :class:`QuantizeError` when ``min_psnr_db`` is given and not reached.
    """
    import onnx

    data = fp32 if isinstance(fp32, (bytes, bytearray)) else Path(fp32).read_bytes()
    value_range, multiple, _ = _read_info(onnx.load_from_string(bytes(data)))
    images = images or [(f"skimage:{n}", skimage_photo(n)) for n in VERIFY_PHOTOS]
    size = ((max(size, multiple) + multiple - 1) // multiple) * multiple
    s32, s8 = _session(data), _session(int8)
    scores = []
    for x in image_crops(images, size, per_image=1):
        a = run_onnx01(s32, x[None], value_range)
        b = run_onnx01(s8, x[None], value_range)
        scores.append(psnr01(a, b))
    score = float(np.mean(scores))
    if min_psnr_db is not None and score < min_psnr_db:
        raise QuantizeError(f"int8 model is too far from fp32: {score:.2f} dB PSNR vs fp32 < {min_psnr_db:.2f} dB")
    return score, [n for n, _ in images]



def export_int8(
    model: Any,
    out: str | Path,
    *,
    calibration: str | Path | None = None,
    min_psnr_db: float | None = 30.0,
    tolerance: float = 1e-4,
) -> QuantizeResult:
    """``restorekit export --format onnx --quantize int8``: fp32 ONNX export (verified against PyTorch within
    ``tolerance``), int8 quantization calibrated on ``calibration`` (None: scikit-image photos), and verification of
    the int8 graph against the fp32 one on held-out photos (:func:`verify_int8`; refused below ``min_psnr_db``).

    Nothing is left at ``out`` when a step fails.
    """
    from restorekit.export import export_model

    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="rk-int8-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_model(model, fp32, "onnx", verify=True, tolerance=tolerance)
        res = quantize_int8(fp32, out, calibration=calibration)
        try:
            res.psnr_vs_fp32_db, res.verify_images = verify_int8(fp32, out, min_psnr_db=min_psnr_db)
        except QuantizeError:
            out.unlink(missing_ok=True)
            raise
    return res
