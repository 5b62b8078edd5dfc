"""The two candidate learners on standardised inputs: L2 logistic regression (Newton) and a small MLP (Adam)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kestrel.model.network import sigmoid

Layers = tuple[tuple[np.ndarray, np.ndarray], ...]


@dataclass(frozen=True)
class LogRegConfig:
    l2: float = 1.0
    """Penalty on the weights (not the bias), in units of one row's log loss."""
    max_iter: int = 50
    tol: float = 1e-8


@dataclass(frozen=True)
class MLPConfig:
    hidden: int = 32
    epochs: int = 40
    batch_size: int = 512
    learning_rate: float = 2e-3
    weight_decay: float = 1e-5
    patience: int = 4
    """Epochs without a better validation loss before stopping (the best epoch's weights are kept)."""
    validation: float = 0.1
    """Latest share of the training rows held out for early stopping (time order, like the holdout)."""
    seed: int = 0


def fit_logreg(Z: np.ndarray, y: np.ndarray, config: LogRegConfig = LogRegConfig()) -> Layers:
    """Exact L2-regularised maximum likelihood by Newton's method.

    With tens of features the Hessian is tiny, so Newton converges in ~10 steps to the optimum
    that L-BFGS would only approach; it needs no scipy.
    """
    n, d = Z.shape
    A = np.hstack([Z, np.ones((n, 1))])
    penalty = np.r_[np.full(d, config.l2), 0.0]
    w = np.zeros(d + 1)
    for _ in range(config.max_iter):
        p = sigmoid(A @ w)
        grad = A.T @ (p - y) + penalty * w
        hess = (A * (p * (1 - p))[:, None]).T @ A + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < config.tol:
            break
    return ((w[:d, None], w[d:]),)


def fit_mlp(Z: np.ndarray, y: np.ndarray, config: MLPConfig = MLPConfig()) -> tuple[Layers, int]:
    """One ReLU hidden layer trained with Adam on log loss; returns the layers and the best epoch."""
    rng = np.random.default_rng(config.seed)
    cut = int(len(y) * (1 - config.validation))
    (Zt, yt), (Zv, yv) = (Z[:cut], y[:cut]), (Z[cut:], y[cut:])
    params = _init(rng, Z.shape[1], config.hidden, float(yt.mean()))
    adam = _Adam(params, config.learning_rate)
    best, best_loss, best_epoch, waited = [p.copy() for p in params], np.inf, 0, 0
    for epoch in range(1, config.epochs + 1):
        for batch in np.array_split(rng.permutation(cut), max(1, cut // config.batch_size)):
            grads = _gradients(params, Zt[batch], yt[batch])
            adam.step([g + config.weight_decay * p for g, p in zip(grads, params)])
        loss = _loss(params, Zv, yv) if len(yv) else -epoch
        if loss < best_loss - 1e-6:
            best, best_loss, best_epoch, waited = [p.copy() for p in params], loss, epoch, 0
        elif (waited := waited + 1) >= config.patience:
            break
    W0, b0, W1, b1 = best
    return ((W0, b0), (W1, b1)), best_epoch


def _init(rng: np.random.Generator, d: int, hidden: int, base_rate: float) -> list[np.ndarray]:
    W0 = rng.standard_normal((d, hidden)) * np.sqrt(2.0 / d)  # He: keeps ReLU activations' scale
    W1 = rng.standard_normal((hidden, 1)) * np.sqrt(1.0 / hidden)
    # Start at the base rate, so the first epochs learn structure rather than the class prior.
    b1 = np.array([np.log(max(base_rate, 1e-6) / max(1 - base_rate, 1e-6))])
    return [W0, np.zeros(hidden), W1, b1]


def _forward(params: list[np.ndarray], Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    W0, b0, W1, b1 = params
    h = np.maximum(Z @ W0 + b0, 0.0)
    return h, sigmoid(h @ W1 + b1)[:, 0]


def _loss(params: list[np.ndarray], Z: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(_forward(params, Z)[1], 1e-12, 1 - 1e-12)
    return float(-(y * np.log(p) + (1 - y) * np.log1p(-p)).mean())


def _gradients(params: list[np.ndarray], Z: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    W1 = params[2]
    h, p = _forward(params, Z)
    dz1 = ((p - y) / len(y))[:, None]
    dh = (dz1 @ W1.T) * (h > 0)
    return [Z.T @ dh, dh.sum(axis=0), h.T @ dz1, dz1.sum(axis=0)]


class _Adam:
    def __init__(self, params: list[np.ndarray], lr: float, b1: float = 0.9, b2: float = 0.999) -> None:
        self.params, self.lr, self.b1, self.b2, self.t = params, lr, b1, b2, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        correction = np.sqrt(1 - self.b2**self.t) / (1 - self.b1**self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            p -= self.lr * correction * m / (np.sqrt(v) + 1e-8)
