"""Azure Functions app (Python v2 programming model) serving a restorekit model.

Routes (anonymous, CORS ``*``):
  /api/imageDeblur  GET | POST | OPTIONS  - POST {"image": "<base64>"} -> the seed's JSON answer
  /api/test         GET                   - liveness and model status

The handler logic lives in ``restorekit.serve.azure`` (importable and tested);
this file only registers the routes. The model is loaded lazily on the first
POST from the app setting RESTOREKIT_MODEL_PATH (default: model/model.safetensors
beside this file), on the CPU. See README.md in this folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import azure.functions as func

# relative model paths resolve against this folder (the deployed app root)
os.environ.setdefault("RESTOREKIT_APP_DIR", str(Path(__file__).resolve().parent))
# CPU only on Azure Functions, even if a CUDA build of torch were installed
os.environ.setdefault("RESTOREKIT_DEVICE", "cpu")

from restorekit.serve.azure import handle_image_deblur, handle_test  # noqa: E402

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="imageDeblur", methods=["GET", "POST", "OPTIONS"], auth_level=func.AuthLevel.ANONYMOUS)
def imageDeblur(req: func.HttpRequest) -> func.HttpResponse:  # noqa: N802 - the seed's route name
    """Deblur the base64 image in the JSON body (see restorekit.serve.azure)."""
    return handle_image_deblur(req)


@app.route(route="test", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def test(req: func.HttpRequest) -> func.HttpResponse:
    """Liveness: the app is up; says where the model is and whether it is loaded."""
    return handle_test(req)
