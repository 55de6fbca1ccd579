"""Agreement between methods: do two explanations of the same class point at the same superpixels?

For one class and every pair of methods (no model pass; read from the results):

- ``spearman[i, j]``: Spearman rank correlation of the two per-superpixel score vectors
  (average ranks for ties; NaN when a method's results are a set, not a ranking, or a
  vector is constant);
- ``iou[i, j]``: intersection over union of their top-``k`` superpixel sets (an anchor's
  set is the anchor itself, whatever ``k``);
- ``inside[i, j]``: the fraction of method i's set that lies in method j's top-``k`` (for
  an anchor: how much of the anchor the other method also ranks among its ``k`` best).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine.results import Explanation
from .stability import jaccard, spearman

__all__ = ["Agreement", "agreement", "AGREEMENT_TOP_K"]

AGREEMENT_TOP_K = 5
"""Superpixels in each method's top set, by default."""


@dataclass(frozen=True)
class Agreement:
    """Method x method agreement for one class."""

    label: int
    methods: tuple[str, ...]
    ranked: tuple[bool, ...]  # per method: its scores rank the superpixels (else a set, e.g. an anchor)
    k: int
    spearman: np.ndarray  # (n, n)
    iou: np.ndarray  # (n, n)
    inside: np.ndarray  # (n, n): |set_i & top_k(j)| / |set_i|

    def pair(self, a: str, b: str) -> dict[str, float]:
        i, j = self.methods.index(a), self.methods.index(b)
        return {"spearman": float(self.spearman[i, j]), "iou": float(self.iou[i, j]), "inside": float(self.inside[i, j])}


def agreement(explanation: Explanation, *, k: int = AGREEMENT_TOP_K, labels=None, methods=None) -> dict[int, Agreement]:
    """Per class, the agreement of every pair of ``methods`` (default: all with results)."""
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    m = explanation.segmentation.n_segments
    chosen = explanation.methods if methods is None else tuple(methods)
    chosen = tuple(x for x in chosen if all(hasattr(r, "vector") for r in explanation.results.get(x, {}).values()))
    out = {}
    for label in (explanation.labels if labels is None else labels):
        names = tuple(x for x in chosen if label in explanation.results.get(x, {}))
        if not names:
            continue
        results = [explanation.results[x][label] for x in names]
        ranked = tuple(bool(getattr(type(r), "ranked", True)) for r in results)
        vectors = [np.asarray(r.vector(m), np.float64) for r in results]
        sets = [frozenset(r.top_set(int(k))) for r in results]
        tops = [s if ranked[i] else None for i, s in enumerate(sets)]  # a ranked method's set is its top-k
        n = len(names)
        rho, iou, inside = (np.full((n, n), np.nan) for _ in range(3))
        for i in range(n):
            for j in range(n):
                if ranked[i] and ranked[j]:
                    rho[i, j] = 1.0 if i == j else spearman(vectors[i], vectors[j])
                iou[i, j] = jaccard(sets[i], sets[j])
                if tops[j] is not None and sets[i]:
                    inside[i, j] = len(sets[i] & tops[j]) / len(sets[i])
        out[int(label)] = Agreement(label=int(label), methods=names, ranked=ranked, k=int(k),
                                    spearman=rho, iou=iou, inside=inside)
    return out
