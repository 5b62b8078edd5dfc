"""The reference model: training, versioned artifacts with drift references, and its Triton repository entry."""

from kestrel.model.artifact import ModelArtifact, build, load, next_version, save
from kestrel.model.calibration import Calibration
from kestrel.model.dataset import TrainingSet, from_events, from_matrix, time_split
from kestrel.model.errors import ModelError
from kestrel.model.performance import ReferencePerformance, reference_performance
from kestrel.model.reference import ReferenceStats
from kestrel.model.repository import publish_to_repository
from kestrel.model.train import TrainConfig, TrainResult, compare, train
from kestrel.model.triton_config import TritonConfig

__all__ = [
    "Calibration",
    "ModelArtifact",
    "ModelError",
    "ReferencePerformance",
    "ReferenceStats",
    "TrainConfig",
    "TrainResult",
    "TrainingSet",
    "TritonConfig",
    "build",
    "compare",
    "from_events",
    "from_matrix",
    "load",
    "next_version",
    "publish_to_repository",
    "reference_performance",
    "save",
    "time_split",
    "train",
]
