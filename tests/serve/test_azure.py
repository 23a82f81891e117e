"""Azure Functions handlers, called with real azure.functions.HttpRequest objects: the seed's JSON contract."""

from __future__ import annotations

import base64
import importlib.util
import json
import re
from pathlib import Path

import azure.functions as func
import pytest

from restorekit.io import decode_image, encode_image
from restorekit.serve.azure import CORS_HEADERS, DeblurService, handle_image_deblur, handle_test, set_default_service
from restorekit.serve.core import Limits, restore_array

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_APP = ROOT / "deploy" / "azure_functions" / "function_app.py"


def _req(method: str, body: bytes | None = None, route: str = "imageDeblur") -> func.HttpRequest:
    return func.HttpRequest(
        method=method,
        url=f"http://localhost:7071/api/{route}",
        headers={"Content-Type": "application/json"} if body is not None else {},
        params={},
        route_params={},
        body=body or b"",
    )


def _json_post(payload) -> func.HttpRequest:  # noqa: ANN001
    return _req("POST", json.dumps(payload).encode())


@pytest.fixture(scope="module")
def service(small_package) -> DeblurService:
    return DeblurService(small_package, limits=Limits(max_pixels=200 * 200))


def _body(resp: func.HttpResponse) -> dict:
    assert resp.mimetype == "application/json"
    for k, v in CORS_HEADERS.items():
        assert resp.headers[k] == v
    return json.loads(resp.get_body())


def test_post_answers_the_seed_contract(service, astronaut_png):
    b64 = base64.b64encode(astronaut_png).decode()
    resp = handle_image_deblur(_json_post({"image": b64}), service)
    assert resp.status_code == 200
    body = _body(resp)
    # structure, key order and value formats of the seed's answer
    assert list(body) == ["success", "deblurred_image", "original_image", "processing_time", "image_size"]
    assert body["success"] is True
    assert re.fullmatch(r"data:image/jpeg;base64,[A-Za-z0-9+/]+=*", body["deblurred_image"])
    assert body["original_image"] == f"data:image/png;base64,{b64}"
    assert re.fullmatch(r"\d+\.\ds", body["processing_time"])
    assert body["image_size"] == "128x128"
    jpeg = base64.b64decode(body["deblurred_image"].split(",", 1)[1])
    # same core as the service and the CLI: the JPEG (quality 90) of the core's output
    expected = restore_array(service.model(), decode_image(astronaut_png)[0], service.options)
    assert jpeg == encode_image(expected, "JPEG", quality=90)
    assert decode_image(jpeg)[0].shape == (128, 128, 3)
    assert service.loaded


def test_options_get_and_test_route(service):
    pre = handle_image_deblur(_req("OPTIONS"), service)
    assert pre.status_code == 204 and pre.headers["Access-Control-Allow-Origin"] == "*"
    assert pre.get_body() == b""
    info = handle_image_deblur(_req("GET"), service)
    assert info.status_code == 200 and _body(info)["success"] is True
    t = handle_test(_req("GET", route="test"), service)
    tb = _body(t)
    assert t.status_code == 200 and tb["status"] == "ok" and tb["device"] == "cpu" and tb["model_exists"] is True


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b"", "Request body is required"),
        (b"{not json", "must be JSON"),
        (b"[1, 2]", "JSON object"),
        (b"[" * 100_000, "must be JSON"),
        (json.dumps({"picture": "x"}).encode(), "Image data is required"),
        (json.dumps({"image": ""}).encode(), "Image data is required"),
        (json.dumps({"image": "%%%"}).encode(), "Invalid image data"),
        (json.dumps({"image": base64.b64encode(b"plain text").decode()}).encode(), "not a recognised image format"),
    ],
)
def test_bad_requests_answer_400_with_the_seed_error_shape(service, body, fragment):
    resp = handle_image_deblur(_req("POST", body), service)
    assert resp.status_code == 400
    b = _body(resp)
    assert list(b) == ["success", "error"] and b["success"] is False
    assert fragment in b["error"]


def test_truncated_and_oversized_images_are_400(service, astronaut_png, photo):
    truncated = base64.b64encode(astronaut_png[:400]).decode()
    b = _body(handle_image_deblur(_json_post({"image": truncated}), service))
    assert b["success"] is False and "Invalid image data" in b["error"]
    big = base64.b64encode(encode_image(photo("astronaut", 256), "PNG")).decode()  # 256x256 > 200*200
    resp = handle_image_deblur(_json_post({"image": big}), service)
    assert resp.status_code == 400 and "too many pixels" in _body(resp)["error"]


def test_server_side_failures_answer_500(tmp_path, astronaut_png):
    missing = DeblurService(tmp_path / "nowhere.safetensors")
    resp = handle_image_deblur(_json_post({"image": base64.b64encode(astronaut_png).decode()}), missing)
    assert resp.status_code == 500
    b = _body(resp)
    assert list(b) == ["success", "error", "message"]
    assert b["success"] is False and b["message"] == "Deblurring failed" and "nowhere.safetensors" in b["error"]
    assert handle_test(_req("GET", route="test"), missing).status_code == 200  # the app itself is up


def test_model_path_from_app_setting_relative_to_app_dir(monkeypatch, tmp_path, small_package):
    import shutil

    (tmp_path / "model").mkdir()
    shutil.copy(small_package, tmp_path / "model" / "model.safetensors")
    monkeypatch.delenv("RESTOREKIT_MODEL_PATH", raising=False)
    assert DeblurService(base_dir=tmp_path).model_path == tmp_path / "model" / "model.safetensors"
    monkeypatch.setenv("RESTOREKIT_MODEL_PATH", "model/model.safetensors")
    monkeypatch.setenv("RESTOREKIT_TILE", "64")
    svc = DeblurService(base_dir=tmp_path)
    assert svc.options.tile == 64 and svc.model().device == "cpu"


def test_function_app_registers_the_seed_routes(monkeypatch, small_package, astronaut_png):
    monkeypatch.setenv("RESTOREKIT_MODEL_PATH", str(small_package))
    set_default_service(None)
    spec = importlib.util.spec_from_file_location("function_app_under_test", FUNCTION_APP)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    try:
        funcs = {f.get_function_name(): f for f in mod.app.get_functions()}
        assert set(funcs) == {"imageDeblur", "test"}
        triggers = {name: json.loads(f.get_function_json())["bindings"][0] for name, f in funcs.items()}
        assert triggers["imageDeblur"]["route"] == "imageDeblur"
        assert sorted(m.upper() for m in triggers["imageDeblur"]["methods"]) == ["GET", "OPTIONS", "POST"]
        assert triggers["imageDeblur"]["authLevel"].upper() == "ANONYMOUS"
        assert triggers["test"]["route"] == "test" and [m.upper() for m in triggers["test"]["methods"]] == ["GET"]
        user_fn = funcs["imageDeblur"].get_user_function()
        resp = user_fn(_json_post({"image": base64.b64encode(astronaut_png).decode()}))
        assert resp.status_code == 200 and json.loads(resp.get_body())["image_size"] == "128x128"
    finally:
        set_default_service(None)
