"""Cache keys: what makes two explanations the same.

A stored result is found again only by recomputing its key from the request, so the key
holds everything that changes the result and nothing else:

* the image, as ``xai_panel.data.image_hash`` of the **decoded** HxWx3 uint8 array
  (not of the file bytes): a dashboard holding an uploaded array finds what a batch job
  stored from the file, and re-saving a file with other metadata changes nothing;
* the model id (it carries the weights' digest, e.g. ``efficientnet_lite0@579344248a93``);
* the method and its settings with every default filled in (``make_explainer``), plus
  the shared ones: segmentation algorithm and its resolved parameters, fill, top-k, the
  classes asked for beside the top-k (``labels``, sorted; only when there are some), seed
  and the size of the shared coalition pool (LIME's ``num_samples`` when LIME is
  requested, else ``DEFAULT_POOL_SIZE``: SHAP's 'pool' estimator and the Anchor search
  draw from that pool, so their results depend on it);
* the xai-panel version and the key schema (``KEY_SCHEMA``: the layout of a stored
  result; a new table in the store, ``SCHEMA_VERSION``, does not change any result and
  so no key).

Keys are SHA-256 of canonical JSON (sorted keys, no spaces, integral floats written as
integers so ``threshold=1`` and ``threshold=1.0`` agree).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["KEY_SCHEMA", "SCHEMA_VERSION", "ExplainRequest", "canonical_json", "check_labels", "digest",
           "package_version"]

SCHEMA_VERSION = 2
"""Version of the store's tables (``PRAGMA user_version``; 2 added the trust metrics' table)."""
KEY_SCHEMA = 1
"""Version of the stored results' layout and payload format; part of every key. Bumped only
when a stored result would read differently, so a store upgrade keeps every key valid."""


@functools.lru_cache(maxsize=1)
def package_version() -> str:
    """The installed xai-panel version (part of every key: a new release recomputes). Read once
    per process: ``importlib.metadata`` reads the package's metadata files on every call (24 ms
    of a stored click's 0.03 s in the worker, measured under a page's load)."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("xai-panel")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def check_labels(labels: Iterable[int | str] | None, class_names: Sequence[str] | None = None) -> tuple[int, ...]:
    """Classes asked for (``explain(labels=...)``) as sorted, distinct class indices.

    Each is a class index or, given ``class_names``, a class name (exact, else a unique
    case-insensitive match). An index out of range, an unknown or ambiguous name, or a name
    without ``class_names`` is a ``ValueError`` that says so (with a "did you mean").
    """
    if labels is None:
        return ()
    if isinstance(labels, (str, int)) or hasattr(labels, "ndim") and getattr(labels, "ndim") == 0:
        labels = [labels]
    n = None if class_names is None else len(class_names)
    out = set()
    for label in labels:
        if hasattr(label, "item") and getattr(label, "ndim", None) == 0:
            label = label.item()  # numpy scalars
        if isinstance(label, bool) or not isinstance(label, (int, str)):
            raise ValueError(f"a class is an index or a class name, not {label!r}")
        if isinstance(label, str):
            if class_names is None:
                raise ValueError(f"class {label!r} is a name: give its index, or the model's class names")
            label = _class_index(label, class_names)
        if label < 0 or (n is not None and label >= n):
            upper = f"{n - 1}" if n is not None else "the number of classes - 1"
            raise ValueError(f"class index {label} is out of range: the model's classes are 0 to {upper}")
        out.add(int(label))
    return tuple(sorted(out))


def _class_index(name: str, class_names: Sequence[str]) -> int:
    exact = [i for i, c in enumerate(class_names) if c == name]
    folded = exact or [i for i, c in enumerate(class_names) if c.casefold() == name.strip().casefold()]
    if len(folded) == 1:
        return folded[0]
    if len(folded) > 1:
        raise ValueError(f"class name {name!r} is ambiguous: it names classes {folded}; give the index")
    import difflib

    close = difflib.get_close_matches(name.strip().casefold(), [c.casefold() for c in class_names], n=3, cutoff=0.6)
    lookup = {c.casefold(): c for c in reversed(class_names)}
    hint = f"; did you mean {', '.join(repr(lookup[c]) for c in close)}?" if close else ""
    raise ValueError(f"unknown class {name!r}: not one of the model's class names{hint}")


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", None) == 0:
        value = value.item()  # numpy scalars
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot key a non-finite number {value!r}")
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    raise TypeError(f"cannot put a {type(value).__name__} in a cache key: {value!r}")


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, compact separators, numbers by value."""
    return json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def digest(value: Any) -> str:
    """SHA-256 hex of ``canonical_json(value)``."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


@dataclass(frozen=True)
class ExplainRequest:
    """The arguments of one ``xai_panel.explain`` call, normalised for keying.

    Build it with :meth:`create` (which fills defaults and checks settings) rather than the
    constructor. ``model_id`` may be None while unknown (a Dask client learns it from the
    first worker); keys need it, so use :meth:`with_model` first.
    """

    model_id: str | None
    methods: tuple[str, ...]
    top_k: int
    seed: int
    segmentation: str
    segmentation_params: Mapping[str, Any]
    fill: str
    settings: Mapping[str, Mapping[str, Any]]  # method -> every parameter, defaults included
    pool_size: int  # size of the shared coalition pool (see the module doc)
    version: str = field(default_factory=package_version)
    schema: int = KEY_SCHEMA
    labels: tuple[int, ...] = ()  # classes asked for beside the top-k (check_labels: sorted, distinct)

    @classmethod
    def create(
        cls,
        model_id: str | None = None,
        methods: Iterable[str] | None = None,
        *,
        top_k: int = 5,
        seed: int = 0,
        segmentation: str = "quickshift",
        segmentation_params: Mapping[str, Any] | None = None,
        fill: str = "mean",
        settings: Mapping[str, Any] | None = None,
        version: str | None = None,
        labels: Iterable[int] | None = None,
    ) -> "ExplainRequest":
        """Same arguments as ``explain`` (minus image and classifier): checked and normalised.

        ``labels`` are class indices here (``check_labels`` with the model's class names turns
        names into indices); whether each is below the model's number of classes is checked
        by ``explain``, which knows the model."""
        from ..methods.base import check_methods, default_methods, make_explainer, pool_size_of, run_order
        from .segmentation import DEFAULTS

        methods = run_order(default_methods() if methods is None else methods)  # explain's own order
        if not methods:
            raise ValueError("methods must name at least one method")
        settings = dict(settings or {})
        check_methods(settings)
        labels = check_labels(labels)
        if int(top_k) < 0 or (int(top_k) == 0 and not labels):
            raise ValueError(f"top_k must be >= 1 (or 0 with labels=), got {top_k}")
        if segmentation not in DEFAULTS:
            raise ValueError(f"unknown segmentation {segmentation!r}; choose one of {', '.join(DEFAULTS)}")
        seg_params = dict(segmentation_params or {})
        extra = set(seg_params) - set(DEFAULTS[segmentation])
        if extra:
            raise ValueError(f"{segmentation} takes {sorted(DEFAULTS[segmentation])}, not {sorted(extra)}")
        explainers = {m: make_explainer(m, settings.get(m)) for m in methods}
        normalised = {m: e.settings() for m, e in explainers.items()}
        pool_size = pool_size_of(explainers)
        return cls(
            model_id=model_id,
            methods=methods,
            top_k=int(top_k),
            seed=int(seed),
            segmentation=segmentation,
            segmentation_params={**DEFAULTS[segmentation], **seg_params},
            fill=fill,
            settings=normalised,
            pool_size=pool_size,
            version=version or package_version(),
            labels=labels,
        )

    def with_model(self, model_id: str) -> "ExplainRequest":
        from dataclasses import replace

        return replace(self, model_id=model_id)

    def with_methods(self, methods: Iterable[str]) -> "ExplainRequest":
        """The same request narrowed to some of its methods; keys and pool size unchanged."""
        from dataclasses import replace

        return replace(self, methods=tuple(m for m in self.methods if m in set(methods)))

    # -- what to pass to explain -----------------------------------------------------
    def explain_kwargs(self, methods: Iterable[str] | None = None) -> dict:
        """Keyword arguments for ``xai_panel.explain`` that reproduce ``methods`` of this request.

        The method that defines the shared pool is added whenever it is part of the request:
        computing e.g. only SHAP without it would give a result that does not match its key.
        """
        from ..methods.base import method_class, run_order

        wanted = set(self.methods if methods is None else methods)
        if wanted:
            wanted |= {m for m in self.settings if method_class(m).defines_pool}
        chosen = run_order(m for m in self.settings if m in wanted)
        return {
            "methods": chosen,
            "top_k": self.top_k,
            "seed": self.seed,
            "segmentation": self.segmentation,
            "segmentation_params": dict(self.segmentation_params),
            "fill": self.fill,
            "settings": {m: dict(self.settings[m]) for m in chosen},
            "labels": self.labels,
        }

    # -- keys --------------------------------------------------------------------------
    def _require_model(self) -> str:
        if not self.model_id:
            raise ValueError("this request has no model_id yet; call with_model(classifier.model_id)")
        return self.model_id

    def base_config(self) -> dict:
        """What the image view, the superpixels and the classes explained depend on.

        The asked classes (``labels``) are part of it only when there are some, so the keys of
        a request without them are the ones stored before they existed."""
        config = {"kind": "base", "model_id": self._require_model(), "segmentation": self.segmentation,
                  "segmentation_params": dict(self.segmentation_params), "seed": self.seed,
                  "top_k": self.top_k, "version": self.version, "schema": self.schema}
        if self.labels:
            config["labels"] = list(self.labels)
        return config

    def method_config(self, method: str) -> dict:
        """Everything besides the image that ``method``'s result depends on."""
        if method not in self.settings:
            raise ValueError(f"{method!r} is not part of this request ({', '.join(self.methods)})")
        return {**self.base_config(), "kind": "result", "method": method, "fill": self.fill,
                "pool_size": self.pool_size, "settings": dict(self.settings[method])}

    def config_key(self, method: str) -> str:
        """Key of ``method``'s configuration, the same for every image."""
        return digest(self.method_config(method))

    def result_key(self, image_hash: str, method: str) -> str:
        """Key of one stored result row: this image, this method, these settings."""
        return digest({"image": image_hash, **self.method_config(method)})

    def base_key(self, image_hash: str) -> str:
        return digest({"image": image_hash, **self.base_config()})

    def explanation_settings(self, methods: Iterable[str]) -> dict:
        """``Explanation.settings`` as ``explain`` writes it, for the given methods."""
        return {"segmentation": self.segmentation, "segmentation_params": dict(self.segmentation_params),
                "fill": self.fill, "top_k": self.top_k, **({"labels": list(self.labels)} if self.labels else {}),
                **{m: dict(self.settings[m]) for m in self.methods if m in set(methods)}}

    def to_json(self) -> str:
        return canonical_json({"model_id": self.model_id, "methods": list(self.methods), "top_k": self.top_k,
                               "seed": self.seed, "segmentation": self.segmentation,
                               "segmentation_params": dict(self.segmentation_params), "fill": self.fill,
                               "settings": {m: dict(s) for m, s in self.settings.items()},
                               "pool_size": self.pool_size, "labels": list(self.labels),
                               "version": self.version, "schema": self.schema})

    @classmethod
    def from_explanation(cls, explanation) -> "ExplainRequest":
        """The request that produced ``explanation`` (its settings hold every input).

        Partial explanations (``explain``'s ``on_method``) carry the settings of every
        requested method from the start, so the pool size comes out right for them too.
        """
        s = dict(explanation.settings)
        from ..methods.base import registry

        requested = [m for m in registry() if m in s]
        return cls.create(
            explanation.model_id, requested, top_k=s["top_k"],
            seed=explanation.seed, segmentation=s["segmentation"], segmentation_params=s.get("segmentation_params"),
            fill=s["fill"], settings={m: s[m] for m in requested}, labels=s.get("labels"),
        )
