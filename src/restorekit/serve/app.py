"""Streamlit web app for restorekit models (``restorekit ui``).

Upload one or more images, pick a model (a file from ``--model`` /
``--models-dir``: ``.safetensors``/``.pth``/``.ckpt``/``.onnx``/``.pt``, or any model file path), tile size, overlap, blend and device;
press *Restore*. Each result shows the original and the restored image side by
side, with a before/after wipe slider or a toggle, a zoom on a crop, PSNR/SSIM
when a reference image is uploaded, the processing time and download buttons
(PNG / JPEG / TIFF). Unreadable or oversized uploads get a message naming the
file and the limit. The model is loaded once and cached across interactions
(``st.cache_resource``); restored images are kept in the session so that moving
a slider does not run the model again.

Configuration comes from environment variables (``restorekit ui`` sets them):
``RESTOREKIT_UI_MODELS`` (model files/folders separated by ``os.pathsep``),
``RESTOREKIT_UI_MODELS_DIR``, ``RESTOREKIT_UI_DEVICE`` (default "auto"),
``RESTOREKIT_UI_MAX_UPLOAD_MB`` (default 50), ``RESTOREKIT_UI_MAX_PIXELS``
(default 40,000,000).

Images are handled as ``(H, W, 3)`` float32 RGB arrays in [0, 1] throughout;
they are converted to uint8 only for display.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from restorekit.errors import RestoreKitError
from restorekit.inference.options import RestoreOptions
from restorekit.serve.core import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_UPLOAD_BYTES,
    OUTPUT_FORMATS,
    Limits,
    MODEL_SUFFIXES,
    LoadedModel,
    UploadTooLargeError,
    decode_upload,
    discover_models,
    encode_output,
    load_for_inference,
    output_bit_depth,
    quality_metrics,
    restore_array,
)

IMAGE_TYPES = ["png", "jpg", "jpeg", "tif", "tiff", "webp", "bmp"]
TILE_CHOICES = ["auto", "0 (whole image)", "128", "256", "384", "512", "768", "1024"]
VIEWS = ["Side by side", "Before/after slider", "Toggle"]
OTHER_PATH = "Other model file path…"
#: Images are shown at least this many pixels tall and wide (tiny ones are enlarged, nearest-neighbour).
MIN_DISPLAY = 16


@dataclass
class UiConfig:
    """What ``restorekit ui`` passes to the app."""

    models: list[str] = field(default_factory=list)
    models_dir: str | None = None
    device: str = "auto"
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_BYTES / 2**20
    max_pixels: int = DEFAULT_MAX_PIXELS

    @property
    def limits(self) -> Limits:
        return Limits(max_upload_bytes=int(self.max_upload_mb * 2**20), max_pixels=int(self.max_pixels))


def ui_config(env: dict[str, str] | None = None) -> UiConfig:
    """Read :class:`UiConfig` from the environment."""
    e = os.environ if env is None else env
    models = [m for m in e.get("RESTOREKIT_UI_MODELS", "").split(os.pathsep) if m]
    return UiConfig(
        models=models,
        models_dir=e.get("RESTOREKIT_UI_MODELS_DIR") or None,
        device=e.get("RESTOREKIT_UI_DEVICE", "auto") or "auto",
        max_upload_mb=float(e.get("RESTOREKIT_UI_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_BYTES / 2**20)),
        max_pixels=int(float(e.get("RESTOREKIT_UI_MAX_PIXELS", DEFAULT_MAX_PIXELS))),
    )


@st.cache_resource(show_spinner="Loading model…", max_entries=4)
def cached_model(path: str, device: str, mtime: float) -> LoadedModel:
    """The model at ``path`` on ``device``; cached across reruns and sessions (``mtime`` invalidates on change)."""
    return load_for_inference(path, device=device)


# --------------------------------------------------------------------------- pure helpers (tested)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` float in [0, 1] -> uint8 for display; images under :data:`MIN_DISPLAY` pixels on a side are enlarged.

    (Streamlit cannot show e.g. a 1-pixel-tall image: it is repeated, nearest-neighbour,
    until both sides reach ``MIN_DISPLAY``; the pixels themselves are unchanged.)
    """
    out = np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    h, w = out.shape[:2]
    fy, fx = -(-MIN_DISPLAY // max(1, h)), -(-MIN_DISPLAY // max(1, w))
    if fy > 1 or fx > 1:
        out = np.repeat(np.repeat(out, fy, axis=0), fx, axis=1)
    return out


def wipe(before: np.ndarray, after: np.ndarray, position: float) -> np.ndarray:
    """Before/after composite: ``after`` left of ``position`` (0-100 % of the width), ``before`` right, a white line between."""
    h, w = before.shape[:2]
    x = int(round(np.clip(position, 0, 100) / 100.0 * w))
    out = before.copy()
    out[:, :x] = after[:, :x]
    lw = max(1, w // 300)
    out[:, max(0, x - lw) : min(w, x + lw)] = 1.0
    return out


def crop_box(h: int, w: int, cx: float, cy: float, size: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a ``size`` square centred at (``cx``, ``cy``) % of the image, kept inside it."""
    s = max(1, min(size, h, w))
    top = int(round(cy / 100.0 * h - s / 2))
    left = int(round(cx / 100.0 * w - s / 2))
    return min(max(0, top), h - s), min(max(0, left), w - s), s, s


def zoom(img: np.ndarray, box: tuple[int, int, int, int], factor: int) -> np.ndarray:
    """Crop ``box`` out of ``img`` and enlarge it ``factor`` times with nearest-neighbour (pixels stay visible)."""
    t, l, hh, ww = box
    crop = img[t : t + hh, l : l + ww]
    return np.repeat(np.repeat(crop, factor, axis=0), factor, axis=1)


def parse_tile_choice(choice: str) -> int | str:
    if choice == "auto":
        return "auto"
    return int(choice.split()[0])


def upload_key(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()[:16]


def match_reference(name: str, refs: dict[str, Any], n_uploads: int) -> Any | None:
    """The reference for upload ``name``: same file stem, or the only reference when there is one upload."""
    stem = Path(name).stem
    for ref_name, ref in refs.items():
        if Path(ref_name).stem == stem:
            return ref
    if n_uploads == 1 and len(refs) == 1:
        return next(iter(refs.values()))
    return None


def device_choices(default: str) -> list[str]:
    import torch

    out = ["auto", "cpu"]
    if torch.cuda.is_available():
        out += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    if default not in out:
        out.insert(0, default)
    return out


# --------------------------------------------------------------------------- page sections


def sidebar(cfg: UiConfig) -> tuple[str | None, str, RestoreOptions | None, str]:
    """Model path, device, settings and download format chosen in the sidebar."""
    with st.sidebar:
        st.header("Model")
        catalog: dict[str, Path] = {}
        try:
            catalog = discover_models(cfg.models, cfg.models_dir)
        except RestoreKitError as exc:
            st.error(str(exc))
        options = list(catalog) + [OTHER_PATH]
        choice = st.selectbox("Model", options, key="model_choice")
        if choice == OTHER_PATH:
            typed = st.text_input(f"Model file path ({', '.join(MODEL_SUFFIXES)})", key="model_path").strip()
            model_path = typed or None
        else:
            model_path = str(catalog[choice])
        st.header("Settings")
        tile = st.selectbox("Tile size", TILE_CHOICES, key="tile", help="auto: from available memory; 0: whole image at once")
        overlap = st.number_input("Tile overlap (px)", min_value=0, max_value=512, value=32, step=8, key="overlap")
        blend = st.selectbox("Blend", ["linear", "cosine"], key="blend")
        device = st.selectbox("Device", device_choices(cfg.device), key="device")
        fmt = st.selectbox("Download format", ["PNG", "JPEG", "TIFF"], key="format")
        st.caption(
            f"Limits: {cfg.max_upload_mb:g} MB per file, {cfg.max_pixels:,} pixels per image."
        )
    try:  # validated exactly like `restorekit restore --tile --overlap --blend --device`
        options: RestoreOptions | None = RestoreOptions.parse(
            tile=parse_tile_choice(tile), overlap=int(overlap), blend=blend, device=device
        )
    except RestoreKitError as exc:
        st.error(f"Invalid settings: {exc}")
        options = None
    return model_path, device, options, fmt


def load_selected_model(path: str | None, device: str) -> LoadedModel | None:
    if path is None:
        st.info(f"Choose a model in the sidebar (a model file: {', '.join(MODEL_SUFFIXES)}).")
        return None
    p = Path(path).expanduser()
    if not p.is_file():
        st.error(f"Model file '{p}' does not exist.")
        return None
    try:
        return cached_model(str(p.resolve()), device, p.stat().st_mtime)
    except RestoreKitError as exc:
        st.error(f"Cannot load the model: {exc}")
        return None


def decode_all(files: list[Any], limits: Limits, cache_name: str = "decoded") -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Decode uploads (cached in the session by content hash, pruned to the current files).

    Returns (key -> entry with the ``(H, W, 3)`` float32 image, error messages naming the files).
    """
    cache: dict[str, dict[str, Any]] = st.session_state.setdefault(cache_name, {})
    good: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    current: set[str] = set()
    for f in files or []:
        data = f.getvalue()
        key = upload_key(data) + f"-{limits.max_upload_bytes}-{limits.max_pixels}"
        current.add(key)
        if key not in cache:
            try:
                img, info = decode_upload(data, name=f.name, limits=limits)
                cache[key] = {"name": f.name, "image": img, "info": info, "bytes": len(data)}
            except UploadTooLargeError as exc:
                cache[key] = {"name": f.name, "error": f"{f.name} is too large: {exc.reason}."}
            except RestoreKitError as exc:
                cache[key] = {"name": f.name, "error": f"{f.name} could not be read: {getattr(exc, 'reason', exc)}."}
        entry = cache[key]
        if "error" in entry:
            errors.append(entry["error"])
        else:
            good[key] = entry
    for stale in set(cache) - current:  # removed uploads free their memory
        del cache[stale]
    return good, errors


def render_result(key: str, entry: dict[str, Any], result: dict[str, Any], ref: dict[str, Any] | None, fmt: str) -> None:
    """One restored image: views, zoom, metrics, download."""
    before, after = entry["image"], result["output"]
    h, w = after.shape[:2]
    st.subheader(entry["name"])
    st.caption(
        f"{w}x{h} px · restored in {result['seconds']:.2f} s · model {result['model']} on {result['device']} · "
        f"tile {result['tile']}, overlap {result['overlap']}"
    )
    view = st.radio("View", VIEWS, horizontal=True, key=f"view-{key}")
    if view == "Side by side":
        c1, c2 = st.columns(2)
        c1.image(to_uint8(before), caption="Original", width="stretch")
        c2.image(to_uint8(after), caption="Restored", width="stretch")
    elif view == "Before/after slider":
        pos = st.slider("Wipe: restored on the left, original on the right (%)", 0, 100, 50, key=f"wipe-{key}")
        st.image(to_uint8(wipe(before, after, pos)), caption=f"Restored | Original at {pos}%", width="stretch")
    else:
        show_orig = st.toggle("Show original", key=f"toggle-{key}")
        st.image(to_uint8(before if show_orig else after), caption="Original" if show_orig else "Restored", width="stretch")

    with st.expander("Zoom on a crop"):
        z1, z2, z3, z4 = st.columns(4)
        lo, hi = min(16, h, w), max(min(16, h, w) + 1, min(h, w, 512))
        size = z1.slider("Crop size (px)", lo, hi, max(lo, min(96, h, w)), key=f"zs-{key}")
        cx = z2.slider("Centre x (%)", 0, 100, 50, key=f"zx-{key}")
        cy = z3.slider("Centre y (%)", 0, 100, 50, key=f"zy-{key}")
        factor = z4.select_slider("Magnification", [1, 2, 3, 4, 6, 8], value=4, key=f"zf-{key}")
        box = crop_box(h, w, cx, cy, size)
        c1, c2 = st.columns(2)
        c1.image(to_uint8(zoom(before, box, factor)), caption=f"Original crop at ({box[1]}, {box[0]})")
        c2.image(to_uint8(zoom(after, box, factor)), caption=f"Restored crop at ({box[1]}, {box[0]})")

    if ref is not None:
        try:
            m_out = quality_metrics(after, ref["image"])
            m_in = quality_metrics(before, ref["image"])
            m1, m2 = st.columns(2)
            m1.metric("PSNR (restored vs reference)", f"{m_out['psnr']:.2f} dB", f"{m_out['psnr'] - m_in['psnr']:+.2f} dB vs input")
            m2.metric("SSIM (restored vs reference)", f"{m_out['ssim']:.4f}", f"{m_out['ssim'] - m_in['ssim']:+.4f} vs input")
            result["metrics"] = {"restored": m_out, "input": m_in}
        except RestoreKitError as exc:
            st.warning(f"No PSNR/SSIM for {entry['name']}: {exc}")

    render_ocr(key, before, after, result)

    fkey = fmt.lower()
    data = encode_output(after, fkey, quality=95, bit_depth=output_bit_depth(entry["info"].bit_depth, fkey))
    stem = Path(entry["name"]).stem
    st.download_button(
        f"Download {fmt}",
        data=data,
        file_name=f"{stem}_restored{OUTPUT_FORMATS[fkey][2]}",
        mime=OUTPUT_FORMATS[fkey][1],
        key=f"dl-{key}-{fkey}",
    )
    result.setdefault("downloads", {})[fkey] = data


@st.cache_data(show_spinner=False)
def ocr_langs() -> list[str]:
    """Tesseract languages installed here (cached; empty without Tesseract: the OCR view is then hidden)."""
    from restorekit.documents.ocr import available_langs

    return available_langs()


def render_ocr(key: str, before: np.ndarray, after: np.ndarray, result: dict[str, Any]) -> None:
    """Documents: Tesseract's text of the original and of the restored image side by side (only with Tesseract)."""
    langs = ocr_langs()
    if not langs:
        return
    with st.expander("OCR text (Tesseract)"):
        lang = st.radio("Language", langs, horizontal=True, key=f"ocr-lang-{key}")
        if st.button("Read the text", key=f"ocr-{key}"):
            from restorekit.documents.ocr import read_pair

            with st.spinner("Tesseract is reading both images"):
                result.setdefault("ocr", {})[lang] = read_pair(before, after, lang)
        texts = result.get("ocr", {}).get(lang)
        if texts is not None:
            c1, c2 = st.columns(2)
            c1.text_area("Original", texts[0], height=240, key=f"ocr-in-{key}-{lang}")
            c2.text_area("Restored", texts[1], height=240, key=f"ocr-out-{key}-{lang}")


def run_restoration(loaded: LoadedModel, decoded: dict[str, dict[str, Any]], options: RestoreOptions, results: dict, tag: str) -> None:
    """Restore every decoded upload not restored yet with these settings, showing progress."""
    todo = [k for k in decoded if (k, tag) not in results]
    if not todo:
        return
    bar = st.progress(0.0, text="Restoring…")
    n = len(todo)
    for i, key in enumerate(todo):
        entry = decoded[key]

        def progress(done: int, total: int, i: int = i, name: str = entry["name"]) -> None:
            frac = (i + done / max(1, total)) / n
            bar.progress(min(1.0, frac), text=f"Restoring {name} ({i + 1}/{n}): tile {done}/{total}")

        t0 = time.perf_counter()
        try:
            out = restore_array(loaded, entry["image"], options, progress=progress)
        except RestoreKitError as exc:
            st.error(f"{entry['name']}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - show it, keep the app alive
            st.error(f"{entry['name']}: restoration failed ({type(exc).__name__}: {exc})")
            continue
        results[(key, tag)] = {
            "output": out,
            "seconds": time.perf_counter() - t0,
            "model": loaded.name,
            "device": loaded.device,
            "tile": options.tile,
            "overlap": options.overlap_value,
        }
    bar.progress(1.0, text=f"Restored {n} image(s)")


def main() -> None:
    st.set_page_config(page_title="restorekit", page_icon="🖼️", layout="wide")
    st.title("restorekit: image restoration")
    cfg = ui_config()
    model_path, device, options, fmt = sidebar(cfg)
    widget_mb = max(1, int(math.ceil(cfg.max_upload_mb)))
    files = st.file_uploader(
        "Images to restore", type=IMAGE_TYPES, accept_multiple_files=True, key="uploads", max_upload_size=widget_mb
    )
    ref_files = st.file_uploader(
        "Reference images (optional): PSNR/SSIM against the same file name, or the only reference for a single image",
        type=IMAGE_TYPES,
        accept_multiple_files=True,
        key="references",
        max_upload_size=widget_mb,
    )
    decoded, errors = decode_all(files or [], cfg.limits)
    refs, ref_errors = decode_all(ref_files or [], cfg.limits, "decoded_refs")
    for msg in errors + [f"Reference {m}" for m in ref_errors]:
        st.error(msg)
    if not files:
        st.info("Upload one or more images (PNG, JPEG, TIFF, WebP, BMP) to restore them.")
        return
    if not decoded:
        return
    loaded = load_selected_model(model_path, device)
    if loaded is None or options is None:
        return
    if not loaded.caps.rgb:
        st.error(f"Model {loaded.name} takes inputs {list(loaded.caps.inputs)}, not one RGB image; "
                 "restore raw files with `restorekit raw restore`.")
        return
    params = f"{loaded.params:,} parameters" if loaded.params is not None else f"exported ({loaded.runtime})"
    st.caption(f"Model {loaded.name}: {loaded.arch}, {params}, on {loaded.device}")
    results: dict = st.session_state.setdefault("results", {})
    tag = f"{loaded.source}|{loaded.device}|{options.model_dump_json()}"
    for stale in [k for k in results if k[0] not in decoded or k[1] != tag]:  # removed uploads, other settings
        del results[stale]
    pending = [k for k in decoded if (k, tag) not in results]
    slot = st.empty()
    if slot.button("Restore", type="primary", disabled=not pending, key="restore"):
        run_restoration(loaded, decoded, options, results, tag)
        slot.button("Restore", type="primary", disabled=True, key="restore-done")  # nothing left to restore
    refs_by_name = {e["name"]: e for e in refs.values()}
    for key, entry in decoded.items():
        if (key, tag) in results:
            st.divider()
            ref = match_reference(entry["name"], refs_by_name, len(decoded))
            try:  # one result that cannot be shown must not hide the others
                render_result(key, entry, results[(key, tag)], ref, fmt)
            except Exception as exc:  # noqa: BLE001 - show it, keep the page alive
                st.error(f"{entry['name']}: cannot show the result ({type(exc).__name__}: {exc})")
        else:
            preview, _ = st.columns([1, 3])
            preview.image(to_uint8(entry["image"]), caption=f"{entry['name']} (not restored yet)", width="stretch")


if __name__ == "__main__":  # `streamlit run` executes the script as __main__
    main()
