"""Kestrel retrain-trigger: retrain, gate, shadow and promote model versions (docs/retrain.md)."""
