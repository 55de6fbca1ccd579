"""What one image contributes to the store, encoded and keyed, ready for one transaction.

``encode_explanation`` is pure (no database): Dask workers run it next to the model and
send the bytes to the client, which only writes them. Rows are one per method, so a
gallery can show methods as they arrive; the image view, the superpixels and the top-k,
which every method shares, are stored once per image and settings (the "base").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np

from ..engine.request import ExplainRequest, canonical_json
from ..engine.results import Explanation
from . import codec

__all__ = ["EncodedRow", "EncodedExplanation", "encode_explanation", "decode_explanation"]


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

    def failure(self) -> str | None:
        """What failed, as one line (None when every method ran)."""
        return "; ".join(f"{m} failed: {why}" for m, why in self.errors.items()) or None

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(r.method for r in self.rows)

    @property
    def nbytes(self) -> int:
        return len(self.base_payload) + sum(len(r.payload) for r in self.rows)


def _completed(explanation: Explanation) -> tuple[str, ...]:
    # A method has run when its cost is recorded (its result dict may legitimately be empty).
    from ..methods.base import registry

    return tuple(m for m in registry() if m in explanation.costs)


def encode_explanation(
    explanation: Explanation,
    image_hash: str,
    request: ExplainRequest | None = None,
    methods: Iterable[str] | None = None,
) -> EncodedExplanation:
    """Key and encode ``explanation`` of the image whose decoded array hashes to ``image_hash``.

    ``request`` defaults to the one recorded in ``explanation.settings``; pass it when it is
    known (the keys are then exactly the ones a later lookup computes). ``methods`` limits
    the rows to some of the completed methods (e.g. the one ``on_method`` just reported).
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
    )


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
        seed=int(base.get("seed", request.seed)),
    )


def top_json(top) -> str:
    return json.dumps([list(t) for t in top])
