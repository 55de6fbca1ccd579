"""The bad-input catalogue, end to end: each odd file, model or setting a user can hand us,
through the Python API *and* the ``xai-panel`` command line.

tests/data and tests/models pin the loader's and the model adapter's exact behaviour per
case; here each case travels the whole path a user takes (load -> classify -> explain;
``xai-panel classify``; ``xai-panel precompute`` over a folder holding all of them) and
must end either in a result or in one clear, actionable message: an exit code and a
stderr line, never a traceback. Nothing is mocked: the real embedded model, real files.
"""

from __future__ import annotations

import os
import pickle
import re
import shlex
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from xai_panel.data import DatasetError, ImageError, load_image, open_dataset
from xai_panel.engine.pipeline import explain
from xai_panel.models import ModelError, load_classifier

REPO = Path(__file__).resolve().parents[2]
XAI_PANEL = REPO / ".venv" / "bin" / "xai-panel"
if not XAI_PANEL.exists():  # an installed environment other than the dev venv
    XAI_PANEL = Path(sys.executable).with_name("xai-panel")
FAST = dict(methods=("lime",), top_k=1, segmentation="grid", settings={"lime": {"num_samples": 50}})
FAST_ARGS = ["--methods", "lime", "--top-k", "1", "--segmentation", "grid", "--set", "lime.num_samples=50",
             "--metrics", "none", "--no-progress"]
OVER_LIMIT = 50 * 1024 * 1024 + 1  # one byte over load_image's DEFAULT_MAX_BYTES
RED, BLUE = (220, 20, 20), (20, 20, 220)


def run_cli(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([str(XAI_PANEL), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def assert_clean_failure(result: subprocess.CompletedProcess, code: int, pattern: str) -> None:
    """Exit ``code``, a stderr line matching ``pattern``, and no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert re.search(pattern, result.stderr), result.stderr[-2000:]


# --- the files ------------------------------------------------------------------------------


def _photo() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.chelsea())  # a real cat photo, 451x300


def _halves(size=(120, 60)) -> Image.Image:
    image = Image.new("RGB", size, RED)
    image.paste(Image.new("RGB", (size[0] // 2, size[1]), BLUE), (size[0] // 2, 0))
    return image


def _png_claiming(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR for width x height RGB, then a tiny IDAT: only the header is big."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def _write_bad(folder: Path) -> dict[str, tuple[Path, str]]:
    """Files that must be refused: case -> (path, what the message must say)."""
    folder.mkdir(parents=True, exist_ok=True)
    cases = {}

    p = folder / "notes.jpg"
    p.write_text("shopping list: milk, eggs\n" * 20)
    cases["non_image_with_image_extension"] = (p, r"is not a JPEG, PNG, GIF, BMP, WebP or TIFF image")

    p = folder / "empty.png"
    p.write_bytes(b"")
    cases["zero_byte_file"] = (p, r"is empty \(0 bytes\)")

    p = folder / "truncated.jpg"
    full = folder / "full.tmp"
    _photo().save(full, "JPEG", quality=90)
    p.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    full.unlink()
    cases["truncated_jpeg"] = (p, r"truncated or corrupt")

    p = folder / "dot.png"
    Image.new("RGB", (1, 1), RED).save(p)
    cases["one_pixel_image"] = (p, r"is 1x1 pixels, too small to explain")

    p = folder / "bomb.png"
    p.write_bytes(_png_claiming(40000, 40000))
    cases["png_claiming_40000x40000"] = (p, r"is 40000x40000 pixels, which exceeds the limit")

    p = folder / "huge upload.jpg"
    with open(p, "wb") as f:  # sparse: the size is real to stat() but costs no disk
        f.truncate(OVER_LIMIT)
    cases["over_max_bytes"] = (p, r"is too large: 52,428,801 bytes, over the limit of 50 MiB")
    return cases


def _write_good(folder: Path) -> dict[str, tuple[Path, tuple[int, int]]]:
    """Odd but valid files: case -> (path, expected (height, width) after loading)."""
    folder.mkdir(parents=True, exist_ok=True)
    cases = {}
    photo = _photo()

    p = folder / "print.jpg"
    photo.convert("CMYK").save(p, "JPEG", quality=90)
    assert Image.open(p).mode == "CMYK"
    cases["cmyk_jpeg"] = (p, (300, 451))

    p = folder / "deep.png"
    grey16 = (np.asarray(photo.convert("L"), np.uint16) * 257).astype(np.uint16)
    Image.fromarray(grey16).save(p)
    assert Image.open(p).mode.startswith("I")
    cases["png_16_bit"] = (p, (300, 451))

    p = folder / "sticker.png"
    paletted = photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    paletted.save(p, transparency=0)
    assert Image.open(p).mode == "P" and "transparency" in Image.open(p).info
    cases["palette_png_with_transparency"] = (p, (300, 451))

    p = folder / "blink.gif"
    photo.save(p, save_all=True, append_images=[photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)], duration=100,
               loop=0)
    assert Image.open(p).n_frames == 2
    cases["animated_gif"] = (p, (300, 451))

    p = folder / "grey.png"
    photo.convert("L").save(p)
    cases["grayscale"] = (p, (300, 451))

    p = folder / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view: stored 120x60, upright 60x120
    _halves().save(p, "JPEG", quality=95, exif=exif.tobytes())
    cases["exif_rotated"] = (p, (120, 60))

    p = folder / "фото кота ü 1.png"
    photo.save(p)
    cases["unicode_and_spaces_in_name"] = (p, (300, 451))
    return cases


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("catalogue")
    return _write_bad(folder), _write_good(folder), folder


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()


BAD = ["non_image_with_image_extension", "zero_byte_file", "truncated_jpeg", "one_pixel_image",
       "png_claiming_40000x40000", "over_max_bytes"]
GOOD = ["cmyk_jpeg", "png_16_bit", "palette_png_with_transparency", "animated_gif", "grayscale", "exif_rotated",
        "unicode_and_spaces_in_name"]


# --- API: load -> classify -> explain -------------------------------------------------------


@pytest.mark.parametrize("case", BAD)
def test_api_refuses_bad_file_with_its_name_in_the_message(files, case):
    path, message = files[0][case]
    with pytest.raises(ImageError, match=message) as info:
        load_image(path)
    assert str(path) in str(info.value)  # the user learns which file


CATS = {"tabby", "tiger cat", "Egyptian cat"}  # ImageNet's names for what chelsea is


def _expected_pixels(case: str) -> np.ndarray:
    """What each good file shows, drawn from its source rather than from any decoder's output."""
    if case in ("png_16_bit", "grayscale"):  # saved from the grey cat: R = G = B = its luminance
        return np.repeat(np.asarray(_photo().convert("L"))[..., None], 3, axis=2)
    if case == "exif_rotated":  # the upright view the EXIF orientation asks for (red on top)
        return np.asarray(_halves().transpose(Image.Transpose.ROTATE_270))
    return np.asarray(_photo())


@pytest.mark.parametrize("case", GOOD)
def test_api_explains_odd_but_valid_file(files, classifier, case):
    path, shape = files[1][case]
    image = load_image(path)
    assert image.shape == (*shape, 3) and image.dtype == np.uint8
    # the decoded pixels are the source's, up to lossy coding (measured mean error: 0 for PNG,
    # 1.4 CMYK JPEG, 2.1 GIF, 4.4 64-colour palette; swapped colour channels: 40 and more)
    error = np.abs(image.astype(np.float64) - _expected_pixels(case)).mean()
    assert error < 6.0, f"decoded {case} differs from its source by {error:.1f} grey levels on average"
    result = explain(image, classifier, **FAST)
    label = result.top[0].index
    assert result.image.shape == (224, 224, 3)
    assert np.isfinite(result.lime[label].weights).all()
    if case != "exif_rotated":  # every other good file is the cat photo
        assert result.top[0].name in CATS, result.top


def test_api_over_max_bytes_as_an_upload(files):
    """An upload arrives as bytes; the configured limit applies before anything is decoded."""
    data = files[1]["cmyk_jpeg"][0].read_bytes()
    with pytest.raises(ImageError, match=rf"too large: over the limit of .*\({len(data) - 1:,} bytes\)"):
        load_image(data, max_bytes=len(data) - 1)
    assert load_image(data, max_bytes=len(data)).shape == (300, 451, 3)


def _as_nobody(func):
    """Run ``func()`` in a forked child as the unprivileged 'nobody' (root reads any file);
    return what it returned or raised, as text."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(65534)
            os.setuid(65534)
            outcome = f"returned {func()!r}"
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            outcome = f"{type(exc).__name__}: {exc}"
        os.write(write_end, outcome.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        outcome = pipe.read().decode()
    os.waitpid(pid, 0)
    return outcome


@pytest.fixture
def unreadable(tmp_path):
    path = tmp_path / "secret.png"
    Image.new("RGB", (16, 16)).save(path)
    path.chmod(0)
    return path


def test_unreadable_file_api_and_cli(unreadable, classifier, capfd):
    """API and the CLI's code path (in-process: the venv's python is not runnable by 'nobody').
    The model is loaded before the fork, so the CLI finds it in the per-process cache."""
    from xai_panel.cli import main

    def api():
        return load_image(unreadable)

    def cli():
        return main(["classify", str(unreadable)])

    if os.geteuid() != 0:
        with pytest.raises(ImageError, match="Permission denied reading"):
            api()
        assert cli() == 1
    else:
        assert _as_nobody(api).startswith(f"ImageError: Permission denied reading {unreadable}")
        assert _as_nobody(cli) == "returned 1"
    err = capfd.readouterr().err
    assert f"{unreadable}: error: Permission denied reading {unreadable}" in err and "Traceback" not in err


def test_folder_without_images_api_and_cli(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no pictures here")
    with pytest.raises(DatasetError, match="No images found in"):
        open_dataset(empty)
    result = run_cli("precompute", empty, "--store", tmp_path / "s.sqlite", *FAST_ARGS)
    assert_clean_failure(result, 2, r"xai-panel precompute: error: No images found in .*empty")


# --- CLI: classify and precompute over the whole catalogue ------------------------------------


@pytest.fixture(scope="module")
def classify_run(files):
    bad, good, _ = files
    paths = [p for p, _ in bad.values()] + [p for p, _ in good.values()]
    return run_cli("classify", *paths, "--top-k", "1")


@pytest.mark.parametrize("case", BAD)
def test_cli_classify_reports_bad_file_on_one_stderr_line(files, classify_run, case):
    path, message = files[0][case]
    assert classify_run.returncode == 1 and "Traceback" not in classify_run.stderr
    lines = [line for line in classify_run.stderr.splitlines() if line.startswith(f"{path}: error: ")]
    assert len(lines) == 1 and re.search(message, lines[0]), classify_run.stderr


@pytest.mark.parametrize("case", GOOD)
def test_cli_classify_prints_top_class_of_odd_but_valid_file(files, classify_run, classifier, case):
    path, _ = files[1][case]
    assert f"{path}: error" not in classify_run.stderr
    block = classify_run.stdout.split(f"{path}  (")
    assert len(block) == 2, classify_run.stdout
    rank, index, probability, *name = block[1].splitlines()[2].split()
    (top,) = classifier.top_k(load_image(path), 1)  # the API's answer for the same file
    assert (rank, int(index), " ".join(name)) == ("1", top.index, top.name)
    assert float(probability) == pytest.approx(top.probability, abs=1e-4)  # printed to 4 decimals
    if case != "exif_rotated":
        assert top.name in CATS


def test_cli_classify_of_good_files_only_exits_zero(files):
    result = run_cli("classify", files[1]["unicode_and_spaces_in_name"][0], "--top-k", "1")
    assert result.returncode == 0 and re.search(r"tabby|tiger cat|Egyptian cat", result.stdout), result.stderr[-2000:]


def test_cli_precompute_continues_past_bad_files_and_lists_them(files, tmp_path):
    bad, good, folder = files
    store = tmp_path / "s.sqlite"
    result = run_cli("precompute", folder, "--store", store, *FAST_ARGS)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    out = result.stdout
    assert f"{len(bad) + len(good)} images: {len(good)} computed, 0 already stored, {len(bad)} failed" in out, out
    failures = out.split("failed images (run again to retry them):")[1]
    for path, message in bad.values():
        line = next(row for row in failures.splitlines() if row.strip().startswith(f"{path.name}: "))
        assert re.search(message, line), line
    for path, _ in good.values():
        assert f"{path.name}:" not in failures

    # Run again: the good images are stored, the bad ones reported again, nothing recomputed.
    again = run_cli("precompute", folder, "--store", store, *FAST_ARGS)
    assert again.returncode == 1
    assert f"0 computed, {len(good)} already stored, {len(bad)} failed" in again.stdout, again.stdout


# --- models -------------------------------------------------------------------------------


class _RunsCode:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


@pytest.fixture
def pickles(tmp_path):
    """A plain pickle and a torch.save zip archive, each carrying code; and the marker."""
    marker = tmp_path / "code-ran"
    raw, zipped = tmp_path / "evil.pth", tmp_path / "evil.pt"
    with open(raw, "wb") as f:
        pickle.dump({"fc.weight": _RunsCode(marker)}, f)
    torch.save({"fc.weight": _RunsCode(marker)}, zipped)
    # The payload is live: an unsafe load would run it (so the assertions below can fail).
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_RunsCode(probe)))
    assert probe.exists()
    return raw, zipped, marker


def test_pickle_with_code_is_refused_and_never_runs_api(pickles):
    raw, zipped, marker = pickles
    for path in (raw, zipped):
        with pytest.raises(ModelError, match=rf"refused to load {path.name}: it is a pickle holding more than tensors"):
            load_classifier("resnet18", weights=path, cache=False)
        with pytest.raises(ModelError, match=rf"{path.name} is not a TorchScript archive"):
            load_classifier(path, cache=False)
    assert not marker.exists()


def test_pickle_with_code_is_refused_and_never_runs_cli(pickles, files):
    raw, zipped, marker = pickles
    image = files[1]["grayscale"][0]
    result = run_cli("classify", image, "--model", "resnet18", "--weights", raw)
    assert_clean_failure(result, 2, r"(?m)^error: refused to load evil\.pth: it is a pickle holding more than tensors")
    result = run_cli("classify", image, "--model", zipped)
    assert_clean_failure(result, 2, r"(?m)^error: evil\.pt is not a TorchScript archive")
    assert not marker.exists()


def test_refusal_does_not_advise_loading_the_pickle_unsafely(pickles):
    raw, _, marker = pickles
    with pytest.raises(ModelError) as info:
        load_classifier("resnet18", weights=raw, cache=False)
    assert "weights_only` set to `False`" not in str(info.value) and "will likely succeed" not in str(info.value)


class _WrongShape(torch.nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3)).repeat(1, 334)[:, None, :1000]  # (N, 1, 1000)


class _NaN(torch.nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3)).repeat(1, 334)[:, :1000] * float("nan")


@pytest.fixture
def broken_models(tmp_path, monkeypatch):
    monkeypatch.setenv("XAI_PANEL_CACHE", str(tmp_path / "cache"))  # ONNX exports of these stay here
    paths = {}
    for name, module in (("wrong_shape", _WrongShape()), ("nan", _NaN())):
        paths[name] = tmp_path / f"{name}.ts"
        torch.jit.script(module).save(str(paths[name]))
    return paths


def test_model_with_wrong_output_shape_api_and_cli(broken_models, files, tmp_path):
    path = broken_models["wrong_shape"]
    with pytest.raises(ModelError, match=r"returned shape \(1, 1, 1000\); expected \(1, 1000\)"):
        load_classifier(path, cache=False)
    result = run_cli("classify", files[1]["grayscale"][0], "--model", path,
                     env={"XAI_PANEL_CACHE": str(tmp_path / "cache")})
    assert_clean_failure(result, 2, r"(?m)^error: model 'wrong_shape@\w+' returned shape \(1, 1, 1000\)")


def test_model_returning_nan_api_and_cli(broken_models, files, tmp_path):
    path = broken_models["nan"]
    with pytest.raises(ModelError, match="returned NaN or infinite outputs"):
        load_classifier(path, cache=False)
    result = run_cli("classify", files[1]["grayscale"][0], "--model", path,
                     env={"XAI_PANEL_CACHE": str(tmp_path / "cache")})
    assert_clean_failure(result, 2, r"(?m)^error: model 'nan@\w+' returned NaN or infinite outputs")


def test_model_turning_nan_mid_explanation_stops_it_with_a_model_error(classifier, files):
    """Load-time checks pass (single images are fine); perturbed batches come back NaN."""
    from xai_panel.models import Classifier

    def runner(x):
        probs = classifier.forward_normalised(x)
        return probs if len(x) == 1 else probs * np.nan

    flaky = Classifier(runner, classifier.class_names, model_id="nan-on-batches",
                       preprocessing=classifier.preprocessing, outputs="probabilities")
    image = load_image(files[1]["grayscale"][0])
    with pytest.raises(ModelError, match="'nan-on-batches' returned NaN or infinite outputs"):
        explain(image, flaky, **FAST)


# --- explainer parameters -------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    ({"settings": {"lime": {"num_samples": 999999999}}}, r"num_samples' must be at most 50000, not 999999999"),
    ({"settings": {"lime": {"num_samples": "many"}}}, r"num_samples' must be an integer"),
    ({"methods": ("anchors",), "settings": {"anchors": {"threshold": 1.5}}}, r"threshold' must be at most 1.0"),
    ({"settings": {"lime": {"no_such_knob": 1}}}, r"no_such_knob"),
    ({"top_k": 0}, r"top_k must be between 1 and 20 \(or 0 with labels=\), got 0"),
    ({"seed": -1}, r"seed must be an integer in \[0, 2\*\*32\)"),
    ({"fill": "sepia"}, r"unknown fill 'sepia'"),
    ({"segmentation": "voronoi"}, r"unknown segmentation 'voronoi'"),
    ({"methods": ("deeplift",)}, r"unknown method 'deeplift'; the methods are lime, anchors, shap"),
], ids=lambda v: str(v)[:40] if isinstance(v, str) else None)
def test_api_out_of_range_parameters_are_refused_before_any_model_pass(classifier, kwargs, message):
    before = classifier.forward_passes
    with pytest.raises(ValueError, match=message):
        explain(np.zeros((64, 64, 3), np.uint8), classifier, **{**FAST, **kwargs})
    assert classifier.forward_passes == before


def test_cli_precompute_refuses_out_of_range_setting(files, tmp_path):
    result = run_cli("precompute", files[2], "--store", tmp_path / "s.sqlite", *FAST_ARGS,
                     "--set", "lime.num_samples=999999999")
    assert_clean_failure(result, 2, r"xai-panel precompute: error: .*num_samples' must be at most 50000, not 999999999")
    # refused before any image was explained: no report, and nothing stored (the store file
    # itself is opened before the settings are checked, so it may exist, empty)
    assert "computed" not in result.stdout, result.stdout
    if (tmp_path / "s.sqlite").exists():
        from xai_panel.store import ExplanationStore

        store = ExplanationStore(tmp_path / "s.sqlite", create=False)
        try:
            assert store.count() == 0
        finally:
            store.close()
