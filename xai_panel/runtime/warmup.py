"""``panel serve --setup`` script: import the heavy modules and start loading the model
before the first visitor arrives, so the first page and the first click are not slow.

The imports run here, at server start, because an import holds Python's import lock and
mostly the GIL: done lazily inside a session's first explanation (alibi pulls in spaCy),
it would stall the server's event loop and with it every open page. The apps' own modules
(their panes, the inspection's HoloViews) are imported here too: left to the first page, their
import ran on the event loop while the warm-up's rehearsal held the GIL, and that page took
seconds longer than the next one.
"""

import importlib
import logging

import xai_panel.apps.explorer  # noqa: F401  (each page's panes and widgets; HoloViews for the inspection)
import xai_panel.apps.gallery  # noqa: F401
import xai_panel.components  # noqa: F401  (Panel, torch, the engine)
import xai_panel.metrics.stability  # noqa: F401
from xai_panel.apps.explorer import explorer_app
from xai_panel.apps.frame import configured_dataset, configured_model, rehearse_pages, warm_up
from xai_panel.apps.gallery import gallery_app
from xai_panel.methods import registry

for module in (m for cls in registry().values() for m in cls.warm_imports):
    try:
        importlib.import_module(module)
    except ImportError:  # an optional method missing: its pane will say so
        pass

# The server's log says when the warm-up is done (``xai-panel: ... warmed up in``): a
# readiness signal for operators and for the benchmarks, which click only after it.
# (Panel's server logs through the root logger's handler; ours only needs its level.)
if logging.getLogger("xai_panel").level == logging.NOTSET:
    logging.getLogger("xai_panel").setLevel(logging.INFO)

configured_dataset()
warm_up(configured_model())  # in the background: the model's load, first batches and a rehearsal
# Here, before the server listens: each page's first build (its first-call costs) and the
# gallery's first page of stored explanations read into memory, for the first visitor.
rehearse_pages(gallery_app, explorer_app)
