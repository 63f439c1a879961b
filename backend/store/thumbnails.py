"""PNG thumbnails of dataset images, stored with each example."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# Pillow image modes by channel count of a (H, W, C) uint8 image.
MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def png_bytes(image: np.ndarray) -> bytes:
    """Encode one uint8 (H, W, C) image as PNG at its own size."""
    channels = image.shape[-1]
    if image.dtype != np.uint8 or image.ndim != 3 or channels not in MODES:
        raise ValueError(
            f"cannot make a thumbnail of an image with dtype {image.dtype} and shape "
            f"{image.shape}; expected uint8 (H, W, C) with C in {sorted(MODES)}"
        )
    pixels = image[..., 0] if channels == 1 else image
    buffer = io.BytesIO()
    # Level 1 compresses small images almost as well as the default level 6, and faster.
    Image.fromarray(np.ascontiguousarray(pixels), MODES[channels]).save(
        buffer, format="PNG", compress_level=1
    )
    return buffer.getvalue()
