"""Export stored results as JSON + PNG files that open anywhere without xai-panel."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from .sqlite import ExplanationStore

__all__ = ["find_results", "export_result"]

_HEX = re.compile(r"^[0-9a-f]{6,64}$")


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


def _png(path: Path, array: np.ndarray) -> str:
    Image.fromarray(np.ascontiguousarray(array)).save(path)
    return path.name


def _plain(value):
    """A dataclass of numbers and arrays as JSON-ready values."""
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def export_result(store: ExplanationStore, key: str, out_dir: str | Path) -> Path:
    """Write one stored result to ``out_dir/<image>_<method>_<key[:10]>/``; returns that folder.

    ``result.json`` holds the settings, the top-k, the costs, every per-class value
    (superpixel weights as lists) and the stored faithfulness; PNGs show the image, its superpixels and each class's map.
    """
    explanation = store.load(key)
    [row] = [r for r in store.results() if r.key == key] or [None]
    summary = store.summaries(image_hashes=[row.image_hash], model_id=row.model_id) if row else []
    name = (summary[0].image_id if summary and summary[0].image_id else row.image_hash[:12]) if row else key[:12]
    method = explanation.methods[0] if explanation.methods else row.method
    folder = Path(out_dir) / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', Path(name).stem)}_{method}_{key[:10]}"
    folder.mkdir(parents=True, exist_ok=True)
    view, labels = explanation.image, explanation.segmentation.labels
    files = {"image": _png(folder / "image.png", view), "segments": _png(folder / "segments.png", _boundaries(view, labels))}
    per_class = {}
    for label, result in sorted(explanation.results.get(method, {}).items()):
        entry = {}
        for f in dataclasses.fields(result):
            value = getattr(result, f.name)
            if isinstance(value, np.ndarray) and value.ndim == 4 and value.dtype == np.uint8:
                entry[f.name] = [_png(folder / f"{method}_{label}_{f.name}_{i}.png", im) for i, im in enumerate(value)]
            elif isinstance(value, np.ndarray) and value.ndim == 2:
                entry[f.name] = {"png": _png(folder / f"{method}_{label}_{f.name}.png", _overlay(view, _diverging(value))),
                                 "min": float(value.min()), "max": float(value.max())}
            elif isinstance(value, np.ndarray):
                entry[f.name] = value.tolist()
            else:
                entry[f.name] = list(value) if isinstance(value, tuple) else value
        scores = getattr(result, "values", None)  # the per-superpixel score protocol
        if scores is not None and len(scores) == explanation.segmentation.n_segments:
            entry["map"] = _png(folder / f"{method}_{label}_map.png", _overlay(view, _diverging(np.asarray(scores)[labels])))
        segments = getattr(result, "segments", None)  # a set of superpixels (an anchor): shown alone
        if segments is not None:
            shown = explanation.segmentation.mask(segments) if len(segments) else np.zeros(labels.shape, bool)
            entry["anchor_png"] = _png(folder / f"{method}_{label}_anchor.png",
                                       np.where(shown[..., None], view, (view * 0.25).astype(np.uint8)))
        per_class[str(label)] = entry
    document = {
        "key": key, "method": method, "model_id": explanation.model_id,
        "image_hash": row.image_hash if row else None, "image_id": summary[0].image_id if summary else None,
        "true_label": summary[0].label if summary else None, "true_label_name": summary[0].label_name if summary else None,
        "config": row.config if row else None,
        "top": [dataclasses.asdict(c) for c in explanation.top],
        "costs": {m: dataclasses.asdict(c) for m, c in explanation.costs.items()},
        "segmentation": {"algorithm": explanation.segmentation.algorithm, "params": dict(explanation.segmentation.params),
                         "n_segments": explanation.segmentation.n_segments},
        "files": files, "results": per_class,
        # the stored faithfulness of this method per class (curves as lists), with its settings
        "faithfulness": {str(label): _plain(f) for label, f in sorted(explanation.faithfulness.get(method, {}).items())},
        "metric_settings": dict(explanation.metric_settings),
    }
    (folder / "result.json").write_text(json.dumps(document, indent=2, default=float))
    return folder
