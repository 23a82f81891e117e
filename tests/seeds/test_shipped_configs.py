"""The distillation and raw-denoising seed configs, run by the CLI as shipped (issue #13).

``configs/distill-restormer-unet.yaml``, ``configs/raw-nafnet-cond.yaml`` and ``configs/raw-finetune.yaml``
(chained after the pretraining: its ``model.init`` is the pretraining run's package, as shipped) are loaded
from ``configs/`` and only their paths, sizes and step counts are changed with ``--set``; every recipe value (losses and
their weights, optimiser, schedule, teacher mode and cache format, chunked epochs, MLflow aliases,
checkpointing, export) runs as written. What the configs need from outside is built here:

* the official Restormer checkpoint: a tiny model in the swz30/Restormer layout (``{'params': ...}``,
  the official key names, written by :class:`OfficialRestormer`, an independent transcription of
  ``basicsr/models/archs/restormer_arch.py``), recognised by restorekit from its keys alone;
* the VGG16 ImageNet file ``vgg16-397923af.pth`` in a temporary torch hub cache (``$TORCH_HOME``): random
  weights under torchvision's ``features.N.weight/bias`` names and shapes, so the 0.1 perceptual term runs;
* blurry/sharp folders from scikit-image photos, and RawNIND-style raw scenes (synthetic DNGs from photos)
  packed by ``restorekit data pack --raw``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

from restorekit.cli.main import main
from restorekit.io import read_image, write_image

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _sets(*pairs: str) -> list[str]:
    return [a for s in pairs for a in ("--set", s)]


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / float(((a - b) ** 2).mean()))


def _no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to fetch weights fails the test (restorekit must only read local files)."""

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError(f"a download was attempted: {args[:1]}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)


@pytest.fixture
def one_thread():
    """Tiny tensors: one intra-op thread is several times faster than two on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _mlflow_metric(db: Path, run_json: Path, name: str) -> list[float]:
    from mlflow.tracking import MlflowClient

    run_id = json.loads(run_json.read_text())["run_id"]
    hist = MlflowClient(tracking_uri=f"sqlite:///{db}").get_metric_history(run_id, name)
    return [m.value for m in sorted(hist, key=lambda m: m.step)]


# ------------------------------------------------------------------ swz30/Restormer, as the official code writes it


class _BiasFreeLayerNorm(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + 1e-5) * self.weight


class _WithBiasLayerNorm(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + 1e-5) * self.weight + self.bias


class _LayerNorm(nn.Module):
    def __init__(self, dim: int, LayerNorm_type: str) -> None:  # noqa: N803
        super().__init__()
        self.body = _BiasFreeLayerNorm(dim) if LayerNorm_type == "BiasFree" else _WithBiasLayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = self.body(x.reshape(b, c, h * w).transpose(1, 2))  # b c h w -> b (h w) c
        return y.transpose(1, 2).reshape(b, c, h, w)


class _FeedForward(nn.Module):
    def __init__(self, dim: int, ffn_expansion_factor: float, bias: bool) -> None:
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, kernel_size=3, stride=1, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)


class _Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, kernel_size=3, stride=1, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        q, k, v = (t.reshape(b, self.num_heads, c // self.num_heads, h * w) for t in (q, k, v))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = ((q @ k.transpose(-2, -1)) * self.temperature).softmax(dim=-1)
        return self.project_out((attn @ v).reshape(b, c, h, w))


class _TransformerBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, ffn_expansion_factor: float, bias: bool, LayerNorm_type: str) -> None:  # noqa: N803
        super().__init__()
        self.norm1 = _LayerNorm(dim, LayerNorm_type)
        self.attn = _Attention(dim, num_heads, bias)
        self.norm2 = _LayerNorm(dim, LayerNorm_type)
        self.ffn = _FeedForward(dim, ffn_expansion_factor, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class _OverlapPatchEmbed(nn.Module):
    def __init__(self, in_c: int = 3, embed_dim: int = 48, bias: bool = False) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_c, embed_dim, kernel_size=3, stride=1, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class _Downsample(nn.Module):
    def __init__(self, n_feat: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feat, n_feat // 2, kernel_size=3, stride=1, padding=1, bias=False),
                                  nn.PixelUnshuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _Upsample(nn.Module):
    def __init__(self, n_feat: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feat, n_feat * 2, kernel_size=3, stride=1, padding=1, bias=False),
                                  nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class OfficialRestormer(nn.Module):
    """``Restormer`` of swz30/Restormer (motion-deblurring settings: WithBias LayerNorm, no bias, 2.66 FFN)."""

    def __init__(self, dim: int = 48, num_blocks=(4, 6, 6, 8), num_refinement_blocks: int = 4, heads=(1, 2, 4, 8),
                 ffn_expansion_factor: float = 2.66, bias: bool = False, LayerNorm_type: str = "WithBias") -> None:  # noqa: N803
        super().__init__()

        def blocks(d: int, h: int, n: int) -> nn.Sequential:
            return nn.Sequential(*[_TransformerBlock(d, h, ffn_expansion_factor, bias, LayerNorm_type) for _ in range(n)])

        self.patch_embed = _OverlapPatchEmbed(3, dim)
        self.encoder_level1 = blocks(dim, heads[0], num_blocks[0])
        self.down1_2 = _Downsample(dim)
        self.encoder_level2 = blocks(dim * 2, heads[1], num_blocks[1])
        self.down2_3 = _Downsample(dim * 2)
        self.encoder_level3 = blocks(dim * 4, heads[2], num_blocks[2])
        self.down3_4 = _Downsample(dim * 4)
        self.latent = blocks(dim * 8, heads[3], num_blocks[3])
        self.up4_3 = _Upsample(dim * 8)
        self.reduce_chan_level3 = nn.Conv2d(dim * 8, dim * 4, kernel_size=1, bias=bias)
        self.decoder_level3 = blocks(dim * 4, heads[2], num_blocks[2])
        self.up3_2 = _Upsample(dim * 4)
        self.reduce_chan_level2 = nn.Conv2d(dim * 4, dim * 2, kernel_size=1, bias=bias)
        self.decoder_level2 = blocks(dim * 2, heads[1], num_blocks[1])
        self.up2_1 = _Upsample(dim * 2)
        self.decoder_level1 = blocks(dim * 2, heads[0], num_blocks[0])
        self.refinement = blocks(dim * 2, heads[0], num_refinement_blocks)
        self.output = nn.Conv2d(dim * 2, 3, kernel_size=3, stride=1, padding=1, bias=bias)

    def forward(self, inp_img: torch.Tensor) -> torch.Tensor:
        e1 = self.encoder_level1(self.patch_embed(inp_img))
        e2 = self.encoder_level2(self.down1_2(e1))
        e3 = self.encoder_level3(self.down2_3(e2))
        latent = self.latent(self.down3_4(e3))
        d3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(latent), e3], 1)))
        d2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(d3), e2], 1)))
        d1 = self.refinement(self.decoder_level1(torch.cat([self.up2_1(d2), e1], 1)))
        return self.output(d1) + inp_img


# torchvision's vgg16().features: conv indices and (out, in) channels
_VGG16_CONVS = [(0, 64, 3), (2, 64, 64), (5, 128, 64), (7, 128, 128), (10, 256, 128), (12, 256, 256), (14, 256, 256),
                (17, 512, 256), (19, 512, 512), (21, 512, 512), (24, 512, 512), (26, 512, 512), (28, 512, 512)]


def write_vgg16_hub_file(torch_home: Path) -> Path:
    """A torchvision-format VGG16 file (random weights, ``features.N.weight/bias``) in ``$TORCH_HOME``'s hub cache."""
    gen = torch.Generator().manual_seed(0)
    state = {}
    for idx, cout, cin in _VGG16_CONVS:
        state[f"features.{idx}.weight"] = torch.randn(cout, cin, 3, 3, generator=gen) * (2.0 / (9 * cin)) ** 0.5
        state[f"features.{idx}.bias"] = torch.zeros(cout)
    path = torch_home / "hub" / "checkpoints" / "vgg16-397923af.pth"
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return path


def _blur(img: np.ndarray) -> np.ndarray:
    import cv2

    return np.clip(cv2.GaussianBlur(img, (0, 0), 1.5), 0, 1).astype(np.float32)


@pytest.mark.slow
def test_distill_restormer_unet_config_as_shipped(
    tmp_path: Path, photo, monkeypatch: pytest.MonkeyPatch, one_thread
) -> None:
    """configs/distill-restormer-unet.yaml: official-layout Restormer teacher, cached outputs, L1 + KD + 0.1 VGG,
    chunked epochs with a checkpoint each, scorecard, MLflow ``epoch_psnr``."""
    from restorekit import load_model
    from restorekit.distill.cache import read_cached, read_fingerprint

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    _no_downloads(monkeypatch)
    vgg_file = write_vgg16_hub_file(tmp_path / "torch_home")

    torch.manual_seed(0)
    official = OfficialRestormer(dim=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1).eval()
    torch.save({"params": official.state_dict()}, tmp_path / "motion_deblurring.pth")

    names = ("astronaut", "coffee", "chelsea", "rocket")
    for name in names:
        sharp = photo(name, 64)
        write_image(tmp_path / "sharp" / f"{name}.png", sharp)
        write_image(tmp_path / "blurry" / f"{name}.png", _blur(sharp))

    loads: list[tuple[Path, object]] = []  # every torch.load of the run: (file, weights_only)
    real_load = torch.load

    def spy_load(f, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        loads.append((Path(str(f)).resolve(), kwargs.get("weights_only")))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", spy_load)
    out = tmp_path / "kd"
    rc = main(["distill", str(CONFIGS / "distill-restormer-unet.yaml"), "--out", "kd", "--quiet", *_sets(
        "teacher.path=motion_deblurring.pth", "data.input_dir=blurry", "data.target_dir=sharp",
        "data.patch_size=64", "data.val_patch=64", "data.batch_size=2", "data.num_workers=0",
        "model.args.base_filters=4", "train.epochs=2", "distill.epoch_samples=4",
        "score.latency_size=64", "score.latency_repeats=1")])
    assert rc == 0
    # both foreign files were read, safely: the official teacher and the hub cache's VGG16 (nothing downloaded)
    assert ((tmp_path / "motion_deblurring.pth").resolve(), True) in loads and (vgg_file.resolve(), True) in loads

    # the shipped recipe ran: L1 + 1.0 KD + 0.1 VGG16 relu2_2 against the teacher, precomputed teacher outputs
    rep = json.loads((out / "report.json").read_text())
    assert rep["loss"] == [
        {"name": "l1", "weight": 1.0, "args": {}, "target": "target"},
        {"name": "kd_output", "weight": 1.0, "args": {}, "target": "teacher"},
        {"name": "perceptual", "weight": 0.1, "args": {"network": "vgg16", "layers": ["relu2_2"]}, "target": "teacher"},
    ]
    assert rep["teacher"]["name"] == "restormer" and rep["student"]["name"] == "student_unet"
    assert rep["epoch_samples"] == 4 and rep["teacher_outputs"]["mode"] == "precompute"
    student_cfg = yaml.safe_load((out / "student" / "config.yaml").read_text())
    assert student_cfg["optim"]["name"] == "adam" and student_cfg["optim"]["lr"] == 1.0e-4
    assert student_cfg["model"]["args"]["depth"] == 4

    # the val_fraction split: 3 training images, 1 validation image, all 4 in the teacher cache, each equal to
    # the official model's output on the blurry image (16-bit PNG)
    split = json.loads((out / "student" / "split.json").read_text())
    assert len(split["train"]) == 3 and len(split["val"]) == 1
    fp = read_fingerprint(out / "teacher_cache")
    assert fp["complete"] and fp["count"] == len(names) and fp["format"] == "png16"
    ref = {}
    for name in names:
        x = torch.from_numpy(read_image(tmp_path / "blurry" / f"{name}.png")).permute(2, 0, 1)[None]
        with torch.no_grad():
            ref[name] = official(x).clamp(0, 1)[0].permute(1, 2, 0).numpy()
        cached = read_cached(out / "teacher_cache" / f"{name}.png")
        assert cached.shape == (64, 64, 3) and np.abs(cached - ref[name]).max() < 1e-4, name

    # chunked epochs of 4 samples (2 steps of batch 2), a checkpoint after each; the VGG term active and finite
    epochs = json.loads((out / "student" / "distill_epochs.json").read_text())
    assert sorted(epochs) == ["0", "1"]
    for e in epochs.values():
        assert len(e["samples"]) == 4 and set(e["samples"]) <= set(split["train"]) and e["online_teacher_batches"] == 0
        parts = e["loss_parts"]
        assert set(parts) == {"l1", "kd_output", "perceptual@teacher"}
        assert all(np.isfinite(v) and v > 0 for v in parts.values()), parts
    ckpts = {p.name for p in (out / "student" / "checkpoints").glob("*.ckpt")}
    assert {"epoch0000.ckpt", "epoch0001.ckpt", "latest.ckpt"} <= ckpts, ckpts
    hist = json.loads((out / "student" / "training_history.json").read_text())["epochs"]
    assert [h["global_step"] for h in hist] == [2, 4]

    # scorecard on the validation image: the input and teacher rows are the PSNR of blurry / official output
    from skimage.metrics import peak_signal_noise_ratio

    (val_name,) = split["val"]
    sharp = read_image(tmp_path / "sharp" / f"{val_name}.png")
    assert rep["n_images"] == 1 and rep["latency_size"] == 64
    assert rep["input"]["psnr"] == pytest.approx(
        peak_signal_noise_ratio(sharp, read_image(tmp_path / "blurry" / f"{val_name}.png"), data_range=1.0), abs=1e-3)
    assert rep["teacher"]["psnr"] == pytest.approx(
        peak_signal_noise_ratio(sharp, ref[val_name], data_range=1.0), abs=1e-2)
    for key in ("input", "teacher", "student"):
        assert all(np.isfinite(rep[key][m]) for m in ("psnr", "ssim", "ms_per_megapixel")), (key, rep[key])
    assert 0 < rep["student"]["params"] < rep["teacher"]["params"]
    assert rep["student_vs_input"]["psnr_gain"] == pytest.approx(rep["student"]["psnr"] - rep["input"]["psnr"])

    # the student package loads and restores; MLflow has the seed's metric name beside restorekit's
    student = load_model(out / "student" / "model.safetensors")
    x = torch.from_numpy(read_image(tmp_path / "blurry" / f"{val_name}.png")).permute(2, 0, 1)[None]
    with torch.no_grad():
        y = student(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert _psnr(y.clamp(0, 1)[0].permute(1, 2, 0), torch.from_numpy(sharp)) == pytest.approx(
        rep["student"]["psnr"], abs=1e-2)
    alias = _mlflow_metric(out / "mlflow.db", out / "student" / "mlflow_run.json", "epoch_psnr")
    assert alias == pytest.approx([h["val_psnr"] for h in hist], abs=1e-4)


# ------------------------------------------------------------------ the raw seed workflow: pretraining, fine-tuning


def _assert_recipe(shipped: object, run: object, overridden: set[str], where: str = "") -> None:
    """Every value of the shipped YAML that was not overridden is the run's (run configs add defaults beside them)."""
    if where in overridden:
        return
    if isinstance(shipped, dict):
        assert isinstance(run, dict), where
        for k, v in shipped.items():
            assert k in run, f"{where}.{k} missing from the run's config"
            _assert_recipe(v, run[k], overridden, f"{where}.{k}".lstrip("."))
    elif isinstance(shipped, list):
        assert isinstance(run, list) and len(run) == len(shipped), where
        for i, (s, r) in enumerate(zip(shipped, run)):
            _assert_recipe(s, r, overridden, f"{where}[{i}]")
    else:
        assert run == shipped, f"{where}: shipped {shipped!r}, ran with {run!r}"


@contextlib.contextmanager
def _first_optimizer_step():
    """Records the learning rate and every parameter as the first optimizer step of the run receives them."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    seen: dict[str, object] = {}

    def hook(opt, args, kwargs):  # noqa: ANN001, ANN202
        if not seen:  # before the update (Lightning's closure runs the forward/backward inside step)
            seen["lr"] = opt.param_groups[0]["lr"]
            seen["params"] = [p.detach().clone() for g in opt.param_groups for p in g["params"]]

    handle = register_optimizer_step_pre_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


_PRETRAIN = "runs/raw-pretrain"  # the --out of raw-nafnet-cond.yaml's documented command = raw-finetune.yaml's model.init
_PRETRAIN_SETS = ("model.preset=small", "data.patch_size=64", "data.val_patch=64", "data.num_workers=0", "train.epochs=1",
                  "data.val_fraction=0.5")


@pytest.fixture(scope="module")
def raw_project(tmp_path_factory: pytest.TempPathFactory, photo) -> SimpleNamespace:
    """The raw seed workflow's first steps, as its configs' comments document them, in a temporary project folder:
    RawNIND-style synthetic DNG scenes (``scenes/``), ``restorekit data pack --raw scenes --out data/rawnind-packed
    --crop 64`` (raw-nafnet-cond.yaml's own ``data.root``), ``restorekit train configs/raw-nafnet-cond.yaml --out
    runs/raw-pretrain`` (raw-finetune.yaml's ``model.init``). Shared by the pretraining and fine-tuning tests."""
    from restorekit.raw.unprocess import make_synthetic_scenes

    root = tmp_path_factory.mktemp("raw_project")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see one_thread
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(root)
            make_synthetic_scenes(root / "scenes", [(n, photo(n, 96)) for n in ("astronaut", "coffee", "chelsea")],
                                  isos=(100, 3200, 6400), seed=0)
            pack_rc = main(["data", "pack", "--raw", "scenes", "--out", "data/rawnind-packed", "--crop", "64"])
            # data.val_fraction is not in the shipped config; set here only to show that it is ignored: the pack's
            # split column decides (a seeded split by scene at 0.5 would hold out two of the three scenes)
            with _first_optimizer_step() as first:
                train_rc = main(["train", str(CONFIGS / "raw-nafnet-cond.yaml"), "--out", _PRETRAIN,
                                 *_sets(*_PRETRAIN_SETS)])
    finally:
        torch.set_num_threads(threads)
    return SimpleNamespace(root=root, pack_rc=pack_rc, train_rc=train_rc, first_step=first)


def test_raw_nafnet_cond_config_as_shipped(raw_project: SimpleNamespace, one_thread) -> None:
    """configs/raw-nafnet-cond.yaml on a RawNIND-style folder packed by `restorekit data pack --raw`."""
    from restorekit import load_model
    from restorekit.raw.bayer import unpack_rggb
    from restorekit.raw.config import RawDataConfig
    from restorekit.raw.dataset import build_raw_datasets
    from restorekit.raw.restore import denoise_mosaic

    root = raw_project.root
    assert raw_project.pack_rc == 0
    packed_dir = root / "data" / "rawnind-packed"
    packed = json.loads((packed_dir / "pack.json").read_text())
    assert packed["written"] == 6 and packed["train"] == 4 and packed["val"] == 2

    pack_val = {r["name"] for r in csv.DictReader(open(packed_dir / "metadata.csv")) if r["split"] == "val"}
    assert len(pack_val) == 2

    assert raw_project.train_rc == 0
    run = root / _PRETRAIN
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["loss"][0]["name"] == "shadow" and cfg["loss"][0]["args"]["ssim_weight"] == 0.84
    assert cfg["data"]["min_cc"] == 0.9 and cfg["train"]["grad_clip"] == 1.0
    _assert_recipe(yaml.safe_load((CONFIGS / "raw-nafnet-cond.yaml").read_text()), cfg,
                   {s.split("=")[0] for s in _PRETRAIN_SETS})
    assert raw_project.first_step["lr"] == pytest.approx(1.0e-4)  # constant schedule at optim.lr

    # the packed split column was used: the pack's val scene is the run's validation set
    split = json.loads((run / "raw_split.json").read_text())
    assert split["packed"] is True
    assert {s["name"] for s in split["val"]} == pack_val and len(split["train"]) == 4

    hist = json.loads((run / "training_history.json").read_text())["epochs"]
    assert hist[-1]["global_step"] == 2
    keys = ("train_loss", "val_loss", "val_psnr", "val_ssim", "val_input_psnr")
    assert all(np.isfinite(h[k]) for h in hist for k in keys)
    ckpts = {p.name for p in (run / "checkpoints").glob("*.ckpt")}
    assert "latest.ckpt" in ckpts and any(c.startswith("best-") for c in ckpts), ckpts
    final = json.loads((run / "final_metrics.json").read_text())
    assert final["weights"].startswith("best checkpoint")  # train.export: best
    assert _mlflow_metric(run.parent / "mlflow.db", run / "mlflow_run.json", "epoch_psnr") == pytest.approx(
        [h["val_psnr"] for h in hist], abs=1e-4)

    # the exported model restores a packed validation sample and reproduces the recorded score
    model = load_model(run / "model.safetensors")
    assert sum(p.numel() for p in model.parameters()) < 1_000_000  # the small preset, not rawnind-deep
    _, val = build_raw_datasets(RawDataConfig(root=str(packed_dir), patch_size=64, val_patch=64), seed=0)
    recorded = {r["name"]: r["output_psnr"] for r in final["images"]}
    for i in range(len(val)):
        s = val[i]
        assert float(s["cond"]) == pytest.approx(s["iso"] / 6400)
        with torch.no_grad():
            y = model(s["rggb"][None], s["cond"][None], s["residual"][None]).clamp(0, 1)[0]
        assert y.shape == s["target"].shape == (3, 64, 64) and torch.isfinite(y).all()
        assert _psnr(y, s["target"]) == pytest.approx(recorded[s["name"]], abs=1e-3)
        # restorekit's raw restore path (demosaic, pack, condition from the ISO) on the packed mosaic
        restored, _, _ = denoise_mosaic(model, unpack_rggb(s["rggb"]).numpy(), float(s["iso"]), tile=0)
        assert restored.shape == (64, 64, 3) and np.isfinite(restored).all()
        out = torch.from_numpy(restored).permute(2, 0, 1)
        assert _psnr(out, s["target"]) == pytest.approx(recorded[s["name"]], abs=0.5)


_FINETUNE_SETS = ("data.root=scenes", "model.preset=small", "data.patch_size=64", "data.val_patch=64",
                  "data.num_workers=0", "train.epochs=2")


def test_raw_finetune_config_as_shipped(raw_project: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, one_thread) -> None:
    """configs/raw-finetune.yaml after the pretraining, as documented: ``restorekit train configs/raw-finetune.yaml
    --out runs/raw-finetune`` in the same project folder, on the raw DNG files themselves (aligned while loading),
    initialised from ``runs/raw-pretrain/model.safetensors`` (the shipped ``model.init``, not overridden)."""
    import restorekit.raw.align as raw_align
    from restorekit import load_model
    from restorekit.raw.config import RawDataConfig
    from restorekit.raw.dataset import build_raw_datasets

    assert raw_project.train_rc == 0
    root = raw_project.root
    monkeypatch.chdir(root)
    pretrained = load_model(root / _PRETRAIN / "model.safetensors")

    alignments: list[tuple[str, float]] = []  # every ORB + ECC alignment of a ground truth onto its noisy frame
    real_align = raw_align.align_pair

    def spy_align(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        res = real_align(*args, **kwargs)
        alignments.append((res.status, res.cc))
        return res

    monkeypatch.setattr(raw_align, "align_pair", spy_align)
    with _first_optimizer_step() as first:
        rc = main(["train", str(CONFIGS / "raw-finetune.yaml"), "--out", "runs/raw-finetune", *_sets(*_FINETUNE_SETS)])
    assert rc == 0
    run = root / "runs" / "raw-finetune"
    shipped = yaml.safe_load((CONFIGS / "raw-finetune.yaml").read_text())
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    _assert_recipe(shipped, cfg, {s.split("=")[0] for s in _FINETUNE_SETS})
    assert cfg["model"]["init"] == "runs/raw-pretrain/model.safetensors"
    assert cfg["data"]["align"] is True and cfg["schedule"]["name"] == "cosine" and cfg["optim"]["lr"] == 2.0e-5

    # the starting weights are the pretraining run's package: the first optimizer step receives exactly its
    # parameters (before its update), at the fine-tuning learning rate; the pretraining's own first step (the
    # same seeded initialisation) had different ones
    assert first["lr"] == pytest.approx(2.0e-5)
    ref = [p.detach() for p in pretrained.parameters()]
    assert len(first["params"]) == len(ref)
    for i, (got, want) in enumerate(zip(first["params"], ref)):
        assert torch.equal(got, want), f"parameter {i} at the first fine-tuning step is not the pretrained one"
    assert not all(torch.equal(a, b) for a, b in zip(raw_project.first_step["params"], ref))

    # the raw files were read and aligned while loading (align: true, every pair well above min_cc 0.9), split by
    # scene at val_fraction 0.2 (one of three scenes)
    split = json.loads((run / "raw_split.json").read_text())
    assert split["packed"] is False and len(split["train"]) == 4 and len(split["val"]) == 2
    assert len({s["scene"] for s in split["val"]}) == 1
    assert {s["scene"] for s in split["val"]}.isdisjoint(s["scene"] for s in split["train"])
    assert alignments and all(status == "ok" and cc >= 0.9 for status, cc in alignments), alignments

    # 2 epochs of 2 steps, cosine from 2e-5 down to min_lr 1e-7; checkpoint every 2 epochs; metrics finite
    hist = json.loads((run / "training_history.json").read_text())["epochs"]
    assert [h["global_step"] for h in hist] == [2, 4]
    assert 1.0e-7 < hist[0]["lr"] < 2.0e-5 and hist[-1]["lr"] == pytest.approx(1.0e-7)
    keys = ("train_loss", "val_loss", "val_psnr", "val_ssim", "val_input_psnr")
    assert all(np.isfinite(h[k]) for h in hist for k in keys)
    ckpts = {p.name for p in (run / "checkpoints").glob("*.ckpt")}
    assert {"epoch0001.ckpt", "latest.ckpt"} <= ckpts and "epoch0000.ckpt" not in ckpts, ckpts
    assert any(c.startswith("best-") for c in ckpts), ckpts
    final = json.loads((run / "final_metrics.json").read_text())
    assert final["weights"].startswith("best checkpoint")  # train.export: best
    assert _mlflow_metric(run.parent / "mlflow.db", run / "mlflow_run.json", "val_psnr") == pytest.approx(
        [h["val_psnr"] for h in hist], abs=1e-4)

    # the exported model: fine-tuned (moved from the pretrained weights, by at most a few Adam steps of <= 2e-5)
    model = load_model(run / "model.safetensors")
    diffs = [float((a.detach() - b).abs().max()) for a, b in zip(model.parameters(), ref)]
    assert 0 < max(diffs) < 4 * 3 * 2.0e-5, max(diffs)
    # ... and it reproduces the recorded validation PSNR on the run's validation set (raw files, aligned)
    _, val = build_raw_datasets(RawDataConfig.model_validate(cfg["data"]), seed=cfg["seed"])
    recorded = {r["name"]: r["output_psnr"] for r in final["images"]}
    assert {s["name"] for s in split["val"]} == set(recorded)
    for i in range(len(val)):
        s = val[i]
        with torch.no_grad():
            y = model(s["rggb"][None], s["cond"][None], s["residual"][None]).clamp(0, 1)[0]
        assert y.shape == s["target"].shape == (3, 64, 64) and torch.isfinite(y).all()
        assert _psnr(y, s["target"]) == pytest.approx(recorded[s["name"]], abs=1e-3)
