"""int8 ONNX export: ONNX Runtime static quantization (QDQ, per-channel weights) calibrated on real images.

:func:`quantize_int8` takes the fp32 ONNX graph of an RGB restoration model (as
written by :func:`restorekit.export.onnx.onnx_bytes`), runs ONNX Runtime's shape
inference / pre-processing, calibrates activation ranges on crops of real photos
(a folder given with ``--calibration DIR``, default: photos bundled with
scikit-image), and writes a QDQ model: int8 weights quantized per output channel,
uint8 activations (the u8s8 combination x86 VNNI kernels run fastest), the fp32
model's restorekit metadata copied over (so ``restorekit restore`` runs it like any
export). :func:`verify_int8` then runs both graphs on held-out photos (never the
calibration ones) and reports the PSNR of the int8 output against the fp32 output.

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
#: operators given int8 weights/activations; normalisations, gates and resizes stay fp32 between QDQ pairs
QUANTIZED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


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

    ``calibration``: folder of images (None: scikit-image photos); ``crop_size`` is
    rounded up to the model's size multiple. ``method``: ``minmax`` or ``percentile``
    (99.999 %, clips outliers) activation ranges. Only single-input RGB models are
    supported (raises :class:`ConfigError` otherwise). ``out`` is written atomically.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

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
    with tempfile.TemporaryDirectory(prefix="rk-quant-") as tmp:
        src, pre, q = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(bytes(data))
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        except Exception:  # noqa: BLE001 - pre-processing is an optimisation; quantize the plain graph then
            pre = src
        quiet = logging.getLogger()  # ORT's quantizer logs per-tensor warnings on the root logger
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            quantize_static(
                str(pre), str(q), _CropReader(inputs[0], crops, value_range),
                quant_format=QuantFormat.QDQ, per_channel=per_channel,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                calibrate_method=methods[method], extra_options=extra,
                op_types_to_quantize=list(QUANTIZED_OPS),
            )
        except Exception as exc:  # noqa: BLE001 - ORT's quantizer raises many types
            raise QuantizeError(f"int8 quantization failed: {exc}") from exc
        finally:
            quiet.setLevel(level)
        qmodel = onnx.load(str(q))
        del qmodel.metadata_props[:]
        for k, v in _metadata(model).items():
            qmodel.metadata_props.add(key=k, value=v)
        qmodel.metadata_props.add(key="restorekit.quantization", value=(
            f"int8 static QDQ, per_channel={per_channel}, u8 activations / s8 weights, {method} calibration on "
            f"{len(crops)} crops of {size}px from {len(images)} images"))
        buf = io.BytesIO()
        onnx.save(qmodel, buf)
    out = Path(out)
    with atomic_path(out) as tmp_out:
        tmp_out.write_bytes(buf.getvalue())
    return QuantizeResult(out, out.stat().st_size, len(data), [n for n, _ in images], len(crops))


def _session(source: bytes | str | Path, threads: int | None = None) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    data = bytes(source) if isinstance(source, (bytes, bytearray)) else str(source)
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


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
