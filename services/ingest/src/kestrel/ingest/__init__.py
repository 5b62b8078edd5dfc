"""Kestrel ingest."""
