"""components/state."""
