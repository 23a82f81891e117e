"""The FastAPI service under a real uvicorn on 127.0.0.1: round trips, every bad request, limits, concurrency."""

from __future__ import annotations

import base64
import re
import threading
import time

import httpx
import numpy as np
import pytest

from restorekit.io import decode_image, encode_image
from restorekit.serve.api import ApiError, ServeConfig, choose_format, create_app
from restorekit.inference.options import RestoreOptions
from restorekit.serve.core import ModelStore, restore_array


def test_multipart_round_trip_matches_the_core(small_service, astronaut_png):
    base_url, loaded = small_service
    r = httpx.post(f"{base_url}/v1/restore", files={"image": ("astronaut.png", astronaut_png, "image/png")}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-image-size"] == "128x128"
    assert r.headers["x-model"] == "deblur_small"
    assert float(r.headers["x-processing-time"]) > 0
    out = decode_image(r.content)[0]
    expected = restore_array(loaded, decode_image(astronaut_png)[0])
    # the service encodes 8-bit PNG: identical to quantizing the core's output
    assert out.shape == (128, 128, 3)
    assert np.array_equal(np.round(out * 255), np.round(np.clip(expected, 0, 1) * 255))
    assert r.content == encode_image(expected, "PNG")


def test_raw_body_and_format_negotiation(small_service, astronaut_png):
    base_url, _ = small_service
    png = httpx.post(f"{base_url}/v1/restore", content=astronaut_png, headers={"content-type": "image/png"}, timeout=60)
    tif = httpx.post(
        f"{base_url}/v1/restore", content=astronaut_png, headers={"content-type": "image/png", "accept": "image/tiff"}, timeout=60
    )
    jpg = httpx.post(f"{base_url}/v1/restore?format=jpg", files={"image": ("a.png", astronaut_png)}, timeout=60)
    webp = httpx.post(
        f"{base_url}/v1/restore",
        files={"file": ("a.png", astronaut_png)},
        headers={"accept": "text/html;q=0.9, image/webp;q=0.95, image/png;q=0.1"},
        timeout=60,
    )
    assert [x.status_code for x in (png, tif, jpg, webp)] == [200, 200, 200, 200]
    assert tif.headers["content-type"] == "image/tiff" and tif.content[:2] in (b"II", b"MM")
    assert jpg.headers["content-type"] == "image/jpeg" and jpg.content[:3] == b"\xff\xd8\xff"
    assert webp.headers["content-type"] == "image/webp" and webp.content[8:12] == b"WEBP"
    # TIFF and PNG are both lossless 8-bit: same pixels
    assert np.array_equal(decode_image(png.content)[0], decode_image(tif.content)[0])
    # JPEG is lossy but close to the PNG pixels
    assert np.abs(decode_image(jpg.content)[0] - decode_image(png.content)[0]).mean() < 0.02


def test_seed_json_form(small_service, astronaut_png):
    base_url, loaded = small_service
    b64 = base64.b64encode(astronaut_png).decode()
    r = httpx.post(f"{base_url}/v1/restore", json={"image": b64}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"success", "deblurred_image", "original_image", "processing_time", "image_size"}
    assert body["success"] is True
    assert body["image_size"] == "128x128"
    assert re.fullmatch(r"\d+\.\ds", body["processing_time"])
    assert body["original_image"] == f"data:image/png;base64,{b64}"
    assert body["deblurred_image"].startswith("data:image/jpeg;base64,")
    jpeg = base64.b64decode(body["deblurred_image"].split(",", 1)[1])
    expected = restore_array(loaded, decode_image(astronaut_png)[0])
    assert jpeg == encode_image(expected, "JPEG", quality=90)  # seed: JPEG quality 90
    # a data URL is accepted as input too, and ?format=png switches the output
    r2 = httpx.post(f"{base_url}/v1/restore?format=png", json={"image": f"data:image/png;base64,{b64}"}, timeout=60)
    assert r2.json()["deblurred_image"].startswith("data:image/png;base64,")


def _err(r: httpx.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["success"] is False and isinstance(body["error"], str) and body["error"]
    assert set(body) == {"success", "error", "message", "code"}
    if code is not None:
        assert body["code"] == code, body
    return body


def test_every_bad_request_gets_a_4xx_json_error(small_service, astronaut_png, photo):
    base_url, _ = small_service
    url = f"{base_url}/v1/restore"
    post = lambda **kw: httpx.post(url, timeout=60, **kw)  # noqa: E731
    truncated = astronaut_png[: len(astronaut_png) // 2]
    big = encode_image(photo("astronaut", None)[:320, :320], "PNG")  # 320x320 > 300*300 pixels
    noisy = np.random.default_rng(0).random((400, 400, 3)).astype(np.float32)
    too_many_bytes = encode_image(noisy, "PNG")  # incompressible: > 400 kB
    assert len(too_many_bytes) > 400_000

    b = _err(post(files={"image": ("notes.txt", b"these are not pixels", "text/plain")}), 400, "bad_image")
    assert "notes.txt" in b["error"] and "not a recognised image format" in b["error"]
    b = _err(post(files={"image": ("half.png", truncated, "image/png")}), 400, "bad_image")
    assert "half.png" in b["error"]
    b = _err(post(files={"image": ("empty.png", b"", "image/png")}), 400, "bad_image")
    assert "empty" in b["error"]
    b = _err(post(files={"image": ("big.png", big, "image/png")}), 413, "too_many_pixels")
    assert "320x320" in b["error"]
    b = _err(post(content=too_many_bytes, headers={"content-type": "image/png"}), 413, "too_many_bytes")
    assert "400,000 bytes" in b["error"]
    b = _err(post(content=b"\0" * 1_000_000, headers={"content-type": "image/png"}), 413, "body_too_large")
    assert "1,000,000 bytes" in b["error"]
    _err(post(content=b"{not json", headers={"content-type": "application/json"}), 400, "bad_json")
    _err(post(json=["image"]), 400, "bad_json")
    _err(post(content=b"[" * 100_000, headers={"content-type": "application/json"}), 400, "bad_json")
    _err(post(content=b"\xff\xfe{}", headers={"content-type": "application/json"}), 400, "bad_json")
    _err(post(json={"picture": "abc"}), 400, "missing_image")
    _err(post(json={"image": "!!!not base64!!!"}), 400, "bad_base64")
    _err(post(json={"image": base64.b64encode(b"GIF89a junk").decode()}), 400, "bad_image")
    _err(post(content=b"image=1", headers={"content-type": "application/x-www-form-urlencoded"}), 415)
    _err(post(content=b"x"), 415)
    _err(post(files={"other": ("a.png", astronaut_png)}), 400, "missing_image")
    _err(post(content=b"--xyz\r\nbroken", headers={"content-type": "multipart/form-data; boundary=xyz"}), 400)
    _err(httpx.post(f"{url}?model=nope", files={"image": ("a.png", astronaut_png)}, timeout=60), 404, "unknown_model")
    _err(httpx.post(f"{url}?tile=7", files={"image": ("a.png", astronaut_png)}, timeout=60), 400, "bad_parameter")
    _err(httpx.post(f"{url}?format=gif", files={"image": ("a.png", astronaut_png)}, timeout=60), 400, "bad_format")
    _err(httpx.post(f"{url}?quality=0", files={"image": ("a.png", astronaut_png)}, timeout=60), 400, "bad_parameter")
    _err(post(files={"image": ("a.png", astronaut_png)}, headers={"accept": "text/html"}), 406, "not_acceptable")
    _err(httpx.get(url, timeout=10), 405)
    _err(httpx.get(f"{base_url}/nowhere", timeout=10), 404)

    # the server is still alive and still restores
    health = httpx.get(f"{base_url}/healthz", timeout=10).json()
    assert health["status"] == "ok" and health["errors"] >= 20
    assert httpx.post(url, files={"image": ("a.png", astronaut_png)}, timeout=60).status_code == 200


def test_streamed_body_over_the_limit_is_refused_while_streaming(small_service):
    base_url, _ = small_service
    sent = {"n": 0}

    def chunks():  # no Content-Length: chunked transfer
        for _ in range(40):
            sent["n"] += 1
            yield b"\x89PNG" + b"\0" * 65_532

    r = httpx.post(f"{base_url}/v1/restore", content=chunks(), headers={"content-type": "image/png"}, timeout=60)
    _err(r, 413, "body_too_large")


def test_health_models_and_openapi(small_service):
    base_url, _ = small_service
    h = httpx.get(f"{base_url}/healthz").json()
    assert h["status"] == "ok" and h["models"] == ["deblur_small"] and h["peak_rss_mb"] > 10
    m = httpx.get(f"{base_url}/v1/models").json()
    assert m["default"] == "deblur_small"
    assert m["models"][0]["arch"] == "deblur_unet" and m["models"][0]["loaded"] is True
    assert m["models"][0]["params"] > 100_000
    assert m["limits"] == {"max_upload_bytes": 400_000, "max_pixels": 90_000}
    spec = httpx.get(f"{base_url}/openapi.json").json()
    assert "/v1/restore" in spec["paths"]
    body = spec["paths"]["/v1/restore"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(body)
    assert httpx.get(f"{base_url}/docs").status_code == 200


def test_concurrency_limit_answers_503_with_retry_after(serve_app, gate_model, astronaut_png):
    net, entered, release = gate_model
    store = ModelStore(modules={"gate": net}, device="cpu")
    cfg = ServeConfig(max_concurrency=1, queue_timeout_s=0.0, retry_after_s=3, preload=False,
                      options=RestoreOptions(tile=0, backend="eager"))
    with serve_app(create_app(cfg, store=store)) as url:
        first: dict = {}

        def send_first() -> None:
            first["r"] = httpx.post(f"{url}/v1/restore", files={"image": ("a.png", astronaut_png)}, timeout=60)

        t = threading.Thread(target=send_first)
        t.start()
        assert entered.wait(30), "first request never reached the model"
        # the event loop still answers while the only slot is busy
        h = httpx.get(f"{url}/healthz", timeout=5).json()
        assert h["in_flight"] == 1
        busy = httpx.post(f"{url}/v1/restore", files={"image": ("b.png", astronaut_png)}, timeout=10)
        body = _err(busy, 503, "busy")
        assert busy.headers["retry-after"] == "3"
        assert "1 inference slot" in body["error"]
        release.set()
        t.join(30)
        assert first["r"].status_code == 200
        # identity model: output == input pixels
        assert np.array_equal(decode_image(first["r"].content)[0], decode_image(astronaut_png)[0])
        assert httpx.get(f"{url}/healthz").json()["in_flight"] == 0


def test_requests_queue_for_a_slot_then_succeed(serve_app, gate_model, astronaut_png):
    net, entered, release = gate_model
    store = ModelStore(modules={"gate": net}, device="cpu")
    cfg = ServeConfig(max_concurrency=1, max_queue=4, queue_timeout_s=30.0, preload=False, options=RestoreOptions(tile=0, backend="eager"))
    with serve_app(create_app(cfg, store=store)) as url:
        results: list[int] = []

        def send() -> None:
            results.append(httpx.post(f"{url}/v1/restore", files={"image": ("a.png", astronaut_png)}, timeout=60).status_code)

        threads = [threading.Thread(target=send) for _ in range(3)]
        threads[0].start()
        assert entered.wait(30)
        for th in threads[1:]:
            th.start()
        deadline = time.monotonic() + 20
        while httpx.get(f"{url}/healthz").json()["queued"] < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert httpx.get(f"{url}/healthz").json()["queued"] == 2
        release.set()
        for th in threads:
            th.join(30)
        assert results == [200, 200, 200]


def test_request_timeout_answers_504_and_frees_the_slot_later(serve_app, gate_model, astronaut_png):
    net, entered, release = gate_model
    store = ModelStore(modules={"gate": net}, device="cpu")
    cfg = ServeConfig(max_concurrency=1, queue_timeout_s=0.0, request_timeout_s=0.3, preload=False,
                      options=RestoreOptions(tile=0, backend="eager"))
    with serve_app(create_app(cfg, store=store)) as url:
        r = httpx.post(f"{url}/v1/restore", files={"image": ("a.png", astronaut_png)}, timeout=30)
        _err(r, 504, "timeout")
        assert httpx.get(f"{url}/healthz").json()["in_flight"] == 1  # the thread still runs
        release.set()
        deadline = time.monotonic() + 20
        while httpx.get(f"{url}/healthz").json()["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert httpx.get(f"{url}/healthz").json()["in_flight"] == 0
        assert httpx.post(f"{url}/v1/restore", files={"image": ("a.png", astronaut_png)}, timeout=30).status_code == 200


def test_cors_is_configurable(serve_app, small_package):
    closed = create_app(ServeConfig(models=[str(small_package)], preload=False))
    opened = create_app(ServeConfig(models=[str(small_package)], preload=False, cors_origins=["https://example.org"]))
    pre = {"origin": "https://example.org", "access-control-request-method": "POST"}
    with serve_app(closed) as url:
        assert "access-control-allow-origin" not in httpx.options(f"{url}/v1/restore", headers=pre).headers
    with serve_app(opened) as url:
        r = httpx.options(f"{url}/v1/restore", headers=pre)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://example.org"


def test_a_broken_extra_model_answers_500_and_the_server_stays_up(serve_app, small_package, tmp_path, astronaut_png):
    junk = tmp_path / "broken.safetensors"
    junk.write_bytes(b"not a model")
    app = create_app(ServeConfig(models=[str(small_package), str(junk)], device="cpu", options=RestoreOptions(backend="eager")))
    with serve_app(app) as url:
        r = httpx.post(f"{url}/v1/restore?model=broken", files={"image": ("a.png", astronaut_png)}, timeout=60)
        body = _err(r, 500, "model_unavailable")
        assert "broken.safetensors" in body["error"]
        assert httpx.post(f"{url}/v1/restore", files={"image": ("a.png", astronaut_png)}, timeout=60).status_code == 200


def test_choose_format_rules():
    assert choose_format(None, None, "png") == "png"
    assert choose_format("TIF", "image/png", "png") == "tiff"
    assert choose_format(None, "image/*", "jpeg") == "jpeg"
    assert choose_format(None, "image/png;q=0.5, image/jpeg", "png") == "jpeg"
    assert choose_format(None, "application/json, */*;q=0.1", "png") == "png"
    with pytest.raises(ApiError) as e:
        choose_format(None, "application/json", "png")
    assert e.value.status == 406


def test_bad_configuration_fails_before_serving(tmp_path):
    from restorekit.errors import CheckpointError, ConfigError

    with pytest.raises(CheckpointError, match="missing.safetensors"):
        create_app(ServeConfig(models=[str(tmp_path / "missing.safetensors")]))
    with pytest.raises(ConfigError, match="no model"):
        create_app(ServeConfig())
    with pytest.raises(ConfigError, match="max_concurrency"):
        ServeConfig(max_concurrency=0)
