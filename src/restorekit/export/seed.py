"""``--format seed``: write weights in the seed project's own checkpoint layout and key names.

So that the seeds' own inference scripts, Streamlit and Azure apps can use weights
trained with restorekit:

* ``deblur_unet`` -> the deblurring project's ``{'epoch', 'model_state_dict'}`` with its
  ``ConvBlock`` attribute names (``enc1.conv1.weight``, ``up1.conv.norm2.bias``);
* ``vit_restorer`` -> the manuscript project's ``{'epoch', 'model_state_dict', 'config'}``
  (``config`` with ``img_size, patch_size, embed_dim, depth, heads, num_heads, mlp_ratio,
  use_skip``: the head count travels with the weights);
* ``student_unet`` -> the distillation project's bare ``UNet`` state dict (only the layouts the
  seed's ``UNet`` can build: its legacy three-level layout, or depth 3);
* ``nafnet_cond`` -> the raw project's ``ModelWrapper`` state dict (keys ``model.*``; ``gamma`` is
  a plain attribute of the wrapper, not a weight: pass it to the seed's ``ModelWrapper(gamma=...)``
  and to ``restorekit.load_model(path, gamma=...)``).

Writers are looked up in :data:`SEED_WRITERS` by the model card's architecture name (one
writer per seed architecture; the layouts are those projects' own).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from restorekit.export import ExportError
from restorekit.models.spec import card_of
from restorekit.registry import Registry


class SeedExportError(ExportError):
    """The model cannot be written in a seed project's layout."""


@dataclass(frozen=True)
class SeedWriter:
    """How one architecture is written for its seed project."""

    project: str
    #: ``build(state, args) -> obj`` the object ``torch.save`` writes
    build: Callable[[dict[str, torch.Tensor], dict[str, Any]], Any]
    #: keyword arguments ``restorekit.load_model`` needs to read the file back exactly (e.g. raw ``gamma``)
    reload_args: Callable[[dict[str, Any]], dict[str, Any]] = lambda args: {}


SEED_WRITERS: Registry[SeedWriter] = Registry("seed checkpoint writer")


def _deblur(state: dict[str, torch.Tensor], args: dict[str, Any]) -> Any:
    from restorekit.models.deblur_unet import to_seed_layout

    if args.get("residual"):
        raise SeedExportError("deblur_unet with residual=true has no equivalent in the deblurring seed "
                              "(its DeblurUNet has no global residual); train with residual: false to export it")
    return {"epoch": 0, "model_state_dict": to_seed_layout(state)}


def _vit(state: dict[str, torch.Tensor], args: dict[str, Any]) -> Any:
    cfg = {
        "img_size": int(args["img_size"]), "patch_size": int(args["patch_size"]), "embed_dim": int(args["embed_dim"]),
        "depth": int(args["depth"]), "heads": int(args["num_heads"]), "num_heads": int(args["num_heads"]),
        "mlp_ratio": float(args["mlp_ratio"]), "use_skip": bool(args["use_skip_connections"]),
    }
    return {"epoch": 0, "model_state_dict": dict(state), "config": cfg}


def _student(state: dict[str, torch.Tensor], args: dict[str, Any]) -> Any:
    legacy = bool(args.get("legacy_three_levels"))
    depth = int(args.get("depth", 4))
    if args.get("global_residual"):
        raise SeedExportError("student_unet with global_residual=true has no equivalent in the distillation seed's UNet")
    if int(args.get("in_channels", 3)) != 3 or int(args.get("out_channels", 3)) != 3:
        raise SeedExportError("the distillation seed's UNet is RGB to RGB (3 channels in and out)")
    if not legacy and depth != 3:
        raise SeedExportError(f"student_unet depth {depth} cannot be built by the distillation seed's UNet "
                              "(it builds 3 pooling levels for any depth >= 3): only depth 3 or legacy_three_levels")
    return dict(state)


def _raw(state: dict[str, torch.Tensor], args: dict[str, Any]) -> Any:
    return {f"model.{k}": v for k, v in state.items()}


SEED_WRITERS.register("deblur_unet", SeedWriter("deblurring U-Net (AndreiSobo/image_deblurring)", _deblur))
SEED_WRITERS.register("vit_restorer", SeedWriter("manuscript ViT (Bagesh-Tallolli/historic-manuscript-restoration)", _vit))
SEED_WRITERS.register("student_unet", SeedWriter("KD student (beingdhruvv/ImageSharpening-KD-Restormer-UNet)", _student))
SEED_WRITERS.register("nafnet_cond", SeedWriter(
    "raw Restorer ModelWrapper (rymuelle/Restorer)", _raw,
    reload_args=lambda args: {"gamma": float(args.get("gamma", 1.0)), "clip": bool(args.get("clip", False))},
))


def seed_checkpoint(model: nn.Module) -> tuple[Any, SeedWriter, dict[str, Any]]:
    """The object to ``torch.save`` for ``model``'s seed project, its writer and the model's arguments."""
    card = card_of(model)
    if card is None or card.arch not in SEED_WRITERS:
        what = card.arch if card else type(model).__name__
        raise SeedExportError(
            f"--format seed: '{what}' is not a seed project's architecture (supported: {', '.join(SEED_WRITERS.names())})")
    writer = SEED_WRITERS.get(card.arch)
    state = {k: v.detach().to("cpu").contiguous() for k, v in getattr(model, "_orig_mod", model).state_dict().items()}
    # the card holds only the arguments the model was built with; the writers need every one (defaults too)
    from restorekit.models.registry import get_spec

    full = get_spec(card.arch).args_model(**card.args).model_dump()
    return writer.build(state, full), writer, dict(card.args)


def save_seed_checkpoint(model: nn.Module, path: str | Path) -> dict[str, Any]:
    """Write ``model`` to ``path`` in its seed project's layout (atomically); returns the reload arguments."""
    from restorekit.utils.atomic import atomic_path

    obj, writer, args = seed_checkpoint(model)
    p = Path(path)
    with atomic_path(p) as tmp:
        torch.save(obj, str(tmp))
    return writer.reload_args(args)


__all__ = ["SEED_WRITERS", "SeedExportError", "SeedWriter", "save_seed_checkpoint", "seed_checkpoint"]
