"""The explorer dashboard (``xai_panel.apps.explorer``) as a ``panel serve`` script.

``xai-panel serve`` serves the same app from the installed package; this script is for
``panel serve dashboards/explorer.py`` in a source checkout.
"""

from xai_panel.apps.explorer import explorer_app

explorer_app().servable()
