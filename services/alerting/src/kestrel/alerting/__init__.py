"""Kestrel alerting."""
