"""Uploads: good images are decoded, bad ones give a message and change nothing."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

from xai_panel.components import ImageUpload


def png_bytes(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return out.getvalue()


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG that claims to be enormous (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def test_a_good_upload_is_decoded(photos):
    upload = ImageUpload()
    upload.load(png_bytes(photos["coffee"]), "coffee.png")
    upload.wait()
    assert upload.error == "" and upload.name == "coffee.png"
    assert np.array_equal(upload.image, photos["coffee"])


def test_bad_uploads_are_refused_with_a_clear_message(photos):
    upload = ImageUpload()
    upload.load(png_bytes(photos["coffee"]), "coffee.png")
    upload.wait()
    jpeg = io.BytesIO()
    Image.fromarray(photos["chelsea"]).save(jpeg, format="JPEG")
    cases = {
        "notes.txt": (b"just some text", "not"),
        "broken.jpg": (jpeg.getvalue()[: len(jpeg.getvalue()) // 3], "truncated"),
        "bomb.png": (huge_png_header(100_000, 100_000), "pixels"),
        "empty.png": (b"", "empty"),
    }
    for name, (data, words) in cases.items():
        upload.load(data, name)
        upload.wait()
        assert upload.error.startswith(f"{name}:") and words in upload.error.lower(), upload.error
        assert upload.name == "coffee.png"  # the last good image stays
    # The drop zone's own event path (dict of file name -> bytes) does the same.
    upload._dropper.value = {"more.txt": "plain text arrives as str"}
    upload.wait()
    assert upload.error.startswith("more.txt:")
