"""``nafnet_cond``: the raw-denoising project's noise-conditioned NAFNet (rymuelle/Restorer ``Cond_NAF``).

Inputs (all in [0, 1]):

* ``rggb``: ``(B, 4, h, w)`` packed Bayer mosaic at half resolution, channel
  ``2*dy + dx`` (R, G1, G2, B), black-level subtracted and normalised;
* ``cond``: ``(B, 1)`` noise condition (ISO / 6400 in the seed project);
* ``residual``: ``(B, 3, 2h, 2w)`` demosaiced copy of the noisy input (linear RGB).

Output: ``(B, 3, 2h, 2w)`` = ``residual`` + predicted full-resolution RGB residual.

Architecture (state-dict keys as in the seed's ``Restorer`` with ``rggb=True``,
wrapped in ``ModelWrapper`` whose ``model.`` prefix the loader strips):
``intro`` = 3x3 conv 4 -> 4*width + PixelShuffle(2) (to full resolution);
``conditioning_gen`` = MLP 1 -> 64 -> ``cond_output`` (32); NAF blocks whose
channel attention is ``Linear(pooled features ++ condition vector)`` (no sigmoid);
stride-2 conv down, 1x1 conv + PixelShuffle up; skips merged by a conditioned
channel attention over ``concat(up, skip)`` followed by the sum of the two halves;
``ending`` = 3x3 conv width -> 3. Channels per level come from ``chans``.
Skip merges: ``fuser="cca"`` is the seed's earlier ``CondFuser``; ``fuser="sa"``
its current one (spatial attention ``sa`` and a sigmoid channel attention over
``chan`` outputs; 16.07 M parameters with the ``rawnind-deep`` preset), recognised
from the keys. ``gamma`` (the seed ``ModelWrapper``'s plain attribute) is read
from the seed's ``config.yaml`` beside the weights or passed as an argument.
The half-resolution input is zero-padded to a multiple of ``2 ** levels`` (as in
the seed) and the output cropped back to ``(2h, 2w)``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn

from restorekit.errors import CheckpointError
from restorekit.models.layers import ChannelPool, LayerNorm2d, SimpleGate, pad_to_multiple
from restorekit.models.registry import register_model
from restorekit.models.spec import Capabilities, Tensors, blocks_per_stage, count_indices, has_keys

log = logging.getLogger(__name__)


class ConditionedChannelAttention(nn.Module):
    """``(B, C, H, W), (B, K) -> (B, C, h', w')``: Linear over [pooled features, condition] (no sigmoid)."""

    def __init__(self, dims: int, cat_dims: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dims + cat_dims, dims))
        self.pool = ChannelPool()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(x)  # (B, C, 1, 1), or (B, C, H, W) under TLC
        c = cond[:, :, None, None].expand(-1, -1, pooled.shape[2], pooled.shape[3])
        cat = torch.cat([pooled, c], dim=1).permute(0, 2, 3, 1)
        return self.mlp(cat).permute(0, 3, 1, 2)


class CondNAFBlock(nn.Module):
    """NAF block whose simplified channel attention also sees the condition vector."""

    def __init__(self, c: int, cond_chans: int, DW_Expand: int = 2, FFN_Expand: int = 2, drop_out_rate: float = 0.0) -> None:  # noqa: N803
        super().__init__()
        dw = c * DW_Expand
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        self.sca = ConditionedChannelAttention(dw // 2, cond_chans)
        self.sg = SimpleGate()
        ffn = FFN_Expand * c
        self.conv4 = nn.Conv2d(c, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, c, 1)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        self.dropout1 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
        self.dropout2 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
        self.beta = nn.Parameter(torch.zeros((1, c, 1, 1)))
        self.gamma = nn.Parameter(torch.zeros((1, c, 1, 1)))

    def forward(self, inp: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.conv1(self.norm1(inp)))
        x = self.sg(x)
        x = x * self.sca(x, cond)
        x = self.dropout1(self.conv3(x))
        y = inp + x * self.beta
        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        x = self.dropout2(x)
        return y + x * self.gamma


class CondStage(nn.Module):
    """A sequence of :class:`CondNAFBlock` sharing one condition vector (keys ``N.*`` like ``nn.Sequential``)."""

    def __init__(self, blocks: list[CondNAFBlock]) -> None:
        super().__init__()
        for i, b in enumerate(blocks):
            self.add_module(str(i), b)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        for b in self._modules.values():
            x = b(x, cond)
        return x


class CondFuser(nn.Module):
    """Skip merge (the seed's earlier variant): conditioned channel attention over ``concat(x1, x2)``, then ``x1' + x2'``."""

    def __init__(self, chan: int, cond_chan: int) -> None:
        super().__init__()
        self.cca = ConditionedChannelAttention(chan * 2, cond_chan)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x1, x2], dim=1)
        x = self.cca(x, cond) * x
        a, b = x.chunk(2, dim=1)
        return a + b


class ConditionedChannelAttentionOut(ConditionedChannelAttention):
    """:class:`ConditionedChannelAttention` with ``out_dim`` outputs (``Linear(dims + cat_dims, out_dim)``)."""

    def __init__(self, dims: int, cat_dims: int, out_dim: int) -> None:
        super().__init__(dims, cat_dims)
        self.mlp = nn.Sequential(nn.Linear(dims + cat_dims, out_dim))


class CondFuserSA(nn.Module):
    """Skip merge (the seed's current variant): ``x1 + sigmoid(cca(x)) * sa(x) * x2`` with ``x = concat(x1, x2)``.

    ``cca``: conditioned channel attention over ``2 * chan`` pooled channels giving ``chan`` weights;
    ``sa``: 3x3 conv ``2 * chan -> chan`` + sigmoid (spatial attention). Keys ``merges.N.cca.mlp.0.*``,
    ``merges.N.sa.0.*``.
    """

    def __init__(self, chan: int, cond_chan: int) -> None:
        super().__init__()
        self.cca = ConditionedChannelAttentionOut(chan * 2, cond_chan, chan)
        self.sig = nn.Sigmoid()
        self.sa = nn.Sequential(nn.Conv2d(2 * chan, chan, 3, padding=1), nn.Sigmoid())

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x1, x2], dim=1)
        return x1 + self.sig(self.cca(x, cond)) * self.sa(x) * x2


#: skip-merge variants by ``fuser`` argument
FUSERS = {"cca": CondFuser, "sa": CondFuserSA}


class CondNAFNet(nn.Module):
    """Noise-conditioned NAFNet on packed RGGB: ``(rggb, cond, residual) -> residual + predicted residual``."""

    def __init__(
        self,
        in_channels: int = 4,
        out_channels: int = 3,
        chans: Sequence[int] = (32, 64, 128, 256),
        enc_blk_nums: Sequence[int] = (2, 2, 2),
        middle_blk_num: int = 2,
        dec_blk_nums: Sequence[int] = (2, 2, 2),
        cond_input: int = 1,
        cond_output: int = 32,
        drop_out_rate: float = 0.0,
        gamma: float = 1.0,
        clip: bool = False,
        fuser: str = "cca",
    ) -> None:
        super().__init__()
        if fuser not in FUSERS:
            raise ValueError(f"nafnet_cond: fuser must be one of {', '.join(FUSERS)}, got {fuser!r}")
        chans = list(chans)
        if not (len(enc_blk_nums) == len(dec_blk_nums) and len(chans) >= len(enc_blk_nums) + 1):
            raise ValueError(
                f"nafnet_cond: need len(enc_blk_nums) == len(dec_blk_nums) and len(chans) > len(enc_blk_nums); "
                f"got chans={chans}, enc_blk_nums={list(enc_blk_nums)}, dec_blk_nums={list(dec_blk_nums)}"
            )
        width = chans[0]
        self.gamma = float(gamma)
        self.clip = bool(clip)
        self.conditioning_gen = nn.Sequential(
            nn.Linear(cond_input, 64), nn.ReLU(), nn.Dropout(drop_out_rate), nn.Linear(64, cond_output)
        )
        self.intro = nn.Sequential(nn.Conv2d(in_channels, width * 4, 3, padding=1), nn.PixelShuffle(2))
        self.ending = nn.Conv2d(width, out_channels, 3, padding=1)
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.merges = nn.ModuleList()
        self.decoders = nn.ModuleList()
        nxt = width
        for i, num in enumerate(enc_blk_nums):
            cur, nxt = chans[i], chans[i + 1]
            self.encoders.append(CondStage([CondNAFBlock(cur, cond_output, drop_out_rate=drop_out_rate) for _ in range(num)]))
            self.downs.append(nn.Conv2d(cur, nxt, 2, 2))
        self.middle_blks = CondStage([CondNAFBlock(nxt, cond_output, drop_out_rate=drop_out_rate) for _ in range(middle_blk_num)])
        n = len(enc_blk_nums)
        for i, num in enumerate(dec_blk_nums):
            cur, nxt = chans[n - i], chans[n - i - 1]
            self.ups.append(nn.Sequential(nn.Conv2d(cur, nxt * 4, 1, bias=False), nn.PixelShuffle(2)))
            self.merges.append(FUSERS[fuser](nxt, cond_output))
            self.decoders.append(CondStage([CondNAFBlock(nxt, cond_output, drop_out_rate=drop_out_rate) for _ in range(num)]))
        self.padder_size = 2 ** len(self.encoders)

    def predict_residual(self, rggb: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``(B, 4, h, w), (B, 1) -> (B, 3, 2h, 2w)``: the predicted RGB residual (the seed's ``Restorer``)."""
        c = self.conditioning_gen(cond)
        h, w = rggb.shape[-2] * 2, rggb.shape[-1] * 2
        x = self.intro(pad_to_multiple(rggb, self.padder_size, "constant"))
        encs = []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x, c)
            encs.append(x)
            x = down(x)
        x = self.middle_blks(x, c)
        for decoder, up, merge, skip in zip(self.decoders, self.ups, self.merges, encs[::-1]):
            x = merge(up(x), skip, c)
            x = decoder(x, c)
        return self.ending(x)[:, :, :h, :w]

    def forward(self, rggb: torch.Tensor, cond: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """``rggb (B,4,h,w)``, ``cond (B,1)``, ``residual (B,3,2h,2w)``, all in [0, 1] -> ``(B,3,2h,2w)``.

        With ``gamma != 1`` or ``clip`` it computes what the seed's ``ModelWrapper`` computes:
        inputs clipped to [0, 1] and raised to ``1/gamma``, output clipped and raised to ``gamma``.
        """
        if cond.dim() == 1:
            cond = cond[:, None]
        if self.clip or self.gamma != 1.0:
            rggb = rggb.clamp(0, 1) ** (1.0 / self.gamma)
            residual = residual.clamp(0, 1) ** (1.0 / self.gamma)
            return (residual + self.predict_residual(rggb, cond)).clamp(0, 1) ** self.gamma
        return residual + self.predict_residual(rggb, cond)


NAFNET_COND_PRESETS: dict[str, dict] = {
    # the seed's config.yaml run "NAF_deep"
    "rawnind-deep": {
        "chans": [32, 64, 128, 256, 256, 256],
        "enc_blk_nums": [2, 2, 2, 3, 4],
        "middle_blk_num": 12,
        "dec_blk_nums": [2, 2, 2, 2, 2],
    },
    "small": {"chans": [16, 32, 64, 128], "enc_blk_nums": [1, 1, 1], "middle_blk_num": 1, "dec_blk_nums": [1, 1, 1]},
    # contract tests (tests/models/test_contract.py)
    "tiny": {"chans": [8, 16, 32], "enc_blk_nums": [1, 1], "middle_blk_num": 1, "dec_blk_nums": [1, 1], "cond_output": 8},
}


def _detect(state: Tensors) -> bool:
    """The raw Restorer's key signature: a conditioning MLP, a PixelShuffle intro and an ending conv."""
    return has_keys(state, "conditioning_gen.0.weight", "intro.0.weight", "ending.weight")


def _infer(state: Tensors) -> dict:
    """Channels per level, block counts and conditioning sizes from tensor shapes."""
    n_down = count_indices(state, r"downs\.(\d+)\.weight")
    n_up = count_indices(state, r"ups\.(\d+)\.0\.weight")
    width = int(state["intro.0.weight"].shape[0]) // 4
    chans = [width] + [int(state[f"downs.{i}.weight"].shape[0]) for i in range(n_down)]
    return {
        "in_channels": int(state["intro.0.weight"].shape[1]),
        "out_channels": int(state["ending.weight"].shape[0]),
        "chans": chans,
        "enc_blk_nums": blocks_per_stage(state, "encoders", n_down, "conv1.weight"),
        "middle_blk_num": count_indices(state, r"middle_blks\.(\d+)\.conv1\.weight"),
        "dec_blk_nums": blocks_per_stage(state, "decoders", n_up, "conv1.weight"),
        "cond_input": int(state["conditioning_gen.0.weight"].shape[1]),
        "cond_output": int(state["conditioning_gen.3.weight"].shape[0]),
        "fuser": "sa" if "merges.0.sa.0.weight" in state else "cca",
    }


#: names of the seed's config file written beside its weights
SIDECAR_NAMES = ("config.yaml", "config.yml")


def _from_sidecar(weights: Path) -> dict:
    """``gamma`` (and the wrapper's clipping) from the seed's ``config.yaml`` beside the weights, when present.

    ``ModelWrapper.gamma`` is a plain attribute, not a weight: the seed's config holds it at the top level or
    under ``model_params``. The value used is logged and recorded in the model card's arguments.
    """
    for name in SIDECAR_NAMES:
        cfg_path = weights.parent / name
        if not cfg_path.is_file():
            continue
        import yaml

        try:
            cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise CheckpointError(f"'{cfg_path}': cannot read the seed config beside '{weights.name}': {exc}") from exc
        if not isinstance(cfg, dict):
            return {}
        params = cfg.get("model_params") if isinstance(cfg.get("model_params"), dict) else {}
        gamma = params.get("gamma", cfg.get("gamma"))
        if gamma is None:
            return {}
        log.info("nafnet_cond: gamma %s read from %s", gamma, cfg_path)
        return {"gamma": float(gamma), "clip": True}
    return {}


def _caps(args: dict) -> Capabilities:
    # inputs: packed RGGB at half resolution, the noise condition, a full-resolution RGB residual; the size
    # multiple is in full-resolution pixels (the packed input is padded to 2 ** levels)
    return Capabilities(value_range="0,1", size_multiple=2 * 2 ** len(list(args["enc_blk_nums"])),
                        inputs=("rggb", "cond", "residual"), tlc=True, global_context=True,
                        channels_last={"cpu": False, "cuda": True, "mps": False})


@register_model(
    "nafnet_cond",
    description="noise-conditioned NAFNet on packed RGGB (raw denoising seed); forward(rggb, cond, residual), [0, 1]",
    presets=NAFNET_COND_PRESETS,
    detect=_detect,
    infer=_infer,
    capabilities=_caps,
    from_sidecar=_from_sidecar,
    priority=2,
)
def nafnet_cond(
    in_channels: int = 4,
    out_channels: int = 3,
    chans: Sequence[int] = (32, 64, 128, 256),
    enc_blk_nums: Sequence[int] = (2, 2, 2),
    middle_blk_num: int = 2,
    dec_blk_nums: Sequence[int] = (2, 2, 2),
    cond_input: int = 1,
    cond_output: int = 32,
    drop_out_rate: float = 0.0,
    gamma: float = 1.0,
    clip: bool = False,
    fuser: str = "cca",
) -> CondNAFNet:
    """Build :class:`CondNAFNet` (``fuser``: ``"cca"`` the seed's earlier skip merge, ``"sa"`` its current one)."""
    return CondNAFNet(
        in_channels, out_channels, list(chans), list(enc_blk_nums), middle_blk_num, list(dec_blk_nums),
        cond_input, cond_output, drop_out_rate, gamma, clip, fuser,
    )
