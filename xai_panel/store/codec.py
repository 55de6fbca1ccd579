"""Explanation parts <-> compact bytes, without pickle.

A payload is a zip archive (deflate) holding ``manifest.json`` and one ``.npy`` file per
array. The manifest describes the structure with a closed vocabulary: JSON scalars,
lists, tuples, dicts with any JSON-scalar keys, arrays, and the result dataclasses of
``xai_panel.engine.results`` named by :func:`types` (the registered methods' result types and the
trust metrics'). Arrays are read with
``allow_pickle=False`` and object dtypes are refused on both sides, so reading a store,
even a hostile one, never runs code.

Compactness, all lossless: integer arrays are stored in the smallest unsigned dtype that
holds them (superpixel labels usually fit uint8) and restored to their dtype; stacks of
perturbed images of the view (Anchor examples) are stored as the pixels that differ from
the view plus a bit mask, which deflate shrinks to a fraction (hidden superpixels are
flat colours).
"""

from __future__ import annotations

import dataclasses
import io
import json
import threading
import zipfile
from typing import Any, Mapping

import numpy as np

from ..engine.results import ClassScore, MethodCost, Segmentation

__all__ = ["CodecError", "CORE_TYPES", "FORMAT", "types", "encode", "decode"]

FORMAT = 1
MAX_UNPACKED_BYTES = 1 << 30  # a payload claiming more is refused before inflating (zip bombs)

CORE_TYPES: dict[str, type] = {cls.__name__: cls for cls in (MethodCost, Segmentation, ClassScore)}


def types() -> dict[str, type]:
    """The dataclasses a payload may hold: the core ones, the trust metrics' and every registered
    method's result type."""
    from ..methods.base import registry
    from ..metrics.agreement import Agreement
    from ..metrics.faithfulness import Faithfulness, PixelFaithfulness

    found = {**CORE_TYPES, **{cls.__name__: cls for cls in (Faithfulness, PixelFaithfulness, Agreement)}}
    for cls in registry().values():
        found.setdefault(cls.result_type.__name__, cls.result_type)
    return found


class CodecError(ValueError):
    """A payload cannot be written or read; the message says which part and why."""


class _Writer:
    def __init__(self, view: np.ndarray | None):
        self.arrays: dict[str, np.ndarray] = {}
        self.view = view

    def _add(self, array: np.ndarray) -> str:
        name = f"a{len(self.arrays)}"
        self.arrays[name] = np.ascontiguousarray(array)
        return name

    def array(self, a: np.ndarray) -> dict:
        if a.dtype.hasobject or a.dtype.kind not in "biufc":
            raise CodecError(f"cannot store an array of dtype {a.dtype} (only numbers and booleans)")
        view = self.view
        if (view is not None and a.dtype == np.uint8 and a.ndim == 4 and a.shape[1:] == view.shape):
            same = np.all(a == view[None], axis=-1)
            rest = np.where(same[..., None], 0, a).astype(np.uint8)
            return {"$a": self._add(rest), "shape": list(a.shape), "dtype": a.dtype.str,
                    "masked": self._add(np.packbits(same.ravel()))}
        entry = {"shape": list(a.shape), "dtype": a.dtype.str}
        if a.dtype.kind in "iu" and a.size and a.min() >= 0 and a.max() <= np.iinfo(np.uint16).max:
            small = np.uint8 if a.max() <= 255 else np.uint16
            if np.dtype(small).itemsize < a.dtype.itemsize:
                a = a.astype(small)
        entry["$a"] = self._add(a)
        return entry

    def pack(self, value: Any) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, np.ndarray):
            return self.array(value)
        if isinstance(value, np.generic):
            return self.pack(value.item())
        if isinstance(value, (int, float)):
            return value
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            name, known = type(value).__name__, types()
            if known.get(name) is not type(value):
                raise CodecError(f"cannot store a {name}: only {', '.join(known)}")
            return {"$c": name, "f": {f.name: self.pack(getattr(value, f.name)) for f in dataclasses.fields(value)}}
        if isinstance(value, tuple):
            return {"$t": [self.pack(v) for v in value]}
        if isinstance(value, list):
            return [self.pack(v) for v in value]
        if isinstance(value, Mapping):
            items = []
            for k, v in value.items():
                if isinstance(k, np.generic):
                    k = k.item()
                if not (k is None or isinstance(k, (bool, int, float, str))):
                    raise CodecError(f"cannot store a dict key of type {type(k).__name__}")
                items.append([k, self.pack(v)])
            return {"$d": items}
        raise CodecError(f"cannot store a value of type {type(value).__name__}")


def encode(value: Mapping[str, Any], *, view: np.ndarray | None = None, level: int = 6) -> bytes:
    """Bytes for ``value`` (a dict of storable values). With ``view`` (H, W, 3 uint8), image
    stacks of that size are stored as their difference from it; pass the same view to
    :func:`decode`."""
    writer = _Writer(None if view is None else np.asarray(view))
    manifest = {"format": FORMAT, "masked_view": view is not None, "value": writer.pack(dict(value))}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as z:
        z.writestr("manifest.json", json.dumps(manifest, separators=(",", ":")))
        for name, array in writer.arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            z.writestr(name + ".npy", buffer.getvalue())
    return out.getvalue()


# numpy parses an .npy header with ``ast.literal_eval``; CPython 3.11 builds AST objects with
# an interpreter-wide recursion counter, so headers parsed in several threads at once can fail
# with "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905). The
# header (a few dozen bytes) is read under a lock; the data are read outside it.
_HEADER_LOCK = threading.Lock()


def _read_npy(f: io.BytesIO) -> np.ndarray:
    with _HEADER_LOCK:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise CodecError(f"unsupported .npy version {version}")
    if dtype.hasobject:
        raise CodecError("object arrays are refused")
    count = int(np.prod(shape, dtype=np.int64))
    data = f.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise CodecError("array data are truncated")
    array = np.frombuffer(data, dtype=dtype, count=count)
    return (array.reshape(shape[::-1]).T if fortran else array.reshape(shape)).copy()


class _Reader:
    def __init__(self, z: zipfile.ZipFile, view: np.ndarray | None):
        self.z = z
        self.view = view

    def _load(self, name: Any) -> np.ndarray:
        if not isinstance(name, str) or not name.isalnum():
            raise CodecError(f"bad array reference {name!r}")
        try:
            with self.z.open(name + ".npy") as f:
                return _read_npy(io.BytesIO(f.read()))
        except KeyError:
            raise CodecError(f"array {name} is missing") from None

    def array(self, entry: dict) -> np.ndarray:
        dtype, shape = np.dtype(entry["dtype"]), tuple(int(n) for n in entry["shape"])
        if dtype.hasobject:
            raise CodecError("object arrays are refused")
        stored = self._load(entry["$a"])
        if "masked" in entry:
            if self.view is None:
                raise CodecError("this payload stores images relative to the view; pass view=")
            same = np.unpackbits(self._load(entry["masked"]))[: int(np.prod(shape[:-1]))].reshape(shape[:-1]).astype(bool)
            stored = np.where(same[..., None], self.view[None], stored.reshape(shape))
        out = stored.astype(dtype, copy=False).reshape(shape)
        return out

    def unpack(self, value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, list):
            return [self.unpack(v) for v in value]
        if not isinstance(value, dict):
            raise CodecError(f"unexpected {type(value).__name__} in manifest")
        if "$a" in value:
            return self.array(value)
        if "$t" in value:
            return tuple(self.unpack(v) for v in value["$t"])
        if "$d" in value:
            return {k: self.unpack(v) for k, v in value["$d"]}
        if "$c" in value:
            cls = types().get(value["$c"])
            if cls is None:
                raise CodecError(f"unknown type {value['$c']!r} in payload")
            known = {f.name for f in dataclasses.fields(cls)}
            fields = {k: self.unpack(v) for k, v in value["f"].items() if k in known}
            try:
                return cls(**fields)
            except TypeError as exc:
                raise CodecError(f"stored {cls.__name__} does not fit this version: {exc}") from None
        raise CodecError(f"unknown manifest entry with keys {sorted(value)}")


def decode(data: bytes, *, view: np.ndarray | None = None) -> dict:
    """The value given to :func:`encode`; raises :class:`CodecError` on anything unexpected."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            if sum(i.file_size for i in z.infolist()) > MAX_UNPACKED_BYTES:
                raise CodecError("payload unpacks to more than 1 GiB; refusing it")
            manifest = json.loads(z.read("manifest.json"))
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise CodecError(f"unknown payload format {manifest.get('format') if isinstance(manifest, dict) else None!r}")
            value = _Reader(z, None if view is None else np.asarray(view)).unpack(manifest["value"])
    except CodecError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, TypeError, AttributeError) as exc:
        raise CodecError(f"payload is damaged: {exc}") from None
    if not isinstance(value, dict):
        raise CodecError("payload does not hold a dict")
    return value
