"""``load_model``: one entry point for every weight file a user may have.

Accepted formats (all read without unpickling arbitrary objects):

* restorekit packages (``.safetensors`` with restorekit metadata);
* safetensors files without metadata (bare state dicts);
* PyTorch pickles read with ``torch.load(weights_only=True)``:
  BasicSR / official NAFNet and Restormer files (``{'params': ...}``, ``params_ema``
  preferred), Lightning checkpoints (``state_dict`` with a ``model.``-style
  prefix, ``hyper_parameters``), the seed projects' files
  (``{'model_state_dict': ...}``), bare state dicts, ``module.`` (DataParallel)
  and ``_orig_mod.`` (torch.compile) prefixes.

With ``arch=None`` the architecture is recognised from the keys and its
hyperparameters are inferred from tensor shapes (widths, block counts, heads
from Restormer's temperatures, LayerNorm type, U-Net depth and base width, ViT
image and patch size). What shapes cannot reveal (ViT heads) comes from the
standard presets, a ``preset=`` argument or keyword arguments, which always win.
"""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from restorekit.errors import CheckpointError, ConfigError
from restorekit.models.package import is_package, load_package
from restorekit.models.spec import Tensors, card_of, set_card


#: wrapper prefixes stripped when every key carries them
_WRAPPER_PREFIXES = ("module.", "_orig_mod.", "model.", "net.", "network.", "student.", "generator.", "netG.")
#: keys of a checkpoint dict that hold the weights, most preferred first
_WEIGHT_KEYS = ("params_ema", "params", "state_dict", "model_state_dict", "model", "net", "network", "student")


def load_model(
    path: str | Path,
    arch: str | None = None,
    map_location: str | torch.device = "cpu",
    **kwargs: Any,
) -> nn.Module:
    """Load any supported weight file at ``path``; return the plain ``nn.Module`` in eval mode.

    ``arch``: registry name (default: recognised from the keys by the architectures' specs).
    ``kwargs``: constructor arguments overriding everything else; ``preset=NAME`` supplies
    defaults for what the shapes cannot reveal. Arguments recorded in the file (a
    restorekit package, a restorekit training checkpoint's ``restorekit`` entry, a
    checkpoint's own config read by the spec) always win over arguments inferred from
    shapes. The module carries a :class:`~restorekit.models.spec.ModelCard`
    (:func:`~restorekit.models.spec.card_of`), so :func:`~restorekit.models.package.save_package`
    works on it. Raises :class:`CheckpointError` naming the file (and the keys) on any problem.
    """
    from restorekit.models.registry import create_model, get_spec

    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"model file '{p}' does not exist")
    if not p.is_file():
        raise CheckpointError(f"model file '{p}' is not a file")
    if arch is not None:
        get_spec(arch)  # raises ConfigError listing the known names
    if is_package(p):
        model = load_package(p, map_location=map_location, **kwargs)
        found = card_of(model).arch  # type: ignore[union-attr]
        if arch is not None and arch != found:
            raise CheckpointError(f"'{p}': package holds architecture '{found}', not '{arch}'")
        return model

    ckpt = read_checkpoint(p)
    recorded_arch, recorded_args = _recorded(ckpt)
    state, arch_name = select_state_dict(ckpt.tensors, arch or recorded_arch, source=str(p))
    spec = get_spec(arch_name)
    state = spec.canonical_state(state)
    args: dict[str, Any] = {}
    preset = kwargs.pop("preset", None)
    if preset is not None:
        if preset not in spec.presets:
            raise CheckpointError(f"'{p}': architecture '{arch_name}' has no preset '{preset}' (presets: {sorted(spec.presets)})")
        args.update(spec.presets[preset])
    if recorded_arch == arch_name:
        # arguments recorded at training time are exactly what the model was built with: use them as they are
        args.update(recorded_args)
    else:
        if spec.infer is not None:
            try:
                args.update(spec.infer(state))
            except KeyError as exc:
                raise CheckpointError(
                    f"'{p}': weights do not look like a '{arch_name}' checkpoint: key {exc} is missing "
                    f"(first keys: {list(state)[:8]})"
                ) from exc
        if spec.from_sidecar is not None:
            args.update(spec.from_sidecar(p))
        if spec.from_checkpoint is not None:
            args.update(spec.from_checkpoint(ckpt.extras))
    args.update(kwargs)
    try:
        model = create_model(arch_name, **args)
    except ConfigError as exc:
        raise CheckpointError(f"'{p}': {exc}") from exc
    load_strict(model, state, arch_name, str(p))
    card = card_of(model)
    assert card is not None
    set_card(model, card.with_(source=str(p), train_size=_recorded_train_size(ckpt)))
    return model.to(map_location).eval()


@dataclass
class Checkpoint:
    """What a weight file holds: its tensors and its other (plain, safely unpickled) top-level entries."""

    tensors: Tensors
    extras: dict[str, Any] = field(default_factory=dict)


def _recorded(ckpt: Checkpoint) -> tuple[str | None, dict[str, Any]]:
    """Architecture and arguments recorded by restorekit's training (``restorekit`` entry) or a Lightning module."""
    info = ckpt.extras.get("restorekit")
    if isinstance(info, dict) and isinstance(info.get("arch"), str):
        return info["arch"], dict(info.get("arch_args") or {})
    hp = ckpt.extras.get("hyper_parameters")
    if isinstance(hp, dict):
        found = _args_from_hparams(hp)
        if found is not None:
            return found
    return None, {}


def _recorded_train_size(ckpt: Checkpoint) -> tuple[int, int] | None:
    info = ckpt.extras.get("restorekit")
    ts = info.get("train_size") if isinstance(info, dict) else None
    if isinstance(ts, (list, tuple)) and len(ts) == 2:
        return int(ts[0]), int(ts[1])
    if isinstance(ts, int):
        return ts, ts
    return None


# ----------------------------------------------------------------------------- reading


def read_weights(path: Path) -> tuple[Tensors, dict[str, Any]]:
    """Read ``path`` safely: returns (flat dict of tensors, Lightning ``hyper_parameters`` or {})."""
    ckpt = read_checkpoint(Path(path))
    hp = ckpt.extras.get("hyper_parameters")
    return ckpt.tensors, hp if isinstance(hp, dict) else {}


def read_checkpoint(path: Path) -> Checkpoint:
    """Read a weight file safely: safetensors, or a PyTorch pickle with ``torch.load(weights_only=True)``.

    Exported files (ONNX, TorchScript) and images are named as such, with the
    commands that take them, instead of failing as unreadable pickles.
    """
    kind = sniff_file(path)
    if kind in ("onnx", "torchscript", "image"):
        what = {"onnx": "an exported ONNX model", "torchscript": "an exported TorchScript model",
                "image": "an image, not a model"}[kind]
        hint = ("" if kind == "image" else
                "; `restorekit restore`, `restorekit serve`, `restorekit eval --model` and "
                "`restorekit.load_restorer` run it, but it holds no state dict to load as an nn.Module")
        raise CheckpointError(f"'{path}' is {what}{hint}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return Checkpoint(load_file(str(path)))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"'{path}': not a readable safetensors file ({exc})") from exc
    try:
        with torch.serialization.safe_globals(numpy_safe_globals()):
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(
            f"'{path}': refused to load: the file contains pickled Python objects other than tensors and plain "
            f"containers, and restorekit only loads checkpoints with torch.load(weights_only=True) because unpickling "
            f"can run arbitrary code. If you trust the file, re-save just its state dict "
            f"(torch.save(obj['state_dict'] or model.state_dict(), 'clean.pth')). Detail: {first[0] if first else exc}"
        ) from exc
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"'{path}': not a readable PyTorch checkpoint ({exc})") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"'{path}': expected a dict of tensors or a checkpoint dict, found {type(obj).__name__}")
    extras = {str(k): v for k, v in obj.items() if not isinstance(v, torch.Tensor)}
    return Checkpoint(_extract_tensors(obj, str(path)), extras)


def numpy_safe_globals() -> list[Any]:
    """The explicit allow-list of numpy types a checkpoint may hold beside its weights.

    The seed projects store metrics (``psnr``, ``ssim``, ``best_val_psnr``) as numpy scalars; unpickling
    those needs ``numpy.core.multiarray.scalar`` (``numpy._core`` on numpy 2), ``numpy.dtype`` and the
    dtype classes of the numeric scalar types. Nothing else is allowed: any other global (``os.system``,
    ``builtins.eval``, arbitrary classes) is still refused by ``weights_only=True`` before it can run.
    """
    import numpy as np

    allowed: list[Any] = [np.dtype]
    for modname in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            import importlib

            mod = importlib.import_module(modname)
        except ImportError:
            continue
        fn = getattr(mod, "scalar", None)
        if fn is not None:
            allowed.append((fn, f"{modname}.scalar"))
    scalar_types = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
                    np.float16, np.float32, np.float64, np.complex64, np.complex128]
    for t in scalar_types:
        allowed.append(t)
        allowed.append(type(np.dtype(t)))  # numpy.dtypes.Float64DType etc.
    return allowed


def sniff_file(path: Path) -> str:
    """What a model file is by its content: ``onnx``, ``torchscript``, ``safetensors``, ``pickle``, ``image`` or ``unknown``."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise CheckpointError(f"cannot read model file '{path}': {exc.strerror or exc}") from exc
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")) or head[8:12] == b"WEBP":
        return "image"
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError):
            return "unknown"
        if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
            return "torchscript"
        return "pickle"
    if path.suffix.lower() == ".onnx" or (head[:1] == b"\x08" and _looks_like_onnx(_peek(path, 512))):
        return "onnx"
    if len(head) >= 8 and int.from_bytes(head[:8], "little") < 100_000_000 and head[8:9] == b"{":
        return "safetensors"
    return "pickle" if head[:1] == b"\x80" else "unknown"


def _looks_like_onnx(head: bytes) -> bool:
    """An ONNX ModelProto starts with field 1 (ir_version, a varint) and names its producer early on."""
    low = head.lower()
    return any(word in low for word in (b"pytorch", b"onnx", b"tf2onnx", b"skl2onnx", b"keras2onnx"))


def _peek(path: Path, n: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _is_state_dict(d: Any) -> bool:
    return isinstance(d, dict) and bool(d) and all(isinstance(v, torch.Tensor) for v in d.values())


def _extract_tensors(obj: dict, source: str) -> Tensors:
    for key in _WEIGHT_KEYS:
        sub = obj.get(key)
        if isinstance(sub, dict):
            tensors = {k: v for k, v in sub.items() if isinstance(v, torch.Tensor)}
            if tensors:
                return tensors
    if _is_state_dict(obj):
        return dict(obj)
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if len(tensors) >= 2:
        return tensors
    raise CheckpointError(
        f"'{source}': no weights found: top-level keys {sorted(map(str, obj))[:12]} contain none of "
        f"{list(_WEIGHT_KEYS)} and are not a state dict"
    )


# ----------------------------------------------------------------------------- prefixes and recognition


def _strip_common(state: Tensors) -> Tensors:
    changed = True
    while changed:
        changed = False
        for pre in _WRAPPER_PREFIXES:
            if state and all(k.startswith(pre) for k in state):
                state = {k[len(pre):]: v for k, v in state.items()}
                changed = True
    return state


def _candidates(state: Tensors) -> list[Tensors]:
    """The state dict with common wrapper prefixes removed, then each top-level submodule (Lightning modules)."""
    out = [_strip_common(state)]
    heads: dict[str, Tensors] = {}
    for k, v in state.items():
        if "." in k:
            head, rest = k.split(".", 1)
            heads.setdefault(head, {})[rest] = v
    preferred = ["model", "net", "network", "student", "generator", "module", "ema_model", "model_ema"]
    for head in sorted(heads, key=lambda h: (preferred.index(h) if h in preferred else len(preferred), h)):
        if len(heads) > 1 or head not in ("module", "_orig_mod"):
            out.append(_strip_common(heads[head]))
    return out


def detect_arch(state: Tensors) -> str | None:
    """Registry name of the architecture whose spec recognises ``state``, or None (specs by priority)."""
    from restorekit.models.registry import MODELS

    specs = sorted((s for _, s in MODELS.items() if s.detect is not None), key=lambda s: (-s.priority, s.name))
    for spec in specs:
        if spec.detect(state):  # type: ignore[misc]
            return spec.name
    return None


def select_state_dict(state: Tensors, arch: str | None, source: str) -> tuple[Tensors, str]:
    """Pick the (prefix-stripped) sub-dict holding a known architecture; returns (state, arch name)."""
    cands = _candidates(state)
    for cand in cands:
        found = detect_arch(cand)
        if found is not None and (arch is None or found == arch):
            return cand, found
    if arch is not None:
        return cands[0], arch  # let inference/loading name the missing keys
    sample = list(state)[:10]
    raise CheckpointError(
        f"'{source}': no known architecture matches these weights ({len(state)} tensors; first keys {sample}); "
        "pass arch=NAME (see `restorekit models list`)"
    )


# ----------------------------------------------------------------------------- recorded arguments


def _args_from_hparams(hparams: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """``(arch, args)`` recorded by a Lightning module (``{'model': {'name', 'args'}}`` and similar), or None."""
    from restorekit.models.registry import list_models

    known = set(list_models())
    stack: list[Any] = [hparams]
    depth = 0
    while stack and depth < 200:
        depth += 1
        d = stack.pop(0)
        if not isinstance(d, dict):
            continue
        name = d.get("name", d.get("arch"))
        args = d.get("args", d.get("arch_args"))
        if isinstance(name, str) and name in known and isinstance(args, dict):
            return name, dict(args)
        stack.extend(v for v in d.values() if isinstance(v, dict))
    return None


def load_strict(model: nn.Module, state: Tensors, arch: str, source: str) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise CheckpointError(
            f"'{source}': weights do not fit architecture '{arch}' with arguments {(card_of(model).args if card_of(model) else {})}: "
            f"missing keys {missing[:10]}{' ...' if len(missing) > 10 else ''}, "
            f"unexpected keys {unexpected[:10]}{' ...' if len(unexpected) > 10 else ''}"
        )
    bad = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items() if state[k].shape != v.shape]
    if bad:
        raise CheckpointError(f"'{source}': tensor shapes do not fit architecture '{arch}': {bad[:6]}")
    model.load_state_dict({k: state[k].to(expected[k].dtype) for k in expected}, strict=True)
