"""Turn whatever a user hands us into one predictable array: HxWx3 uint8 RGB.

Explainers, models and caches all assume that shape, so every oddity of real
image files (EXIF rotation, palettes, alpha, CMYK, 16-bit, animation) is settled
here, once. Inputs may come from a web upload, so the loader is also the guard:
it refuses oversized files and decompression bombs *before* decoding, restricts
Pillow to plain raster formats (no EPS, which would run Ghostscript), and turns
every failure into an :class:`ImageError` whose message a user can act on.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MIN_SIDE",
    "ImageError",
    "ImageSource",
    "image_hash",
    "load_image",
]

DEFAULT_MAX_PIXELS = 64_000_000
"""64 megapixels: above any camera photo a user would explain, far below a bomb."""

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
"""50 MiB: a generous ceiling for one photo, small enough to hold in memory."""

DEFAULT_MIN_SIDE = 8
"""Below this, superpixel segmentation has nothing to segment."""

# Formats a photo realistically arrives in (the JPEG opener also covers the
# multi-picture MPO files some cameras write). Leaving the rest out keeps exotic
# decoders, and EPS's Ghostscript subprocess, away from untrusted uploads.
_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF")
_FORMAT_NAMES = "JPEG, PNG, GIF, BMP, WebP or TIFF"

# What Pillow raises while decoding damaged data, depending on the codec.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]


class ImageError(ValueError):
    """An image could not be used; the message says why in the user's terms."""


def load_image(
    source: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    min_side: int = DEFAULT_MIN_SIDE,
) -> np.ndarray:
    """Decode an image into an HxWx3 uint8 RGB array, upright as the camera meant.

    ``source`` is a path, the encoded bytes, or a binary file-like object. Size
    limits are checked against the file length and the header's dimensions before
    any pixel is decoded, so a hostile upload costs almost nothing to refuse.
    Transparent areas are composited on white, the background a viewer shows.
    Animated images give their first frame.
    """
    data, label = _read_source(source, max_bytes)
    if not data:
        raise ImageError(f"{label} is empty (0 bytes): there is no image in it.")
    image = _open(data, label, max_pixels)
    width, height = image.size
    if width * height > max_pixels:
        raise _too_many_pixels(label, width, height, max_pixels)
    if min(width, height) < min_side:
        raise ImageError(
            f"{label} is {width}x{height} pixels, too small to explain: "
            f"both sides must be at least {min_side} pixels."
        )
    try:
        image.load()
    except _DECODE_ERRORS as exc:
        raise ImageError(f"{label} is truncated or corrupt and cannot be decoded ({exc}).") from exc
    try:
        image = ImageOps.exif_transpose(image)
    except (*_DECODE_ERRORS, KeyError, TypeError):
        pass  # damaged EXIF metadata: the pixels are fine, show them as stored
    return _to_rgb_array(image)


def image_hash(content: np.ndarray | bytes | bytearray | memoryview) -> str:
    """A stable SHA-256 hex key for caching results per image.

    Encoded bytes hash to the plain ``sha256sum`` of the file. Arrays hash their
    dtype and shape along with their pixels, so a 2x6 and a 3x4 image holding
    the same bytes never share a cache entry; the key does not depend on memory
    layout (views, strides) or on the process, unlike ``id()`` or ``hash()``.
    """
    if isinstance(content, np.ndarray):
        header = f"ndarray:{content.dtype.str}:{content.shape}\0".encode()
        return hashlib.sha256(header + np.ascontiguousarray(content).tobytes()).hexdigest()
    if isinstance(content, (bytes, bytearray, memoryview)):
        return hashlib.sha256(content).hexdigest()
    raise TypeError(f"image_hash takes a numpy array or bytes, not {type(content).__name__}")


def _read_source(source: ImageSource, max_bytes: int) -> tuple[bytes, str]:
    """Read at most ``max_bytes + 1`` bytes, so a huge file never lands in memory."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = "The image data"
        if memoryview(source).nbytes > max_bytes:  # before copying it
            raise _too_many_bytes(label, max_bytes)
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        label = str(path)
        data = _read_path(path, max_bytes)
    elif hasattr(source, "read"):
        label = str(getattr(source, "name", "The image stream"))
        data = _read_stream(source, label, max_bytes)
    else:
        raise TypeError(
            f"load_image takes a path, bytes or a binary file object, not {type(source).__name__}"
        )
    if len(data) > max_bytes:
        raise _too_many_bytes(label, max_bytes)
    return data, label


def _read_stream(stream: BinaryIO, label: str, max_bytes: int) -> bytes:
    # Sockets and raw files may return fewer bytes than asked: read until EOF or the limit.
    chunks, total = [], 0
    while total <= max_bytes:
        try:
            chunk = stream.read(max_bytes + 1 - total)
        except OSError as exc:
            raise ImageError(f"Could not read {label}: {exc.strerror or exc}.") from exc
        if not isinstance(chunk, (bytes, bytearray, type(None))):
            raise TypeError(f"{label} must be opened in binary mode ('rb'); read() returned {type(chunk).__name__}")
        if not chunk:
            break
        chunks.append(bytes(chunk))
        total += len(chunk)
    return b"".join(chunks)


def _read_path(path: str, max_bytes: int) -> bytes:
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size > max_bytes:
                raise _too_many_bytes(path, max_bytes, size)
            return file.read(max_bytes + 1)
    except FileNotFoundError as exc:
        raise ImageError(f"No image file at {path}: it does not exist.") from exc
    except IsADirectoryError as exc:
        raise ImageError(f"{path} is a folder, not an image file.") from exc
    except PermissionError as exc:
        raise ImageError(f"Permission denied reading {path}: the file is not readable by this user.") from exc
    except OSError as exc:
        raise ImageError(f"Could not read {path}: {exc.strerror or exc}.") from exc


def _open(data: bytes, label: str, max_pixels: int) -> Image.Image:
    """Parse only the header: Pillow defers decoding until ``load()``."""
    try:
        return Image.open(io.BytesIO(data), formats=_FORMATS)
    except Image.DecompressionBombError as exc:
        # Pillow refuses beyond twice its own limit before we could look at the size.
        size = _declared_size(data)
        if size is None:
            raise ImageError(
                f"{label} declares more pixels than the limit of {max_pixels:,}; refusing to decode it."
            ) from exc
        raise _too_many_pixels(label, *size, max_pixels) from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{label} is not a {_FORMAT_NAMES} image that can be read.") from exc
    except _DECODE_ERRORS as exc:
        raise ImageError(f"{label} has a damaged image header and cannot be read ({exc}).") from exc


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """Header dimensions of an image Pillow refused to open as a decompression bomb.

    Runs the format plugins' header parsers directly, as ``Image.open`` does, but
    without its bomb check, so the error can name the size. Only headers are read.
    """
    Image.init()
    prefix = data[:16]
    for format_id in _FORMATS:
        factory, accept = Image.OPEN.get(format_id, (None, None))
        if factory is None or (accept is not None and not accept(prefix)):
            continue
        try:
            return factory(io.BytesIO(data)).size
        except _DECODE_ERRORS:
            continue
    return None


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _high_bit_depth_to_rgb(image)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        return _composite_on_white(image.convert("RGBA"))
    if mode != "RGB":
        try:
            image = image.convert("RGB")
        except ValueError as exc:
            raise ImageError(f"Images in colour mode {mode!r} are not supported ({exc}).") from exc
    return np.array(image, dtype=np.uint8)


def _composite_on_white(rgba: Image.Image) -> np.ndarray:
    pixels = np.asarray(rgba, dtype=np.uint16)
    rgb, alpha = pixels[..., :3], pixels[..., 3:]
    # Integer alpha blend with rounding: exact for alpha 0 and 255.
    blended = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    return blended.astype(np.uint8)


def _high_bit_depth_to_rgb(image: Image.Image) -> np.ndarray:
    """Scale 16-bit, 32-bit integer and float greyscale to 0..255, never clip.

    16-bit data spans 0..65535, so dividing by 257 maps white to white. Mode "I"
    also carries 16-bit PNG/TIFF data on some Pillow builds, so values that fit
    in 16 bits are read that way; wider data and floats outside 0..1 have no
    agreed white point and are stretched over their own range.
    """
    values = np.asarray(image).astype(np.float64)
    if image.mode.startswith("I;16") or (image.mode == "I" and values.min() >= 0 and values.max() <= 65535):
        scaled = values / 257.0
    elif image.mode == "F" and values.min() >= 0 and values.max() <= 1:
        scaled = values * 255.0
    else:
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., np.newaxis], 3, axis=2)


def _too_many_pixels(label: str, width: int, height: int, max_pixels: int) -> ImageError:
    return ImageError(
        f"{label} is {width}x{height} pixels, which exceeds the limit of {max_pixels:,} pixels "
        f"({width * height:,} > {max_pixels:,}); refusing to decode it."
    )


def _too_many_bytes(label: str, max_bytes: int, size: int | None = None) -> ImageError:
    # A stream is read only up to the limit, so its full size is unknown.
    actual = f"{size:,} bytes, " if size is not None else ""
    return ImageError(
        f"{label} is too large: {actual}over the limit of {_human_bytes(max_bytes)} ({max_bytes:,} bytes)."
    )


def _human_bytes(count: float) -> str:
    if count < 1024:
        return f"{count:g} bytes"
    for unit in ("KiB", "MiB", "GiB"):
        count /= 1024
        if count < 1024 or unit == "GiB":
            break
    return f"{count:.3g} {unit}"
