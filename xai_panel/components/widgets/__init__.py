"""components/widgets."""
