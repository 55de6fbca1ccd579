"""The dashboards, built by functions so that an installed package serves them (``xai-panel serve``)."""
