"""Kestrel drift-monitor."""
