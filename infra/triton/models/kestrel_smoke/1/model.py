"""Smoke model: sigmoid(0.25 * row_sum - 1), vectorised over every request of a dynamic batch."""

import numpy as np
import triton_python_backend_utils as pb_utils

SCALE = np.float32(0.25)
BIAS = np.float32(-1.0)


def score(rows: np.ndarray) -> np.ndarray:
    """The formula the tests recompute: one probability per row, shape (n, 1)."""
    logits = rows.sum(axis=1, keepdims=True, dtype=np.float32) * SCALE + BIAS
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


class TritonPythonModel:
    """Concatenates all requests of a batch, scores them at once, then splits the result back."""

    def execute(self, requests):
        inputs = [pb_utils.get_input_tensor_by_name(r, "INPUT__0").as_numpy() for r in requests]
        scores = score(np.concatenate(inputs))
        bounds = np.cumsum([len(x) for x in inputs])[:-1]
        return [
            pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("OUTPUT__0", part)])
            for part in np.split(scores, bounds)
        ]
