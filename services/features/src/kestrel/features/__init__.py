"""Kestrel features: the streaming feature service."""
