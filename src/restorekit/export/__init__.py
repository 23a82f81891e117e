"""restorekit.export: ONNX (dynamic batch/height/width), TorchScript (traced), safetensors packages and the
seed projects' own checkpoint layouts (``seed``, see :mod:`restorekit.export.seed`).

:func:`export_model` writes the file atomically, then verifies ONNX and
TorchScript exports against eager PyTorch on an input of a different size and
batch than the export example (``max_abs_diff`` must stay below ``tolerance``,
1e-4 by default). Metadata (architecture, value range, size multiple, training
size, input names) travels with the file: ONNX ``metadata_props`` key
``restorekit.json``, TorchScript ``_extra_files['restorekit.json']``, package
safetensors metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from restorekit.errors import ConfigError, RestoreKitError

FORMATS = ("onnx", "torchscript", "safetensors", "seed")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "safetensors": ".safetensors", "seed": ".pth"}


class ExportError(RestoreKitError):
    """An export failed or its verification did not pass."""


@dataclass
class ExportResult:
    """What :func:`export_model` wrote and how well it matched PyTorch."""

    path: Path
    format: str
    max_abs_diff: float | None
    verify_shapes: list[tuple[int, ...]]
    size_bytes: int


def verify_inputs(model: nn.Module, batch: int = 2, seed: int = 1) -> tuple[torch.Tensor, ...]:
    """Inputs for verification: batch 2, rectangular, a size different from the export example."""
    from restorekit.export.onnx import example_inputs
    from restorekit.inference.runtime import model_info

    info = model_info(model)
    m = info.size_multiple * (2 if info.inputs != ["input"] else 1)
    h = max(48, 3 * m)
    h = ((h + m - 1) // m) * m
    w = h + m if m >= 16 else h + 16
    if info.caps.native_size:  # a native-size model only runs at its size: verify there (batch still differs)
        h = w = int(info.caps.native_size)
    args = example_inputs(info, h, batch=batch, seed=seed)
    if info.inputs == ["input"]:
        g = torch.Generator().manual_seed(seed)
        lo, hi = (-1.0, 1.0) if info.value_range == "-1,1" else (0.0, 1.0)
        args = (lo + (hi - lo) * torch.rand(batch, 3, h, w, generator=g),)
    else:
        rggb, cond, _ = args
        g = torch.Generator().manual_seed(seed)
        rggb = torch.rand(batch, 4, h // 2, w // 2, generator=g)
        residual = torch.rand(batch, 3, h, w, generator=g)
        args = (rggb, cond, residual)
    return args


def _reference(model: nn.Module, args: tuple[torch.Tensor, ...]) -> torch.Tensor:
    import copy

    m = copy.deepcopy(model).to("cpu").eval()
    with torch.inference_mode():
        return m(*args).float()


def export_model(model: nn.Module, path: str | Path, fmt: str | None = None, *, verify: bool = True,
                 tolerance: float = 1e-4) -> ExportResult:
    """Export ``model`` to ``path`` in ``fmt`` (``onnx``/``torchscript``/``safetensors``; default from the suffix).

    Raises :class:`ExportError` when verification exceeds ``tolerance`` (the file is
    removed then, so no unverified export is left behind).
    """
    from restorekit.inference.runtime import OnnxRuntime, TorchScriptRuntime, model_info
    from restorekit.utils.atomic import atomic_path

    p = Path(path)
    if fmt is None:
        fmt = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript", ".torchscript": "torchscript",
               ".safetensors": "safetensors"}.get(p.suffix.lower())
        if fmt is None:
            raise ConfigError(f"cannot tell the export format from '{p.name}'; pass --format ({', '.join(FORMATS)})")
    if fmt not in FORMATS:
        raise ConfigError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    info = model_info(model)
    if fmt == "safetensors":
        from restorekit.models.package import save_package

        save_package(model, p, extra={"size_multiple": info.size_multiple})
        return ExportResult(p, fmt, None, [], p.stat().st_size)
    if fmt == "seed":
        return _export_seed(model, p, verify=verify, tolerance=tolerance)
    args = verify_inputs(model)
    with atomic_path(p) as tmp:
        if fmt == "onnx":
            from restorekit.export.onnx import onnx_bytes

            try:
                data = onnx_bytes(model, info)
            except Exception as exc:  # noqa: BLE001 - exporter errors are many
                raise ExportError(f"ONNX export of '{info.arch}' failed: {exc}") from exc
            tmp.write_bytes(data)
        else:
            from restorekit.export.torchscript import save_torchscript

            try:
                save_torchscript(model, tmp, info)
            except Exception as exc:  # noqa: BLE001
                raise ExportError(f"TorchScript export of '{info.arch}' failed: {exc}") from exc
        diff = None
        if verify:
            ref = _reference(model, args)
            if fmt == "onnx":
                rt = OnnxRuntime(tmp, torch.device("cpu"))
                got = rt.run_raw(*args)
            else:
                rt = TorchScriptRuntime(tmp, torch.device("cpu"), channels_last=False)
                got = rt.run_raw(*args)
            if got.shape != ref.shape:
                raise ExportError(f"{fmt} export of '{info.arch}': output shape {tuple(got.shape)} != PyTorch {tuple(ref.shape)} "
                                  f"for inputs {[tuple(a.shape) for a in args]}")
            diff = float((got - ref).abs().max())
            if not diff < tolerance:
                raise ExportError(f"{fmt} export of '{info.arch}' does not match PyTorch: max abs diff {diff:.3g} >= {tolerance:g} "
                                  f"on inputs {[tuple(a.shape) for a in args]}")
    return ExportResult(p, fmt, diff, [tuple(a.shape) for a in args], p.stat().st_size)


def _export_seed(model: nn.Module, p: Path, *, verify: bool, tolerance: float) -> ExportResult:
    """``--format seed``: the seed project's checkpoint, verified by reading it back with ``load_model``."""
    from restorekit.export.seed import save_seed_checkpoint
    from restorekit.models.loading import load_model

    reload_args = save_seed_checkpoint(model, p)
    diff = None
    shapes: list[tuple[int, ...]] = []
    if verify:
        args = verify_inputs(model)
        shapes = [tuple(a.shape) for a in args]
        try:
            back = load_model(p, **reload_args)
            with torch.inference_mode():
                got = back(*args).float()
            diff = float((got - _reference(model, args)).abs().max())
        except Exception:
            p.unlink(missing_ok=True)
            raise
        if not diff < tolerance:
            p.unlink(missing_ok=True)
            raise ExportError(f"seed export: the written checkpoint does not reproduce the model (max abs diff {diff:.3g})")
    return ExportResult(p, "seed", diff, shapes, p.stat().st_size)


__all__ = ["ExportError", "ExportResult", "FORMATS", "export_model", "verify_inputs"]
