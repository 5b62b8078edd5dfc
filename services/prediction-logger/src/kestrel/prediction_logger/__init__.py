"""Kestrel prediction-logger."""
