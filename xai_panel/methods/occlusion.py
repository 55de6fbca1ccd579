"""Occlusion: leave one superpixel out and see how much the class's probability drops.

The score of superpixel i for class c is ``p_c(image) - p_c(image with i hidden)``: the
classic sliding-window baseline (Zeiler & Fergus 2014; the occlusion baseline of the RISE
paper, Petsiuk et al. 2018) over superpixels instead of square windows. Hidden pixels show
the engine's fill, as for every other method. It costs M model passes (one per
superpixel) for all top-k classes at once, through the engine, so they are batched,
memoised (coalitions another method drew are free) and counted. Deterministic: the seed
changes nothing.

This file is the whole method: the registry finds it, and ``explain``, the store,
``xai-panel precompute --methods occlusion``, the settings card and the dashboards' panes
pick it up from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import param

from ..engine.results import ScoreResult
from .base import Explainer

__all__ = ["OcclusionExplainer", "OcclusionResult", "adjacency", "explain_occlusion"]


@dataclass(frozen=True)
class OcclusionResult(ScoreResult):
    """For one class: how much hiding each superpixel alone lowers its probability."""

    label: int
    values: np.ndarray  # (M,) p_c(image) - p_c(image without superpixel i)
    prediction: float  # p_c(image)


def adjacency(segments: np.ndarray) -> np.ndarray:
    """(M, M) bool: superpixels that share an edge (4-neighbourhood) in the label map."""
    m = int(segments.max()) + 1
    near = np.eye(m, dtype=bool)
    for a, b in ((segments[:, :-1], segments[:, 1:]), (segments[:-1, :], segments[1:, :])):
        differ = a != b
        near[a[differ], b[differ]] = True
        near[b[differ], a[differ]] = True
    return near


def explain_occlusion(engine, labels, *, neighbours: int = 0) -> dict[int, OcclusionResult]:
    """Occlusion scores of each class in ``labels``: one coalition per superpixel.

    Coalition i hides superpixel i and, for ``neighbours`` = k > 0, every superpixel within
    k steps of it in the adjacency graph (a larger occluder, like a larger sliding window);
    0 is the classic leave-one-out. Always M passes, shared by all classes.
    """
    m = engine.n_segments
    if int(neighbours) < 0:
        raise ValueError(f"neighbours must be >= 0, got {neighbours}")
    hidden = np.eye(m, dtype=bool)
    if neighbours:
        step = adjacency(engine.segments)
        for _ in range(int(neighbours)):
            hidden = (hidden.astype(np.int32) @ step.astype(np.int32)) > 0
    full = engine.predict_full()
    probs = engine.evaluate(~hidden)
    return {int(c): OcclusionResult(label=int(c), values=(full[int(c)] - probs[:, int(c)]).astype(np.float64),
                                    prediction=float(full[int(c)]))
            for c in labels}


class OcclusionExplainer(Explainer):
    """Leave-one-superpixel-out occlusion: M passes for every class, deterministic."""

    method = "occlusion"
    label = "Occlusion"
    caption = "how much hiding each superpixel alone costs the class"
    description = ("Red: hiding this superpixel on its own lowers the class's probability by this much (blue: "
                   "raises it). One model pass per superpixel; no sampling, so no seed to vary.")
    result_type = OcclusionResult
    order = 40
    in_default = False  # the library's default triple stays LIME, Anchors and SHAP
    rehearsal = {"neighbours": 1}

    neighbours = param.Integer(0, bounds=(0, 3), doc=(
        "Size of the occluder: 0 hides one superpixel at a time (leave-one-out); k also hides every superpixel "
        "within k steps of it (a larger window, for objects spread over several superpixels)."))

    def compute(self, engine, labels, *, seed, pool, top_k):
        return explain_occlusion(engine, labels, neighbours=self.neighbours)
