"""Choose the classifier: the embedded default, torchvision architectures, or a model file."""

from __future__ import annotations

import panel as pn
import param

from ...models.registry import DEFAULT_MODEL

__all__ = ["ModelSelector", "SUGGESTED_MODELS"]

SUGGESTED_MODELS = (DEFAULT_MODEL, "resnet18", "resnet34", "resnet50", "mobilenet_v3_large", "efficientnet_b0")
"""Offered in the selector; torchvision ones need their weights in the torch cache (or a download)."""


class ModelSelector(pn.viewable.Viewer):
    """A model name (``model``) chosen from ``options``; loading happens where it is used."""

    model = param.String(default=DEFAULT_MODEL, doc="Model name or file, as for load_classifier.")
    options = param.List(default=list(SUGGESTED_MODELS), item_type=str, doc="Names offered in the list.")

    def __panel__(self):
        # Offered: the list, and the chosen model if it is not in it (a model file given to
        # ``serve``); an uploaded model is added to ``options`` before it is chosen.
        options = pn.bind(lambda model, names: names if model in names else [model, *names],
                          self.param.model, self.param.options)
        select = pn.widgets.Select(name="Model", options=options, value=self.param.model, sizing_mode="stretch_width")
        select.param.watch(lambda e: setattr(self, "model", e.new), "value")
        return pn.Column(
            select,
            pn.pane.Markdown("EfficientNet-Lite0 ships with xai-panel; torchvision models need their weights "
                             "in the torch cache.", styles={"color": "#6b7280", "font-size": "12px"}, margin=(0, 10)),
            sizing_mode="stretch_width",
        )
