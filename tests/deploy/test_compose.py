"""compose/docker-compose.yml, checked statically: no Docker engine is needed (or available) here."""

import shutil
import subprocess

import pytest

from checks import (
    COMPOSE_FILE,
    DEPLOYABLES,
    REPO_ROOT,
    STATEFUL,
    env_problems,
    exposed_ports,
    load_yaml,
    settings_env_names,
)
from compose_checks import (
    compose_build_problems,
    depends_on_problems,
    dockerfile_of,
    env_names,
    gpu_profile_problems,
    healthcheck_problems,
    healthy,
    host_port_problems,
    mount_problems,
    reads_file_problems,
    services,
)

BASE = COMPOSE_FILE.parent


@pytest.fixture(scope="module")
def compose():
    return load_yaml(COMPOSE_FILE)


def test_every_service_has_an_image_or_an_existing_dockerfile(compose):
    assert compose_build_problems(compose, BASE) == []


def test_dependencies_exist_and_can_be_met(compose):
    assert depends_on_problems(compose, BASE) == []


def test_mount_sources_exist_and_volumes_are_declared(compose):
    assert mount_problems(compose, BASE) == []


def test_stateful_services_have_healthchecks(compose):
    assert healthcheck_problems(compose, STATEFUL) == []


def test_host_ports_do_not_collide(compose):
    assert host_port_problems(compose) == []


def test_gpu_profile_reserves_a_gpu(compose):
    assert gpu_profile_problems(compose, "gpu") == []


def test_simulator_runs_only_under_the_sim_profile(compose):
    assert services(compose)["simulator"].get("profiles") == ["sim"]


def test_topics_job_reads_the_catalogue(compose):
    assert reads_file_problems(compose, BASE, "topics", REPO_ROOT / "infra" / "topics.yaml") == []


@pytest.mark.parametrize("deployable", DEPLOYABLES, ids=lambda d: d.name)
def test_kestrel_service_env_uses_its_prefix(compose, deployable):
    names = env_names(services(compose)[deployable.name])
    assert env_problems(deployable.name, names, deployable.env_prefix, settings_env_names(deployable)) == []


@pytest.mark.parametrize("deployable", DEPLOYABLES, ids=lambda d: d.name)
def test_kestrel_service_is_built_from_its_dockerfile(compose, deployable):
    assert dockerfile_of(services(compose)[deployable.name], BASE) == REPO_ROOT / deployable.dockerfile


@pytest.mark.parametrize("deployable", DEPLOYABLES, ids=lambda d: d.name)
def test_published_container_ports_are_exposed_by_the_image(compose, deployable):
    svc = services(compose)[deployable.name]
    targets = {int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in svc.get("ports", [])}
    assert targets <= exposed_ports(REPO_ROOT / deployable.dockerfile)


def test_ingest_is_healthchecked_by_its_image(compose):
    assert healthy("ingest", compose, BASE)


def _compose_cli() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _compose_cli(), reason="the docker compose plugin is not installed")
def test_docker_compose_config_accepts_the_file():
    for profiles in ([], ["--profile", "gpu", "--profile", "sim"]):
        result = subprocess.run(["docker", "compose", "-f", str(COMPOSE_FILE), *profiles, "config", "--quiet"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
