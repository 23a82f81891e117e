"""Runtimes: one calling convention for eager PyTorch, ``torch.compile``, ONNX Runtime and TorchScript.

A :class:`Runtime` maps a CPU batch ``(B, 3, h, w)`` float32 RGB in [0, 1] to a
CPU batch of the same shape in [0, 1] (not clipped). It owns everything that
depends on the model: the move to and from the device (only the batch being
processed lives there), the conversion to the model's value range
(``"0,1"``/``"-1,1"``), and reflect padding to the model's size multiple (the
output is cropped back).

:func:`make_runtime` builds one from an ``nn.Module``, a model package
(``.safetensors``), a checkpoint, an exported ``.onnx`` file or an exported
TorchScript file (``.pt``/``.ts``/``.torchscript``), with ``backend`` one of
``auto``, ``eager``, ``compile``, ``onnxruntime``, ``torchscript``.
``auto`` on CPU picks the fastest available path measured on this kind of machine
(ONNX Runtime when installed, else eager channels_last); on CUDA/MPS eager.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from restorekit.errors import CheckpointError, ConfigError
from restorekit.inference.options import BACKENDS
from restorekit.models.spec import Capabilities, caps_of, card_of

log = logging.getLogger("restorekit.inference")

ONNX_SUFFIXES = (".onnx",)
TORCHSCRIPT_SUFFIXES = (".pt", ".ts", ".torchscript", ".jit")
#: name of the JSON metadata entry in exported files (ONNX metadata_props key, TorchScript _extra_files name)
META_KEY = "restorekit.json"

@dataclass
class ModelInfo:
    """What inference needs to know about a model, whatever its format: architecture, arguments, capabilities."""

    arch: str | None = None
    arch_args: dict[str, Any] = field(default_factory=dict)
    caps: Capabilities = field(default_factory=Capabilities)
    train_size: tuple[int, int] | None = None

    @property
    def value_range(self) -> str:
        return self.caps.value_range

    @property
    def size_multiple(self) -> int:
        return self.caps.size_multiple

    @property
    def inputs(self) -> list[str]:
        return list(self.caps.inputs)

    def to_json(self) -> str:
        return json.dumps(
            {
                "restorekit_export": "2",
                "arch": self.arch,
                "arch_args": self.arch_args,
                "caps": self.caps.to_json(),
                "train_size": list(self.train_size) if self.train_size else None,
                # format 1 readers
                "value_range": self.value_range,
                "size_multiple": self.size_multiple,
                "inputs": self.inputs,
            },
            default=str,
        )

    @classmethod
    def from_json(cls, text: str, source: str) -> "ModelInfo":
        try:
            d = json.loads(text) if text else {}
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"'{source}': malformed restorekit metadata ({exc})") from exc
        if not isinstance(d, dict):
            raise CheckpointError(f"'{source}': malformed restorekit metadata (not a JSON object)")
        ts = d.get("train_size")
        if isinstance(d.get("caps"), dict):
            caps = Capabilities.from_json(d["caps"])
        else:  # format 1: value range, size multiple and inputs only
            caps = Capabilities.from_json({k: d[k] for k in ("value_range", "size_multiple", "inputs") if k in d})
        return cls(
            arch=d.get("arch"),
            arch_args=dict(d.get("arch_args") or {}),
            caps=caps,
            train_size=(int(ts[0]), int(ts[1])) if isinstance(ts, (list, tuple)) and len(ts) == 2 else None,
        )


def model_info(model: nn.Module) -> ModelInfo:
    """:class:`ModelInfo` of a module from its :class:`~restorekit.models.spec.ModelCard` and its spec.

    Foreign modules (not built by restorekit) are taken as RGB models in [0, 1] with no size constraint.
    """
    card = card_of(model)
    return ModelInfo(
        arch=card.arch if card else None,
        arch_args=dict(card.args) if card else {},
        caps=caps_of(model),
        train_size=card.train_size if card else None,
    )


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Pad ``(B, C, h, w)`` at the bottom/right to a multiple (reflect, or replicate when too small)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if h > ph and w > pw else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, h, w


class Runtime:
    """Base class: ``runtime(x)`` maps a CPU ``(B,3,h,w)`` batch in [0,1] to a CPU batch in [0,1]."""

    name = "runtime"

    def __init__(self, info: ModelInfo, device: torch.device) -> None:
        self.info = info
        self.device = device
        #: the nn.Module this runtime was built from, when there is one (used to estimate tile memory)
        self.source_module: nn.Module | None = None

    # -- to be implemented by subclasses: model-range tensor in, model-range tensor out (CPU) --
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def value_range(self) -> str:
        return self.info.value_range

    @property
    def size_multiple(self) -> int:
        return self.info.size_multiple

    def __call__(self, x01: torch.Tensor) -> torch.Tensor:
        """``(B, 3, h, w)`` float32 in [0, 1] (any device) -> ``(B, 3, h, w)`` float32 CPU in [0, 1] (unclipped)."""
        from restorekit.models.value_range import from_model_range, to_model_range

        x, h, w = pad_to_multiple(x01, self.size_multiple)
        y = self._forward(to_model_range(x, self.value_range))
        return from_model_range(y[..., :h, :w], self.value_range)

    def run_inputs(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        """Run a model with several inputs (in :attr:`Capabilities.inputs` order) as they are -> CPU float32."""
        raise ConfigError(f"runtime {self.name} cannot run a model with inputs {self.info.inputs}")

    def describe(self) -> str:
        return f"{self.name} on {self.device}"


class TorchRuntime(Runtime):
    """Eager PyTorch (optionally channels_last, half precision on GPUs and/or ``torch.compile``).

    ``channels_last`` None: the architecture's measured preference for the device
    (:attr:`Capabilities.channels_last`). ``precision``: ``auto`` (fp16 on CUDA, fp32
    elsewhere), ``fp32``, ``fp16`` (GPU), ``bf16`` (GPU, or a CPU: oneDNN runs bf16
    convolutions on AMX tiles where the CPU has them); autocast, outputs returned as float32.
    """

    def __init__(
        self,
        model: nn.Module,
        device: torch.device,
        *,
        channels_last: bool | None = None,
        compile: bool = False,
        info: ModelInfo | None = None,
        precision: str = "auto",
    ) -> None:
        super().__init__(info or model_info(model), device)
        if channels_last is None:
            channels_last = self.info.caps.prefers_channels_last(device)
        self.channels_last = bool(channels_last)
        self.autocast_dtype = _autocast_dtype(precision, device)
        param = next(iter(model.parameters()), None)
        cur_dev = param.device if param is not None else torch.device("cpu")
        needs_copy = self.channels_last or cur_dev != device or model.training
        m = copy.deepcopy(model) if needs_copy else model  # never change the caller's module
        m = m.to(device).eval()
        if self.channels_last:
            m = m.to(memory_format=torch.channels_last)
        self.model = m
        self.source_module = model
        self.compiled = False
        if compile:
            self.model = torch.compile(m, dynamic=False)
            self.compiled = True
        self.name = "compile" if compile else ("eager-channels_last" if self.channels_last else "eager")

    def _autocast(self):  # noqa: ANN202
        import contextlib

        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), self._autocast():
            x = x.to(self.device, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = self.model(x)
            return y.float().to("cpu").contiguous()

    def run_inputs(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        with torch.inference_mode(), self._autocast():
            return self.model(*[t.to(self.device, non_blocking=True) for t in inputs]).float().to("cpu").contiguous()


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None: plain fp32)."""
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else None
    if precision == "fp32":
        return None
    if device.type == "cpu" and precision != "bf16":
        raise ConfigError(f"--precision {precision}: fp16 inference needs a GPU; on the cpu use fp32 or bf16")
    return {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def ort_arena_enabled() -> bool:
    """Whether ONNX Runtime sessions use their CPU memory arena (``RESTOREKIT_ORT_ARENA``, default on)."""
    from restorekit.utils.system import env_flag

    return env_flag("RESTOREKIT_ORT_ARENA") is not False


#: ONNX metadata key: comma-separated ONNX Runtime graph optimizers the model runs faster without
#: (written by ``restorekit export --quantize int8``, see :func:`restorekit.export.quantize.quantize_int8`)
ORT_DISABLED_OPTIMIZERS_KEY = "restorekit.ort_disabled_optimizers"


def ort_session(data: bytes | str, options: Any, providers: list[str]) -> Any:
    """An ``onnxruntime.InferenceSession`` of ``data`` (model bytes or a path), honouring the model's own
    :data:`ORT_DISABLED_OPTIMIZERS_KEY` metadata (the session is then built a second time without them)."""
    import onnxruntime as ort

    session = ort.InferenceSession(data, options, providers=providers)
    hint = session.get_modelmeta().custom_metadata_map.get(ORT_DISABLED_OPTIMIZERS_KEY, "")
    disabled = [name.strip() for name in hint.split(",") if name.strip()]
    if disabled:
        session = ort.InferenceSession(data, options, providers=providers, disabled_optimizers=disabled)
    return session


class OnnxRuntime(Runtime):
    """ONNX Runtime session (CPU, or CUDA when the GPU build and device are available)."""

    name = "onnxruntime"

    def __init__(self, source: str | Path | bytes, device: torch.device, info: ModelInfo | None = None, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - installed in the project venv
            raise ConfigError("backend 'onnxruntime' needs the onnxruntime package (pip install onnxruntime)") from exc
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads or torch.get_num_threads()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # ONNX Runtime's CPU memory arena keeps every chunk it grew: faster (no page faults per
        # activation) but a larger peak; RESTOREKIT_ORT_ARENA=0 turns it off where memory is tight
        # (docs/inference.md has both figures, measured by benchmarks/inference.py).
        so.enable_cpu_mem_arena = ort_arena_enabled()
        so.log_severity_level = 3  # failures surface as exceptions; keep ORT's own logger quiet
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        label = "<in-memory>" if isinstance(source, (bytes, bytearray)) else str(source)
        try:
            data = source if isinstance(source, (bytes, bytearray)) else str(source)
            self.session = ort_session(data, so, providers)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own types
            raise CheckpointError(f"'{label}': ONNX Runtime cannot load the model ({exc})") from exc
        if info is None:
            md = self.session.get_modelmeta().custom_metadata_map
            info = ModelInfo.from_json(md.get(META_KEY, ""), label)
        super().__init__(info, torch.device("cuda") if providers[0].startswith("CUDA") else torch.device("cpu"))
        self.input_names = [i.name for i in self.session.get_inputs()]

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.input_names) != 1:
            raise ConfigError(f"this ONNX model takes inputs {self.input_names}; use run_raw() for multi-input models")
        out = self.session.run(None, {self.input_names[0]: x.detach().cpu().float().contiguous().numpy()})[0]
        return torch.from_numpy(out)

    def run_raw(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Run a multi-input model (e.g. nafnet_cond: rggb, cond, residual) as is, no range conversion."""
        feeds = {n: t.detach().cpu().float().contiguous().numpy() for n, t in zip(self.input_names, inputs)}
        return torch.from_numpy(self.session.run(None, feeds)[0])

    def run_inputs(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return self.run_raw(*inputs)


class TorchScriptRuntime(Runtime):
    """A traced TorchScript file exported by ``restorekit export --format torchscript``."""

    name = "torchscript"

    def __init__(self, path: str | Path, device: torch.device, channels_last: bool | None = None) -> None:
        extra = {META_KEY: ""}
        try:
            module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(f"'{path}': not a loadable TorchScript file ({exc})") from exc
        raw = extra[META_KEY]
        info = ModelInfo.from_json(raw.decode() if isinstance(raw, bytes) else raw, str(path))
        super().__init__(info, device)
        self.module = module.eval()
        self.channels_last = device.type == "cpu" if channels_last is None else bool(channels_last)

    # The profiling executor re-specialises the graph for every new input shape (slow with
    # tiles of several sizes); plain execution of the traced graph is as fast and predictable.
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), torch.jit.optimized_execution(False):
            x = x.to(self.device)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return self.module(x).float().to("cpu").contiguous()

    def run_raw(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Run the traced module on its own inputs (e.g. rggb, cond, residual for nafnet_cond), no conversion."""
        with torch.inference_mode(), torch.jit.optimized_execution(False):
            return self.module(*[t.to(self.device) for t in inputs]).float().cpu()

    def run_inputs(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return self.run_raw(*inputs)


# ---------------------------------------------------------------------------------------------
# ONNX sessions built on the fly from an nn.Module (backend "onnxruntime"/"auto" on CPU), cached
# per module and invalidated when any parameter changes (tensor._version counts in-place updates).
_ORT_CACHE: dict[int, tuple[Any, tuple, OnnxRuntime]] = {}


def fingerprint(model: nn.Module) -> tuple:
    """Identity and in-place version of every parameter and buffer (changes whenever the weights do)."""
    return tuple((p.data_ptr(), p._version) for p in model.parameters()) + tuple(
        (b.data_ptr(), b._version) for b in model.buffers()
    )


def onnx_runtime_for(model: nn.Module, device: torch.device, verify: bool = True) -> OnnxRuntime:
    """An :class:`OnnxRuntime` for ``model`` (exported in memory once, cached while its weights are unchanged).

    With ``verify`` the session is checked against eager PyTorch on a rectangular
    input of another size than the export example (catches shape-dependent
    branches baked into the graph); a mismatch above 1e-3 raises ``RuntimeError``
    (also cached, so a model that cannot be exported is not retried).
    """
    import weakref

    for k in [k for k, v in _ORT_CACHE.items() if v[0]() is None]:  # drop sessions of collected modules
        del _ORT_CACHE[k]
    key = id(model)
    fp = fingerprint(model)
    hit = _ORT_CACHE.get(key)
    if hit is not None and hit[0]() is model and hit[1] == fp:
        if isinstance(hit[2], Exception):
            raise hit[2]
        return hit[2]
    from restorekit.inference.onnx_graph import onnx_bytes

    info = model_info(model)
    try:
        data = onnx_bytes(model, info)
        rt = OnnxRuntime(data, device, info=info)
        rt.source_module = model
        if verify and info.inputs == ["input"]:
            m = info.size_multiple
            n = info.caps.native_size
            hw = (n, n) if n else (3 * m if 3 * m >= 32 else 48, 5 * m if 5 * m >= 32 else 80)
            x = torch.rand(1, 3, *hw, generator=torch.Generator().manual_seed(0))
            with torch.inference_mode():
                ref = TorchRuntime(model, torch.device("cpu"), channels_last=False)(x)
            diff = float((rt(x) - ref).abs().max())
            if not diff < 1e-3:
                raise RuntimeError(f"ONNX Runtime output differs from PyTorch by {diff:.3g} at another input size")
    except Exception as exc:  # noqa: BLE001
        _ORT_CACHE[key] = (weakref.ref(model), fp, exc)  # type: ignore[assignment]
        raise
    _ORT_CACHE[key] = (weakref.ref(model), fp, rt)
    return rt


def exported_kind(p: Path) -> str | None:
    """``"onnxruntime"`` or ``"torchscript"`` when ``p`` is an exported file (recognised by content), else None."""
    from restorekit.models.loading import sniff_file

    kind = sniff_file(Path(p))
    return {"onnx": "onnxruntime", "torchscript": "torchscript"}.get(kind)


def open_exported(p: Path, kind: str, device: torch.device, channels_last: bool | None = None) -> Runtime:
    """The runtime of an exported file (``kind`` from :func:`exported_kind`)."""
    if kind == "onnxruntime":
        return OnnxRuntime(p, device)
    return TorchScriptRuntime(p, device, channels_last=channels_last)


def _auto_backend(model: nn.Module, device: torch.device) -> str:
    env = os.environ.get("RESTOREKIT_BACKEND")
    if env:
        return env
    if device.type != "cpu":
        return "eager"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "eager"
    if model_info(model).inputs != ["input"]:
        return "eager"
    return "onnxruntime"


def make_runtime(
    model: nn.Module | Runtime | str | Path,
    device: str | torch.device | None = None,
    backend: str = "auto",
    *,
    channels_last: bool | None = None,
    precision: str = "auto",
) -> Runtime:
    """Build a :class:`Runtime` for a module, a weight file or an exported file.

    ``device`` None: the module's device when it is on an accelerator, else
    ``resolve_device("auto")``. ``backend``: see the module docstring. Exported
    files always run in their own runtime (ONNX Runtime / TorchScript). When the
    ``auto`` choice fails (e.g. an operator ONNX cannot export) it falls back to
    eager PyTorch and logs why.
    """
    from restorekit.device import resolve_device

    if isinstance(model, Runtime):
        return model
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if isinstance(model, (str, Path)):
        p = Path(model)
        if not p.exists():
            raise CheckpointError(f"model file '{p}' does not exist")
        kind = exported_kind(p)
        if kind is not None:
            return open_exported(p, kind, resolve_device(device), channels_last)
        from restorekit.models.loading import load_model

        model = load_model(p)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"expected an nn.Module, a Runtime or a model file, got {type(model).__name__}")
    if device is None:
        param = next(iter(model.parameters()), None)
        dev = param.device if param is not None and param.device.type != "cpu" else resolve_device("auto")
    else:
        dev = resolve_device(device)
    chosen = _auto_backend(model, dev) if backend == "auto" else backend
    if backend == "auto" and chosen == "onnxruntime" and precision in ("fp16", "bf16"):
        chosen = "eager"  # ONNX Runtime's CPU kernels are fp32 (or int8): half precision is PyTorch's autocast
    if backend == "auto":
        log.info("backend auto on %s: %s%s", dev, chosen, " (fastest available on CPU)" if dev.type == "cpu" and chosen == "onnxruntime" else "")
    if chosen == "onnxruntime":
        try:
            return onnx_runtime_for(model, dev)
        except Exception as exc:  # noqa: BLE001 - fall back to eager, say why
            if backend != "auto":
                raise
            log.warning("ONNX Runtime path unavailable for %s (%s); using eager PyTorch", model_info(model).arch, exc)
            chosen = "eager"
    if chosen == "torchscript":
        raise ConfigError("backend 'torchscript' needs an exported TorchScript file (restorekit export --format torchscript)")
    return TorchRuntime(model, dev, channels_last=channels_last, compile=(chosen == "compile"), precision=precision)
