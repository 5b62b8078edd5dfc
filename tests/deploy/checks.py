"""Deploy checks: the registry of deployable images, shared loaders and the Dockerfile checks.

Every check returns a list of problems (empty when fine), so a failing test prints all of them.
compose_checks and k8s_checks hold the compose and Kubernetes checks.
"""

from __future__ import annotations

import importlib
import json
import re
import shlex
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "compose" / "docker-compose.yml"
K8S_ROOT = REPO_ROOT / "infra" / "k8s"
NAMESPACE = "kestrel"


@dataclass(frozen=True)
class Deployable:
    """One image that compose (and maybe Kubernetes) runs; adding a service to the checks is one line."""

    name: str
    """Compose service name; for services also the folder under services/ and infra/k8s/."""
    env_prefix: str
    dockerfile: str
    pyproject: str
    k8s: bool = False
    settings: str | None = None
    """`module:Class` of its pydantic settings: env names must then be real fields, not typos."""

    @classmethod
    def service(cls, name: str, env_prefix: str, *, k8s: bool = False, settings: str | None = None) -> Deployable:
        base = f"services/{name}"
        return cls(name, env_prefix, f"{base}/Dockerfile", f"{base}/pyproject.toml", k8s, settings)

    @property
    def k8s_dir(self) -> Path:
        return K8S_ROOT / self.name

    @property
    def image(self) -> str:
        """Image repository, named after the Dockerfile's folder: compose tags it :dev, kustomize pins a release."""
        return f"kestrel/{Path(self.dockerfile).parent.name}"


DEPLOYABLES = (
    Deployable.service("ingest", "KESTREL_INGEST_", k8s=True, settings="kestrel.ingest.settings:IngestSettings"),
    Deployable.service("simulator", "KESTREL_SIM_", settings="kestrel.simulator.settings:SimulatorSettings"),
    Deployable.service(
        "feature-writer",
        "KESTREL_FEATURE_WRITER_",
        k8s=True,
        settings="kestrel.feature_writer.settings:FeatureWriterSettings",
    ),
    Deployable.service(
        "features", "KESTREL_FEATURES_", k8s=True, settings="kestrel.features.settings:FeaturesSettings"
    ),
    Deployable.service(
        "inference", "KESTREL_INFERENCE_", k8s=True, settings="kestrel.inference.settings:InferenceSettings"
    ),
    Deployable.service(
        "prediction-logger",
        "KESTREL_PREDICTION_LOGGER_",
        k8s=True,
        settings="kestrel.prediction_logger.settings:PredictionLoggerSettings",
    ),
    Deployable.service(
        "drift-monitor",
        "KESTREL_DRIFT_MONITOR_",
        k8s=True,
        settings="kestrel.drift_monitor.settings:DriftMonitorSettings",
    ),
    Deployable.service(
        "alerting",
        "KESTREL_ALERTING_",
        k8s=True,
        settings="kestrel.alerting.settings:AlertingSettings",
    ),
    Deployable.service(
        "retrain-trigger",
        "KESTREL_RETRAIN_TRIGGER_",
        k8s=True,
        settings="kestrel.retrain_trigger.settings:RetrainTriggerSettings",
    ),
    Deployable("topics", "KESTREL_", "compose/tools/Dockerfile", "libs/devstack/pyproject.toml"),
)
SHARED_ENV = frozenset({"KESTREL_FEATURES_DIR"})
"""Repo-wide names read outside any settings class (kestrel.featureset.loader) that happen to start with
a service prefix (KESTREL_FEATURES_): not typos of a settings field."""
TOPICS_FILE = REPO_ROOT / "infra" / "topics.yaml"
STATEFUL = ("kafka", "schema-registry", "redis", "postgres", "triton")
"""Compose services that own data or serve other services: each needs a healthcheck."""


# ---------------------------------------------------------------- loading


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty document of a (multi-document) YAML file."""
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def topic_partitions(path: Path = TOPICS_FILE) -> dict[str, int]:
    """Partition count of every topic in the catalogue."""
    return {topic["name"]: int(topic["partitions"]) for topic in load_yaml(path)["topics"]}


def settings_class(deployable: Deployable) -> Any:
    module, _, name = (deployable.settings or "").partition(":")
    return getattr(importlib.import_module(module), name) if deployable.settings else None


def settings_env_names(deployable: Deployable) -> set[str] | None:
    """KESTREL_<SERVICE>_<FIELD> for every field of the deployable's settings class, if it declares one."""
    if deployable.settings is None:
        return None
    return {f"{deployable.env_prefix}{field}".upper() for field in settings_class(deployable).model_fields}


def env_problems(where: str, names: Iterable[str], prefix: str, known: set[str] | None = None) -> list[str]:
    """Names carry the service's prefix and, when its settings are known, name a real field."""
    problems = []
    for name in names:
        if not name.startswith(prefix):
            problems.append(f"{where}: {name} does not start with {prefix}")
        elif known is not None and name.upper() not in known | SHARED_ENV:
            problems.append(f"{where}: {name} is not a settings field ({prefix}<field>)")
    return problems


# ---------------------------------------------------------------- Dockerfiles


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int
    """Index of the FROM stage this instruction belongs to (-1 before the first FROM)."""


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuations joined; comment and blank lines dropped (also inside a continuation)."""
    instructions: list[Instruction] = []
    stage, pending = -1, ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        keyword, _, args = (pending + line).partition(" ")
        stage += keyword.upper() == "FROM"
        instructions.append(Instruction(keyword.upper(), args.strip(), stage))
        pending = ""
    return instructions


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max((i.stage for i in instructions), default=-1)
    return [i for i in instructions if i.stage == last]


def exec_form(args: str) -> list[str] | None:
    """The JSON array of an exec-form CMD/ENTRYPOINT, or None for shell form."""
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) else None


def _copy_sources(args: str) -> list[str] | None:
    """Context sources of COPY/ADD, or None when it copies from a stage or image (--from)."""
    words = [w for w in shlex.split(args) if not w.startswith("--") or w.startswith("--from")]
    if any(w.startswith("--from") for w in words):
        return None
    return words[:-1]


def dockerignore_patterns(context: Path) -> list[str]:
    path = context / ".dockerignore"
    lines = path.read_text().splitlines() if path.is_file() else []
    return [ln.strip().strip("/") for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def _glob_regex(pattern: str) -> re.Pattern[str]:
    tokens = re.split(r"(\*\*/|\*\*|\*|\?)", pattern)
    table = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(table.get(tok, re.escape(tok)) for tok in tokens) + r"\Z")


def is_ignored(relative: str, patterns: Iterable[str]) -> bool:
    """Whether .dockerignore drops this path or a parent of it; the last matching pattern wins (`!` re-includes)."""
    parts = Path(relative).parts
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for pattern in patterns:
        regex = _glob_regex(pattern.removeprefix("!"))
        if any(regex.match(prefix) for prefix in prefixes):
            ignored = not pattern.startswith("!")
    return ignored


def dockerfile_copy_problems(dockerfile: Path, context: Path) -> list[str]:
    """Every COPY/ADD source exists in the build context and is not excluded by .dockerignore."""
    problems = []
    ignored = dockerignore_patterns(context)
    for ins in parse_dockerfile(dockerfile.read_text()):
        sources = _copy_sources(ins.args) if ins.keyword in ("COPY", "ADD") else None
        for source in sources or []:
            if source != "." and not list(context.glob(source)):
                problems.append(f"{dockerfile.name}: {ins.keyword} {source}: not in the build context")
            elif source != "." and is_ignored(source, ignored):
                problems.append(f"{dockerfile.name}: {ins.keyword} {source}: excluded by .dockerignore")
    return problems


def project_table(pyproject: Path) -> dict[str, Any]:
    return tomllib.loads(pyproject.read_text())["project"]


def entrypoint_problems(dockerfile: Path, pyproject: Path) -> list[str]:
    """ENTRYPOINT is a console script of the package, and `uv sync --package` installs that package."""
    project = project_table(pyproject)
    final = final_stage(parse_dockerfile(dockerfile.read_text()))
    entry = [exec_form(i.args) for i in final if i.keyword == "ENTRYPOINT"]
    if not entry or not entry[-1]:
        return [f"{dockerfile}: final stage needs an exec-form ENTRYPOINT"]
    problems = []
    if entry[-1][0] not in project.get("scripts", {}):
        problems.append(f"{dockerfile}: ENTRYPOINT {entry[-1][0]} is not in {pyproject} [project.scripts]")
    packages = set(re.findall(r"--package[ =]([\w.-]+)", dockerfile.read_text()))
    if packages != {project["name"]}:
        problems.append(f"{dockerfile}: uv sync --package {sorted(packages)} != {project['name']}")
    return problems


def non_root_problems(dockerfile: Path) -> list[str]:
    users = [i.args for i in final_stage(parse_dockerfile(dockerfile.read_text())) if i.keyword == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        return [f"{dockerfile}: the final stage must switch to a non-root USER"]
    return []


def exposed_ports(dockerfile: Path) -> set[int]:
    final = final_stage(parse_dockerfile(dockerfile.read_text()))
    return {int(p.split("/")[0]) for i in final if i.keyword == "EXPOSE" for p in i.args.split()}


def dockerfile_env_names(dockerfile: Path) -> list[str]:
    """Names the final stage sets with ENV (`ENV A=1 B=2`, or the legacy `ENV A 1`)."""
    names = []
    for ins in final_stage(parse_dockerfile(dockerfile.read_text())):
        if ins.keyword == "ENV":
            words = shlex.split(ins.args)
            names += [w.split("=", 1)[0] for w in words] if "=" in words[0] else words[:1]
    return names


def has_healthcheck(dockerfile: Path) -> bool:
    checks = [i.args for i in final_stage(parse_dockerfile(dockerfile.read_text())) if i.keyword == "HEALTHCHECK"]
    return bool(checks) and checks[-1].upper() != "NONE"


def dockerignore_problems(patterns: list[str], required: Iterable[str]) -> list[str]:
    return [f".dockerignore must exclude {path}" for path in required if not is_ignored(path, patterns)]
