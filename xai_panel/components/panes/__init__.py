"""components/panes."""
