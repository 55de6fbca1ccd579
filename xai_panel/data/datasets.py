"""Folders of images as labelled, addressable datasets.

A user points the app at a folder; :func:`open_dataset` works out how it is
labelled so nobody writes a loader per layout:

* ImageNet style: files inside wnid folders (``n01440764/x.JPEG``, also below
  split folders as in Imagenette's ``train/`` and ``val/``) or named after their
  wnid (``n01440764_123.JPEG``). Labels are ImageNet class indices.
* Class folders with any names (``cats/x.jpg``, ``train/cats/x.jpg``, as
  torchvision's ``ImageFolder``): the folder is the label; it also gets the
  ImageNet index when the folder is named after an ImageNet class.
* A flat folder: unlabelled images.

Record ids are root-relative POSIX paths: stable across runs and machines, and
meaningful in a URL. Because the web app receives ids from browsers,
:meth:`Dataset.resolve` is the one place an id becomes a file path, and it
refuses anything that is not one of the files the folder's scan found.

Symlinked files are images of the dataset wherever they point (an ImageNet subset is
usually a folder of links into a full ImageNet tree): the id is the link's own
folder-relative path, and the record's ``path`` is the file it led to when the folder
was scanned, so re-pointing a link afterwards changes nothing that is read. Symlinked
folders are not entered (a link to ``/`` or to an ancestor would bring in a whole tree,
or loop); they are counted among the skipped files.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, overload

import numpy as np

from .images import load_image
from .synsets import class_name_to_index, imagenet_classes, wnid_to_index

__all__ = ["IMAGE_EXTENSIONS", "Dataset", "DatasetError", "ImageRecord", "open_dataset", "SKIP_REASONS",
           "skipped_text"]

_log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
"""Matched case-insensitively, so ImageNet's ``.JPEG`` counts."""

# Folders that split a dataset rather than label it (Imagenette: train/ and val/).
_SPLIT_FOLDERS = frozenset({"train", "training", "val", "valid", "validation", "test", "testing"})
_WNID_PREFIX = re.compile(r"(n\d{8})(?:_|$)")


class DatasetError(ValueError):
    """A folder cannot be used as a dataset; the message names the folder and why."""


@dataclass(frozen=True)
class ImageRecord:
    """One image of a dataset: where it is and what it shows, if known.

    ``label`` is an ImageNet class index (so it can be compared with a model's
    prediction) or None; ``label_name`` is the human label, which may exist
    without an index (a class folder named "my cats"). ``path`` is the real file
    (a symlink's target, as found by the scan); ``name`` is the file's name as the
    folder shows it.
    """

    id: str
    path: Path
    label: int | None
    label_name: str | None

    @property
    def name(self) -> str:
        """The last part of the id: the file's name in the dataset folder (a link's own name)."""
        return PurePosixPath(self.id).name

    def load(self, **options: Any) -> np.ndarray:
        """The pixels as HxWx3 uint8 RGB; ``options`` go to :func:`load_image`."""
        return load_image(self.path, **options)


class Dataset(Sequence[ImageRecord]):
    """An immutable, ordered collection of :class:`ImageRecord` with id lookup.

    ``layout`` tells how labels were found: "imagenet", "class-folders", "flat",
    "mixed" (more than one of those), or "custom" for hand-built datasets.
    """

    def __init__(self, records: Iterable[ImageRecord], *, name: str, root: str | os.PathLike, layout: str = "custom",
                 skipped: dict[str, int] | None = None):
        self._skipped = {k: int(v) for k, v in (skipped or {}).items() if v}
        self._records = tuple(records)
        self._by_id = {record.id: record for record in self._records}
        if len(self._by_id) != len(self._records):
            duplicates = [id_ for id_, count in Counter(r.id for r in self._records).items() if count > 1]
            raise DatasetError(f"Dataset {name!r} has duplicate record ids: {duplicates[:5]}")
        self._name = name
        self._root = Path(root)
        self._layout = layout

    @property
    def name(self) -> str:
        return self._name

    @property
    def root(self) -> Path:
        """The folder every record id is relative to."""
        return self._root

    @property
    def layout(self) -> str:
        return self._layout

    @property
    def skipped(self) -> dict[str, int]:
        """What the scan of the folder left out, by reason (``SKIP_REASONS``), counted."""
        return dict(self._skipped)

    def skipped_text(self) -> str:
        """The skipped files in words (``''`` if none), for messages and the log."""
        return skipped_text(self._skipped)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[ImageRecord]:
        return iter(self._records)

    @overload
    def __getitem__(self, index: int) -> ImageRecord: ...
    @overload
    def __getitem__(self, index: slice) -> Dataset: ...
    def __getitem__(self, index: int | slice) -> ImageRecord | Dataset:
        if isinstance(index, slice):
            return self._subset(self._records[index])
        return self._records[index]

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            return item in self._by_id
        return isinstance(item, ImageRecord) and self._by_id.get(item.id) == item

    def __repr__(self) -> str:
        return f"Dataset(name={self._name!r}, root={str(self._root)!r}, layout={self._layout!r}, records={len(self)})"

    def get(self, id: str, default: ImageRecord | None = None) -> ImageRecord | None:
        """The record with this id, or ``default`` (dict semantics)."""
        return self._by_id.get(id, default)

    def labels(self) -> dict[str, int]:
        """Image count per label name, in dataset order; unlabelled images are not counted."""
        return dict(Counter(r.label_name for r in self._records if r.label_name is not None))

    def by_label(self, label: str | int) -> Dataset:
        """The records with this label name, or this ImageNet class index."""
        if isinstance(label, int):
            return self._subset(r for r in self._records if r.label == label)
        return self._subset(r for r in self._records if r.label_name == label)

    def resolve(self, id: str) -> Path:
        """The real file behind a record id: only ever one of the files the scan found.

        Ids from a browser are untrusted: absolute paths, ``..`` and non-canonical
        spellings raise ValueError before any lookup; ids the scan did not list (a
        symlink added since, a file inside a symlinked folder) raise KeyError; and an
        id whose entry in the folder no longer leads to the file the scan found (a
        link re-pointed, a file or folder swapped for a link) raises ValueError.
        """
        _check_safe_id(id)
        record = self._by_id.get(id)
        if record is None:
            raise KeyError(f"No image with id {id!r} in dataset {self._name!r}")
        real = record.path.resolve()
        if Path(self._root, id).resolve() != real or real != record.path:
            raise ValueError(f"Image id {id!r} no longer leads to the file the scan of {self._root} found "
                             "(a link or folder changed since); refusing it")
        return real

    def _subset(self, records: Iterable[ImageRecord]) -> Dataset:
        return Dataset(records, name=self._name, root=self._root, layout=self._layout)


SKIP_REASONS = {
    "dangling": "broken symlinks and other entries that are not files",
    "linked_folders": "symlinked folders (not entered)",
    "hidden": "hidden files or folders",
    "not_images": "files that are not images by their extension",
}


def skipped_text(skipped: dict[str, int]) -> str:
    """``{"dangling": 3}`` -> ``"3 broken symlinks and other entries that are not files"`` (reasons in ``SKIP_REASONS`` order)."""
    return ", ".join(f"{skipped[k]:,} {SKIP_REASONS[k]}" for k in SKIP_REASONS if skipped.get(k))


def open_dataset(path: str | os.PathLike | None = None, *, name: str | None = None) -> Dataset:
    """Open a folder of images, detecting its layout; ``None`` gives the demo gallery.

    The folder is searched recursively. Symlinked files are followed wherever they
    lead (the record's ``path`` is their target); hidden files and folders, broken
    links and files that are not images by their extension are skipped, and
    symlinked folders are not entered (they could loop or bring in a whole tree).
    What was skipped is counted (``Dataset.skipped``). Records are sorted by id, so
    the order is the same on every machine.
    """
    if path is None:
        from .demo import demo_dataset  # the demo module depends on this one

        return demo_dataset()
    root = Path(path).expanduser()
    if not root.exists():
        raise DatasetError(f"Dataset folder {root} does not exist.")
    if not root.is_dir():
        raise DatasetError(f"{root} is a file; a dataset is a folder of images.")
    root = root.resolve()
    skipped: Counter = Counter()
    files = _scan_images(root, skipped)
    left_out = skipped_text(skipped)
    if not files:
        raise DatasetError(
            f"No images found in {root} (looked recursively for files ending in "
            f"{', '.join(IMAGE_EXTENSIONS)}, any case)." + (f" Skipped: {left_out}." if left_out else "")
        )
    if left_out:
        _log.warning("dataset %s: %d images; skipped %s", root, len(files), left_out)
    records, sources = [], set()
    for relative, real in files:
        label, label_name, source = _label(relative)
        sources.add(source)
        records.append(ImageRecord(id=str(relative), path=real, label=label, label_name=label_name))
    layout = sources.pop() if len(sources) == 1 else "mixed"
    return Dataset(records, name=name or root.name, root=root, layout=layout, skipped=dict(skipped))


def _scan_images(root: Path, skipped: Counter | None = None) -> list[tuple[PurePosixPath, Path]]:
    """(root-relative path, real file) of the images under ``root``, by path; what was left
    out is counted in ``skipped`` by reason. ``root`` is resolved: a regular file's real
    path is then its own (os.walk enters no symlinked folder), a symlink's is its target."""
    skipped = Counter() if skipped is None else skipped
    found = []
    for folder, subfolders, filenames in os.walk(root):  # does not follow symlinked folders
        skipped["hidden"] += sum(d.startswith(".") for d in subfolders)
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        skipped["linked_folders"] += sum(os.path.islink(os.path.join(folder, d)) for d in subfolders)
        for filename in filenames:
            if filename.startswith("."):
                skipped["hidden"] += 1
                continue
            file = Path(folder, filename)
            if os.path.splitext(filename)[1].lower() not in IMAGE_EXTENSIONS:
                skipped["not_images"] += 1
                continue
            real = Path(os.path.realpath(file)) if file.is_symlink() else file
            if not real.is_file():  # a broken link, or a link to a device, a pipe...
                skipped["dangling"] += 1
                continue
            found.append((PurePosixPath(file.relative_to(root).as_posix()), real))
    return sorted(found, key=lambda pair: str(pair[0]))


def _label(relative: PurePosixPath) -> tuple[int | None, str | None, str]:
    """(class index, label name, layout that labelled it) for one root-relative path."""
    folders = relative.parts[:-1]
    # The nearest wnid folder wins, so train/n01440764/x.JPEG works at any depth.
    for folder in reversed(folders):
        if (label := _imagenet_label(folder)) is not None:
            return (*label, "imagenet")
    match = _WNID_PREFIX.match(relative.stem)
    if match and (label := _imagenet_label(match.group(1))) is not None:
        return (*label, "imagenet")
    # As torchvision's ImageFolder: the top folder is the class, nested folders
    # below it belong to it; split folders above it are looked through.
    class_folders = list(folders)
    while class_folders and class_folders[0].lower() in _SPLIT_FOLDERS:
        class_folders.pop(0)
    if class_folders:
        return class_name_to_index(class_folders[0]), class_folders[0], "class-folders"
    return None, None, "flat"


def _imagenet_label(name: str) -> tuple[int, str] | None:
    try:
        index = wnid_to_index(name)
    except KeyError:
        return None
    return index, imagenet_classes()[index]


def _check_safe_id(id: object) -> None:
    if not isinstance(id, str) or not id:
        raise ValueError(f"Image id must be a non-empty string, got {id!r}")
    posix, windows = PurePosixPath(id), PureWindowsPath(id)
    unsafe = (
        "\0" in id
        or "\\" in id
        or posix.is_absolute()
        or windows.drive
        or windows.is_absolute()
        or ".." in posix.parts
        or str(posix) != id  # "a//b", "./a", "a/": ids are canonical, anything else is probing
    )
    if unsafe:
        raise ValueError(f"Unsafe image id {id!r}: ids are relative paths inside the dataset, without '..'")
