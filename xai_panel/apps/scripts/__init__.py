"""Scripts that `panel serve` runs (one per app); they are files so that Panel names the routes."""
