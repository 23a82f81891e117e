"""The Streamlit app driven by streamlit.testing AppTest: upload, restore, views, metrics, download, errors."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import restorekit.serve.app as app_module
from restorekit.io import decode_image, encode_image
from restorekit.serve.app import crop_box, match_reference, wipe, zoom
from restorekit.serve.core import quality_metrics, restore_array, restore_bytes


@pytest.fixture
def app(monkeypatch, small_package):
    """A fresh AppTest of the app configured with the small package (as `restorekit ui --model` does)."""
    monkeypatch.setenv("RESTOREKIT_UI_MODELS", str(small_package))
    monkeypatch.delenv("RESTOREKIT_UI_MODELS_DIR", raising=False)
    monkeypatch.setenv("RESTOREKIT_UI_DEVICE", "cpu")
    monkeypatch.setenv("RESTOREKIT_UI_MAX_UPLOAD_MB", "5")
    monkeypatch.setenv("RESTOREKIT_UI_MAX_PIXELS", "250000")
    at = AppTest.from_file(app_module.__file__, default_timeout=180)
    at.run()
    assert not at.exception
    return at


def _upload(at: AppTest, files, refs=None) -> None:  # noqa: ANN001
    at.file_uploader(key="uploads").set_value(files)
    if refs is not None:
        at.file_uploader(key="references").set_value(refs)
    at.run()
    assert not at.exception, at.exception


def _results(at: AppTest) -> list[dict]:
    return list(at.session_state["results"].values())


def test_upload_restore_and_download(app, astronaut_png, small_loaded):
    at = app
    assert "Upload one or more images" in at.info[0].value
    _upload(at, ("astronaut.png", astronaut_png, "image/png"))
    assert at.button(key="restore").label == "Restore" and not at.button(key="restore").disabled
    at.button(key="restore").click().run()
    assert not at.exception and not at.error
    # side by side: original and restored, with size, time and model in the caption
    captions = [c.value for c in at.caption]
    assert any("128x128 px" in c and "restored in" in c and "deblur_small" in c for c in captions)
    assert [im.proto.imgs[0].caption for im in at.image][:2] == ["Original", "Restored"]
    assert at.progress[0].value == 100  # finished
    # the download is exactly what the core (and `restorekit restore` with default settings) produce
    (res,) = _results(at)
    expected = restore_bytes(small_loaded, astronaut_png, name="astronaut.png")
    assert np.array_equal(res["output"], expected.image)
    assert at.download_button[0].label == "Download PNG"
    assert res["downloads"]["png"] == expected.data
    # nothing is recomputed on a rerun and the button is disabled
    at.run()
    assert at.button(key="restore").disabled and len(_results(at)) == 1
    # other download formats
    at.selectbox(key="format").set_value("JPEG").run()
    assert at.download_button[0].label == "Download JPEG"
    assert _results(at)[0]["downloads"]["jpeg"][:3] == b"\xff\xd8\xff"
    at.selectbox(key="format").set_value("TIFF").run()
    tif = _results(at)[0]["downloads"]["tiff"]
    assert np.array_equal(decode_image(tif)[0], decode_image(expected.data)[0])


def test_views_slider_toggle_and_zoom(app, astronaut_png):
    at = app
    _upload(at, ("astronaut.png", astronaut_png, "image/png"))
    at.button(key="restore").click().run()
    key = next(k for k in at.session_state["decoded"])
    at.radio(key=f"view-{key}").set_value("Before/after slider").run()
    wipe_slider = at.slider(key=f"wipe-{key}")
    assert wipe_slider.value == 50
    wipe_slider.set_value(25).run()
    assert not at.exception
    assert any("Restored | Original at 25%" == im.proto.imgs[0].caption for im in at.image)
    at.radio(key=f"view-{key}").set_value("Toggle").run()
    at.toggle(key=f"toggle-{key}").set_value(True).run()
    assert any(im.proto.imgs[0].caption == "Original" for im in at.image)
    at.slider(key=f"zs-{key}").set_value(32).run()
    assert any(im.proto.imgs[0].caption.startswith("Restored crop at (48, 48)") for im in at.image)


def test_reference_gives_psnr_and_ssim(app, photo, small_loaded):
    from scipy.ndimage import gaussian_filter

    sharp = photo("camera", 96)
    blurred = np.clip(gaussian_filter(sharp, sigma=(1.5, 1.5, 0)), 0, 1).astype(np.float32)
    at = app
    _upload(at, ("camera.png", encode_image(blurred, "PNG"), "image/png"), ("camera_sharp.png", encode_image(sharp, "PNG"), "image/png"))
    at.button(key="restore").click().run()
    assert not at.exception
    labels = [m.label for m in at.metric]
    assert labels == ["PSNR (restored vs reference)", "SSIM (restored vs reference)"]
    (res,) = _results(at)
    restored = restore_array(small_loaded, decode_image(encode_image(blurred, "PNG"))[0])
    ref = decode_image(encode_image(sharp, "PNG"))[0]
    expected = quality_metrics(restored, ref)
    assert res["metrics"]["restored"]["psnr"] == pytest.approx(expected["psnr"], abs=1e-6)
    assert at.metric[0].value == f"{expected['psnr']:.2f} dB"
    assert 0 < res["metrics"]["input"]["ssim"] <= 1


def test_unreadable_and_oversized_uploads_get_clear_messages(app, astronaut_png, photo):
    at = app
    big = encode_image(photo("astronaut", None)[:512, :512], "PNG")  # 262,144 px > 250,000
    _upload(
        at,
        [
            ("notes.png", b"this is text, not pixels", "image/png"),
            ("half.png", astronaut_png[:2000], "image/png"),
            ("empty.png", b"", "image/png"),
            ("huge.png", big, "image/png"),
            ("good.png", astronaut_png, "image/png"),
        ],
    )
    errors = [e.value for e in at.error]
    assert any(e.startswith("notes.png could not be read: not a recognised image format") for e in errors)
    assert any(e.startswith("half.png could not be read") for e in errors)
    assert any(e.startswith("empty.png could not be read: file is empty") for e in errors)
    assert any(e.startswith("huge.png is too large: too many pixels: 512x512 = 262,144 exceeds the limit of 250,000") for e in errors)
    # the good image is still restorable
    at.button(key="restore").click().run()
    assert len(_results(at)) == 1 and not at.exception


def test_byte_limit_and_bad_model_path(monkeypatch, small_package, astronaut_png, tmp_path):
    monkeypatch.setenv("RESTOREKIT_UI_MODELS", str(small_package))
    monkeypatch.setenv("RESTOREKIT_UI_MAX_UPLOAD_MB", "0.01")  # 10,485 bytes
    at = AppTest.from_file(app_module.__file__, default_timeout=180)
    at.run()
    _upload(at, ("astronaut.png", astronaut_png, "image/png"))
    assert any("astronaut.png is too large: upload is" in e.value and "10,485 bytes" in e.value for e in at.error)

    monkeypatch.setenv("RESTOREKIT_UI_MAX_UPLOAD_MB", "5")
    at = AppTest.from_file(app_module.__file__, default_timeout=180)
    at.run()
    at.selectbox(key="model_choice").set_value(app_module.OTHER_PATH).run()
    at.text_input(key="model_path").input(str(tmp_path / "missing.safetensors")).run()
    _upload(at, ("astronaut.png", astronaut_png, "image/png"))
    assert any("missing.safetensors' does not exist" in e.value for e in at.error)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"junk")
    at.text_input(key="model_path").input(str(junk)).run()
    assert any(e.value.startswith("Cannot load the model") and "junk.safetensors" in e.value for e in at.error)
    assert not at.exception


def test_several_images_are_restored_with_progress(app, astronaut_png, coffee_jpeg):
    at = app
    _upload(at, [("a.png", astronaut_png, "image/png"), ("b.jpg", coffee_jpeg, "image/jpeg")])
    at.selectbox(key="tile").set_value("128").run()
    at.button(key="restore").click().run()
    assert not at.exception
    sizes = sorted(r["output"].shape for r in _results(at))
    assert sizes == [(96, 96, 3), (128, 128, 3)]
    assert all(r["tile"] == 128 for r in _results(at))
    assert "Restored 2 image(s)" in at.progress[0].proto.text


def test_pure_helpers(photo):
    a, b = np.zeros((10, 20, 3), np.float32), np.full((10, 20, 3), 0.5, np.float32)
    w = wipe(a, b, 50)
    assert np.all(w[:, :9] == 0.5) and np.all(w[:, 11:] == 0) and np.all(w[:, 9:11] == 1.0)
    assert crop_box(100, 200, 0, 0, 30) == (0, 0, 30, 30)
    assert crop_box(100, 200, 100, 100, 30) == (70, 170, 30, 30)
    img = photo("camera", 64)
    z = zoom(img, (8, 16, 10, 12), 3)
    assert z.shape == (30, 36, 3) and np.array_equal(z[::3, ::3], img[8:18, 16:28])
    refs = {"x.png": 1, "y_ref.png": 2}
    assert match_reference("x.jpg", refs, 2) == 1 and match_reference("z.png", refs, 2) is None
    assert match_reference("z.png", {"only.png": 3}, 1) == 3


def test_one_pixel_tall_image_does_not_hide_later_results(app, photo, astronaut_png):
    # issue #18: a 1-pixel-tall upload crashed the page (st.image) and the later results were not shown
    strip = encode_image(photo("coffee", 64)[:1], "PNG")  # 64x1
    _upload(app, [("strip.png", strip, "image/png"), ("astronaut.png", astronaut_png, "image/png")])
    app.button(key="restore").click().run()
    assert not app.exception, app.exception
    results = {r["output"].shape: r for r in _results(app)}
    assert set(results) == {(1, 64, 3), (128, 128, 3)}
    assert len(app.download_button) == 2  # both results rendered, the 1-pixel one included
    assert not [e.value for e in app.error]
    shown = [im.proto.imgs[0].caption for im in app.image]
    assert shown.count("Restored") == 2
    # the strip is shown enlarged (nearest-neighbour), its pixels are unchanged
    assert app_module.to_uint8(results[(1, 64, 3)]["output"]).shape == (16, 64, 3)
    assert np.array_equal(app_module.to_uint8(results[(1, 64, 3)]["output"])[5], app_module.to_uint8(results[(1, 64, 3)]["output"])[0])


def test_models_folder_lists_exported_files_and_restores_with_onnx(monkeypatch, exported_zoo, astronaut_png, small_loaded):
    monkeypatch.setenv("RESTOREKIT_UI_MODELS", "")
    monkeypatch.setenv("RESTOREKIT_UI_MODELS_DIR", str(exported_zoo))
    monkeypatch.setenv("RESTOREKIT_UI_DEVICE", "cpu")
    at = AppTest.from_file(app_module.__file__, default_timeout=180)
    at.run()
    box = at.selectbox(key="model_choice")
    # sorted by file name; the first of a stem keeps the bare stem (here the .onnx file)
    assert box.options == ["deblur_small", "deblur_small.pt", "deblur_small.safetensors", app_module.OTHER_PATH]
    box.set_value("deblur_small").run()
    _upload(at, ("astronaut.png", astronaut_png, "image/png"))
    at.button(key="restore").click().run()
    assert not at.exception and not at.error
    assert any("exported (onnxruntime)" in c.value for c in at.caption)
    (res,) = _results(at)
    ref = restore_array(small_loaded, decode_image(astronaut_png)[0])
    assert quality_metrics(res["output"], ref)["psnr"] >= 45.0
