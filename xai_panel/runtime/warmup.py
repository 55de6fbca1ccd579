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
import time

import xai_panel.apps.explorer  # noqa: F401  (each page's panes and widgets; HoloViews for the inspection)
import xai_panel.apps.gallery  # noqa: F401
import xai_panel.components  # noqa: F401  (Panel, torch, the engine)
import xai_panel.metrics.stability  # noqa: F401
from xai_panel.apps.explorer import explorer_app
from xai_panel.apps.frame import REHEARSAL_WAIT, configured_dataset, configured_model, rehearse_pages, warm_up
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
model = configured_model()
start = time.monotonic()
warm_up_done = warm_up(model)  # in a pool thread: the model's load, first batches, each method's rehearsal
# Meanwhile, here: each page's first build (its first-call costs), and the gallery's first page
# of thumbnails and of stored explanations read into memory. The server listens once all of it
# is done, ``REHEARSAL_WAIT`` s after this script started at most (a first install's ONNX export
# takes longer; the warm-up then goes on in the background). Measured on two cores with the
# page's images precomputed, the first click after the server listened: 0.29-0.39 s (4 runs)
# when it waited for all of it, 0.41-0.66 s for the model's load only, 0.58-2.1 s for none:
# the warm-up's batches took the cores and the pool's threads from the first page and click.
rehearse_pages(gallery_app, explorer_app, wait=REHEARSAL_WAIT)
try:
    warm_up_done.result(timeout=max(0.0, start + REHEARSAL_WAIT - time.monotonic()))
except TimeoutError:
    logging.getLogger("xai_panel").info("xai-panel: serving before the warm-up of %s finished (%.0f s)", model,
                                        REHEARSAL_WAIT)
except Exception:  # the model cannot be loaded: each page says why
    logging.getLogger("xai_panel").exception("xai-panel: the warm-up of %s failed", model)
