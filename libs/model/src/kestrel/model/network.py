"""The scoring function shared by training and serving: transform, standardise, dense layers, sigmoid."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from kestrel.model.errors import ModelError

CLIP = 8.0
"""Standardised inputs are clipped to +-CLIP: a wild value (a drifted amount) cannot swing the score alone."""


@dataclass(frozen=True)
class Network:
    """Signed log1p on `log_mask` columns, (x - mean) / std, clip, then dense layers (ReLU between).

    One layer is logistic regression; two are a one-hidden-layer MLP. The Triton model
    (triton_model.py) evaluates the same arrays with the same formula.
    """

    mean: np.ndarray
    std: np.ndarray
    log_mask: np.ndarray
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]
    """(W of shape (inputs, outputs), b of shape (outputs,)) per layer; the last has one output."""
    clip: float = CLIP

    @property
    def n_features(self) -> int:
        return len(self.mean)

    @property
    def kind(self) -> str:
        return "logreg" if len(self.layers) == 1 else "mlp"

    def standardise(self, X: np.ndarray) -> np.ndarray:
        return standardise(X, self.mean, self.std, self.log_mask, self.clip)

    def logits(self, X: np.ndarray) -> np.ndarray:
        h = self.standardise(np.asarray(X, dtype=np.float64))
        for W, b in self.layers[:-1]:
            h = np.maximum(h @ W + b, 0.0)
        W, b = self.layers[-1]
        return (h @ W + b)[:, 0]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Fraud probability per row, float64, shape (n,)."""
        return sigmoid(self.logits(X))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """What weights.npz holds (plain arrays: loads without pickle, in numpy 1 and 2)."""
        arrays = {
            "mean": self.mean,
            "std": self.std,
            "log_mask": self.log_mask.astype(np.uint8),
            "clip": np.array(self.clip),
        }
        for i, (W, b) in enumerate(self.layers):
            arrays[f"W{i}"], arrays[f"b{i}"] = W, b
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Network:
        try:
            layers: list[Any] = []
            while f"W{len(layers)}" in arrays:
                i = len(layers)
                layers.append((np.asarray(arrays[f"W{i}"], np.float64), np.asarray(arrays[f"b{i}"], np.float64)))
            net = cls(
                np.asarray(arrays["mean"], np.float64),
                np.asarray(arrays["std"], np.float64),
                np.asarray(arrays["log_mask"]).astype(bool),
                tuple(layers),
                float(arrays["clip"]),
            )
        except KeyError as exc:
            raise ModelError(f"weights lack array {exc.args[0]!r}") from exc
        _check_shapes(net)
        return net


def fit_transform(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, std, log_mask) learned from training rows.

    Non-negative columns spanning more than a decade (amounts, sums, seconds) are log-compressed:
    heavy tails otherwise squeeze most rows into a sliver of the standardised range.
    """
    X = np.asarray(X, dtype=np.float64)
    log_mask = (X.min(axis=0) >= 0) & (X.max(axis=0) > 10.0)
    T = np.where(log_mask, np.log1p(np.abs(X)) * np.sign(X), X)
    mean, std = T.mean(axis=0), T.std(axis=0)
    return mean, np.where(std > 1e-12, std, 1.0), log_mask  # constant columns: centred, never divided by 0


def standardise(X: np.ndarray, mean: np.ndarray, std: np.ndarray, log_mask: np.ndarray, clip: float) -> np.ndarray:
    T = np.where(log_mask, np.log1p(np.abs(X)) * np.sign(X), X)
    return np.clip((T - mean) / std, -clip, clip)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # tanh form: no overflow warning for large |z|


def _check_shapes(net: Network) -> None:
    d = len(net.mean)
    if net.std.shape != (d,) or net.log_mask.shape != (d,) or not net.layers:
        raise ModelError("weights: mean, std and log_mask must share one length, and a layer must exist")
    width = d
    for i, (W, b) in enumerate(net.layers):
        if W.ndim != 2 or W.shape[0] != width or b.shape != (W.shape[1],):
            raise ModelError(f"weights: layer {i} has W {W.shape} and b {b.shape} after width {width}")
        width = W.shape[1]
    if width != 1:
        raise ModelError(f"weights: the last layer must have one output, has {width}")
