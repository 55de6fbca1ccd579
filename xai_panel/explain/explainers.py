"""Param-driven explainers: settings are parameters with bounds and docs, results are
read-only (constant) parameters, and the work is one pure ``compute`` per method.

The contract (as captum's ``attribute``): ``compute(engine, labels, seed, pool)`` returns
``{label: result}``. ``explain`` runs one method end to end for notebook use; the shared,
multi-method path is ``xai_panel.explain``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import param

from .results import MethodCost

__all__ = ["Explainer", "LimeExplainer", "AnchorExplainer", "ShapExplainer", "EXPLAINERS", "make_explainer"]


class Explainer(param.Parameterized):
    """Base: one explanation method over a shared ``PerturbationEngine``."""

    method: ClassVar[str] = ""

    results = param.Dict(default={}, constant=True, doc="Per class index, this method's result (read-only).")
    cost = param.ClassSelector(class_=MethodCost, default=None, allow_None=True, constant=True,
                               doc="Wall time, forward passes and cache hits of the last run (read-only).")

    def settings(self) -> dict:
        """The values of the parameters that change the result (used in cache keys)."""
        skip = {"name", "results", "cost"}
        return {k: v for k, v in self.param.values().items() if k not in skip}

    def compute(self, engine, labels, *, seed: int, pool, top_k: int) -> dict:
        raise NotImplementedError

    def explain(self, image: np.ndarray, classifier=None, *, top_k: int = 5, seed: int = 0, **kwargs):
        """Run this method alone on ``image``; fills ``results`` and ``cost`` and returns the Explanation."""
        from .api import explain

        res = explain(image, classifier, methods=(self.method,), top_k=top_k, seed=seed,
                      settings={self.method: self.settings()}, **kwargs)
        with param.edit_constant(self):
            self.param.update(results=dict(getattr(res, self.method)), cost=res.costs.get(self.method))
        return res


class LimeExplainer(Explainer):
    """LIME (Ribeiro et al. 2016) with the ``lime`` package's weighted ridge surrogate."""

    method = "lime"
    num_samples = param.Integer(1000, bounds=(10, 50000), doc="Coalitions sampled (the shared pool's size).")
    kernel_width = param.Number(0.25, bounds=(0.01, 10.0), doc="Width of LIME's exponential kernel on cosine distance.")

    def compute(self, engine, labels, *, seed, pool, top_k):
        from .lime import explain_lime

        return explain_lime(engine, labels, num_samples=self.num_samples, seed=seed,
                            kernel_width=self.kernel_width, pool=pool)


class AnchorExplainer(Explainer):
    """Anchors (Ribeiro et al. 2018) through ``alibi``'s AnchorImage search, on the engine.

    For the top class the anchor keeps it the top class; for the others it keeps the class
    within the top-k (``top_k``) of the perturbed image's prediction.
    """

    method = "anchors"
    threshold = param.Number(0.95, bounds=(0.5, 1.0), doc="Minimum precision an anchor must reach.")
    p_sample = param.Number(0.5, bounds=(0.05, 0.95), doc="Probability that a superpixel outside the anchor is hidden.")
    delta = param.Number(0.1, bounds=(0.01, 0.5), doc="Significance for the precision bound (1 - confidence).")
    tau = param.Number(0.15, bounds=(0.01, 0.5), doc="Bandit tolerance when choosing candidates.")
    batch_size = param.Integer(100, bounds=(10, 1000), doc="Coalitions sampled per bandit step.")
    regions = param.Integer(10, bounds=(2, 200), allow_None=True, doc=(
        "Search over about this many regions, each a union of neighbouring superpixels of the shared "
        "segmentation (alibi's classic image setting is slic with ~10 segments); None: over the superpixels "
        "themselves, which costs thousands of passes per class on ~35 superpixels."))
    max_anchor_size = param.Integer(6, bounds=(1, 64), allow_None=True, doc=(
        "Largest anchor (regions, or superpixels with regions=None); None: no limit. "
        "A class whose anchor needs more comes back with found=False."))
    coverage_samples = param.Integer(2000, bounds=(100, 100000), doc="Samples used to estimate coverage (no model calls).")
    n_examples = param.Integer(4, bounds=(0, 20), doc="Example perturbed images kept per class.")

    def compute(self, engine, labels, *, seed, pool, top_k):
        from .anchors import explain_anchors
        from .segmentation import merge_regions

        region_of = None
        if self.regions is not None:
            region_of = merge_regions(engine.image, engine.segmentation.labels, self.regions)
        return explain_anchors(engine, labels, top_k=top_k, seed=seed, pool=pool, region_of=region_of, **{
            k: getattr(self, k) for k in ("threshold", "p_sample", "delta", "tau", "batch_size",
                                         "max_anchor_size", "coverage_samples", "n_examples")})


class ShapExplainer(Explainer):
    """Owen or Shapley values per superpixel, or per pixel (shap's Partition explainer)."""

    method = "shap"
    estimator = param.Selector(default="owen", objects=["owen", "shared", "kernel", "pool", "partition"], doc=(
        "'owen': shap's Partition explainer over a spatial hierarchy of the superpixels: Owen values, exact and "
        "deterministic (no sampling; the seed changes nothing), most detail where the values are largest; "
        "'shared': KernelSHAP on the shared pool (LIME's passes) plus nsamples paired draws from the Shapley "
        "kernel, combined by importance sampling (Shapley values, sampled; more accurate than 'kernel' for the "
        "same new passes); "
        "'kernel': shap.KernelExplainer through the engine; "
        "'pool': KernelSHAP on the shared pool alone (no extra passes, a rough first look); "
        "'partition': shap's Partition explainer with a blur Image masker (pixel resolution)."))
    nsamples = param.Integer(500, bounds=(16, 50000), doc=(
        "New model evaluations for 'owen', 'shared', 'kernel' and 'partition'."))
    blur = param.Integer(32, bounds=(3, 255), doc="Blur kernel of the Image masker ('partition' only).")

    def compute(self, engine, labels, *, seed, pool, top_k):
        from .shap import explain_shap

        return explain_shap(engine, labels, estimator=self.estimator, nsamples=self.nsamples,
                            blur=self.blur, seed=seed, pool=pool)


EXPLAINERS: dict[str, type[Explainer]] = {cls.method: cls for cls in (LimeExplainer, AnchorExplainer, ShapExplainer)}


def make_explainer(method: str, settings: dict | Explainer | None = None) -> Explainer:
    """An explainer for ``method`` with ``settings`` checked against its parameters' bounds."""
    if isinstance(settings, Explainer):
        return settings
    try:
        cls = EXPLAINERS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(EXPLAINERS)}") from None
    settings = dict(settings or {})
    unknown = set(settings) - set(cls.param) - {"name"}
    if unknown:
        raise ValueError(f"{method} has no setting {', '.join(sorted(unknown))}; it has "
                         f"{', '.join(sorted(set(cls.param) - {'name', 'results', 'cost'}))}")
    return cls(**settings)
