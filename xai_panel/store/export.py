"""Export stored results as JSON + PNG files that open anywhere without xai-panel, and import them back.

One folder per result (an image, a method, its settings): ``result.json`` holds the settings,
the top-k, the costs, every per-class value and the stored faithfulness; PNGs show the image,
its superpixels and each class's map. Nothing is lost: arrays are JSON lists whose dtype and
shape are recorded beside them (``"$fields"``), pixel maps keep their values next to their PNG,
image stacks are PNGs (lossless), and the superpixels are listed, so :func:`import_results`
writes the very result back into a store, under the same key.

The dashboards' "numbers" download is a zip of these folders (:func:`explanation_zip`), for
an explanation whether or not it was stored; ``xai-panel store import`` reads either.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import zipfile
from collections import OrderedDict
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

import numpy as np
from PIL import Image

from ..engine.request import ExplainRequest, canonical_json
from ..engine.results import ClassScore, Explanation, MethodCost, Segmentation
from .sqlite import ExplanationStore, StoreError

__all__ = ["ExportError", "find_results", "export_result", "export_explanation", "explanation_zip",
           "import_results", "stored_explanations"]

_HEX = re.compile(r"^[0-9a-f]{6,64}$")
_FILE = re.compile(r"^[A-Za-z0-9._-]+\.png$")
FORMAT = 1
"""Version of ``result.json``'s layout (``"format"``)."""


class ExportError(ValueError):
    """An export cannot be read back; the message says which file and why."""


def find_results(store: ExplanationStore, ref: str) -> list[str]:
    """Result keys for ``ref``: a result key, an image hash (or a prefix of 6+ hex digits of
    either) or a stored image id (as in the dataset, e.g. ``n01440764_tench.JPEG``)."""
    conn = store._conn()
    with store._read():
        if _HEX.match(ref):
            like = ref + "%"
            keys = [k for (k,) in conn.execute(
                "SELECT key FROM results WHERE key LIKE ? OR image_hash LIKE ? ORDER BY image_hash, method, created_at",
                (like, like))]
            if keys:
                return keys
        return [k for (k,) in conn.execute(
            "SELECT r.key FROM results r JOIN images i ON i.image_hash = r.image_hash AND i.model_id = r.model_id "
            "WHERE i.image_id = ? ORDER BY r.method, r.created_at", (ref,))]


# -- pictures ---------------------------------------------------------------------------------
def _diverging(values: np.ndarray) -> np.ndarray:
    """(H, W) signed values -> RGB uint8: blue negative, white zero, red positive."""
    scale = float(np.max(np.abs(values))) or 1.0
    v = np.clip(values / scale, -1, 1)[..., None]
    white = np.ones(3)
    red, blue = np.array([0.80, 0.10, 0.15]), np.array([0.10, 0.30, 0.80])
    rgb = np.where(v >= 0, white + v * (red - white), white - v * (blue - white))
    return (rgb * 255).round().astype(np.uint8)


def _overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    return ((1 - alpha) * image + alpha * heat).round().astype(np.uint8)


def _boundaries(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    edge = np.zeros(labels.shape, bool)
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    out = image.copy()
    out[edge] = (255, 220, 0)
    return out


def _png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, "PNG")
    return buffer.getvalue()


# -- values <-> JSON --------------------------------------------------------------------------
class _Writer:
    """Dataclasses of numbers and arrays -> JSON values, pictures written beside (``put``)."""

    def __init__(self, put: Callable[[str, bytes], None] | None, view: np.ndarray | None):
        self.put, self.view = put, view

    def png(self, name: str, array: np.ndarray) -> str:
        self.put(name, _png_bytes(array))
        return name

    def value(self, value, name: str):
        """(JSON value, how to read it back or None)."""
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return self.dataclass(value, name), None
        if isinstance(value, np.ndarray):
            kind = [value.dtype.str, list(value.shape)]
            if self.put is not None and value.ndim == 4 and value.dtype == np.uint8 and value.shape[-1] == 3:
                return [self.png(f"{name}_{i}.png", im) for i, im in enumerate(value)], ["images", *kind]
            if self.put is not None and self.view is not None and value.ndim == 2 and value.shape == self.view.shape[:2]:
                return {"png": self.png(f"{name}.png", _overlay(self.view, _diverging(value))),
                        "min": float(value.min()), "max": float(value.max()), "values": value.tolist()}, ["map", *kind]
            return value.tolist(), ["array", *kind]
        if isinstance(value, tuple):
            return [self.value(v, f"{name}_{i}")[0] for i, v in enumerate(value)], ["tuple"]
        if isinstance(value, np.generic):
            return value.item(), None
        return value, None

    def dataclass(self, value, name: str) -> dict:
        out, kinds = {}, {}
        for f in dataclasses.fields(value):
            out[f.name], kind = self.value(getattr(value, f.name), f"{name}_{f.name}")
            if kind is not None:
                kinds[f.name] = kind
        return {**out, "$type": type(value).__name__, "$fields": kinds}


def _plain(value):
    """A dataclass of numbers and arrays as JSON-ready values (arrays as lists, restorable)."""
    return _Writer(None, None).value(value, "")[0]


class _Reader:
    """JSON values -> the dataclasses ``codec.types()`` names (a closed list: nothing else is built)."""

    def __init__(self, read: Callable[[str], bytes], where: str):
        from .codec import types

        self.read, self.where, self.types = read, where, types()

    def image(self, name) -> np.ndarray:
        if not isinstance(name, str) or not _FILE.match(name):
            raise ExportError(f"{self.where}: bad picture name {name!r}")
        try:
            with Image.open(io.BytesIO(self.read(name))) as im:
                return np.asarray(im.convert("RGB"))
        except (KeyError, FileNotFoundError):
            raise ExportError(f"{self.where}: {name} is missing") from None

    def dataclass(self, data) -> object:
        if not isinstance(data, dict) or data.get("$type") not in self.types:
            known = getattr(data, "get", lambda _: None)("$type")
            raise ExportError(f"{self.where}: not a result this version reads ({known!r})")
        cls, kinds = self.types[data["$type"]], data.get("$fields") or {}
        values = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value, kind = data[f.name], kinds.get(f.name)
            if isinstance(value, dict) and "$type" in value:
                value = self.dataclass(value)
            elif kind and kind[0] == "tuple":
                value = tuple(value)
            elif kind:
                what, dtype, shape = kind
                if what == "images":
                    images = [self.image(n) for n in value]
                    value = np.stack(images).astype(dtype) if images else np.zeros(shape, dtype)
                else:
                    value = np.asarray(value["values"] if what == "map" else value, dtype=dtype)
                if list(value.shape) != list(shape):
                    raise ExportError(f"{self.where}: {f.name} has shape {list(value.shape)}, expected {shape}")
            values[f.name] = value
        try:
            return cls(**values)
        except TypeError as exc:
            raise ExportError(f"{self.where}: {cls.__name__} does not fit this version: {exc}") from None


# -- export -----------------------------------------------------------------------------------
def _document(explanation: Explanation, method: str, put: Callable[[str, bytes], None], *, key, image_hash,
              image_id, label, label_name, config) -> dict:
    view, seg = explanation.image, explanation.segmentation
    writer = _Writer(put, view)
    files = {"image": writer.png("image.png", view), "segments": writer.png("segments.png", _boundaries(view, seg.labels))}
    per_class = {}
    for cls, result in sorted(explanation.results.get(method, {}).items()):
        entry = writer.dataclass(result, f"{method}_{cls}")
        scores = getattr(result, "values", None)  # the per-superpixel score protocol
        if scores is not None and len(scores) == seg.n_segments:
            entry["map"] = writer.png(f"{method}_{cls}_map.png", _overlay(view, _diverging(np.asarray(scores)[seg.labels])))
        segments = getattr(result, "segments", None)  # a set of superpixels (an anchor): shown alone
        if segments is not None:
            shown = seg.mask(segments) if len(segments) else np.zeros(seg.labels.shape, bool)
            entry["anchor_png"] = writer.png(f"{method}_{cls}_anchor.png",
                                             np.where(shown[..., None], view, (view * 0.25).astype(np.uint8)))
        per_class[str(cls)] = entry
    return {
        "format": FORMAT, "key": key, "method": method, "model_id": explanation.model_id,
        "image_hash": image_hash, "image_id": image_id, "true_label": label, "true_label_name": label_name,
        "config": config, "seed": explanation.seed,
        "top": [dataclasses.asdict(c) for c in explanation.top],
        "costs": {m: dataclasses.asdict(c) for m, c in explanation.costs.items() if m in (method, "top-k")},
        "segmentation": {"algorithm": seg.algorithm, "params": dict(seg.params), "n_segments": seg.n_segments,
                         "seconds": seg.seconds, "labels": _plain(np.asarray(seg.labels)),
                         "$labels": [seg.labels.dtype.str, list(seg.labels.shape)]},
        "files": files, "results": per_class,
        # the stored faithfulness of this method per class (curves as lists), with its settings
        "faithfulness": {str(c): _plain(f) for c, f in sorted(explanation.faithfulness.get(method, {}).items())},
        "metric_settings": dict(explanation.metric_settings),
    }


def _folder_name(name: str, method: str, key: str | None) -> str:
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '_', Path(name).stem)}_{method}" + (f"_{key[:10]}" if key else "")


def _write_folder(folder: Path, document_of: Callable) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    document = document_of(lambda name, data: (folder / name).write_bytes(data))
    (folder / "result.json").write_text(json.dumps(document, indent=1, default=float))
    return folder


def export_result(store: ExplanationStore, key: str, out_dir: str | Path) -> Path:
    """Write one stored result to ``out_dir/<image>_<method>_<key[:10]>/``; returns that folder."""
    explanation = store.load(key)
    [row] = [r for r in store.results() if r.key == key] or [None]
    summary = store.summaries(image_hashes=[row.image_hash], model_id=row.model_id) if row else []
    s = summary[0] if summary else None
    name = (s.image_id if s and s.image_id else row.image_hash[:12]) if row else key[:12]
    method = explanation.methods[0] if explanation.methods else row.method
    folder = Path(out_dir) / _folder_name(name, method, key)
    return _write_folder(folder, lambda put: _document(
        explanation, method, put, key=key, image_hash=row.image_hash if row else None,
        image_id=s.image_id if s else None, label=s.label if s else None, label_name=s.label_name if s else None,
        config=row.config if row else None))


def _unstored(explanation: Explanation, image_hash: str | None, image_id, label, label_name):
    """(method, document maker) per method of an explanation from ``explain`` or a session."""
    request = ExplainRequest.from_explanation(explanation)
    for method in explanation.methods:
        config = json.loads(canonical_json(request.method_config(method))) if method in request.settings else None
        key = request.result_key(image_hash, method) if image_hash and config is not None else None
        yield method, key, (lambda put, method=method, key=key, config=config: _document(
            explanation, method, put, key=key, image_hash=image_hash, image_id=image_id, label=label,
            label_name=label_name, config=config))


def export_explanation(explanation: Explanation, out_dir: str | Path, *, image_hash: str | None = None,
                       name: str = "image", image_id: str | None = None, label: int | None = None,
                       label_name: str | None = None) -> list[Path]:
    """Write every method of ``explanation`` as ``xai-panel store export`` does (a folder each).

    ``image_hash`` (``xai_panel.data.image_hash`` of the decoded image) gives the documents the
    keys the store would use, so that :func:`import_results` can store them.
    """
    return [_write_folder(Path(out_dir) / _folder_name(name, method, key), document_of)
            for method, key, document_of in _unstored(explanation, image_hash, image_id, label, label_name)]


def explanation_zip(explanation: Explanation, *, image_hash: str | None = None, name: str = "image",
                    image_id: str | None = None, label: int | None = None, label_name: str | None = None) -> bytes:
    """:func:`export_explanation` as the bytes of one zip (a folder per method): the dashboards' download."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for method, key, document_of in _unstored(explanation, image_hash, image_id, label, label_name):
            folder = _folder_name(name, method, key)
            document = document_of(lambda n, data, folder=folder: z.writestr(f"{folder}/{n}", data))
            z.writestr(f"{folder}/result.json", json.dumps(document, indent=1, default=float))
    return buffer.getvalue()


# -- import -----------------------------------------------------------------------------------
def _decode_document(document: dict, read: Callable[[str], bytes], where: str):
    """(Explanation of one method, image hash, request, summary fields) from one ``result.json``."""
    if not isinstance(document, dict) or "method" not in document or "results" not in document:
        raise ExportError(f"{where}: not an xai-panel result.json")
    if "format" not in document:
        raise ExportError(f"{where}: written by an older xai-panel, whose exports lack the superpixels and "
                          "array types an import needs; export it again")
    if document["format"] != FORMAT:
        raise ExportError(f"{where}: export format {document['format']!r}; this version reads {FORMAT}")
    config, image_hash, method = document.get("config"), document.get("image_hash"), document["method"]
    if not config or not image_hash:
        raise ExportError(f"{where}: has no settings or image hash, so it has no key to be stored under "
                          "(export it from the store, or from a dashboard)")
    from ..methods.base import method_class

    method_class(method)  # an unknown method: "did you mean"
    reader = _Reader(read, where)
    request = ExplainRequest(
        model_id=config["model_id"], methods=(method,), top_k=config["top_k"], seed=config["seed"],
        segmentation=config["segmentation"], segmentation_params=config["segmentation_params"],
        fill=config["fill"], settings={method: config["settings"]}, pool_size=config["pool_size"],
        version=config["version"], schema=config["schema"])
    if document.get("key") and request.result_key(image_hash, method) != document["key"]:
        raise ExportError(f"{where}: its key does not match its settings and image (was it edited?)")
    seg = document["segmentation"]
    dtype, shape = seg["$labels"]
    labels = np.asarray(seg["labels"], dtype=dtype).reshape(shape)
    segmentation = Segmentation(labels=labels, algorithm=seg["algorithm"], params=seg.get("params") or {},
                                seconds=float(seg.get("seconds", 0.0)))
    results = {int(k): reader.dataclass(v) for k, v in document["results"].items()}
    faithfulness = {int(k): reader.dataclass(v) for k, v in (document.get("faithfulness") or {}).items()}
    metric_settings = {k: v for k, v in (document.get("metric_settings") or {}).items()
                       if k == "faithfulness" and faithfulness}
    explanation = Explanation(
        image=reader.image(document["files"]["image"]), model_id=document["model_id"],
        top=tuple(ClassScore(**c) for c in document["top"]), segmentation=segmentation, results={method: results},
        costs={m: MethodCost(**c) for m, c in document.get("costs", {}).items()},
        settings=request.explanation_settings([method]), seed=int(document.get("seed", config["seed"])),
        faithfulness={method: faithfulness} if faithfulness else {}, metric_settings=metric_settings)
    summary = dict(image_id=document.get("image_id"), label=document.get("true_label"),
                   label_name=document.get("true_label_name"))
    return explanation, image_hash, request, summary


def _documents(path: Path):
    """(where, document, read) for each ``result.json`` under ``path`` (a folder, a file or a zip)."""
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for name in sorted(n for n in z.namelist() if PurePosixPath(n).name == "result.json"):
                base = str(PurePosixPath(name).parent)
                prefix = "" if base == "." else base + "/"
                yield f"{path}:{name}", json.loads(z.read(name)), (lambda n, prefix=prefix: z.read(prefix + n))
        return
    files = [path] if path.is_file() else sorted(path.rglob("result.json"))
    for file in files:
        try:
            document = json.loads(file.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ExportError(f"{file}: not JSON ({exc})") from None
        yield str(file), document, (lambda n, folder=file.parent: (folder / n).read_bytes())


def import_results(store: ExplanationStore, path: str | Path) -> list[str]:
    """Store every result exported under ``path`` (an export folder, one ``result.json``, or a
    dashboard's zip); returns the keys written. A result already stored is replaced by the same one."""
    path = Path(path)
    if not path.exists():
        raise ExportError(f"{path} does not exist")
    keys = []
    try:
        for where, document, read in _documents(path):
            explanation, image_hash, request, summary = _decode_document(document, read, where)
            keys += store.put(explanation, image_hash, request=request, **summary)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, (ExportError, StoreError)):
            raise
        raise ExportError(f"{path}: not an xai-panel export ({type(exc).__name__}: {exc})") from None
    except zipfile.BadZipFile as exc:
        raise ExportError(f"{path}: damaged zip ({exc})") from None
    if not keys:
        raise ExportError(f"{path}: no result.json found (give a folder written by xai-panel store export, "
                          "a result.json or a dashboard's numbers zip)")
    return keys


# -- several stored results as one explanation --------------------------------------------------
_SHARED = ("model_id", "top_k", "seed", "segmentation", "segmentation_params", "fill", "pool_size", "version",
           "schema")


def stored_explanations(store: ExplanationStore, keys: Iterable[str]) -> list[tuple[str, Explanation]]:
    """The results of ``keys`` as one ``Explanation`` per image and shared settings, with every
    method (the newest of each) and the trust metrics stored for them: (display name, explanation)."""
    rows = {r.key: r for r in store.results()}
    groups: OrderedDict = OrderedDict()
    for key in keys:
        row = rows.get(key)
        if row is None:
            raise KeyError(f"no stored result with key {key}")
        shared = canonical_json({k: row.config.get(k) for k in _SHARED})
        methods = groups.setdefault((row.image_hash, shared), {})
        if row.method not in methods or row.created_at >= methods[row.method].created_at:
            methods[row.method] = row
    out = []
    for (image_hash, _), methods in groups.items():
        config = next(iter(methods.values())).config
        request = ExplainRequest(
            model_id=config["model_id"], methods=tuple(methods), top_k=config["top_k"], seed=config["seed"],
            segmentation=config["segmentation"], segmentation_params=config["segmentation_params"],
            fill=config["fill"], settings={m: r.config["settings"] for m, r in methods.items()},
            pool_size=config["pool_size"], version=config["version"], schema=config["schema"])
        explanation = store.get(image_hash, request)
        if explanation is None:
            raise StoreError(f"{store.path}: the stored results of image {image_hash[:12]} cannot be read")
        summary = store.summaries(image_hashes=[image_hash], model_id=config["model_id"])
        name = summary[0].image_id if summary and summary[0].image_id else image_hash[:12]
        out.append((name, explanation))
    return out
