"""Images: PNG scaled with nearest neighbour, with caching headers."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from compute.datasets import load_dataset


def test_image_scaled_without_blur(client, run_name):
    response = client.get(f"/api/runs/{run_name}/train/7/image.png", params={"scale": 4})

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    image = np.asarray(Image.open(io.BytesIO(response.content)))
    original = load_dataset("digits").x_train[7][..., 0]
    assert image.shape == (32, 32)
    # Nearest neighbour repeats each pixel in a 4x4 block and invents no new values.
    assert np.array_equal(image, np.kron(original, np.ones((4, 4), dtype=np.uint8)))


def test_image_default_scale(client, run_name):
    response = client.get(f"/api/runs/{run_name}/test/0/image.png")

    assert Image.open(io.BytesIO(response.content)).size == (112, 112)


def test_image_etag_returns_not_modified(client, run_name):
    first = client.get(f"/api/runs/{run_name}/train/7/image.png")
    again = client.get(
        f"/api/runs/{run_name}/train/7/image.png", headers={"If-None-Match": first.headers["etag"]}
    )

    assert "max-age" in first.headers["cache-control"]
    assert again.status_code == 304
    assert again.content == b""


def test_image_etag_differs_by_scale(client, run_name):
    small = client.get(f"/api/runs/{run_name}/train/7/image.png", params={"scale": 2})
    large = client.get(f"/api/runs/{run_name}/train/7/image.png", params={"scale": 3})

    assert small.headers["etag"] != large.headers["etag"]
