"""The ``data:`` section of a run config: a discriminated union on ``kind``.

Kinds:

* ``gopro``: ``root/<scene>/{blur|blur_gamma,sharp}/*.png`` paired by file name.
* ``paired``: two parallel folders ``input_dir`` / ``target_dir`` paired by relative path
  without extension (``a.png`` pairs with ``a.jpg``).
* ``pairs_list``: a CSV (header ``input,target[,<extra>...]``) or JSON list of
  ``{"input": ..., "target": ..., ...}`` objects; relative paths are resolved
  against the list file's folder.
* ``clean``: a folder of clean images, degraded on the fly (``degrade``).
* ``skimage``: the photos bundled with scikit-image, degraded on the fly (what
  ``restorekit demo`` trains on; nothing to download).
* ``raw``: :class:`restorekit.raw.config.RawDataConfig` (the raw pipeline).

Every folder may also be (inside) a packed dataset written by ``restorekit data pack``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, TypeAdapter, ValidationError, field_validator

from restorekit.config.base import StrictModel, format_validation_error
from restorekit.degrade.pipeline import DegradeSpec
from restorekit.errors import ConfigError
from restorekit.raw.config import RawDataConfig

#: scikit-image colour photos used by default (all bundled with the wheel, no download)
DEFAULT_SKIMAGE_NAMES: list[str] = [
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "motorcycle_left",
    "motorcycle_right",
]


def _augment_bool(v: Any) -> Any:
    if isinstance(v, bool):
        return {"hflip": v, "vflip": v, "rot90": v}
    return v


class AugmentConfig(StrictModel):
    """Synchronized geometric augmentation of every aligned array of a training sample."""

    hflip: bool = True
    vflip: bool = True
    rot90: bool = True  #: rotations by k * 90 degrees, k uniform in 0..3


class CommonDataConfig(StrictModel):
    """Fields shared by every image dataset kind."""

    #: side of the square training patch (random crop, reflect-padded when the image is smaller); None = full images
    patch_size: int | None = Field(256, ge=8)
    batch_size: int = Field(8, ge=1)
    num_workers: int = Field(0, ge=0)
    #: fraction of the samples held out for validation when no validation source is given (seeded split)
    val_fraction: float = Field(0.2, ge=0.0, lt=1.0)
    #: split unit: "group" keeps a scene (GoPro) together, "file" splits files, "auto" = group when the layout has groups
    split_by: Literal["auto", "file", "group"] = "auto"
    #: validation crop: None = full image, an int = centre crop of that side
    val_patch: int | None = Field(None, ge=8)
    val_batch_size: int = Field(1, ge=1)
    #: patches drawn per image per epoch (the seed took one)
    repeat: int = Field(1, ge=1)
    augment: Annotated[AugmentConfig, BeforeValidator(_augment_bool)] = Field(default_factory=AugmentConfig)
    #: what to do with pairing problems (missing partner, size mismatch, unreadable file): fail (default) or skip with a warning
    on_error: Literal["fail", "skip"] = "fail"
    #: up-front check: "header" reads each file's header (size, format), "full" decodes every file, "none" trusts the listing
    check: Literal["none", "header", "full"] = "header"
    #: extra aligned folders, e.g. {"teacher": "runs/teacher_out"}: files matched by name, cropped/augmented in sync
    extra: dict[str, str] = Field(default_factory=dict)
    #: even crop offsets (and even padding) so a Bayer pattern keeps its phase
    bayer_safe: bool = False
    #: synthetic degradation: a preset name, or a list of ops (and/or preset names). Clean kinds: makes the input
    #: from the target. Paired kinds: applied on top of the input.
    degrade: DegradeSpec | None = None
    #: use at most this many samples (the first N in sorted order, before the split)
    limit: int | None = Field(None, ge=1)
    #: pixel limit per image (decompression-bomb guard); None = restorekit.io default
    max_pixels: int | None = Field(None, ge=1)
    #: keep decoded images in memory, up to this many MB per process (each DataLoader worker has its own); 0 = off.
    #: ``auto``: a quarter of the available RAM shared by the workers, at most 2048 MB each
    #: (:func:`restorekit.data.build.resolve_cache_mb`). Images that do not fit are decoded every time
    #: (8-bit PNGs only up to the rows the crop needs).
    cache_mb: Annotated[int, Field(ge=0)] | Literal["auto"] = "auto"
    #: resize every whole image to ``resize x resize`` before anything else (the manuscript seed: 256); None = off
    resize: int | None = Field(None, ge=8)
    #: degrade the whole (resized) image, then crop/augment input and target together (the manuscript seed's
    #: order); False = crop first, then degrade the patch
    degrade_before_crop: bool = False

    @field_validator("degrade")
    @classmethod
    def _presets_known(cls, v: Any) -> Any:
        from restorekit.degrade.presets import PRESETS

        names = [v] if isinstance(v, str) else [x for x in (v or []) if isinstance(x, str)]
        bad = [n for n in names if n not in PRESETS]
        if bad:
            raise ValueError(f"unknown degradation preset(s) {bad} (known: {', '.join(sorted(PRESETS))})")
        return v

    @field_validator("extra")
    @classmethod
    def _extra_names(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k in v if k in ("input", "target", "name", "params") or not k.isidentifier()]
        if bad:
            raise ValueError(f"extra names {bad} are reserved or not identifiers")
        return v


class GoProDataConfig(CommonDataConfig):
    """GoPro layout ``root/<scene>/{blur|blur_gamma}/*.png`` + ``root/<scene>/sharp/*.png``."""

    kind: Literal["gopro"] = "gopro"
    root: str
    blur_dir: Literal["blur", "blur_gamma"] = "blur"
    sharp_dir: str = "sharp"
    #: a second GoPro root used as the validation set (e.g. GOPRO_Large/test); None = seeded split of root
    val_dir: str | None = None


class PairedDataConfig(CommonDataConfig):
    """Two parallel folders paired by relative path without extension."""

    kind: Literal["paired"] = "paired"
    input_dir: str
    target_dir: str
    val_input_dir: str | None = None
    val_target_dir: str | None = None


class PairsListDataConfig(CommonDataConfig):
    """A CSV or JSON list of pairs (and extra aligned files)."""

    kind: Literal["pairs_list"] = "pairs_list"
    file: str
    val_file: str | None = None


class CleanDataConfig(CommonDataConfig):
    """A folder of clean images; the input is synthesised by ``degrade`` (default ``demo-deblur``)."""

    kind: Literal["clean"] = "clean"
    dir: str
    val_dir: str | None = None
    degrade: DegradeSpec | None = "demo-deblur"


class SkimageDataConfig(CommonDataConfig):
    """Photos bundled with scikit-image (no download), degraded on the fly."""

    kind: Literal["skimage"] = "skimage"
    names: list[str] = Field(default_factory=lambda: list(DEFAULT_SKIMAGE_NAMES))
    #: explicit validation photos; None = seeded split of ``names``
    val_names: list[str] | None = None
    degrade: DegradeSpec | None = "demo-deblur"

    @field_validator("names", "val_names")
    @classmethod
    def _known(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        from restorekit.data.sources import SKIMAGE_LOADERS

        bad = [n for n in v if n not in SKIMAGE_LOADERS]
        if bad:
            raise ValueError(f"unknown scikit-image photos {bad} (known: {', '.join(sorted(SKIMAGE_LOADERS))})")
        if not v:
            raise ValueError("at least one photo name is needed")
        return v


ImageDataConfig = Union[GoProDataConfig, PairedDataConfig, PairsListDataConfig, CleanDataConfig, SkimageDataConfig]

#: the ``data:`` section: discriminated on ``kind``
DataConfig = Annotated[
    Union[GoProDataConfig, PairedDataConfig, PairsListDataConfig, CleanDataConfig, SkimageDataConfig, RawDataConfig],
    Field(discriminator="kind"),
]

_ADAPTER: TypeAdapter[Any] = TypeAdapter(DataConfig)


def parse_data_config(data: dict[str, Any], source: str = "data") -> Any:
    """Validate a ``data:`` mapping into its config class; :class:`ConfigError` names each bad key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping, got {type(data).__name__}")
    if "kind" not in data:
        raise ConfigError(f"{source}.kind: missing (one of gopro, paired, pairs_list, clean, skimage, raw)")
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from exc
