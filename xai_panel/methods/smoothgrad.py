"""SmoothGrad (Smilkov et al. 2017) on captum's ``NoiseTunnel``: gradients averaged over noisy copies.

A plain gradient map is speckled; averaging it over ``samples`` copies of the image with
Gaussian noise (``noise`` times the input's range, the paper's 10-20 %) keeps what is
stable. Over ``saliency`` (|gradient|, the paper's) or ``ig``, Integrated Gradients (SmoothGrad
of IG: ``samples`` x ``ig_steps`` passes per class). All top-k classes go in one captum
call (batched targets); the noise is seeded by the explanation's seed, so the same seed
gives the same map. The map is summed over the colour channels; ``values`` is its mean
per superpixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import param

from ._gradients import GradientExplainer, GradientResult, to_maps

__all__ = ["SmoothGradExplainer", "SmoothGradResult"]


@dataclass(frozen=True)
class SmoothGradResult(GradientResult):
    """For one class: the SmoothGrad map and its superpixel means."""


class SmoothGradExplainer(GradientExplainer):
    """SmoothGrad over saliency or Integrated Gradients, for every class in one batched call."""

    method = "smoothgrad"
    label = "SmoothGrad"
    caption = "gradients averaged over noisy copies of the image"
    description = ("Red: pixels the class's score is most sensitive to, averaged over noisy copies of the image "
                   "(saliency: |gradient|, so never blue; over IG: signed). Per superpixel: the mean over its pixels.")
    result_type = SmoothGradResult
    order = 54
    in_default = False
    interactive = {"samples": 8}
    rehearsal = {"samples": 2, "ig_steps": 2}

    base = param.Selector(default="saliency", objects=["saliency", "ig"], doc=(
        "The attribution averaged: saliency (|gradient|, one pass per sample) or Integrated Gradients (ig: ig_steps "
        "passes per sample)."))
    samples = param.Integer(16, bounds=(1, 256), doc="Noisy copies per class (forward and backward passes each).")
    noise = param.Number(0.15, bounds=(0.0, 1.0), step=0.01, doc=(
        "Standard deviation of the noise, as a fraction of the input's range (max - min); the paper uses 0.1-0.2."))
    ig_steps = param.Integer(8, bounds=(2, 128), doc="Path points of Integrated Gradients (base ig).")
    batch_size = param.Integer(16, bounds=(1, 1024), doc="Noisy copies per model batch (memory, not the result).")

    def attribute(self, forward, x, labels, *, seed, engine):
        import torch
        from captum.attr import IntegratedGradients, NoiseTunnel, Saliency

        k = len(labels)
        inputs = x.expand(k, *x.shape[1:]).contiguous()
        stdev = float(self.noise) * float(x.max() - x.min())
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # seeded noise, the caller's random state untouched
            torch.manual_seed(int(seed))
            if self.base == "saliency":
                attributions = NoiseTunnel(Saliency(forward)).attribute(
                    inputs, nt_type="smoothgrad", nt_samples=self.samples, nt_samples_batch_size=self.batch_size,
                    stdevs=stdev, target=labels, abs=True)
                backward = k * self.samples
            else:
                attributions = NoiseTunnel(IntegratedGradients(forward)).attribute(
                    inputs, nt_type="smoothgrad", nt_samples=self.samples, nt_samples_batch_size=self.batch_size,
                    stdevs=stdev, target=labels, n_steps=self.ig_steps, internal_batch_size=self.batch_size)
                backward = k * self.samples * self.ig_steps
        return to_maps(attributions), {}, backward
