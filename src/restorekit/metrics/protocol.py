"""Named measurement protocols.

A :class:`Protocol` fixes everything that changes a PSNR/SSIM number between
papers: the channel measured (RGB or BT.601 luma "Y" as MATLAB/BasicSR compute
it), the border cropped away, and whether both images are rounded to 8 bits
first. Its :attr:`Protocol.name` travels with every reported number.

Spellings accepted by :func:`resolve_protocol`::

    "rgb"            RGB, [0,1], no crop, no rounding (the default)
    "skimage"        scikit-image's *default* SSIM: 7x7 uniform window, sample covariance
                     (what the seed projects report); "skimage-y" on the Y channel
    "y"              BT.601 Y channel (16..235 scale, MATLAB-compatible)
    "basicsr"        BasicSR style: images rounded to 8 bits, RGB
    "basicsr-y"      BasicSR style on the Y channel
    "y+crop4"        any of the above plus "+crop<N>" and/or "+u8" (8-bit rounding)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from restorekit.errors import ConfigError

CHANNELS = ("rgb", "y")
STYLES = ("skimage", "basicsr")
#: SSIM windows: "gaussian" (11x11, sigma 1.5, population covariance) or "uniform" (scikit-image's default:
#: 7x7 box, sample covariance)
WINDOWS = ("gaussian", "uniform")


@dataclass(frozen=True)
class Protocol:
    """How images are prepared before PSNR/SSIM.

    channel: "rgb" (mean over the three channels) or "y" (BT.601 luma, 16..235 scale as MATLAB's rgb2ycbcr).
    crop_border: pixels removed from every side before measuring.
    quantize: round both images to 8 bits (clip to [0,1], round(x*255)/255) before measuring.
    style: "skimage" (float images as given) or "basicsr" (per channel on the 8-bit grid; implies quantize).
    window: "gaussian" (default): the Gaussian-window SSIM (11x11, sigma 1.5, K1 0.01, K2 0.03, population
    covariance, valid filtering), numerically the same as scikit-image's ``structural_similarity(gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False)`` and BasicSR's ``calculate_ssim``; "uniform": scikit-image's *default*
    ``structural_similarity(target, pred, channel_axis=-1, data_range=1)`` (7x7 box window, sample covariance,
    3-pixel border of the SSIM map discarded), the SSIM the seed projects report (protocol name ``skimage``).
    """

    channel: str = "rgb"
    crop_border: int = 0
    quantize: bool = False
    style: str = "skimage"
    window: str = "gaussian"

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ConfigError(f"protocol channel must be one of {CHANNELS}, got {self.channel!r}")
        if self.style not in STYLES:
            raise ConfigError(f"protocol style must be one of {STYLES}, got {self.style!r}")
        if self.window not in WINDOWS:
            raise ConfigError(f"protocol window must be one of {WINDOWS}, got {self.window!r}")
        if self.window == "uniform" and self.style != "skimage":
            raise ConfigError("protocol window 'uniform' (scikit-image's default SSIM) needs style 'skimage'")
        if int(self.crop_border) < 0:
            raise ConfigError(f"protocol crop_border must be >= 0, got {self.crop_border}")
        if self.style == "basicsr" and not self.quantize:
            object.__setattr__(self, "quantize", True)

    @property
    def name(self) -> str:
        """Canonical name, e.g. ``"rgb"``, ``"y+crop4"``, ``"basicsr-y+crop4"``, ``"rgb+u8"``."""
        if self.window == "uniform":
            base = "skimage" if self.channel == "rgb" else "skimage-y"
        else:
            base = self.channel if self.style == "skimage" else f"basicsr-{self.channel}"
        if self.quantize and self.style == "skimage":
            base += "+u8"
        if self.crop_border:
            base += f"+crop{int(self.crop_border)}"
        return base

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description including the name."""
        return {"name": self.name, **asdict(self)}


def resolve_protocol(spec: "str | Protocol | None" = None, *, crop_border: int | None = None) -> Protocol:
    """Turn a name (see module doc) or a :class:`Protocol` into a Protocol; ``crop_border`` overrides."""
    if spec is None:
        proto = Protocol()
    elif isinstance(spec, Protocol):
        proto = spec
    elif isinstance(spec, str):
        parts = [p.strip().lower() for p in spec.split("+") if p.strip()]
        if not parts:
            raise ConfigError("protocol name is empty (expected rgb, y, basicsr, basicsr-y, skimage, skimage-y)")
        head, mods = parts[0], parts[1:]
        bases = {
            "rgb": Protocol(),
            "y": Protocol(channel="y"),
            "basicsr": Protocol(style="basicsr"),
            "basicsr-rgb": Protocol(style="basicsr"),
            "basicsr-y": Protocol(channel="y", style="basicsr"),
            "skimage": Protocol(window="uniform"),
            "skimage-rgb": Protocol(window="uniform"),
            "skimage-y": Protocol(channel="y", window="uniform"),
        }
        if head not in bases:
            raise ConfigError(f"unknown protocol {spec!r} (expected one of {sorted(bases)}, optionally +cropN, +u8)")
        proto = bases[head]
        for mod in mods:
            if mod == "u8":
                proto = replace(proto, quantize=True)
            elif mod.startswith("crop") and mod[4:].isdigit():
                proto = replace(proto, crop_border=int(mod[4:]))
            else:
                raise ConfigError(f"protocol {spec!r}: unknown modifier '+{mod}' (expected +cropN or +u8)")
    else:
        raise ConfigError(f"protocol must be a name or Protocol, got {type(spec).__name__}")
    if crop_border is not None:
        proto = replace(proto, crop_border=int(crop_border))
    return proto
