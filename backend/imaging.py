"""Scaling stored thumbnails for display: whole-number zoom, nearest neighbour, PNG out."""

from __future__ import annotations

import io
import math

from PIL import Image

# Default displayed size of an image's longer side, in pixels: 8x8 digits get 14x,
# 28x28 MNIST digits 4x, 32x32 CIFAR images 4x.
TARGET_SIDE = 112


def default_scale(width: int, height: int) -> int:
    return max(1, math.ceil(TARGET_SIDE / max(width, height, 1)))


def scale_png(png: bytes, scale: int | None) -> bytes:
    """Return `png` enlarged `scale` times with nearest-neighbour sampling, so pixels stay sharp."""
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        factor = scale or default_scale(*image.size)
        if factor != 1:
            size = (image.width * factor, image.height * factor)
            image = image.resize(size, Image.Resampling.NEAREST)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
    return buffer.getvalue()
