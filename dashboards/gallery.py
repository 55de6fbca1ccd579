"""The gallery dashboard (``xai_panel.apps.gallery``) as a ``panel serve`` script.

``xai-panel serve`` serves the same app from the installed package; this script is for
``panel serve dashboards/gallery.py`` in a source checkout.
"""

from xai_panel.apps.gallery import gallery_app

gallery_app().servable()
