"""Inference's two deployables as the runtime runs them (light to import: `--help` loads no client)."""

from kestrel.common.runtime import Service
from kestrel.inference.settings import InferenceSettings

API = Service(
    name="inference",
    summary="gRPC Predict, PredictBatch and PredictStream: online features from Redis, scores from Triton, every "
    "prediction published to kestrel.predictions.v1.",
    settings=InferenceSettings,
    components="kestrel.inference.app:api_components",
)

SCORER = Service(
    name="inference-scorer",
    summary="The stream scorer: every feature vector on kestrel.features.v1 scored by Triton in large requests, "
    "predictions to kestrel.predictions.v1.",
    settings=InferenceSettings,
    components="kestrel.inference.app:scorer_components",
    dead_letters="inference",
)
