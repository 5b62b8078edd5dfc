"""Errors of the model package."""

from __future__ import annotations

from kestrel.common.errors import KestrelError


class ModelError(KestrelError, ValueError):
    """Training data, an artifact or a model repository entry is unusable; the message says why."""
