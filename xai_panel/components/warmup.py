"""``panel serve --setup`` script: import the heavy modules and start loading the model
before the first visitor arrives, so the first page and the first click are not slow."""

import xai_panel.components  # noqa: F401  (Panel, HoloViews, torch, the engine)
from xai_panel.components.app import configured_dataset, configured_model, warm_up

configured_dataset()
warm_up(configured_model())
