"""Bayer mosaics: packing to four half-resolution planes, demosaicing, tone encodings.

Conventions used throughout :mod:`restorekit.raw`:

* a *mosaic* is an ``(H, W)`` float32 array (or ``(..., H, W)`` tensor) of
  black-subtracted sensor values normalised by ``white - black`` (so nominally
  in [0, 1]), always in **RGGB** order: ``R`` at (0, 0), ``G1`` at (0, 1),
  ``G2`` at (1, 0), ``B`` at (1, 1); ``H`` and ``W`` are even;
* a *packed* mosaic is ``(..., 4, H/2, W/2)`` with channel ``2*dy + dx``
  (R, G1, G2, B);
* demosaiced images are ``(H, W, 3)`` float32 **camera-linear RGB** (no white
  balance, no colour matrix): the domain the raw model is trained in.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from restorekit.errors import DataError

#: channel order of packed mosaics
PACKED_CHANNELS = ("R", "G1", "G2", "B")


def _check_even(h: int, w: int, what: str = "mosaic") -> None:
    if h % 2 or w % 2:
        raise DataError(f"{what} must have even height and width for RGGB packing, got {h}x{w}")


def pack_rggb(mosaic: Any) -> Any:
    """``(..., H, W)`` RGGB mosaic -> ``(..., 4, H/2, W/2)`` (channel = 2*dy + dx).

    Works on NumPy arrays and torch tensors (returns the same kind).
    """
    h, w = mosaic.shape[-2], mosaic.shape[-1]
    _check_even(h, w)
    planes = [mosaic[..., dy::2, dx::2] for dy in (0, 1) for dx in (0, 1)]
    if isinstance(mosaic, np.ndarray):
        return np.ascontiguousarray(np.stack(planes, axis=-3))
    import torch

    return torch.stack(planes, dim=-3).contiguous()


def unpack_rggb(packed: Any) -> Any:
    """``(..., 4, h, w)`` packed planes -> ``(..., 2h, 2w)`` RGGB mosaic (inverse of :func:`pack_rggb`)."""
    if packed.shape[-3] != 4:
        raise DataError(f"packed mosaic must have 4 channels (R, G1, G2, B), got shape {tuple(packed.shape)}")
    h, w = packed.shape[-2], packed.shape[-1]
    lead = tuple(packed.shape[:-3])
    if isinstance(packed, np.ndarray):
        out = np.empty(lead + (2 * h, 2 * w), dtype=packed.dtype)
    else:
        import torch

        out = torch.empty(lead + (2 * h, 2 * w), dtype=packed.dtype, device=packed.device)
    for c in range(4):
        dy, dx = divmod(c, 2)
        out[..., dy::2, dx::2] = packed[..., c, :, :]
    return out


def mosaic_rgb(rgb: np.ndarray) -> np.ndarray:
    """Sample an ``(H, W, 3)`` RGB image on an RGGB pattern -> ``(H, W)`` mosaic (H, W even)."""
    h, w = rgb.shape[:2]
    _check_even(h, w, "image")
    m = np.empty((h, w), dtype=np.float32)
    m[0::2, 0::2] = rgb[0::2, 0::2, 0]
    m[0::2, 1::2] = rgb[0::2, 1::2, 1]
    m[1::2, 0::2] = rgb[1::2, 0::2, 1]
    m[1::2, 1::2] = rgb[1::2, 1::2, 2]
    return m


def cfa_masks(h: int, w: int) -> np.ndarray:
    """``(3, H, W)`` float32 masks of where R, G and B are sampled on an RGGB mosaic."""
    masks = np.zeros((3, h, w), dtype=np.float32)
    masks[0, 0::2, 0::2] = 1
    masks[1, 0::2, 1::2] = 1
    masks[1, 1::2, 0::2] = 1
    masks[2, 1::2, 1::2] = 1
    return masks


def _filter(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    import cv2

    # BORDER_REFLECT_101 mirrors about the edge pixel, which keeps each pixel's CFA
    # colour (index -k maps to +k: same parity), so borders need no special case.
    return cv2.filter2D(img, cv2.CV_32F, kernel.astype(np.float32), borderType=cv2.BORDER_REFLECT_101)


def demosaic_bilinear(mosaic: np.ndarray) -> np.ndarray:
    """Bilinear demosaic of an ``(H, W)`` RGGB mosaic -> ``(H, W, 3)`` float32 (same linear scale)."""
    m = np.ascontiguousarray(mosaic, dtype=np.float32)
    h, w = m.shape
    _check_even(h, w)
    masks = cfa_masks(h, w)
    k_g = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], np.float32) / 4.0
    k_rb = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4.0
    out = np.empty((h, w, 3), np.float32)
    out[..., 0] = _filter(m * masks[0], k_rb)
    out[..., 1] = _filter(m * masks[1], k_g)
    out[..., 2] = _filter(m * masks[2], k_rb)
    return out


# Malvar-He-Cutler (ICASSP 2004) gradient-corrected linear interpolation kernels (x 1/8).
_MHC_G_AT_RB = np.array(
    [[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0], [0, 0, -1, 0, 0]], np.float32
) / 8.0
_MHC_RB_AT_G_ROW = np.array(  # R at a green pixel of an R row (or B at a green of a B row)
    [[0, 0, 0.5, 0, 0], [0, -1, 0, -1, 0], [-1, 4, 5, 4, -1], [0, -1, 0, -1, 0], [0, 0, 0.5, 0, 0]], np.float32
) / 8.0
_MHC_RB_AT_G_COL = _MHC_RB_AT_G_ROW.T.copy()
_MHC_RB_AT_BR = np.array(
    [[0, 0, -1.5, 0, 0], [0, 2, 0, 2, 0], [-1.5, 0, 6, 0, -1.5], [0, 2, 0, 2, 0], [0, 0, -1.5, 0, 0]], np.float32
) / 8.0


def demosaic_malvar(mosaic: np.ndarray) -> np.ndarray:
    """Malvar-He-Cutler demosaic of an ``(H, W)`` RGGB mosaic -> ``(H, W, 3)`` float32 (not clipped)."""
    m = np.ascontiguousarray(mosaic, dtype=np.float32)
    h, w = m.shape
    _check_even(h, w)
    g_at_rb = _filter(m, _MHC_G_AT_RB)
    at_g_row = _filter(m, _MHC_RB_AT_G_ROW)
    at_g_col = _filter(m, _MHC_RB_AT_G_COL)
    at_br = _filter(m, _MHC_RB_AT_BR)
    r = m.copy()
    g = m.copy()
    b = m.copy()
    # R sites (0,0): G and B interpolated
    g[0::2, 0::2] = g_at_rb[0::2, 0::2]
    b[0::2, 0::2] = at_br[0::2, 0::2]
    # B sites (1,1)
    g[1::2, 1::2] = g_at_rb[1::2, 1::2]
    r[1::2, 1::2] = at_br[1::2, 1::2]
    # G1 sites (0,1): R row, B column
    r[0::2, 1::2] = at_g_row[0::2, 1::2]
    b[0::2, 1::2] = at_g_col[0::2, 1::2]
    # G2 sites (1,0): B row, R column
    r[1::2, 0::2] = at_g_col[1::2, 0::2]
    b[1::2, 0::2] = at_g_row[1::2, 0::2]
    return np.stack([r, g, b], axis=-1)


DEMOSAICERS = {"bilinear": demosaic_bilinear, "malvar": demosaic_malvar}


def demosaic(mosaic: np.ndarray, method: str = "bilinear") -> np.ndarray:
    """Demosaic an ``(H, W)`` RGGB mosaic with ``method`` ("bilinear" or "malvar") -> ``(H, W, 3)``."""
    try:
        fn = DEMOSAICERS[method]
    except KeyError:
        raise DataError(f"unknown demosaic method '{method}'; choose one of {', '.join(DEMOSAICERS)}") from None
    return fn(mosaic)


# ----------------------------------------------------------------------------------- tone encodings
def gamma_encode(x: np.ndarray, gamma: float = 2.2) -> np.ndarray:
    """Linear [0, 1] -> ``x ** (1/gamma)`` (the encoding of the JPEG proxy and of the losses)."""
    return np.power(np.clip(x, 0.0, 1.0), 1.0 / gamma).astype(np.float32)


def gamma_decode(x: np.ndarray, gamma: float = 2.2) -> np.ndarray:
    """Inverse of :func:`gamma_encode`: ``x ** gamma`` on [0, 1]."""
    return np.power(np.clip(x, 0.0, 1.0), gamma).astype(np.float32)


def srgb_encode(x: np.ndarray) -> np.ndarray:
    """Linear RGB [0, 1] -> sRGB-encoded [0, 1] (IEC 61966-2-1 curve)."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def srgb_decode(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded [0, 1] -> linear RGB [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, np.power((x + 0.055) / 1.055, 2.4)).astype(np.float32)


def render_srgb(camera_rgb: np.ndarray, wb: np.ndarray, cam_to_srgb: np.ndarray, *, encode: bool = True) -> np.ndarray:
    """Camera-linear ``(H, W, 3)`` -> display sRGB: white balance ``wb`` (R, G, B gains),
    3x3 colour matrix ``cam_to_srgb`` (rows sum to 1 keep white neutral), clip, optional sRGB curve."""
    x = camera_rgb.astype(np.float32) * np.asarray(wb, np.float32)[None, None, :]
    x = np.clip(x, 0.0, 1.0)  # saturated highlights stay white after the matrix
    x = x @ np.asarray(cam_to_srgb, np.float32).T
    x = np.clip(x, 0.0, 1.0)
    return srgb_encode(x) if encode else x.astype(np.float32)


# ----------------------------------------------------------------------------------- colour spaces
#: XYZ (D65) -> linear Rec. 2020 (ITU-R BT.2020 primaries), the seed project's ``lin_rec2020`` matrix
XYZ_TO_LIN_REC2020 = np.array(
    [[1.71666343, -0.35567332, -0.25336809], [-0.66667384, 1.61645574, 0.0157683], [0.01764248, -0.04277698, 0.94224328]],
    dtype=np.float64,
)
#: raw colour spaces a model can work in: "camera" (camera-linear RGB, no matrix) or "lin_rec2020"
COLOR_SPACES = ("camera", "lin_rec2020")


def camera_to_space_matrix(xyz_to_cam: np.ndarray, space: str = "lin_rec2020") -> np.ndarray:
    """3x3 matrix camera RGB -> ``space`` from the camera's XYZ -> camera matrix (rawpy's ``rgb_xyz_matrix[:3]``).

    ``lin_rec2020``: ``XYZ_TO_LIN_REC2020 @ inv(xyz_to_cam)`` exactly as the seed's
    RawHandler builds it (no white balance, no row normalisation); ``camera``: identity.
    Raises DataError for an unknown space or a singular / non-finite matrix.
    """
    if space == "camera":
        return np.eye(3, dtype=np.float64)
    if space != "lin_rec2020":
        raise DataError(f"unknown raw colour space '{space}'; choose one of {', '.join(COLOR_SPACES)}")
    m = np.asarray(xyz_to_cam, np.float64)[:3, :3]
    if m.shape != (3, 3) or not np.isfinite(m).all() or abs(float(np.linalg.det(m))) < 1e-12:
        raise DataError(f"the camera's XYZ -> camera colour matrix is missing or singular ({m.tolist()}); "
                        "use color_space 'camera'")
    return XYZ_TO_LIN_REC2020 @ np.linalg.inv(m)


def rggb_colour_matrix(transform: np.ndarray) -> np.ndarray:
    """The 4x4 matrix applying a 3x3 RGB ``transform`` to packed (R, G1, G2, B) quads.

    Each green site keeps its own green (``G1' = t10 R + t11 G1 + t12 B``) and the
    red/blue rows take the mean of both greens, as the seed's ``transform_colorspace_to_rggb``.
    """
    t = np.asarray(transform, np.float64)
    return np.array(
        [
            [t[0, 0], t[0, 1] / 2, t[0, 1] / 2, t[0, 2]],
            [t[1, 0], t[1, 1], 0.0, t[1, 2]],
            [t[1, 0], 0.0, t[1, 1], t[1, 2]],
            [t[2, 0], t[2, 1] / 2, t[2, 1] / 2, t[2, 2]],
        ],
        dtype=np.float64,
    )


def mosaic_to_space(mosaic: np.ndarray, transform: np.ndarray, *, clip: bool = True) -> np.ndarray:
    """Apply a camera -> colour-space 3x3 ``transform`` to an ``(H, W)`` RGGB mosaic (per 2x2 quad).

    Returns an ``(H, W)`` float32 RGGB mosaic in the target space (clipped to [0, 1]
    by default, like the seed's ``apply_colorspace_transform(clip=True)``).
    """
    packed = pack_rggb(np.ascontiguousarray(mosaic, np.float32)).astype(np.float64)
    m4 = rggb_colour_matrix(transform)
    out = np.einsum("ij,jhw->ihw", m4, packed)
    if clip:
        out = np.clip(out, 0.0, 1.0)
    return unpack_rggb(out.astype(np.float32))


def rgb_to_space(rgb: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Apply a 3x3 colour ``transform`` to an ``(H, W, 3)`` image -> ``(H, W, 3)`` float32 (not clipped).

    With ``np.linalg.inv(transform)`` this maps a result back to camera RGB.
    """
    return (np.asarray(rgb, np.float64) @ np.asarray(transform, np.float64).T).astype(np.float32)


def xyz_to_cam_matrix(raw: Any) -> np.ndarray:
    """The XYZ -> camera 3x3 matrix of a :class:`~restorekit.raw.io.RawImage`.

    LibRaw's ``rgb_xyz_matrix`` (the camera's Adobe coefficients, what the seed's
    RawHandler inverts) when the file has one; otherwise (DNGs, whose ColorMatrix
    LibRaw folds into ``color_matrix``) ``inv(sRGB->XYZ @ cam_to_srgb)``.
    """
    m = raw.extra.get("rgb_xyz_matrix") if getattr(raw, "extra", None) else None
    if m is None and getattr(raw, "path", ""):
        try:
            import rawpy

            with rawpy.imread(str(raw.path)) as r:
                m = np.array(r.rgb_xyz_matrix, np.float64)[:3, :3]
        except Exception:  # noqa: BLE001 - any LibRaw failure: fall back to the colour matrix
            m = None
    if m is None or not np.isfinite(m).all() or np.abs(m).sum() == 0:
        from restorekit.raw.io import SRGB_TO_XYZ

        m = np.linalg.inv(SRGB_TO_XYZ @ np.asarray(raw.cam_to_srgb, np.float64))
    return np.asarray(m, np.float64)
