"""function."""
