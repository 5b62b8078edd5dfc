"""Kestrel devstack."""
