"""The request-body cap refuses a chunked upload *while it streams*: the app stops reading early.

An HTTP client cannot tell (httpx writes the whole request before reading the answer, and the
server keeps discarding what arrives), so the count is taken at the ASGI boundary: the real
application (middleware + endpoint) is called with a ``receive`` that hands out 64 KiB chunks
of a 26 MB chunked body and counts how many were asked for.
"""

from __future__ import annotations

import asyncio
import json
import math

from restorekit.inference.options import RestoreOptions
from restorekit.serve.api import ServeConfig, create_app
from restorekit.serve.core import Limits, ModelStore

CHUNKS = 400
CHUNK = 65_536


def _call(app, headers: list[tuple[bytes, bytes]]) -> tuple[int, dict, int]:
    """(status, JSON body, chunks read) of one POST /v1/restore streamed into ``app``."""
    read = {"n": 0}
    sent: list[dict] = []

    async def receive() -> dict:
        if read["n"] >= CHUNKS:
            await asyncio.sleep(3600)  # the client has nothing more; a real one would wait
        read["n"] += 1
        return {"type": "http.request", "body": b"\x89PNG" + b"\0" * (CHUNK - 4), "more_body": read["n"] < CHUNKS}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/restore", "raw_path": b"/v1/restore", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"test"), *headers], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}

    async def main() -> None:
        await asyncio.wait_for(app(scope, receive, send), timeout=60)

    asyncio.run(main())
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), read["n"]


def _app(gate_model):
    net, _entered, _release = gate_model
    store = ModelStore(modules={"gate": net}, device="cpu")
    cfg = ServeConfig(limits=Limits(max_upload_bytes=400_000, max_pixels=300 * 300), preload=False,
                      options=RestoreOptions(tile=0, backend="eager"))
    return create_app(cfg, store=store), cfg


def test_chunked_body_over_the_limit_is_cut_off_while_streaming(gate_model):
    app, cfg = _app(gate_model)
    status, body, read = _call(app, [(b"content-type", b"image/png"), (b"transfer-encoding", b"chunked")])
    assert status == 413 and body["code"] == "body_too_large", body
    limit_chunks = math.ceil(cfg.body_limit / CHUNK)
    # it stopped within a chunk of the limit, not after the 400 chunks offered
    assert limit_chunks <= read <= limit_chunks + 1, (read, limit_chunks)


def test_declared_length_over_the_limit_is_refused_before_the_endpoint(gate_model):
    app, cfg = _app(gate_model)
    status, body, _read = _call(app, [(b"content-type", b"image/png"), (b"content-length", str(CHUNKS * CHUNK).encode())])
    assert status == 413 and body["code"] == "body_too_large"
    assert f"{cfg.body_limit:,}" in body["error"] or f"{cfg.body_limit:,}" in body["message"]
