"""Image input/output: any common file into float32 RGB in [0, 1], and atomic writes."""

from restorekit.io.image import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    ImageInfo,
    decode_image,
    image_to_tensor,
    is_image_name,
    read_image,
    read_image_with_info,
    tensor_to_image,
    write_image,
    encode_image,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "ImageInfo",
    "decode_image",
    "encode_image",
    "image_to_tensor",
    "is_image_name",
    "read_image",
    "read_image_with_info",
    "tensor_to_image",
    "write_image",
]
