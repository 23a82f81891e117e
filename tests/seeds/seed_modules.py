"""The seed projects' modules, re-implemented from their write-ups and public code (not from restorekit's models).

Used to write checkpoints exactly as each seed writes them, with the seeds' own module layout and key names.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# ----------------------------------------------------------------------------- deblurring U-Net (AndreiSobo)


class DeblurConvBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.norm1 = nn.GroupNorm(8, out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.norm2 = nn.GroupNorm(8, out_ch)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.norm1(self.conv1(x)))
        return self.relu(self.norm2(self.conv2(x)))


class DeblurUpBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                nn.Conv2d(in_ch, out_ch, 3, padding=1))
        self.conv = DeblurConvBlock(out_ch * 2, out_ch)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        if x.shape[-2:] != skip.shape[-2:]:
            skip = F.interpolate(skip, size=x.shape[-2:], mode="nearest")
        return self.conv(torch.cat([x, skip], dim=1))


class SeedDeblurUNet(nn.Module):
    def __init__(self, in_ch: int = 3, out_ch: int = 3, base_ch: int = 32) -> None:
        super().__init__()
        c = base_ch
        self.enc1 = DeblurConvBlock(in_ch, c)
        self.enc2 = DeblurConvBlock(c, c * 2)
        self.enc3 = DeblurConvBlock(c * 2, c * 4)
        self.enc4 = DeblurConvBlock(c * 4, c * 8)
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = DeblurConvBlock(c * 8, c * 16)
        self.up4 = DeblurUpBlock(c * 16, c * 8)
        self.up3 = DeblurUpBlock(c * 8, c * 4)
        self.up2 = DeblurUpBlock(c * 4, c * 2)
        self.up1 = DeblurUpBlock(c * 2, c)
        self.final = nn.Conv2d(c, out_ch, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        e3 = self.enc3(self.pool(e2))
        e4 = self.enc4(self.pool(e3))
        b = self.bottleneck(self.pool(e4))
        return self.final(self.up1(self.up2(self.up3(self.up4(b, e4), e3), e2), e1))


# ----------------------------------------------------------------------------- manuscript ViT (Bagesh-Tallolli)


class SeedPatchEmbedding(nn.Module):
    def __init__(self, img_size: int, patch_size: int, in_channels: int, embed_dim: int) -> None:
        super().__init__()
        self.n_patches = (img_size // patch_size) ** 2
        self.proj = nn.Sequential(nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(x)  # Rearrange('b c h w -> b (h w) c')
        b, c, h, w = y.shape
        return y.permute(0, 2, 3, 1).reshape(b, h * w, c)


class SeedMHA(nn.Module):
    def __init__(self, embed_dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(embed_dim, embed_dim * 3)
        self.proj = nn.Linear(embed_dim, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class SeedMLP(nn.Module):
    def __init__(self, embed_dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SeedBlock(nn.Module):
    def __init__(self, embed_dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dim)
        self.attn = SeedMHA(embed_dim, num_heads)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.mlp = SeedMLP(embed_dim, int(embed_dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SeedPatchRecon(nn.Module):
    def __init__(self, img_size: int, patch_size: int, embed_dim: int, out_channels: int) -> None:
        super().__init__()
        self.g = img_size // patch_size
        self.p = patch_size
        self.c = out_channels
        self.proj = nn.Linear(embed_dim, patch_size * patch_size * out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return unpatch(self.proj(x), self.g, self.p, self.c)


def unpatch(x: torch.Tensor, g: int, p: int, c: int) -> torch.Tensor:
    """einops 'b (h w) (p1 p2 c) -> b c (h p1) (w p2)'."""
    b = x.shape[0]
    return x.reshape(b, g, g, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, g * p, g * p)


class SeedViTRestorer(nn.Module):
    """``kaggle=True``: the Kaggle notebooks' decoder named ``head``; else the repository's ``patch_recon``."""

    def __init__(self, img_size: int = 256, patch_size: int = 16, embed_dim: int = 768, depth: int = 12,
                 num_heads: int = 12, mlp_ratio: float = 4.0, use_skip: bool = True, kaggle: bool = False) -> None:
        super().__init__()
        self.kaggle = kaggle
        self.g, self.p = img_size // patch_size, patch_size
        self.use_skip = use_skip
        self.patch_embed = SeedPatchEmbedding(img_size, patch_size, 3, embed_dim)
        self.pos_embed = nn.Parameter(torch.randn(1, self.patch_embed.n_patches, embed_dim) * 0.02)
        self.blocks = nn.ModuleList([SeedBlock(embed_dim, num_heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim)
        if kaggle:
            self.head = nn.Linear(embed_dim, patch_size * patch_size * 3)
        else:
            self.patch_recon = SeedPatchRecon(img_size, patch_size, embed_dim, 3)
        if use_skip:
            self.skip_fusion = nn.Conv2d(6, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inp = x
        t = self.patch_embed(x) + self.pos_embed
        for blk in self.blocks:
            t = blk(t)
        t = self.norm(t)
        y = unpatch(self.head(t), self.g, self.p, 3) if self.kaggle else self.patch_recon(t)
        if self.use_skip:
            y = self.skip_fusion(torch.cat([y, inp], dim=1))
        return y


# ----------------------------------------------------------------------------- KD student (beingdhruvv)


class StudentConvBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class SeedStudentUNet(nn.Module):
    """The seed's ``UNet``: 3 pooling levels for any depth >= 3, input padded to a multiple of 16."""

    def __init__(self, base_filters: int = 64, depth: int = 3) -> None:
        super().__init__()
        f = base_filters
        self.enc1 = StudentConvBlock(3, f)
        self.enc2 = StudentConvBlock(f, f * 2)
        self.enc3 = StudentConvBlock(f * 2, f * 4) if depth >= 3 else None
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = StudentConvBlock(f * 4 if depth >= 3 else f * 2, f * 8)
        self.up3 = nn.ConvTranspose2d(f * 8, f * 4, 2, stride=2) if depth >= 3 else None
        self.dec3 = StudentConvBlock(f * 8, f * 4) if depth >= 3 else None
        self.up2 = nn.ConvTranspose2d(f * 4 if depth >= 3 else f * 8, f * 2, 2, stride=2)
        self.dec2 = StudentConvBlock(f * 4, f * 2)
        self.up1 = nn.ConvTranspose2d(f * 2, f, 2, stride=2)
        self.dec1 = StudentConvBlock(f * 2, f)
        self.final = nn.Conv2d(f, 3, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.size()
        x = F.pad(x, (0, (16 - w % 16) % 16, 0, (16 - h % 16) % 16), mode="reflect")
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        if self.enc3 is not None:
            e3 = self.enc3(self.pool(e2))
            b = self.bottleneck(self.pool(e3))
            d3 = self.dec3(torch.cat([self.up3(b), e3], dim=1))
            d2 = self.dec2(torch.cat([self.up2(d3), e2], dim=1))
        else:
            b = self.bottleneck(self.pool(e2))
            d2 = self.dec2(torch.cat([self.up2(b), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.final(d1)[:, :, :h, :w]


# ----------------------------------------------------------------------------- raw Restorer (rymuelle)


class SeedLayerNorm2d(nn.Module):
    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / torch.sqrt(var + self.eps)
        return self.weight.view(1, -1, 1, 1) * y + self.bias.view(1, -1, 1, 1)


class SeedSimpleGate(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class SeedCCA(nn.Module):
    def __init__(self, dims: int, cat_dims: int, out_dim: int = 0) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dims + cat_dims, out_dim or dims))
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor, conditioning: torch.Tensor) -> torch.Tensor:
        pool = self.pool(x)
        cat = torch.cat([pool, conditioning.unsqueeze(-1).unsqueeze(-1)], dim=1).permute(0, 2, 3, 1)
        return self.mlp(cat).permute(0, 3, 1, 2)


class SeedCondFuserOld(nn.Module):
    def __init__(self, chan: int, cond_chan: int = 1) -> None:
        super().__init__()
        self.cca = SeedCCA(chan * 2, cond_chan)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x1, x2], dim=1)
        x = self.cca(x, cond) * x
        a, b = x.chunk(2, dim=1)
        return a + b


class SeedCondFuser(nn.Module):
    """The current variant: spatial attention ``sa`` and a channel attention over ``chan`` outputs."""

    def __init__(self, chan: int, cond_chan: int = 1) -> None:
        super().__init__()
        self.cca = SeedCCA(chan * 2, cond_chan, out_dim=chan)
        self.sig = nn.Sigmoid()
        self.sa = nn.Sequential(nn.Conv2d(2 * chan, chan, 3, padding=1), nn.Sigmoid())

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x1, x2], dim=1)
        return x1 + self.sig(self.cca(x, cond)) * self.sa(x) * x2


class SeedNAFBlock0(nn.Module):
    def __init__(self, c: int, cond_chans: int) -> None:
        super().__init__()
        dw = c * 2
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        self.sca = SeedCCA(dw // 2, cond_chans)
        self.sg = SeedSimpleGate()
        self.conv4 = nn.Conv2d(c, 2 * c, 1)
        self.conv5 = nn.Conv2d(c, c, 1)
        self.norm1 = SeedLayerNorm2d(c)
        self.norm2 = SeedLayerNorm2d(c)
        self.beta = nn.Parameter(torch.randn(1, c, 1, 1) * 0.1)
        self.gamma = nn.Parameter(torch.randn(1, c, 1, 1) * 0.1)

    def forward(self, inp: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x0, cond = inp
        x = self.sg(self.conv2(self.conv1(self.norm1(x0))))
        x = self.conv3(x * self.sca(x, cond))
        y = x0 + x * self.beta
        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        return (y + x * self.gamma, cond)


class SeedRestorer(nn.Module):
    def __init__(self, chans: list[int], enc_blk_nums: list[int], middle_blk_num: int, dec_blk_nums: list[int],
                 in_channels: int = 4, out_channels: int = 3, cond_input: int = 1, cond_output: int = 32,
                 new_fuser: bool = True) -> None:
        super().__init__()
        width = chans[0]
        self.conditioning_gen = nn.Sequential(nn.Linear(cond_input, 64), nn.ReLU(), nn.Dropout(0.0),
                                              nn.Linear(64, cond_output))
        self.intro = nn.Sequential(nn.Conv2d(in_channels, width * 4, 3, padding=1), nn.PixelShuffle(2))
        self.ending = nn.Conv2d(width, out_channels, 3, padding=1)
        self.encoders, self.decoders = nn.ModuleList(), nn.ModuleList()
        self.ups, self.downs, self.merges = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for i, num in enumerate(enc_blk_nums):
            self.encoders.append(nn.Sequential(*[SeedNAFBlock0(chans[i], cond_output) for _ in range(num)]))
            self.downs.append(nn.Conv2d(chans[i], chans[i + 1], 2, 2))
        self.middle_blks = nn.Sequential(*[SeedNAFBlock0(chans[len(enc_blk_nums)], cond_output)
                                           for _ in range(middle_blk_num)])
        fuser = SeedCondFuser if new_fuser else SeedCondFuserOld
        for i, num in enumerate(dec_blk_nums):
            cur, nxt = chans[-i - 1], chans[-i - 2]
            self.ups.append(nn.Sequential(nn.Conv2d(cur, nxt * 4, 1, bias=False), nn.PixelShuffle(2)))
            self.merges.append(fuser(nxt, cond_chan=cond_output))
            self.decoders.append(nn.Sequential(*[SeedNAFBlock0(nxt, cond_output) for _ in range(num)]))
        self.padder_size = 2 ** len(self.encoders)

    def forward(self, inp: torch.Tensor, cond_in: torch.Tensor) -> torch.Tensor:
        cond = self.conditioning_gen(cond_in)
        _, _, h, w = inp.shape
        hh, ww = 2 * h, 2 * w
        ps = self.padder_size
        inp = F.pad(inp, (0, (ps - w % ps) % ps, 0, (ps - h % ps) % ps))
        x = self.intro(inp)
        encs = []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder((x, cond))[0]
            encs.append(x)
            x = down(x)
        x = self.middle_blks((x, cond))[0]
        for decoder, up, merge, skip in zip(self.decoders, self.ups, self.merges, encs[::-1]):
            x = merge(up(x), skip, cond)
            x = decoder((x, cond))[0]
        return self.ending(x)[:, :, :hh, :ww]


class SeedModelWrapper(nn.Module):
    def __init__(self, gamma: float = 1.0, **kwargs) -> None:  # noqa: ANN003
        self.gamma = gamma  # a plain attribute: not in the state dict
        super().__init__()
        self.model = SeedRestorer(**kwargs)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        x = x.clip(0, 1) ** (1.0 / self.gamma)
        residual = residual.clip(0, 1) ** (1.0 / self.gamma)
        return (residual + self.model(x, cond)).clip(0, 1) ** self.gamma


def randomize_norm_stats(model: nn.Module, seed: int = 0) -> None:
    """Give every GroupNorm/BatchNorm/LayerNorm non-trivial affine parameters (and BatchNorm running stats)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.GroupNorm, nn.BatchNorm2d, nn.LayerNorm, SeedLayerNorm2d)):
            with torch.no_grad():
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(1 + 0.3 * torch.rand(m.running_var.shape, generator=g))
            m.num_batches_tracked.fill_(7)
