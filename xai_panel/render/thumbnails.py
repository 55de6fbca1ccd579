"""Thumbnails and top-1 predictions of a dataset, made once and kept (NumPy/PIL only).

A gallery page shows a few dozen images, but a folder may hold thousands of large photos:
decoding them on every page turn would make browsing crawl. Thumbnails are rendered once
per file version (path, size, mtime) into the user cache folder and held in memory;
predictions are computed once per (dataset, model) in the background, saved beside them,
and let the gallery mark each thumbnail and group a folder by predicted class.

The prediction index of a dataset is one per process, computed by one thread of its own
(``PredictionIndex.start``): every browser session's gallery watches the same index and
asks for its visible page first, and none holds a thread of the shared pools while it waits.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from PIL import Image, ImageOps

from ..data import Dataset, ImageError, ImageRecord, load_image

__all__ = ["cache_folder", "ThumbnailStore", "Prediction", "PredictionIndex", "prediction_index", "known_index",
           "PLACEHOLDER"]

_log = logging.getLogger(__name__)

PLACEHOLDER = (
    "data:image/svg+xml;base64,"
    + base64.b64encode(
        b'<svg xmlns="http://www.w3.org/2000/svg" width="128" height="128"><rect width="128" height="128" '
        b'fill="#e5e7eb"/><text x="64" y="72" font-size="14" text-anchor="middle" fill="#6b7280" '
        b'font-family="sans-serif">unreadable</text></svg>'
    ).decode()
)


def cache_folder(*parts: str) -> Path:
    """``$XAI_PANEL_CACHE`` or the user cache folder (platformdirs), created on demand."""
    from ..config import config

    root = config().cache_folder
    folder = Path(root, *parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _file_version(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _square_thumbnail(image: Image.Image, size: int) -> bytes:
    image = ImageOps.exif_transpose(image).convert("RGB")
    thumb = ImageOps.fit(image, (size, size), Image.BILINEAR)
    out = io.BytesIO()
    thumb.save(out, format="JPEG", quality=82, optimize=True)
    return out.getvalue()


class ThumbnailStore:
    """Square JPEG thumbnails (the centre, as the model sees it), rendered once per file version."""

    def __init__(self, size: int = 128, folder: str | os.PathLike | None = None, max_memory: int = 20000):
        if not 16 <= size <= 512:
            raise ValueError(f"thumbnail size must be in [16, 512], got {size}")
        self.size = size
        self._folder = Path(folder) if folder is not None else None
        self._memory: dict[str, str] = {}
        self._max_memory = max_memory
        self._lock = threading.Lock()

    @property
    def folder(self) -> Path:
        if self._folder is None:
            self._folder = cache_folder("thumbnails", str(self.size))
        return self._folder

    def _key(self, path: Path) -> str:
        return hashlib.sha1(f"{_file_version(path)}|{self.size}".encode()).hexdigest()

    def in_memory(self, record: ImageRecord) -> str | None:
        """The thumbnail's ``data:`` URI if it is held in memory now (no decoding, no disk read), else None."""
        try:
            return self._memory.get(self._key(record.path))
        except OSError:
            return None

    def data_uri(self, record: ImageRecord, image: np.ndarray | None = None) -> str:
        """The thumbnail as a ``data:`` URI (a grey placeholder if the file cannot be read)."""
        try:
            key = self._key(record.path)
        except OSError:
            return PLACEHOLDER
        uri = self._memory.get(key)
        if uri is not None:
            return uri
        file = self.folder / f"{key}.jpg"
        try:
            data = file.read_bytes()
        except OSError:
            data = self._render(record, image)
            if data is not None:
                tmp = file.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
                try:
                    tmp.write_bytes(data)
                    os.replace(tmp, file)
                except OSError:
                    pass  # a read-only cache only costs a re-render next time
        # An unreadable file is the placeholder until it changes (its key with it).
        uri = PLACEHOLDER if data is None else "data:image/jpeg;base64," + base64.b64encode(data).decode()
        with self._lock:
            if len(self._memory) >= self._max_memory:
                self._memory.clear()
            self._memory[key] = uri
        return uri

    def _render(self, record: ImageRecord, image: np.ndarray | None) -> bytes | None:
        try:
            if image is not None:
                return _square_thumbnail(Image.fromarray(np.asarray(image, np.uint8)), self.size)
            with Image.open(record.path) as im:
                im.draft("RGB", (self.size * 2, self.size * 2))  # JPEG: decode at reduced scale
                return _square_thumbnail(im, self.size)
        except Exception:  # any unreadable file becomes the placeholder, never a crash
            return None


@dataclass(frozen=True)
class Prediction:
    """The model's top-1 class for one image."""

    index: int
    name: str
    probability: float


class PredictionIndex:
    """Top-1 predictions of every image of one dataset for one model, saved on disk.

    ``start`` predicts the images not predicted yet in a thread of the index's own, in
    batches, the records asked for first (``first``: a gallery's visible page) before the
    rest in dataset order; ``pause`` is called before each batch (the server passes one that
    waits while a click is explained or a page is being served), and the listeners (``subscribe``)
    are told ``(done, total)`` after each. ``compute`` does the same work in the caller's thread.
    """

    batch_size = 8
    """Images per model batch: small, so that the thread pauses for interactive work soon (a batch of
    full-size photos takes about 0.1-0.2 s on two cores)."""

    def __init__(self, dataset: Dataset, classifier, folder: str | os.PathLike | None = None):
        self.dataset = dataset
        self.classifier = classifier
        ident = f"{dataset.root.resolve()}|{classifier.model_id}"
        self._file = Path(folder or cache_folder("predictions")) / f"{hashlib.sha1(ident.encode()).hexdigest()}.json"
        self._lock = threading.Lock()
        self._compute_lock = threading.Lock()
        self._predictions: dict[str, Prediction] = {}
        self._versions: dict[str, str] = {}
        self.failed: dict[str, str] = {}
        self._first: deque[ImageRecord] = deque()  # asked for first, newest requests at the front
        self._next = 0  # position in the dataset of the next record to look at, after ``_first``
        self._thread: threading.Thread | None = None
        self._listeners: list = []  # weak references to bound methods, or the callables themselves
        self._load()

    def _load(self) -> None:
        try:
            saved = json.loads(self._file.read_text())
        except (OSError, ValueError):
            return
        names = self.classifier.class_names
        for record in self.dataset:
            entry = saved.get(record.id)
            if not entry:
                continue
            try:
                version = _file_version(record.path)
            except OSError:
                continue
            if entry[0] == version and 0 <= entry[1] < len(names):
                self._predictions[record.id] = Prediction(int(entry[1]), names[entry[1]], float(entry[2]))
                self._versions[record.id] = version

    def _save(self) -> None:
        with self._lock:
            data = {i: [self._versions[i], p.index, p.probability] for i, p in self._predictions.items()}
        tmp = self._file.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            tmp.write_text(json.dumps(data))
            os.replace(tmp, self._file)
        except OSError:
            pass

    def __len__(self) -> int:
        return len(self._predictions)

    @property
    def complete(self) -> bool:
        return len(self._predictions) + len(self.failed) >= len(self.dataset)

    @property
    def running(self) -> bool:
        """Whether the index's thread is predicting."""
        return self._thread is not None and self._thread.is_alive()

    def get(self, id: str) -> Prediction | None:
        return self._predictions.get(id)

    def by_class(self) -> dict[str, list[str]]:
        """Record ids per predicted class name, in dataset order."""
        groups: dict[str, list[str]] = {}
        for record in self.dataset:
            p = self._predictions.get(record.id)
            if p is not None:
                groups.setdefault(p.name, []).append(record.id)
        return groups

    def _pending(self, record: ImageRecord) -> bool:
        return record.id not in self._predictions and record.id not in self.failed

    # -- the index's own thread ------------------------------------------------------------
    def subscribe(self, listener: Callable[[int, int], None]) -> None:
        """Call ``listener(done, total)`` after each batch the index's thread predicts (from that
        thread). A bound method is held weakly: a gallery that is gone stops listening."""
        ref = weakref.WeakMethod(listener) if hasattr(listener, "__self__") else (lambda: listener)
        with self._lock:
            self._listeners.append(ref)

    def unsubscribe(self, listener: Callable[[int, int], None]) -> None:
        with self._lock:
            self._listeners = [ref for ref in self._listeners if ref() not in (None, listener)]

    def _notify(self) -> None:
        with self._lock:
            listeners = [fn for fn in (ref() for ref in self._listeners) if fn is not None]
        for listener in listeners:
            try:
                listener(len(self._predictions), len(self.dataset))
            except Exception:  # one session's failure must not stop the others' predictions
                _log.exception("a prediction index listener failed")

    def start(self, first: Iterable[ImageRecord] = (), *, pause: Callable[[], None] | None = None,
              cancel: threading.Event | None = None) -> None:
        """Predict ``first`` (ahead of anything asked for before), then every other image not
        predicted yet, in the index's thread (started if it is not running)."""
        with self._lock:
            self._first.extendleft(reversed([r for r in first if self._pending(r)]))
            if self.running or self.complete:
                return
            self._thread = threading.Thread(target=self._run, args=(pause, cancel), daemon=True,
                                            name="xai-panel-predictions")
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the index's thread has finished; False after ``timeout`` seconds if not."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running

    def _take(self, n: int) -> list[ImageRecord]:
        """The next ``n`` records to predict: those asked for first, then dataset order."""
        batch: list[ImageRecord] = []
        with self._lock:
            while self._first and len(batch) < n:
                record = self._first.popleft()
                if self._pending(record) and record not in batch:
                    batch.append(record)
            while self._next < len(self.dataset) and len(batch) < n:
                record = self.dataset[self._next]
                self._next += 1
                if self._pending(record) and record not in batch:
                    batch.append(record)
        return batch

    def _run(self, pause: Callable[[], None] | None, cancel: threading.Event | None) -> None:
        last_save = time.monotonic()
        try:
            while not self.complete:
                if pause is not None:
                    pause()
                if cancel is not None and cancel.is_set():
                    return
                batch = self._take(self.batch_size)
                if not batch:
                    if self.complete or not self._first:
                        break
                    continue
                with self._compute_lock:
                    self._predict(batch)
                if time.monotonic() - last_save > 5:
                    self._save()
                    last_save = time.monotonic()
                self._notify()
        except Exception:  # e.g. the model failed: the gallery shows what was predicted
            _log.exception("the prediction index of %s stopped", self.dataset.root)
        finally:
            self._save()
            self._notify()

    # -- in the caller's thread ------------------------------------------------------------
    def compute(self, records: Iterable[ImageRecord] | None = None, *, batch_size: int = 16,
                cancel: threading.Event | None = None, pause: Callable[[], None] | None = None,
                on_batch: Callable[[int, int], None] | None = None,
                on_image: Callable[[ImageRecord, np.ndarray], None] | None = None) -> int:
        """Predict the given records (default: all) not predicted yet; returns how many were added."""
        with self._compute_lock:
            todo = [r for r in (records if records is not None else self.dataset) if self._pending(r)]
            added, last_save = 0, time.monotonic()
            for start in range(0, len(todo), batch_size):
                if pause is not None:
                    pause()
                if cancel is not None and cancel.is_set():
                    break
                added += self._predict(todo[start : start + batch_size], on_image)
                if on_batch is not None:
                    on_batch(len(self._predictions), len(self.dataset))
                if time.monotonic() - last_save > 5:
                    self._save()
                    last_save = time.monotonic()
            if added:
                self._save()
            return added

    def _predict(self, records: list[ImageRecord],
                 on_image: Callable[[ImageRecord, np.ndarray], None] | None = None) -> int:
        """Decode and predict one batch (the caller holds the compute lock); returns how many were added."""
        views, kept = [], []
        for record in records:
            try:
                image = load_image(record.path)
                version = _file_version(record.path)
            except (ImageError, OSError) as exc:
                self.failed[record.id] = str(exc)
                continue
            if on_image is not None:
                on_image(record, image)
            views.append(self.classifier.prepare(image))
            kept.append((record, version))
        if not views:
            return 0
        probs = self.classifier.predict_proba(np.stack(views))
        names = self.classifier.class_names
        with self._lock:
            for (record, version), p in zip(kept, probs):
                i = int(np.argmax(p))
                self._predictions[record.id] = Prediction(i, names[i], float(p[i]))
                self._versions[record.id] = version
        return len(views)


_indexes: dict[tuple, PredictionIndex] = {}
_named: dict[tuple, PredictionIndex] = {}  # by the name the model was loaded with
_indexes_lock = threading.Lock()


def _dataset_key(dataset: Dataset) -> tuple:
    return (str(dataset.root), len(dataset), dataset[0].id if len(dataset) else "", dataset[-1].id if len(dataset) else "")


def prediction_index(dataset: Dataset, classifier, name: str | None = None) -> PredictionIndex:
    """The process-wide index for this dataset and model (shared by every session); ``name``, the
    name the model was loaded by, lets ``known_index`` find it without loading the model."""
    key = (*_dataset_key(dataset), classifier.model_id)
    with _indexes_lock:
        index = _indexes.get(key)
        if index is None:
            index = _indexes[key] = PredictionIndex(dataset, classifier)
        if name is not None:
            _named[(*_dataset_key(dataset), name)] = index
        return index


def known_index(dataset: Dataset, name: str) -> PredictionIndex | None:
    """The index ``prediction_index(dataset, ..., name)`` made, if any (a page being built can show the
    predictions at once, without waiting for the model)."""
    with _indexes_lock:
        return _named.get((*_dataset_key(dataset), name))
