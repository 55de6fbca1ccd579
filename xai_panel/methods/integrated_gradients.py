"""Integrated Gradients (Sundararajan et al. 2017) on captum's ``IntegratedGradients``.

Each pixel's attribution is its difference from a baseline image times the class score's
gradient averaged along the straight path from the baseline to the image (``steps``
points of a Gauss-Legendre rule by default, captum's). The attributions add up to the
change of the class's score from the baseline to the image (completeness); captum's
convergence ``delta`` says how far the sum is from it, and is kept in the result. All
top-k classes go in one captum call (the image repeated per class, batched targets):
``steps`` forward and backward passes per class, ``internal_batch_size`` at a time.

The map is the attributions summed over the colour channels (signed, so it keeps
completeness); ``values`` is its mean per superpixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import param

from ._gradients import GradientExplainer, GradientResult, to_maps

__all__ = ["IntegratedGradientsExplainer", "IntegratedGradientsResult", "BASELINES"]

BASELINES = ("black", "fill", "mean")


@dataclass(frozen=True)
class IntegratedGradientsResult(GradientResult):
    """For one class: IG's pixel map, its superpixel means, and its completeness."""

    expected: float = 0.0  # f_c(image) - f_c(baseline): what the map should sum to
    delta: float = 0.0  # captum's convergence delta: sum(map) - expected


def baseline_input(engine, baseline: str) -> np.ndarray:
    """The (1, 3, H, W) normalised baseline image: black, the engine's fill (what the
    perturbation methods show for a hidden superpixel), or the normalisation's mean colour
    (zero input)."""
    if baseline == "black":
        return engine.classifier.preprocessing.normalise(np.zeros((1, *engine.image.shape), np.uint8))
    if baseline == "fill":
        return engine.classifier.preprocessing.normalise(engine.background[None])
    if baseline == "mean":
        return np.zeros((1, 3, *engine.image.shape[:2]), np.float32)
    raise ValueError(f"unknown baseline {baseline!r}; choose one of {', '.join(BASELINES)}")


class IntegratedGradientsExplainer(GradientExplainer):
    """Integrated Gradients from a baseline image, for every class in one batched call."""

    method = "integrated_gradients"
    label = "Integrated Gradients"
    caption = "each pixel's share of the score's change from a baseline image"
    description = ("Red: pixels whose change from the baseline image raises the class's score (blue: lowers it); "
                   "the pixels' attributions add up to the score's change from the baseline (Σ), within captum's "
                   "reported error δ. Per superpixel: the mean over its pixels.")
    result_type = IntegratedGradientsResult
    order = 52
    in_default = False
    interactive = {"steps": 16}
    rehearsal = {"steps": 2}

    steps = param.Integer(32, bounds=(2, 512), doc=(
        "Points on the path from the baseline to the image (forward and backward passes per class); more: a "
        "smaller completeness error δ."))
    baseline = param.Selector(default="black", objects=list(BASELINES), doc=(
        "The image the path starts from: black; the perturbation methods' fill (superpixel means, so IG and "
        "the deletion metric remove the same thing); or the normalisation's mean colour."))
    rule = param.Selector(default="gausslegendre", objects=["gausslegendre", "riemann_trapezoid", "riemann_middle",
                                                            "riemann_left", "riemann_right"],
                          doc="captum's integration rule along the path.")
    internal_batch_size = param.Integer(32, bounds=(1, 1024), doc=(
        "Path points per model batch (memory, not the result)."))

    def attribute(self, forward, x, labels, *, seed, engine):
        import torch
        from captum.attr import IntegratedGradients

        k = len(labels)
        base = torch.from_numpy(baseline_input(engine, self.baseline)).to(x.device)
        inputs, baselines = x.expand(k, *x.shape[1:]), base.expand(k, *base.shape[1:])
        attributions, delta = IntegratedGradients(forward).attribute(
            inputs, baselines=baselines, target=labels, n_steps=self.steps, method=self.rule,
            internal_batch_size=self.internal_batch_size, return_convergence_delta=True)
        maps = to_maps(attributions)
        delta = delta.detach().double().cpu().numpy()
        expected = maps.astype(np.float64).reshape(k, -1).sum(axis=1) - delta
        return maps, {"expected": expected, "delta": delta}, k * self.steps
