"""``panel serve`` entry of the explorer app; ``xai-panel serve`` serves this file of the installed package."""

from xai_panel.apps.explorer import explorer_app

explorer_app().servable()
