"""Seeded fuzzing of the input boundaries (#18): whatever bytes or text a user hands restorekit, the
answer is a valid result or a clean :class:`RestoreKitError` (naming the file or setting), never
another exception type. Every case is drawn from a fixed-seed generator, so a failure reproduces."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from restorekit.config.base import apply_overrides, load_yaml
from restorekit.data.storage import decode_uint
from restorekit.errors import ConfigError, ImageReadError, RestoreKitError
from restorekit.io.image import decode_image, read_image
from restorekit.training.config import load_run_config, parse_run_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _real_files(photo) -> dict[str, bytes]:  # noqa: ANN001
    """A real photo encoded in every common format (small, so decoding stays fast)."""
    img = np.rint(photo("astronaut", 40) * 255).astype(np.uint8)
    out = {}
    for ext, fmt in (("png", "PNG"), ("jpg", "JPEG"), ("gif", "GIF"), ("bmp", "BMP"), ("tif", "TIFF"), ("webp", "WEBP")):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, fmt)
        out[ext] = buf.getvalue()
    return out


def _mutations(data: bytes, rng: np.random.Generator, n: int) -> list[bytes]:
    """Truncations, byte flips, zeroed runs and spliced garbage of ``data`` (its header kept sometimes)."""
    out = []
    for i in range(n):
        b = bytearray(data)
        kind = i % 4
        if kind == 0:
            b = b[: int(rng.integers(0, len(b)))]
        elif kind == 1:
            for pos in rng.integers(0, len(b), size=int(rng.integers(1, 16))):
                b[pos] = int(rng.integers(0, 256))
        elif kind == 2:
            start = int(rng.integers(8, len(b)))
            b[start : start + int(rng.integers(1, 64))] = bytes(min(64, len(b) - start))
        else:
            cut = int(rng.integers(0, len(b)))
            b = b[:cut] + rng.integers(0, 256, size=int(rng.integers(1, 200)), dtype=np.uint8).tobytes()
        out.append(bytes(b))
    return out


def _check_image(result: np.ndarray) -> None:
    assert result.ndim == 3 and result.shape[2] == 3 and result.size > 0
    if result.dtype == np.float32:
        assert np.isfinite(result).all() and result.min() >= 0.0 and result.max() <= 1.0


def test_random_bytes_and_corrupted_images_decode_or_fail_cleanly(photo, tmp_path: Path) -> None:  # noqa: ANN001
    rng = np.random.default_rng(1234)
    cases: list[tuple[str, bytes]] = []
    for n in range(40):
        cases.append((["png", "jpg", "gif", "tif", "webp", "bmp"][n % 6], rng.integers(0, 256, size=int(rng.integers(0, 600)), dtype=np.uint8).tobytes()))
    for ext, data in _real_files(photo).items():
        cases += [(ext, m) for m in _mutations(data, rng, 16)]
    outcomes = {"ok": 0, "error": 0}
    for i, (ext, data) in enumerate(cases):
        path = tmp_path / f"case{i}.{ext}"
        path.write_bytes(data)
        for fn in (lambda: read_image(path), lambda: decode_image(data, name=path.name)[0], lambda: decode_uint(data, path.name)):
            try:
                result = fn()
            except RestoreKitError as exc:
                assert str(exc), "empty error message"
                if isinstance(exc, ImageReadError):
                    assert path.name in str(exc)
                outcomes["error"] += 1
            except Exception as exc:  # noqa: BLE001 - the point of the test
                pytest.fail(f"case {i} ({ext}, {len(data)} bytes): {type(exc).__name__}: {exc}")
            else:
                _check_image(result)
                outcomes["ok"] += 1
    # both outcomes really happen: some corruptions still decode (flipped pixels), most do not
    assert outcomes["ok"] > 10 and outcomes["error"] > 100, outcomes


def _random_scalar(rng: np.random.Generator) -> object:
    pool = [
        None, True, False, 0, -1, 1, 3, 2**40, -(2**40), 0.5, -0.0, float("nan"), float("inf"), float("-inf"),
        "", "x", "nope", "auto", "cuda:7", "[1, 2", "1e309", "{a: 1}", [], [1, "a"], {}, {"a": {"b": None}},
    ]
    return pool[int(rng.integers(len(pool)))]


def _yaml_value(v: object) -> str:
    if isinstance(v, float) and not np.isfinite(v):
        return ".nan" if np.isnan(v) else (".inf" if v > 0 else "-.inf")
    if isinstance(v, str):
        return v
    return yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()


def _keys(d: object, prefix: str = "") -> list[str]:
    if not isinstance(d, dict):
        return []
    out = []
    for k, v in d.items():
        out.append(f"{prefix}{k}")
        out += _keys(v, f"{prefix}{k}.")
    return out


@pytest.mark.parametrize("config", ["demo.yaml", "deblur-unet.yaml", "raw-demo.yaml"])
def test_random_overrides_give_a_config_or_a_config_error(config: str) -> None:
    path = CONFIGS / config
    base = load_yaml(path)
    keys = _keys(base) + ["nope", "model.nope", "data.degrade.0", "train..epochs", ".", "train.epochs.x"]
    rng = np.random.default_rng(abs(hash(config)) % 1000)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(120):
        overrides = [f"{keys[int(rng.integers(len(keys)))]}={_yaml_value(_random_scalar(rng))}" for _ in range(int(rng.integers(1, 3)))]
        try:
            cfg = load_run_config(path, overrides)
        except ConfigError as exc:
            assert str(exc)
            outcomes["error"] += 1
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"{config} {overrides}: {type(exc).__name__}: {exc}")
        else:
            assert cfg.model is not None
            outcomes["ok"] += 1
    assert outcomes["ok"] > 0 and outcomes["error"] > 0, outcomes


def test_random_yaml_text_gives_a_config_or_a_config_error(tmp_path: Path) -> None:
    rng = np.random.default_rng(99)
    alphabet = list("abcdefgkmnoprstuyz0123456789 :-[]{},.'\"#&*!|>%@`\t\n") + ["\n  ", ": ", "- ", "model:", "train:", "data:", "kind: paired", "\x00", "é"]
    demo = (CONFIGS / "demo.yaml").read_text()
    outcomes = {"ok": 0, "error": 0}
    for i in range(150):
        if i % 3 == 0:  # a real config, cut or spliced
            cut = int(rng.integers(0, len(demo)))
            text = demo[:cut] + "".join(rng.choice(alphabet, size=int(rng.integers(0, 20))))
        else:
            text = "".join(rng.choice(alphabet, size=int(rng.integers(0, 120))))
        p = tmp_path / f"c{i}.yaml"
        p.write_bytes(text.encode("utf-8", errors="surrogatepass") if i % 7 else b"\xff\xfe" + text.encode())
        for fn in (lambda: load_yaml(p), lambda: load_run_config(p), lambda: parse_run_config(load_yaml(p), str(p))):
            try:
                fn()
            except ConfigError as exc:
                assert str(exc)
                outcomes["error"] += 1
            except Exception as exc:  # noqa: BLE001
                pytest.fail(f"yaml case {i} {text!r}: {type(exc).__name__}: {exc}")
            else:
                outcomes["ok"] += 1
    assert outcomes["ok"] > 0 and outcomes["error"] > 0, outcomes


def test_apply_overrides_on_lists_and_scalars_are_config_errors() -> None:
    data = {"data": {"degrade": [{"name": "jpeg"}], "patch_size": 64}}
    for item in ("data.degrade.0=1", "data.patch_size.x=1", "=3", "noequals"):
        with pytest.raises(ConfigError):
            apply_overrides(data, [item])
