"""``panel serve`` entry of the gallery app; ``xai-panel serve`` serves this file of the installed package."""

from xai_panel.apps.gallery import gallery_app

gallery_app().servable()
