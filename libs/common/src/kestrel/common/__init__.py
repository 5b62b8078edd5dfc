"""Kestrel common."""
