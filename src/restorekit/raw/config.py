"""Config section of raw datasets (``data.kind: raw``), see :mod:`restorekit.raw.dataset`.

``root`` is either a folder of raw files (RawNIND-style: flat names
``<scene>_ISO<iso>_<rest>.<ext>`` where the lowest ISO of a scene is the ground
truth, or ``<scene>/`` folders with their ground truth in ``<scene>/gt/``), a
packed JPEG proxy written by ``restorekit data pack --raw`` (recognised by its
``pack.json``), or the Raw Restorer seed's small JPEG dataset (``format: seed``,
recognised by its ``align_data.csv``: ``<noisy>_bayer.jpg`` mosaics,
``<noisy>.jpg`` / ``<gt>.jpg`` images, gamma 1/2.2, lin_rec2020, and the CSV's
``cc``, warp matrix ``m00..m12`` and ``iso``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from restorekit.config.base import StrictModel


class RawDataConfig(StrictModel):
    """A RawNIND-style folder of raw files (or the packed JPEG proxy)."""

    kind: Literal["raw"] = "raw"
    root: str
    #: a second source used as the validation set; None = seeded split of ``root`` by scene
    val_root: str | None = None
    #: "auto" detects a packed proxy (pack.json), the seed's JPEG set (``csv``) or raw files; the others force one
    format: Literal["auto", "raw", "packed", "seed"] = "auto"
    #: ``format: seed``: the alignment CSV under ``root`` (the seed's config key ``align_csv``)
    csv: str = "align_data.csv"
    #: colour space of the samples: "camera" (camera-linear) or "lin_rec2020" (the seed's, via the file's
    #: XYZ->camera matrix). The seed's JPEGs are already lin_rec2020 and are used as stored.
    color_space: Literal["camera", "lin_rec2020"] = "camera"
    #: raw-file layout: "flat" (`..._ISO<iso>_...` names), "gt_folder" (`<scene>/gt/`), "auto"
    layout: Literal["auto", "flat", "gt_folder"] = "auto"
    batch_size: int = Field(2, ge=1)
    val_batch_size: int = Field(1, ge=1)
    num_workers: int = Field(0, ge=0)
    #: training crop side in full-resolution pixels (even; the packed input is half of it)
    patch_size: int = Field(256, ge=16)
    #: validation: centre crop of this side (even), None = full frames
    val_patch: int | None = Field(None, ge=16)
    #: fraction of scenes held out for validation when ``val_root`` is not given
    val_fraction: float = Field(0.2, ge=0.0, lt=1.0)
    #: Bayer-safe random horizontal / vertical flips of training crops
    flips: bool = True
    #: crops drawn per frame per epoch
    repeat: int = Field(1, ge=1)
    #: demosaic of the residual (noisy) and ground-truth images
    demosaic: Literal["bilinear", "malvar"] = "bilinear"
    #: condition = ISO / iso_norm (the seed project used 6400)
    iso_norm: float = Field(6400.0, gt=0)
    #: keep only these ISOs (noisy frames); None = all
    isos: list[int] | None = None
    #: scale the ground truth to the noisy frame's mean (RawNIND exposures differ slightly)
    match_exposure: bool = True
    #: align each raw ground truth onto its noisy frame (ORB + ECC) when loading raw files
    align: bool = False
    #: drop pairs whose alignment correlation (or the packed CSV's cc) is below this
    min_cc: float | None = Field(None, ge=-1.0, le=1.0)
    #: keep decoded frames in memory (per worker); fine for the packed proxy / small sets
    cache: bool = False
    #: use at most this many noisy frames (sorted order, before the split)
    limit: int | None = Field(None, ge=1)

    @field_validator("csv")
    @classmethod
    def _csv_name(cls, v: str) -> str:
        if not v.strip() or not v.lower().endswith(".csv"):
            raise ValueError(f"must name a .csv file under root, got {v!r}")
        return v

    @field_validator("patch_size", "val_patch")
    @classmethod
    def _even(cls, v: int | None) -> int | None:
        if v is not None and v % 2:
            raise ValueError(f"must be even (a Bayer 2x2 period), got {v}")
        return v
