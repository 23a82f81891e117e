"""``vit_restorer``: the manuscript-restoration project's ViT (Bagesh-Tallolli/historic-manuscript-restoration).

Conv patch embedding (``patch_embed.proj.0``), learned position embedding
(``pos_embed``, (1, N, D)), pre-LN transformer blocks (``blocks.i.{norm1, attn.qkv,
attn.proj, norm2, mlp.fc1, mlp.fc2}``), final ``norm``, a linear decoder to
``patch_size**2 * 3`` values per patch and ``skip_fusion`` (1x1 conv over
``concat(restored, input)``). The decoder is ``patch_recon.proj`` (repository
code, ``use_simple_head=False``) or ``head`` (the Kaggle notebooks,
``use_simple_head=True``); both unpack a patch vector as ``(p1, p2, c)``.

Input and output: ``(B, 3, H, W)`` RGB in [0, 1] (no output activation).
The model is defined at ``img_size``; other sizes are handled by ``size_mode``:

* ``"interpolate"`` (default): reflect-pad to a multiple of ``patch_size``, resize
  the position embedding bicubically to the patch grid, crop back. At
  ``img_size`` this is exactly the original computation.
* ``"tile"``: reflect-pad to at least ``img_size``, run overlapping
  ``img_size x img_size`` tiles (stride ``img_size - tile_overlap``, last tile
  snapped to the border) and average them with linear ramps over the overlap.
  Every tile sees exactly what the model saw in training.
* ``"seed"``: the seed project's inference: pages whose longest side is at most
  512 px are resized (bilinear) to ``img_size``, restored and resized back;
  larger pages are cut into ``img_size`` tiles overlapping by 32 px.

Restorers built on the default modes tile at exactly ``img_size``
(capability ``native_size``). The head count is read from the seed
checkpoint's own ``config`` (``heads``/``num_heads``) when present.

Base preset: 86,433,813 parameters.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from restorekit.errors import CheckpointError
from restorekit.models.registry import register_model
from restorekit.models.spec import Capabilities, Tensors, count_indices, has_keys


class ViTAttention(nn.Module):
    """Multi-head self-attention over tokens ``(B, N, D)``."""

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"vit_restorer: embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.attn_drop = nn.Dropout(dropout)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        x = (self.attn_drop(attn) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj_drop(self.proj(x))


class ViTMLP(nn.Module):
    """fc1 -> GELU -> dropout -> fc2 -> dropout."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class ViTBlock(nn.Module):
    """Pre-LN transformer block."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ViTAttention(dim, num_heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = ViTMLP(dim, int(dim * mlp_ratio), dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """Conv patch embedding; ``proj.0`` is the conv (the seed's Sequential(conv, Rearrange))."""

    def __init__(self, patch_size: int, in_channels: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(in_channels, embed_dim, patch_size, stride=patch_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, (H/p)(W/p), D)``."""
        return self.proj(x).flatten(2).transpose(1, 2)


class PatchRecon(nn.Module):
    """Linear decoder (key ``proj``) used when ``use_simple_head=False``."""

    def __init__(self, embed_dim: int, patch_size: int, out_channels: int) -> None:
        super().__init__()
        self.proj = nn.Linear(embed_dim, patch_size * patch_size * out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class ViTRestorer(nn.Module):
    """Plain ViT restorer (see the module docstring)."""

    def __init__(
        self,
        img_size: int = 256,
        patch_size: int = 16,
        in_channels: int = 3,
        out_channels: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        dropout: float = 0.1,
        use_skip_connections: bool = True,
        use_simple_head: bool = False,
        size_mode: str = "interpolate",
        tile_overlap: int | None = None,
    ) -> None:
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"vit_restorer: img_size {img_size} is not a multiple of patch_size {patch_size}")
        if size_mode not in SIZE_MODES:
            raise ValueError(f"vit_restorer: size_mode must be one of {', '.join(SIZE_MODES)}, got {size_mode!r}")
        self.img_size = img_size
        self.patch_size = patch_size
        self.out_channels = out_channels
        self.size_mode = size_mode
        if tile_overlap is None:
            tile_overlap = SEED_TILE_OVERLAP if size_mode == "seed" else img_size // 4
        self.tile_overlap = int(tile_overlap)
        self.use_skip_connections = use_skip_connections
        self.use_simple_head = use_simple_head
        grid = img_size // patch_size
        self.patch_embed = PatchEmbed(patch_size, in_channels, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid, embed_dim))
        self.pos_drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([ViTBlock(embed_dim, num_heads, mlp_ratio, dropout) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim)
        if use_simple_head:
            self.head = nn.Linear(embed_dim, patch_size * patch_size * out_channels)
        else:
            self.patch_recon = PatchRecon(embed_dim, patch_size, out_channels)
        if use_skip_connections:
            self.skip_fusion = nn.Conv2d(in_channels + out_channels, out_channels, 1)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _pos_embed_for(self, gh: int, gw: int) -> torch.Tensor:
        g = self.img_size // self.patch_size
        if (gh, gw) == (g, g):
            return self.pos_embed
        d = self.pos_embed.shape[-1]
        pe = self.pos_embed.reshape(1, g, g, d).permute(0, 3, 1, 2)
        pe = F.interpolate(pe, size=(gh, gw), mode="bicubic", align_corners=False)
        return pe.permute(0, 2, 3, 1).reshape(1, gh * gw, d)

    def forward_native(self, x: torch.Tensor) -> torch.Tensor:
        """The seed's forward on ``(B, C, H, W)`` with H, W multiples of ``patch_size``."""
        b, _, h, w = x.shape
        p = self.patch_size
        gh, gw = h // p, w // p
        t = self.pos_drop(self.patch_embed(x) + self._pos_embed_for(gh, gw))
        for blk in self.blocks:
            t = blk(t)
        t = self.norm(t)
        t = self.head(t) if self.use_simple_head else self.patch_recon(t)
        c = self.out_channels
        y = t.reshape(b, gh, gw, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, h, w)
        if self.use_skip_connections:
            y = self.skip_fusion(torch.cat([y, x], dim=1))
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1], any size -> ``(B, 3, H, W)``."""
        h, w = int(x.shape[-2]), int(x.shape[-1])
        if (h, w) == (self.img_size, self.img_size):
            return self.forward_native(x)
        if self.size_mode == "interpolate":
            p = self.patch_size
            return self.forward_native(_pad(x, math.ceil(h / p) * p, math.ceil(w / p) * p))[:, :, :h, :w]
        if self.size_mode == "seed" and max(h, w) <= SEED_RESIZE_LIMIT:
            return self._forward_resized(x)
        return self._forward_tiled(x)

    def _forward_resized(self, x: torch.Tensor) -> torch.Tensor:
        """The seed's inference on small pages: bilinear resize to ``img_size`` (``cv2.resize``'s INTER_LINEAR,
        half-pixel centres, no antialiasing), forward, bilinear resize back to ``(H, W)``."""
        h, w = int(x.shape[-2]), int(x.shape[-1])
        n = self.img_size
        small = F.interpolate(x, size=(n, n), mode="bilinear", align_corners=False)
        y = self.forward_native(small)
        return F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)

    def _forward_tiled(self, x: torch.Tensor) -> torch.Tensor:
        h, w = int(x.shape[-2]), int(x.shape[-1])
        t = self.img_size
        xp = _pad(x, max(h, t), max(w, t))
        hp, wp = int(xp.shape[-2]), int(xp.shape[-1])
        ov = max(0, min(self.tile_overlap, t - 1))
        ys, xs = _tile_starts(hp, t, t - ov), _tile_starts(wp, t, t - ov)
        ramp = _ramp(t, ov, x.device, x.dtype)
        wgt = ramp[:, None] * ramp[None, :]
        out = x.new_zeros(x.shape[0], self.out_channels, hp, wp)
        acc = x.new_zeros(1, 1, hp, wp)
        for y0 in ys:
            for x0 in xs:
                tile = self.forward_native(xp[:, :, y0 : y0 + t, x0 : x0 + t])
                out[:, :, y0 : y0 + t, x0 : x0 + t] += tile * wgt
                acc[:, :, y0 : y0 + t, x0 : x0 + t] += wgt
        return (out / acc)[:, :, :h, :w]


def _pad(x: torch.Tensor, th: int, tw: int) -> torch.Tensor:
    """Pad ``x`` bottom/right to ``(th, tw)`` (reflect, replicate when too small to reflect)."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    ph, pw = th - h, tw - w
    if ph <= 0 and pw <= 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, max(pw, 0), 0, max(ph, 0)), mode=mode)


def _tile_starts(n: int, tile: int, stride: int) -> list[int]:
    if n <= tile:
        return [0]
    starts = list(range(0, n - tile, max(1, stride)))
    starts.append(n - tile)
    return sorted(set(starts))


def _ramp(t: int, ov: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    r = torch.ones(t, device=device, dtype=dtype)
    if ov > 0:
        edge = torch.arange(1, ov + 1, device=device, dtype=dtype) / (ov + 1)
        r[:ov] = edge
        r[t - ov :] = edge.flip(0)
    return r


#: ``size_mode`` values (see the module docstring)
SIZE_MODES = ("interpolate", "tile", "seed")
#: the seed's inference: pages up to this size (longest side, pixels) are resized to ``img_size`` ...
SEED_RESIZE_LIMIT = 512
#: ... larger pages are cut into ``img_size`` tiles overlapping by this many pixels
SEED_TILE_OVERLAP = 32

VIT_PRESETS: dict[str, dict] = {
    "tiny": {"embed_dim": 192, "depth": 12, "num_heads": 3},
    "small": {"embed_dim": 384, "depth": 12, "num_heads": 6},
    "base": {"embed_dim": 768, "depth": 12, "num_heads": 12},
    "large": {"embed_dim": 1024, "depth": 24, "num_heads": 16},
    "base-kaggle": {"embed_dim": 768, "depth": 12, "num_heads": 12, "use_simple_head": True},
}


def _detect(state: Tensors) -> bool:
    """The ViT restorer's key signature (position embedding, conv patch embedding, a linear head)."""
    return has_keys(state, "pos_embed", "patch_embed.proj.0.weight") and (
        "head.weight" in state or "patch_recon.proj.weight" in state)


#: head counts of the standard presets by width (heads cannot be read from the weights)
_VIT_HEADS = {192: 3, 384: 6, 768: 12, 1024: 16}


def _infer(state: Tensors) -> dict:
    """Image/patch size, width, depth and head type from the weights; heads from the standard presets."""
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
        "depth": count_indices(state, r"blocks\.(\d+)\.attn\.qkv\.weight"),
        "num_heads": _VIT_HEADS.get(embed_dim, max(1, embed_dim // 64)),
        "mlp_ratio": int(state["blocks.0.mlp.fc1.weight"].shape[0]) / embed_dim,
        "use_skip_connections": "skip_fusion.weight" in state,
        "use_simple_head": simple,
    }


def _from_checkpoint(extras: dict) -> dict:
    """Arguments the weights cannot reveal, from the seed checkpoint's own ``config`` entry.

    The seed saves ``config`` with ``heads`` (or ``num_heads``), ``img_size``, ``embed_dim``, ``depth``,
    ``use_skip``; only the head count is not recoverable from tensor shapes. A ``model_size`` name
    (``tiny``/``small``/``base``/``large``) gives the preset's head count when no head count is recorded.
    """
    cfg = extras.get("config")
    if not isinstance(cfg, dict):
        return {}
    for key in ("num_heads", "heads", "n_heads"):
        if key in cfg and cfg[key] is not None:
            return {"num_heads": int(cfg[key])}
    size = cfg.get("model_size")
    if isinstance(size, str) and size in VIT_PRESETS:
        return {"num_heads": int(VIT_PRESETS[size]["num_heads"])}
    return {}


def _caps(args: dict) -> Capabilities:
    if args.get("size_mode") == "seed":
        # the model resizes or tiles pages itself, exactly as the seed's inference does: hand it whole images
        return Capabilities(value_range="0,1", size_multiple=1, native_size=None, global_context=True)
    # defined at img_size: tiles of exactly that size; attention spans the whole tile
    return Capabilities(value_range="0,1", size_multiple=int(args["patch_size"]), native_size=int(args["img_size"]),
                        global_context=True)


@register_model(
    "vit_restorer",
    description="ViT restorer of the manuscript seed (base 86.43 M params); inputs in [0, 1]",
    presets=VIT_PRESETS,
    detect=_detect,
    infer=_infer,
    from_checkpoint=_from_checkpoint,
    capabilities=_caps,
)
def vit_restorer(
    img_size: int = 256,
    patch_size: int = 16,
    in_channels: int = 3,
    out_channels: int = 3,
    embed_dim: int = 768,
    depth: int = 12,
    num_heads: int = 12,
    mlp_ratio: float = 4.0,
    dropout: float = 0.1,
    use_skip_connections: bool = True,
    use_simple_head: bool = False,
    size_mode: str = "interpolate",
    tile_overlap: int | None = None,
) -> ViTRestorer:
    """Build :class:`ViTRestorer` (defaults: the base model)."""
    return ViTRestorer(
        img_size, patch_size, in_channels, out_channels, embed_dim, depth, num_heads, mlp_ratio, dropout,
        use_skip_connections, use_simple_head, size_mode, tile_overlap,
    )
