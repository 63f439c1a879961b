"""A folder of image files with one subfolder per class.

Two layouts are read:

    DIR/train/CLASS/*  and  DIR/test/CLASS/*   the given split
    DIR/CLASS/*                               a seeded stratified split

(DIR/train/CLASS/* without DIR/test is split the second way.) Classes are the
subfolder names in sorted order, over both splits. Examples are ordered by
class, then by file name, so a reload gives every image the same index. Files
whose extension Pillow does not register as an image format, and names starting
with '.', are ignored and recorded in the dataset's source.

Every image is decoded before anything trains. Pixels become uint8:
- 16- and 32-bit grayscale is scaled from 0..65535 to 0..255;
- an alpha channel is composited over black, round(value * alpha / 255);
- palette images become RGB (RGBA first if they have transparency);
- the EXIF orientation tag is applied, and a multi-frame file gives its first frame.
The dataset has 1 channel if every image is grayscale (modes 1, L, LA, I, I;16),
else 3, with grayscale images repeated over the three channels. The target size
is the `size` option, or else the most common size, with ties going to the size
seen first in the order above. Other images are resized to it with Pillow's
bilinear filter, which averages over the covered area when it shrinks, and the
aspect ratio is not kept.
"""

from __future__ import annotations

import logging
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from compute.datasets.dataset import Dataset, DatasetError, stratified_split

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset(extension.lower() for extension in Image.registered_extensions())
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N"})
WIDE_GRAY_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
DEFAULT_TEST_FRACTION = 0.2
DEFAULT_SPLIT_SEED = 0
# Pillow's plugins raise these for corrupt or truncated files.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error,
                 Image.DecompressionBombError)


class BadImageError(Exception):
    """A file that cannot be used as an image; the message gives the reason."""


@dataclass
class FolderListing:
    """The image files of each split, their class names, and what was left out."""

    layout: str  # "train/test" or "split"
    classes: tuple[str, ...]
    files: dict[str, list[tuple[Path, int]]]  # split -> (path, class index) in load order
    ignored: list[str] = field(default_factory=list)


def list_folder(folder: Path) -> FolderListing:
    """Find the layout, the classes and the image files of a dataset folder."""
    if not folder.is_dir():
        raise DatasetError(
            f"image folder {folder} not found; pass a folder with one subfolder per class "
            "as folder:DIR"
        )
    train_root, test_root = folder / "train", folder / "test"
    if test_root.is_dir() and not train_root.is_dir():
        raise DatasetError(
            f"{folder} has a test/ folder but no train/ folder; add train/CLASS/ folders "
            "beside it, or put the class folders directly in DIR for a seeded split"
        )
    if train_root.is_dir() and test_root.is_dir():
        roots = {"train": train_root, "test": test_root}
        layout = "train/test"
    else:
        roots = {"all": train_root if train_root.is_dir() else folder}
        layout = "split"

    class_folders = {split: _subfolders(root) for split, root in roots.items()}
    classes = tuple(sorted(set().union(*(names for names in class_folders.values()))))
    if not classes:
        raise DatasetError(
            f"{folder} has no class folders; put the images of each class in their own "
            "subfolder, DIR/CLASS/*.png or DIR/train/CLASS/*.png and DIR/test/CLASS/*.png"
        )

    listing = FolderListing(layout, classes, {split: [] for split in roots})
    for split, root in roots.items():
        for label, name in enumerate(classes):
            if name not in class_folders[split]:
                logger.warning("%s has no folder for class %r", root, name)
                continue
            for path in sorted((root / name).iterdir()):
                relative = str(path.relative_to(folder))
                if path.name.startswith(".") or not path.is_file():
                    continue
                if path.suffix.lower() not in IMAGE_EXTENSIONS:
                    listing.ignored.append(relative)
                    continue
                listing.files[split].append((path, label))
    return listing


def _subfolders(root: Path) -> set[str]:
    return {path.name for path in root.iterdir() if path.is_dir() and not path.name.startswith(".")}


def decode_image(path: Path) -> np.ndarray:
    """Decode one file to uint8 pixels: (H, W) if grayscale, else (H, W, 3)."""
    if path.stat().st_size == 0:
        raise BadImageError("empty file (0 bytes)")
    # NOTE: if other code sets PIL.ImageFile.LOAD_TRUNCATED_IMAGES to True, load()
    # fills in truncated images instead of raising. verify() still checks PNG chunks
    # and CRCs, but truncated JPEGs then pass.
    try:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            image.load()
            return _pixels(ImageOps.exif_transpose(image))
    except Image.UnidentifiedImageError:
        raise BadImageError("not an image format that Pillow can read") from None
    except DECODE_ERRORS as error:
        raise BadImageError(f"{type(error).__name__}: {error}") from None


def _pixels(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in WIDE_GRAY_MODES:
        values = np.asarray(image).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise BadImageError(
                f"mode {mode} pixel values from {values.min()} to {values.max()} lie "
                "outside 0..65535"
            )
        return ((values * 255 + 32767) // 65535).astype(np.uint8)
    if mode in ("1", "L"):
        return np.asarray(image.convert("L"))
    if mode in ("LA", "La"):
        return _over_black(np.asarray(image.convert("LA")))
    if mode == "F":
        raise BadImageError("32-bit float pixels (mode F) are not supported; save 8- or 16-bit")
    if mode in ("P", "PA") and (mode == "PA" or "transparency" in image.info):
        return _over_black(np.asarray(image.convert("RGBA")))
    if mode in ("RGBA", "RGBa"):
        return _over_black(np.asarray(image.convert("RGBA")))
    return np.asarray(image.convert("RGB"))


def _over_black(pixels: np.ndarray) -> np.ndarray:
    """Composite color-and-alpha pixels over black: round(value * alpha / 255)."""
    color = pixels[..., :-1].astype(np.uint32)
    alpha = pixels[..., -1:].astype(np.uint32)
    composited = (color * alpha + 127) // 255
    if composited.shape[-1] == 1:
        composited = composited[..., 0]
    return composited.astype(np.uint8)


def decode_all(folder: Path, listing: FolderListing, skip_bad_files: bool):
    """Decode every listed file; return the images per split and the skipped files."""
    decoded: dict[str, list[tuple[np.ndarray, int]]] = {split: [] for split in listing.files}
    bad: list[dict[str, str]] = []
    for split, files in listing.files.items():
        for path, label in files:
            try:
                decoded[split].append((decode_image(path), label))
            except BadImageError as error:
                bad.append({"file": str(path.relative_to(folder)), "error": str(error)})

    if bad and not skip_bad_files:
        lines = "\n".join(f"  {item['file']}: {item['error']}" for item in bad)
        raise DatasetError(
            f"{folder}: {len(bad)} of {sum(map(len, listing.files.values()))} image files "
            f"cannot be read:\n{lines}\nfix or remove them, or add ?skip_bad_files=1 to the "
            "dataset spec (or pass --skip-bad-files) to leave them out"
        )
    if bad:
        logger.warning("%s: skipped %d unreadable image files", folder, len(bad))
    return decoded, bad


def common_size(images: list[np.ndarray]) -> tuple[int, int]:
    """Return the most common (height, width); ties go to the size seen first."""
    return Counter(image.shape[:2] for image in images).most_common(1)[0][0]


def conform(image: np.ndarray, channels: int, size: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """Return the image as (H, W, channels) at `size`, and whether it was resized."""
    resized = image.shape[:2] != size
    if resized:
        height, width = size
        image = np.asarray(
            Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR)
        )
    if image.ndim == 2:
        image = image[..., None]
    if channels == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return image, resized


def load_folder(
    path: str | Path,
    skip_bad_files: bool = False,
    test_fraction: float | None = None,
    seed: int | None = None,
    size: tuple[int, int] | None = None,
) -> Dataset:
    """Load an image folder; see the module docstring for layouts and conversions.

    `test_fraction` and `seed` set the stratified split of a folder without test/
    (default 0.2 and 0); a folder with test/ ignores them, with a warning.
    `size` (height, width) replaces the most common size as the target size.
    """
    folder = Path(path)
    listing = list_folder(folder)
    decoded, skipped = decode_all(folder, listing, skip_bad_files)

    everything = [image for pairs in decoded.values() for image, _ in pairs]
    if not everything:
        raise DatasetError(f"{folder} contains no readable image files in its class folders")
    channels = 1 if all(image.ndim == 2 for image in everything) else 3
    target = tuple(size) if size is not None else common_size(everything)

    arrays, resized = {}, 0
    for split, pairs in decoded.items():
        images = []
        for image, _ in pairs:
            image, changed = conform(image, channels, target)
            images.append(image)
            resized += changed
        labels = np.array([label for _, label in pairs], dtype=np.int64)
        arrays[split] = (np.stack(images) if images else None, labels)

    source = {
        "format": "folder",
        "folder": str(folder.resolve()),
        "layout": listing.layout,
        "channels": channels,
        "image_size": list(target),
        "resized_images": resized,
        "skipped_files": skipped,
        "ignored_files": listing.ignored,
    }
    if listing.layout == "split":
        test_fraction = DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction
        seed = DEFAULT_SPLIT_SEED if seed is None else seed
        x_all, y_all = arrays["all"]
        train, test = stratified_split(y_all, float(test_fraction), seed)
        source.update(test_fraction=float(test_fraction), split_seed=seed)
        arrays = {"train": (x_all[train], y_all[train]), "test": (x_all[test], y_all[test])}
    elif test_fraction is not None or seed is not None:
        logger.warning(
            "%s has train/ and test/ folders, so its split options (test_fraction, seed) "
            "are ignored; remove them from the dataset spec", folder,
        )

    for split, (images, _) in arrays.items():
        if images is None or not len(images):
            raise DatasetError(
                f"{folder}: the {split} split has no readable images; add images, or for a "
                "folder without test/ raise test_fraction"
            )
    if resized:
        logger.info("%s: resized %d images to %dx%d", folder, resized, *target)
    return Dataset(
        name=folder.resolve().name,
        x_train=arrays["train"][0],
        y_train=arrays["train"][1],
        x_test=arrays["test"][0],
        y_test=arrays["test"][1],
        class_names=listing.classes,
        source=source,
    )
