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

import math
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from restorekit.errors import CheckpointError
from restorekit.models.package import is_package, load_package

Tensors = dict[str, torch.Tensor]

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
    """Load any supported weight file at ``path``; return the model in eval mode.

    ``arch``: registry name (default: recognised from the keys). ``kwargs``:
    constructor arguments overriding inferred ones; ``preset=NAME`` supplies
    defaults for what the shapes cannot reveal. The module carries
    ``restorekit_arch``, ``restorekit_args`` and ``restorekit_value_range`` so
    :func:`~restorekit.models.package.save_package` works on it.
    Raises :class:`CheckpointError` naming the file (and the keys) on any problem.
    """
    from restorekit.models.registry import create_model, get_spec, list_models

    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"model file '{p}' does not exist")
    if not p.is_file():
        raise CheckpointError(f"model file '{p}' is not a file")
    if is_package(p):
        model = load_package(p, map_location=map_location)
        if arch is not None and arch != model.restorekit_arch:
            raise CheckpointError(f"'{p}': package holds architecture '{model.restorekit_arch}', not '{arch}'")
        return model

    raw, hparams = read_weights(p)
    if arch is not None and arch not in list_models():
        get_spec(arch)  # raises ConfigError listing the known names
    state, arch_name = select_state_dict(raw, arch, source=str(p))
    args: dict[str, Any] = {}
    preset = kwargs.pop("preset", None)
    spec = get_spec(arch_name)
    if preset is not None:
        if preset not in spec.presets:
            raise CheckpointError(f"'{p}': architecture '{arch_name}' has no preset '{preset}' (presets: {sorted(spec.presets)})")
        args.update(spec.presets[preset])
    recorded = _args_from_hparams(hparams, arch_name)
    if recorded is not None:
        # a Lightning module that recorded its constructor arguments: use them as they are
        args.update(recorded)
    else:
        try:
            args.update(INFER[arch_name](state))
        except KeyError as exc:
            raise CheckpointError(
                f"'{p}': weights do not look like a '{arch_name}' checkpoint: key {exc} is missing "
                f"(first keys: {list(state)[:8]})"
            ) from exc
    args.update(kwargs)
    model = create_model(arch_name, **args)
    _load_strict(model, state, arch_name, str(p))
    model.restorekit_source = str(p)  # type: ignore[attr-defined]
    model.restorekit_train_size = None  # type: ignore[attr-defined]
    return model.to(map_location).eval()


# ----------------------------------------------------------------------------- reading


def read_weights(path: Path) -> tuple[Tensors, dict[str, Any]]:
    """Read ``path`` safely: returns (flat dict of tensors, Lightning ``hyper_parameters`` or {})."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path)), {}
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"'{path}': not a readable safetensors file ({exc})") from exc
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
            raise CheckpointError(
                f"'{path}' is a TorchScript archive (torch.jit.save); restorekit loads state dicts only: "
                "save model.state_dict() from the original code instead"
            )
    try:
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
    hparams = obj.get("hyper_parameters") if isinstance(obj.get("hyper_parameters"), dict) else {}
    return _extract_tensors(obj, str(path)), hparams or {}


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
    """Registry name of the architecture whose key signature ``state`` carries, or None."""
    keys = set(state)

    def has(pattern: str) -> bool:
        rx = re.compile(pattern)
        return any(rx.fullmatch(k) for k in keys)

    if {"conditioning_gen.0.weight", "intro.0.weight", "ending.weight"} <= keys:
        return "nafnet_cond"
    if {"intro.weight", "ending.weight"} <= keys and has(r"(encoders|middle_blks|decoders)\.\d+\.\d+\.sca\.1\.weight"):
        return "nafnet"
    if {"patch_embed.proj.weight", "output.weight"} <= keys and has(r"latent\.\d+\.attn\.temperature"):
        return "restormer"
    if {"pos_embed", "patch_embed.proj.0.weight"} <= keys and ("head.weight" in keys or "patch_recon.proj.weight" in keys):
        return "vit_restorer"
    if {"enc1.block.0.weight", "bottleneck.block.0.weight", "up1.weight", "final.weight"} <= keys:
        return "student_unet"
    if {"enc1.block.0.weight", "enc4.block.0.weight", "bottleneck.block.0.weight", "up4.up.1.weight", "final.weight"} <= keys:
        return "deblur_unet"
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


# ----------------------------------------------------------------------------- hyperparameter inference


def _count(state: Tensors, pattern: str) -> int:
    """Number of distinct integer indices ``N`` such that some key matches ``pattern`` with ``(\\d+)`` = N."""
    rx = re.compile(pattern)
    found = {int(m.group(1)) for k in state if (m := rx.match(k))}
    return (max(found) + 1) if found else 0


def _blocks_per_stage(state: Tensors, prefix: str, n_stages: int, leaf: str) -> list[int]:
    return [_count(state, rf"{prefix}\.{i}\.(\d+)\.{leaf}") for i in range(n_stages)]


def infer_nafnet(state: Tensors) -> dict[str, Any]:
    n_down = _count(state, r"downs\.(\d+)\.weight")
    n_up = _count(state, r"ups\.(\d+)\.0\.weight")
    return {
        "img_channel": int(state["intro.weight"].shape[1]),
        "width": int(state["intro.weight"].shape[0]),
        "enc_blk_nums": _blocks_per_stage(state, "encoders", n_down, "conv1.weight"),
        "middle_blk_num": _count(state, r"middle_blks\.(\d+)\.conv1\.weight"),
        "dec_blk_nums": _blocks_per_stage(state, "decoders", n_up, "conv1.weight"),
    }


def infer_nafnet_cond(state: Tensors) -> dict[str, Any]:
    n_down = _count(state, r"downs\.(\d+)\.weight")
    n_up = _count(state, r"ups\.(\d+)\.0\.weight")
    width = int(state["intro.0.weight"].shape[0]) // 4
    chans = [width] + [int(state[f"downs.{i}.weight"].shape[0]) for i in range(n_down)]
    return {
        "in_channels": int(state["intro.0.weight"].shape[1]),
        "out_channels": int(state["ending.weight"].shape[0]),
        "chans": chans,
        "enc_blk_nums": _blocks_per_stage(state, "encoders", n_down, "conv1.weight"),
        "middle_blk_num": _count(state, r"middle_blks\.(\d+)\.conv1\.weight"),
        "dec_blk_nums": _blocks_per_stage(state, "decoders", n_up, "conv1.weight"),
        "cond_input": int(state["conditioning_gen.0.weight"].shape[1]),
        "cond_output": int(state["conditioning_gen.3.weight"].shape[0]),
    }


def _solve_expansion(pairs: list[tuple[int, int]]) -> float:
    """A factor ``f`` with ``int(dim * f) == hidden`` for every (dim, hidden) pair."""
    for f in (2.66, 2.0, 3.0, 4.0, 1.0, 1.5, 2.5, 2.67, 2.65):
        if all(int(d * f) == h for d, h in pairs):
            return f
    lo = max(h / d for d, h in pairs)
    hi = min((h + 1) / d for d, h in pairs)
    f = (lo + hi) / 2 if lo < hi else lo
    return float(f)


def infer_restormer(state: Tensors) -> dict[str, Any]:
    dim = int(state["patch_embed.proj.weight"].shape[0])
    stages = ["encoder_level1", "encoder_level2", "encoder_level3", "latent"]
    num_blocks = [_count(state, rf"{s}\.(\d+)\.attn\.temperature") for s in stages]
    heads = [int(state[f"{s}.0.attn.temperature"].shape[0]) for s in stages]
    pairs = [
        (int(state[f"{s}.0.ffn.project_out.weight"].shape[0]), int(state[f"{s}.0.ffn.project_out.weight"].shape[1]))
        for s in stages
    ]
    return {
        "inp_channels": int(state["patch_embed.proj.weight"].shape[1]),
        "out_channels": int(state["output.weight"].shape[0]),
        "dim": dim,
        "num_blocks": num_blocks,
        "num_refinement_blocks": _count(state, r"refinement\.(\d+)\.attn\.temperature"),
        "heads": heads,
        "ffn_expansion_factor": _solve_expansion(pairs),
        "bias": "encoder_level1.0.attn.qkv.bias" in state,
        "LayerNorm_type": "WithBias" if "encoder_level1.0.norm1.body.bias" in state else "BiasFree",
        "dual_pixel_task": "skip_conv.weight" in state,
    }


_VIT_HEADS = {192: 3, 384: 6, 768: 12, 1024: 16}


def infer_vit(state: Tensors) -> dict[str, Any]:
    w = state["patch_embed.proj.0.weight"]
    embed_dim, in_ch, patch = int(w.shape[0]), int(w.shape[1]), int(w.shape[-1])
    n = int(state["pos_embed"].shape[1])
    grid = math.isqrt(n)
    if grid * grid != n:
        raise CheckpointError(f"vit_restorer: pos_embed has {n} tokens, not a square grid")
    simple = "head.weight" in state
    out_w = state["head.weight" if simple else "patch_recon.proj.weight"]
    return {
        "img_size": grid * patch,
        "patch_size": patch,
        "in_channels": in_ch,
        "out_channels": int(out_w.shape[0]) // (patch * patch),
        "embed_dim": embed_dim,
        "depth": _count(state, r"blocks\.(\d+)\.attn\.qkv\.weight"),
        "num_heads": _VIT_HEADS.get(embed_dim, max(1, embed_dim // 64)),
        "mlp_ratio": int(state["blocks.0.mlp.fc1.weight"].shape[0]) / embed_dim,
        "use_skip_connections": "skip_fusion.weight" in state,
        "use_simple_head": simple,
    }


def infer_student_unet(state: Tensors) -> dict[str, Any]:
    levels = _count(state, r"enc(\d+)\.block\.0\.weight") - 1  # enc indices start at 1
    base = int(state["enc1.block.0.weight"].shape[0])
    bott = int(state["bottleneck.block.0.weight"].shape[0])
    args: dict[str, Any] = {
        "base_filters": base,
        "in_channels": int(state["enc1.block.0.weight"].shape[1]),
        "out_channels": int(state["final.weight"].shape[0]),
    }
    if bott == base * 8 and levels in (2, 3):
        # the seed's layout: 3 levels for depth >= 3 (its training used depth=4), 2 levels below
        args.update(depth=4 if levels == 3 else 2, legacy_three_levels=True)
    else:
        args.update(depth=levels, legacy_three_levels=False)
    return args


def infer_deblur_unet(state: Tensors) -> dict[str, Any]:
    if "enc1.block.1.running_mean" in state:
        norm = "batch"
    elif "enc1.block.1.weight" in state:
        norm = "group"
    else:
        norm = "none"
    return {
        "in_ch": int(state["enc1.block.0.weight"].shape[1]),
        "out_ch": int(state["final.weight"].shape[0]),
        "base_ch": int(state["enc1.block.0.weight"].shape[0]),
        "norm": norm,
    }


INFER: dict[str, Callable[[Tensors], dict[str, Any]]] = {
    "nafnet": infer_nafnet,
    "nafnet_cond": infer_nafnet_cond,
    "restormer": infer_restormer,
    "vit_restorer": infer_vit,
    "student_unet": infer_student_unet,
    "deblur_unet": infer_deblur_unet,
}


def _args_from_hparams(hparams: dict[str, Any], arch: str) -> dict[str, Any] | None:
    """Constructor arguments recorded by a Lightning module (``{'model': {'name', 'args'}}`` and similar), or None."""
    stack: list[Any] = [hparams]
    depth = 0
    while stack and depth < 200:
        depth += 1
        d = stack.pop(0)
        if not isinstance(d, dict):
            continue
        name = d.get("name", d.get("arch"))
        args = d.get("args", d.get("arch_args"))
        if name == arch and isinstance(args, dict):
            return dict(args)
        stack.extend(v for v in d.values() if isinstance(v, dict))
    return None


def _load_strict(model: nn.Module, state: Tensors, arch: str, source: str) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise CheckpointError(
            f"'{source}': weights do not fit architecture '{arch}' with arguments {getattr(model, 'restorekit_args', {})}: "
            f"missing keys {missing[:10]}{' ...' if len(missing) > 10 else ''}, "
            f"unexpected keys {unexpected[:10]}{' ...' if len(unexpected) > 10 else ''}"
        )
    bad = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items() if state[k].shape != v.shape]
    if bad:
        raise CheckpointError(f"'{source}': tensor shapes do not fit architecture '{arch}': {bad[:6]}")
    model.load_state_dict({k: state[k].to(expected[k].dtype) for k in expected}, strict=True)
