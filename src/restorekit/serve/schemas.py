"""Pydantic request and response schemas of the HTTP service (they make FastAPI's generated OpenAPI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class RestoreQuery(BaseModel):
    """Query parameters of ``POST /v1/restore``; unknown parameters are refused (400 naming them).

    ``tile``/``overlap``/``blend``/``ensemble``/``tlc``/``strength`` are
    :class:`~restorekit.inference.options.RestoreOptions` fields, validated exactly as
    the ``restorekit restore`` flags of the same name (multipart form fields of the
    same names override them).
    """

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="model name (GET /v1/models); default: the first")
    format: str | None = Field(None, description="png | jpeg | tiff | webp (else from Accept; PNG by default, JPEG for JSON)")
    quality: int | None = Field(None, ge=1, le=100, description="JPEG/WebP quality")
    tile: str | None = Field(None, description="'auto', 0 (whole image) or a tile size in pixels (>= 16)")
    overlap: str | None = Field(None, description="tile overlap: a fraction of the tile (< 1) or pixels")
    blend: str | None = Field(None, description="linear | cosine")
    ensemble: bool | None = Field(None, description="x8 flip/rotation self-ensemble")
    tlc: str | None = Field(None, description="auto | on | off (test-time local converter, where the model supports it)")
    strength: float | None = Field(None, description="blend of the result with the input, in [0, 1]")

    def option_values(self) -> dict[str, Any]:
        """The restore-option fields that were given."""
        keys = ("tile", "overlap", "blend", "ensemble", "tlc", "strength")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


class SeedJsonRequest(BaseModel):
    """The deblurring seed's JSON upload."""

    image: str = Field(description="base64 of the image file (a data: URL is accepted)")
    name: str | None = None


class SeedJsonResponse(BaseModel):
    """The deblurring seed's JSON answer."""

    success: Literal[True] = True
    deblurred_image: str = Field(description="data:<mime>;base64,... of the restored image")
    original_image: str = Field(description="data:<mime>;base64,... of the upload, unchanged")
    processing_time: str = Field(examples=["0.4s"])
    image_size: str = Field(examples=["640x480"])


class ErrorResponse(BaseModel):
    """Every error answer."""

    success: Literal[False] = False
    error: str = Field(description="what is wrong, naming the file or setting")
    message: str = Field(description="summary of the status")
    code: str = Field(description="machine-readable code: bad_image, too_many_pixels, busy, ...")


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    models: list[str]
    default_model: str
    device: str
    in_flight: int
    queued: int
    max_concurrency: int
    served: int
    errors: int
    uptime_s: float
    peak_rss_mb: float


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    source: str
    default: bool
    loaded: bool
    arch: str | None = None
    value_range: str | None = None
    params: int | None = None
    device: str | None = None
    rgb: bool | None = None
    inputs: list[str] | None = None
    runtime: str | None = None


class LimitsOut(BaseModel):
    max_upload_bytes: int
    max_pixels: int


class ModelsResponse(BaseModel):
    default: str
    models: list[ModelEntry]
    limits: LimitsOut
    formats: list[str]
    options: dict[str, Any] = Field(description="the server's default restore options")
