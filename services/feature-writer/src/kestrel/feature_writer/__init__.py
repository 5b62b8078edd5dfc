"""Kestrel feature-writer."""
