"""Each model version's references (features, scores, training events), read once from its Triton artifact, cached."""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog

from kestrel.drift_monitor.assess import ModelReference, feature_kinds, reference
from kestrel.featureset import FeatureDefinitionError, load_feature_set
from kestrel.model import artifact
from kestrel.model.errors import ModelError
from kestrel.model.events import EventReference

log = structlog.get_logger()


class MissingReference(Exception):
    """The version's artifact is missing or unreadable: its windows are reported without statistics."""


class References:
    """`repository/<model>/<version>/` is a whole artifact (kestrel.model.repository), reference included."""

    def __init__(self, repository: Path, feature_set: str) -> None:
        self._repository, self._feature_set = repository, feature_set
        self._cache: dict[tuple[str, str], ModelReference] = {}

    async def get(self, model_name: str, model_version: str) -> ModelReference:
        key = (model_name, model_version)
        if key not in self._cache:
            self._cache[key] = await asyncio.to_thread(self._load, model_name, model_version)
        return self._cache[key]

    def _load(self, model_name: str, model_version: str) -> ModelReference:
        try:
            art = artifact.load(self._repository / model_name / model_version)
        except ModelError as exc:
            raise MissingReference(str(exc)) from exc
        kinds = self._kinds(art.feature_set_version, art.feature_names)
        log.info("reference_loaded", model=model_name, version=model_version, rows=len(art.reference.sample))
        return reference(art.reference, kinds, art.feature_set_version)

    def _kinds(self, version_id: str, names: tuple[str, ...]) -> tuple[str, ...]:
        """Kinds from the feature set's definition when it is the artifact's version; numeric otherwise."""
        try:
            fs = load_feature_set(self._feature_set)
        except FeatureDefinitionError:
            fs = None
        if fs is None or fs.version_id != version_id:
            return tuple("numeric" for _ in names)
        by_name = dict(zip(fs.names, feature_kinds(fs)))
        return tuple(by_name.get(n, "numeric") for n in names)


class EventReferences:
    """The events subject's reference: the training events of the newest version of `model_name` that has one
    (the version Triton serves by default; a version trained from logged vectors has none, so the one before
    stands in). Each version is read once; the repository is listed on every call, so a new version takes over."""

    def __init__(self, repository: Path, model_name: str) -> None:
        self._repository, self._model_name = repository, model_name
        self._cache: dict[int, EventReference | None] = {}

    async def newest(self) -> tuple[str, EventReference | None]:
        """(version, its events reference); ("", None) when no version has one."""
        return await asyncio.to_thread(self._newest)

    def _newest(self) -> tuple[str, EventReference | None]:
        for version in reversed(artifact.versions(self._repository, self._model_name)):
            if version not in self._cache:
                self._cache[version] = self._load(version)
            if self._cache[version] is not None:
                return str(version), self._cache[version]
        return "", None

    def _load(self, version: int) -> EventReference | None:
        try:
            events = artifact.load(self._repository / self._model_name / str(version)).reference.events
        except ModelError as exc:
            log.warning("events_reference_unreadable", model=self._model_name, version=version, error=str(exc))
            return None
        log.info("events_reference_loaded", model=self._model_name, version=version, rows=events and events.rows)
        return events
