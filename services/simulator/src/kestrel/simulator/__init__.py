"""Kestrel simulator."""
