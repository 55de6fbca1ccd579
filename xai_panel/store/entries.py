"""What one image contributes to the store, encoded and keyed, ready for one transaction.

``encode_explanation`` is pure (no database): Dask workers run it next to the model and
send the bytes to the client, which only writes them. Rows are one per method, so a
gallery can show methods as they arrive; the image view, the superpixels and the top-k,
which every method shares, are stored once per image and settings (the "base").

The trust metrics (``xai_panel.metrics.trust``) are rows of their own ("measures"), so
storing a result again never loses them and a metric never rewrites a result: one per
method and faithfulness settings (keyed by the method's result key and the settings, with
the top class's AUCs as columns a gallery sorts by), and one per agreement settings and
set of methods (keyed by every result key it was computed from). Metrics computed with
other settings have other keys: they are never read as the current ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np

from ..engine.request import ExplainRequest, canonical_json, digest
from ..engine.results import Explanation
from . import codec

__all__ = ["EncodedMeasure", "EncodedRow", "EncodedExplanation", "encode_explanation", "decode_explanation",
           "decode_measures", "measure_key", "FAITHFULNESS_COLUMNS"]

FAITHFULNESS_COLUMNS = ("deletion_auc", "insertion_auc", "random_deletion_auc", "random_insertion_auc")
"""The top class's faithfulness numbers kept as columns (sortable without decoding)."""


@dataclass(frozen=True)
class EncodedRow:
    key: str
    method: str
    config_key: str
    config: str  # canonical JSON of everything besides the image the result depends on
    payload: bytes
    anchor_precision: float | None  # anchors rows: precision of the anchor for the top-1 class
    wall_seconds: float
    forward_passes: int


@dataclass(frozen=True)
class EncodedMeasure:
    """One stored trust metric: ``kind`` "faithfulness" (one method) or "agreement" (several)."""

    key: str
    kind: str
    method: str | None  # faithfulness: the method; agreement: None
    result_keys: str  # canonical JSON {method: result key} of the results it was computed from
    settings: str  # canonical JSON of the metric's settings
    payload: bytes
    top: tuple[float | None, ...] = (None,) * len(FAITHFULNESS_COLUMNS)  # FAITHFULNESS_COLUMNS of the top class


def measure_key(kind: str, result_keys: Mapping[str, str], settings: Mapping) -> str:
    """Key of one measure: its kind, the results it was computed from and its settings."""
    return digest({"kind": kind, "results": dict(result_keys), "settings": dict(settings)})


@dataclass(frozen=True)
class EncodedExplanation:
    """Everything a store writes for one image, in one transaction."""

    image_hash: str
    model_id: str
    version: str
    base_key: str
    base_payload: bytes
    rows: tuple[EncodedRow, ...]
    top: tuple[tuple[int, str, float], ...]  # (class index, name, probability), most probable first
    errors: Mapping[str, str] = field(default_factory=dict)  # methods that failed (not stored), and why
    measures: tuple[EncodedMeasure, ...] = ()  # the trust metrics of this image (any of its methods)

    def failure(self) -> str | None:
        """What failed, as one line (None when every method ran)."""
        return "; ".join(f"{m} failed: {why}" for m, why in self.errors.items()) or None

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(r.method for r in self.rows)

    @property
    def nbytes(self) -> int:
        return len(self.base_payload) + sum(len(r.payload) for r in self.rows) + sum(len(m.payload) for m in self.measures)


def _completed(explanation: Explanation) -> tuple[str, ...]:
    # A method has run when its cost is recorded (its result dict may legitimately be empty).
    from ..methods.base import registry

    return tuple(m for m in registry() if m in explanation.costs)


def encode_explanation(
    explanation: Explanation,
    image_hash: str,
    request: ExplainRequest | None = None,
    methods: Iterable[str] | None = None,
    measured: Iterable[str] | None = None,
) -> EncodedExplanation:
    """Key and encode ``explanation`` of the image whose decoded array hashes to ``image_hash``.

    ``request`` defaults to the one recorded in ``explanation.settings``; pass it when it is
    known (the keys are then exactly the ones a later lookup computes). ``methods`` limits
    the rows to some of the completed methods (e.g. the one ``on_method`` just reported);
    ``measured`` limits the faithfulness measures likewise (default: every method measured;
    ``methods=()`` writes only the metrics).
    """
    if request is None:
        request = ExplainRequest.from_explanation(explanation)
    if request.model_id is None:
        request = request.with_model(explanation.model_id)
    if request.model_id != explanation.model_id:
        raise ValueError(f"explanation is from model {explanation.model_id!r}, the request names {request.model_id!r}")
    done = _completed(explanation)
    chosen = done if methods is None else tuple(m for m in done if m in set(methods))
    view = np.asarray(explanation.image)
    base_payload = codec.encode({
        "image": view, "segmentation": explanation.segmentation, "top": tuple(explanation.top),
        "cost": explanation.costs.get("top-k"), "seed": explanation.seed,
        **({"asked": tuple(explanation.asked)} if explanation.asked else {}),
    })
    rows = []
    for method in chosen:
        if method not in request.settings:
            raise ValueError(f"the request has no settings for {method!r}")
        results = dict(explanation.results.get(method, {}))
        cost = explanation.costs.get(method)
        payload = codec.encode({"method": method, "results": results, "cost": cost}, view=view)
        precision = None  # the summary column for results that have a precision (anchors)
        top1 = results.get(explanation.top[0].index) if explanation.top else None
        if getattr(top1, "precision", None) is not None:
            precision = float(top1.precision)
        rows.append(EncodedRow(
            key=request.result_key(image_hash, method), method=method,
            config_key=request.config_key(method), config=canonical_json(request.method_config(method)),
            payload=payload, anchor_precision=precision,
            wall_seconds=float(cost.wall_seconds) if cost else 0.0,
            forward_passes=int(cost.forward_passes) if cost else 0,
        ))
    return EncodedExplanation(
        image_hash=image_hash, model_id=explanation.model_id, version=request.version,
        base_key=request.base_key(image_hash), base_payload=base_payload, rows=tuple(rows),
        top=tuple((int(c.index), str(c.name), float(c.probability)) for c in explanation.top),
        measures=encode_measures(explanation, image_hash, request, done, measured),
    )


def encode_measures(explanation: Explanation, image_hash: str, request: ExplainRequest,
                    completed: Iterable[str], methods: Iterable[str] | None = None) -> tuple[EncodedMeasure, ...]:
    """The trust metrics of ``explanation`` (faithfulness of ``methods``, default all; its
    agreement when every method it covers is completed), keyed to the results they score."""
    completed = set(completed)
    settings = explanation.metric_settings
    out = []
    top = explanation.top[0].index if explanation.top else None
    if explanation.faithfulness and "faithfulness" in settings:
        chosen = set(explanation.faithfulness) if methods is None else set(methods)
        for method, per_label in explanation.faithfulness.items():
            if method not in chosen or method not in completed or method not in request.settings:
                continue
            keys = {method: request.result_key(image_hash, method)}
            first = per_label.get(top)
            out.append(EncodedMeasure(
                key=measure_key("faithfulness", keys, settings["faithfulness"]), kind="faithfulness",
                method=method, result_keys=canonical_json(keys), settings=canonical_json(settings["faithfulness"]),
                payload=codec.encode({"kind": "faithfulness", "method": method, "results": dict(per_label)}),
                top=tuple(None if first is None else float(getattr(first, c)) for c in FAITHFULNESS_COLUMNS)))
    if explanation.agreement and "agreement" in settings:
        covered = sorted({m for a in explanation.agreement.values() for m in a.methods})
        if covered and set(covered) <= completed and set(covered) <= set(request.settings):
            keys = {m: request.result_key(image_hash, m) for m in covered}
            out.append(EncodedMeasure(
                key=measure_key("agreement", keys, settings["agreement"]), kind="agreement", method=None,
                result_keys=canonical_json(keys), settings=canonical_json(settings["agreement"]),
                payload=codec.encode({"kind": "agreement", "results": dict(explanation.agreement)})))
    return tuple(out)


def decode_measures(explanation: Explanation, image_hash: str, request: ExplainRequest,
                    rows: Iterable[tuple[str, str, str, bytes]]) -> Explanation:
    """``explanation`` with the stored measures that score exactly its results.

    ``rows`` are (kind, result_keys JSON, settings JSON, payload), newest first. Faithfulness
    is read with one set of settings (the newest measure's): methods measured only with other
    settings are left unmeasured rather than mixed. An agreement is read when it covers
    exactly the explanation's methods. A measure that does not decode is skipped.
    """
    from dataclasses import replace

    from ..metrics.agreement import Agreement
    from ..metrics.faithfulness import Faithfulness

    present = {m: request.result_key(image_hash, m) for m in explanation.results if m in request.settings}
    # the methods an agreement covers: those with results that all give a vector
    eligible = {m: k for m, k in present.items() if explanation.results.get(m)
                and all(hasattr(r, "vector") for r in explanation.results[m].values())}
    faithfulness: dict = {}
    agreement: dict = {}
    metric_settings: dict = {}
    for kind, result_keys, settings, payload in rows:
        try:
            keys, settings = json.loads(result_keys), json.loads(settings)
            if kind == "faithfulness":
                (method, key), = keys.items()
                if present.get(method) != key or method in faithfulness:
                    continue
                if metric_settings.setdefault("faithfulness", settings) != settings:
                    continue  # measured with other settings than the newest: not mixed in
                value = codec.decode(payload)
                per_label = {int(k): v for k, v in value["results"].items()}
                if value.get("method") == method and all(isinstance(v, Faithfulness) for v in per_label.values()):
                    faithfulness[method] = per_label
            elif kind == "agreement" and not agreement and keys == eligible:
                value = codec.decode(payload)
                per_label = {int(k): v for k, v in value["results"].items()}
                if all(isinstance(v, Agreement) for v in per_label.values()):
                    agreement = per_label
                    metric_settings["agreement"] = settings
        except (codec.CodecError, ValueError, TypeError, AttributeError, KeyError):
            continue  # a damaged measure is as good as none: the metric is measured again when asked
    if not faithfulness:
        metric_settings.pop("faithfulness", None)
    if not faithfulness and not agreement:
        return explanation
    return replace(explanation, faithfulness=faithfulness, agreement=agreement, metric_settings=metric_settings)


def decode_explanation(base_payload: bytes, rows: Iterable[tuple[str, bytes]], request: ExplainRequest) -> Explanation:
    """An ``Explanation`` from a base payload and (method, payload) rows of ``request``."""
    base = codec.decode(base_payload)
    view = base["image"]
    results: dict = {}
    costs = {}
    if base.get("cost") is not None:
        costs["top-k"] = base["cost"]
    for method, payload in rows:
        value = codec.decode(payload, view=view)
        if value.get("method") != method:
            raise codec.CodecError(f"row for {method} holds {value.get('method')!r}")
        results[method] = {int(k): v for k, v in value["results"].items()}
        if value.get("cost") is not None:
            costs[method] = value["cost"]
    return Explanation(
        image=view, model_id=request.model_id, top=tuple(base["top"]), segmentation=base["segmentation"],
        results=results, costs=costs, settings=request.explanation_settings(results),
        seed=int(base.get("seed", request.seed)), asked=tuple(base.get("asked", ())),
    )


def top_json(top) -> str:
    return json.dumps([list(t) for t in top])
