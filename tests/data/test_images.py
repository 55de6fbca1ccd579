"""load_image on real files covering the odd cases photos and uploads bring."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import threading
import zlib

import numpy as np
import pytest
from PIL import Image

from xai_panel.data import ImageError, image_hash, load_image

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def _encode(image: Image.Image, format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def _halves(left=RED, right=BLUE, size=(40, 20)) -> Image.Image:
    """Left half one colour, right half another: orientation is easy to read."""
    width, height = size
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2] = left
    pixels[:, width // 2 :] = right
    return Image.fromarray(pixels)


def _png_header(width: int, height: int) -> bytes:
    """A valid PNG header declaring any size, with no pixel data: bytes, not gigabytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


# --- errors -------------------------------------------------------------------------


def test_text_file_with_image_extension_is_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("these are notes, not a photo")
    with pytest.raises(ImageError, match=r"notes\.jpg is not a JPEG, PNG, GIF, BMP, WebP or TIFF image"):
        load_image(path)


def test_formats_outside_the_allowed_list_are_refused(tmp_path):
    # A valid PPM renamed .png: Pillow could read it, but uploads only get photo formats.
    path = tmp_path / "disguised.png"
    path.write_bytes(_encode(Image.new("RGB", (16, 16)), "PPM"))
    with pytest.raises(ImageError, match="is not a JPEG, PNG, GIF, BMP, WebP or TIFF image"):
        load_image(path)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.png"
    path.touch()
    with pytest.raises(ImageError, match=r"empty\.png is empty \(0 bytes\)"):
        load_image(path)


def test_truncated_jpeg(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = _encode(Image.fromarray(noise), "JPEG", quality=95)
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(ImageError, match=r"cut\.jpg is truncated or corrupt and cannot be decoded"):
        load_image(path)


def test_one_pixel_image_is_too_small(tmp_path):
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1)).save(path)
    with pytest.raises(ImageError, match=r"is 1x1 pixels, too small to explain: both sides must be at least 8"):
        load_image(path)


def test_min_side_is_a_parameter():
    data = _encode(Image.new("RGB", (4, 30)))
    assert load_image(data, min_side=4).shape == (30, 4, 3)
    with pytest.raises(ImageError, match="at least 5 pixels"):
        load_image(data, min_side=5)


@pytest.mark.parametrize(
    "width, height",
    [
        (40000, 40000),  # beyond Pillow's own hard limit: it refuses, we name the size
        (9000, 9000),  # 81 megapixels: under Pillow's limits, caught by ours
    ],
)
def test_decompression_bomb_refused_from_header_alone(tmp_path, width, height):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header(width, height))
    assert path.stat().st_size < 100  # nothing to decode: a decode attempt would fail differently
    with pytest.raises(ImageError, match=rf"is {width}x{height} pixels, which exceeds the limit of 64,000,000 pixels"):
        load_image(path)


def test_max_pixels_is_a_parameter():
    data = _encode(Image.new("RGB", (100, 50)))
    with pytest.raises(ImageError, match=r"100x50 pixels, which exceeds the limit of 4,999 pixels"):
        load_image(data, max_pixels=4999)


def test_over_max_bytes_from_path_bytes_and_stream(tmp_path):
    data = _encode(Image.new("RGB", (64, 64)), "BMP")  # BMP: size known exactly, 12,342 bytes
    path = tmp_path / "big.bmp"
    path.write_bytes(data)
    with pytest.raises(ImageError, match=rf"big\.bmp is too large: {len(data):,} bytes, over the limit of 1000 bytes"):
        load_image(path, max_bytes=1000)
    with pytest.raises(ImageError, match=r"The image data is too large: over the limit of 9.77 KiB \(10,000 bytes\)"):
        load_image(data, max_bytes=10_000)
    with pytest.raises(ImageError, match="too large: over the limit of 1000 bytes"):
        load_image(io.BytesIO(data), max_bytes=1000)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match=r"No image file at .*nowhere\.png: it does not exist"):
        load_image(tmp_path / "nowhere.png")


def test_directory_instead_of_file(tmp_path):
    folder = tmp_path / "album.jpg"
    folder.mkdir()
    with pytest.raises(ImageError, match=r"album\.jpg is a folder, not an image file"):
        load_image(folder)


def test_unreadable_file_reports_permission_denied(tmp_path):
    path = tmp_path / "secret.png"
    Image.new("RGB", (16, 16)).save(path)
    path.chmod(0)
    if os.geteuid() != 0:
        with pytest.raises(ImageError, match=r"Permission denied reading .*secret\.png"):
            load_image(path)
        return
    # Root reads files whatever their mode bits, so the check runs in a forked child
    # that drops to the unprivileged "nobody" uid (denied by the file or by the
    # root-only pytest temp folders above it: EACCES either way).
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report the outcome through the pipe, never return into pytest
        try:
            os.setgid(65534)
            os.setuid(65534)
            load_image(path)
            outcome = "loaded"
        except ImageError as exc:
            outcome = str(exc)
        except BaseException as exc:  # noqa: BLE001 - anything else is reported to the parent
            outcome = f"unexpected {exc!r}"
        os.write(write_end, outcome.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        outcome = pipe.read().decode()
    os.waitpid(pid, 0)
    assert outcome.startswith(f"Permission denied reading {path}"), outcome


# --- colour modes and orientation ---------------------------------------------------


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    path = tmp_path / "print.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, "JPEG", quality=95)  # pure red ink
    assert Image.open(path).mode == "CMYK"
    pixels = load_image(path)
    assert pixels.shape == (16, 16, 3) and pixels.dtype == np.uint8
    np.testing.assert_allclose(pixels[8, 8], RED, atol=3)


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "deep.png"
    values = np.array([[0, 257, 32896, 65535]] * 8, dtype=np.uint16)
    values = np.repeat(values, 2, axis=1)  # 8x8, so it is not too small
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    pixels = load_image(path)
    assert pixels.dtype == np.uint8 and pixels.shape == (8, 8, 3)
    np.testing.assert_array_equal(pixels[0, ::2, 0], [0, 1, 128, 255])
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()


def test_palette_png_with_transparency_is_composited_on_white(tmp_path):
    path = tmp_path / "sticker.png"
    image = Image.frombytes("P", (16, 8), bytes([0] * 8 + [1] * 8) * 8)
    image.putpalette([0, 0, 0, *RED])
    image.save(path, transparency=0)  # index 0 (black) fully transparent
    assert Image.open(path).mode == "P"
    pixels = load_image(path)
    np.testing.assert_array_equal(pixels[4, 2], WHITE)
    np.testing.assert_array_equal(pixels[4, 12], RED)


def test_alpha_is_blended_on_white():
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 128))
    pixels = load_image(_encode(rgba))
    np.testing.assert_array_equal(pixels[0, 0], [127, 127, 127])  # 255 * (1 - 128/255)


def test_animated_gif_gives_first_frame(tmp_path):
    path = tmp_path / "blink.gif"
    first, second = Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), BLUE)
    first.save(path, save_all=True, append_images=[second], duration=100, loop=0)
    assert Image.open(path).n_frames == 2
    pixels = load_image(path)
    assert pixels.shape == (16, 16, 3)
    np.testing.assert_array_equal(pixels[8, 8], RED)


def test_grayscale_becomes_three_equal_channels(tmp_path):
    path = tmp_path / "grey.png"
    ramp = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (8, 1))
    Image.fromarray(ramp, "L").save(path)
    pixels = load_image(path)
    assert pixels.shape == (8, 16, 3)
    for channel in range(3):
        np.testing.assert_array_equal(pixels[..., channel], ramp)


def test_exif_orientation_6_is_applied(tmp_path):
    # Stored 40 wide x 20 high, red left, blue right; orientation 6 means "rotate
    # 90 degrees clockwise to view": upright it is 20 wide x 40 high, red on top.
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    _halves().save(path, "JPEG", quality=95, exif=exif.tobytes())
    pixels = load_image(path)
    assert pixels.shape == (40, 20, 3)
    np.testing.assert_allclose(pixels[5, 10], RED, atol=4)
    np.testing.assert_allclose(pixels[35, 10], BLUE, atol=4)


# --- sources ------------------------------------------------------------------------


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_bytes_input(wrap):
    pixels = load_image(wrap(_encode(_halves())))
    assert pixels.shape == (20, 40, 3)
    np.testing.assert_array_equal(pixels[10, 5], RED)
    np.testing.assert_array_equal(pixels[10, 35], BLUE)


def test_file_like_input(tmp_path):
    path = tmp_path / "stream.png"
    _halves().save(path)
    with open(path, "rb") as file:
        from_file = load_image(file)
    from_buffer = load_image(io.BytesIO(path.read_bytes()))
    np.testing.assert_array_equal(from_file, from_buffer)
    np.testing.assert_array_equal(from_file[10, 5], RED)


def test_stream_with_short_reads(tmp_path):
    # An unbuffered pipe hands out at most what the writer has sent so far.
    data = _encode(Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    read_fd, write_fd = os.pipe()

    def send_slowly():
        with open(write_fd, "wb", buffering=0) as writer:
            for start in range(0, len(data), 1000):
                writer.write(data[start : start + 1000])

    sender = threading.Thread(target=send_slowly)
    sender.start()
    with open(read_fd, "rb", buffering=0) as reader:
        pixels = load_image(reader)
    sender.join()
    np.testing.assert_array_equal(pixels, load_image(data))


def test_unsupported_source_type():
    with pytest.raises(TypeError, match="takes a path, bytes or a binary file object, not int"):
        load_image(42)


def test_text_mode_file_is_a_programming_error(tmp_path):
    path = tmp_path / "stream.png"
    _halves().save(path)
    with open(path, encoding="latin-1") as file, pytest.raises(TypeError, match=r"binary mode \('rb'\)"):
        load_image(file)


def test_unicode_and_spaces_in_file_name(tmp_path):
    path = tmp_path / "café ☕ photo 1.png"
    _halves().save(path)
    assert load_image(path).shape == (20, 40, 3)
    assert load_image(str(path)).shape == (20, 40, 3)


def test_returned_array_is_owned_and_writable():
    pixels = load_image(_encode(_halves()))
    assert pixels.flags.c_contiguous and pixels.flags.writeable and pixels.flags.owndata


# --- image_hash ---------------------------------------------------------------------


def test_image_hash_of_bytes_is_plain_sha256():
    data = _encode(_halves())
    assert image_hash(data) == hashlib.sha256(data).hexdigest()
    assert image_hash(memoryview(data)) == image_hash(bytearray(data))


def test_image_hash_of_arrays_is_stable_and_shape_aware():
    pixels = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    # Pinned so cache keys written by one version stay valid in the next.
    assert image_hash(pixels) == "60b3ff1d2a17346be987a7908f2938267df6016cd81366866633320db0628676"
    assert image_hash(pixels.reshape(4, 2, 3)) != image_hash(pixels)
    assert image_hash(pixels.astype(np.int16)) != image_hash(pixels)
    view = np.arange(48, dtype=np.uint8).reshape(2, 8, 3)[:, ::2]  # strided view
    assert image_hash(view) == image_hash(np.ascontiguousarray(view))


def test_image_hash_rejects_other_types():
    with pytest.raises(TypeError, match="numpy array or bytes"):
        image_hash("not bytes")
